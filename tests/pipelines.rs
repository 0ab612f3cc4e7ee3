// SPDX-License-Identifier: MIT
//! The scripts in pipelines/ run as users run them (bash + gst-launch-1.0), on a clip and on RTSP
//! test cameras. webcam.sh needs a V4L2 device, which this machine does not have.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{RtspCamera, free_port, obama_list, require_runtime, scratch};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A pipelines/ script with the plugin this test build made.
fn script(name: &str, args: &[&str]) -> Child {
    let plugin_dir = common::plugin_dir();
    Command::new("bash")
        .arg(root().join("pipelines").join(name))
        .args(args)
        .env("FACEVEIL_PLUGIN_DIR", plugin_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads a running script's output until `count` lines contain `needle` (or its output ends, or the
/// time is up); returns those lines.
fn read_until(child: &mut Child, needle: &str, count: usize, timeout: Duration) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        // Keep draining after the test stopped listening: a closed pipe would kill gst-launch.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut found = Vec::new();
    let t = Instant::now();
    while t.elapsed() < timeout && found.len() < count {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains(needle) => found.push(line),
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    found
}

fn interrupt(child: &mut Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("script did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A 4 s H.264 clip: 2 s of obama2.jpg, then 2 s of biden.jpg.
fn obama_then_biden(d: &Path) -> PathBuf {
    common::clip(d, &[("obama2.jpg", 20), ("biden.jpg", 20)])
}

#[test]
fn file_script_prints_the_match() {
    require_runtime();
    let d = scratch("file");
    let (list, video) = (obama_list(&d), obama_then_biden(&d));
    let mut c = script(
        "file.sh",
        &[video.to_str().unwrap(), list.to_str().unwrap(), "lobby"],
    );
    let found = read_until(
        &mut c,
        "faceveil-match",
        usize::MAX,
        Duration::from_secs(120),
    );
    let status = c.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(found.len(), 1, "one visit, one alert: {found:?}");
    assert!(
        found[0].contains("label=(string)obama") && found[0].contains("camera-id=(string)lobby"),
        "{}",
        found[0]
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// Runs a recording script on obama2 then biden (20 frames each) with obama enrolled; returns the
/// match lines it printed and the recording decoded through `veildetect` (one buffer a frame).
fn record_with(name: &str) -> (Vec<String>, common::Run) {
    require_runtime();
    let d = scratch(name);
    let (list, video) = (obama_list(&d), obama_then_biden(&d));
    let out = d.join("rec.mp4");
    let mut c = script(
        name,
        &[
            video.to_str().unwrap(),
            list.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    let found = read_until(
        &mut c,
        "faceveil-match",
        usize::MAX,
        Duration::from_secs(120),
    );
    assert!(c.wait().unwrap().success());
    let run = common::run_pipeline(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! veildetect idle-interval=0 ! appsink name=sink",
        out.display()
    ));
    std::fs::remove_dir_all(d).unwrap();
    (found, run)
}

#[test]
fn record_script_writes_mp4_and_matches() {
    let (matches, recording) = record_with("record.sh");
    assert_eq!(matches.len(), 1, "{matches:?}");
    // the recording is a complete MP4 of the whole clip
    assert_eq!(recording.buffers.len(), 40);
}

/// pipelines/record-redacted.sh: the recording shows the listed person from the frame he is
/// identified on, before it nobody's face, and never anyone else's.
#[test]
fn record_redacted_script_hides_everyone_but_the_listed_person() {
    let (matches, recording) = record_with("record-redacted.sh");
    assert_eq!(matches.len(), 1, "obama matched: {matches:?}");
    // The frame of the match, as gst-launch -m prints the message: "frame=(guint64)N".
    let matched_on: usize = matches[0]
        .split("frame=(guint64)")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame in {}", matches[0]));
    // (min-hits 2: never on the first frame)
    assert!(
        (1..10).contains(&matched_on),
        "obama identified on frame {matched_on}: {}",
        matches[0]
    );
    assert_eq!(recording.buffers.len(), 40);
    let faces: Vec<usize> = recording
        .buffers
        .iter()
        .map(|b| gstfaceveil::meta::faces(b).len())
        .collect();
    eprintln!("matched on frame {matched_on}; faces found per frame of the recording: {faces:?}");
    // obama2 (frames 0-19): redacted until identified (fail closed), shown from then on; biden
    // (20-39) never shown.
    assert!(
        faces[..matched_on].iter().all(|&n| n == 0),
        "a face shown before the match on frame {matched_on}: {faces:?}"
    );
    assert!(
        faces[matched_on..20].iter().all(|&n| n == 1),
        "obama hidden after the match on frame {matched_on}: {faces:?}"
    );
    assert!(faces[20..].iter().all(|&n| n == 0), "{faces:?}");
}

#[test]
fn rtsp_and_multi_camera_scripts_match_live_cameras() {
    require_runtime();
    let d = scratch("rtsp");
    let list = obama_list(&d);
    let (p1, p2) = (free_port(), free_port());
    let (_c1, _c2) = (
        RtspCamera::start(p1, "obama2.jpg"),
        RtspCamera::start(p2, "obama3.jpg"),
    );

    let mut one = script(
        "rtsp.sh",
        &[&RtspCamera::url(p1), list.to_str().unwrap(), "gate"],
    );
    let found = read_until(&mut one, "faceveil-match", 1, Duration::from_secs(90));
    interrupt(&mut one);
    assert!(
        found
            .first()
            .is_some_and(|l| l.contains("camera-id=(string)gate")),
        "{found:?}"
    );

    let mut multi = script(
        "multi-camera.sh",
        &[
            list.to_str().unwrap(),
            &RtspCamera::url(p1),
            &RtspCamera::url(p2),
        ],
    );
    let found = read_until(&mut multi, "faceveil-match", 2, Duration::from_secs(120));
    interrupt(&mut multi);
    let cams: std::collections::BTreeSet<bool> = found
        .iter()
        .map(|l| l.contains("camera-id=(string)cam0"))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(cams.len(), 2, "one alert from each camera: {found:?}");
    std::fs::remove_dir_all(d).unwrap();
}
