// SPDX-License-Identifier: MIT
//! Many cameras in one process share one copy of each model (docs/RELIABILITY.md). Alone in its
//! test binary: it counts the models loaded in the process.

mod common;

use common::{obama_list, photo, require_runtime, scratch};
use gst::prelude::*;

#[test]
fn eight_cameras_share_one_detector_and_one_embedder_and_all_match() {
    require_runtime();
    let d = scratch("cameras");
    let list = obama_list(&d);
    let branch = |i: usize| {
        format!(
            " filesrc location=\"{}\" ! decodebin ! imagefreeze num-buffers=10 \
             ! facewatchbin name=cam{i} camera-id=cam{i} watchlist=\"{}\" ! fakesink",
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
            sessions = sessions.max(gstfacewatch::core::runtime::loaded_sessions());
            peak = peak.max(common::rss_kb());
            match msg.view() {
                gst::MessageView::Element(e) => {
                    let s = e.structure().unwrap();
                    if s.name() == "facewatch-match" {
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
        gstfacewatch::core::runtime::loaded_sessions(),
        0,
        "unloaded when the last camera stopped"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
