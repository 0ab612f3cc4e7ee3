// SPDX-License-Identifier: MIT
//! Tests of `engine::watchlist::reload`.

use std::os::unix::fs::PermissionsExt;
use std::time::SystemTime;

use super::*;
use crate::engine::watchlist::file::Secret;
use crate::engine::watchlist::store::write_key_file;
use crate::engine::watchlist::store::{load, save};
use crate::engine::watchlist::{Identity, Watchlist};

fn list(labels: &[&str]) -> Watchlist {
    let mut w = Watchlist::new();
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
        key: Key::Fixed(Secret::Key([7; 32])),
        model_id: model_id.into(),
        similarity: Similarity::cosine(),
        floor: None,
    }
}

/// Polls until a reload finished (the period is zero, so each poll checks the file).
fn settle(r: &mut Reloader) -> Option<Outcome> {
    for _ in 0..500 {
        if let Some(o) = r.poll() {
            return Some(o);
        }
        if r.pending.is_none() && r.stamp == r.source.stamp() {
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
    assert!(
        matches!(e, OpenError::List(WatchlistError::ModelMismatch { .. })),
        "{e}"
    );
    let mut r = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
    let mut other = list(&["x", "y"]);
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
fn a_list_of_two_models_opens_under_either_and_counts_who_lacks_one() {
    let d = dir("two-models");
    let p = d.join("w.fvl");
    // a has m:1 and m:2, b only m:1
    let mut w = list(&["a", "b"]);
    w.identities[0]
        .descriptors
        .push(crate::engine::watchlist::Descriptor {
            model_id: "m:2".into(),
            vector: vec![0.0, 1.0, 0.0],
        });
    rewrite(&p, &w);
    let r1 = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
    assert_eq!((r1.index().len(), r1.index().without_model()), (2, 0));
    assert_eq!(r1.without_model_warning(), None);
    let mut r2 = Reloader::open(source(&p, "m:2"), Duration::ZERO).unwrap();
    assert_eq!((r2.index().len(), r2.index().without_model()), (1, 1));
    assert_eq!(r2.index().entries()[0].label, "a");
    let text = r2.without_model_warning().unwrap();
    assert!(
        text.starts_with("1 of 2 people on watch list ")
            && text.contains("w.fvl")
            && text.contains("embedder model m:2")
            && text.contains("faceveil enroll --model m.onnx"),
        "{text}"
    );
    // b gains m:2: the reload under m:2 has both
    w.identities[1]
        .descriptors
        .push(crate::engine::watchlist::Descriptor {
            model_id: "m:2".into(),
            vector: vec![1.0, 0.0, 0.0],
        });
    rewrite(&p, &w);
    assert!(matches!(settle(&mut r2), Some(Outcome::Reloaded(2))));
    assert_eq!(r2.index().without_model(), 0);
    assert_eq!(r2.without_model_warning(), None);
    // an empty list opens under any model
    rewrite(&p, &Watchlist::new());
    assert!(Reloader::open(source(&p, "m:3"), Duration::ZERO).is_ok());
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

/// A source whose key is read from `key` on each load.
fn keyed_source(path: &Path, key: &Path) -> Source {
    Source {
        key: Key::File(key.to_path_buf()),
        ..source(path, "m:1")
    }
}

#[test]
fn a_mode_change_alone_retriggers_a_failed_reload() {
    // The list is rewritten unreadable (a writer that made it 0600 for another user), the reload
    // fails; a chmod that makes it readable again changes neither its contents nor its mtime.
    let d = dir("chmod");
    let p = d.join("w.fvl");
    rewrite(&p, &list(&["a"]));
    let mut r = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
    rewrite(&p, &list(&["a", "b"]));
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    // Unreadable as the reload sees it: a read failure with the file's stamp before it.
    let before = r.source().stamp();
    let failed = Err(WatchlistError::Io {
        path: p.clone(),
        error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    });
    assert!(matches!(r.apply(before, failed), Outcome::Failed(_)));
    assert_eq!(r.failures(), (1, 0));
    assert!(settle(&mut r).is_none(), "unchanged: not read again");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), mtime);
    assert!(
        matches!(settle(&mut r), Some(Outcome::Reloaded(2))),
        "a chmod is a change"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_replaced_key_file_is_read_again_on_reload() {
    // `faceveil rekey`: the list re-encrypted under a new key, the key file replaced.
    let d = dir("rekey");
    let (p, k) = (d.join("w.fvl"), d.join("w.key"));
    write_key_file(&k, &[7; 32], false).unwrap();
    rewrite(&p, &list(&["a"]));
    let mut r = Reloader::open(keyed_source(&p, &k), Duration::ZERO).unwrap();
    let mut w = load(&p, &Secret::Key([7; 32])).unwrap();
    w.identities = list(&["a", "b"]).identities;
    save(&p, &mut w, &Secret::Key([9; 32])).unwrap();
    write_key_file(&k, &[9; 32], true).unwrap();
    assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(2))));
    assert_eq!(r.failures(), (0, 0));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_key_file_replaced_after_the_list_retriggers_the_reload() {
    // The list re-encrypted first: its reload fails with the old key; the key file renamed in
    // place afterwards (the list untouched) is a change that reads both again.
    let d = dir("rekey-order");
    let (p, k) = (d.join("w.fvl"), d.join("w.key"));
    write_key_file(&k, &[7; 32], false).unwrap();
    rewrite(&p, &list(&["a"]));
    let mut r = Reloader::open(keyed_source(&p, &k), Duration::ZERO).unwrap();
    let mut w = list(&["a", "b", "c"]);
    save(&p, &mut w, &Secret::Key([9; 32])).unwrap();
    assert!(matches!(
        settle(&mut r),
        Some(Outcome::Failed(WatchlistError::WrongKey { .. }))
    ));
    assert_eq!(r.index().len(), 1, "old list kept");
    write_key_file(&k, &[9; 32], true).unwrap();
    assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(3))));
    std::fs::remove_dir_all(&d).unwrap();
}

/// A source with its rollback floor in `state`.
fn floored_source(path: &Path, state: &Path) -> Source {
    Source {
        floor: Some(Floor::new(state, path).unwrap()),
        ..source(path, "m:1")
    }
}

#[test]
fn an_older_list_is_refused_after_a_restart_with_a_state_dir() {
    let d = dir("floor");
    let state = d.join("state");
    std::fs::create_dir(&state).unwrap();
    let p = d.join("w.fvl");
    let mut w = list(&["a", "b"]);
    rewrite(&p, &w);
    let old_copy = std::fs::read(&p).unwrap();
    let mut r = Reloader::open(floored_source(&p, &state), Duration::ZERO).unwrap();
    w.generation = 1;
    w.identities.pop();
    rewrite(&p, &w);
    assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(1))));
    drop(r);
    // The old copy put back while nothing runs, then a restart: refused at open.
    std::fs::write(&p, &old_copy).unwrap();
    match Reloader::open(floored_source(&p, &state), Duration::ZERO) {
        Err(
            e @ OpenError::Rollback {
                held: 2, found: 1, ..
            },
        ) => {
            let text = e.to_string();
            assert!(
                text.contains("generation 1") && text.contains("generation 2"),
                "{text}"
            );
            assert!(text.contains(&state.display().to_string()), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // Without a state directory (today's in-memory floor) it would be accepted.
    assert!(Reloader::open(source(&p, "m:1"), Duration::ZERO).is_ok());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_state_floor_refuses_a_reload_that_memory_alone_would_accept() {
    // Two matchers of one list share the state directory (two cameras, or a restarted one): A
    // still holds generation 1 when B has seen generation 2; the old copy put back is refused by A.
    let d = dir("floor-reload");
    let state = d.join("state");
    std::fs::create_dir(&state).unwrap();
    let p = d.join("w.fvl");
    let mut w = list(&["a", "b"]);
    rewrite(&p, &w);
    let old_copy = std::fs::read(&p).unwrap();
    let mut a = Reloader::open(floored_source(&p, &state), Duration::from_secs(3600)).unwrap();
    let mut memory_only = Reloader::open(source(&p, "m:1"), Duration::from_secs(3600)).unwrap();
    w.generation = 1;
    w.identities.pop();
    rewrite(&p, &w);
    let b = Reloader::open(floored_source(&p, &state), Duration::ZERO).unwrap();
    assert_eq!(b.generation(), 2);
    std::fs::write(&p, &old_copy).unwrap();
    let before = a.source().stamp();
    let result = a.source().load();
    assert!(matches!(
        a.apply(before, result),
        Outcome::Rollback { held: 2, found: 1 }
    ));
    assert_eq!(a.failures(), (0, 1));
    assert_eq!(a.index().len(), 2, "the list in use stays");
    let before = memory_only.source().stamp();
    let result = memory_only.source().load();
    assert!(matches!(
        memory_only.apply(before, result),
        Outcome::Reloaded(2)
    ));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_list_that_cannot_be_looked_at_is_said_once_and_the_old_one_kept() {
    let d = dir("unreachable");
    let sub = d.join("lists");
    std::fs::create_dir(&sub).unwrap();
    let p = sub.join("w.fvl");
    rewrite(&p, &list(&["a", "b"]));
    let mut r = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
    // The directory replaced by a file: looking at the list fails (ENOTDIR), even for root,
    // and it is not a deletion.
    std::fs::rename(&sub, d.join("moved")).unwrap();
    std::fs::write(&sub, b"").unwrap();
    match r.poll() {
        Some(Outcome::Failed(e)) => assert!(e.to_string().contains("w.fvl"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(r.poll().is_none(), "said once, not on every check");
    assert_eq!(r.failures(), (1, 0));
    assert_eq!(r.index().len(), 2, "the old list stays in use");
    std::fs::remove_file(&sub).unwrap();
    std::fs::rename(d.join("moved"), &sub).unwrap();
    assert!(
        r.poll().is_none(),
        "unchanged once it can be looked at again"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_floor_that_cannot_be_saved_lets_a_newer_list_in_loudly_and_still_refuses_an_older() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (a lock file of another user)");
        return;
    }
    let d = dir("floor-unsaved");
    let state = d.join("state");
    std::fs::create_dir(&state).unwrap();
    let p = d.join("w.fvl");
    let mut w = list(&["a", "b"]);
    rewrite(&p, &w);
    let old_copy = std::fs::read(&p).unwrap();
    let mut r = Reloader::open(floored_source(&p, &state), Duration::ZERO).unwrap();
    w.generation = 1;
    w.identities.pop();
    rewrite(&p, &w);
    assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(1))));
    // The state file's lock taken over by another user: the floor cannot be raised any more.
    std::os::unix::fs::lchown(state.join("generations.json.lock"), Some(65534), None).unwrap();
    w.generation = 2;
    w.identities.pop();
    rewrite(&p, &w);
    match settle(&mut r) {
        Some(Outcome::ReloadedFloorNotSaved(0, e)) => {
            assert!(e.to_string().contains("lock"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.generation(), 3, "the newer list (a removal) is in use");
    // A fresh matcher (a restart) still refuses the older copy by what the state file holds.
    std::fs::write(&p, &old_copy).unwrap();
    let mut fresh = Reloader::open(source(&p, "m:1"), Duration::ZERO).unwrap();
    let before = fresh.source().stamp();
    let loaded = floored_source(&p, &state).load();
    assert!(matches!(
        fresh.apply(before, loaded),
        Outcome::Rollback { held: 2, found: 1 }
    ));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_rekey_caught_between_list_and_key_is_not_reported_as_a_failure() {
    // The reload meets the re-encrypted list before the key file is renamed in: it is read once
    // more at the next check, where the new key is in place; nothing failed.
    let d = dir("rekey-between");
    let (p, k) = (d.join("w.fvl"), d.join("w.key"));
    write_key_file(&k, &[7; 32], false).unwrap();
    rewrite(&p, &list(&["a"]));
    let mut r = Reloader::open(keyed_source(&p, &k), Duration::ZERO).unwrap();
    let mut w = list(&["a", "b"]);
    save(&p, &mut w, &Secret::Key([9; 32])).unwrap();
    let mut polls = 0;
    while r.pending.is_none() || polls == 0 {
        assert!(r.poll().is_none());
        polls += 1;
    }
    while r.pending.is_some() {
        assert!(r.poll().is_none(), "the first wrong key is not reported");
        std::thread::sleep(Duration::from_millis(2));
    }
    write_key_file(&k, &[9; 32], true).unwrap();
    assert!(matches!(settle(&mut r), Some(Outcome::Reloaded(2))));
    assert_eq!(r.failures(), (0, 0));
    std::fs::remove_dir_all(&d).unwrap();
}
