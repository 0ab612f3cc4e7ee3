// SPDX-License-Identifier: MIT
//! Keeping a running matcher's watch list current: the list file and the key file are checked for
//! changes once per period (any change: contents, owner, group, mode, a file renamed over them), a
//! change starts a reload in a background thread that reads the key file again, reads, verifies and
//! indexes the list, and the new index replaces the old one only when all of that succeeded. A
//! failed reload keeps the old list (and is not retried until either file changes again: a `chgrp`
//! or `chmod` that makes the list readable is a change). So does a *rollback*: a validly encrypted
//! list whose generation is lower than the one in use, or than the highest one recorded in the
//! state directory ([`floor`], across restarts): an older copy put back in place of the current
//! one, bringing back people who were removed. A list file that is deleted empties the list in use:
//! whoever deletes a watch list wants matching to stop; it resumes when a list is back.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use super::index::Index;
use super::store::load;
use super::{WatchlistError, now};
use crate::engine::cosine::Similarity;
use floor::Floor;

pub mod floor;

pub use super::store::Key;

/// Everything needed to read a list and index it for one embedder model.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub key: Key,
    /// The embedder model whose descriptors are searched (the list may hold others too).
    pub model_id: String,
    pub similarity: Similarity,
    /// The rollback floor kept across restarts (see [`floor`]); `None`: in memory only.
    pub floor: Option<Floor>,
}

/// What identifies one version of a file: any change to it (contents, owner, group, mode, a new
/// file renamed over it) changes one of these; the change time (`ctime`) cannot be set back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    ctime: (i64, i64),
    mtime: (i64, i64),
    len: u64,
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        dev: m.dev(),
        ino: m.ino(),
        ctime: (m.ctime(), m.ctime_nsec()),
        mtime: (m.mtime(), m.mtime_nsec()),
        len: m.len(),
    })
}

/// The list file's stamp and, when the key comes from a file, the key file's (`None` when it cannot
/// be read), to notice changes of either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamps {
    list: FileStamp,
    key: Option<FileStamp>,
}

/// `None` when the list file cannot be read.
pub type Stamp = Option<Stamps>;

/// A list read and indexed, with the stamp of the file it came from.
#[derive(Debug)]
pub struct Loaded {
    pub index: Index,
    /// The list's write generation (see `Watchlist::generation`).
    pub generation: u64,
    /// The highest generation of this list used on this machine (the state file's entry, raised to
    /// `generation` unless it was higher; 0 without a state file).
    pub floor: u64,
    /// The state file could not be updated (a full disk, its lock held): the list is at or above
    /// the floor read (or the state file could not be read at all), so it is used, and this is
    /// said loudly.
    pub floor_error: Option<WatchlistError>,
    stamp: Stamp,
}

impl Source {
    /// The files' stamp now: take it before [`Source::load`] and hand it to [`Reloader::apply`].
    pub fn stamp(&self) -> Stamp {
        Some(Stamps {
            list: file_stamp(&self.path)?,
            key: self.key.file().and_then(file_stamp),
        })
    }

    /// Reads the key (from its file, every time), then reads, verifies and indexes the list
    /// (blocking: decryption, and Argon2 for a passphrase). A list with people but no descriptor
    /// of the model is refused ([`WatchlistError::ModelMismatch`]); the people of a list who lack
    /// the model's descriptors are counted ([`Index::without_model`]).
    pub fn load(&self) -> Result<Loaded, WatchlistError> {
        let stamp = self.stamp();
        let list = self.key.with_secret(|secret| load(&self.path, secret))?;
        list.check_covers(&self.path, &self.model_id)?;
        let (floor, floor_error) = match &self.floor {
            Some(f) => match f.raise(list.generation) {
                Ok(held) => (held, None),
                // Not raised: compare with what it holds, if it can be read. A removal must not
                // wait for a full state disk; an older list is still refused.
                Err(e) => (f.get().unwrap_or(0), Some(e)),
            },
            None => (0, None),
        };
        Ok(Loaded {
            index: Index::build(&list, &self.model_id, &self.similarity, now()),
            generation: list.generation,
            floor,
            floor_error,
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
    /// The file holds an older generation than the list in use (or than the one recorded in the
    /// state file): refused, the old list stays.
    Rollback { held: u64, found: u64 },
    /// The file was deleted: the list in use is now empty (nothing matches) until it is back.
    Deleted,
    /// The new list is in use (this many identities), but the rollback floor could not be saved
    /// in the state file: after a restart an older copy would not be refused until it is.
    ReloadedFloorNotSaved(usize, WatchlistError),
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
    /// Reloads that failed, and older lists refused, since open.
    failed: u64,
    refused: u64,
    /// The list file could not be looked at (stat failed, not by its absence) at the last check.
    unreachable: bool,
    /// The last background reload met a wrong key and was not reported yet (see `poll`).
    wrong_key_deferred: bool,
}

/// Why a list cannot be opened.
#[derive(Debug)]
pub enum OpenError {
    List(WatchlistError),
    /// Older than the generation the state file records as used on this machine.
    Rollback {
        path: PathBuf,
        state: PathBuf,
        held: u64,
        found: u64,
    },
}

impl From<WatchlistError> for OpenError {
    fn from(e: WatchlistError) -> Self {
        OpenError::List(e)
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::List(e) => e.fmt(f),
            OpenError::Rollback {
                path,
                state,
                held,
                found,
            } => write!(
                f,
                "watch list {} is generation {found}, older than generation {held} already used on \
                 this machine (recorded in {}): an older copy put back is refused. Put the current \
                 list back, or restore this one deliberately with 'faceveil restore' (docs/WATCHLIST.md)",
                path.display(),
                state.display()
            ),
        }
    }
}

impl std::error::Error for OpenError {}

impl Reloader {
    /// Loads the list now; fails when it cannot be used, or is older than its floor.
    pub fn open(source: Source, period: Duration) -> Result<Reloader, OpenError> {
        let mut loaded = source.load()?;
        // At start the state file must work: a camera that cannot record what it uses refuses
        // to start, naming the file (a reload only warns, see `apply`).
        if let Some(e) = loaded.floor_error.take() {
            return Err(e.into());
        }
        if loaded.generation < loaded.floor {
            return Err(OpenError::Rollback {
                state: source
                    .floor
                    .as_ref()
                    .map(|f| f.file().to_path_buf())
                    .unwrap_or_default(),
                path: source.path,
                held: loaded.floor,
                found: loaded.generation,
            });
        }
        Ok(Reloader {
            source: Arc::new(source),
            index: loaded.index,
            generation: loaded.generation,
            stamp: loaded.stamp,
            period,
            last_check: Instant::now(),
            pending: None,
            failed: 0,
            refused: 0,
            unreachable: false,
            wrong_key_deferred: false,
        })
    }

    /// The list in use.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The warning owed while people of the list in use cannot be matched under its model (they
    /// have no descriptors of it, [`Index::without_model`]): how many, and the command that adds
    /// them. `None` when everyone can be.
    pub fn without_model_warning(&self) -> Option<String> {
        let missing = self.index.without_model();
        (missing > 0).then(|| {
            format!(
                "{missing} of {} people on watch list {} have no descriptors of embedder model {} \
                 and are never matched under it: add them with 'faceveil enroll --model {} \
                 --label LABEL PHOTO…' for each",
                missing + self.index.len(),
                self.source.path.display(),
                self.source.model_id,
                super::model_file(&self.source.model_id)
            )
        })
    }

    /// The generation of the list in use.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Reloads that failed (the old list kept) and older lists refused, since open.
    pub fn failures(&self) -> (u64, u64) {
        (self.failed, self.refused)
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
                    // `faceveil rekey` writes the list under the new key, then renames the new key
                    // file into place: a reload in between meets the new list with the old key.
                    // It is read once more at the next check (the stamp is not taken) before that
                    // counts as a failure.
                    let wrong_key = matches!(result, Err(WatchlistError::WrongKey { .. }));
                    if wrong_key && !self.wrong_key_deferred && self.source.key.file().is_some() {
                        self.wrong_key_deferred = true;
                        return None;
                    }
                    self.wrong_key_deferred = false;
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
        let now = self.source.stamp();
        if now.is_none() {
            match std::fs::metadata(&self.source.path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.stamp.is_some() => {
                    self.stamp = None;
                    self.index = Index::default();
                    return Some(Outcome::Deleted);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // The file cannot even be looked at (its directory's permissions changed): the
                // old list stays in use, and that is said once, until it can be looked at again.
                Err(e) if !self.unreachable => {
                    self.unreachable = true;
                    self.failed += 1;
                    return Some(Outcome::Failed(WatchlistError::Io {
                        path: self.source.path.clone(),
                        error: e,
                    }));
                }
                _ => {}
            }
            return None;
        }
        self.unreachable = false;
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
            Ok(loaded) if loaded.generation < self.generation.max(loaded.floor) => {
                self.stamp = loaded.stamp;
                self.refused += 1;
                Outcome::Rollback {
                    held: self.generation.max(loaded.floor),
                    found: loaded.generation,
                }
            }
            Ok(loaded) => {
                self.index = loaded.index;
                self.generation = loaded.generation;
                self.stamp = loaded.stamp;
                match loaded.floor_error {
                    None => Outcome::Reloaded(self.index.len()),
                    Some(e) => {
                        self.failed += 1;
                        Outcome::ReloadedFloorNotSaved(self.index.len(), e)
                    }
                }
            }
            Err(e) => {
                self.stamp = before;
                self.failed += 1;
                Outcome::Failed(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;
