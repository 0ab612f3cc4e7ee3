// SPDX-License-Identifier: MIT
//! New logs and segments: starting a log anew with the old file kept aside, and the anchored
//! appends of writers without a list (the veilmatch element), whose head lives in memory and in
//! `<log>.head`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use super::{
    AuditError, Event, Found, Head, append_after, damaged, io_err, open_locked, open_log, tail,
    utc, write_after,
};
use crate::engine::watchlist::store;

/// Starts a new log at `path`: the old file, if any, is renamed aside to
/// `<log>.<UTC time>[.n]` (never deleted, never overwritten), and the new log's first line is
/// `first(renamed-to, what the old log ended with)`, followed by `events`. Returns the new head
/// and where the old file went.
pub fn start_new(
    path: &Path,
    first: impl FnOnce(Option<&Path>, Result<Head, Found>) -> Event,
    events: &[Event],
    now: i64,
) -> Result<(Head, Option<PathBuf>), AuditError> {
    let io = io_err(path);
    let (aside, found) = match open_locked(path, false) {
        Ok(mut old) => {
            let found = match tail(&mut old, path, None) {
                Ok(h) => h,
                Err(AuditError::Damaged { reason, .. }) => Err(Found::Damaged(reason)),
                Err(e) => return Err(e),
            };
            let stamp = utc(now).replace(':', "");
            let mut aside = PathBuf::from(format!("{}.{stamp}", path.display()));
            let mut n = 1;
            // hard_link does not overwrite: the old file keeps a name until it is unlinked here.
            while let Err(e) = std::fs::hard_link(path, &aside) {
                if e.kind() != std::io::ErrorKind::AlreadyExists || n > 1000 {
                    return Err(io(e));
                }
                n += 1;
                aside = PathBuf::from(format!("{}.{stamp}.{n}", path.display()));
            }
            std::fs::remove_file(path).map_err(&io)?;
            drop(old);
            (Some(aside), found)
        }
        Err(AuditError::Io { .. }) if !path.exists() => (None, Err(Found::Missing)),
        Err(e) => return Err(e),
    };
    let mut file = open_locked(path, true)?;
    let head = tail(&mut file, path, None)?.unwrap_or_default();
    let mut all = vec![first(aside.as_deref(), found)];
    all.extend_from_slice(events);
    let head = write_after(&mut file, path, head, &all, now)?;
    Ok((head, aside))
}

/// `<log>.head`: the head the log's writers without a list (the element) last wrote.
pub fn head_file(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_os_string();
    p.push(".head");
    PathBuf::from(p)
}

/// Reads `<log>.head` (`None` when there is none).
pub fn read_head_file(log: &Path) -> Result<Option<Head>, AuditError> {
    let path = head_file(log);
    let mut f = match open_log(&path) {
        Err(AuditError::Io { .. }) if !path.exists() => return Ok(None),
        r => r?,
    };
    let mut text = String::new();
    (&mut f)
        .take(256)
        .read_to_string(&mut text)
        .map_err(io_err(&path))?;
    Head::parse(text.trim())
        .map(Some)
        .ok_or_else(|| damaged(&path, "not a head ('entry N sha256 HEX')"))
}

fn write_head_file(log: &Path, head: Head) -> Result<(), AuditError> {
    let path = head_file(log);
    // A warning (mode bits not carried over) does not matter for a file of hashes.
    store::write_atomic(&path, format!("{head}\n").as_bytes())
        .map(drop)
        .map_err(|e| AuditError::Io {
            path,
            reason: e.to_string(),
        })
}

/// What [`append_anchored`] did.
#[derive(Debug)]
pub struct Appended {
    pub head: Head,
    /// The gap found, and where the old log went: a new segment was started.
    pub new_segment: Option<(AuditError, Option<PathBuf>)>,
    /// `<log>.head` could not be written (the lines were).
    pub head_file_error: Option<AuditError>,
}

/// The head each log was last written at by this process (for [`append_anchored`]).
pub(super) static HEADS: LazyLock<Mutex<HashMap<PathBuf, Head>>> = LazyLock::new(Default::default);

/// Appends `events` for a writer without a list (the veilmatch element): anchored to the head this
/// process last wrote to the log, else to `<log>.head`. After a gap (or with a damaged log end or
/// `.head`) the events are not dropped nor written after it: a new segment is started ([`start_new`]) whose first line is
/// `first(gap, renamed-to)`. The new head goes to memory and to `<log>.head`.
pub fn append_anchored(
    log: &Path,
    events: &[Event],
    now: i64,
    first: impl FnOnce(&AuditError, Option<&Path>) -> Event,
) -> Result<Appended, AuditError> {
    let key = store::real_path(log).unwrap_or_else(|_| log.to_path_buf());
    let mut heads = HEADS.lock().unwrap_or_else(|p| p.into_inner());
    let attempt = match heads.get(&key) {
        Some(h) => Ok((Some(*h), "this process")),
        None => read_head_file(log).map(|h| (h, "the log's .head file")),
    }
    .and_then(|(recorded, by)| append_after(log, recorded, by, events, now));
    let (head, new_segment) = match attempt {
        Ok(h) => (h, None),
        // A gap, a damaged end or an unreadable `.head`: nothing to append after.
        Err(gap @ (AuditError::Gap(_) | AuditError::Damaged { .. })) => {
            let (h, aside) = start_new(log, |aside, _| first(&gap, aside), events, now)?;
            (h, Some((gap, aside)))
        }
        Err(e) => return Err(e),
    };
    heads.insert(key, head);
    Ok(Appended {
        head,
        new_segment,
        head_file_error: write_head_file(log, head).err(),
    })
}

/// Where [`segment_detail`] says the old log went.
const RENAMED: &str = "; the old log was renamed to ";

/// The detail of a new log's first line: `what` (the gap, the head recorded) and where the old
/// log went, last (so that [`renamed_to`] reads it back whatever the path holds).
pub fn segment_detail(what: &str, aside: Option<&Path>) -> String {
    match aside {
        Some(p) => format!("{what}{RENAMED}{}", p.display()),
        None => format!("{what}; there was no old log"),
    }
}

/// The old log a new log's first line names (see [`segment_detail`]).
pub fn renamed_to(detail: &str) -> Option<PathBuf> {
    detail
        .rfind(RENAMED)
        .map(|i| PathBuf::from(&detail[i + RENAMED.len()..]))
}
