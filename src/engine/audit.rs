// SPDX-License-Identifier: MIT
//! The audit log: one JSON line per change of a watch list and per reported match, each holding the
//! SHA-256 of the line before it, so that an edited, deleted, inserted or reordered line breaks the
//! chain where it happened. The watch list records the head (sequence number and hash of the last
//! line) at each write, which also catches lines cut off the end, and a chain rewritten from some
//! line on (the hashes are not secret; the list's head is authenticated with the list's key).
//!
//! Appends from several processes (the CLI, pipelines) are serialised by an exclusive lock on the
//! log file and written with one `write` of whole lines, then synced. Lines hold ids, labels, names
//! and times, never descriptors or images. GStreamer-free.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first line.
pub const GENESIS: [u8; 32] = [0; 32];

/// The last line of a log: its sequence number and the SHA-256 of its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
}

/// One line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// UTC, RFC 3339, seconds.
    pub time: String,
    /// The user (CLI) or `camera:<camera-id>` (the veilmatch element).
    pub actor: String,
    /// init, enroll, remove, rekey, purge-expired, match.
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
        }
    }
}

impl std::error::Error for AuditError {}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
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

/// Appends `events` (in order) at time `now` (unix seconds); returns the new head. Several
/// processes may append at once: each append is whole and the chain stays valid.
pub fn append(path: &Path, events: &[Event], now: i64) -> Result<Head, AuditError> {
    let io = |e: std::io::Error| AuditError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    let mut head = last(&mut file, path)?;
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
        let line = serde_json::to_vec(&entry).expect("an entry serialises");
        head = Head {
            seq: entry.seq,
            hash: line_hash(&line),
        };
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    file.write_all(&out).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(head)
}

/// The head of the log open in `file` (read from its end): the genesis for an empty log.
fn last(file: &mut File, path: &Path) -> Result<Head, AuditError> {
    let io = |e: std::io::Error| AuditError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let damaged = |reason: &str| AuditError::Damaged {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len == 0 {
        return Ok(Head {
            seq: 0,
            hash: GENESIS,
        });
    }
    // Lines are short; read back until a whole last line is in the buffer.
    let mut take = 4096u64;
    loop {
        let start = len.saturating_sub(take);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        Read::by_ref(file)
            .take(len - start)
            .read_to_end(&mut buf)
            .map_err(io)?;
        if buf.last() != Some(&b'\n') {
            return Err(damaged("its last line is incomplete"));
        }
        let body = &buf[..buf.len() - 1];
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                return head_of(&body[i + 1..])
                    .ok_or_else(|| damaged("its last line is not an entry"));
            }
            None if start == 0 => {
                return head_of(body).ok_or_else(|| damaged("its last line is not an entry"));
            }
            None => take *= 4,
        }
    }
}

fn head_of(line: &[u8]) -> Option<Head> {
    let e: Entry = serde_json::from_slice(line).ok()?;
    Some(Head {
        seq: e.seq,
        hash: line_hash(line),
    })
}

/// A break in the chain, with the 1-based line number where it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Not a JSON entry (or not a whole line).
    Unreadable { line: usize },
    /// Line `line`'s content is not what the next line recorded (it, or that link, was changed).
    Edited { line: usize, seq: u64 },
    /// Entries `from..=to` are missing before line `line`.
    Deleted { line: usize, from: u64, to: u64 },
    /// Line `line` repeats the sequence number of the line before: a line was put in.
    Inserted { line: usize, seq: u64 },
    /// Line `line` comes after a later entry.
    Reordered { line: usize, seq: u64 },
    /// The list recorded entry `want` as the head; the log ends at `have`.
    Truncated { have: u64, want: u64 },
    /// The list recorded another hash for entry `seq` (on line `line`): the chain was rewritten.
    Rewritten { line: usize, seq: u64 },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unreadable { line } => write!(f, "line {line}: not an audit entry"),
            Problem::Edited { line, seq } => write!(
                f,
                "line {line} (entry {seq}) was edited: the next line recorded another content"
            ),
            Problem::Deleted { line, from, to } if from == to => {
                write!(f, "entry {from} was deleted (before line {line})")
            }
            Problem::Deleted { line, from, to } => {
                write!(
                    f,
                    "entries {from} to {to} were deleted (before line {line})"
                )
            }
            Problem::Inserted { line, seq } => write!(
                f,
                "line {line} was inserted (it repeats entry number {seq})"
            ),
            Problem::Reordered { line, seq } => write!(
                f,
                "line {line} (entry {seq}) is out of order: lines were reordered"
            ),
            Problem::Truncated { have, want } => write!(
                f,
                "lines were cut off the end: the log ends at entry {have}, the watch list \
                 recorded entry {want}"
            ),
            Problem::Rewritten { line, seq } => write!(
                f,
                "line {line} (entry {seq}) is not the entry the watch list recorded: the log was \
                 rewritten"
            ),
        }
    }
}

/// What `verify` read.
#[derive(Debug)]
pub struct Verified {
    pub entries: Vec<Entry>,
    pub head: Head,
    pub problems: Vec<Problem>,
}

/// Reads and checks the whole log; `recorded` is the head a watch list recorded (if known).
pub fn verify(path: &Path, recorded: Option<Head>) -> Result<Verified, AuditError> {
    let bytes = std::fs::read(path).map_err(|e| AuditError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(check(&bytes, recorded))
}

/// [`verify`] on the log's bytes.
pub fn check(bytes: &[u8], recorded: Option<Head>) -> Verified {
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    let mut prev: Option<(u64, [u8; 32])> = None; // the last readable line's (seq, hash)
    let mut max_seq = 0;
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let complete = bytes.last() == Some(&b'\n');
    if complete || bytes.is_empty() {
        lines.pop(); // after the final newline
    }
    let n_lines = lines.len();
    let mut head = Head {
        seq: 0,
        hash: GENESIS,
    };
    for (i, raw) in lines.into_iter().enumerate() {
        let line = i + 1;
        let whole = complete || line < n_lines;
        let Some(e) = whole
            .then(|| serde_json::from_slice::<Entry>(raw).ok())
            .flatten()
        else {
            problems.push(Problem::Unreadable { line });
            prev = None;
            continue;
        };
        let hash = line_hash(raw);
        let (want_seq, want_prev) = prev.map_or((1, GENESIS), |(s, h)| (s + 1, h));
        if e.seq < want_seq && prev.is_some() {
            if e.seq + 1 == want_seq {
                problems.push(Problem::Inserted { line, seq: e.seq });
            } else {
                problems.push(Problem::Reordered { line, seq: e.seq });
            }
        } else if e.seq > want_seq {
            problems.push(Problem::Deleted {
                line,
                from: want_seq,
                to: e.seq - 1,
            });
        } else if e.seq == want_seq && e.prev != hex(&want_prev) {
            if prev.is_some() {
                problems.push(Problem::Edited {
                    line: line - 1,
                    seq: e.seq - 1,
                });
            } else {
                problems.push(Problem::Edited { line, seq: e.seq });
            }
        }
        if let Some(r) = recorded
            && e.seq == r.seq
            && hash != r.hash
        {
            problems.push(Problem::Rewritten { line, seq: e.seq });
        }
        max_seq = max_seq.max(e.seq);
        prev = Some((e.seq, hash));
        head = Head { seq: e.seq, hash };
        entries.push(e);
    }
    if let Some(r) = recorded
        && max_seq < r.seq
    {
        problems.push(Problem::Truncated {
            have: max_seq,
            want: r.seq,
        });
    }
    Verified {
        entries,
        head,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, label: Option<&str>) -> Event {
        Event {
            actor: "alice".into(),
            action: action.into(),
            identity: label.map(|l| format!("id-{l}")),
            label: label.map(String::from),
            detail: None,
        }
    }

    fn log_of(n: usize) -> (PathBuf, Head) {
        let d = std::env::temp_dir().join(format!(
            "fw-audit-{}-{n}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("a.log");
        let mut head = Head::default();
        for i in 0..n {
            head = append(
                &p,
                &[ev("enroll", Some(&format!("p{i}")))],
                1_700_000_000 + i as i64,
            )
            .unwrap();
        }
        (p, head)
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn write_lines(p: &Path, l: &[String]) {
        std::fs::write(p, l.iter().map(|s| format!("{s}\n")).collect::<String>()).unwrap();
    }

    #[test]
    fn a_fresh_chain_verifies_and_its_head_is_the_last_line() {
        let (p, head) = log_of(5);
        let v = verify(&p, Some(head)).unwrap();
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.head, head);
        assert_eq!(v.entries.len(), 5);
        assert_eq!(v.entries[0].prev, hex(&GENESIS));
        assert_eq!(v.entries[4].label.as_deref(), Some("p4"));
        assert_eq!(v.entries[0].time, "2023-11-14T22:13:20Z");
    }

    #[test]
    fn each_kind_of_change_is_found_and_named() {
        let (p, head) = log_of(6);
        let orig = lines(&p);
        let check_with = |l: Vec<String>| {
            write_lines(&p, &l);
            verify(&p, Some(head)).unwrap().problems
        };
        // edited: line 3's label changed
        let mut l = orig.clone();
        l[2] = l[2].replace("p2", "px");
        assert_eq!(check_with(l), vec![Problem::Edited { line: 3, seq: 3 }]);
        // deleted: line 4 gone
        let mut l = orig.clone();
        l.remove(3);
        assert_eq!(
            check_with(l),
            vec![Problem::Deleted {
                line: 4,
                from: 4,
                to: 4
            }]
        );
        // inserted: a copy of line 2 put after it
        let mut l = orig.clone();
        l.insert(2, orig[1].clone());
        let got = check_with(l);
        assert!(
            got.contains(&Problem::Inserted { line: 3, seq: 2 }),
            "{got:?}"
        );
        // reordered: lines 2 and 4 swapped
        let mut l = orig.clone();
        l.swap(1, 3);
        let got = check_with(l);
        assert!(
            got.iter().any(|p| matches!(p, Problem::Reordered { .. })),
            "{got:?}"
        );
        // truncated: the last two lines cut off — only the recorded head shows it
        let l = orig[..4].to_vec();
        write_lines(&p, &l);
        assert!(verify(&p, None).unwrap().problems.is_empty());
        assert_eq!(check_with(l), vec![Problem::Truncated { have: 4, want: 6 }]);
        // rewritten: line 5 edited and every later link recomputed (hashes are not secret)
        let mut l = orig[..4].to_vec();
        let mut prev = line_hash(l[3].as_bytes());
        for (seq, label) in [(5u64, "evil"), (6, "p5")] {
            let e = Entry {
                seq,
                time: utc(1),
                actor: "mallory".into(),
                action: "enroll".into(),
                identity: None,
                label: Some(label.into()),
                detail: None,
                prev: hex(&prev),
            };
            let s = serde_json::to_string(&e).unwrap();
            prev = line_hash(s.as_bytes());
            l.push(s);
        }
        assert_eq!(check_with(l), vec![Problem::Rewritten { line: 6, seq: 6 }]);
        // an incomplete last line
        std::fs::write(&p, format!("{}\n{}", orig[0], &orig[1][..10])).unwrap();
        assert_eq!(
            verify(&p, None).unwrap().problems,
            vec![Problem::Unreadable { line: 2 }]
        );
        assert!(matches!(
            append(&p, &[ev("init", None)], 0),
            Err(AuditError::Damaged { .. })
        ));
    }

    #[test]
    fn concurrent_writers_keep_one_valid_chain() {
        let (p, _) = log_of(0);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        append(
                            &p,
                            &[ev("match", Some(&format!("t{t}-{i}"))), ev("match", None)],
                            0,
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let v = verify(&p, None).unwrap();
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.head.seq, 200);
    }
}
