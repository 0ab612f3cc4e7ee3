// SPDX-License-Identifier: MIT
//! The `faceveil` command as an operator uses it: retention that only shortens, bounded default
//! expiry, the audit log of a symlinked list, the actor the log names, and a closed pipe.

mod common;

use std::process::{Command, Stdio};

use common::{cli, cli_ok, generation, photo, require_runtime, scratch};

/// `list --json`'s line for `label`.
fn entry(list: &std::path::Path, label: &str) -> serde_json::Value {
    cli_ok(list, &["list", "--json"])
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["label"] == label)
        .unwrap_or_else(|| panic!("{label} is not on the list"))
}

/// Re-enrolling someone already on the list without `--expires` keeps their expiry: the list's
/// default expiry (30 days here) must not extend a shorter one, nor revive an expired entry.
#[test]
fn re_enrolling_keeps_the_expiry_unless_told() {
    require_runtime();
    let d = scratch("cli-retention");
    let list = d.join("w.fvl");
    cli_ok(&list, &["init", "--default-expiry", "30d"]);
    let obama = photo("obama.jpg");
    let obama = obama.to_str().unwrap();
    let obama2 = photo("obama2.jpg");
    let obama2 = obama2.to_str().unwrap();
    cli_ok(
        &list,
        &["enroll", "--label", "obama", "--expires", "2d", obama],
    );
    let before = entry(&list, "obama")["expires_at"].clone();
    assert!(before.is_string(), "{before}");
    cli_ok(&list, &["enroll", "--label", "obama", obama2]);
    let after = entry(&list, "obama");
    assert_eq!(
        after["expires_at"], before,
        "re-enrolment changed the expiry"
    );
    let models = after["models"].as_object().unwrap();
    assert!(
        !models.is_empty() && models.values().all(|n| *n == 2),
        "the second photo was not added under each model: {after}"
    );

    // An expired entry stays expired (and says so) when a photo is added without --expires.
    cli_ok(
        &list,
        &[
            "enroll",
            "--label",
            "biden",
            "--expires",
            "2000-01-01T00:00:00Z",
            obama,
        ],
    );
    let text = cli_ok(&list, &["enroll", "--label", "biden", obama2]);
    assert!(text.contains("stays expired"), "{text}");
    assert_eq!(entry(&list, "biden")["expired"], true);
    // A new person gets the list's default.
    let biden = photo("biden.jpg");
    cli_ok(
        &list,
        &["enroll", "--label", "joe", biden.to_str().unwrap()],
    );
    assert!(entry(&list, "joe")["expires_at"].is_string());
    // Told to: --expires sets it, also further out.
    cli_ok(
        &list,
        &["enroll", "--label", "obama", "--expires", "60d", obama2],
    );
    assert_ne!(entry(&list, "obama")["expires_at"], before);
}

/// `init --default-expiry` is bounded like `--expires`: none of these makes a list.
#[test]
fn the_default_expiry_is_bounded() {
    let d = scratch("cli-default-expiry");
    for bad in ["0s", "10000y", "500000000000y"] {
        let list = d.join(format!("{}.fvl", bad.len()));
        let (code, text) = cli(&list, &["init", "--default-expiry", bad]);
        assert_eq!(code, 2, "{bad}: {text}");
        assert!(text.contains("--default-expiry"), "{bad}: {text}");
        assert!(!list.exists(), "{bad}: a list was written");
    }
    let list = d.join("ok.fvl");
    cli_ok(&list, &["init", "--default-expiry", "365d"]);
}

/// A symlinked `--list` writes its audit line beside the list it points to, where `audit verify`
/// of the real name finds it; the actor is the real user, whatever `$USER` says.
#[test]
fn a_symlinked_list_audits_beside_the_list_as_the_real_user() {
    let d = scratch("cli-symlink");
    let real = d.join("real.fvl");
    let link = d.join("link.fvl");
    cli_ok(&real, &["init"]);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("--list")
        .arg(&link)
        .arg("--key-file")
        .arg(d.join("real.fvl.key"))
        .arg("rekey")
        .env("USER", "mallory")
        .env_remove("SUDO_USER")
        .env_remove("FACEVEIL_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !d.join("link.fvl.audit").exists(),
        "audit line beside the link"
    );
    let log = std::fs::read_to_string(d.join("real.fvl.audit")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    let me = Command::new("id").arg("-un").output().unwrap();
    let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
    for line in log.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["actor"], me.as_str(), "not the real user: {line}");
    }
    cli_ok(&real, &["audit", "verify"]);
}

/// `faceveil list | head -1`: the closed pipe ends the command quietly, no panic (exit 101).
#[test]
fn a_closed_pipe_is_no_panic() {
    let d = scratch("cli-pipe");
    let list = d.join("w.fvl");
    cli_ok(&list, &["init"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("--list")
        .arg(&list)
        .arg("list")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before the first line
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The generation a matcher on this machine used for `list`, as the service's state directory
/// `state` records it.
fn record_in_state(state: &std::path::Path, list: &std::path::Path, used: u64) {
    use gstfaceveil::engine::watchlist::reload::floor::Floor;
    std::fs::create_dir_all(state).unwrap();
    Floor::new(state, list).unwrap().set(used).unwrap();
}

/// `init --force` over a list writes a generation above the old list's (and above the one the
/// state directory records), so that a running matcher takes the new list instead of refusing it
/// as an older copy; so does `init` after the list was deleted.
#[test]
fn init_over_a_list_is_a_newer_generation() {
    require_runtime();
    let d = scratch("cli-init-force");
    let list = d.join("w.fvl");
    cli_ok(&list, &["init"]);
    let photo = photo("obama.jpg");
    cli_ok(
        &list,
        &["enroll", "--label", "obama", photo.to_str().unwrap()],
    );
    cli_ok(&list, &["rekey"]);
    let used = generation(&list);
    assert!(used >= 3, "{used}");
    cli_ok(&list, &["init", "--force"]);
    assert_eq!(generation(&list), used + 1);
    assert!(cli_ok(&list, &["list"]).starts_with("0 identities"));

    // The key is lost (the usual reason to start over): the state directory still knows.
    let state = d.join("state");
    record_in_state(&state, &list, 40);
    std::fs::remove_file(d.join("w.fvl.key")).unwrap();
    let text = cli_ok(
        &list,
        &["init", "--force", "--state-dir", state.to_str().unwrap()],
    );
    assert!(text.contains("does not open"), "{text}");
    assert_eq!(generation(&list), 41);

    // The list deleted, then made again: above what the state directory records.
    std::fs::remove_file(&list).unwrap();
    std::fs::remove_file(d.join("w.fvl.key")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("--list")
        .arg(&list)
        .arg("init")
        .env("FACEVEIL_STATE_DIR", &state)
        .env_remove("FACEVEIL_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(generation(&list), 41);
    std::fs::remove_dir_all(&d).unwrap();
}

/// `restore` goes above the generation the state directory records: the one given, or the one
/// FACEVEIL_STATE_DIR names (else the service's, /var/lib/faceveil/state, when it exists).
#[test]
fn restore_goes_above_the_state_directory() {
    require_runtime();
    let d = scratch("cli-restore-state");
    let list = d.join("w.fvl");
    cli_ok(&list, &["init"]);
    let backup = d.join("backup.fvl");
    std::fs::copy(&list, &backup).unwrap();
    let state = d.join("state");
    record_in_state(&state, &list, 20);
    let text = cli_ok(
        &list,
        &[
            "restore",
            backup.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert!(text.contains("as generation 21"), "{text}");
    record_in_state(&state, &list, 30);
    let out = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("--list")
        .arg(&list)
        .arg("restore")
        .arg(&backup)
        .env("FACEVEIL_STATE_DIR", &state)
        .env_remove("FACEVEIL_KEY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("as generation 31"), "{text}");
    assert_eq!(generation(&list), 31);
    std::fs::remove_dir_all(&d).unwrap();
}
