// SPDX-License-Identifier: MIT
//! Unit tests of `engine::watchlist::store`: key files, updates under the lock, symlinks, planted
//! temp files, refused file types, owner/group/mode carried over, refused directories and key
//! files, pending keys.

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn key(b: u8) -> Secret {
    Secret::Key([b; 32])
}

fn wait() -> Wait<'static> {
    Wait::quiet(Duration::from_secs(30))
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fw-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn key_file_is_private_and_parses() {
    let d = dir("key");
    let p = d.join("k");
    let key = [0xabu8; 32];
    write_key_file(&p, &key, false).unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(read_key_file(&p).unwrap(), key);
    assert!(write_key_file(&p, &key, false).is_err());
    assert!(matches!(
        parse_key("abc", "x"),
        Err(WatchlistError::BadKey { .. })
    ));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn failed_update_leaves_the_file_unchanged() {
    let d = dir("update");
    let p = d.join("w.fvl");
    let s = Secret::Key([5u8; 32]);
    save(&p, &mut Watchlist::new(), &s).unwrap();
    let before = std::fs::read(&p).unwrap();
    let r: Result<((), Option<String>), WatchlistError> = update(
        &p,
        &wait(),
        || Ok(key(5)),
        |w, _| {
            w.default_expiry = Some(1);
            Err(WatchlistError::Random("refused".into()))
        },
    );
    assert!(r.is_err());
    assert_eq!(std::fs::read(&p).unwrap(), before);
    // no temporary files left behind
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        2,
        "list and lock only"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn concurrent_updates_all_land() {
    let d = dir("concurrent");
    let p = d.join("w.fvl");
    let s = Secret::Key([6u8; 32]);
    save(&p, &mut Watchlist::new(), &s).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                update::<_, WatchlistError>(
                    &p,
                    &wait(),
                    || Ok(key(6)),
                    |w, _| {
                        w.identities.push(super::super::Identity {
                            id: format!("{i}"),
                            label: format!("l{i}"),
                            note: None,
                            added_by: "t".into(),
                            added_at: 0,
                            expires_at: None,
                            suspended: false,
                            role: super::super::Role::Listed,
                            descriptors: vec![],
                        });
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        Ok(())
                    },
                )
                .unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let list = load(&p, &s).unwrap();
    assert_eq!(list.identities.len(), 8);
    assert_eq!(list.generation, 9, "one generation per write");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_symlinked_list_is_written_through_not_replaced() {
    let d = dir("symlink");
    let real = d.join("real.fvl");
    let link = d.join("link.fvl");
    let s = key(7);
    save(&real, &mut Watchlist::new(), &s).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    update::<_, WatchlistError>(
        &link,
        &wait(),
        || Ok(key(7)),
        |w, _| {
            w.default_expiry = Some(2);
            Ok(())
        },
    )
    .unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        load(&real, &s).unwrap().default_expiry,
        Some(2),
        "the real list changed"
    );
    assert!(d.join("real.fvl.lock").exists() && !d.join("link.fvl.lock").exists());
    // a key file reached through a dangling link lands where the link points
    let key_link = d.join("k.key");
    std::os::unix::fs::symlink(d.join("real.key"), &key_link).unwrap();
    write_key_file(&key_link, &[1; 32], true).unwrap();
    assert_eq!(read_key_file(&d.join("real.key")).unwrap(), [1; 32]);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn planted_temp_names_are_not_written_through_and_stale_temps_are_swept() {
    let d = dir("planted");
    let p = d.join("w.fvl");
    let s = key(8);
    save(&p, &mut Watchlist::new(), &s).unwrap();
    // What an attacker could plant under the old predictable names, and a crashed writer's temp.
    let victim = d.join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    for pid in [std::process::id(), 1, 2] {
        std::os::unix::fs::symlink(&victim, d.join(format!(".w.fvl.tmp.{pid}"))).unwrap();
    }
    std::fs::write(d.join(".w.fvl.tmp.deadbeef00112233"), b"stale").unwrap();
    let pending_key = d.join(".w.fvl.key.tmp.0011223344556677");
    std::fs::write(&pending_key, b"a key an interrupted rekey left").unwrap();
    update::<_, WatchlistError>(
        &p,
        &wait(),
        || Ok(key(8)),
        |w, _| {
            w.default_expiry = Some(3);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    let left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".w.fvl.tmp."))
        .collect();
    assert!(left.is_empty(), "swept under the lock: {left:?}");
    assert!(pending_key.exists(), "key temps are never swept");
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_fifo_and_an_oversized_file_are_refused_before_reading() {
    let d = dir("fifo");
    let fifo = d.join("w.fvl");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(matches!(
        load(&fifo, &key(1)),
        Err(WatchlistError::NotAFile { .. })
    ));
    let big = d.join("big.fvl");
    let f = File::create(&big).unwrap();
    f.set_len(max_list_bytes() + 1).unwrap(); // sparse: no disk used
    assert!(matches!(
        load(&big, &key(1)),
        Err(WatchlistError::TooLarge { .. })
    ));
    assert!(read_key_file(&fifo).is_err());
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_waiting_writer_names_the_holder_and_gives_up() {
    let d = dir("wait");
    let p = d.join("w.fvl");
    save(&p, &mut Watchlist::new(), &key(9)).unwrap();
    let held = Lock::acquire(&p, &wait()).unwrap();
    let told = std::sync::Mutex::new(None);
    let notify = |_: &Path, pid: Option<u32>| *told.lock().unwrap() = Some(pid);
    let w = Wait {
        timeout: Duration::from_millis(300),
        notify: &notify,
    };
    let t = Instant::now();
    let e = Lock::acquire(&p, &w).err().expect("timed out");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(
        matches!(e, WatchlistError::LockTimeout { holder: Some(pid), .. } if pid == std::process::id()),
        "{e}"
    );
    assert_eq!(e.exit_code(), 10);
    assert_eq!(*told.lock().unwrap(), Some(Some(std::process::id())));
    drop(held);
    assert!(Lock::acquire(&p, &w).is_ok());
    std::fs::remove_dir_all(d).unwrap();
}

fn root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn chown(p: &Path, uid: Option<u32>, gid: u32) {
    std::os::unix::fs::chown(p, uid, Some(gid)).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn meta(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// A group the test may give files: any, as root; else its own.
fn a_group() -> u32 {
    // SAFETY: getegid cannot fail.
    if root() {
        4242
    } else {
        unsafe { libc::getegid() }
    }
}

#[test]
fn a_rewrite_keeps_the_group_and_a_0640_mode() {
    let d = dir("carry");
    let p = d.join("w.fvl");
    assert_eq!(save(&p, &mut Watchlist::new(), &key(1)).unwrap(), None);
    assert_eq!(meta(&p).2, 0o600, "a new list is 0600");
    chown(&p, None, a_group());
    chmod(&p, 0o640);
    let ((), w) = update::<_, WatchlistError>(&p, &wait(), || Ok(key(1)), |_, _| Ok(())).unwrap();
    assert_eq!(w, None, "nothing left out");
    let (_, gid, mode) = meta(&p);
    assert_eq!((gid, mode), (a_group(), 0o640));
    // and so does a key file
    let k = d.join("w.fvl.key");
    write_key_file(&k, &[1; 32], false).unwrap();
    chown(&k, None, a_group());
    chmod(&k, 0o640);
    write_key_file(&k, &[2; 32], true).unwrap();
    assert_eq!(meta(&k).1, a_group());
    assert_eq!(meta(&k).2, 0o640);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_rewrite_never_widens_the_mode_and_says_what_it_left_out() {
    let d = dir("widen");
    let p = d.join("w.fvl");
    save(&p, &mut Watchlist::new(), &key(1)).unwrap();
    for (old, new) in [
        (0o666, 0o640),
        (0o604, 0o600),
        (0o660, 0o640),
        (0o4755, 0o640),
    ] {
        chmod(&p, old);
        let w = save(&p, &mut Watchlist::new(), &key(1))
            .unwrap()
            .expect("a warning");
        assert_eq!(meta(&p).2, new, "{old:o}");
        assert!(
            w.contains(&format!("{old:04o}")) && w.contains("at most 0640"),
            "{w}"
        );
    }
    // An owner-only mode stays owner-only; read-only for the owner becomes read-write.
    chmod(&p, 0o400);
    assert_eq!(save(&p, &mut Watchlist::new(), &key(1)).unwrap(), None);
    assert_eq!(meta(&p).2, 0o600);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn root_keeps_the_owner_of_the_file_it_rewrites() {
    if !root() {
        eprintln!("skipped: giving a file another owner needs root");
        return;
    }
    let d = dir("owner");
    let p = d.join("w.fvl");
    save(&p, &mut Watchlist::new(), &key(1)).unwrap();
    chown(&p, Some(4243), 4242);
    save(&p, &mut Watchlist::new(), &key(1)).unwrap();
    assert_eq!(meta(&p), (4243, 4242, 0o600));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn nothing_is_written_into_a_directory_others_can_write() {
    let d = dir("opendir");
    for mode in [0o775, 0o757, 0o1777, 0o1770] {
        let sub = d.join(format!("d{mode:o}"));
        std::fs::create_dir(&sub).unwrap();
        chmod(&sub, mode);
        let p = sub.join("w.fvl");
        let e = save(&p, &mut Watchlist::new(), &key(1)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("chmod go-w {}", sub.display()))
                && text.contains(&format!("{mode:04o}")),
            "{text}"
        );
        assert!(write_key_file(&sub.join("k"), &[1; 32], false).is_err());
        assert!(
            Lock::acquire(&p, &wait()).is_err(),
            "no lock file there either"
        );
        assert_eq!(
            std::fs::read_dir(&sub).unwrap().count(),
            0,
            "nothing written"
        );
        chmod(&sub, 0o755);
        save(&p, &mut Watchlist::new(), &key(1)).unwrap();
    }
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn key_files_others_can_write_are_refused_and_world_readable_ones_warned_about() {
    let d = dir("keymode");
    let k = d.join("k");
    write_key_file(&k, &[3; 32], false).unwrap();
    assert_eq!(read_key_file_checked(&k).unwrap(), ([3; 32], None));
    chmod(&k, 0o640);
    assert_eq!(read_key_file_checked(&k).unwrap().1, None);
    for mode in [0o660, 0o602, 0o666] {
        chmod(&k, mode);
        let e = read_key_file_checked(&k).unwrap_err();
        assert!(matches!(e, WatchlistError::BadKey { .. }));
        let text = e.to_string();
        assert!(
            text.contains(&format!("chmod 0640 {}", k.display()))
                && text.contains(&format!("chmod 0600 {}", k.display())),
            "{text}"
        );
    }
    chmod(&k, 0o644);
    let (key, warning) = read_key_file_checked(&k).unwrap();
    assert_eq!(key, [3; 32]);
    let warning = warning.expect("a warning");
    assert!(
        warning.contains("readable by every user") && warning.contains("0644"),
        "{warning}"
    );
    // resolve_key_checked passes the warning on; FACEVEIL_KEY is not a file and has none
    let list = d.join("w.fvl");
    std::fs::copy(&k, d.join("w.fvl.key")).unwrap();
    chmod(&d.join("w.fvl.key"), 0o644);
    let (_, w) = resolve_key_checked(Some(&d.join("w.fvl.key")), &list).unwrap();
    assert!(w.is_some());
    chmod(&d.join("w.fvl.key"), 0o664);
    assert!(resolve_key(Some(&d.join("w.fvl.key")), &list).is_err());
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_pending_key_has_an_unpredictable_name_and_the_old_keys_group_and_mode() {
    let d = dir("pending");
    let kf = d.join("w.fvl.key");
    write_key_file(&kf, &[1; 32], false).unwrap();
    chown(&kf, None, a_group());
    chmod(&kf, 0o640);
    let a = write_pending_key(&kf, &[2; 32]).unwrap();
    let b = write_pending_key(&kf, &[3; 32]).unwrap();
    for p in [a.path(), b.path()] {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let suffix = name
            .strip_prefix("w.fvl.key.new.")
            .expect("the pending name");
        assert!(
            suffix.len() == 16 && suffix.bytes().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
        assert_eq!(meta(p).1, a_group());
        assert_eq!(meta(p).2, 0o640);
    }
    assert_ne!(a.path(), b.path());
    drop(b);
    a.install().unwrap();
    assert_eq!(read_key_file(&kf).unwrap(), [2; 32]);
    assert_eq!((meta(&kf).1, meta(&kf).2), (a_group(), 0o640));
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_pending_key_replaced_before_its_rename_is_no_success_and_the_key_is_kept() {
    let d = dir("replaced");
    let kf = d.join("w.fvl.key");
    write_key_file(&kf, &[1; 32], false).unwrap();
    let decoy = d.join("decoy");
    write_key_file(&decoy, &[9; 32], false).unwrap();
    let pending = write_pending_key(&kf, &[2; 32]).unwrap();
    // What a writer of the directory could do between the write and the rename: a hard link to
    // another file put under the pending name.
    std::fs::remove_file(pending.path()).unwrap();
    std::fs::hard_link(&decoy, pending.path()).unwrap();
    let text = pending.install().unwrap_err().to_string();
    assert!(text.contains("NOT the new key"), "{text}");
    let kept: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("w.fvl.key.rekeyed."))
        .collect();
    assert_eq!(kept.len(), 1, "{text}");
    assert!(
        text.contains(&format!("mv {} {}", kept[0].display(), kf.display())),
        "{text}"
    );
    assert_eq!(
        read_key_file(&kept[0]).unwrap(),
        [2; 32],
        "the new key is kept"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn leftover_pending_keys_are_swept_unless_the_list_is_under_them() {
    let d = dir("sweep");
    let p = d.join("w.fvl");
    let kf = d.join("w.fvl.key");
    save(&p, &mut Watchlist::new(), &key(4)).unwrap();
    write_key_file(&kf, &[1; 32], false).unwrap();
    let stale = write_pending_key(&kf, &[5; 32])
        .unwrap()
        .path()
        .to_path_buf();
    let needed = write_pending_key(&kf, &[4; 32])
        .unwrap()
        .path()
        .to_path_buf();
    let legacy = d.join("w.fvl.key.new");
    std::os::unix::fs::symlink("/etc/passwd", &legacy).unwrap();
    let other = d.join("w.fvl.key.new.not-ours");
    std::fs::write(&other, b"x").unwrap();
    let lock = Lock::acquire(&p, &wait()).unwrap();
    assert_eq!(lock.sweep_pending_keys(&kf).unwrap(), vec![needed.clone()]);
    assert!(!stale.exists() && std::fs::symlink_metadata(&legacy).is_err());
    assert!(needed.exists(), "the list is under it: kept");
    assert!(other.exists(), "not a pending name");
    drop(lock);
    // Before an init (no list yet) no pending key is the list's.
    let fresh = d.join("new.fvl");
    let left = write_pending_key(&default_key_file(&fresh), &[4; 32]).unwrap();
    let lock = Lock::acquire(&fresh, &wait()).unwrap();
    assert!(
        lock.sweep_pending_keys(&default_key_file(&fresh))
            .unwrap()
            .is_empty()
    );
    assert!(!left.path().exists());
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_link_or_directory_of_another_user_is_not_written_through() {
    if !root() {
        eprintln!("skipped: needs root (files of another user)");
        return;
    }
    let d = dir("others");
    // A link of the list's name owned by another user, pointing at a file root would replace.
    let victim = d.join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let link = d.join("w.fvl");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    let e = save(&link, &mut Watchlist::new(), &key(1)).unwrap_err();
    assert!(e.to_string().contains("owned by another user"), "{e}");
    assert!(write_key_file(&link, &[1; 32], true).is_err());
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    // Root's own link is followed.
    std::os::unix::fs::lchown(&link, Some(0), Some(0)).unwrap();
    save(&link, &mut Watchlist::new(), &key(1)).unwrap();
    assert_ne!(std::fs::read(&victim).unwrap(), b"keep me");
    // A directory of another user, even 0755: refused.
    let theirs = d.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let e = save(&theirs.join("w.fvl"), &mut Watchlist::new(), &key(1)).unwrap_err();
    assert!(e.to_string().contains("belongs to another user"), "{e}");
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
    std::fs::remove_dir_all(d).unwrap();
}
