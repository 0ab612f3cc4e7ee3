// SPDX-License-Identifier: MIT
//! RTSP cameras: a real gst-rtsp-server on 127.0.0.1 (examples/rtsp_server) serving a photo of the
//! enrolled person as H.264; `rtspsrc ! decodebin ! facewatchbin` and the `nvr` example receive it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{RtspCamera, example, free_port, obama_list, require_runtime, scratch};
use gst::prelude::*;

/// Waits for a `facewatch-match` on the bus of a pipeline; returns its label.
fn wait_for_match(pipeline: &gst::Element, timeout: Duration) -> Option<String> {
    let bus = pipeline.bus().unwrap();
    let t = Instant::now();
    while t.elapsed() < timeout {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Element(e)
                if e.structure().is_some_and(|s| s.name() == "facewatch-match") =>
            {
                return e.structure().unwrap().get::<String>("label").ok();
            }
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            _ => {}
        }
    }
    None
}

#[test]
fn rtsp_camera_through_facewatchbin_matches() {
    require_runtime();
    let d = scratch("rtsp-bin");
    let list = obama_list(&d);
    let port = free_port();
    let _camera = RtspCamera::start(port, "obama2.jpg");
    let rec = d.join("rec.mkv");
    // the watch branch and a recording branch, as an NVR would run them
    let pipeline = gst::parse::launch(&format!(
        "rtspsrc location={} latency=200 ! decodebin ! tee name=t \
         t. ! queue ! facewatchbin watchlist=\"{}\" camera-id=door ! fakesink sync=false \
         t. ! queue ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast ! matroskamux ! filesink location=\"{}\"",
        RtspCamera::url(port),
        list.display(),
        rec.display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let label = wait_for_match(&pipeline, Duration::from_secs(90));
    pipeline.send_event(gst::event::Eos::new());
    let _ = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(label.as_deref(), Some("obama"));
    assert!(
        std::fs::metadata(&rec).unwrap().len() > 1000,
        "the recording branch wrote nothing"
    );
    std::fs::remove_dir_all(d).unwrap();
}

fn match_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"event\":\"facewatch-match\""))
        .count()
}

fn wait_lines(path: &Path, n: usize, timeout: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if match_lines(path) >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn nvr_reconnects_after_the_camera_drops() {
    require_runtime();
    let d = scratch("rtsp-nvr");
    let list = obama_list(&d);
    let port = free_port();
    let out = d.join("events.jsonl");
    let camera = RtspCamera::start(port, "obama2.jpg");
    let mut nvr = Command::new(example("nvr"))
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
    let line = std::fs::read_to_string(&out).unwrap();
    let first: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
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
