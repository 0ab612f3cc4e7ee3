// SPDX-License-Identifier: MIT
//! Lines bound for an append-only file (the runner's events) that must not be lost when a write
//! fails (a full disk, a file system gone read-only): they wait in a bounded queue and are written,
//! oldest first, before any newer line at the next write that succeeds. The caller says what
//! happened from the [`Outcome`]: once when writes start failing, once when they work again.

use std::collections::VecDeque;

/// How many lines wait at most; beyond that the oldest are dropped, and counted.
pub const DEFAULT_CAPACITY: usize = 1000;

/// The lines that wait, and whether writes are failing.
#[derive(Debug)]
pub struct Backlog {
    lines: VecDeque<String>,
    capacity: usize,
    dropped: u64,
    failing: bool,
}

/// What [`Backlog::write`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was written, and writes had not been failing.
    Written,
    /// Writes work again: `written` lines that had waited (the new one included) are written;
    /// `dropped` older ones were dropped meanwhile because the queue was full.
    Recovered { written: usize, dropped: u64 },
    /// The first failure after writes worked: `waiting` lines now wait.
    Failed { error: String, waiting: usize },
    /// Still failing (said before); `waiting` lines wait.
    StillFailing { waiting: usize },
}

impl Backlog {
    pub fn new(capacity: usize) -> Backlog {
        Backlog {
            lines: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            failing: false,
        }
    }

    /// Queues `line` (if any) behind the lines that wait, then writes them in order through
    /// `write` (which writes one whole line, or fails leaving none of it) until one fails.
    pub fn write(
        &mut self,
        line: Option<String>,
        mut write: impl FnMut(&str) -> std::io::Result<()>,
    ) -> Outcome {
        if let Some(line) = line {
            if self.lines.len() == self.capacity {
                self.lines.pop_front();
                self.dropped += 1;
            }
            self.lines.push_back(line);
        }
        let mut written = 0;
        while let Some(front) = self.lines.front() {
            if let Err(e) = write(front) {
                let waiting = self.lines.len();
                if self.failing {
                    return Outcome::StillFailing { waiting };
                }
                self.failing = true;
                return Outcome::Failed {
                    error: e.to_string(),
                    waiting,
                };
            }
            self.lines.pop_front();
            written += 1;
        }
        if std::mem::take(&mut self.failing) {
            Outcome::Recovered {
                written,
                dropped: std::mem::take(&mut self.dropped),
            }
        } else {
            Outcome::Written
        }
    }

    /// How many lines wait.
    pub fn waiting(&self) -> usize {
        self.lines.len()
    }

    /// Takes the lines that wait (to print them elsewhere at exit) and how many were dropped.
    pub fn drain(&mut self) -> (Vec<String>, u64) {
        (
            self.lines.drain(..).collect(),
            std::mem::take(&mut self.dropped),
        )
    }
}

impl Default for Backlog {
    fn default() -> Self {
        Backlog::new(DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::ENOSPC)
    }

    #[test]
    fn lines_wait_while_writes_fail_and_come_first_when_they_work() {
        let mut b = Backlog::new(10);
        let mut file: Vec<String> = Vec::new();
        let mut disk_full = false;
        let mut write = |b: &mut Backlog, line: Option<&str>, full_now: bool| {
            disk_full = full_now;
            b.write(line.map(str::to_string), |l| {
                if disk_full {
                    Err(full())
                } else {
                    file.push(l.to_string());
                    Ok(())
                }
            })
        };
        assert_eq!(write(&mut b, Some("a"), false), Outcome::Written);
        let Outcome::Failed { error, waiting } = write(&mut b, Some("b"), true) else {
            panic!("not a failure")
        };
        assert!(error.contains("No space left"), "{error}");
        assert_eq!(waiting, 1);
        assert_eq!(
            write(&mut b, Some("c"), true),
            Outcome::StillFailing { waiting: 2 },
            "said once"
        );
        assert_eq!(
            write(&mut b, None, false),
            Outcome::Recovered {
                written: 2,
                dropped: 0
            }
        );
        assert_eq!(write(&mut b, Some("d"), false), Outcome::Written);
        assert_eq!(file, ["a", "b", "c", "d"], "in order, none lost");
        assert_eq!(b.waiting(), 0);
    }

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_dropped() {
        let mut b = Backlog::new(3);
        for i in 0..5 {
            b.write(Some(format!("{i}")), |_| Err(full()));
        }
        assert_eq!(b.waiting(), 3);
        let mut file = Vec::new();
        let o = b.write(None, |l| {
            file.push(l.to_string());
            Ok(())
        });
        assert_eq!(
            o,
            Outcome::Recovered {
                written: 3,
                dropped: 2
            }
        );
        assert_eq!(file, ["2", "3", "4"], "the newest kept, the oldest dropped");
    }

    #[test]
    fn a_write_that_fails_part_way_keeps_the_rest_in_order() {
        let mut b = Backlog::new(10);
        for l in ["a", "b", "c"] {
            b.write(Some(l.into()), |_| Err(full()));
        }
        let mut n = 0;
        let mut file = Vec::new();
        let o = b.write(Some("d".into()), |l| {
            n += 1;
            if n == 2 {
                return Err(full());
            }
            file.push(l.to_string());
            Ok(())
        });
        assert_eq!(o, Outcome::StillFailing { waiting: 3 });
        assert_eq!(b.drain(), (vec!["b".into(), "c".into(), "d".into()], 0));
        assert_eq!(file, ["a"]);
    }
}
