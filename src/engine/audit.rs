// SPDX-License-Identifier: MIT
//! The audit log: one JSON line per change of a watch list and per match (reported, or decided in
//! trial mode), each holding the SHA-256 of the line before it, so that an edited, deleted,
//! inserted or reordered line breaks the chain where it happened. The watch list records the head
//! (sequence number and hash of the last line) at each write, which also catches lines cut off the
//! end, and a chain rewritten from some line on (the hashes are not secret; the list's head is
//! authenticated with the list's key).
//!
//! Writers are anchored: [`append_after`] first checks that the log still ends at (or, when other
//! writers share it, continues from) the head the writer recorded, reading only the log's tail, and
//! refuses to write after a gap; [`start_new`] begins a new log deliberately, keeping the old file
//! beside it. Writers without a list (the veilmatch element) go through [`append_anchored`], which
//! keeps their head in memory and in `<log>.head` and starts a new segment after a gap.
//!
//! Appends from several processes (the CLI, pipelines) are serialised by an exclusive lock on the
//! log file and written with one `write` of whole lines, then synced. Lines hold ids, labels, names
//! and times, never descriptors or images. Logs are read as streams of lines of at most
//! [`MAX_LINE`] bytes, never whole. GStreamer-free.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::watchlist::store::{self, OpenError};

/// The hash before the first line.
pub const GENESIS: [u8; 32] = [0; 32];

/// The longest line read back: a longer one is a broken line (and is not held in memory).
pub const MAX_LINE: usize = 64 * 1024;

/// The last line of a log: its sequence number and the SHA-256 of its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry {} sha256 {}", self.seq, hex(&self.hash))
    }
}

impl Head {
    /// Parses what [`Display`](std::fmt::Display) writes: `entry <seq> sha256 <64 hex digits>`.
    pub fn parse(s: &str) -> Option<Head> {
        let mut w = s.split_whitespace();
        let (Some("entry"), Some(seq), Some("sha256"), Some(h), None) =
            (w.next(), w.next(), w.next(), w.next(), w.next())
        else {
            return None;
        };
        Some(Head {
            seq: seq.parse().ok()?,
            hash: unhex(h)?,
        })
    }
}

/// One line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// UTC, RFC 3339, seconds.
    pub time: String,
    /// The user (CLI) or `camera:<camera-id>` (the veilmatch element).
    pub actor: String,
    /// The CLI's init, enroll, edit, suspend, resume, export, remove, rekey, purge-expired,
    /// restore, identify (before the search) and identify-end (after it), anchor, new-audit-log;
    /// the element's new-segment, match (a reported match) and trial-match (a match decided in
    /// trial mode, not reported).
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A short note (e.g. a match's score, the number of descriptors enrolled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// SHA-256 (hex) of the line before; 64 zeros for the first.
    pub prev: String,
}

/// What to record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    pub actor: String,
    pub action: String,
    pub identity: Option<String>,
    pub label: Option<String>,
    pub detail: Option<String>,
}

/// What a writer found where it expected the head it recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// No log file.
    Missing,
    /// An empty log.
    Empty,
    /// The log ends before the recorded entry.
    EndsAt(Head),
    /// The log ends at `tail`, but its entry `seq` is not the recorded one (or the lines after it
    /// do not chain to it): the log was rewritten.
    Differs { tail: Head, seq: u64 },
    /// The log's end cannot be read as entries.
    Damaged(String),
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Missing => write!(f, "the log is missing"),
            Found::Empty => write!(f, "the log is empty"),
            Found::EndsAt(h) => write!(f, "the log ends at entry {}", h.seq),
            Found::Differs { tail, seq } => write!(
                f,
                "the log ends at entry {}, but its entry {seq} is not the recorded one",
                tail.seq
            ),
            Found::Damaged(why) => write!(f, "{why}"),
        }
    }
}

/// A log that does not continue from the head `by` recorded.
#[derive(Debug)]
pub struct Gap {
    pub path: PathBuf,
    pub by: String,
    pub recorded: Head,
    pub found: Found,
}

#[derive(Debug)]
pub enum AuditError {
    Io {
        path: PathBuf,
        reason: String,
    },
    /// The log's last line is incomplete or not an entry: it cannot be extended.
    Damaged {
        path: PathBuf,
        reason: String,
    },
    /// The log does not continue from the head a writer recorded: nothing was written.
    Gap(Box<Gap>),
    /// Not a regular file (a FIFO, device or directory).
    NotAFile {
        path: PathBuf,
    },
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditError::Io { path, reason } => write!(f, "audit log {}: {reason}", path.display()),
            AuditError::Damaged { path, reason } => write!(
                f,
                "audit log {}: {reason}; check it with 'faceveil audit verify'",
                path.display()
            ),
            AuditError::Gap(g) => write!(
                f,
                "audit log {}: a gap: {} recorded entry {} ({}), {}",
                g.path.display(),
                g.by,
                g.recorded.seq,
                hex(&g.recorded.hash),
                g.found
            ),
            AuditError::NotAFile { path } => write!(
                f,
                "audit log {}: not a regular file (a FIFO, device or directory); refused",
                path.display()
            ),
        }
    }
}

impl std::error::Error for AuditError {}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |e| AuditError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn damaged(path: &Path, reason: &str) -> AuditError {
    AuditError::Damaged {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits as 32 bytes.
pub fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// About how many bytes of names an entry's detail holds (see [`capped_list`]): a few dozen
/// paths.
pub const NAMES_BUDGET: usize = 2048;

/// `items` joined with ", ", as many as fit in about `budget` bytes (at least the first, cut short
/// if it alone is longer), then how many were left out: `a, b, … and 3 more`. An entry that names
/// thousands of files stays a short line, far under [`MAX_LINE`].
pub fn capped_list<S: AsRef<str>>(items: &[S], budget: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for item in items.iter().map(AsRef::as_ref) {
        let sep = if shown == 0 { "" } else { ", " };
        if out.len() + sep.len() + item.len() > budget {
            if shown == 0 {
                let mut end = budget.min(item.len());
                while !item.is_char_boundary(end) {
                    end -= 1;
                }
                out.push_str(&item[..end]);
                out.push('…');
                shown = 1;
            }
            break;
        }
        out.push_str(sep);
        out.push_str(item);
        shown += 1;
    }
    if shown < items.len() {
        out.push_str(&format!(", … and {} more", items.len() - shown));
    }
    out
}

/// SHA-256 of a line (without its newline).
pub fn line_hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// RFC 3339 UTC (seconds) of unix seconds (1970 to 9999).
pub fn utc(t: i64) -> String {
    let t = t.clamp(0, 253_402_300_799) as u64;
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
        .to_string()
}

/// Opens a log for reading: a regular file (a FIFO does not block the open).
pub fn open_log(path: &Path) -> Result<File, AuditError> {
    store::open_regular(path)
        .map(|(f, _)| f)
        .map_err(|e| match e {
            OpenError::NotAFile => AuditError::NotAFile {
                path: path.to_path_buf(),
            },
            OpenError::Io(e) => io_err(path)(e),
        })
}

/// Opens the log for appending (created with mode 0600 when `create`) and locks it. The file
/// locked is the one the path names once the lock is held: a writer that waited while another
/// renamed the log aside opens the new one.
fn open_locked(path: &Path, create: bool) -> Result<File, AuditError> {
    let io = io_err(path);
    for _ in 0..100 {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(create)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(&io)?;
        let meta = file.metadata().map_err(&io)?;
        if !meta.is_file() {
            return Err(AuditError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        file.lock().map_err(&io)?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => return Ok(file),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => continue,
            Err(e) => return Err(io(e)),
        }
    }
    Err(io(std::io::Error::other("the log keeps being replaced")))
}

/// The log's lines from the last to the first, each at most [`MAX_LINE`] bytes, read from the
/// end in blocks.
struct Backwards<'a> {
    file: &'a mut File,
    /// Where the bytes not yet read start.
    pos: u64,
    /// Read bytes before the lines already returned.
    buf: Vec<u8>,
    done: bool,
}

impl<'a> Backwards<'a> {
    /// `Ok(None)` for an empty file; an error when the last line has no newline.
    fn new(file: &'a mut File, path: &Path) -> Result<Option<Self>, AuditError> {
        let io = io_err(path);
        let len = file.seek(SeekFrom::End(0)).map_err(&io)?;
        if len == 0 {
            return Ok(None);
        }
        let mut last = [0u8];
        file.seek(SeekFrom::Start(len - 1)).map_err(&io)?;
        file.read_exact(&mut last).map_err(&io)?;
        if last[0] != b'\n' {
            return Err(damaged(path, "its last line is incomplete"));
        }
        Ok(Some(Backwards {
            file,
            pos: len - 1,
            buf: Vec::new(),
            done: false,
        }))
    }

    fn next(&mut self, path: &Path) -> Result<Option<Vec<u8>>, AuditError> {
        loop {
            if let Some(i) = self.buf.iter().rposition(|&b| b == b'\n') {
                let line = self.buf.split_off(i + 1);
                self.buf.truncate(i);
                return Ok(Some(line));
            }
            if self.pos == 0 {
                if self.done {
                    return Ok(None);
                }
                self.done = true;
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            if self.buf.len() > MAX_LINE {
                return Err(damaged(
                    path,
                    "a line near its end is too long to be an entry",
                ));
            }
            let take = self.pos.min(16 * 1024);
            self.pos -= take;
            let mut block = vec![0u8; take as usize];
            self.file
                .seek(SeekFrom::Start(self.pos))
                .and_then(|_| self.file.read_exact(&mut block))
                .map_err(io_err(path))?;
            block.extend_from_slice(&self.buf);
            self.buf = block;
        }
    }
}

fn parse_entry(line: &[u8]) -> Option<Entry> {
    serde_json::from_slice(line).ok()
}

/// The tail of the log open in `file` against the head a writer recorded (`None`: no check): the
/// log's head, or what was found instead. The recorded entry must be the last line, or (when other
/// writers share the log) lines chained to it may follow: the lines are read from the end back to
/// the recorded entry, no further.
fn tail(
    file: &mut File,
    path: &Path,
    recorded: Option<Head>,
) -> Result<Result<Head, Found>, AuditError> {
    let genesis = Head {
        seq: 0,
        hash: GENESIS,
    };
    let rev = match Backwards::new(file, path) {
        Ok(r) => r,
        Err(AuditError::Damaged { reason, .. }) if recorded.is_some() => {
            return Ok(Err(Found::Damaged(reason)));
        }
        Err(e) => return Err(e),
    };
    let Some(mut rev) = rev else {
        return Ok(if recorded.is_some_and(|r| r.seq > 0) {
            Err(Found::Empty)
        } else {
            Ok(genesis)
        });
    };
    let not_entry = "its last line is not an entry";
    let line = rev.next(path)?.unwrap_or_default();
    let Some(e) = parse_entry(&line) else {
        return match recorded {
            Some(_) => Ok(Err(Found::Damaged(not_entry.into()))),
            None => Err(damaged(path, not_entry)),
        };
    };
    let head = Head {
        seq: e.seq,
        hash: line_hash(&line),
    };
    let Some(r) = recorded else {
        return Ok(Ok(head));
    };
    if head == r {
        return Ok(Ok(head));
    }
    if head.seq < r.seq {
        return Ok(Err(Found::EndsAt(head)));
    }
    let differs = Found::Differs {
        tail: head,
        seq: r.seq,
    };
    if head.seq == r.seq {
        return Ok(Err(differs));
    }
    // Later lines by other writers: walk back along their links to the recorded entry.
    let (mut want_seq, mut want_hash) = (e.seq - 1, unhex(&e.prev));
    loop {
        let line = match rev.next(path) {
            Ok(Some(l)) => l,
            Ok(None) | Err(AuditError::Damaged { .. }) => return Ok(Err(differs)),
            Err(e) => return Err(e),
        };
        let Some(e) = parse_entry(&line) else {
            return Ok(Err(differs));
        };
        let hash = line_hash(&line);
        if e.seq != want_seq || Some(hash) != want_hash {
            return Ok(Err(differs));
        }
        if e.seq == r.seq {
            return Ok(if hash == r.hash {
                Ok(head)
            } else {
                Err(differs)
            });
        }
        (want_seq, want_hash) = (e.seq - 1, unhex(&e.prev));
    }
}

/// Writes `events` after `head` in the locked `file`; returns the new head.
fn write_after(
    file: &mut File,
    path: &Path,
    mut head: Head,
    events: &[Event],
    now: i64,
) -> Result<Head, AuditError> {
    let mut out = Vec::new();
    for e in events {
        let entry = Entry {
            seq: head.seq + 1,
            time: utc(now),
            actor: e.actor.clone(),
            action: e.action.clone(),
            identity: e.identity.clone(),
            label: e.label.clone(),
            detail: e.detail.clone(),
            prev: hex(&head.hash),
        };
        let line = serde_json::to_vec(&entry).map_err(|e| AuditError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        // What verify could not read back is not written (nothing is, of these events).
        if line.len() > MAX_LINE {
            return Err(AuditError::Io {
                path: path.to_path_buf(),
                reason: format!(
                    "a {} entry of {} bytes, longer than an entry may be ({MAX_LINE}); nothing \
                     written",
                    entry.action,
                    line.len()
                ),
            });
        }
        head = Head {
            seq: entry.seq,
            hash: line_hash(&line),
        };
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    // A write cut short (a full disk) is cut back to where the log ended: no partial line is left
    // to break the chain, and the error says what happened.
    let end = file.metadata().map_err(io_err(path))?.len();
    if let Err(e) = file.write_all(&out).and_then(|()| file.sync_data()) {
        let _ = file.set_len(end).and_then(|()| file.sync_data());
        return Err(io_err(path)(e));
    }
    Ok(head)
}

/// Appends `events` (in order) at time `now` (unix seconds), unchecked; returns the new head.
/// Several processes may append at once: each append is whole and the chain stays valid.
pub fn append(path: &Path, events: &[Event], now: i64) -> Result<Head, AuditError> {
    append_after(path, None, "", events, now)
}

/// Appends `events` after the head `recorded` (`by`, e.g. "the watch list", recorded it): the log
/// must end at that entry, or continue from it along the chain. A log that does not (cut short,
/// deleted, rewritten) is a [`AuditError::Gap`] and nothing is written. `None`: nothing recorded;
/// the log may be absent, empty or anything whole.
pub fn append_after(
    path: &Path,
    recorded: Option<Head>,
    by: &str,
    events: &[Event],
    now: i64,
) -> Result<Head, AuditError> {
    let gap = |found| {
        AuditError::Gap(Box::new(Gap {
            path: path.to_path_buf(),
            by: by.to_string(),
            recorded: recorded.unwrap_or_default(),
            found,
        }))
    };
    let expects_lines = recorded.is_some_and(|r| r.seq > 0);
    let mut file = match open_locked(path, !expects_lines) {
        Err(AuditError::Io { .. }) if expects_lines && !path.exists() => {
            return Err(gap(Found::Missing));
        }
        r => r?,
    };
    let head = tail(&mut file, path, recorded)?.map_err(gap)?;
    write_after(&mut file, path, head, events, now)
}

/// What the writer found before it appended: [`check_tail`] without writing.
pub fn check_tail(path: &Path, recorded: Option<Head>, by: &str) -> Result<Head, AuditError> {
    append_after(path, recorded, by, &[], 0)
}

mod segment;
mod subject;
mod trial;
mod verify;

pub use segment::{
    Appended, append_anchored, head_file, read_head_file, renamed_to, segment_detail, start_new,
};
pub use subject::{MATCHED, Subject, entries_about, segments};
pub use trial::{MATCH, TRIAL_MATCH, TrialRow, TrialSummary, parse_score, score_detail};
pub use verify::{Anchor, Problem, Verified, check, verify};

#[cfg(test)]
mod tests;
