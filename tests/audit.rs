// SPDX-License-Identifier: MIT
//! The audit log and retention, through the CLI and the pipelines as users run them: every change
//! and every match is a line of one hash-chained log, written by several processes at once; edits
//! and cut-off lines are found and named; `init --default-expiry` applies to enrolments.

mod common;

use std::path::Path;
use std::process::Command;

use common::{cli, cli_ok, photo, require_runtime, scratch};

/// A pipeline process (gst-launch-1.0) that sees obama2 for `frames` frames and appends its match
/// to `audit`.
fn watching(list: &Path, audit: &Path, camera: &str, frames: u32) -> std::process::Child {
    Command::new("gst-launch-1.0")
        .arg("-q")
        .args(
            format!(
                "filesrc location={} ! decodebin ! videoconvert ! imagefreeze num-buffers={frames} \
                 ! veilbin watchlist={} camera-id={camera} cooldown=0 reembed-interval=1 \
                 audit-log={} ! fakesink",
                photo("obama2.jpg").display(),
                list.display(),
                audit.display()
            )
            .split(' '),
        )
        .env("GST_PLUGIN_PATH", common::plugin_dir())
        .spawn()
        .unwrap()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_cli_and_several_pipelines_write_one_valid_chain() {
    require_runtime();
    let d = scratch("audit-chain");
    let list = d.join("w.fvl");
    let audit = d.join("w.fvl.audit");
    cli_ok(&list, &["init", "--default-expiry", "30d"]);
    let enroll = |label: &str, p: &str, extra: &[&str]| {
        let mut args = vec!["enroll", "--label", label];
        args.extend_from_slice(extra);
        let p = photo(p);
        args.push(p.to_str().unwrap());
        cli_ok(&list, &args);
    };
    enroll("obama", "obama.jpg", &[]);
    enroll("biden", "biden.jpg", &["--no-expiry"]);

    // Retention: the default expiry applies unless --no-expiry (or --expires) is given.
    let listed = json_lines(&cli_ok(&list, &["list", "--json"]));
    let expiry =
        |label: &str| listed.iter().find(|v| v["label"] == label).unwrap()["expires_at"].clone();
    let obama_expires = expiry("obama");
    let in_30_days = gstfaceveil::engine::watchlist::now() + 30 * 86400;
    let t = humantime::parse_rfc3339(obama_expires.as_str().expect("obama expires"))
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((t - in_30_days).abs() < 120, "{obama_expires}");
    assert!(expiry("biden").is_null());

    // Four writers at once: two pipelines reporting matches, two CLI changes.
    let mut procs = vec![
        watching(&list, &audit, "door", 30),
        watching(&list, &audit, "lobby", 30),
    ];
    for args in [
        vec![
            "enroll",
            "--label",
            "astronaut",
            photo("astronaut.png").to_str().unwrap(),
        ],
        vec!["remove", "--label", "biden"],
    ] {
        procs.push(
            Command::new(env!("CARGO_BIN_EXE_faceveil"))
                .arg("--list")
                .arg(&list)
                .args(&args)
                .env_remove("FACEVEIL_KEY")
                .spawn()
                .unwrap(),
        );
    }
    for mut p in procs {
        assert!(p.wait().unwrap().success());
    }

    let verified = cli_ok(&list, &["audit", "verify"]);
    assert!(verified.contains("an unbroken chain"), "{verified}");
    let lines = json_lines(&cli_ok(&list, &["audit", "show", "--json"]));
    let count = |action: &str| lines.iter().filter(|v| v["action"] == action).count();
    assert_eq!(
        (count("init"), count("enroll"), count("remove")),
        (1, 3, 1),
        "{lines:?}"
    );
    let matches: Vec<_> = lines.iter().filter(|v| v["action"] == "match").collect();
    for camera in ["camera:door", "camera:lobby"] {
        assert!(
            matches.iter().any(|m| m["actor"] == camera),
            "{camera}: {matches:?}"
        );
    }
    assert!(matches.iter().all(|m| m["label"] == "obama"));
    // Sequence numbers 1..n in file order, each line linked to the one before.
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["seq"], i as u64 + 1);
    }
    // No descriptors, images or other people's scores in the log.
    let raw = std::fs::read_to_string(&audit).unwrap();
    assert!(raw.lines().all(|l| l.len() < 400), "a long line in the log");
    assert!(!raw.contains("vector") && !raw.contains("descriptor\":"));

    // Filters: by identity (label or id), by time.
    let obama = cli_ok(&list, &["audit", "show", "--identity", "obama"]);
    assert!(
        obama.lines().count() >= 3 && !obama.contains("biden"),
        "{obama}"
    );
    assert!(
        cli_ok(&list, &["audit", "show", "--since", "1h"])
            .lines()
            .count()
            == lines.len()
    );
    assert_eq!(cli_ok(&list, &["audit", "show", "--until", "1h"]), "");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn audit_verify_names_an_edit_and_lines_cut_off_the_end() {
    let d = scratch("audit-verify");
    let list = d.join("w.fvl");
    let audit = d.join("w.fvl.audit");
    cli_ok(&list, &["init"]);
    for _ in 0..3 {
        cli_ok(&list, &["rekey"]);
    }
    let good = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(good.lines().count(), 4);

    // An edited line: the actor of line 2 changed.
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    let actor = serde_json::from_str::<serde_json::Value>(&lines[1]).unwrap()["actor"]
        .as_str()
        .unwrap()
        .to_string();
    lines[1] = lines[1].replace(&format!("\"actor\":\"{actor}\""), "\"actor\":\"nobody\"");
    std::fs::write(&audit, lines.join("\n") + "\n").unwrap();
    let (code, out) = cli(&list, &["audit", "verify"]);
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("line 2 (entry 2) was edited"), "{out}");

    // The last line cut off: only the head recorded in the list shows it.
    let cut: String = good.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&audit, cut).unwrap();
    let (code, out) = cli(&list, &["audit", "verify"]);
    assert_eq!(code, 11, "{out}");
    assert!(
        out.contains("the log ends at entry 3, the watch list recorded entry 4"),
        "{out}"
    );
    // Without the list's key the chain alone is checked, and says so.
    let (code, out) = cli(
        &list,
        &[
            "--key-file",
            d.join("none.key").to_str().unwrap(),
            "audit",
            "verify",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("lines cut off the end are not"), "{out}");

    std::fs::write(&audit, &good).unwrap();
    assert!(cli_ok(&list, &["audit", "verify"]).contains("4 entries"));
    std::fs::remove_dir_all(&d).unwrap();
}
