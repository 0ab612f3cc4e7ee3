// SPDX-License-Identifier: MIT
//! The hardening of docs/WATCHLIST.md's threat model, each through the real `faceveil` CLI (or the
//! element): no telemetry, symlinked paths, planted temporary files, rollback, bad values, honest
//! messages, secrets that cannot be copied, erasure by rekeying, and lock waits. Apart from the
//! telemetry test, none needs ONNX Runtime: lists are written through the library with a stand-in
//! embedder model.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cli, cli_ok, fake_model, fake_model_id, scratch, write_list};
use gstfaceveil::engine::watchlist::file::Secret;
use gstfaceveil::engine::watchlist::store::{Lock, Wait, load, read_key_file, write_key_file};

const KEY: [u8; 32] = [0x17; 32];

/// `<dir>/w.fvl` with alice and bob under KEY, its key file `<dir>/w.fvl.key`, and the stand-in
/// model (for the commands that check the model).
fn list(dir: &Path) -> (PathBuf, PathBuf) {
    let model = fake_model(dir);
    let list = dir.join("w.fvl");
    write_list(
        &list,
        &fake_model_id(&model),
        &[("alice", 1), ("bob", 2)],
        KEY,
    );
    write_key_file(&dir.join("w.fvl.key"), &KEY, false).unwrap();
    (list, model)
}

fn labels(list: &Path, key: [u8; 32]) -> Vec<String> {
    load(list, &Secret::Key(key))
        .unwrap()
        .identities
        .into_iter()
        .map(|i| i.label)
        .collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Everything below `dir`, recursively (files and folders).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn no_telemetry_files_from_the_cli_or_a_pipeline() {
    common::require_runtime();
    let d = scratch("telemetry");
    let home = d.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let list = d.join("w.fvl");
    // A user whose environment asks for telemetry still gets none.
    let run = |cmd: &mut Command| {
        let out = cmd
            .env("HOME", &home)
            .env_remove("XDG_CACHE_HOME")
            .env("ORT_DISABLE_TELEMETRY", "0")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let fw = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_faceveil"));
        c.arg("--list").arg(&list);
        c
    };
    run(fw().arg("init"));
    run(fw()
        .args(["enroll", "--label", "obama"])
        .arg(common::photo("obama.jpg")));
    // a pipeline in another process: veildetect through the public pipeline runner
    run(Command::new(common::example("detect")).arg(common::photo("t1.jpg")));
    let found: Vec<PathBuf> = walk(&home)
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.contains("Microsoft") || s.contains("onnxruntime") || s.ends_with("deviceid")
        })
        .collect();
    assert!(found.is_empty(), "telemetry left: {found:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// The whole debug log (every category at level 9) of `veilbin` over `photo`, with obama on
/// the list.
fn debug_log_of(d: &Path, list: &Path, photo: &str) -> String {
    let log = d.join(format!("{photo}.log"));
    let out = Command::new("gst-launch-1.0")
        .arg("-m")
        .args([
            "filesrc",
            &format!("location={}", common::photo(photo).display()),
        ])
        .args([
            "!",
            "decodebin",
            "!",
            "imagefreeze",
            "num-buffers=4",
            "!",
            "veilbin",
        ])
        .arg(format!("watchlist={}", list.display()))
        .args(["!", "fakesink"])
        .env("GST_PLUGIN_PATH", common::plugin_dir())
        .env("GST_REGISTRY", d.join("registry.bin"))
        .env("GST_DEBUG", "*:9")
        .env("GST_DEBUG_NO_COLOR", "1")
        .env("GST_DEBUG_FILE", &log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(&log).unwrap() + &String::from_utf8_lossy(&out.stdout)
}

#[test]
fn no_label_of_a_face_that_did_not_match_in_the_debug_log() {
    common::require_runtime();
    let d = scratch("sec-bystander");
    let list = common::obama_list(&d);
    let log = debug_log_of(&d, &list, "biden.jpg");
    assert!(log.contains("faceveil"), "the log has the elements' lines");
    assert!(log.len() > 100_000, "a level-9 log ({} bytes)", log.len());
    assert!(
        !log.contains("obama"),
        "a bystander's nearest list label is logged"
    );
    // The control: when obama himself is seen, his label does appear (in the match message).
    let log = debug_log_of(&d, &list, "obama2.jpg");
    assert!(
        log.contains("label=(string)obama"),
        "the log would show a label"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn remove_through_a_symlink_changes_the_real_list() {
    let d = scratch("sec-symlink");
    let (real, _) = list(&d);
    let link = d.join("link.fvl");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let key = d.join("w.fvl.key");
    let k = key.to_str().unwrap();
    cli_ok(&link, &["--key-file", k, "remove", "--label", "bob"]);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    assert_eq!(labels(&real, KEY), ["alice"], "the list the pipeline reads");
    std::fs::remove_dir_all(&d).unwrap();
}

/// The names created directly in `dir` while `f` runs (inotify's IN_CREATE events).
fn created_in(dir: &Path, f: impl FnOnce()) -> Vec<String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a new inotify descriptor, owned by `events` from here on.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(
        fd >= 0,
        "inotify_init1: {}",
        std::io::Error::last_os_error()
    );
    let mut events = unsafe { std::fs::File::from_raw_fd(fd) };
    // SAFETY: a valid descriptor and a NUL-terminated path.
    let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_CREATE) };
    assert!(
        wd >= 0,
        "inotify_add_watch: {}",
        std::io::Error::last_os_error()
    );
    f();
    let mut names = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // struct inotify_event: wd, mask, cookie, len (4 bytes each), then `len` bytes of name (NUL
    // padded). Reading stops when the queue is empty (WouldBlock).
    while let Ok(n) = events.read(&mut buf) {
        let mut at = 0;
        while at + 16 <= n {
            let mask = u32::from_ne_bytes(buf[at + 4..at + 8].try_into().unwrap());
            assert_eq!(mask & libc::IN_Q_OVERFLOW, 0, "inotify queue overflow");
            let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
            let name = buf[at + 16..at + 16 + len]
                .split(|b| *b == 0)
                .next()
                .unwrap();
            names.push(String::from_utf8_lossy(name).to_string());
            at += 16 + len;
        }
    }
    names
}

/// The random part of a writer's temporary name (`.<file>.tmp.<suffix>`), `None` for other names.
fn temp_suffix(name: &str) -> Option<&str> {
    name.strip_prefix('.')?.split_once(".tmp.").map(|(_, s)| s)
}

#[test]
fn planted_files_are_neither_followed_nor_kept() {
    let d = scratch("sec-planted");
    let (list, model) = list(&d);
    // The temporary names writers pick: the list saves of three rekeys and of an init of another
    // list (keys go through a pending name, `<key>.new.<16 random hex digits>`, created
    // exclusively, then renamed and checked).
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend(created_in(&d, || {
            cli_ok(&list, &["rekey"]);
        }));
    }
    seen.extend(created_in(&d, || {
        cli_ok(
            &d.join("other.fvl"),
            &["--model", model.to_str().unwrap(), "init"],
        );
    }));
    let temps: Vec<&str> = seen.iter().filter_map(|n| temp_suffix(n)).collect();
    assert!(
        seen.iter().filter(|n| n.starts_with(".w.fvl.tmp.")).count() == 3
            && seen.iter().any(|n| n.starts_with(".other.fvl.tmp."))
            && temps.len() == 4,
        "{seen:?}"
    );
    // Unpredictable: 64 random bits each (16 hex digits), no two alike, nor sharing most of their
    // digits as a time, a pid or a counter would.
    for (i, a) in temps.iter().enumerate() {
        assert!(
            a.len() == 16 && a.bytes().all(|b| b.is_ascii_hexdigit()),
            "{a}: not 16 hex digits ({seen:?})"
        );
        for b in &temps[i + 1..] {
            let same = a.bytes().zip(b.bytes()).filter(|(x, y)| x == y).count();
            assert!(same < 10, "{a} and {b} share {same} of 16 digits");
        }
    }

    // Names a writer would open if it picked them again (every name seen above, for the list and
    // for its key), the fixed pending key name older versions used, and a crashed writer's
    // leftover: links to a file that an attacker owns.
    let victim = d.join("attacker-owned");
    std::fs::write(&victim, b"attacker").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o666)).unwrap();
    for suffix in &temps {
        for name in [".w.fvl.tmp.", ".w.fvl.key.tmp.", ".w.fvl.key.new.tmp."] {
            std::os::unix::fs::symlink(&victim, d.join(format!("{name}{suffix}"))).unwrap();
        }
    }
    std::os::unix::fs::symlink(&victim, d.join("w.fvl.key.new")).unwrap();
    let last = created_in(&d, || {
        cli_ok(&list, &["rekey"]);
    });
    for name in &last {
        assert!(
            temp_suffix(name).is_none_or(|s| !temps.contains(&s)),
            "{name} picked again"
        );
    }
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"attacker",
        "nothing written through a link"
    );
    assert_eq!(mode(&list), 0o600);
    let key = d.join("w.fvl.key");
    assert!(std::fs::symlink_metadata(&key).unwrap().is_file());
    assert_eq!(mode(&key), 0o600);
    let new_key = read_key_file(&key).unwrap();
    assert_ne!(new_key, KEY);
    assert_eq!(labels(&list, new_key), ["alice", "bob"]);
    let left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".w.fvl.tmp."))
        .collect();
    assert!(
        left.is_empty(),
        "stale temporary names of the list swept: {left:?}"
    );
    assert!(
        std::fs::symlink_metadata(d.join("w.fvl.key.new")).is_err(),
        "a planted pending name is swept under the lock"
    );
    let pending: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("w.fvl.key.new"))
        .collect();
    assert!(
        pending.is_empty(),
        "the pending key became the key: {pending:?}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn verify_shows_the_generation_and_the_element_refuses_a_rollback() {
    let d = scratch("sec-rollback");
    let (list, model) = list(&d);
    let m = model.to_str().unwrap();
    let old_copy = std::fs::read(&list).unwrap();
    let out = cli_ok(&list, &["--model", m, "verify"]);
    assert!(out.contains("generation 1"), "{out}");
    cli_ok(&list, &["remove", "--label", "bob"]);
    let out = cli_ok(&list, &["--model", m, "verify"]);
    assert!(
        out.contains("generation 2") && out.contains("written 20"),
        "{out}"
    );

    // A running matcher holds generation 2; the old copy (generation 1, bob still in it) is put
    // back: the reload is refused with a warning and bob stays removed.
    common::init();
    use gst::prelude::*;
    let element = gst::ElementFactory::make("veilmatch")
        .property("watchlist", list.to_str().unwrap())
        .property("model", m)
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    assert_eq!(element.property::<u32>("identities"), 1);
    std::fs::write(&list, &old_copy).unwrap();
    assert!(!element.emit_by_name::<bool>("reload", &[]));
    let warning = std::iter::from_fn(|| bus.pop())
        .find_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .expect("a warning");
    assert!(
        warning.contains("older copy") && warning.contains("generation 1"),
        "{warning}"
    );
    assert_eq!(element.property::<u32>("identities"), 1);
    drop(h);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_values_are_refused_and_nothing_panics() {
    let d = scratch("sec-values");
    let (list, model) = list(&d);
    let m = model.to_str().unwrap();
    for bad in [
        "10000y",
        "3000-01-01T00:00:00Z",
        "1969-12-31T00:00:00Z",
        "-5d",
        "soon",
    ] {
        let arg = format!("--expires={bad}");
        let (code, text) = cli(
            &list,
            &["--model", m, "enroll", "--label", "x", &arg, "none.jpg"],
        );
        assert_eq!(code, 2, "--expires {bad}: {text}");
        assert!(text.contains("--expires"), "{text}");
    }
    // A list that already holds an absurd expiry (old or crafted) still lists.
    let mut w = load(&list, &Secret::Key(KEY)).unwrap();
    w.identities[0].expires_at = Some(i64::MAX);
    w.identities[1].expires_at = Some(-1);
    gstfaceveil::engine::watchlist::store::save(&list, &mut w, &Secret::Key(KEY)).unwrap();
    let out = cli_ok(&list, &["list"]);
    assert!(out.contains("unix seconds"), "{out}");
    cli_ok(&list, &["list", "--json"]);

    // A FIFO as the list: refused at once, not a hang.
    let fifo = d.join("fifo.fvl");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::fs::copy(d.join("w.fvl.key"), d.join("fifo.fvl.key")).unwrap();
    let t = Instant::now();
    let (code, text) = cli(&fifo, &["list"]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("not a regular file"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(10));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_key_is_read_after_the_lock() {
    let d = scratch("sec-keyorder");
    let (list, _) = list(&d);
    // Hold the lock, start a remove (it waits), rekey the list meanwhile, then let go: the remove
    // must use the new key, not fail with the old one.
    let lock = Lock::acquire(&list, &Wait::quiet(Duration::from_secs(5))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("--list")
        .arg(&list)
        .args(["remove", "--label", "bob"])
        .env_remove("FACEVEIL_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it says that it waits for the lock.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    let t = Instant::now();
    while !said.contains("waiting for the lock") {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no wait message: {said}"
        );
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            panic!("remove ended without waiting: {said}");
        }
        said += &line;
    }
    let new_key = [0x99; 32];
    let mut w = load(&list, &Secret::Key(KEY)).unwrap();
    gstfaceveil::engine::watchlist::store::save(&list, &mut w, &Secret::Key(new_key)).unwrap();
    write_key_file(&d.join("w.fvl.key"), &new_key, true).unwrap();
    drop(lock);
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &said + &rest;
    assert!(out.status.success(), "{text}");
    assert_eq!(labels(&list, new_key), ["alice"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_writer_that_waits_says_for_whom_and_gives_up() {
    let d = scratch("sec-wait");
    let (list, _) = list(&d);
    let _lock = Lock::acquire(&list, &Wait::quiet(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let (code, text) = cli(&list, &["--wait", "1", "remove", "--label", "bob"]);
    assert_eq!(code, 10, "{text}");
    assert!(t.elapsed() >= Duration::from_secs(1));
    let pid = format!("process {}", std::process::id());
    assert!(
        text.contains("waiting for the lock") && text.contains(&pid),
        "{text}"
    );
    assert!(text.contains("gave up after"), "{text}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn messages_say_what_is_known() {
    let d = scratch("sec-honest");
    let (list, model) = list(&d);
    let m = model.to_str().unwrap();
    // A flipped key-check byte: wrong key or tampering, and it says both.
    let mut bytes = std::fs::read(&list).unwrap();
    bytes[12] ^= 1;
    let flipped = d.join("flipped.fvl");
    std::fs::write(&flipped, &bytes).unwrap();
    std::fs::copy(d.join("w.fvl.key"), d.join("flipped.fvl.key")).unwrap();
    let (code, text) = cli(&flipped, &["--model", m, "verify"]);
    assert_eq!(code, 6, "{text}");
    assert!(
        text.contains("wrong key") && text.contains("tampering"),
        "{text}"
    );
    // A plaintext list is not called authentic.
    let plain = d.join("plain.fvl");
    let mut w = load(&list, &Secret::Key(KEY)).unwrap();
    gstfaceveil::engine::watchlist::store::save(&plain, &mut w, &Secret::Plaintext).unwrap();
    let out = cli_ok(&plain, &["--plaintext", "--model", m, "verify"]);
    assert!(
        out.contains("NOT authenticated") && !out.contains(" authentic,"),
        "{out}"
    );
    let out = cli_ok(&list, &["--model", m, "verify"]);
    assert!(out.contains("authenticated with its key"), "{out}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// `Secret` cannot be cloned: a key exists once in memory and is wiped when dropped.
#[test]
fn secrets_cannot_be_copied() {
    struct Probe<T>(std::marker::PhantomData<T>);
    trait NotClone {
        const CLONE: bool = false;
    }
    impl<T> NotClone for Probe<T> {}
    #[allow(dead_code)]
    impl<T: Clone> Probe<T> {
        const CLONE: bool = true;
    }
    let (key_clone, secret_clone) = (Probe::<[u8; 32]>::CLONE, Probe::<Secret>::CLONE);
    assert!(key_clone, "the probe sees Clone");
    assert!(!secret_clone, "Secret must not be Clone");
}

#[test]
fn remove_with_rekey_makes_old_copies_unreadable_with_the_key_in_use() {
    let d = scratch("sec-erase");
    let (list, _) = list(&d);
    let backup = d.join("backup.fvl");
    std::fs::copy(&list, &backup).unwrap();
    let out = cli_ok(&list, &["remove", "--label", "bob", "--rekey"]);
    assert!(
        out.contains("removed 1") && out.contains("re-encrypted"),
        "{out}"
    );
    let key = read_key_file(&d.join("w.fvl.key")).unwrap();
    assert_eq!(labels(&list, key), ["alice"]);
    assert!(
        load(&backup, &Secret::Key(key)).is_err(),
        "the backup that still holds bob does not open with the key in use"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn short_passphrases_need_an_explicit_flag() {
    let d = scratch("sec-pass");
    let model = fake_model(&d);
    let m = model.to_str().unwrap();
    let list = d.join("p.fvl");
    // `faceveil --passphrase-env FW_PASS <args>` with FW_PASS = `pass`: (exit code, output).
    let run = |pass: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_faceveil"))
            .arg("--list")
            .arg(&list)
            .args(["--model", m, "--passphrase-env", "FW_PASS"])
            .args(args)
            .env("FW_PASS", pass)
            .env_remove("FACEVEIL_KEY")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = run("short", &["init", "--force"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("fewer than 12"), "{text}");
    assert!(!list.exists());
    // With the flag the short passphrase makes a list that it, and only it, opens.
    let (code, text) = run("short", &["--weak-passphrase", "init", "--force"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run("short", &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run("short", &["list"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("0 identities"), "{text}");
    let (code, text) = run("shorT", &["verify"]);
    assert_eq!(code, Some(6), "a wrong passphrase opened the list: {text}");
    // A long one needs no flag, and then the short one no longer opens the list.
    let (code, text) = run("a long enough passphrase", &["init", "--force"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run("a long enough passphrase", &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run("short", &["verify"]);
    assert_eq!(code, Some(6), "{text}");
    std::fs::remove_dir_all(&d).unwrap();
}
