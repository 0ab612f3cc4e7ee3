// SPDX-License-Identifier: MIT
//! RTSP cameras: a real gst-rtsp-server on 127.0.0.1 (examples/rtsp_server) serving a photo of the
//! enrolled person as H.264; `rtspsrc ! decodebin ! veilbin` and `faceveil-nvr` receive it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{RtspCamera, free_port, obama_list, require_runtime, scratch};
use gst::prelude::*;

/// Waits for a `faceveil-match` on the bus of a pipeline; returns its label.
fn wait_for_match(pipeline: &gst::Element, timeout: Duration) -> Option<String> {
    let bus = pipeline.bus().unwrap();
    let t = Instant::now();
    while t.elapsed() < timeout {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Element(e)
                if e.structure().is_some_and(|s| s.name() == "faceveil-match") =>
            {
                return e.structure().unwrap().get::<String>("label").ok();
            }
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            _ => {}
        }
    }
    None
}

/// A scratch dir with obama's list, and a test camera serving obama2.jpg: (dir, list, port, camera).
fn obama_camera(name: &str) -> (std::path::PathBuf, std::path::PathBuf, u16, RtspCamera) {
    require_runtime();
    let d = scratch(name);
    let list = obama_list(&d);
    let port = free_port();
    let camera = RtspCamera::start(port, "obama2.jpg");
    (d, list, port, camera)
}

#[test]
fn rtsp_camera_through_veilbin_matches() {
    let (d, list, port, _camera) = obama_camera("rtsp-bin");
    let rec = d.join("rec.mkv");
    // the watch branch and a recording branch, as an NVR would run them
    let pipeline = gst::parse::launch(&format!(
        "rtspsrc location={} latency=200 ! decodebin ! tee name=t \
         t. ! queue ! veilbin name=door watchlist=\"{}\" camera-id=door ! fakesink sync=false \
         t. ! queue ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast ! matroskamux ! filesink location=\"{}\"",
        RtspCamera::url(port),
        list.display(),
        rec.display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let label = wait_for_match(&pipeline, Duration::from_secs(90));
    pipeline.send_event(gst::event::Eos::new());
    let end = pipeline.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(10),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    // Both branches saw every frame of the tee: the watch branch's detector counted them.
    let analysed = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|p| p.by_name("door"))
        .and_then(|b| b.downcast::<gst::Bin>().ok())
        .and_then(|b| b.by_name("detect"))
        .expect("veilbin's detector")
        .property::<gst::Structure>("stats")
        .get::<u64>("frames")
        .unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(label.as_deref(), Some("obama"));
    assert!(
        end.as_ref()
            .is_some_and(|m| matches!(m.view(), gst::MessageView::Eos(_))),
        "the recording did not end cleanly: {end:?}"
    );
    // The recording decodes, frame for frame what the watch branch analysed.
    let decoded = common::run_pipeline(&format!(
        "filesrc location=\"{}\" ! matroskademux ! h264parse ! avdec_h264 ! videoconvert \
         ! video/x-raw,format=I420 ! appsink name=sink",
        rec.display()
    ));
    let recorded = decoded.buffers.len() as u64;
    eprintln!("recorded {recorded} frames, analysed {analysed}");
    // (the match alone takes two analysed frames: min-hits)
    assert!(recorded >= 2, "{recorded} frames recorded");
    assert_eq!(recorded, analysed, "the recording lost frames");
    std::fs::remove_dir_all(d).unwrap();
}

/// Waits until `path` holds `n` match events.
fn wait_lines(path: &Path, n: usize, timeout: Duration) -> bool {
    wait_for(timeout, || {
        lines_with(path, "\"event\":\"faceveil-match\"") >= n
    })
}

#[test]
fn nvr_reconnects_after_the_camera_drops() {
    require_runtime();
    let d = scratch("rtsp-nvr");
    let list = obama_list(&d);
    let port = free_port();
    let out = d.join("events.jsonl");
    let camera = RtspCamera::start(port, "obama2.jpg");
    let mut nvr = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--watchlist")
        .arg(&list)
        .arg("--out")
        .arg(&out)
        .arg(format!("door={}", RtspCamera::url(port)))
        .spawn()
        .unwrap();
    assert!(
        wait_lines(&out, 1, Duration::from_secs(90)),
        "no first match"
    );
    // the camera goes away mid-stream, then comes back on the same address
    drop(camera);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        nvr.try_wait().unwrap().is_none(),
        "nvr exited when the camera dropped"
    );
    let _camera = RtspCamera::start(port, "obama2.jpg");
    assert!(
        wait_lines(&out, 2, Duration::from_secs(120)),
        "no match after the camera came back"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"event\":\"faceveil-match\""))
        .unwrap();
    let first: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(first["label"], "obama");
    assert_eq!(first["camera-id"], "door");
    // clean shutdown on Ctrl-C
    Command::new("kill")
        .args(["-INT", &nvr.id().to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = nvr.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "nvr did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(d).unwrap();
}

/// Lines of `path` that contain `needle`.
fn lines_with(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

fn wait_for(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn nvr_config_file_reloads_on_sighup_and_refuses_a_bad_one() {
    let (d, list, port, _camera) = obama_camera("nvr-config");
    let config = d.join("nvr.toml");
    let camera = |name: &str| {
        format!(
            "[[camera]]\nname = \"{name}\"\nurl = \"{}\"\n",
            RtspCamera::url(port)
        )
    };
    let head = format!(
        "[output]\nevents = \"events.jsonl\"\n[defaults]\nwatchlist = \"{}\"\ncooldown = 0\n",
        list.display()
    );
    std::fs::write(&config, format!("{head}{}", camera("door"))).unwrap();
    let log = d.join("nvr.log");
    let mut nvr = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--config")
        .arg(&config)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let events = d.join("events.jsonl");
    assert!(
        wait_for(Duration::from_secs(90), || lines_with(&events, "\"door\"")
            >= 1),
        "no match from door"
    );
    let hup = |nvr: &std::process::Child| {
        Command::new("kill")
            .args(["-HUP", &nvr.id().to_string()])
            .status()
            .unwrap()
    };
    // A bad file: refused, the running configuration stays.
    std::fs::write(&config, format!("{head}{}threshold = 7\n", camera("door"))).unwrap();
    hup(&nvr);
    assert!(
        wait_for(Duration::from_secs(10), || lines_with(&log, "not reloaded")
            == 1),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        lines_with(&log, "line 9: threshold") == 1,
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        nvr.try_wait().unwrap().is_none(),
        "a bad reload stopped the runner"
    );
    // A second camera added: started, the first one keeps running.
    std::fs::write(
        &config,
        format!("{head}{}{}", camera("door"), camera("gate")),
    )
    .unwrap();
    hup(&nvr);
    assert!(
        wait_for(Duration::from_secs(10), || lines_with(
            &log,
            "2 cameras (1 started, 0 stopped, 1 unchanged)"
        ) == 1),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        wait_for(Duration::from_secs(90), || lines_with(&events, "\"gate\"")
            >= 1),
        "no match from the added camera"
    );
    Command::new("kill")
        .args(["-TERM", &nvr.id().to_string()])
        .status()
        .unwrap();
    assert!(nvr.wait().unwrap().success());
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn nvr_starts_nothing_when_a_camera_cannot_start() {
    require_runtime();
    let d = scratch("nvr-refuse");
    let list = obama_list(&d);
    std::fs::remove_file(d.join("w.fvl.key")).unwrap();
    let config = d.join("nvr.toml");
    std::fs::write(
        &config,
        format!(
            "[output]\nevents = \"events.jsonl\"\n[[camera]]\nname = \"door\"\nurl = \"rtsp://127.0.0.1:1/cam\"\nwatchlist = \"{}\"\n",
            list.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--config")
        .arg(&config)
        .env_remove("FACEVEIL_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("camera 'door'") && err.contains("nothing started"),
        "{err}"
    );
    assert!(
        !d.join("events.jsonl").exists(),
        "nothing started, not even the events file"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn the_test_camera_parses_its_arguments() {
    let cam = common::example("rtsp_server");
    let help = Command::new(&cam).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--port"));
    let missing = Command::new(&cam)
        .arg("/nowhere/photo.jpg")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nowhere/photo.jpg"));
    let missing_clip = Command::new(&cam)
        .args(["--clip", "/nowhere/clip.mp4"])
        .output()
        .unwrap();
    assert_eq!(missing_clip.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing_clip.stderr).contains("/nowhere/clip.mp4"));
    let no_h264 = Command::new(&cam)
        .args(["--clip", &common::photo("obama.jpg").display().to_string()])
        .output()
        .unwrap();
    assert_eq!(no_h264.status.code(), Some(2), "a photo is no H.264 clip");
    let unknown = Command::new(&cam)
        .args(["--bogus", "x.jpg"])
        .output()
        .unwrap();
    assert_eq!(
        unknown.status.code(),
        Some(2),
        "an unknown option is not a photo"
    );
}

#[test]
fn nvr_reconnects_a_frozen_camera() {
    let (d, list, port, camera) = obama_camera("nvr-frozen");
    let events = d.join("events.jsonl");
    let log = d.join("nvr.log");
    let mut nvr = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--watchlist")
        .arg(&list)
        .arg("--out")
        .arg(&events)
        .args(["--stall-timeout", "3"])
        .arg(format!("door={}", RtspCamera::url(port)))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    assert!(
        wait_lines(&events, 1, Duration::from_secs(90)),
        "no first match"
    );
    // The server freezes: its connections stay open, nothing more is sent.
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, &camera.pid().to_string()])
            .status()
            .unwrap()
    };
    signal("-STOP");
    let said = wait_for(Duration::from_secs(30), || {
        lines_with(&log, "no video for") >= 1
    });
    signal("-CONT");
    assert!(
        said,
        "no stall message: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(nvr.try_wait().unwrap().is_none(), "the runner exited");
    // Once the server runs again the camera is back: a new pipeline, a new match.
    assert!(
        wait_lines(&events, 2, Duration::from_secs(120)),
        "no match after the camera resumed: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    Command::new("kill")
        .args(["-TERM", &nvr.id().to_string()])
        .status()
        .unwrap();
    assert!(nvr.wait().unwrap().success());
    std::fs::remove_dir_all(d).unwrap();
}
