// SPDX-License-Identifier: MIT
//! List management: `init`, `list`, `remove`, `verify`, `rekey`, `purge-expired` (`enroll` has
//! its own module).

use std::path::Path;
use std::time::Duration;

use gstfaceveil::engine::audit;
use gstfaceveil::engine::watchlist::file::{Secret, random_key};
use gstfaceveil::engine::watchlist::store::{Lock, load, save, update, write_pending_key};
use gstfaceveil::engine::watchlist::{Watchlist, now};

use crate::Global;
use crate::restore::{StateDirArg, generation_in_use};
use crate::shared::{
    Fail, event, fmt_time, key_file, new_passphrase, open_for_model, record, secret, wait,
};

pub(crate) fn cmd_init(
    g: &Global,
    force: bool,
    default_expiry: Option<String>,
    state_dir: &StateDirArg,
) -> Result<(), Fail> {
    let default_expiry = default_expiry
        .map(|d| crate::enroll::parse_default_expiry(&d))
        .transpose()?;
    // Nothing model-specific: the list covers the models its people are enrolled with.
    let mut new_list = Watchlist::new();
    new_list.default_expiry = default_expiry;

    let lock = Lock::acquire(&g.list, &wait(g))?;
    let list = lock.list();
    if std::fs::symlink_metadata(list).is_ok() && !force {
        return Err(Fail(
            1,
            format!("{} exists; use --force to replace it", list.display()),
        ));
    }
    // Above the list it replaces (or the one the state directory records, for a list that was
    // deleted): a running matcher refuses a lower generation as an older copy.
    new_list.generation = generation_in_use(
        &lock,
        || match g.plaintext {
            true => Ok(Secret::Plaintext),
            false => secret(g),
        },
        state_dir,
    )?;
    if !g.plaintext && g.passphrase_env.is_none() {
        // Before the audit line: a key directory that cannot be written to is refused first.
        sweep_pending_keys(&lock, &key_file(g))?;
    }
    record(
        g,
        &mut new_list,
        &[event(
            "init",
            None,
            Some(match default_expiry {
                Some(s) => format!(
                    "default expiry {}",
                    humantime::format_duration(Duration::from_secs(s))
                ),
                None => "no default expiry".into(),
            }),
        )],
    )?;
    if g.plaintext {
        eprintln!("warning: the watch list is not encrypted (--plaintext)");
        warn(save(list, &mut new_list, &Secret::Plaintext)?);
    } else if let Some(var) = &g.passphrase_env {
        warn(save(list, &mut new_list, &new_passphrase(g, var)?)?);
    } else {
        let kf = key_file(g);
        if !force && std::fs::symlink_metadata(&kf).is_ok() {
            return Err(Fail(
                3,
                format!(
                    "key file {}: key file exists; not overwritten",
                    kf.display()
                ),
            ));
        }
        write_under_new_key(list, &mut new_list, &kf)?;
        let mode = std::fs::metadata(&kf).map_or(0o600, |m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o7777
        });
        println!(
            "key file {} (mode {mode:04o}): keep it apart from backups of the list",
            kf.display()
        );
    }
    println!(
        "created {} (generation {})",
        g.list.display(),
        new_list.generation
    );
    Ok(())
}

pub(crate) fn cmd_list(g: &Global, json: bool) -> Result<(), Fail> {
    let list = load(&g.list, &secret(g)?)?;
    if !json {
        let n = list.identities.len();
        let noun = if n == 1 { "identity" } else { "identities" };
        let known = known_people(&list).map_or(String::new(), |k| format!(" ({k})"));
        println!("{n} {noun}{known}, {}", covers(&list));
    }
    for i in &list.identities {
        let expires = i.expires_at.map(fmt_time);
        if json {
            let v = serde_json::json!({
                "id": i.id, "label": i.label, "note": i.note, "added_by": i.added_by,
                "added_at": fmt_time(i.added_at), "expires_at": expires,
                "expired": i.expired(now()), "suspended": i.suspended,
                "role": i.role.name(),
                "descriptors": i.descriptors.len(),
                "models": (i.models().into_iter())
                    .map(|(m, n)| (m.to_string(), n.into()))
                    .collect::<serde_json::Map<_, _>>(),
            });
            println!("{v}");
        } else {
            let models: Vec<&str> = i.models().into_iter().map(|(m, _)| m).collect();
            println!(
                "{}  {}  descriptors={}  models={}  added={} by {}  expires={}{}{}{}",
                i.id,
                i.label,
                i.descriptors.len(),
                models.join(","),
                fmt_time(i.added_at),
                i.added_by,
                expires.unwrap_or_else(|| "never".into()),
                if i.suspended { "  suspended" } else { "" },
                if i.known() { "  known" } else { "" },
                i.note
                    .as_ref()
                    .map(|n| format!("  note={n}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

pub(crate) fn cmd_remove(
    g: &Global,
    label: Option<String>,
    id: Option<String>,
    rekey: bool,
    new_passphrase_env: Option<String>,
) -> Result<(), Fail> {
    let lock = Lock::acquire(&g.list, &wait(g))?;
    let old = secret(g)?;
    let mut list = load(lock.list(), &old)?;
    let before = list.identities.len();
    let gone: Vec<audit::Event> = list
        .identities
        .iter()
        .filter(|i| label.as_ref() == Some(&i.label) || id.as_ref() == Some(&i.id))
        .map(|i| event("remove", Some((&i.id, &i.label)), None))
        .collect();
    list.identities
        .retain(|i| !(label.as_ref() == Some(&i.label) || id.as_ref() == Some(&i.id)));
    let removed = before - list.identities.len();
    if removed == 0 {
        return Err(Fail(
            9,
            format!(
                "no identity {} in {}",
                label.as_ref().or(id.as_ref()).map_or("", |s| s.as_str()),
                g.list.display()
            ),
        ));
    }
    let mut events = gone;
    if rekey {
        events.push(event("rekey", None, None));
    }
    if rekey && new_passphrase_env.is_none() {
        sweep_pending_keys(&lock, &key_file(g))?;
    }
    record(g, &mut list, &events)?;
    if rekey {
        rekey_locked(g, &lock, &mut list, new_passphrase_env)?;
    } else {
        warn(save(lock.list(), &mut list, &old)?);
    }
    println!(
        "removed {removed} identit{}",
        if removed == 1 { "y" } else { "ies" }
    );
    Ok(())
}

/// How many people on `list` are known people, as `list` and `verify` show it (`1 known person`),
/// or `None` when there are none.
fn known_people(list: &Watchlist) -> Option<String> {
    match list.identities.iter().filter(|i| i.known()).count() {
        0 => None,
        1 => Some("1 known person".into()),
        k => Some(format!("{k} known people")),
    }
}

/// The models a list covers, as `list` and `verify` show them: `models A (2 identities), B (1
/// identity)`, or `no descriptors yet`.
fn covers(list: &Watchlist) -> String {
    let models = list.models();
    if models.is_empty() {
        return "no descriptors yet".into();
    }
    let each: Vec<String> = (models.iter())
        .map(|m| {
            let n = list.identities.iter().filter(|i| i.has_model(m)).count();
            format!(
                "{m} ({n} {})",
                if n == 1 { "identity" } else { "identities" }
            )
        })
        .collect();
    format!(
        "model{} {}",
        if models.len() == 1 { "" } else { "s" },
        each.join(", ")
    )
}

pub(crate) fn cmd_verify(g: &Global) -> Result<(), Fail> {
    let (list, s, _, model) = open_for_model(g)?;
    let expired = list.identities.iter().filter(|i| i.expired(now())).count();
    let how = match s {
        Secret::Plaintext => {
            "checksum matches (plaintext: NOT authenticated, anyone who can write the file can \
             change it undetected)"
        }
        _ => "authenticated with its key (not changed since it was written with this key)",
    };
    let written = match list.written_at {
        0 => "unknown (format version 1)".to_string(),
        t => fmt_time(t),
    };
    let n = list.identities.len();
    let retention = list.default_expiry.map_or("no default expiry".into(), |d| {
        format!(
            "default expiry {}",
            humantime::format_duration(Duration::from_secs(d))
        )
    });
    let head = list.audit.map_or("no audit head recorded".into(), |h| {
        format!("audit log head: entry {}", h.seq)
    });
    println!(
        "ok: {} {how}; generation {}, written {written}; {n} {} ({expired} expired{}), {}; model \
         in use {model}; {retention}; {head}",
        g.list.display(),
        list.generation,
        if n == 1 { "identity" } else { "identities" },
        known_people(&list).map_or(String::new(), |k| format!(", {k}")),
        covers(&list)
    );
    Ok(())
}

/// Prints a write's warning (mode bits of the old file not carried over).
pub(crate) fn warn(warning: Option<impl AsRef<str>>) {
    if let Some(w) = warning {
        eprintln!("warning: {}", w.as_ref());
    }
}

/// Under the lock: removes the pending keys an interrupted rekey left beside `kf`, and names those
/// that the list is under (the operator moves one into place).
fn sweep_pending_keys(lock: &Lock, kf: &Path) -> Result<(), Fail> {
    for p in lock.sweep_pending_keys(kf)? {
        eprintln!(
            "warning: {} holds the key the list is under (left by an interrupted rekey): mv {} {}",
            p.display(),
            p.display(),
            kf.display()
        );
    }
    Ok(())
}

/// Writes `list` to `path` under a new key, for the key file `kf`: the new key under an
/// unpredictable pending name first, then the list under it, then the key renamed into place and
/// checked to be there (a failed list write leaves the old list and key as they were; a failed
/// swap says where the new key is).
fn write_under_new_key(path: &Path, list: &mut Watchlist, kf: &Path) -> Result<(), Fail> {
    let key = random_key()?;
    let pending = write_pending_key(kf, &key)?;
    warn(pending.warning());
    match save(path, list, &Secret::Key(key)) {
        Ok(w) => warn(w),
        Err(e) => {
            let _ = std::fs::remove_file(pending.path());
            return Err(e.into());
        }
    }
    pending.install()?;
    Ok(())
}

/// Re-encrypts `list` under a new key (written to the key file) or a new passphrase, under a lock
/// already held.
fn rekey_locked(
    g: &Global,
    lock: &Lock,
    list: &mut Watchlist,
    new_passphrase_env: Option<String>,
) -> Result<(), Fail> {
    match new_passphrase_env {
        Some(var) => warn(save(lock.list(), list, &new_passphrase(g, &var)?)?),
        None => {
            write_under_new_key(lock.list(), list, &key_file(g))?;
            println!(
                "new key in {}; running services re-read the key when the list changes; restart \
                 them if they use FACEVEIL_KEY",
                key_file(g).display()
            );
        }
    }
    println!("re-encrypted {}", g.list.display());
    Ok(())
}

pub(crate) fn cmd_rekey(g: &Global, new_passphrase_env: Option<String>) -> Result<(), Fail> {
    let lock = Lock::acquire(&g.list, &wait(g))?;
    if new_passphrase_env.is_none() {
        sweep_pending_keys(&lock, &key_file(g))?;
    }
    let mut list = load(lock.list(), &secret(g)?)?;
    record(g, &mut list, &[event("rekey", None, None)])?;
    rekey_locked(g, &lock, &mut list, new_passphrase_env)
}

pub(crate) fn cmd_purge_expired(g: &Global) -> Result<(), Fail> {
    let t = now();
    let (n, warning) = update(
        &g.list,
        &wait(g),
        || secret(g),
        |list: &mut Watchlist, _| -> Result<usize, Fail> {
            let purged: Vec<audit::Event> = (list.identities.iter())
                .filter(|i| i.expired(t))
                .map(|i| {
                    let when = i.expires_at.map(fmt_time).unwrap_or_default();
                    event(
                        "purge-expired",
                        Some((&i.id, &i.label)),
                        Some(format!("expired {when}")),
                    )
                })
                .collect();
            list.identities.retain(|i| !i.expired(t));
            if !purged.is_empty() {
                record(g, list, &purged)?;
            }
            Ok(purged.len())
        },
    )?;
    warn(warning);
    println!(
        "purged {n} expired identit{}",
        if n == 1 { "y" } else { "ies" }
    );
    Ok(())
}
