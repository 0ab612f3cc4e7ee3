// SPDX-License-Identifier: MIT
//! What the subcommands share: the exit-code error, the list's key, passphrase, lock and audit
//! log as the global options give them, the embedder model and its metric, times as printed.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use gstfaceveil::engine::audit;
use gstfaceveil::engine::cosine::Similarity;
use gstfaceveil::engine::embedder::{model_id, similarity_for};
use gstfaceveil::engine::manifest::{ModelSpec, Task};
use gstfaceveil::engine::watchlist::file::Secret;
use gstfaceveil::engine::watchlist::store::{
    Lock, Wait, default_key_file, load, real_path, resolve_key_checked, save,
};
use gstfaceveil::engine::watchlist::{Watchlist, WatchlistError, model_file, now};

use crate::Global;

/// An error with its exit code.
pub(crate) struct Fail(pub(crate) i32, pub(crate) String);

impl From<WatchlistError> for Fail {
    fn from(e: WatchlistError) -> Self {
        Fail(e.exit_code(), e.to_string())
    }
}

pub(crate) fn key_file(g: &Global) -> PathBuf {
    g.key_file
        .clone()
        .unwrap_or_else(|| default_key_file(&g.list))
}

/// The list's audit log: `--audit-log`, else `<list>.audit` beside the list itself (a symlinked
/// `--list` is followed: the log belongs to the file, not to one of the names it has).
pub(crate) fn audit_log(g: &Global) -> PathBuf {
    g.audit_log.clone().unwrap_or_else(|| {
        let list = real_path(&g.list).unwrap_or_else(|_| g.list.clone());
        let mut p = list.into_os_string();
        p.push(".audit");
        PathBuf::from(p)
    })
}

/// Who runs the CLI, for the audit log: the real user id's name (`$USER` is whatever the caller
/// set), and the invoking user that sudo names, when run through it: `root (sudo: alice)`.
fn user() -> String {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let name = user_name(uid).unwrap_or_else(|| format!("uid:{uid}"));
    match std::env::var("SUDO_USER") {
        Ok(s) if !s.is_empty() && uid == 0 => format!("{name} (sudo: {s})"),
        _ => name,
    }
}

/// The name of user `uid` in the password database.
fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf` for its length; the result's strings
    // point into `buf`, read before it is dropped.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded: pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// An audit event by the user.
pub(crate) fn event(
    action: &str,
    who: Option<(&str, &str)>,
    detail: Option<String>,
) -> audit::Event {
    audit::Event {
        actor: user(),
        action: action.into(),
        identity: who.map(|w| w.0.to_string()),
        label: who.map(|w| w.1.to_string()),
        detail,
    }
}

/// The identity `which` names in `list`: its id, else its label. A label that several identities
/// carry is refused (exit 2, naming their ids); none is exit 9.
pub(crate) fn find_identity(g: &Global, list: &Watchlist, which: &str) -> Result<usize, Fail> {
    if let Some(i) = list.identities.iter().position(|i| i.id == which) {
        return Ok(i);
    }
    let labelled: Vec<usize> = (0..list.identities.len())
        .filter(|&i| list.identities[i].label == which)
        .collect();
    match labelled[..] {
        [i] => Ok(i),
        [] => Err(Fail(
            9,
            format!("no identity {which} in {}", g.list.display()),
        )),
        _ => Err(Fail(
            2,
            format!(
                "{} identities are labelled {which}: give one of their ids ({})",
                labelled.len(),
                labelled
                    .iter()
                    .map(|&i| list.identities[i].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Who recorded the head a watch list holds, in messages.
pub(crate) const BY_LIST: &str = "the watch list";

/// An audit-log error as the CLI reports it: a gap (exit 11) with what to do about it.
pub(crate) fn audit_fail(e: audit::AuditError) -> Fail {
    match e {
        audit::AuditError::Gap(_) => Fail(
            11,
            format!(
                "{e}; refusing to write after a gap (nothing was changed). Find out who cut or \
                 replaced the log, restore it from a backup ('faceveil audit verify' checks it), \
                 or start a new log deliberately with --new-audit-log (the old file is kept \
                 beside it)"
            ),
        ),
        e => Fail(3, e.to_string()),
    }
}

/// Appends `events` to the audit log and records its new head in `list` (which the caller then
/// writes). The log must continue from the head the list recorded (else exit 11, nothing written);
/// with --new-audit-log a new log is started instead, the old one kept aside. Done before the list
/// is written: a failed write leaves a line too many, never one too few.
pub(crate) fn record(
    g: &Global,
    list: &mut Watchlist,
    events: &[audit::Event],
) -> Result<(), Fail> {
    let log = audit_log(g);
    let recorded = list.audit;
    let head = if g.new_audit_log {
        let first = |aside: Option<&Path>, found: Result<audit::Head, audit::Found>| {
            let found = match found {
                Ok(h) => format!("the old log ended at {h}"),
                Err(f) => f.to_string(),
            };
            let recorded = recorded.map_or("no head".into(), |h| h.to_string());
            let what = format!(
                "started with --new-audit-log; {BY_LIST} recorded {recorded}; found: {found}"
            );
            event(
                "new-audit-log",
                None,
                Some(audit::segment_detail(&what, aside)),
            )
        };
        let (head, aside) =
            audit::start_new(&log, first, events, now()).map_err(|e| Fail(3, e.to_string()))?;
        if let Some(aside) = aside {
            eprintln!(
                "faceveil: a new audit log {}; the old one is now {}",
                log.display(),
                aside.display()
            );
        }
        head
    } else {
        audit::append_after(&log, recorded, BY_LIST, events, now()).map_err(audit_fail)?
    };
    list.audit = Some(head);
    Ok(())
}

/// Under the list's lock: loads the list, appends the events `what` makes of it to the audit log
/// and writes the list with its new head (for commands that change nothing else: identify, audit
/// anchor). Returns that head.
pub(crate) fn record_locked(
    g: &Global,
    what: impl FnOnce(&Watchlist) -> Vec<audit::Event>,
) -> Result<Option<audit::Head>, Fail> {
    change_locked_head(g, |list| Ok(((), what(list)))).map(|((), head)| head)
}

/// Under the list's lock: loads the list and lets `change` change it; the events it returns are
/// appended to the audit log and the list is written with its new head. No events: nothing was
/// changed, nothing is written. Returns `change`'s value.
pub(crate) fn change_locked<T>(
    g: &Global,
    change: impl FnOnce(&mut Watchlist) -> Result<(T, Vec<audit::Event>), Fail>,
) -> Result<T, Fail> {
    change_locked_head(g, change).map(|(out, _)| out)
}

/// [`change_locked`], also returning the audit head the list records afterwards.
fn change_locked_head<T>(
    g: &Global,
    change: impl FnOnce(&mut Watchlist) -> Result<(T, Vec<audit::Event>), Fail>,
) -> Result<(T, Option<audit::Head>), Fail> {
    let lock = Lock::acquire(&g.list, &wait(g))?;
    let s = secret(g)?;
    let mut list = load(lock.list(), &s)?;
    let (out, events) = change(&mut list)?;
    if !events.is_empty() {
        record(g, &mut list, &events)?;
        crate::list::warn(save(lock.list(), &mut list, &s)?);
    }
    Ok((out, list.audit))
}

fn passphrase(var: &str) -> Result<String, Fail> {
    std::env::var(var)
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Fail(
                6,
                format!("environment variable {var} (the passphrase) is not set"),
            )
        })
}

/// Fewest characters of a new passphrase (unless --weak-passphrase).
const MIN_PASSPHRASE: usize = 12;

/// A passphrase for a list to be written: long enough unless the user said otherwise.
pub(crate) fn new_passphrase(g: &Global, var: &str) -> Result<Secret, Fail> {
    let p = passphrase(var)?;
    if p.chars().count() < MIN_PASSPHRASE && !g.weak_passphrase {
        return Err(Fail(
            2,
            format!(
                "the passphrase in {var} has {} characters, fewer than {MIN_PASSPHRASE}; use a \
                 longer one (or a key file), or --weak-passphrase",
                p.chars().count()
            ),
        ));
    }
    Ok(Secret::Passphrase(p))
}

/// How writers wait for the lock: they say that they wait, and for whom.
pub(crate) fn wait(g: &Global) -> Wait<'static> {
    Wait {
        timeout: Duration::from_secs(g.wait),
        notify: &|path, pid| {
            eprintln!(
                "faceveil: waiting for the lock on {}, held by {} (up to --wait seconds)",
                path.display(),
                pid.map_or("another process".into(), |p| format!("process {p}"))
            )
        },
    }
}

pub(crate) fn secret(g: &Global) -> Result<Secret, Fail> {
    if g.plaintext {
        eprintln!("warning: the watch list is not encrypted (--plaintext)");
        return Ok(Secret::Plaintext);
    }
    if let Some(var) = &g.passphrase_env {
        return Ok(Secret::Passphrase(passphrase(var)?));
    }
    let (secret, warning) = resolve_key_checked(g.key_file.as_deref(), &g.list)?;
    crate::list::warn(warning);
    Ok(secret)
}

/// A `--model` as given: a path, or the file name of an installed model (`dlib_resnet-int8.onnx`,
/// found in the model dirs as the default is).
fn model_path(p: &Path) -> PathBuf {
    if !p.exists()
        && p.components().count() == 1
        && let Ok(found) = ModelSpec::find(&p.to_string_lossy())
    {
        return found;
    }
    p.to_path_buf()
}

/// The embedder model and its id: `model`, else the default.
fn embedder_at(model: Option<&Path>) -> Result<(ModelSpec, String), Fail> {
    let spec = ModelSpec::resolve(model, Task::Embedder).map_err(|e| Fail(1, e.to_string()))?;
    let id = model_id(&spec).map_err(|e| Fail(1, e.to_string()))?;
    Ok((spec, id))
}

/// The embedder model of a command that uses one (all but `enroll`): `--model`, else the default.
pub(crate) fn embedder(g: &Global) -> Result<(ModelSpec, String), Fail> {
    match &g.model[..] {
        [] => embedder_at(None),
        [m] => embedder_at(Some(&model_path(m))),
        _ => Err(Fail(
            2,
            "--model is given several times: only enroll takes several models".into(),
        )),
    }
}

/// The embedder models `enroll` computes descriptors with: each `--model`, else every installed
/// one (`ModelSpec::installed`), each once.
pub(crate) fn enroll_models(g: &Global) -> Result<Vec<(ModelSpec, String)>, Fail> {
    let mut models = Vec::new();
    if g.model.is_empty() {
        for spec in ModelSpec::installed(Task::Embedder) {
            let id = model_id(&spec).map_err(|e| Fail(1, e.to_string()))?;
            models.push((spec, id));
        }
        if models.is_empty() {
            // What the default model's lookup says: where it looked.
            embedder_at(None)?;
            return Err(Fail(1, "no embedder model installed: give --model".into()));
        }
    } else {
        for m in &g.model {
            models.push(embedder_at(Some(&model_path(m)))?);
        }
    }
    let mut seen = Vec::new();
    models.retain(|(_, id)| {
        let new = !seen.contains(id);
        seen.push(id.clone());
        new
    });
    Ok(models)
}

/// 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const LAST_RFC3339: i64 = 253_402_300_799;

/// RFC 3339 for any stored time (never panics: a time outside 1970..9999, which only an old or
/// crafted list can hold, is shown as unix seconds).
pub(crate) fn fmt_time(t: i64) -> String {
    if (0..=LAST_RFC3339).contains(&t) {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t as u64)).to_string()
    } else {
        format!("@{t} (unix seconds)")
    }
}

/// The matching metric of the embedder model: its similarity and calibrated thresholds (colour,
/// grayscale), as the element uses them.
pub(crate) fn metric(spec: &ModelSpec) -> Result<(Similarity, f32, f32), Fail> {
    let sim = similarity_for(spec).map_err(|e| Fail(1, e.to_string()))?;
    let e = spec.manifest.embedder.as_ref();
    Ok((
        sim,
        e.map_or(0.66, |e| e.match_threshold()),
        e.map_or(0.66, |e| e.match_threshold_gray()),
    ))
}

/// Opens the list and checks that it can be matched under the embedder model in use (someone on
/// it has descriptors of it, or nobody is on it); warns about the people who lack them. Returns
/// the list, its secret, the model and its id.
pub(crate) fn open_for_model(g: &Global) -> Result<(Watchlist, Secret, ModelSpec, String), Fail> {
    let s = secret(g)?;
    let list = load(&g.list, &s)?;
    let (spec, model) = embedder(g)?;
    list.check_covers(&g.list, &model)?;
    let c = list.coverage(&model, now());
    if c.covered > 0 && c.missing > 0 {
        eprintln!(
            "warning: {} of {} people on the list have no descriptors of embedder model {model} \
             and cannot be matched under it: add them with 'faceveil enroll --model {} --label \
             LABEL PHOTO…'",
            c.missing,
            c.covered + c.missing,
            model_file(&model)
        );
    }
    Ok((list, s, spec, model))
}
