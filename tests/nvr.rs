// SPDX-License-Identifier: MIT
//! `faceveil-nvr`'s camera pipelines are built from elements: a value of the configuration is
//! never parsed as pipeline syntax.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RtspCamera, free_port, matches_in, obama_list, require_runtime, scratch, wait_until};

/// The events file as logrotate (without `copytruncate`) treats it: renamed, then SIGHUP. The
/// runner, started under umask 077, creates the file 0640 (its group, the operators', reads it),
/// opens a new one on SIGHUP while the camera keeps running, and the next match lands there.
#[test]
fn the_events_file_is_0640_and_reopened_on_sighup() {
    require_runtime();
    let d = scratch("nvr-events");
    let list = obama_list(&d);
    let events = d.join("events.jsonl");
    let rotated = d.join("events.jsonl.1");
    let port = free_port();
    let camera = RtspCamera::start(port, "obama2.jpg");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"));
    cmd.arg("--watchlist")
        .arg(&list)
        .arg("--out")
        .arg(&events)
        .arg(format!("door={}", RtspCamera::url(port)))
        .stderr(Stdio::piped());
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let mut nvr = cmd.spawn().unwrap();
    assert!(
        wait_until(Duration::from_secs(90), || matches_in(&events) >= 1),
        "no first match"
    );
    let mode = std::fs::metadata(&events).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "events file created {mode:o}");
    std::fs::rename(&events, &rotated).unwrap();
    Command::new("kill")
        .args(["-HUP", &nvr.id().to_string()])
        .status()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || events.exists()),
        "no new events file after SIGHUP"
    );
    // A new visit: the camera drops and comes back, the runner reconnects and matches again.
    drop(camera);
    std::thread::sleep(Duration::from_secs(2));
    let _camera = RtspCamera::start(port, "obama2.jpg");
    assert!(
        wait_until(Duration::from_secs(120), || matches_in(&events) >= 1),
        "no match in the reopened events file"
    );
    assert_eq!(matches_in(&rotated), 1, "the rotated file got later events");
    assert!(nvr.try_wait().unwrap().is_none(), "the runner exited");
    let _ = nvr.kill();
    let out = nvr.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reopened"), "{stderr}");
}

/// A camera URL with quotes in it once closed the `uri="…"` of a gst-launch description and went on
/// with elements of its own: here a `tee` to a `filesink` that would write the camera's frames
/// (faces) to a file of the attacker's choice. Now the whole string is the URI, which does not
/// open: the camera fails with an error that names it, and no file is written.
#[test]
fn a_camera_url_with_quotes_adds_no_elements() {
    require_runtime();
    let d = scratch("nvr-injection");
    let list = obama_list(&d);
    let stolen = d.join("frames.raw");
    let url = format!(
        "file:///nonexistent/cam.mp4\" ! tee name=t ! queue ! filesink location=\"{}\" t. ! queue name=\"q",
        stolen.display()
    );
    let mut nvr = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--watchlist")
        .arg(&list)
        .arg(format!("door={url}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while nvr.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = nvr.kill();
    let out = nvr.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stolen.exists(),
        "the URL added a filesink that wrote {}",
        stolen.display()
    );
    // Positive control: the camera was really started, and failed on its (whole) URL.
    assert!(
        stderr.contains("[door]") && stderr.contains("nonexistent"),
        "no camera error naming the URL: {stderr}"
    );
}

/// `faceveil-nvr` on `door` = an RTSP camera, standard error to `log`, events to `events`.
fn nvr_on(
    list: &Path,
    port: u16,
    events: &Path,
    log: &Path,
    extra: &[&str],
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--watchlist")
        .arg(list)
        .arg("--out")
        .arg(events)
        .args(extra)
        .arg(format!("door={}", RtspCamera::url(port)))
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(needle)
}

/// A list that does not open while the runner plays: the camera's line on standard error (the
/// journal) says so, with the file and the reason; the recovery is said too.
#[test]
fn a_failed_reload_is_said_for_the_camera_and_so_is_the_recovery() {
    require_runtime();
    let d = scratch("nvr-reload-failed");
    let list = obama_list(&d);
    let (events, log) = (d.join("events.jsonl"), d.join("nvr.log"));
    let port = free_port();
    let _camera = RtspCamera::start(port, "obama2.jpg");
    let mut nvr = nvr_on(&list, port, &events, &log, &[]);
    assert!(
        wait_until(Duration::from_secs(90), || matches_in(&events) >= 1),
        "no first match"
    );
    let good = std::fs::read(&list).unwrap();
    std::fs::write(&list, b"not a watch list").unwrap();
    let failed = format!(
        "[door] watch list reload failed: {} is not a faceveil watch list (old list kept)",
        list.display()
    );
    assert!(
        wait_until(Duration::from_secs(10), || log_has(&log, &failed)),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    std::fs::write(&list, &good).unwrap();
    let reloaded = format!(
        "[door] watch list {} reloaded: 1 identities",
        list.display()
    );
    assert!(
        wait_until(Duration::from_secs(10), || log_has(&log, &reloaded)),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let _ = nvr.kill();
    let _ = nvr.wait();
    std::fs::remove_dir_all(&d).unwrap();
}

/// The rollback floor outlives a camera's pipeline: the runner rebuilds it on every RTSP drop, and
/// an older copy of the list put back meanwhile is refused by the new pipeline, as by a restarted
/// runner (exit 4), when a state directory keeps the highest generation used.
#[test]
fn an_older_list_is_refused_after_a_reconnect_and_a_restart() {
    require_runtime();
    let d = scratch("nvr-floor");
    let list = obama_list(&d);
    let old_copy = std::fs::read(&list).unwrap(); // generation 2: obama
    let state = d.join("state");
    std::fs::create_dir(&state).unwrap();
    let (events, log) = (d.join("events.jsonl"), d.join("nvr.log"));
    let port = free_port();
    let camera = RtspCamera::start(port, "obama2.jpg");
    let state_arg = ["--state-dir", state.to_str().unwrap()];
    let mut nvr = nvr_on(&list, port, &events, &log, &state_arg);
    assert!(
        wait_until(Duration::from_secs(90), || matches_in(&events) >= 1),
        "no first match"
    );
    // obama removed (generation 3), the running camera reloads it.
    common::cli_ok(&list, &["remove", "--label", "obama"]);
    assert!(
        wait_until(Duration::from_secs(10), || log_has(
            &log,
            "reloaded: 0 identities"
        )),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    // The camera drops; the old copy is put back; the camera comes back.
    drop(camera);
    std::fs::write(&list, &old_copy).unwrap();
    let matches_before = matches_in(&events);
    let _camera = RtspCamera::start(port, "obama2.jpg");
    let refused = "is generation 2, older than generation 3 already used on this machine";
    assert!(
        wait_until(Duration::from_secs(30), || log_has(&log, refused)),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        matches_in(&events),
        matches_before,
        "obama, removed, alerted again from the old copy"
    );
    let _ = nvr.kill();
    let _ = nvr.wait();
    // A restarted runner refuses it before starting anything.
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
            .arg("--watchlist")
            .arg(&list)
            .args(state_arg)
            .arg("--check")
            .arg(format!("door={}", RtspCamera::url(port)))
            .output()
            .unwrap()
    };
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(refused), "{stderr}");
    // The deliberate way back: restored as a new generation, audited, accepted.
    let backup = d.join("backup.fvl");
    std::fs::write(&backup, &old_copy).unwrap();
    let out = common::cli_ok(
        &list,
        &[
            "restore",
            backup.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert!(out.contains("as generation 4"), "{out}");
    let audit = std::fs::read_to_string(d.join("w.fvl.audit")).unwrap();
    assert!(audit.contains("restore"), "{audit}");
    let out = check();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A camera in trial mode (`trial = true` in the configuration) beside a live one, both on the same
/// clip of a listed person: the live camera's match is an event and a `match` entry of the
/// matches log, the trial camera's only a `trial-match` entry, never an event.
#[test]
fn a_camera_in_trial_mode_writes_no_event_and_logs_its_matches() {
    require_runtime();
    let d = scratch("nvr-trial");
    obama_list(&d);
    common::clip(&d, &[("obama2.jpg", 20)]);
    let config = d.join("nvr.toml");
    std::fs::write(
        &config,
        "[output]\nevents = \"events.jsonl\"\n\n[defaults]\nwatchlist = \"w.fvl\"\n\
         audit-log = \"matches.audit\"\n\n[[camera]]\nname = \"door\"\nurl = \"clip.mp4\"\n\
         trial = true\n\n[[camera]]\nname = \"lobby\"\nurl = \"clip.mp4\"\n",
    )
    .unwrap();
    let mut nvr = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--config")
        .arg(&config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both cameras are files: the runner exits when they end.
    let ended = wait_until(Duration::from_secs(120), || {
        nvr.try_wait().unwrap().is_some()
    });
    let _ = nvr.kill();
    let out = nvr.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(ended && out.status.success(), "{stderr}");
    let lines = |p: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(d.join(p))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let events = lines("events.jsonl");
    let camera_of = |e: &serde_json::Value| e["camera-id"].as_str().unwrap_or_default().to_string();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "faceveil-match" && camera_of(e) == "lobby"),
        "no live match: {events:?} {stderr}"
    );
    assert!(
        events.iter().all(|e| camera_of(e) != "door"),
        "an event of the trial camera: {events:?}"
    );
    // The event line carries the match's explanation, its hits as JSON arrays.
    let m = events
        .iter()
        .find(|e| e["event"] == "faceveil-match")
        .unwrap();
    let threshold = m["threshold"].as_f64().unwrap();
    assert_eq!(m["grayscale"], false, "{m}");
    assert!(
        m["reference"].as_u64().unwrap() < m["references"].as_u64().unwrap(),
        "{m}"
    );
    assert!(m["quality"].as_f64().is_some_and(|q| q > 0.0), "{m}");
    let each = |f: &str| {
        m[f].as_array()
            .unwrap_or_else(|| panic!("{f}: {m}"))
            .clone()
    };
    let scores = each("hit-scores");
    assert!(scores.len() >= 2, "{m}");
    assert!(
        scores.iter().all(|s| s.as_f64().unwrap() >= threshold),
        "{m}"
    );
    for f in [
        "hit-frames",
        "hit-thresholds",
        "hit-qualities",
        "hit-grayscale",
    ] {
        assert_eq!(each(f).len(), scores.len(), "{f}: {m}");
    }
    let log = lines("matches.audit");
    let by = |action: &str, camera: &str| {
        log.iter()
            .filter(|e| e["action"] == action && e["actor"] == format!("camera:{camera}"))
            .count()
    };
    assert!(by("trial-match", "door") >= 1, "{log:?}");
    assert_eq!(
        (by("match", "door"), by("trial-match", "lobby")),
        (0, 0),
        "{log:?}"
    );
    assert!(by("match", "lobby") >= 1, "{log:?}");
    // live and trial entries hold the same explanation
    let matches = log
        .iter()
        .filter(|e| e["action"] == "match" || e["action"] == "trial-match");
    for e in matches {
        let detail = e["detail"].as_str().unwrap_or_default();
        assert!(
            [
                "score ",
                "; reference ",
                "; hits ",
                "; quality ",
                "; threshold "
            ]
            .iter()
            .all(|part| detail.contains(part)),
            "{e}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}
