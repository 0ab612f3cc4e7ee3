// SPDX-License-Identifier: MIT
//! `restore BACKUP`: put an older copy of the list back on purpose. A running matcher refuses a
//! list older than the one it uses (and, with a state directory, older than any used on the
//! machine): the backup's content is written as a new generation, higher than the list's, the
//! backup's and the state directory's, so that every matcher takes it. Audited.
//!
//! [`generation_in_use`] is what such a write must pass; `init` over a list (or after one was
//! deleted) passes it too.

use std::borrow::Borrow;
use std::path::{Path, PathBuf};

use clap::Args;
use gstfaceveil::engine::watchlist::file::Secret;
use gstfaceveil::engine::watchlist::reload::floor::Floor;
use gstfaceveil::engine::watchlist::store::{Lock, load, save};

use crate::Global;
use crate::shared::{Fail, event, record, secret, wait};

/// The deployment's state directory: the unit's `StateDirectory=faceveil/state` (docs/NVR.md).
pub(crate) const SERVICE_STATE_DIR: &str = "/var/lib/faceveil/state";

/// `--state-dir`, for the commands that write a list a running service must take.
#[derive(Args)]
pub(crate) struct StateDirArg {
    /// The service's state directory: the list is written above the generation it records [default:
    /// $FACEVEIL_STATE_DIR, else /var/lib/faceveil/state when it exists]
    #[arg(long, value_name = "DIR", env = "FACEVEIL_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

/// The state directory whose recorded generation is read: the one given, else `service` when it
/// is a directory, else none; and whether it was given.
fn pick_state_dir(given: Option<&Path>, service: &Path) -> Option<(PathBuf, bool)> {
    match given {
        Some(d) => Some((d.to_path_buf(), true)),
        None => service.is_dir().then(|| (service.to_path_buf(), false)),
    }
}

/// The generation a new write of the list `lock` holds must pass for every matcher to take it:
/// the list's own (0 when there is none; one that does not open with `secret` counts as 0, with a
/// warning) and the one the state directory records. The directory given must be readable; the
/// service's default one, when not, is a warning.
pub(crate) fn generation_in_use<S: Borrow<Secret>>(
    lock: &Lock,
    secret: impl FnOnce() -> Result<S, Fail>,
    state_dir: &StateDirArg,
) -> Result<u64, Fail> {
    let used = match pick_state_dir(state_dir.state_dir.as_deref(), Path::new(SERVICE_STATE_DIR)) {
        None => None,
        Some((dir, given)) => match Floor::new(&dir, lock.list()).and_then(|f| f.get()) {
            Ok(n) => Some((dir, n)),
            Err(e) if given => return Err(e.into()),
            Err(e) => {
                eprintln!(
                    "faceveil: warning: the service's state directory {}: {e}; the generation it \
                     records is not known (run as its owner, or give --state-dir)",
                    dir.display()
                );
                None
            }
        },
    };
    let in_place = if std::fs::symlink_metadata(lock.list()).is_err() {
        0
    } else {
        match secret().and_then(|s| Ok(load(lock.list(), s.borrow())?.generation)) {
            Ok(n) => n,
            Err(Fail(_, why)) => {
                let then = match &used {
                    Some((dir, n)) => format!(
                        "the new one is written above generation {n}, which {} records",
                        dir.display()
                    ),
                    None => "a matcher that used it may refuse the new one as an older copy until \
                             it restarts (give --state-dir)"
                        .into(),
                };
                eprintln!(
                    "faceveil: warning: the list in place does not open ({why}); replaced, its \
                     generation unknown: {then}"
                );
                0
            }
        }
    };
    Ok(in_place.max(used.map_or(0, |(_, n)| n)))
}

pub(crate) fn cmd_restore(g: &Global, backup: &Path, state_dir: &StateDirArg) -> Result<(), Fail> {
    let lock = Lock::acquire(&g.list, &wait(g))?;
    let secret = secret(g)?;
    let mut restored = load(backup, &secret)?;
    let from = restored.generation;
    restored.generation = from.max(generation_in_use(&lock, || Ok(&secret), state_dir)?);
    let detail = format!("from {} (generation {from})", backup.display());
    record(g, &mut restored, &[event("restore", None, Some(detail))])?;
    crate::list::warn(save(lock.list(), &mut restored, &secret)?);
    println!(
        "restored {} as generation {} of {} ({} identities)",
        backup.display(),
        restored.generation,
        g.list.display(),
        restored.identities.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_state_directory_is_the_default_when_it_exists() {
        let d = std::env::temp_dir().join(format!("faceveil-state-default-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let service = d.join("state");
        let given = d.join("given");
        // Not there: none, unless one is given (which need not exist yet: reading it says so).
        assert_eq!(pick_state_dir(None, &service), None);
        assert_eq!(
            pick_state_dir(Some(&given), &service),
            Some((given.clone(), true))
        );
        std::fs::create_dir_all(&service).unwrap();
        assert_eq!(
            pick_state_dir(None, &service),
            Some((service.clone(), false))
        );
        assert_eq!(
            pick_state_dir(Some(&given), &service),
            Some((given.clone(), true))
        );
        // A file of that name is no state directory.
        std::fs::remove_dir(&service).unwrap();
        std::fs::write(&service, b"").unwrap();
        assert_eq!(pick_state_dir(None, &service), None);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
