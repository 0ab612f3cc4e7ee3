// SPDX-License-Identifier: MIT
//! Checking a whole log as a stream of lines: the chain, and the heads its writers recorded.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{
    AuditError, Entry, GENESIS, Head, MAX_LINE, hex, io_err, line_hash, open_log, parse_entry,
};

/// A break in the chain, with the 1-based line number where it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Not a JSON entry (or not a whole line, or longer than [`MAX_LINE`]).
    Unreadable { line: u64 },
    /// Line `line`'s content is not what the next line recorded (it, or that link, was changed).
    Edited { line: u64, seq: u64 },
    /// Entries `from..=to` are missing before line `line`.
    Deleted { line: u64, from: u64, to: u64 },
    /// Line `line` repeats the sequence number of the line before: a line was put in.
    Inserted { line: u64, seq: u64 },
    /// Line `line` comes after a later entry.
    Reordered { line: u64, seq: u64 },
    /// `by` recorded entry `want` as a head; the log ends at `have`.
    Truncated { have: u64, want: u64, by: String },
    /// `by` recorded another hash for entry `seq` (on line `line`): the chain was rewritten.
    Rewritten { line: u64, seq: u64, by: String },
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
            Problem::Truncated { have, want, by } => write!(
                f,
                "lines were cut off the end: the log ends at entry {have}, {by} recorded entry \
                 {want}"
            ),
            Problem::Rewritten { line, seq, by } => write!(
                f,
                "line {line} (entry {seq}) is not the entry {by} recorded: the log was rewritten"
            ),
        }
    }
}

/// A head that the log must still hold, and who recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub by: String,
    pub head: Head,
    /// The hash of the first line of the log the head was in (`None`: this log, whatever it is).
    /// An anchor of another first line belongs to an earlier segment, renamed aside.
    pub segment: Option<[u8; 32]>,
}

/// The most problems kept (a log of garbage has one per line).
const MAX_PROBLEMS: usize = 1000;

/// What `verify` read.
#[derive(Debug, Default)]
pub struct Verified {
    /// Lines that are entries.
    pub entries: u64,
    pub head: Head,
    /// The first line's entry and hash (which names a segment).
    pub first: Option<(Entry, [u8; 32])>,
    /// The first [`MAX_PROBLEMS`] problems, and how many there were.
    pub problems: Vec<Problem>,
    pub n_problems: u64,
    /// The anchors of other segments (other first lines): not checked here.
    pub other_segments: Vec<Anchor>,
}

impl Verified {
    fn problem(&mut self, p: Problem) {
        self.n_problems += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }
}

/// Reads and checks the log, a line at a time (a FIFO or other non-regular file is refused):
/// every head in `anchors` must be in it. `each` sees every entry, in file order.
pub fn verify(
    path: &Path,
    anchors: &[Anchor],
    each: impl FnMut(&Entry),
) -> Result<Verified, AuditError> {
    let file = open_log(path)?;
    check(BufReader::new(file), anchors, each).map_err(io_err(path))
}

/// Reads one line of at most [`MAX_LINE`] bytes into `buf` (without its newline): whether it
/// ended with a newline and fitted; `None` at the end.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<(bool, bool)>> {
    buf.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some((false, fits)));
        }
        any = true;
        let (used, end) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, Some(i)),
            None => (chunk.len(), None),
        };
        let part = &chunk[..end.unwrap_or(used)];
        if buf.len() + part.len() <= MAX_LINE {
            buf.extend_from_slice(part);
        } else {
            fits = false;
        }
        r.consume(used);
        if end.is_some() {
            return Ok(Some((true, fits)));
        }
    }
}

/// [`verify`] on a reader.
pub fn check(
    mut r: impl BufRead,
    anchors: &[Anchor],
    mut each: impl FnMut(&Entry),
) -> std::io::Result<Verified> {
    let mut v = Verified::default();
    let mut prev: Option<(u64, [u8; 32])> = None; // the last readable line's (seq, hash)
    let mut max_seq = 0;
    let mut raw = Vec::new();
    let mut line = 0u64;
    let of_this = |a: &&Anchor, first: Option<[u8; 32]>| a.segment.is_none() || a.segment == first;
    let mut applicable: Vec<&Anchor> = anchors.iter().filter(|a| of_this(a, None)).collect();
    while let Some((whole, fits)) = read_line(&mut r, &mut raw)? {
        line += 1;
        let Some(e) = (whole && fits).then(|| parse_entry(&raw)).flatten() else {
            v.problem(Problem::Unreadable { line });
            prev = None;
            continue;
        };
        let hash = line_hash(&raw);
        if line == 1 {
            applicable = anchors.iter().filter(|a| of_this(a, Some(hash))).collect();
        }
        let (want_seq, want_prev) = prev.map_or((1, GENESIS), |(s, h)| (s + 1, h));
        if e.seq < want_seq && prev.is_some() {
            if e.seq + 1 == want_seq {
                v.problem(Problem::Inserted { line, seq: e.seq });
            } else {
                v.problem(Problem::Reordered { line, seq: e.seq });
            }
        } else if e.seq > want_seq {
            v.problem(Problem::Deleted {
                line,
                from: want_seq,
                to: e.seq - 1,
            });
        } else if e.seq == want_seq && e.prev != hex(&want_prev) {
            if prev.is_some() {
                v.problem(Problem::Edited {
                    line: line - 1,
                    seq: e.seq - 1,
                });
            } else {
                v.problem(Problem::Edited { line, seq: e.seq });
            }
        }
        for a in &applicable {
            if e.seq == a.head.seq && hash != a.head.hash {
                v.problem(Problem::Rewritten {
                    line,
                    seq: e.seq,
                    by: a.by.clone(),
                });
            }
        }
        max_seq = max_seq.max(e.seq);
        prev = Some((e.seq, hash));
        v.head = Head { seq: e.seq, hash };
        v.entries += 1;
        each(&e);
        if v.first.is_none() && line == 1 {
            v.first = Some((e, hash));
        }
    }
    let first = v.first.as_ref().map(|f| f.1);
    v.other_segments = anchors
        .iter()
        .filter(|a| !of_this(a, first))
        .cloned()
        .collect();
    for a in applicable {
        if max_seq < a.head.seq {
            v.problem(Problem::Truncated {
                have: max_seq,
                want: a.head.seq,
                by: a.by.clone(),
            });
        }
    }
    Ok(v)
}
