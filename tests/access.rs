// SPDX-License-Identifier: MIT
//! A person's access and rectification requests answered with the `faceveil` command: `export`
//! (their entry, the audit lines and the matches about them, never descriptor values), `edit`
//! (label, note, expiry: retention lengthened only with --extend) and `suspend`/`resume`, each
//! audited.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{cli, cli_ok, obama_list, photo, require_runtime, scratch};
use gstfaceveil::engine::watchlist::file::Secret;
use gstfaceveil::engine::watchlist::store::{save, write_key_file};
use gstfaceveil::engine::watchlist::{Descriptor, Identity, Role, Watchlist, now};

const KEY: [u8; 32] = [0x5c; 32];

/// A list written by the library (no photo, no model needed): `people` as (id, label, expiry),
/// each with one 128-d descriptor, and its key file beside it.
fn list_of(dir: &Path, people: &[(&str, &str, Option<i64>)]) -> std::path::PathBuf {
    let path = dir.join("w.fvl");
    let mut list = Watchlist::new();
    for (id, label, expires_at) in people {
        list.identities.push(Identity {
            id: id.to_string(),
            label: label.to_string(),
            note: None,
            added_by: "test".into(),
            added_at: now(),
            expires_at: *expires_at,
            descriptors: vec![Descriptor {
                model_id: "fake:0011223344556677".into(),
                vector: vec![0.125; 128],
            }],
            suspended: false,
            role: Role::Listed,
        });
    }
    save(&path, &mut list, &Secret::Key(KEY)).unwrap();
    write_key_file(&dir.join("w.fvl.key"), &KEY, false).unwrap();
    path
}

/// `list --json`'s line for `label`.
fn entry(list: &Path, label: &str) -> serde_json::Value {
    cli_ok(list, &["list", "--json"])
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["label"] == label)
        .unwrap_or_else(|| panic!("{label} is not on the list"))
}

/// The list's audit log, as JSON objects.
fn audit_lines(list: &Path) -> Vec<serde_json::Value> {
    let mut log = list.as_os_str().to_owned();
    log.push(".audit");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The longest run of numbers in any array of `v`: a descriptor would be one of 128.
fn longest_number_array(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => {
            let own = a.iter().filter(|x| x.is_number()).count();
            a.iter().map(longest_number_array).fold(own, usize::max)
        }
        serde_json::Value::Object(o) => o.values().map(longest_number_array).max().unwrap_or(0),
        _ => 0,
    }
}

/// `identify --json` of obama2.jpg: the decision for its one face, and the best label.
fn identify(list: &Path) -> (String, serde_json::Value) {
    let text = cli_ok(
        list,
        &["identify", "--json", photo("obama2.jpg").to_str().unwrap()],
    );
    let face: serde_json::Value = text
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no face: {text}"));
    (
        face["decision"].as_str().unwrap().to_string(),
        face["best"].clone(),
    )
}

/// An enrolled person, identified on a photo and matched by faceveil-nvr on a clip (its events
/// file, and its match lines in the list's audit log): their export holds their entry, those
/// audit lines and matches, nothing about the other person on the list, and no descriptor.
#[test]
fn export_holds_the_entry_audit_lines_and_matches_and_no_descriptor() {
    require_runtime();
    let d = scratch("access-export");
    let list = obama_list(&d);
    let biden = photo("biden.jpg");
    cli_ok(
        &list,
        &["enroll", "--label", "biden", biden.to_str().unwrap()],
    );
    let obama = entry(&list, "obama");
    let id = obama["id"].as_str().unwrap();
    assert_eq!(identify(&list).0, "match");
    let clip = common::clip(&d, &[("obama2.jpg", 20)]);
    let events = d.join("events.jsonl");
    let mut log = list.as_os_str().to_owned();
    log.push(".audit");
    let nvr = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--watchlist")
        .arg(&list)
        .arg("--out")
        .arg(&events)
        .arg("--audit-log")
        .arg(&log)
        .arg(format!("door={}", clip.display()))
        .output()
        .unwrap();
    assert!(nvr.status.success(), "{nvr:?}");

    let out = d.join("obama.json");
    let args = [
        "export",
        "--identity",
        "obama",
        "--events",
        events.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    cli_ok(&list, &args);
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "export written {mode:o}");
    let text = std::fs::read_to_string(&out).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();

    let who = &doc["identity"];
    assert_eq!(
        (who["id"].as_str(), who["label"].as_str()),
        (Some(id), Some("obama"))
    );
    assert_eq!(who["suspended"], false);
    // what `list` shows of them: the descriptors' count and models (one of each installed)
    let listed = entry(&list, "obama");
    assert_eq!(who["descriptors"]["count"], listed["descriptors"]);
    let mut models: Vec<&str> = (who["descriptors"]["models"].as_array().unwrap().iter())
        .map(|m| m.as_str().unwrap())
        .collect();
    models.sort_unstable();
    let listed: Vec<&str> = listed["models"]
        .as_object()
        .unwrap()
        .keys()
        .map(|m| m.as_str())
        .collect();
    assert!(
        models.iter().any(|m| m.starts_with("dlib_resnet:")),
        "{models:?}"
    );
    assert_eq!(models, listed);

    let audit = doc["audit"].as_array().unwrap();
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["enroll", "identify-end", "match", "export"] {
        assert!(actions.contains(&a), "no {a} line: {actions:?}");
    }
    assert_eq!(
        actions.last(),
        Some(&"export"),
        "the export itself ends the lines"
    );
    for e in audit {
        assert!(
            e["identity"].is_null() || e["identity"] == id,
            "another person's line: {e}"
        );
        assert_ne!(e["label"], "biden", "{e}");
    }
    let identified = audit
        .iter()
        .find(|e| e["action"] == "identify-end")
        .unwrap();
    assert!(
        identified["detail"]
            .as_str()
            .unwrap()
            .contains("matched: obama"),
        "{identified}"
    );

    let matches = doc["matches"].as_array().unwrap();
    assert!(!matches.is_empty(), "no match from the events file");
    for m in matches {
        assert_eq!(
            (m["identity-id"].as_str(), m["label"].as_str()),
            (Some(id), Some("obama"))
        );
        assert_eq!(m["event"], "faceveil-match");
    }
    let in_file = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .filter(|l| l.contains(id))
        .count();
    assert_eq!(matches.len(), in_file);

    assert!(
        longest_number_array(&doc) < 16,
        "an array of numbers (a descriptor?) in the export"
    );

    // The export is audited, with the person's id; the log still verifies.
    let last = audit_lines(&list).pop().unwrap();
    assert_eq!(
        (last["action"].as_str(), last["identity"].as_str()),
        (Some("export"), Some(id))
    );
    cli_ok(&list, &["audit", "verify"]);

    // Never over an existing file; nothing else changes then.
    let (code, err) = cli(&list, &args);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not overwritten"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);

    // By id, to standard output: the same person.
    let o = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("--list")
        .arg(&list)
        .args(["export", "--identity", id])
        .env_remove("FACEVEIL_KEY")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["identity"]["label"], "obama");
    assert_eq!(
        doc["matches"],
        serde_json::json!([]),
        "no events file given"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A label is found only when one person has it; an unknown person is exit 9; nothing is audited
/// then.
#[test]
fn export_names_one_person_or_refuses() {
    let d = scratch("access-ambiguous");
    let list = list_of(&d, &[("id-1", "twin", None), ("id-2", "twin", None)]);
    let (code, text) = cli(&list, &["export", "--identity", "twin"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("id-1") && text.contains("id-2"), "{text}");
    let (code, text) = cli(&list, &["export", "--identity", "nobody"]);
    assert_eq!(code, 9, "{text}");
    assert!(
        audit_lines(&list).is_empty(),
        "a refused export was audited"
    );
    let text = cli_ok(&list, &["export", "--identity", "id-2"]);
    assert!(text.contains("\"id\": \"id-2\""), "{text}");
    let lines = audit_lines(&list);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0]["action"].as_str(), lines[0]["identity"].as_str()),
        (Some("export"), Some("id-2"))
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// `edit` changes a label, a note and an expiry without a photo, as `list` shows; it keeps labels
/// unique, shortens retention freely and lengthens it only with --extend (bounded as enroll's
/// --expires); each change is one audit line naming what changed (never the note's text), and a
/// refused edit writes nothing.
#[test]
fn edit_changes_label_note_and_expiry_and_lengthens_only_when_told() {
    let d = scratch("access-edit");
    let ten_days = now() + 10 * 86_400;
    let list = list_of(
        &d,
        &[("id-a", "alice", Some(ten_days)), ("id-b", "bob", None)],
    );
    let refused = |args: &[&str], why: &str| {
        let before = audit_lines(&list).len();
        let (code, text) = cli(&list, args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains(why), "{args:?}: {text}");
        assert_eq!(audit_lines(&list).len(), before, "{args:?} was audited");
    };
    refused(&["edit", "--identity", "alice"], "required");
    refused(
        &["edit", "--identity", "alice", "--label", "bob"],
        "someone else",
    );
    refused(
        &["edit", "--identity", "alice", "--expires", "30d"],
        "--extend",
    );
    refused(&["edit", "--identity", "alice", "--no-expiry"], "--extend");
    refused(
        &[
            "edit",
            "--identity",
            "alice",
            "--expires",
            "10000y",
            "--extend",
        ],
        "100 years",
    );
    assert_eq!(entry(&list, "alice")["label"], "alice");

    cli_ok(
        &list,
        &[
            "edit",
            "--identity",
            "alice",
            "--label",
            "alicia",
            "--note",
            "seen at the gate",
        ],
    );
    let a = entry(&list, "alicia");
    assert_eq!(
        (a["id"].as_str(), a["note"].as_str()),
        (Some("id-a"), Some("seen at the gate"))
    );
    let ten = a["expires_at"].clone();

    cli_ok(&list, &["edit", "--identity", "id-a", "--expires", "2d"]);
    let two = entry(&list, "alicia")["expires_at"].clone();
    assert!(two.is_string() && two != ten, "{two}");
    cli_ok(
        &list,
        &[
            "edit",
            "--identity",
            "alicia",
            "--expires",
            "30d",
            "--extend",
        ],
    );
    let thirty = entry(&list, "alicia")["expires_at"].clone();
    assert!(thirty.as_str() > two.as_str(), "{thirty} {two}");
    cli_ok(&list, &["edit", "--identity", "alicia", "--no-note"]);
    assert!(entry(&list, "alicia")["note"].is_null());
    // Someone who never expires may be given an expiry: that shortens it.
    cli_ok(&list, &["edit", "--identity", "bob", "--expires", "5d"]);
    assert!(entry(&list, "bob")["expires_at"].is_string());
    // The same value again changes nothing and writes nothing.
    let before = audit_lines(&list).len();
    let text = cli_ok(&list, &["edit", "--identity", "bob", "--label", "bob"]);
    assert!(text.contains("nothing to change"), "{text}");
    assert_eq!(audit_lines(&list).len(), before);

    let edits: Vec<serde_json::Value> = audit_lines(&list)
        .into_iter()
        .filter(|e| e["action"] == "edit")
        .collect();
    assert_eq!(edits.len(), 5, "{edits:?}");
    let first = edits[0]["detail"].as_str().unwrap();
    assert!(
        first.contains("label alice → alicia") && first.contains("note set"),
        "{first}"
    );
    assert_eq!(
        (edits[0]["identity"].as_str(), edits[0]["label"].as_str()),
        (Some("id-a"), Some("alicia"))
    );
    assert!(edits[1]["detail"].as_str().unwrap().starts_with("expires "));
    assert!(
        edits[3]["detail"]
            .as_str()
            .unwrap()
            .contains("note removed")
    );
    assert_eq!(edits[4]["identity"], "id-b");
    let log = std::fs::read_to_string(d.join("w.fvl.audit")).unwrap();
    assert!(
        !log.contains("seen at the gate"),
        "the note's text is in the log"
    );
    cli_ok(&list, &["audit", "verify"]);
    std::fs::remove_dir_all(&d).unwrap();
}

/// A suspended person stays on the list but no longer matches (identify on another photo of them
/// says no match); resumed, they match again; both are audited, a repeated one is not.
#[test]
fn a_suspended_person_does_not_match_until_resumed() {
    require_runtime();
    let d = scratch("access-suspend");
    let list = obama_list(&d);
    let id = entry(&list, "obama")["id"].as_str().unwrap().to_string();
    assert_eq!(identify(&list), ("match".into(), "obama".into()));

    let text = cli_ok(&list, &["suspend", "--identity", "obama"]);
    assert!(text.contains("suspended obama"), "{text}");
    assert_eq!(entry(&list, "obama")["suspended"], true);
    assert!(cli_ok(&list, &["list"]).contains("suspended"));
    let (decision, best) = identify(&list);
    assert_ne!(decision, "match");
    assert!(best.is_null(), "a suspended person was searched: {best}");
    let text = cli_ok(&list, &["identify", photo("obama2.jpg").to_str().unwrap()]);
    assert!(text.contains("expired or suspended"), "{text}");
    let before = audit_lines(&list).len();
    assert!(cli_ok(&list, &["suspend", "--identity", &id]).contains("already suspended"));
    assert_eq!(
        audit_lines(&list).len(),
        before,
        "a repeated suspend was audited"
    );

    cli_ok(&list, &["resume", "--identity", &id]);
    assert_eq!(entry(&list, "obama")["suspended"], false);
    assert!(!cli_ok(&list, &["list"]).contains("suspended"));
    assert_eq!(identify(&list), ("match".into(), "obama".into()));

    let acts: Vec<(String, String)> = audit_lines(&list)
        .iter()
        .filter(|e| matches!(e["action"].as_str(), Some("suspend" | "resume")))
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["identity"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        acts,
        [
            ("suspend".to_string(), id.clone()),
            ("resume".to_string(), id)
        ]
    );
    cli_ok(&list, &["audit", "verify"]);
    std::fs::remove_dir_all(&d).unwrap();
}
