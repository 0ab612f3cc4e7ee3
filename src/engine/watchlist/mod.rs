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
    /// Listed (looked for) or known (never alerted on). Format version 6 (older files read as
    /// everyone listed).
    pub role: Role,
}

/// What a person is on the list for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Looked for: a face that matches them is an alert.
    #[default]
    Listed,
    /// Known and never alerted on (the household, staff, a look-alike of someone listed): a face
    /// that scores as close to them as to the best listed person, within the matcher's known
    /// margin, is no alert ([`crate::engine::matcher::decide`]).
    Known,
}

impl Role {
    /// As `faceveil list` and the docs name it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Listed => "listed",
            Role::Known => "known",
        }
    }
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

    pub fn known(&self) -> bool {
        self.role == Role::Known
    }

    /// Whether the identity has descriptors of `model`.
    pub fn has_model(&self, model: &str) -> bool {
        self.descriptors.iter().any(|d| d.model_id == model)
    }

    /// The embedder models of the identity's descriptors, in the order they were added, each with
    /// its number of descriptors.
    pub fn models(&self) -> Vec<(&str, usize)> {
        let mut m: Vec<(&str, usize)> = Vec::new();
        for d in &self.descriptors {
            match m.iter_mut().find(|(id, _)| *id == d.model_id) {
                Some((_, n)) => *n += 1,
                None => m.push((&d.model_id, 1)),
            }
        }
        m
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
            role: Role::Listed,
        }
    }
}

/// The decrypted content of a watch-list file. It holds descriptors of any number of embedder
/// models, each descriptor naming its own ([`Descriptor::model_id`]): a matcher uses those of its
/// model ([`index::Index::build`]), and the list covers whichever models its descriptors come from
/// ([`Watchlist::models`]). Format version 5; older files held one model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Watchlist {
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

/// How far a list can be matched under one embedder model: of the people who may match (neither
/// suspended nor expired), those with descriptors of the model, and those without (who never match
/// under it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub covered: usize,
    pub missing: usize,
}

impl Watchlist {
    /// An empty list created now: it covers no model until someone is enrolled.
    pub fn new() -> Self {
        Watchlist {
            created_at: now(),
            ..Default::default()
        }
    }

    /// The embedder models the list's descriptors come from, sorted (none for a list without
    /// descriptors).
    pub fn models(&self) -> Vec<&str> {
        let mut m: Vec<&str> = (self.identities.iter())
            .flat_map(|i| i.descriptors.iter().map(|d| d.model_id.as_str()))
            .collect();
        m.sort_unstable();
        m.dedup();
        m
    }

    /// Whether anyone on the list is a known person (a list that holds one is written in format
    /// version 6, which older readers refuse rather than alert on them).
    pub fn has_known(&self) -> bool {
        self.identities.iter().any(Identity::known)
    }

    /// How many of the people active at `now` have descriptors of `model`, and how many have none
    /// (what [`index::Index::without_model`] counts too).
    pub fn coverage(&self, model: &str, now: i64) -> Coverage {
        let mut c = Coverage::default();
        for i in self.identities.iter().filter(|i| i.active(now)) {
            match i.has_model(model) {
                true => c.covered += 1,
                false => c.missing += 1,
            }
        }
        c
    }

    /// Checks that the list, read from `path`, can be matched under `model`: it is empty, or
    /// someone on it (suspended and expired people too) has descriptors of the model. Else [`WatchlistError::ModelMismatch`], which
    /// names the models the list covers and the command that adds the missing one.
    pub fn check_covers(&self, path: &std::path::Path, model: &str) -> Result<(), WatchlistError> {
        if self.identities.is_empty() || self.identities.iter().any(|i| i.has_model(model)) {
            return Ok(());
        }
        Err(WatchlistError::ModelMismatch {
            path: path.to_path_buf(),
            covers: self.models().into_iter().map(String::from).collect(),
            expected: model.to_string(),
        })
    }

    /// Checks that the descriptors of each model all have one dimension, and name their model.
    pub fn check_models(&self) -> Result<(), String> {
        let mut dims: Vec<(&str, usize)> = Vec::new();
        for i in &self.identities {
            for d in &i.descriptors {
                if d.model_id.is_empty() {
                    return Err(format!(
                        "identity {} has a descriptor without a model",
                        i.id
                    ));
                }
                let dim = match dims.iter().find(|(m, _)| *m == d.model_id) {
                    Some(&(_, n)) => n,
                    None => {
                        dims.push((&d.model_id, d.vector.len()));
                        d.vector.len()
                    }
                };
                if dim != d.vector.len() {
                    return Err(format!(
                        "identity {} has descriptors of model {} of different sizes",
                        i.id, d.model_id
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
    /// People on the list, but none with descriptors of the embedder model in use.
    ModelMismatch {
        path: PathBuf,
        /// The models the list has descriptors of.
        covers: Vec<String>,
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
                covers,
                expected,
            } => write!(
                f,
                "watch list {} has no descriptors of embedder model {expected}, the model in use \
                 (it covers {}): add them with 'faceveil enroll --model {} --label LABEL PHOTO…' \
                 for each person (docs/WATCHLIST.md), or use a model it covers",
                path.display(),
                covers.join(", "),
                model_file(expected)
            ),
            BadKey { source, reason } => write!(f, "key {source}: {reason}"),
            Random(e) => write!(f, "no randomness from the system: {e}"),
        }
    }
}

impl std::error::Error for WatchlistError {}

/// The file name a model id's model is installed under (`dlib_resnet-int8:0123…` →
/// `dlib_resnet-int8.onnx`): what `faceveil --model` is given.
pub fn model_file(model_id: &str) -> String {
    let name = model_id.split_once(':').map_or(model_id, |(n, _)| n);
    format!("{name}.onnx")
}

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
        let mut w = Watchlist::new();
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
            role: Role::Listed,
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
        // another model, of another size: one list holds both
        w.identities[0].descriptors.push(Descriptor {
            model_id: "m:2".into(),
            vector: vec![1.0, 0.0],
        });
        assert!(w.check_models().is_ok());
        w.identities[0].descriptors.push(Descriptor {
            model_id: "m:2".into(),
            vector: vec![1.0],
        });
        assert!(w.check_models().unwrap_err().contains("m:2"));
        w.identities[0].descriptors.pop();
        w.identities[0].descriptors.push(Descriptor {
            model_id: String::new(),
            vector: vec![1.0],
        });
        assert!(w.check_models().unwrap_err().contains("without a model"));
    }

    #[test]
    fn models_and_coverage() {
        let mut w = Watchlist::new();
        let path = std::path::Path::new("w.fvl");
        assert!(w.models().is_empty());
        assert!(
            w.check_covers(path, "m:1").is_ok(),
            "an empty list is matched under any model"
        );
        w.identities
            .push(Identity::for_test("a", "alice", "m:2", vec![1.0]));
        w.identities
            .push(Identity::for_test("b", "bob", "m:1", vec![1.0, 0.0]));
        w.identities[1].descriptors.push(Descriptor {
            model_id: "m:2".into(),
            vector: vec![0.0],
        });
        w.identities[1].descriptors.push(Descriptor {
            model_id: "m:2".into(),
            vector: vec![0.5],
        });
        assert_eq!(w.models(), ["m:1", "m:2"]);
        assert_eq!(w.identities[1].models(), [("m:1", 1), ("m:2", 2)]);
        assert!(w.identities[1].has_model("m:1") && !w.identities[0].has_model("m:1"));
        assert_eq!(
            w.coverage("m:1", 0),
            Coverage {
                covered: 1,
                missing: 1
            }
        );
        assert_eq!(w.coverage("m:2", 0).missing, 0);
        w.identities[0].suspended = true;
        assert_eq!(
            w.coverage("m:1", 0),
            Coverage {
                covered: 1,
                missing: 0
            },
            "only people who may match count"
        );
        w.identities[1].expires_at = Some(5);
        assert_eq!(w.coverage("m:1", 5), Coverage::default());
        assert!(
            w.check_covers(path, "m:1").is_ok(),
            "the list still has m:1 (a resumed or re-dated person matches)"
        );
        assert!(w.check_covers(path, "m:1").is_ok(), "bob has m:1");
        let e = w.check_covers(path, "m:3").unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, WatchlistError::ModelMismatch { .. }));
        assert_eq!(e.exit_code(), 7);
        assert!(
            text.contains("w.fvl")
                && text.contains("m:1, m:2")
                && text.contains("m:3")
                && text.contains("faceveil enroll --model m.onnx"),
            "{text}"
        );
    }

    #[test]
    fn model_file_is_the_name_before_the_hash() {
        assert_eq!(
            model_file("dlib_resnet-int8:0011223344556677"),
            "dlib_resnet-int8.onnx"
        );
        assert_eq!(model_file("plain"), "plain.onnx");
    }
}
