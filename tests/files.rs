// SPDX-License-Identifier: MIT
//! The list's and key's files as docs/NVR.md deploys them (root:faceveil 0640, root runs the CLI,
//! the service user reads): writes keep group and mode, key files and directories that others can
//! write are refused, a rekey whose pending key is tampered with never reports success with a lost
//! key, and a full disk neither damages the list nor loses the runner's events.
//!
//! The tests that need root (a group, a user, `mount -t tmpfs`) say why and return early without
//! it; CI runs them as root.

mod common;

use std::io::{BufRead, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    RtspCamera, cli, cli_ok, fake_model, fake_model_id, free_port, matches_in, obama_list, photo,
    require_runtime, scratch, wait_until, write_list,
};
use gstfaceveil::engine::watchlist::file::Secret;
use gstfaceveil::engine::watchlist::store::{load, read_key_file, write_key_file};

const KEY: [u8; 32] = [0x2a; 32];

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// False (and says why) when the test cannot run here.
fn root_or_skip(what: &str) -> bool {
    if !is_root() {
        eprintln!("skipped: {what} needs root (CI runs it as root)");
    }
    is_root()
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// (uid, gid, mode) of a file.
fn meta(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The stand-in for the deployment's `faceveil` account (common::SERVICE_USER): (uid, gid).
fn service_account() -> (u32, u32) {
    common::faceveil_service_user().expect("root (checked by the caller)")
}

/// `faceveil --list L --key-file K <args>` as the service user (its uid, its group, no other).
fn as_service(uid: u32, gid: u32, list: &Path, key: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--",
            env!("CARGO_BIN_EXE_faceveil"),
        ])
        .arg("--list")
        .arg(list)
        .arg("--key-file")
        .arg(key)
        .args(args)
        .env("HOME", "/nonexistent")
        .env_remove("FACEVEIL_KEY")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The list (as docs/NVR.md lays it out) stays `root:<group> 0640` through root's `enroll`,
/// `remove`, `rekey` and `remove --rekey`, and so does the key through the rekeys; the service
/// user (that group, nothing else) can `verify` it after each. Before, every write made the list
/// (and a rekey the key) `root:root 0600`: the service lost it at its next reload.
#[test]
fn roots_writes_keep_the_services_group_and_mode() {
    if !root_or_skip("a service user and group") {
        return;
    }
    require_runtime();
    let (uid, gid) = service_account();
    let d = scratch("files-group");
    chmod(&d, 0o755);
    // install -d -m 0750 -o root -g faceveil /var/lib/faceveil /etc/faceveil
    let (lib, etc) = (d.join("lib"), d.join("etc"));
    for dir in [&lib, &etc] {
        std::fs::create_dir(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(0), Some(gid)).unwrap();
        chmod(dir, 0o750);
    }
    let list = lib.join("watchlist.fvl");
    let key = etc.join("watchlist.key");
    let k = key.to_str().unwrap();
    cli_ok(&list, &["--key-file", k, "init", "--default-expiry", "90d"]);
    // Once, after init, as NVR.md says.
    for f in [&list, &key] {
        std::os::unix::fs::chown(f, None, Some(gid)).unwrap();
        chmod(f, 0o640);
    }
    let service_reads = |step: &str| {
        let (code, text) = as_service(uid, gid, &list, &key, &["verify"]);
        assert_eq!(
            code, 0,
            "after {step}, the service cannot read the list: {text}"
        );
        assert!(text.contains("ok: "), "{text}");
        assert_eq!(meta(&list), (0, gid, 0o640), "the list after {step}");
        assert_eq!(meta(&key), (0, gid, 0o640), "the key after {step}");
    };
    service_reads("init");
    let (obama, biden) = (photo("obama.jpg"), photo("biden.jpg"));
    let (obama, biden) = (obama.to_str().unwrap(), biden.to_str().unwrap());
    let steps: [(&str, Vec<&str>); 6] = [
        ("enroll", vec!["enroll", "--label", "obama", obama]),
        ("enroll", vec!["enroll", "--label", "biden", biden]),
        ("remove", vec!["remove", "--label", "biden"]),
        ("rekey", vec!["rekey"]),
        ("enroll", vec!["enroll", "--label", "biden", biden]),
        (
            "remove --rekey",
            vec!["remove", "--label", "biden", "--rekey"],
        ),
    ];
    for (step, args) in steps {
        let mut all = vec!["--key-file", k];
        all.extend(args);
        let out = cli_ok(&list, &all);
        assert!(!out.contains("warning: "), "{step}: {out}");
        service_reads(step);
    }
    let (_, text) = as_service(uid, gid, &list, &key, &["list"]);
    assert!(
        text.contains("1 identity") && text.contains("obama"),
        "{text}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A key file its group or other users can write is refused (exit 6, naming the file and the
/// fix); one every user can read is used with a warning; a list is not written into a directory
/// others can write (sticky or not), nor a key by a rekey, and nothing changes then.
#[test]
fn key_files_and_directories_others_can_write_are_refused() {
    let d = scratch("files-perms");
    chmod(&d, 0o755);
    let model = fake_model(&d);
    let m = model.to_str().unwrap();
    let list = d.join("w.fvl");
    write_list(&list, &fake_model_id(&model), &[("alice", 1)], KEY);
    let key = d.join("w.fvl.key");
    write_key_file(&key, &KEY, false).unwrap();
    for mode in [0o660, 0o646, 0o622] {
        chmod(&key, mode);
        let (code, text) = cli(&list, &["--model", m, "verify"]);
        assert_eq!(code, 6, "{mode:o}: {text}");
        let k = key.display();
        assert!(
            text.contains(&format!("chmod 0640 {k}")) && text.contains(&format!("chmod 0600 {k}")),
            "{text}"
        );
    }
    chmod(&key, 0o644);
    let text = cli_ok(&list, &["--model", m, "verify"]);
    assert!(
        text.contains(&format!(
            "warning: key file {} is readable by every user",
            key.display()
        )),
        "{text}"
    );
    chmod(&key, 0o640);
    assert!(!cli_ok(&list, &["--model", m, "verify"]).contains("warning"));

    for mode in [0o777, 0o1777, 0o775] {
        let open = d.join(format!("open{mode:o}"));
        std::fs::create_dir(&open).unwrap();
        chmod(&open, mode);
        let (code, text) = cli(&open.join("w.fvl"), &["--model", m, "init"]);
        assert_eq!(code, 3, "{text}");
        assert!(
            text.contains(&format!("chmod go-w {}", open.display())),
            "{text}"
        );
        assert_eq!(
            std::fs::read_dir(&open).unwrap().count(),
            0,
            "nothing written"
        );
        // A rekey whose key file is in such a directory writes nothing either.
        let moved = open.join("w.key");
        let (code, text) = cli(&list, &["--key-file", moved.to_str().unwrap(), "rekey"]);
        assert_eq!(code, 3, "{text}");
        assert!(text.contains("chmod go-w"), "{text}");
        assert!(load(&list, &Secret::Key(KEY)).is_ok(), "the list unchanged");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A process that can write the key's directory swaps every pending key it sees (a hard link to
/// another key file, or a symlink) while four rekeys run. Each rekey either succeeds, and the key
/// file opens the list, or fails saying so and where the new key is (which opens the list; the
/// operator moves it into place). Before, the pending key had a fixed name and was renamed by
/// name: the rekey said it succeeded while the key file held the other file.
#[test]
fn a_rekey_whose_pending_key_is_swapped_never_reports_success_with_a_lost_key() {
    let d = scratch("files-rekey-race");
    chmod(&d, 0o755);
    let model = fake_model(&d);
    let list = d.join("w.fvl");
    write_list(
        &list,
        &fake_model_id(&model),
        &[("alice", 1), ("bob", 2)],
        KEY,
    );
    let key = d.join("w.fvl.key");
    write_key_file(&key, &KEY, false).unwrap();
    let decoy = d.join("decoy.key");
    write_key_file(&decoy, &[0x99; 32], false).unwrap();
    let victim = d.join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let attacker = {
        let (d, decoy, victim, stop, swapped) = (
            d.clone(),
            decoy.clone(),
            victim.clone(),
            stop.clone(),
            swapped.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if !name.contains(".key.new") {
                        continue;
                    }
                    n += 1;
                    let _ = std::fs::remove_file(e.path());
                    let done = if n.is_multiple_of(2) {
                        std::fs::hard_link(&decoy, e.path())
                    } else {
                        std::os::unix::fs::symlink(&victim, e.path())
                    };
                    if done.is_ok() {
                        swapped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let labels = |k: [u8; 32]| -> Vec<String> {
        load(&list, &Secret::Key(k))
            .map(|l| l.identities.into_iter().map(|i| i.label).collect())
            .unwrap_or_default()
    };
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..4 {
        let (code, text) = cli(&list, &["rekey"]);
        if code == 0 {
            ok += 1;
            let k = read_key_file(&key).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(
                labels(k),
                ["alice", "bob"],
                "a rekey said it succeeded, but the key file does not open the list: {text}"
            );
            continue;
        }
        refused += 1;
        assert!(text.contains("NOT the new key"), "{text}");
        // "... kept in R: check the directory, then mv R K"
        let kept = text
            .split("mv ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no recovery named: {text}"));
        let k = read_key_file(Path::new(kept)).unwrap();
        assert_eq!(labels(k), ["alice", "bob"], "the kept key opens the list");
        std::fs::rename(kept, &key).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    eprintln!(
        "{ok} rekeys succeeded, {refused} refused; {} pending names swapped",
        swapped.load(Ordering::Relaxed)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    assert_eq!(
        labels(read_key_file(&key).unwrap()),
        ["alice", "bob"],
        "the list opens with its key file at the end"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A tmpfs of `size` mounted (mode 0755) at `dir`, unmounted when dropped, also when the test
/// fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "faceveil-test-tmpfs",
                dir.to_str().unwrap(),
            ],
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still in use (a process the test started): detached now, gone when it ends.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A child process killed when dropped (before the file system it writes to is unmounted).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fills the file system of `dir` to the last byte with `<dir>/filler`; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let p = dir.join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            break;
        }
    }
    p
}

/// `enroll` on a full disk fails naming the list and the cause (exit 3); the old list verifies
/// with everyone on it, and no temporary file stays. Before, the message named a temporary file.
#[test]
fn a_list_write_on_a_full_disk_fails_naming_the_list_and_keeps_the_old_one() {
    if !root_or_skip("mount -t tmpfs") {
        return;
    }
    require_runtime();
    let d = scratch("files-full-list");
    let fs = Tmpfs::mount(&d.join("fs"), "2m");
    let list = fs.0.join("w.fvl");
    // The audit log elsewhere: here the list write is what meets the full disk.
    let audit = d.join("w.audit");
    let a = audit.to_str().unwrap();
    cli_ok(&list, &["--audit-log", a, "init"]);
    for (label, p) in [("obama", "obama.jpg"), ("biden", "biden.jpg")] {
        let p = photo(p);
        cli_ok(
            &list,
            &[
                "--audit-log",
                a,
                "enroll",
                "--label",
                label,
                p.to_str().unwrap(),
            ],
        );
    }
    let before = std::fs::read(&list).unwrap();
    fill(&fs.0);
    let p = photo("obama3.jpg");
    let (code, text) = cli(
        &list,
        &[
            "--audit-log",
            a,
            "enroll",
            "--label",
            "obama",
            p.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains(&format!("{}: No space left on device", list.display()))
            && text.contains("unchanged"),
        "{text}"
    );
    assert_eq!(std::fs::read(&list).unwrap(), before);
    let out = cli_ok(&list, &["--audit-log", a, "verify"]);
    assert!(out.contains("2 identities"), "{out}");
    let out = cli_ok(&list, &["list"]);
    assert!(out.contains("obama") && out.contains("biden"), "{out}");
    let temps: Vec<String> = std::fs::read_dir(&fs.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    drop(fs);
    std::fs::remove_dir_all(&d).unwrap();
}

/// An audit append that meets a full disk (a line longer than a page, so that part of it would fit)
/// fails, and leaves no partial line: once there is room again, the log verifies.
#[test]
fn an_audit_append_on_a_full_disk_leaves_no_partial_line() {
    if !root_or_skip("mount -t tmpfs") {
        return;
    }
    require_runtime();
    let d = scratch("files-full-audit");
    let fs = Tmpfs::mount(&d.join("fs"), "2m");
    let list = obama_list(&fs.0);
    let filler = fill(&fs.0);
    let p = photo("biden.jpg");
    let label = "b".repeat(6000);
    let (code, text) = cli(&list, &["enroll", "--label", &label, p.to_str().unwrap()]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("No space left"), "{text}");
    std::fs::remove_file(filler).unwrap();
    let out = cli_ok(&list, &["list"]);
    assert!(
        !out.contains(&label),
        "the list was written after a failed audit line: {out}"
    );
    let out = cli_ok(&list, &["audit", "verify"]);
    assert!(!out.contains("incomplete"), "{out}");
    cli_ok(&list, &["enroll", "--label", "biden", p.to_str().unwrap()]);
    cli_ok(&list, &["audit", "verify"]);
    drop(fs);
    std::fs::remove_dir_all(&d).unwrap();
}

/// `faceveil-nvr` writing its events to a full disk: the match that cannot be written waits in
/// memory (said on standard error), and lands in the events file once there is room again (said
/// too), whole. Before, it went to standard error only and never reached the file.
#[test]
fn nvr_events_that_meet_a_full_disk_are_written_when_there_is_room() {
    if !root_or_skip("mount -t tmpfs") {
        return;
    }
    require_runtime();
    let d = scratch("files-full-nvr");
    let list = obama_list(&d);
    let fs = Tmpfs::mount(&d.join("fs"), "1m");
    let events = fs.0.join("events.jsonl");
    let filler = fill(&fs.0);
    let port = free_port();
    let _camera = RtspCamera::start(port, "obama2.jpg");
    let mut nvr = Killed(
        Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
            .arg("--watchlist")
            .arg(&list)
            .arg("--out")
            .arg(&events)
            // the match is the first line to meet the full disk
            .args(["--health-interval", "0"])
            .arg(format!("door={}", RtspCamera::url(port)))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let said = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (said, stderr) = (said.clone(), nvr.0.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut s = said.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        })
    };
    let said_now = || said.lock().unwrap().clone();
    let failed = wait_until(Duration::from_secs(120), || {
        said_now().contains("cannot be written")
    });
    assert!(failed, "no failed write said: {}", said_now());
    assert_eq!(matches_in(&events), 0);
    assert!(said_now().contains("No space left"), "{}", said_now());
    std::fs::remove_file(&filler).unwrap();
    let landed = wait_until(Duration::from_secs(20), || matches_in(&events) >= 1);
    drop(nvr);
    let _ = reader.join();
    assert!(landed, "the match never reached the file: {}", said_now());
    assert!(said_now().contains("written again"), "{}", said_now());
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "only whole lines: {text}"
    );
    drop(fs);
    std::fs::remove_dir_all(&d).unwrap();
}
