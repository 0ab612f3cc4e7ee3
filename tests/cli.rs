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

/// The format version in a list file's header.
fn version(list: &std::path::Path) -> u16 {
    let b = std::fs::read(list).unwrap();
    u16::from_le_bytes([b[8], b[9]])
}

/// Known people (issue 23): `enroll --known` adds one (audited as such), `list` and `export` show
/// the role, `identify` names the known person a face is closest to and never matches them,
/// `edit --role` changes it, they expire, and `remove` takes them off. A list that holds one is
/// format version 6 (older readers refuse it); without one it stays version 5, and a version 5
/// list opens.
#[test]
fn a_known_person_is_enrolled_shown_identified_exported_and_removed() {
    require_runtime();
    let d = scratch("cli-known");
    let list = d.join("w.fvl");
    // one model: quicker than every installed one
    fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--model", "sface.onnx"][..], args].concat()
    }
    let (obama, biden, obama2) = (photo("obama.jpg"), photo("biden.jpg"), photo("obama2.jpg"));
    let (obama, biden, obama2) = (
        obama.to_str().unwrap(),
        biden.to_str().unwrap(),
        obama2.to_str().unwrap(),
    );
    cli_ok(&list, &["init"]);
    cli_ok(&list, &with(&["enroll", "--label", "obama", obama]));
    assert_eq!(version(&list), 5, "a list of listed people only");
    let out = cli_ok(
        &list,
        &with(&["enroll", "--known", "--label", "biden", biden]),
    );
    assert!(
        out.contains("enrolled biden (") && out.contains("a known person (never alerted on)"),
        "{out}"
    );
    assert_eq!(version(&list), 6, "a list with a known person on it");

    // list: the role, in text and JSON; the header counts the known people
    let shown = cli_ok(&list, &["list"]);
    assert!(
        shown.starts_with("2 identities (1 known person), "),
        "{shown}"
    );
    let biden_line = shown.lines().find(|l| l.contains("  biden  ")).unwrap();
    assert!(biden_line.ends_with("  known"), "{biden_line}");
    let obama_line = shown.lines().find(|l| l.contains("  obama  ")).unwrap();
    assert!(!obama_line.ends_with("  known"), "{obama_line}");
    assert_eq!(entry(&list, "biden")["role"], "known");
    assert_eq!(entry(&list, "obama")["role"], "listed");
    let id = entry(&list, "biden")["id"].as_str().unwrap().to_string();
    assert!(cli_ok(&list, &["verify"]).contains("(0 expired, 1 known person)"));

    // identify: biden's face is closest to the known biden, never a match for obama; obama's
    // is a match
    let json = |out: String| -> Vec<serde_json::Value> {
        (out.lines())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let faces = json(cli_ok(&list, &with(&["identify", "--json", biden, obama2])));
    assert_eq!(faces.len(), 2, "{faces:?}");
    assert_eq!(faces[0]["best"], "obama");
    assert_eq!(faces[0]["known"], "biden");
    assert_eq!(faces[0]["known-identity-id"], id.as_str());
    assert!(
        faces[0]["known-score"].as_f64().unwrap() > 0.9,
        "{}",
        faces[0]
    );
    assert_eq!(
        faces[0]["decision"], "no-match",
        "0.11 to obama: under 0.35"
    );
    assert_eq!(faces[1]["decision"], "match");
    assert!(
        faces[1]["known"].is_null(),
        "obama's face is not near biden"
    );
    // at a threshold that biden passes for obama, the known person holds it back
    let text = cli_ok(&list, &with(&["identify", "--threshold", "0.05", biden]));
    assert!(
        text.contains("best obama (score ") && text.contains(", known person biden (score "),
        "{text}"
    );
    assert!(text.contains("→ known at 0.05"), "{text}");
    let held = cli_ok(&list, &["audit", "show", "--json"]);
    assert!(
        held.contains("0 matched face(s), 1 held back for a known person"),
        "{held}"
    );
    // a margin outside 0..1 (or not a number) is refused
    for bad in ["1.5", "-0.1", "nan"] {
        let (code, text) = cli(&list, &with(&["identify", "--known-margin", bad, biden]));
        assert_eq!(code, 2, "{bad}: {text}");
    }

    // the role is kept: enrolling biden without --known is refused; edit --role changes it
    let (code, text) = cli(&list, &with(&["enroll", "--label", "biden", biden]));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("biden is on the list as a known person") && text.contains("--role listed"),
        "{text}"
    );
    cli_ok(&list, &["edit", "--identity", "biden", "--role", "listed"]);
    assert_eq!(entry(&list, "biden")["role"], "listed");
    assert_eq!(version(&list), 5, "nobody known any more");
    cli_ok(&list, &["edit", "--identity", &id, "--role", "known"]);
    assert_eq!(version(&list), 6);

    // suspend and resume say what a known person's entry does
    let out = cli_ok(&list, &["suspend", "--identity", "biden"]);
    assert!(out.contains("no faces held back for them"), "{out}");
    let out = cli_ok(&list, &["resume", "--identity", "biden"]);
    assert!(out.contains("faces held back for them again"), "{out}");

    // export: the entry with its role, and the audit lines about them
    let doc: serde_json::Value =
        serde_json::from_str(&cli_ok(&list, &["export", "--identity", "biden"])).unwrap();
    assert_eq!(doc["identity"]["role"], "known");
    let actions: Vec<&str> = (doc["audit"].as_array().unwrap().iter())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "enroll-known",
            "edit",
            "edit",
            "suspend",
            "resume",
            "export"
        ],
        "{doc}"
    );
    let enrolled = &doc["audit"][0];
    assert!(
        enrolled["detail"]
            .as_str()
            .unwrap()
            .starts_with("known person (never alerted on): 1 descriptor(s)"),
        "{enrolled}"
    );

    // expiry: an expired known person is purged like anyone
    cli_ok(
        &list,
        &[
            "edit",
            "--identity",
            "biden",
            "--expires",
            "2000-01-01T00:00:00Z",
        ],
    );
    let faces = json(cli_ok(&list, &with(&["identify", "--json", biden])));
    assert!(faces[0]["known"].is_null(), "expired: {}", faces[0]);
    let out = cli_ok(&list, &["purge-expired"]);
    assert!(out.contains("purged 1 expired identity"), "{out}");
    assert_eq!(version(&list), 5);

    // remove: enrolled again as known, then removed
    cli_ok(
        &list,
        &with(&["enroll", "--known", "--label", "biden", biden]),
    );
    assert_eq!(version(&list), 6);
    assert!(cli_ok(&list, &["remove", "--label", "biden"]).contains("removed 1 identity"));
    assert_eq!(version(&list), 5);
    let shown = cli_ok(&list, &["list"]);
    assert!(
        shown.starts_with("1 identity, ") && !shown.contains("biden"),
        "{shown}"
    );
    // the whole history verifies
    let verified = cli_ok(&list, &["audit", "verify"]);
    assert!(!verified.contains("problem"), "{verified}");
    std::fs::remove_dir_all(&d).unwrap();
}
