// SPDX-License-Identifier: MIT
//! Many cameras in one process share one copy of each model (docs/RELIABILITY.md). Alone in its
//! test binary: it counts the models loaded in the process.

mod common;

use common::{obama_list, photo, require_runtime, scratch};
use gst::prelude::*;

/// The tests count the models loaded in the process: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn eight_cameras_share_one_detector_and_one_embedder_and_all_match() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    require_runtime();
    let d = scratch("cameras");
    let list = obama_list(&d);
    let branch = |i: usize| {
        format!(
            " filesrc location=\"{}\" ! decodebin ! imagefreeze num-buffers=10 \
             ! veilbin name=cam{i} camera-id=cam{i} watchlist=\"{}\" ! fakesink",
            photo("obama2.jpg").display(),
            list.display()
        )
    };
    // Runs `n` cameras in one pipeline: the cameras that matched, the most models loaded at once,
    // and the peak resident memory.
    let run = |n: usize| {
        let desc: String = (0..n).map(branch).collect();
        let pipeline = common::launch(&desc);
        let bus = pipeline.bus().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut matched = std::collections::BTreeSet::new();
        let (mut sessions, mut peak) = (0, 0);
        for msg in bus.iter_timed(gst::ClockTime::from_seconds(180)) {
            sessions = sessions.max(gstfaceveil::engine::runtime::loaded_sessions());
            peak = peak.max(common::rss_kb());
            match msg.view() {
                gst::MessageView::Element(e) => {
                    let s = e.structure().unwrap();
                    if s.name() == "faceveil-match" {
                        matched.insert(s.get::<String>("camera-id").unwrap());
                    }
                }
                gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
                gst::MessageView::Eos(_) => break,
                _ => {}
            }
        }
        pipeline.set_state(gst::State::Null).unwrap();
        (matched, sessions, peak)
    };
    let (_, _, peak1) = run(1);
    let (matched, sessions, peak) = run(8);
    // Measured, not asserted (tests check behaviour): the cost of each camera past the first.
    eprintln!(
        "1 camera: peak RSS {} MB; 8 cameras: {} MB, {sessions} models loaded: {:.1} MB per further camera",
        peak1 / 1024,
        peak / 1024,
        (peak.saturating_sub(peak1)) as f64 / 1024.0 / 7.0
    );
    assert_eq!(matched.len(), 8, "every camera matched: {matched:?}");
    assert_eq!(
        sessions, 2,
        "one detector and one embedder for the 8 cameras, not one each"
    );
    assert_eq!(
        gstfaceveil::engine::runtime::loaded_sessions(),
        0,
        "unloaded when the last camera stopped"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Faces that reach several embedders (cameras) at once go through the shared model in one run,
/// and every embedder still gets its own faces' descriptors.
#[test]
fn faces_arriving_together_from_several_cameras_share_one_embedder_run() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    require_runtime();
    use gstfaceveil::engine::embedder::Embedder;
    let cameras = 4;
    let rounds = 8;
    // Camera c's chips: c + 1 faces, each a different pattern.
    let chips = |emb: &Embedder, c: usize| -> Vec<f32> {
        let len = emb.chip_len();
        (0..(c + 1) * len)
            .map(|i| (((i % len) * (7 + c) + (i / len) * 13) % 255) as f32 / 64.0 - 2.0)
            .collect()
    };
    let mut reference = Embedder::new(common::embedder_spec(), 1).unwrap();
    let alone: Vec<Vec<Vec<f32>>> = (0..cameras)
        .map(|c| {
            let x = chips(&reference, c);
            reference.embed_chips(&x, c + 1).unwrap()
        })
        .collect();
    let start = std::sync::Arc::new(std::sync::Barrier::new(cameras));
    let threads: Vec<_> = (0..cameras)
        .map(|c| {
            let start = start.clone();
            let want = alone[c].clone();
            std::thread::spawn(move || {
                let mut emb = Embedder::new(common::embedder_spec(), 1).unwrap();
                let x = chips(&emb, c);
                for _ in 0..rounds {
                    start.wait();
                    let got = emb.embed_chips(&x, c + 1).unwrap();
                    assert_eq!(got.len(), c + 1);
                    for (g, w) in got.iter().zip(&want) {
                        let diff = g
                            .iter()
                            .zip(w)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0.0, f32::max);
                        assert!(diff < 1e-4, "camera {c} got another's descriptor ({diff})");
                    }
                }
                emb.shared_runs()
            })
        })
        .collect();
    let shared: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(gstfaceveil::engine::runtime::loaded_sessions(), 1);
    eprintln!(
        "{shared} of {} embedder calls went in a shared run",
        cameras * rounds
    );
    assert!(shared > 0, "no run carried the faces of two cameras");
}

/// Four live cameras on one model, more work than the machine can do (the detector on every
/// frame: the adaptive default lets four still 720p cameras keep up without skipping): each
/// camera skips analysis (not video) to keep up with live, and each gets a like share of the
/// model runs
/// (`examples/cameras.rs`, which `bench/cameras.sh` runs with more cameras). The detectors'
/// `max-lateness` is cut to 5 ms, so that a model busy with the other cameras means a skip however
/// fast the machine is. Runs the release build (scripts/test.sh makes it first): a debug build
/// spends more on each skipped frame than a camera's frame interval, which is not what a
/// deployment sees. Like the other tests of this file it runs alone (`ONE_AT_A_TIME`), and cargo
/// runs test binaries one after another: no other test shares the machine's cores with it.
#[test]
fn live_cameras_under_overload_keep_up_and_share_the_model_fairly() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    require_runtime();
    let d = scratch("cameras-live");
    let list = obama_list(&d);
    let frame = d.join("frame.i420");
    common::run_pipeline(&format!(
        "{} ! videoscale add-borders=true \
         ! video/x-raw,format=I420,width=1280,height=720,pixel-aspect-ratio=1/1 \
         ! filesink location=\"{}\"",
        common::photo_src("obama2.jpg", "video/x-raw"),
        frame.display()
    ));
    let release = common::plugin_dir().join("../release");
    let example = release.join("examples/cameras");
    assert!(
        example.is_file() && release.join("libgstfaceveil.so").is_file(),
        "run cargo build --release --lib --examples first (scripts/test.sh does)"
    );
    let out = std::process::Command::new(example)
        .args([
            "--cameras",
            "4",
            "--seconds",
            "4",
            "--warmup",
            "3",
            "--props",
            "interval=1 detect::max-lateness=5",
            "--frame",
        ])
        .arg(&frame)
        .arg("--watchlist")
        .arg(&list)
        .env("GST_PLUGIN_PATH", &release)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    eprintln!("{r}");
    assert_eq!(r["matched_cameras"], 4, "{r}");
    let cams = r["per_camera"].as_array().unwrap();
    let f = |c: &serde_json::Value, k: &str| c[k].as_f64().unwrap();
    for c in cams {
        // 30 fps in, 30 fps through: analysis dropped, not video.
        assert!(f(c, "frames_fps") > 25.0, "a camera fell behind live: {r}");
        assert!(f(c, "skipped_fps") > 0.0, "{r}");
    }
    let (min, max) = (f(&r, "analysed_fps_min"), f(&r, "analysed_fps_max"));
    assert!(min > 0.0 && min >= max / 3.0, "an unfair share: {r}");
    std::fs::remove_dir_all(&d).unwrap();
}
