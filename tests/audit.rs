// SPDX-License-Identifier: MIT
//! The audit log and retention, through the CLI and the pipelines as users run them: every change
//! and every match is a line of one hash-chained log, written by several processes at once; edits
//! and cut-off lines are found and named; `init --default-expiry` applies to enrolments. Writers
//! refuse to write after a gap (the CLI) or start a new segment (the service); a matches log is
//! anchored in the list's log; `identify` is audited; verify streams the log. Trial mode logs
//! matches flagged `trial-match` and posts none; `audit show --trial` sums them up.

mod common;

use std::path::Path;
use std::process::Command;

use common::{cli, cli_ok, generation, obama_list, photo, require_runtime, scratch};

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

fn entries(log: &Path) -> Vec<serde_json::Value> {
    json_lines(&std::fs::read_to_string(log).unwrap())
}

/// The files beside `log` that start with its name and a dot and a digit: the logs kept aside.
fn kept_aside(log: &Path) -> Vec<std::path::PathBuf> {
    let name = log.file_name().unwrap().to_string_lossy().to_string() + ".";
    let mut v: Vec<_> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.strip_prefix(&name)
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_log_cut_short_or_deleted_is_refused_until_a_new_log_is_started_deliberately() {
    require_runtime();
    let d = scratch("audit-gap");
    let list = obama_list(&d);
    let audit = d.join("w.fvl.audit");
    let enroll = |label: &str, extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["enroll", "--label", label]);
        let p = photo("biden.jpg");
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(p.display().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&list, &args)
    };
    // Untouched: the next write is fine.
    cli_ok(&list, &["rekey"]);
    let good = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(good.lines().count(), 3);

    // Cut to one line: refused with exit 11, naming the gap and the fix; nothing changes.
    std::fs::write(&audit, format!("{}\n", good.lines().next().unwrap())).unwrap();
    let before = std::fs::read(&list).unwrap();
    let (code, out) = enroll("biden", &[]);
    assert_eq!(code, 11, "{out}");
    assert!(
        out.contains("the watch list recorded entry 3")
            && out.contains("the log ends at entry 1")
            && out.contains("--new-audit-log"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&list).unwrap(),
        before,
        "the list was written"
    );
    assert_eq!(entries(&audit).len(), 1, "the log was written");

    // Deleted: refused too, and not created.
    std::fs::remove_file(&audit).unwrap();
    let (code, out) = enroll("biden", &[]);
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("the log is missing"), "{out}");
    assert!(!audit.exists());
    assert_eq!(std::fs::read(&list).unwrap(), before);

    // Deliberately: a new log, whose first line names the head the list recorded and what was found.
    std::fs::write(&audit, format!("{}\n", good.lines().next().unwrap())).unwrap();
    let (code, out) = enroll("biden", &["--new-audit-log"]);
    assert_eq!(code, 0, "{out}");
    let aside = kept_aside(&audit);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read_to_string(&aside[0]).unwrap(),
        format!("{}\n", good.lines().next().unwrap()),
        "the old log was not kept as it was"
    );
    let new = entries(&audit);
    assert_eq!(
        (new[0]["action"].as_str(), new[1]["action"].as_str()),
        (Some("new-audit-log"), Some("enroll"))
    );
    let old_head = serde_json::from_str::<serde_json::Value>(good.lines().nth(2).unwrap()).unwrap();
    let old_hash = gstfaceveil::engine::audit::hex(&gstfaceveil::engine::audit::line_hash(
        good.lines().nth(2).unwrap().as_bytes(),
    ));
    assert_eq!(old_head["seq"], 3);
    let detail = new[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("entry 3 sha256 {old_hash}"))
            && detail.contains("the old log ended at entry 1")
            && detail.contains(&aside[0].display().to_string()),
        "{detail}"
    );
    let verified = cli_ok(&list, &["audit", "verify"]);
    assert!(
        verified.contains("the watch list recorded entry 2"),
        "{verified}"
    );
    // And the next write goes on after it.
    cli_ok(&list, &["rekey"]);
    assert_eq!(entries(&audit).len(), 3);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn identify_is_audited_with_the_people_it_found() {
    require_runtime();
    let d = scratch("audit-identify");
    let list = obama_list(&d);
    let audit = d.join("w.fvl.audit");
    let g0 = generation(&list);
    let obama2 = photo("obama2.jpg");
    let biden = photo("biden.jpg");
    let out = cli_ok(
        &list,
        &[
            "identify",
            obama2.to_str().unwrap(),
            biden.to_str().unwrap(),
        ],
    );
    assert!(out.contains("→ match"), "{out}");
    // Two entries: the files searched, before the search; what was found, after it.
    let mut e = entries(&audit);
    let (end, start) = (e.pop().unwrap(), e.pop().unwrap());
    assert_eq!(start["action"], "identify");
    let files = start["detail"].as_str().unwrap();
    assert_eq!(
        files,
        format!("2 file(s): {}, {}", obama2.display(), biden.display())
    );
    assert_eq!(end["action"], "identify-end");
    let detail = end["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        format!(
            "of entry {}: 2 frame(s), 1 matched face(s); matched: obama",
            start["seq"]
        )
    );
    // Only listed people: biden.jpg's face is named by its file, never as a label.
    assert!(!detail.contains("matched: obama, "), "{detail}");
    assert_ne!(
        generation(&list),
        g0,
        "the list did not record the new head"
    );
    assert!(cli_ok(&list, &["audit", "verify"]).contains("an unbroken chain"));

    // A list this user cannot write: refused before searching, saying why.
    std::fs::set_permissions(&list, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    let lines = entries(&audit).len();
    if unsafe { libc::geteuid() } != 0 {
        let (code, out) = cli(&list, &["identify", obama2.to_str().unwrap()]);
        assert_eq!(code, 3, "{out}");
        assert!(
            out.contains("identify is audited") && out.contains("not writable"),
            "{out}"
        );
        assert!(!out.contains("→"), "it searched: {out}");
        assert_eq!(entries(&audit).len(), lines);
    }
    // The deployment: the service user reads the list (group faceveil, 0640) but may not change
    // it, so it may not search footage with it either.
    std::fs::set_permissions(&list, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    if let Some((uid, gid)) = common::faceveil_service_user() {
        use std::os::unix::fs::{PermissionsExt, chown};
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for f in [list.clone(), d.join("w.fvl.key")] {
            chown(&f, Some(0), Some(gid)).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let out = Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
            ])
            .arg(env!("CARGO_BIN_EXE_faceveil"))
            .arg("--list")
            .arg(&list)
            .arg("identify")
            .arg(&obama2)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{text}");
        assert!(
            text.contains("identify is audited") && text.contains("not writable"),
            "{text}"
        );
        assert!(!text.contains("→"), "it searched: {text}");
        assert_eq!(entries(&audit).len(), lines);
    }
    // A gap in the log: refused as any writer.
    std::fs::remove_file(&audit).unwrap();
    let (code, out) = cli(&list, &["identify", obama2.to_str().unwrap()]);
    assert_eq!(code, 11, "{out}");
    assert!(!out.contains("→"), "it searched: {out}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A run that is killed while it searches has already left its entry (the files), and the list
/// records it; a run that stops on an unreadable file says so, with what it found before.
#[test]
fn identify_is_recorded_before_it_searches() {
    require_runtime();
    let d = scratch("audit-identify-first");
    let list = obama_list(&d);
    let audit = d.join("w.fvl.audit");
    let obama2 = photo("obama2.jpg");
    let before = entries(&audit).len();
    let mut child = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("--list")
        .arg(&list)
        .arg("identify")
        .args(std::iter::repeat_n(&obama2, 40))
        .env_remove("FACEVEIL_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while entries(&audit).len() == before
        && child.try_wait().unwrap().is_none()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let new = entries(&audit).split_off(before);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["action"], "identify");
    let detail = new[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("40 file(s): ") && detail.contains(&obama2.display().to_string()),
        "{detail}"
    );
    assert!(
        !detail.contains("frame(s)"),
        "written after the search: {detail}"
    );
    // The list recorded it: the log verifies, and the next run continues from it.
    assert!(cli_ok(&list, &["audit", "verify"]).contains("an unbroken chain"));

    let missing = d.join("no-such-recording.mp4");
    let (code, out) = cli(
        &list,
        &[
            "identify",
            obama2.to_str().unwrap(),
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 8, "{out}");
    let mut e = entries(&audit);
    let (end, start) = (e.pop().unwrap(), e.pop().unwrap());
    assert_eq!(start["action"], "identify");
    assert_eq!(
        start["detail"],
        format!("2 file(s): {}, {}", obama2.display(), missing.display())
    );
    assert_eq!(end["action"], "identify-end");
    let detail = end["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!(
            "of entry {}: 1 frame(s), 1 matched face(s); matched: obama; stopped: ",
            start["seq"]
        )) && detail.contains("no-such-recording.mp4"),
        "{detail}"
    );
    assert!(cli_ok(&list, &["audit", "verify"]).contains("an unbroken chain"));
    std::fs::remove_dir_all(&d).unwrap();
}

/// Thousands of files make one entry of bounded length (the first names, then how many more), which
/// `audit verify` reads like any other.
#[test]
fn identify_of_many_files_is_one_short_entry() {
    require_runtime();
    let d = scratch("audit-identify-many");
    let list = obama_list(&d);
    let audit = d.join("w.fvl.audit");
    let files: Vec<String> = (0..2000)
        .map(|i| {
            d.join(format!("camera-recording-of-the-front-door-{i:05}.mp4"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["identify"];
    args.extend(files.iter().map(String::as_str));
    let (code, out) = cli(&list, &args);
    assert_eq!(code, 8, "{out}");
    let e = entries(&audit);
    let start = e
        .iter()
        .rev()
        .find(|e| e["action"] == "identify")
        .expect("no identify entry");
    let detail = start["detail"].as_str().unwrap();
    assert!(detail.len() <= 2200, "{} bytes", detail.len());
    let shown = detail.matches("camera-recording-of").count();
    assert!((1..2000).contains(&shown), "{detail}");
    assert!(
        detail.starts_with(&format!("2000 file(s): {}, ", files[0]))
            && detail.ends_with(&format!(", … and {} more", 2000 - shown)),
        "{detail}"
    );
    assert!(cli_ok(&list, &["audit", "verify"]).contains("an unbroken chain"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn audit_verify_refuses_a_fifo_at_once_and_streams_a_large_log() {
    let d = scratch("audit-stream");
    let fifo = d.join("a.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let list = d.join("w.fvl");
    for args in [
        ["audit", "verify", fifo.to_str().unwrap()],
        ["audit", "show", fifo.to_str().unwrap()],
    ] {
        let t = std::time::Instant::now();
        let out = Command::new("timeout")
            .arg("10")
            .arg(env!("CARGO_BIN_EXE_faceveil"))
            .arg("--list")
            .arg(&list)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{args:?} took {:?}",
            t.elapsed()
        );
        assert_eq!(out.status.code(), Some(3), "{args:?}: {text}");
        assert!(text.contains("not a regular file"), "{text}");
    }

    // ~100 MB of valid entries: verified in bounded memory, with the right count.
    let log = d.join("big.audit");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    let mut prev = [0u8; 32];
    let mut n = 0u64;
    let mut size = 0usize;
    while size < 100 << 20 {
        n += 1;
        let e = gstfaceveil::engine::audit::Entry {
            seq: n,
            time: "2026-01-01T00:00:00Z".into(),
            actor: "camera:door".into(),
            action: "match".into(),
            identity: Some(format!("id-{n:016}")),
            label: Some("someone".into()),
            detail: Some("score 0.812".into()),
            prev: gstfaceveil::engine::audit::hex(&prev),
        };
        let line = serde_json::to_string(&e).unwrap();
        prev = gstfaceveil::engine::audit::line_hash(line.as_bytes());
        std::io::Write::write_all(&mut f, line.as_bytes()).unwrap();
        std::io::Write::write_all(&mut f, b"\n").unwrap();
        size += line.len() + 1;
    }
    drop(f);
    let mut child = Command::new(env!("CARGO_BIN_EXE_faceveil"))
        .arg("--list")
        .arg(&list)
        .args(["audit", "verify"])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        })
    };
    let so = read(Box::new(child.stdout.take().unwrap()));
    let se = read(Box::new(child.stderr.take().unwrap()));
    // The child's own peak resident memory (VmHWM), read until it exits.
    let status_file = format!("/proc/{}/status", child.id());
    let mut rss_kb = 0u64;
    let status = loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        }) {
            rss_kb = rss_kb.max(hwm);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let (stdout, stderr) = (so.join().unwrap(), se.join().unwrap());
    assert!(status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("has {n} entries, an unbroken chain")),
        "{stdout}"
    );
    assert!(rss_kb > 0, "no memory reading");
    assert!(
        rss_kb < 64 * 1024,
        "audit verify of a 100 MB log used {rss_kb} kB"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// The deployment of docs/NVR.md: the list and key root:faceveil 0640, `faceveil-nvr` run as the
/// service user with `audit-log` in its own directory; root runs the CLI.
#[test]
fn the_services_matches_log_is_anchored_across_gaps_and_restarts() {
    require_runtime();
    let Some((uid, gid)) = common::faceveil_service_user() else {
        return;
    };
    use std::os::unix::fs::{PermissionsExt, chown};
    let d = scratch("audit-service");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lib = d.join("lib");
    std::fs::create_dir(&lib).unwrap();
    let list = obama_list(&lib);
    for f in [list.clone(), lib.join("w.fvl.key")] {
        chown(&f, Some(0), Some(gid)).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let logs = d.join("log");
    std::fs::create_dir(&logs).unwrap();
    chown(&logs, Some(uid), Some(gid)).unwrap();
    let log = logs.join("matches.audit");
    let clip = common::clip(&d, &[("obama2.jpg", 20)]);
    // One run of the service, as the service user, to the end of the clip: its standard error.
    let service = || {
        let out = Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
            ])
            .arg(env!("CARGO_BIN_EXE_faceveil-nvr"))
            .arg("--watchlist")
            .arg(&list)
            .arg("--audit-log")
            .arg(&log)
            .arg(format!("door={}", clip.display()))
            .env("HOME", &logs)
            .env("GST_REGISTRY", logs.join("registry.bin"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "faceveil-nvr: {text}");
        text
    };
    service();
    let first = entries(&log);
    assert!(
        first
            .iter()
            .any(|e| e["action"] == "match" && e["label"] == "obama"),
        "{first:?}"
    );
    let head_file = logs.join("matches.audit.head");
    assert!(head_file.exists(), "no .head beside the log");
    assert!(cli_ok(&list, &["audit", "verify", log.to_str().unwrap()]).contains("unbroken"));

    // Restarted on an untouched log: it goes on after its .head, no new segment.
    let stderr = service();
    assert!(!stderr.contains("Gap"), "{stderr}");
    let first = entries(&log);
    assert!(first.len() >= 2 && kept_aside(&log).is_empty(), "{first:?}");

    // The log cut to its first line (the service user can): the restarted service notices it
    // from its .head, says so, keeps the cut log aside and records its match in a new segment.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, format!("{}\n", text.lines().next().unwrap())).unwrap();
    let stderr = service();
    assert!(stderr.contains("Gap in the audit log"), "{stderr}");
    let aside = kept_aside(&log);
    assert_eq!(aside.len(), 1, "{aside:?}");
    let seg = entries(&log);
    assert_eq!(seg[0]["action"], "new-segment");
    let detail = seg[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("recorded entry {}", first.len()))
            && detail.contains("the log ends at entry 1")
            && detail.contains(&aside[0].display().to_string()),
        "{detail}"
    );
    assert!(seg[1..].iter().any(|e| e["action"] == "match"), "{seg:?}");
    assert!(cli_ok(&list, &["audit", "verify", log.to_str().unwrap()]).contains("unbroken"));

    // Root anchors the log in the list's own log, where the service cannot change it.
    let out = cli_ok(&list, &["audit", "anchor", log.to_str().unwrap()]);
    assert!(
        out.contains(&format!("anchored {}", log.display())),
        "{out}"
    );
    let list_log = entries(&lib.join("w.fvl.audit"));
    assert_eq!(list_log.last().unwrap()["action"], "anchor");
    assert!(cli_ok(&list, &["audit", "verify"]).contains("unbroken"));

    // The service user rewrites the log and its .head alike, cutting the anchored match: the
    // chain and the .head agree, the anchor does not.
    let line = seg[0].to_string();
    let raw = std::fs::read_to_string(&log).unwrap();
    let first_line = raw.lines().next().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(first_line).unwrap(),
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    );
    let saved_head = std::fs::read(&head_file).unwrap();
    std::fs::write(&log, format!("{first_line}\n")).unwrap();
    let hash = gstfaceveil::engine::audit::hex(&gstfaceveil::engine::audit::line_hash(
        first_line.as_bytes(),
    ));
    std::fs::write(&head_file, format!("entry 1 sha256 {hash}\n")).unwrap();
    let (code, out) = cli(&list, &["audit", "verify", log.to_str().unwrap()]);
    assert_eq!(code, 11, "{out}");
    assert!(
        out.contains("the log ends at entry 1, the anchor of")
            && out.contains(&format!("recorded entry {}", seg.len())),
        "{out}"
    );

    // Restored, then another gap that leaves the anchored entries in place (a .head ahead of the
    // log): they are looked for in the old file that the new segment's first line names, and a
    // missing old file is a problem. The anchor wrote the list as root: it kept the
    // deployment's group and mode, so the service still reads it.
    let mode = std::fs::metadata(&list).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "root's anchor changed the list's mode");
    std::fs::write(&log, &raw).unwrap();
    std::fs::write(&head_file, saved_head).unwrap();
    cli_ok(&list, &["audit", "verify", log.to_str().unwrap()]);
    std::fs::write(&head_file, format!("entry 99 sha256 {hash}\n")).unwrap();
    assert!(service().contains("Gap in the audit log"));
    let aside = kept_aside(&log);
    assert_eq!(aside.len(), 2, "{aside:?}");
    let out = cli_ok(&list, &["audit", "verify", log.to_str().unwrap()]);
    assert!(out.contains("unbroken"), "{out}");
    let newest = aside
        .iter()
        .find(|p| std::fs::read_to_string(p).unwrap() == raw)
        .unwrap();
    std::fs::remove_file(newest).unwrap();
    let (code, out) = cli(&list, &["audit", "verify", log.to_str().unwrap()]);
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("the earlier segment it names"), "{out}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Trial mode: the same veilbin on the same frames with `trial=true` posts no `faceveil-match`
/// but logs each match it decides as a `trial-match` entry of the chain; `audit show --trial`
/// counts them per person and camera. Positive control: `trial=false` posts the match and logs it
/// as `match`, as many as the trial logged.
#[test]
fn trial_mode_posts_no_alert_and_logs_the_match() {
    require_runtime();
    let d = scratch("audit-trial");
    let list = obama_list(&d);
    let log = d.join("matches.audit");
    let watch = |props: &str| {
        common::run_pipeline(&format!(
            "{} ! veilbin watchlist=\"{}\" camera-id=door reembed-interval=1 {props} ! fakesink",
            common::photo_src("obama2.jpg", "imagefreeze num-buffers=20"),
            list.display(),
        ))
    };
    let alerts = |run: &common::Run| {
        run.element_messages
            .iter()
            .filter(|s| s.name() == "faceveil-match")
            .count()
    };
    let audit = format!("audit-log=\"{}\"", log.display());
    let count = |action: &str| {
        entries(&log)
            .iter()
            .filter(|e| e["action"] == action)
            .count()
    };

    let trial = watch(&format!("{audit} trial=true"));
    assert_eq!(alerts(&trial), 0, "{:?}", trial.element_messages);
    assert!(
        !trial
            .warnings
            .iter()
            .any(|w| w.contains("Trial") || w.contains("audit")),
        "{:?}",
        trial.warnings
    );
    let trials = count("trial-match");
    assert!(trials >= 1, "no trial match logged: {:?}", entries(&log));
    assert_eq!(count("match"), 0);
    let e = entries(&log)
        .into_iter()
        .find(|e| e["action"] == "trial-match")
        .unwrap();
    assert_eq!(
        (&e["actor"], &e["label"]),
        (&"camera:door".into(), &"obama".into())
    );
    assert!(e["detail"].as_str().unwrap().starts_with("score 0."), "{e}");

    let live = watch(&format!("{audit} trial=false"));
    assert_eq!(alerts(&live), trials, "the same decisions, now posted");
    assert_eq!((count("match"), count("trial-match")), (trials, trials));
    // The match entry explains the match as its message does (docs/WATCHLIST.md), no more.
    let m = live
        .element_messages
        .iter()
        .find(|s| s.name() == "faceveil-match")
        .unwrap();
    let e = entries(&log)
        .into_iter()
        .find(|e| e["action"] == "match")
        .unwrap();
    let hits: Vec<String> = m
        .get::<gst::ArrayRef>("hit-scores")
        .unwrap()
        .iter()
        .map(|v| format!("{:.3}", v.get::<f64>().unwrap()))
        .collect();
    let field = |f: &str| m.get::<f64>(f).unwrap();
    let expected = format!(
        "score {:.3}; reference {} of {}; hits {}; quality {:.2}{}; threshold {:.3}",
        field("score"),
        m.get::<u32>("reference").unwrap() + 1,
        m.get::<u32>("references").unwrap(),
        hits.join(", "),
        field("quality"),
        if m.get::<bool>("grayscale").unwrap() {
            "; grayscale"
        } else {
            ""
        },
        field("threshold"),
    );
    assert_eq!(e["detail"], expected.as_str(), "{m}");

    // The chain holds both kinds of entry: it verifies as any other.
    let logs = log.to_str().unwrap();
    assert!(cli_ok(&list, &["audit", "verify", logs]).contains("unbroken"));
    let table = cli_ok(&list, &["audit", "show", "--trial", logs]);
    let row = table
        .lines()
        .find(|l| l.starts_with("obama"))
        .unwrap_or_else(|| panic!("{table}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols[..3],
        ["obama", "door", trials.to_string().as_str()],
        "{table}"
    );
    let rows = json_lines(&cli_ok(
        &list,
        &["audit", "show", "--trial", "--json", logs],
    ));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (&rows[0]["label"], &rows[0]["camera"], &rows[0]["count"]),
        (&"obama".into(), &"door".into(), &(trials as u64).into()),
        "live matches are not counted as trial ones"
    );
    // The filters apply: nothing of another person.
    let other = cli_ok(
        &list,
        &["audit", "show", "--trial", "--identity", "biden", logs],
    );
    assert!(other.starts_with("no trial matches"), "{other}");

    // Trial mode without an audit log would keep nothing: a warning says so.
    let bare = watch("trial=true");
    assert!(
        bare.warnings
            .iter()
            .any(|w| w.contains("Trial mode without an audit-log")),
        "{:?}",
        bare.warnings
    );
    assert_eq!(alerts(&bare), 0);
    std::fs::remove_dir_all(&d).unwrap();
}
