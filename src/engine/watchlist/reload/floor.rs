// SPDX-License-Identifier: MIT
//! The rollback floor kept across restarts: the highest generation of each watch list that a
//! matcher on this machine has used, in a state file (`<state dir>/generations.json`, one entry per
//! list, keyed by the list's real path). A matcher that starts, or restarts after a camera dropped,
//! refuses a list older than that, as a running one refuses an older copy put back.
//!
//! The file is rewritten atomically (`store::write_atomic`) under `store::Lock`, read, merged and
//! maxed there, so that the cameras of one runner sharing a list never lower each other's entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::watchlist::WatchlistError;
use crate::engine::watchlist::store::{Lock, Wait, real_path, write_atomic};

/// The state file's name in the state directory.
pub const STATE_FILE: &str = "generations.json";

/// How long a matcher waits for another one updating the state file.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// One list's entry in one state directory.
#[derive(Debug, Clone)]
pub struct Floor {
    file: PathBuf,
    /// The list's real path (symlinks resolved): the entry's key.
    list: String,
}

impl Floor {
    /// The entry of `list` in `state_dir`'s state file.
    pub fn new(state_dir: &Path, list: &Path) -> Result<Floor, WatchlistError> {
        Ok(Floor {
            file: state_dir.join(STATE_FILE),
            list: real_path(list)?.to_string_lossy().into_owned(),
        })
    }

    /// The state file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The list's real path, as the state file names it.
    pub fn list(&self) -> &str {
        &self.list
    }

    fn read_all(&self) -> Result<BTreeMap<String, u64>, WatchlistError> {
        match std::fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| WatchlistError::Corrupt {
                path: self.file.clone(),
                reason: format!("not a faceveil state file ({e})"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(error) => Err(WatchlistError::Io {
                path: self.file.clone(),
                error,
            }),
        }
    }

    /// The highest generation recorded for the list (0: none).
    pub fn get(&self) -> Result<u64, WatchlistError> {
        Ok(self.read_all()?.get(&self.list).copied().unwrap_or(0))
    }

    /// Records that `generation` is in use unless a higher one is recorded; returns the entry
    /// after (higher than `generation`: an older list, to be refused).
    pub fn raise(&self, generation: u64) -> Result<u64, WatchlistError> {
        self.update(|held| {
            let raised = (*held).max(generation);
            let changed = raised != *held;
            *held = raised;
            changed
        })
    }

    /// Sets the list's entry to `generation`, lower or not (a deliberate restore).
    pub fn set(&self, generation: u64) -> Result<u64, WatchlistError> {
        self.update(|held| {
            *held = generation;
            true
        })
    }

    /// Changes the list's entry under the lock (`f` says whether it changed, then it is written);
    /// returns the entry after.
    fn update(&self, f: impl FnOnce(&mut u64) -> bool) -> Result<u64, WatchlistError> {
        let _lock = Lock::acquire(&self.file, &Wait::quiet(LOCK_WAIT))?;
        let mut all = self.read_all()?;
        let held = all.entry(self.list.clone()).or_insert(0);
        if !f(held) {
            return Ok(*held);
        }
        let after = *held;
        let mut bytes = serde_json::to_vec_pretty(&all).map_err(|e| WatchlistError::Corrupt {
            path: self.file.clone(),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        write_atomic(&self.file, &bytes)?;
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fw-floor-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_floor_only_rises_and_is_kept_per_list() {
        let d = dir("rise");
        let (a, b) = (d.join("a.fvl"), d.join("b.fvl"));
        let fa = Floor::new(&d, &a).unwrap();
        let fb = Floor::new(&d, &b).unwrap();
        assert_eq!(fa.get().unwrap(), 0);
        assert_eq!(fa.raise(5).unwrap(), 5);
        assert_eq!(
            fa.raise(3).unwrap(),
            5,
            "an older generation does not lower it"
        );
        assert_eq!(fb.raise(2).unwrap(), 2);
        // a new Floor (a restart) reads what was recorded
        assert_eq!(Floor::new(&d, &a).unwrap().get().unwrap(), 5);
        assert_eq!(fb.get().unwrap(), 2);
        fa.set(1).unwrap();
        assert_eq!(fa.get().unwrap(), 1);
        assert_eq!(fb.get().unwrap(), 2);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_symlinked_list_shares_the_entry_of_the_real_one() {
        let d = dir("link");
        let real = d.join("w.fvl");
        std::fs::write(&real, b"x").unwrap();
        std::os::unix::fs::symlink(&real, d.join("link.fvl")).unwrap();
        Floor::new(&d, &real).unwrap().raise(7).unwrap();
        assert_eq!(
            Floor::new(&d, &d.join("link.fvl")).unwrap().get().unwrap(),
            7
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn concurrent_raises_keep_the_highest() {
        let d = dir("race");
        let list = d.join("w.fvl");
        let threads: Vec<_> = (1..=8u64)
            .map(|g| {
                let f = Floor::new(&d, &list).unwrap();
                std::thread::spawn(move || {
                    for i in 0..5 {
                        f.raise(g * 10 + i).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(Floor::new(&d, &list).unwrap().get().unwrap(), 84);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_damaged_state_file_is_an_error_not_a_zero() {
        let d = dir("bad");
        std::fs::write(d.join(STATE_FILE), b"not json").unwrap();
        let f = Floor::new(&d, &d.join("w.fvl")).unwrap();
        assert!(matches!(f.get(), Err(WatchlistError::Corrupt { .. })));
        assert!(f.raise(3).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
