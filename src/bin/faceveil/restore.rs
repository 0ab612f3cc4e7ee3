// SPDX-License-Identifier: MIT
//! `restore BACKUP`: put an older copy of the list back on purpose. A running matcher refuses a
//! list older than the one it uses (and, with a state directory, older than any used on the
//! machine): the backup's content is written as a new generation, higher than the list's, the
//! backup's and the state directory's, so that every matcher takes it. Audited.

use std::path::Path;

use gstfaceveil::engine::watchlist::reload::floor::Floor;
use gstfaceveil::engine::watchlist::store::{Lock, load, save};

use crate::Global;
use crate::shared::{Fail, event, record, secret, wait};

pub(crate) fn cmd_restore(g: &Global, backup: &Path, state_dir: Option<&Path>) -> Result<(), Fail> {
    let lock = Lock::acquire(&g.list, &wait(g))?;
    let secret = secret(g)?;
    let mut restored = load(backup, &secret)?;
    // The list there now, if any: it may be missing, already an older copy, or damaged (then
    // only --state-dir knows the generation the service has used).
    let current = match load(lock.list(), &secret) {
        Ok(l) => l.generation,
        Err(_) if !lock.list().exists() => 0,
        Err(e) => {
            eprintln!("faceveil: warning: the list in place does not open ({e}); replaced");
            0
        }
    };
    let used = match state_dir {
        Some(dir) => Floor::new(dir, lock.list())?.get()?,
        None => 0,
    };
    let from = restored.generation;
    restored.generation = current.max(from).max(used);
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
