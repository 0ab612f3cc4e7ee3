// SPDX-License-Identifier: MIT
//! The watch list: identities kept only as descriptors, in an encrypted and authenticated file
//! (format in docs/WATCHLIST.md), written atomically under a lock, and searched exactly (1:N).

pub mod file;
pub mod index;
pub mod reload;
pub mod store;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One descriptor and the embedder model it was made with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    pub model_id: String,
    pub vector: Vec<f32>,
}

/// A person on the list. Never an image: only descriptors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Random id (UUID v4 form).
    pub id: String,
    pub label: String,
    /// Why the person is on the list.
    pub note: Option<String>,
    /// Who enrolled them.
    pub added_by: String,
    /// Unix seconds.
    pub added_at: i64,
    /// Unix seconds; past it the identity never matches and `purge-expired` removes it.
    pub expires_at: Option<i64>,
    pub descriptors: Vec<Descriptor>,
    /// Alerts stopped (`faceveil suspend`): kept on the list, never matched until resumed. Format
    /// version 4 (older files read as not suspended).
    pub suspended: bool,
}

impl Identity {
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Whether the identity may match at `now`: neither expired nor suspended. The one rule of
    /// who is searched ([`index::Index::build`]).
    pub fn active(&self, now: i64) -> bool {
        !self.suspended && !self.expired(now)
    }

    /// A test identity: one descriptor `vector` of `model_id`, added at 0 by "test", no expiry.
    #[cfg(test)]
    pub(crate) fn for_test(id: &str, label: &str, model_id: &str, vector: Vec<f32>) -> Identity {
        Identity {
            id: id.into(),
            label: label.into(),
            note: None,
            added_by: "test".into(),
            added_at: 0,
            expires_at: None,
            descriptors: vec![Descriptor {
                model_id: model_id.into(),
                vector,
            }],
            suspended: false,
        }
    }
}

/// The decrypted content of a watch-list file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Watchlist {
    /// The embedder model every descriptor must come from (`name:sha256-prefix`).
    pub model_id: String,
    /// Unix seconds.
    pub created_at: i64,
    pub identities: Vec<Identity>,
    /// Counts every write of the list, authenticated with it: a reader that has seen generation N
    /// refuses an older copy (N' < N) put back in its place. 0 in format version 1 files.
    pub generation: u64,
    /// Unix seconds of the last write (0 in format version 1 files).
    pub written_at: i64,
    /// Retention: seconds from enrolment after which a person enrolled without an expiry of their
    /// own expires (`init --default-expiry`). Format version 3.
    pub default_expiry: Option<u64>,
    /// The audit log's head when the list was last written (format version 3): a log cut short
    /// or rewritten since is found by `faceveil audit verify`.
    pub audit: Option<crate::engine::audit::Head>,
}

impl Watchlist {
    /// The list with its creation time set (for reading older formats).
    fn created(mut self, at: i64) -> Self {
        self.created_at = at;
        self
    }

    pub fn new(model_id: &str) -> Self {
        Watchlist {
            model_id: model_id.to_string(),
            created_at: now(),
            identities: Vec::new(),
            generation: 0,
            written_at: 0,
            default_expiry: None,
            audit: None,
        }
    }

    /// Checks that every descriptor comes from the list's model and has one dimension.
    pub fn check_models(&self) -> Result<(), String> {
        let mut dim = None;
        for i in &self.identities {
            for d in &i.descriptors {
                if d.model_id != self.model_id {
                    return Err(format!(
                        "identity {} has a descriptor from model {}, the list is for {}",
                        i.id, d.model_id, self.model_id
                    ));
                }
                if *dim.get_or_insert(d.vector.len()) != d.vector.len() {
                    return Err(format!(
                        "identity {} has descriptors of different sizes",
                        i.id
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A random id in UUID v4 form.
pub fn new_id() -> Result<String, WatchlistError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| WatchlistError::Random(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Everything that can go wrong with a watch list, each naming the file. The variants are distinct
/// so that scripts and elements can tell them apart.
#[derive(Debug)]
pub enum WatchlistError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Shorter than its header says.
    Truncated {
        path: PathBuf,
    },
    NotAWatchlist {
        path: PathBuf,
    },
    /// Written by a newer faceveil.
    FutureVersion {
        path: PathBuf,
        version: u16,
    },
    /// The key does not open this list (key check differs): a wrong key, or a changed key check.
    WrongKey {
        path: PathBuf,
    },
    /// Not a regular file (a FIFO, a device, a directory).
    NotAFile {
        path: PathBuf,
    },
    /// Larger than any list this machine could hold in memory.
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// Another writer held the lock for longer than the wait allowed.
    LockTimeout {
        path: PathBuf,
        holder: Option<u32>,
        waited_s: u64,
    },
    /// The key is right but the content fails authentication: changed after it was written.
    Tampered {
        path: PathBuf,
    },
    /// Structurally invalid content (plaintext lists, or a bug).
    Corrupt {
        path: PathBuf,
        reason: String,
    },
    /// The list is encrypted and no key was given, or plaintext and plaintext was not allowed.
    Mode {
        path: PathBuf,
        reason: String,
    },
    /// Made with another embedder model than the one in use.
    ModelMismatch {
        path: PathBuf,
        list: String,
        expected: String,
    },
    /// A key file or key variable that is not a key.
    BadKey {
        source: String,
        reason: String,
    },
    Random(String),
}

impl fmt::Display for WatchlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use WatchlistError::*;
        match self {
            Io { path, error } => write!(f, "watch list {}: {error}", path.display()),
            Truncated { path } => write!(
                f,
                "watch list {} is truncated (shorter than its header says); restore it from a backup",
                path.display()
            ),
            NotAWatchlist { path } => write!(f, "{} is not a faceveil watch list", path.display()),
            FutureVersion { path, version } => write!(
                f,
                "watch list {} has format version {version}, newer than this faceveil reads ({}); upgrade faceveil",
                path.display(),
                file::VERSION
            ),
            WrongKey { path } => write!(
                f,
                "watch list {}: the key does not open it: a wrong key (key file, FACEVEIL_KEY or \
                 passphrase), or the file's key check was altered (tampering); try the right key, \
                 else restore the list from a backup",
                path.display()
            ),
            NotAFile { path } => write!(
                f,
                "watch list {}: not a regular file (a FIFO, device or directory); refused",
                path.display()
            ),
            TooLarge { path, size, limit } => write!(
                f,
                "watch list {}: {size} bytes, more than the {limit} bytes a list may have on this \
                 machine; refused",
                path.display()
            ),
            LockTimeout {
                path,
                holder,
                waited_s,
            } => write!(
                f,
                "watch list {}: gave up after {waited_s} s waiting for the lock held by {}; \
                 retry later, or give --wait more seconds",
                path.display(),
                holder.map_or("another process".to_string(), |p| format!("process {p}"))
            ),
            Tampered { path } => write!(
                f,
                "watch list {} failed authentication: it was changed after it was written (tampered or damaged); restore it from a backup",
                path.display()
            ),
            Corrupt { path, reason } => {
                write!(f, "watch list {} is corrupt: {reason}", path.display())
            }
            Mode { path, reason } => write!(f, "watch list {}: {reason}", path.display()),
            ModelMismatch {
                path,
                list,
                expected,
            } => write!(
                f,
                "watch list {} was made with embedder model {list}, but the model in use is {expected}; re-enroll with this model",
                path.display()
            ),
            BadKey { source, reason } => write!(f, "key {source}: {reason}"),
            Random(e) => write!(f, "no randomness from the system: {e}"),
        }
    }
}

impl std::error::Error for WatchlistError {}

impl WatchlistError {
    /// The CLI's exit code for this error (documented in docs/WATCHLIST.md).
    pub fn exit_code(&self) -> i32 {
        use WatchlistError::*;
        match self {
            Io { .. } | Random(_) => 3,
            Truncated { .. }
            | NotAWatchlist { .. }
            | Corrupt { .. }
            | NotAFile { .. }
            | TooLarge { .. } => 4,
            LockTimeout { .. } => 10,
            Tampered { .. } => 5,
            WrongKey { .. } | BadKey { .. } | Mode { .. } => 6,
            FutureVersion { .. } | ModelMismatch { .. } => 7,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_uuid_v4() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn model_check() {
        let mut w = Watchlist::new("m:1");
        w.identities.push(Identity {
            id: "x".into(),
            label: "l".into(),
            note: None,
            added_by: "t".into(),
            added_at: 0,
            expires_at: Some(10),
            descriptors: vec![Descriptor {
                model_id: "m:1".into(),
                vector: vec![1.0],
            }],
            suspended: false,
        });
        assert!(w.check_models().is_ok());
        assert!(w.identities[0].expired(10) && !w.identities[0].expired(9));
        assert!(w.identities[0].active(9) && !w.identities[0].active(10));
        w.identities[0].suspended = true;
        assert!(
            !w.identities[0].active(9),
            "a suspended identity is not active"
        );
        assert!(!w.identities[0].expired(9), "suspended is not expired");
        w.identities[0].descriptors.push(Descriptor {
            model_id: "m:2".into(),
            vector: vec![1.0],
        });
        assert!(w.check_models().unwrap_err().contains("m:2"));
    }
}
