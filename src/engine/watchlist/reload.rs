// SPDX-License-Identifier: MIT
//! Keeping a running matcher's watch list current: the file is checked for changes once per period,
//! a changed file is read, verified and indexed in a background thread, and the new index replaces
//! the old one only when all of that succeeded. A failed reload keeps the old list (and is not
//! retried until the file changes again). So does a *rollback*: a validly encrypted list whose
//! generation is lower than the one in use (an older copy put back in place of the current one,
//! bringing back people who were removed). A list file that is deleted empties the list in use:
//! whoever deletes a watch list wants matching to stop; it resumes when a list is back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant, SystemTime};

use super::file::Secret;
use super::index::Index;
use super::store::load;
use super::{WatchlistError, now};
use crate::engine::cosine::Similarity;

/// Everything needed to read a list and index it for one embedder model.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub secret: Secret,
    /// The embedder model the list must have been made with.
    pub model_id: String,
    pub similarity: Similarity,
}

/// (modified, length) of a file, to notice changes; `None` when it cannot be read.
pub type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// A list read and indexed, with the stamp of the file it came from.
#[derive(Debug)]
pub struct Loaded {
    pub index: Index,
    /// The list's write generation (see `Watchlist::generation`).
    pub generation: u64,
    stamp: Stamp,
}

impl Source {
    /// The file's stamp now: take it before [`Source::load`] and hand it to [`Reloader::apply`].
    pub fn stamp(&self) -> Stamp {
        stamp(&self.path)
    }

    /// Reads, verifies and indexes the list (blocking: decryption, and Argon2 for a passphrase).
    pub fn load(&self) -> Result<Loaded, WatchlistError> {
        let stamp = stamp(&self.path);
        let list = load(&self.path, &self.secret)?;
        if list.model_id != self.model_id {
            return Err(WatchlistError::ModelMismatch {
                path: self.path.clone(),
                list: list.model_id,
                expected: self.model_id.clone(),
            });
        }
        Ok(Loaded {
            index: Index::build(&list, &self.similarity, now()),
            generation: list.generation,
            stamp,
        })
    }
}

/// What a reload did.
#[derive(Debug)]
pub enum Outcome {
    /// The new list is in use; it holds this many identities.
    Reloaded(usize),
    /// The old list stays in use.
    Failed(WatchlistError),
    /// The file holds an older generation than the list in use: refused, the old list stays.
    Rollback { held: u64, found: u64 },
    /// The file was deleted: the list in use is now empty (nothing matches) until it is back.
    Deleted,
}

#[derive(Debug)]
pub struct Reloader {
    source: Arc<Source>,
    index: Index,
    generation: u64,
    /// Stamp of the file last read (successfully or not); `None` once it was deleted.
    stamp: Stamp,
    period: Duration,
    last_check: Instant,
    /// A background reload in progress delivers here.
    pending: Option<Receiver<(Stamp, Result<Loaded, WatchlistError>)>>,
}

impl Reloader {
    /// Loads the list now; fails when it cannot be used.
    pub fn open(source: Source, period: Duration) -> Result<Reloader, WatchlistError> {
        let loaded = source.load()?;
        Ok(Reloader {
            source: Arc::new(source),
            index: loaded.index,
            generation: loaded.generation,
            stamp: loaded.stamp,
            period,
            last_check: Instant::now(),
            pending: None,
        })
    }

    /// The list in use.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The generation of the list in use.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// What the list is read with, for a reload in the caller's thread (`source().load()`, then
    /// `apply`) that must not hold the caller's locks while it decrypts.
    pub fn source(&self) -> Arc<Source> {
        self.source.clone()
    }

    /// Call on every frame: collects a finished background reload, or, once per period, starts one
    /// when the file changed. Never blocks.
    pub fn poll(&mut self) -> Option<Outcome> {
        if let Some(rx) = &self.pending {
            match rx.try_recv() {
                Ok((before, result)) => {
                    self.pending = None;
                    return Some(self.apply(before, result));
                }
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => self.pending = None,
            }
        }
        if self.last_check.elapsed() < self.period {
            return None;
        }
        self.last_check = Instant::now();
        let now = stamp(&self.source.path);
        if now.is_none() {
            let gone = matches!(std::fs::metadata(&self.source.path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound);
            if gone && self.stamp.is_some() {
                self.stamp = None;
                self.index = Index::default();
                return Some(Outcome::Deleted);
            }
            return None;
        }
        if now == self.stamp {
            return None;
        }
        let (tx, rx) = channel();
        let source = self.source.clone();
        std::thread::spawn(move || {
            let _ = tx.send((now, source.load()));
        });
        self.pending = Some(rx);
        None
    }

    /// Puts a reload's result in use, or keeps the old list and remembers the stamp the bad file
    /// had before it was read (`before`, from [`Source::stamp`]), so that it is not read again until
    /// it changes (and a file still being written when it was read is read again once complete).
    pub fn apply(&mut self, before: Stamp, result: Result<Loaded, WatchlistError>) -> Outcome {
        match result {
            Ok(loaded) if loaded.generation < self.generation => {
                self.stamp = loaded.stamp;
                Outcome::Rollback {
                    held: self.generation,
                    found: loaded.generation,
                }
            }
            Ok(loaded) => {
                self.index = loaded.index;
                self.generation = loaded.generation;
                self.stamp = loaded.stamp;
                Outcome::Reloaded(self.index.len())
            }
            Err(e) => {
                self.stamp = before;
                Outcome::Failed(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::watchlist::store::save;
    use crate::engine::watchlist::{Identity, Watchlist};

    fn list(labels: &[&str]) -> Watchlist {
        let mut w = Watchlist::new("m:1");
        for (i, l) in labels.iter().enumerate() {
            w.identities.push(Identity::for_test(
                &format!("id{i}"),
                l,
                "m:1",
                vec![1.0, i as f32],
            ));
        }
        w
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fw-reload-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn source(path: &Path, model_id: &str) -> Source {
        Source {
            path: path.to_path_buf(),
            secret: Secret::Key([7; 32]),
            model_id: model_id.into(),
            similarity: Similarity::cosine(),
        }
    }

    /// Polls until a reload finished (the period is zero, so each poll checks the file).
    fn settle(r: &mut Reloader) -> Option<Outcome> {
        for _ in 0..500 {
            if let Some(o) = r.poll() {
                return Some(o);
            }
            if r.pending.is_none() && r.stamp == stamp(&r.source.path) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("reload did not finish");
    }

    /// A write that changes the stamp even within the file system's time resolution.
    fn rewrite(path: &Path, w: &Watchlist) {
        let mut w = w.clone();
        save(path, &mut w, &Secret::Key([7; 32])).unwrap();
        let t = SystemTime::now() + Duration::from_secs(2);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn a_changed_file_is_reloaded_in_the_background() {
        let d = dir("change");
        let p = d.join("w.fvl");
        rewrite(&p, &list(&["a"]));
        let mut r = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
        assert_eq!(r.index().len(), 1);
        assert!(settle(&mut r).is_none(), "unchanged file: no reload");
        rewrite(&p, &list(&["a", "b"]));
        assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(2))));
        assert_eq!(r.index().len(), 2);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_bad_file_keeps_the_old_list_and_is_not_retried() {
        let d = dir("bad");
        let p = d.join("w.fvl");
        rewrite(&p, &list(&["a", "b"]));
        let mut r = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
        std::fs::write(&p, b"garbage, not a list").unwrap();
        assert!(matches!(
            settle(&mut r),
            Some(Outcome::Failed(WatchlistError::NotAWatchlist { .. }))
        ));
        assert_eq!(r.index().len(), 2, "old list kept");
        assert!(
            settle(&mut r).is_none(),
            "the same bad file is not read again"
        );
        rewrite(&p, &list(&["c"]));
        assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(1))));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn another_model_is_refused_at_open_and_on_reload() {
        let d = dir("model");
        let p = d.join("w.fvl");
        rewrite(&p, &list(&["a"]));
        let e = Reloader::open(source(&p, "m:2"), Duration::ZERO).unwrap_err();
        assert!(matches!(e, WatchlistError::ModelMismatch { .. }), "{e}");
        let mut r = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
        let mut other = list(&["x", "y"]);
        other.model_id = "m:2".into();
        for i in &mut other.identities {
            i.descriptors[0].model_id = "m:2".into();
        }
        rewrite(&p, &other);
        assert!(matches!(
            settle(&mut r),
            Some(Outcome::Failed(WatchlistError::ModelMismatch { .. }))
        ));
        assert_eq!(r.index().len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_synchronous_reload_goes_through_apply() {
        let d = dir("sync");
        let p = d.join("w.fvl");
        rewrite(&p, &list(&["a"]));
        let mut r = Reloader::open(source(&p, "m:1"), Duration::from_secs(3600)).unwrap();
        rewrite(&p, &list(&["a", "b", "c"]));
        assert!(r.poll().is_none(), "period not over: no check");
        let before = r.source().stamp();
        let result = r.source().load();
        assert!(matches!(r.apply(before, result), Outcome::Reloaded(3)));
        assert_eq!(r.index().len(), 3);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_older_generation_put_back_is_refused() {
        let d = dir("rollback");
        let p = d.join("w.fvl");
        let mut w = list(&["a", "b"]);
        rewrite(&p, &w);
        let old_copy = std::fs::read(&p).unwrap();
        let mut r = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
        assert_eq!(r.generation(), 1);
        // "b" removed: generation 2
        w.generation = 1;
        w.identities.pop();
        rewrite(&p, &w);
        assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(1))));
        assert_eq!(r.generation(), 2);
        // the old copy (generation 1, validly encrypted) copied back over it
        std::fs::write(&p, &old_copy).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(4))
            .unwrap();
        assert!(matches!(
            settle(&mut r),
            Some(Outcome::Rollback { held: 2, found: 1 })
        ));
        assert_eq!(r.index().len(), 1, "b stays removed");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_deleted_list_stops_matching_until_it_is_back() {
        let d = dir("deleted");
        let p = d.join("w.fvl");
        let mut w = list(&["a", "b"]);
        rewrite(&p, &w);
        let mut r = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert!(matches!(settle(&mut r), Some(Outcome::Deleted)));
        assert!(r.index().is_empty());
        assert!(r.poll().is_none(), "said once");
        // put back, not older than the list last in use (a current backup): in use again
        w.generation = 1;
        rewrite(&p, &w);
        assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(2))));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_file_completed_after_a_failed_read_is_read_again() {
        let d = dir("partial");
        let p = d.join("w.fvl");
        rewrite(&p, &list(&["a"]));
        let mut r = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
        // A copy in progress: the reload reads half a file and fails...
        std::fs::write(&p, b"FWATCHL\0half").unwrap();
        let before = r.source().stamp();
        let failed = r.source().load();
        assert!(failed.is_err());
        // ...while the copy completes.
        rewrite(&p, &list(&["a", "b", "c"]));
        assert!(matches!(r.apply(before, failed), Outcome::Failed(_)));
        assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(3))));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
