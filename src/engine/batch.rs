// SPDX-License-Identifier: MIT
//! Sharing one model between the elements (cameras) of a process: runs taken in turn, first come
//! first served, and rows from several callers combined into one run.
//!
//! GStreamer-free; `runtime` puts both beside every shared session.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex, MutexGuard};

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// First-come-first-served turns at a resource with one or more seats (a pool of sessions):
/// callers get a seat in the order they asked for it (a plain mutex lets one busy thread take it
/// again and again, so under load one camera would starve the others).
#[derive(Debug)]
pub struct Turns {
    state: Mutex<TurnState>,
    turn: Condvar,
    seats: u64,
}

#[derive(Debug, Default)]
struct TurnState {
    /// The next ticket to hand out.
    next: u64,
    /// The next ticket to be seated.
    seated: u64,
    /// Callers seated now.
    busy: u64,
}

impl Default for Turns {
    fn default() -> Self {
        Turns::with_seats(1)
    }
}

/// Held while it is the caller's turn; the seat is free again when it drops.
#[derive(Debug)]
pub struct Turn<'a>(&'a Turns);

impl Turns {
    /// Turns at a resource that `seats` callers can use at once (at least one).
    pub fn with_seats(seats: usize) -> Turns {
        Turns {
            state: Mutex::new(TurnState::default()),
            turn: Condvar::new(),
            seats: seats.max(1) as u64,
        }
    }

    /// How many callers can hold a turn at once.
    pub fn seats(&self) -> usize {
        self.seats as usize
    }

    /// Callers holding or waiting for a turn now.
    pub fn queued(&self) -> u64 {
        let s = relock(&self.state);
        s.busy + (s.next - s.seated)
    }

    /// Waits for the caller's turn: every caller that asked before it is seated, and a seat is free.
    pub fn take(&self) -> Turn<'_> {
        let mut s = relock(&self.state);
        let ticket = s.next;
        s.next += 1;
        while s.seated != ticket || s.busy >= self.seats {
            s = self.turn.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.seated += 1;
        s.busy += 1;
        drop(s);
        // The next in line may find a seat free too.
        self.turn.notify_all();
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        relock(&self.0.state).busy -= 1;
        self.0.turn.notify_all();
    }
}

/// What one caller's rows went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shared {
    /// Rows in the run that carried them (the caller's and others').
    pub rows: usize,
    /// Callers whose rows were in that run (1: nobody else's).
    pub callers: usize,
}

struct Job {
    id: u64,
    row_len: usize,
    rows: Vec<f32>,
    n: usize,
}

type Done<E> = Result<(Vec<Vec<f32>>, Shared), E>;

/// The computation a combined run does: `n` rows in, `n` output rows out.
pub type RunRows<'a, E> = dyn FnMut(&[f32], usize) -> Result<Vec<Vec<f32>>, E> + 'a;

struct State<E> {
    next_id: u64,
    queue: Vec<Job>,
    running: bool,
    done: HashMap<u64, Done<E>>,
}

/// Combines the rows that callers bring while a run is going on into the next run ("group
/// commit"): a caller that finds the model idle runs at once, with no waiting for company; those
/// that arrive meanwhile go together in one batch, in the order they came. Each caller gets its own
/// rows' outputs back.
pub struct Combiner<E> {
    state: Mutex<State<E>>,
    ready: Condvar,
}

impl<E> Default for Combiner<E> {
    fn default() -> Self {
        Combiner {
            state: Mutex::new(State {
                next_id: 0,
                queue: Vec::new(),
                running: false,
                done: HashMap::new(),
            }),
            ready: Condvar::new(),
        }
    }
}

impl<E> std::fmt::Debug for Combiner<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Combiner").finish_non_exhaustive()
    }
}

impl<E: Clone> Combiner<E> {
    /// Runs `n` rows of `row_len` values (`rows`) through `run`, possibly together with other
    /// callers' rows of the same length; returns one output row per input row.
    ///
    /// `run(rows, n)` must return `n` outputs. Whoever leads a run runs its closure on everyone's
    /// rows, so all callers of one combiner must mean the same computation. A run holds at most
    /// `max_rows` rows (0 = no limit) unless one caller alone brings more. A panic in `run` becomes
    /// `panicked(..)` for each caller of that run.
    pub fn run(
        &self,
        row_len: usize,
        rows: &[f32],
        n: usize,
        max_rows: usize,
        run: &mut RunRows<'_, E>,
        panicked: fn(String) -> E,
    ) -> Done<E> {
        debug_assert_eq!(rows.len(), row_len * n);
        let mut s = relock(&self.state);
        let id = s.next_id;
        s.next_id += 1;
        s.queue.push(Job {
            id,
            row_len,
            rows: rows.to_vec(),
            n,
        });
        loop {
            if let Some(done) = s.done.remove(&id) {
                return done;
            }
            if s.running {
                s = self.ready.wait(s).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Lead the next run: the oldest job, and the following ones of its row length that fit.
            let first_len = s.queue[0].row_len;
            let mut total = 0;
            let mut batch = Vec::new();
            let mut i = 0;
            while i < s.queue.len() {
                let j = &s.queue[i];
                let fits = max_rows == 0 || total + j.n <= max_rows || batch.is_empty();
                if j.row_len == first_len && fits {
                    total += j.n;
                    batch.push(s.queue.remove(i));
                } else {
                    i += 1;
                }
            }
            s.running = true;
            drop(s);

            let all: Vec<f32> = if batch.len() == 1 {
                std::mem::take(&mut batch[0].rows)
            } else {
                batch.iter().flat_map(|j| j.rows.iter().copied()).collect()
            };
            let result = catch_unwind(AssertUnwindSafe(|| run(&all, total))).unwrap_or_else(|p| {
                let what = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(panicked(what))
            });

            s = relock(&self.state);
            let shared = Shared {
                rows: total,
                callers: batch.len(),
            };
            match result {
                Ok(out) if out.len() == total => {
                    let mut out = out.into_iter();
                    for j in &batch {
                        let mine: Vec<_> = out.by_ref().take(j.n).collect();
                        s.done.insert(j.id, Ok((mine, shared)));
                    }
                }
                Ok(out) => {
                    let e = panicked(format!("{} outputs for {total} rows", out.len()));
                    for j in &batch {
                        s.done.insert(j.id, Err(e.clone()));
                    }
                }
                Err(e) => {
                    for j in &batch {
                        s.done.insert(j.id, Err(e.clone()));
                    }
                }
            }
            s.running = false;
            self.ready.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// One output per row: the row's sum, and the row's length.
    fn sums(rows: &[f32], n: usize) -> Vec<Vec<f32>> {
        let len = rows.len() / n.max(1);
        rows.chunks_exact(len.max(1))
            .map(|r| vec![r.iter().sum(), len as f32])
            .collect()
    }

    #[test]
    fn callers_get_their_own_rows_back_and_arrivals_during_a_run_share_the_next() {
        let c: Arc<Combiner<String>> = Arc::default();
        let runs = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (c, runs) = (c.clone(), runs.clone());
                std::thread::spawn(move || {
                    let mut shared = Vec::new();
                    for k in 0..20 {
                        let n = 1 + (t + k) % 3;
                        let rows: Vec<f32> =
                            (0..n * 4).map(|i| (t * 1000 + k * 10 + i) as f32).collect();
                        let (out, s) = c
                            .run(
                                4,
                                &rows,
                                n,
                                0,
                                &mut |r, n| {
                                    runs.lock().unwrap().push(n);
                                    std::thread::sleep(Duration::from_millis(2));
                                    Ok(sums(r, n))
                                },
                                |e| e,
                            )
                            .unwrap();
                        assert_eq!(out, sums(&rows, n), "thread {t} job {k}");
                        shared.push(s);
                    }
                    shared
                })
            })
            .collect();
        let shared: Vec<Shared> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let runs = runs.lock().unwrap();
        let rows: usize = runs.iter().sum();
        let want: usize = (0..8usize)
            .flat_map(|t| (0..20).map(move |k| 1 + (t + k) % 3))
            .sum();
        assert_eq!(rows, want);
        assert!(
            runs.len() < 160,
            "{} runs for 160 jobs: nothing combined",
            runs.len()
        );
        assert!(shared.iter().any(|s| s.callers > 1));
    }

    #[test]
    fn limits_errors_and_panics_reach_every_caller_of_the_run() {
        let c: Combiner<String> = Combiner::default();
        // Alone: runs at once, limit does not split one caller's rows.
        let (out, s) = c
            .run(
                2,
                &[1.0, 2.0, 3.0, 4.0],
                2,
                1,
                &mut |r, n| Ok(sums(r, n)),
                |e| e,
            )
            .unwrap();
        assert_eq!(out, vec![vec![3.0, 2.0], vec![7.0, 2.0]]);
        assert_eq!(
            s,
            Shared {
                rows: 2,
                callers: 1
            }
        );
        let e = c.run(
            2,
            &[1.0, 2.0],
            1,
            0,
            &mut |_, _| Err("bad".to_string()),
            |e| e,
        );
        assert_eq!(e.unwrap_err(), "bad");
        let p = c.run(2, &[1.0, 2.0], 1, 0, &mut |_, _| panic!("boom"), |e| {
            format!("panicked: {e}")
        });
        assert_eq!(p.unwrap_err(), "panicked: boom");
        let short = c.run(2, &[1.0, 2.0], 1, 0, &mut |_, _| Ok(vec![]), |e| e);
        assert!(short.unwrap_err().contains("0 outputs for 1 rows"));
        // Still usable afterwards.
        assert!(
            c.run(1, &[5.0], 1, 0, &mut |r, n| Ok(sums(r, n)), |e| e)
                .is_ok()
        );
    }

    #[test]
    fn turns_are_served_in_order_of_asking() {
        let turns = Arc::new(Turns::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = turns.take();
        assert_eq!(turns.queued(), 1);
        let waiting: Vec<_> = (0..4)
            .map(|i| {
                // Each asks only after the previous one is queued.
                let (mine, order) = (turns.clone(), order.clone());
                let h = std::thread::spawn(move || {
                    let _t = mine.take();
                    order.lock().unwrap().push(i);
                });
                while relock(&turns.state).next < i + 2 {
                    std::thread::yield_now();
                }
                h
            })
            .collect();
        drop(first);
        for h in waiting {
            h.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn two_seats_hold_two_callers_at_once_in_order_of_asking() {
        let turns = Arc::new(Turns::with_seats(2));
        assert_eq!(turns.seats(), 2);
        let a = turns.take();
        let b = turns.take();
        assert_eq!(turns.queued(), 2);
        let order = Arc::new(Mutex::new(Vec::new()));
        let waiting: Vec<_> = (0..3)
            .map(|i| {
                let (mine, order) = (turns.clone(), order.clone());
                let h = std::thread::spawn(move || {
                    let t = mine.take();
                    order.lock().unwrap().push(i);
                    // Hold the seat until the test has seen who got in.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    drop(t);
                });
                while relock(&turns.state).next < i + 3 {
                    std::thread::yield_now();
                }
                h
            })
            .collect();
        // Both seats taken: nobody else got in.
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert!(order.lock().unwrap().is_empty());
        assert_eq!(turns.queued(), 5);
        drop(a);
        // One seat free: the first waiter, and only it.
        while order.lock().unwrap().is_empty() {
            std::thread::yield_now();
        }
        assert_eq!(order.lock().unwrap()[0], 0);
        drop(b);
        for h in waiting {
            h.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
        assert_eq!(turns.queued(), 0);
    }
}
