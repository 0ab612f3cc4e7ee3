// SPDX-License-Identifier: MIT
//! `faceveil-nvr`'s camera pipelines are built from elements: a value of the configuration is
//! never parsed as pipeline syntax.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{obama_list, require_runtime, scratch};

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
