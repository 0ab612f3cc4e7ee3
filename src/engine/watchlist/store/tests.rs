// SPDX-License-Identifier: MIT
//! Unit tests of `engine::watchlist::store`: key files, updates under the lock, symlinks, planted
//! temp files, refused file types.

use super::*;
use std::os::unix::fs::PermissionsExt;

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
    save(&p, &mut Watchlist::new("m:1"), &s).unwrap();
    let before = std::fs::read(&p).unwrap();
    let r: Result<(), WatchlistError> = update(
        &p,
        &wait(),
        || Ok(key(5)),
        |w, _| {
            w.model_id = "changed".into();
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
    save(&p, &mut Watchlist::new("m:1"), &s).unwrap();
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
    save(&real, &mut Watchlist::new("m:1"), &s).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    update::<_, WatchlistError>(
        &link,
        &wait(),
        || Ok(key(7)),
        |w, _| {
            w.model_id = "m:2".into();
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
        load(&real, &s).unwrap().model_id,
        "m:2",
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
    save(&p, &mut Watchlist::new("m:1"), &s).unwrap();
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
            w.model_id = "m:3".into();
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
    save(&p, &mut Watchlist::new("m:1"), &key(9)).unwrap();
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
