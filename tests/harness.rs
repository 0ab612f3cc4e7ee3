// SPDX-License-Identifier: MIT
//! Element tests that need neither ONNX Runtime nor the real models: `faceveil` driven through
//! `gst_check::Harness` with synthetic face metadata and descriptors (match, min-hits, cooldown,
//! unknown faces, reload, properties changed while playing), caps refusal of the pixel-reading
//! elements (`veilbin`'s properties: tests/bin.rs).

mod common;

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;
use gst_check::Harness;

use common::{array, fake_model, fake_model_id, near, unit, write_list};
use gstfaceveil::engine::watchlist::file::Secret;
use gstfaceveil::engine::watchlist::store::{load, save, write_key_file};
use gstfaceveil::meta::{self, Embedding, Face, FrameInfo};

const KEY: [u8; 32] = [0x42; 32];

struct Matcher {
    h: Harness,
    bus: gst::Bus,
    model_id: String,
    list: PathBuf,
    dir: PathBuf,
}

const ALICE: u64 = 1;
const BOB: u64 = 2;
const STRANGER: u64 = 3;

/// A started `faceveil` over a list of alice and bob, with `props` set before it plays.
fn matcher(name: &str, props: &[(&str, glib::Value)]) -> Matcher {
    common::init();
    let dir = common::scratch(&format!("harness-{name}"));
    let model = fake_model(&dir);
    let model_id = fake_model_id(&model);
    let list = dir.join("w.fvl");
    write_list(&list, &model_id, &[("alice", ALICE), ("bob", BOB)], KEY);
    let key = dir.join("w.key");
    write_key_file(&key, &KEY, false).unwrap();
    let element = gst::ElementFactory::make("veilmatch")
        .name("cam1")
        .property("watchlist", list.to_str().unwrap())
        .property("key-file", key.to_str().unwrap())
        .property("model", model.to_str().unwrap())
        .build()
        .unwrap();
    for (k, v) in props {
        element.set_property_from_value(k, v);
    }
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = Harness::with_element(&element, Some("sink"), Some("src"));
    h.set_src_caps_str("video/x-raw,format=RGBx,width=64,height=64,framerate=10/1");
    Matcher {
        h,
        bus,
        model_id,
        list,
        dir,
    }
}

impl Matcher {
    /// Pushes a frame at `pts_ms` whose faces are (track, descriptor, fresh); returns what came out.
    fn push(&mut self, pts_ms: u64, faces: &[(u64, Option<Vec<f32>>, bool)]) -> gst::Buffer {
        self.push_domain(pts_ms, faces, false)
    }

    /// `push`, with every face colour or grayscale.
    fn push_domain(
        &mut self,
        pts_ms: u64,
        faces: &[(u64, Option<Vec<f32>>, bool)],
        grayscale: bool,
    ) -> gst::Buffer {
        let mut buf = gst::Buffer::with_size(64 * 64 * 4).unwrap();
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
            b.set_duration(gst::ClockTime::from_mseconds(100));
            meta::set_frame_info(
                b,
                &FrameInfo {
                    frame: pts_ms / 100,
                    detected: true,
                    faces: faces.len() as u32,
                },
            );
            for (i, (track, vector, fresh)) in faces.iter().enumerate() {
                let face = Face {
                    index: i as u32,
                    track_id: *track,
                    rect: (4 + 20 * i as u32, 4, 16, 16),
                    score: 0.9,
                    landmarks: vec![
                        [8.0, 8.0],
                        [14.0, 8.0],
                        [11.0, 11.0],
                        [9.0, 14.0],
                        [13.0, 14.0],
                    ],
                    detected: true,
                    embedding: None,
                    identity: None,
                    analytics_id: None,
                };
                meta::add_face(b, &face);
                let e = Embedding {
                    quality: 0.8,
                    model_id: self.model_id.clone(),
                    vector: vector.clone(),
                    fresh: *fresh,
                    grayscale,
                };
                assert!(meta::set_embedding(b, i as u32, &e));
            }
        }
        self.h.push(buf).unwrap();
        self.h.pull().unwrap()
    }

    /// Element messages posted so far, by name.
    fn messages(&self, name: &str) -> Vec<gst::Structure> {
        let mut out = Vec::new();
        while let Some(m) = self.bus.pop() {
            match m.view() {
                gst::MessageView::Element(e) => {
                    let s = e.structure().unwrap();
                    if s.name() == name {
                        out.push(s.to_owned());
                    }
                }
                gst::MessageView::Warning(w) if name == "warning" => {
                    out.push(
                        gst::Structure::builder("warning")
                            .field("text", w.error().to_string())
                            .build(),
                    );
                }
                gst::MessageView::Error(e) if name == "error" => {
                    out.push(
                        gst::Structure::builder("error")
                            .field("text", e.error().to_string())
                            .build(),
                    );
                }
                _ => {}
            }
        }
        out
    }

    fn element(&self) -> gst::Element {
        self.h.element().unwrap()
    }
}

impl Drop for Matcher {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn labels(buf: &gst::Buffer) -> Vec<Option<String>> {
    meta::faces(buf)
        .into_iter()
        .map(|f| f.identity.map(|i| i.label))
        .collect()
}

#[test]
fn matches_after_min_hits_and_tags_the_track() {
    let mut m = matcher("match", &[]);
    let out = m.push(0, &[(1, Some(near(ALICE, 10, 0.2)), true)]);
    assert_eq!(labels(&out), [None], "one hit is not enough (min-hits 2)");
    assert!(m.messages("faceveil-match").is_empty());
    // A reused descriptor is no new evidence.
    m.push(100, &[(1, Some(near(ALICE, 10, 0.2)), false)]);
    assert!(m.messages("faceveil-match").is_empty());
    let out = m.push(200, &[(1, Some(near(ALICE, 11, 0.2)), true)]);
    assert_eq!(labels(&out), [Some("alice".to_string())]);
    let msgs = m.messages("faceveil-match");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let s = &msgs[0];
    assert_eq!(s.get::<String>("label").unwrap(), "alice");
    assert_eq!(s.get::<String>("identity-id").unwrap(), "id-alice");
    assert_eq!(s.get::<String>("camera-id").unwrap(), "cam1");
    assert_eq!(s.get::<u64>("track-id").unwrap(), 1);
    assert!(s.get::<f64>("score").unwrap() > 0.9);
    assert!(!s.has_field("descriptor"), "no descriptor in messages");
    // What the match rests on: the two fresh descriptors (frames 0 and 2; frame 1 reused its
    // track's), each a hit at the colour threshold, from alice's one descriptor.
    let (colour, _) = calibrated(&m);
    let threshold = s.get::<f64>("threshold").unwrap();
    assert!((threshold - colour as f64).abs() < 1e-6, "{s}");
    assert!(!s.get::<bool>("grayscale").unwrap());
    assert_eq!(
        (
            s.get::<u32>("reference").unwrap(),
            s.get::<u32>("references").unwrap()
        ),
        (0, 1)
    );
    assert!((s.get::<f64>("quality").unwrap() - 0.8).abs() < 1e-6, "{s}");
    assert_eq!(u64s(s, "hit-frames"), [0, 2]);
    let scores = f64s(s, "hit-scores");
    assert_eq!(scores.len(), 2);
    assert!(scores.iter().all(|x| *x >= threshold), "{s}");
    let best = scores.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(
        best,
        s.get::<f64>("score").unwrap(),
        "score is the best hit's"
    );
    assert_eq!(f64s(s, "hit-thresholds"), [threshold, threshold]);
    assert!(
        f64s(s, "hit-qualities")
            .iter()
            .all(|q| (q - 0.8).abs() < 1e-6)
    );
    assert_eq!(bools(s, "hit-grayscale"), [false, false]);
    // The match was decided on the aggregate of the track's two fresh descriptors.
    assert_eq!(s.get::<u32>("aggregate-count").unwrap(), 2, "{s}");
    assert_eq!(s.get::<f64>("aggregate-threshold").unwrap(), threshold);
    assert!(s.get::<f64>("aggregate-score").unwrap() >= threshold, "{s}");
    assert!(!s.get::<bool>("aggregate-grayscale").unwrap());
    // Later frames of the track keep the tag without a new alert.
    let out = m.push(300, &[(1, Some(near(ALICE, 11, 0.2)), false)]);
    assert_eq!(labels(&out), [Some("alice".to_string())]);
    assert!(m.messages("faceveil-match").is_empty());
    assert_eq!(m.element().property::<u32>("identities"), 2);
}

#[test]
fn a_stranger_is_never_tagged_and_reported_only_when_asked() {
    let mut m = matcher("stranger", &[]);
    for i in 0..4 {
        let out = m.push(i * 100, &[(1, Some(near(STRANGER, 20 + i, 0.2)), true)]);
        assert_eq!(labels(&out), [None]);
    }
    assert!(m.messages("faceveil-match").is_empty());
    assert!(m.messages("faceveil-unknown").is_empty(), "not asked");

    let mut m = matcher("unknown", &[("report-unknown", true.to_value())]);
    for i in 0..4 {
        m.push(i * 100, &[(1, Some(near(STRANGER, 20 + i, 0.2)), true)]);
    }
    let unknown = m.messages("faceveil-unknown");
    assert_eq!(unknown.len(), 1, "once per track: {unknown:?}");
    assert!(!unknown[0].has_field("label") && !unknown[0].has_field("score"));
    // nothing of a match's explanation about someone not on the list
    for f in [
        "threshold",
        "margin",
        "reference",
        "references",
        "quality",
        "grayscale",
        "hit-frames",
        "hit-scores",
        "hit-thresholds",
        "hit-qualities",
        "hit-grayscale",
        "aggregate-score",
        "aggregate-count",
    ] {
        assert!(!unknown[0].has_field(f), "{f} in {}", unknown[0]);
    }
}

#[test]
fn cooldown_is_one_alert_per_visit() {
    let mut m = matcher("cooldown", &[("cooldown", 1u32.to_value())]);
    let a = |n| Some(near(ALICE, n, 0.2));
    m.push(0, &[(1, a(1), true)]);
    m.push(100, &[(1, a(2), true)]);
    assert_eq!(m.messages("faceveil-match").len(), 1);
    // Another track of alice within the cooldown: tagged, not alerted.
    m.push(200, &[(2, a(3), true)]);
    let out = m.push(300, &[(2, a(4), true)]);
    assert_eq!(labels(&out), [Some("alice".to_string())]);
    assert!(m.messages("faceveil-match").is_empty());
    // After the cooldown (running time), a new visit is alerted again.
    m.push(1500, &[(3, a(5), true)]);
    m.push(1600, &[(3, a(6), true)]);
    assert_eq!(m.messages("faceveil-match").len(), 1);
}

#[test]
fn min_hits_and_threshold_change_while_playing() {
    let mut m = matcher("props", &[("min-hits", 3u32.to_value())]);
    let a = |n| Some(near(ALICE, n, 0.2));
    m.push(0, &[(1, a(1), true)]);
    m.push(100, &[(1, a(2), true)]);
    assert!(m.messages("faceveil-match").is_empty(), "2 of 3 hits");
    m.push(200, &[(1, a(3), true)]);
    assert_eq!(m.messages("faceveil-match").len(), 1);

    // Raise the threshold above what a noisy descriptor scores: bob no longer matches.
    m.element().set_property("threshold", 0.999f32);
    for i in 0..4 {
        let out = m.push(300 + i * 100, &[(2, Some(near(BOB, 30 + i, 0.2)), true)]);
        assert_eq!(labels(&out), [None]);
    }
    assert!(m.messages("faceveil-match").is_empty());
    m.element().set_property("threshold", 0.0f32);
    for i in 0..3 {
        m.push(800 + i * 100, &[(3, Some(near(BOB, 40 + i, 0.2)), true)]);
    }
    let msgs = m.messages("faceveil-match");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].get::<String>("label").unwrap(), "bob");
    assert!((msgs[0].get::<f64>("threshold").unwrap() - 0.66).abs() < 1e-6);
}

/// `a` × alice + `b` × bob: a face that scores about `a` for alice and `b` for bob (their
/// descriptors are nearly orthogonal), normalised.
fn between(a: f32, b: f32) -> Vec<f32> {
    let v: Vec<f32> = (unit(ALICE).iter().zip(unit(BOB)))
        .map(|(x, y)| a * x + b * y)
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// Bob made a known person: a face that scores as high for him as for alice, within
/// `known-margin`, is held back (no tag, no message, counted in stats as known-held); one that
/// scores clearly higher for alice matches her. The margin is a property that changes while
/// playing, and refuses NaN and values out of 0..1.
#[test]
fn a_known_person_holds_back_faces_as_close_to_them_and_is_never_named() {
    let mut m = matcher("known", &[("min-hits", 2u32.to_value())]);
    let mut list = load(&m.list, &Secret::Key(KEY)).unwrap();
    let bob = list
        .identities
        .iter_mut()
        .find(|i| i.label == "bob")
        .unwrap();
    bob.role = gstfaceveil::engine::watchlist::Role::Known;
    save(&m.list, &mut list, &Secret::Key(KEY)).unwrap();
    assert!(m.element().emit_by_name::<bool>("reload", &[]));
    m.messages("faceveil-reloaded");
    let held = |m: &Matcher| {
        m.element()
            .property::<gst::Structure>("stats")
            .get::<u64>("known-held")
            .unwrap()
    };
    let margin = |m: &Matcher| m.element().property::<f32>("known-margin");
    assert_eq!(margin(&m), 0.05, "the default");
    assert_eq!(held(&m), 0);
    // about 0.70 for alice and 0.72 for bob: over the threshold (0.66), but bob is closer
    let mut t = 0;
    let mut frame = |m: &mut Matcher, track, v: Vec<f32>| {
        t += 100;
        labels(&m.push(t, &[(track, Some(v), true)]))
    };
    for _ in 0..3 {
        assert_eq!(frame(&mut m, 1, between(0.7, 0.72)), [None]);
    }
    assert_eq!(held(&m), 3);
    // about 0.76 for alice, 0.65 for bob: she leads by more than 0.05, unless the margin is 0.2
    m.element().set_property("known-margin", 0.2f32);
    for _ in 0..3 {
        assert_eq!(frame(&mut m, 2, between(0.75, 0.65)), [None]);
    }
    assert_eq!(held(&m), 6);
    assert!(m.messages("faceveil-match").is_empty());
    m.element().set_property("known-margin", 0.05f32);
    frame(&mut m, 3, between(0.75, 0.65));
    assert_eq!(
        frame(&mut m, 3, between(0.75, 0.65)),
        [Some("alice".to_string())]
    );
    let msgs = m.messages("faceveil-match");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].get::<String>("label").unwrap(), "alice");
    assert_eq!(held(&m), 6, "matches are not held");
    // bob's own face: never a match, never his name anywhere
    for _ in 0..3 {
        assert_eq!(frame(&mut m, 4, near(BOB, 9, 0.2)), [None]);
    }
    let stats = m.element().property::<gst::Structure>("stats");
    for s in m.messages("faceveil-match").iter().chain([&stats]) {
        assert!(!s.to_string().contains("bob"), "{s}");
    }
    // NaN and values out of range are refused (as gst-launch-1.0 would set them): the default
    // stays
    for bad in ["nan", "-0.1", "1.5"] {
        let e = gst::parse::launch(&format!("veilmatch known-margin={bad}"));
        let e = e.unwrap_or_else(|err| panic!("{bad}: {err}"));
        assert_eq!(e.property::<f32>("known-margin"), 0.05, "{bad} refused");
    }
}

/// The calibrated thresholds of the matcher's model (colour, grayscale).
fn calibrated(m: &Matcher) -> (f32, f32) {
    let spec = gstfaceveil::engine::manifest::ModelSpec::resolve(
        Some(&m.dir.join("fake.onnx")),
        gstfaceveil::engine::manifest::Task::Embedder,
    )
    .unwrap();
    let e = spec.manifest.embedder.unwrap();
    (e.match_threshold(), e.match_threshold_gray())
}

fn f64s(s: &gst::StructureRef, f: &str) -> Vec<f64> {
    array(s, f)
}

fn u64s(s: &gst::StructureRef, f: &str) -> Vec<u64> {
    array(s, f)
}

fn bools(s: &gst::StructureRef, f: &str) -> Vec<bool> {
    array(s, f)
}

#[test]
fn a_grayscale_match_reports_the_grayscale_threshold() {
    let mut m = matcher("grayscale-report", &[]);
    let (colour, gray) = calibrated(&m);
    assert!(
        gray > colour,
        "the manifest's grayscale threshold is its own"
    );
    let a = |n| Some(near(ALICE, n, 0.2));
    m.push_domain(0, &[(1, a(1), true)], true);
    m.push_domain(100, &[(1, a(2), true)], true);
    let msgs = m.messages("faceveil-match");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let s = &msgs[0];
    assert!(
        (s.get::<f64>("threshold").unwrap() - gray as f64).abs() < 1e-6,
        "a grayscale match is decided at the grayscale threshold ({gray}), not the colour one \
         ({colour}): {s}"
    );
    assert!(s.get::<bool>("grayscale").unwrap(), "{s}");
    assert_eq!(bools(s, "hit-grayscale"), [true, true]);
    assert!(
        f64s(s, "hit-thresholds")
            .iter()
            .all(|t| (t - gray as f64).abs() < 1e-6)
    );
    // the grayscale-threshold property, when set, is the one reported
    m.element().set_property("grayscale-threshold", 0.7f32);
    m.push_domain(200, &[(2, Some(near(BOB, 3, 0.2)), true)], true);
    m.push_domain(300, &[(2, Some(near(BOB, 4, 0.2)), true)], true);
    let msgs = m.messages("faceveil-match");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!((msgs[0].get::<f64>("threshold").unwrap() - 0.7).abs() < 1e-6);
}

#[test]
fn grayscale_faces_are_matched_at_the_grayscale_threshold() {
    let mut m = matcher("grayscale", &[]);
    // cosine ≈ 0.72 with alice: over the colour threshold (0.66), under the grayscale one (0.79)
    let a = |n| Some(near(ALICE, n, 0.96));
    m.push_domain(0, &[(1, a(1), true)], true);
    let out = m.push_domain(100, &[(1, a(2), true)], true);
    assert_eq!(labels(&out), [None], "grayscale: no match");
    m.push_domain(200, &[(2, a(3), true)], false);
    let out = m.push_domain(300, &[(2, a(4), true)], false);
    assert_eq!(labels(&out), [Some("alice".to_string())], "colour: a match");
    // the grayscale threshold is a property of its own
    m.element().set_property("grayscale-threshold", 0.6f32);
    m.push_domain(400, &[(3, a(5), true)], true);
    let out = m.push_domain(500, &[(3, a(6), true)], true);
    assert_eq!(labels(&out), [Some("alice".to_string())]);
}

#[test]
fn reload_swaps_the_list_and_a_bad_one_keeps_the_old() {
    let mut m = matcher("reload", &[]);
    write_list(
        &m.list,
        &m.model_id,
        &[("alice", ALICE), ("bob", BOB), ("carol", STRANGER)],
        KEY,
    );
    let ok = m.element().emit_by_name::<bool>("reload", &[]);
    assert!(ok);
    let reloaded = m.messages("faceveil-reloaded");
    assert_eq!(reloaded.len(), 1);
    assert_eq!(reloaded[0].get::<u32>("identities").unwrap(), 3);
    assert_eq!(m.element().property::<u32>("identities"), 3);
    m.push(0, &[(1, Some(near(STRANGER, 50, 0.2)), true)]);
    let out = m.push(100, &[(1, Some(near(STRANGER, 51, 0.2)), true)]);
    assert_eq!(labels(&out), [Some("carol".to_string())]);

    std::fs::write(&m.list, b"not a watch list").unwrap();
    assert!(!m.element().emit_by_name::<bool>("reload", &[]));
    let warnings = m.messages("warning");
    assert_eq!(warnings.len(), 1);
    let text = warnings[0].get::<String>("text").unwrap();
    assert!(text.contains("(old list kept)"), "{text}");
    assert_eq!(m.element().property::<u32>("identities"), 3);
}

/// The warnings and `stats` of reloads that did not take: what failed, where, and how often.
#[test]
fn a_failed_reload_is_loud_and_counted() {
    let m = matcher("loud", &[]);
    let stats = |m: &Matcher| {
        let s = m.element().property::<gst::Structure>("stats");
        (
            s.get::<u64>("failed-reloads").unwrap(),
            s.get::<u64>("refused-rollbacks").unwrap(),
        )
    };
    assert_eq!(stats(&m), (0, 0));
    let good = std::fs::read(&m.list).unwrap();
    std::fs::write(&m.list, b"not a watch list").unwrap();
    assert!(!m.element().emit_by_name::<bool>("reload", &[]));
    // The warning names the file, the reason and that the old list is kept; its details say so
    // for programs (faceveil-nvr).
    let warning = std::iter::from_fn(|| m.bus.pop())
        .find_map(|msg| match msg.view() {
            gst::MessageView::Warning(w) => {
                Some((w.error().to_string(), w.details().map(|d| d.to_owned())))
            }
            _ => None,
        })
        .expect("a warning");
    let list = m.list.display().to_string();
    assert!(
        warning.0.contains(&list)
            && warning.0.contains("not a faceveil watch list")
            && warning.0.contains("(old list kept)"),
        "{warning:?}"
    );
    let details = warning.1.expect("details");
    assert_eq!(details.name(), "faceveil-reload-failed");
    assert_eq!(details.get::<String>("watchlist").unwrap(), list);
    assert!(
        details
            .get::<String>("reason")
            .unwrap()
            .contains("not a faceveil watch list")
    );
    assert_eq!(stats(&m), (1, 0));
    assert_eq!(m.element().property::<u32>("identities"), 2);
    // A newer list: in use; then the older one put back: refused and counted.
    std::fs::write(&m.list, &good).unwrap();
    assert!(m.element().emit_by_name::<bool>("reload", &[]));
    let mut newer = load(&m.list, &Secret::Key(KEY)).unwrap();
    newer.identities.pop();
    save(&m.list, &mut newer, &Secret::Key(KEY)).unwrap();
    assert!(m.element().emit_by_name::<bool>("reload", &[]));
    assert_eq!(m.element().property::<u32>("identities"), 1);
    std::fs::write(&m.list, &good).unwrap();
    assert!(!m.element().emit_by_name::<bool>("reload", &[]));
    assert_eq!(stats(&m), (1, 1));
    assert_eq!(m.element().property::<u32>("identities"), 1);
}

/// `faceveil rekey` while the element runs: the list re-encrypted, the key file replaced. The
/// element reads the key file again and goes on with the new list.
#[test]
fn a_rekeyed_list_is_read_with_the_new_key_file() {
    let mut m = matcher("rekey", &[]);
    const NEW: [u8; 32] = [0x17; 32];
    write_list(
        &m.list,
        &m.model_id,
        &[("alice", ALICE), ("bob", BOB), ("carol", STRANGER)],
        NEW,
    );
    write_key_file(&m.dir.join("w.key"), &NEW, true).unwrap();
    assert!(
        m.element().emit_by_name::<bool>("reload", &[]),
        "{:?}",
        m.messages("warning")
    );
    assert_eq!(m.element().property::<u32>("identities"), 3);
    m.push(0, &[(1, Some(near(STRANGER, 50, 0.2)), true)]);
    let out = m.push(100, &[(1, Some(near(STRANGER, 51, 0.2)), true)]);
    assert_eq!(labels(&out), [Some("carol".to_string())]);
}

/// A key file every user can read is used with a warning naming it and the fix; one that its
/// group or others can write (and so swap) is refused: the element does not start.
#[test]
fn a_key_file_others_can_read_warns_and_one_they_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    common::init();
    let dir = common::scratch("harness-key-modes");
    let model = fake_model(&dir);
    let list = dir.join("w.fvl");
    write_list(&list, &fake_model_id(&model), &[("alice", ALICE)], KEY);
    let key = dir.join("w.key");
    write_key_file(&key, &KEY, false).unwrap();
    let start = |mode: u32| {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let element = gst::ElementFactory::make("veilmatch")
            .property("watchlist", list.to_str().unwrap())
            .property("key-file", key.to_str().unwrap())
            .property("model", model.to_str().unwrap())
            .build()
            .unwrap();
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let started = element.set_state(gst::State::Paused).is_ok();
        let _ = element.set_state(gst::State::Null);
        let said: Vec<(bool, String)> = std::iter::from_fn(|| bus.pop())
            .filter_map(|msg| match msg.view() {
                gst::MessageView::Warning(w) => Some((false, w.error().to_string())),
                gst::MessageView::Error(e) => Some((true, e.error().to_string())),
                _ => None,
            })
            .collect();
        (started, said)
    };
    let key_name = key.display().to_string();
    let (started, said) = start(0o640);
    assert!(started && said.is_empty(), "{said:?}");
    let (started, said) = start(0o644);
    assert!(started, "{said:?}");
    assert!(
        said.iter().any(|(error, m)| !error
            && m.contains(&key_name)
            && m.contains("readable by every user")
            && m.contains("chmod 0640")),
        "{said:?}"
    );
    for mode in [0o660, 0o646] {
        let (started, said) = start(mode);
        assert!(!started, "mode {mode:o} started");
        assert!(
            said.iter()
                .any(|(error, m)| *error && m.contains(&key_name) && m.contains("can write it")),
            "{mode:o}: {said:?}"
        );
    }
}

/// `stats` says which generation of the list is in use: a newer list written and reloaded raises
/// it, a list that does not open leaves it.
#[test]
fn stats_say_the_generation_in_use() {
    let m = matcher("generation", &[]);
    let generation = |m: &Matcher| {
        m.element()
            .property::<gst::Structure>("stats")
            .get::<u64>("generation")
            .unwrap()
    };
    let first = load(&m.list, &Secret::Key(KEY)).unwrap();
    assert_eq!(generation(&m), first.generation);
    let mut newer = first;
    newer.identities.pop();
    save(&m.list, &mut newer, &Secret::Key(KEY)).unwrap();
    assert!(m.element().emit_by_name::<bool>("reload", &[]));
    assert_eq!(generation(&m), newer.generation);
    assert!(newer.generation > 0);
    std::fs::write(&m.list, b"not a watch list").unwrap();
    assert!(!m.element().emit_by_name::<bool>("reload", &[]));
    assert_eq!(generation(&m), newer.generation);
}

/// With `state-dir`, the highest generation used outlives the element: a new one (a restart, a
/// camera reconnected) refuses an older copy of the list; without it, any list is accepted.
#[test]
fn a_state_dir_refuses_an_older_list_at_start() {
    let m = matcher("state", &[]);
    let state = m.dir.join("state");
    std::fs::create_dir(&state).unwrap();
    let old = std::fs::read(&m.list).unwrap();
    let mut newer = load(&m.list, &Secret::Key(KEY)).unwrap();
    newer.identities.pop();
    save(&m.list, &mut newer, &Secret::Key(KEY)).unwrap();
    let (key, model) = (m.dir.join("w.key"), m.dir.join("fake.onnx"));
    let start = |state: Option<&std::path::Path>| {
        let mut b = gst::ElementFactory::make("veilmatch")
            .property("watchlist", m.list.to_str().unwrap())
            .property("key-file", key.to_str().unwrap())
            .property("model", model.to_str().unwrap());
        if let Some(s) = state {
            b = b.property("state-dir", s.to_str().unwrap());
        }
        let element = b.build().unwrap();
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let started = element.set_state(gst::State::Paused).is_ok();
        let error = std::iter::from_fn(|| bus.pop()).find_map(|msg| match msg.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        });
        let _ = element.set_state(gst::State::Null);
        (started, error)
    };
    assert_eq!(start(Some(&state)), (true, None), "generation 2 recorded");
    std::fs::write(&m.list, &old).unwrap();
    let (started, error) = start(Some(&state));
    let error = error.unwrap_or_default();
    assert!(!started, "{error}");
    assert!(
        error.contains(&m.list.display().to_string())
            && error.contains("generation 1")
            && error.contains("generation 2")
            && error.contains(&state.join("generations.json").display().to_string())
            && error.contains("faceveil restore"),
        "{error}"
    );
    assert_eq!(start(None), (true, None), "in memory only: accepted");
}

#[test]
fn a_deleted_list_stops_matching_with_a_warning() {
    let mut m = matcher("deleted", &[]);
    let a = |n| Some(near(ALICE, n, 0.2));
    std::fs::remove_file(&m.list).unwrap();
    // the element looks at the file once a second, while frames flow
    std::thread::sleep(std::time::Duration::from_millis(1100));
    m.push(0, &[(1, a(1), true)]);
    let warnings = m.messages("warning");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let text = warnings[0].get::<String>("text").unwrap();
    assert!(
        text.contains("was deleted") && text.contains("matching stops"),
        "{text}"
    );
    assert_eq!(m.element().property::<u32>("identities"), 0);
    let out = m.push(100, &[(1, a(2), true)]);
    assert_eq!(labels(&out), [None], "nothing matches a deleted list");
    assert!(m.messages("faceveil-match").is_empty());
}

#[test]
fn descriptors_of_another_model_are_an_error_naming_both() {
    let mut m = matcher("model", &[]);
    let mut buf = gst::Buffer::with_size(64 * 64 * 4).unwrap();
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::ZERO);
        meta::set_frame_info(
            b,
            &FrameInfo {
                frame: 0,
                detected: true,
                faces: 1,
            },
        );
        meta::add_face(
            b,
            &Face {
                index: 0,
                track_id: 1,
                rect: (4, 4, 16, 16),
                score: 0.9,
                landmarks: vec![],
                detected: true,
                embedding: None,
                identity: None,
                analytics_id: None,
            },
        );
        meta::set_embedding(
            b,
            0,
            &Embedding {
                quality: 0.8,
                model_id: "other:0123456789abcdef".into(),
                vector: Some(unit(ALICE)),
                fresh: true,
                grayscale: false,
            },
        );
    }
    assert_eq!(m.h.push(buf), Err(gst::FlowError::Error));
    let errors = m.messages("error");
    assert_eq!(errors.len(), 1);
    let text = errors[0].get::<String>("text").unwrap();
    assert!(
        text.contains("other:0123456789abcdef") && text.contains(&m.model_id),
        "{text}"
    );
}

#[test]
fn pixel_elements_refuse_formats_and_sizes_they_cannot_read() {
    common::init();
    for name in ["veildetect", "veilembed", "veilredact", "veiloverlay"] {
        let e = gst::ElementFactory::make(name).build().unwrap();
        let sink = e.static_pad("sink").unwrap();
        let accepts = |caps: &str| sink.query_accept_caps(&caps.parse::<gst::Caps>().unwrap());
        for ok in [
            "video/x-raw,format=I420,width=640,height=480,framerate=30/1",
            "video/x-raw,format=NV12,width=16,height=16,framerate=30/1",
            "video/x-raw,format=BGRx,width=1920,height=1080,framerate=30/1",
        ] {
            assert!(accepts(ok), "{name} refuses {ok}");
        }
        for bad in [
            "video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1",
            "video/x-raw,format=YUY2,width=640,height=480,framerate=30/1",
            "image/jpeg,width=640,height=480",
        ] {
            assert!(!accepts(bad), "{name} accepts {bad}");
        }
        // Small frames pass the caps and are refused at set_info, with the minimum size named
        // (tests/errors.rs), not with a bare not-negotiated from upstream.
        assert!(accepts(
            "video/x-raw,format=I420,width=8,height=480,framerate=30/1"
        ));
    }
}

// ---- veilredact with synthetic face metadata ----

/// A 64×32 RGBx frame of a fine checkerboard, with faces (track, box, identified) as veildetect
/// (and faceveil, when identified) would leave them.
/// A face box in frame pixels: x, y, width, height.
type Rect = (u32, u32, u32, u32);

fn checker_frame(n: u64, faces: &[(u64, Rect, bool)]) -> gst::Buffer {
    let data: Vec<u8> = (0..64 * 32 * 4)
        .map(|i| {
            if (i / 4 % 64 + i / 256) % 2 == 0 {
                200
            } else {
                40
            }
        })
        .collect();
    let mut buf = gst::Buffer::from_mut_slice(data);
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(100 * n));
        meta::set_frame_info(
            b,
            &FrameInfo {
                frame: n,
                detected: true,
                faces: faces.len() as u32,
            },
        );
        for (i, (track, rect, known)) in faces.iter().enumerate() {
            meta::add_face(
                b,
                &Face {
                    index: i as u32,
                    track_id: *track,
                    rect: *rect,
                    score: 0.9,
                    landmarks: Vec::new(),
                    detected: true,
                    embedding: None,
                    identity: None,
                    analytics_id: None,
                },
            );
            if *known {
                meta::set_identity(
                    b,
                    i as u32,
                    &meta::IdentityTag {
                        label: "alice".into(),
                        identity_id: "a".into(),
                        score: 0.9,
                        verified: true,
                    },
                );
            }
        }
    }
    buf
}

/// Whether the box's pixels (RGB, alpha aside) differ from the checkerboard's.
fn touched(buf: &gst::Buffer, (x, y, w, h): Rect) -> bool {
    let original = checker_frame(0, &[]);
    let (a, b) = (
        original.map_readable().unwrap(),
        buf.map_readable().unwrap(),
    );
    (y..y + h).any(|yy| {
        (x..x + w).any(|xx| {
            let i = ((yy * 64 + xx) * 4) as usize;
            a[i..i + 3] != b[i..i + 3]
        })
    })
}

fn redactor(props: &[(&str, &str)]) -> (Harness, gst::Bus) {
    common::init();
    let e = gst::ElementFactory::make("veilredact").build().unwrap();
    for (k, v) in props {
        e.set_property_from_str(k, v);
    }
    let bus = gst::Bus::new();
    e.set_bus(Some(&bus));
    let mut h = Harness::with_element(&e, Some("sink"), Some("src"));
    h.set_src_caps_str("video/x-raw,format=RGBx,width=64,height=32,framerate=10/1");
    (h, bus)
}

#[test]
fn veilredact_modes_choose_whose_face() {
    let (alice, stranger) = ((4, 4, 16, 16), (40, 4, 16, 16));
    for (mode, want_alice, want_stranger) in [
        ("all", true, true),
        ("unmatched", false, true),
        ("matched", true, false),
    ] {
        let (mut h, _bus) = redactor(&[("mode", mode), ("margin", "0")]);
        let out = h
            .push_and_pull(checker_frame(0, &[(1, alice, true), (2, stranger, false)]))
            .unwrap();
        assert_eq!(touched(&out, alice), want_alice, "{mode}: alice");
        assert_eq!(touched(&out, stranger), want_stranger, "{mode}: stranger");
        // Outside the boxes nothing changes.
        assert!(!touched(&out, (0, 24, 64, 8)), "{mode}: outside the boxes");
    }
}

#[test]
fn veilredact_keeps_a_lost_tracks_box_redacted_for_hold_frames() {
    let face = (20, 4, 16, 16);
    let (mut h, _bus) = redactor(&[("hold", "3"), ("method", "fill")]);
    assert!(touched(
        &h.push_and_pull(checker_frame(0, &[(7, face, false)]))
            .unwrap(),
        face
    ));
    // The track is gone (the detector missed it): its last box stays redacted 3 frames.
    for n in 1..=3 {
        let out = h.push_and_pull(checker_frame(n, &[])).unwrap();
        assert!(touched(&out, face), "frame {n}: a lost face was shown");
    }
    let out = h.push_and_pull(checker_frame(4, &[])).unwrap();
    assert!(!touched(&out, face), "held longer than 'hold'");
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("held").unwrap(), 3, "{stats}");
    assert_eq!(stats.get::<u64>("redacted").unwrap(), 4, "{stats}");
}

#[test]
fn veilredact_fails_closed_on_a_frame_without_detector_metadata() {
    let (mut h, bus) = redactor(&[("mode", "all")]);
    let mut plain = gst::Buffer::with_size(64 * 32 * 4).unwrap();
    plain.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    assert_eq!(h.push(plain), Err(gst::FlowError::Error));
    assert_eq!(h.buffers_in_queue(), 0, "a frame went out unredacted");
    let err = bus
        .iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an element error");
    assert!(err.contains("put veildetect"), "{err}");
}

/// The faces as a scaler leaves them: GStreamer rescales the ROI boxes (new metas on a new
/// buffer), so what is read must come from the ROIs, never faceveil's stored typed faces.
/// (GStreamer 1.22's ROI meta drops its params when it is scaled: the faces are then plain ROIs.)
#[test]
fn a_scaler_between_elements_never_gives_the_stored_boxes() {
    common::init();
    let mut h = Harness::new_parse("videoscale ! capsfilter caps=video/x-raw,width=32,height=16");
    h.set_src_caps_str("video/x-raw,format=RGBx,width=64,height=32,framerate=10/1");
    h.play();
    let frame = checker_frame(
        0,
        &[(7, (8, 4, 16, 12), true), (8, (40, 10, 20, 20), false)],
    );
    assert_eq!(meta::faces(&frame).len(), 2);
    h.push(frame).unwrap();
    let out = h.pull().unwrap();
    let mut rois: Vec<Rect> = out
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .map(|r| r.rect())
        .collect();
    rois.sort();
    assert_eq!(rois, [(4, 2, 8, 6), (20, 5, 10, 10)]);
    let after = meta::faces(&out);
    assert_eq!(after, meta::parse_faces(&out));
    assert!(after.iter().all(|f| rois.contains(&f.rect)), "{after:?}");

    // What videoconvert keeps of the ROIs is its GStreamer version's choice (1.22 and 1.26 keep the box and drop the params): the faces read are
    // what the ROIs say.
    let mut h = Harness::new_parse("videoconvert ! capsfilter caps=video/x-raw,format=I420");
    h.set_src_caps_str("video/x-raw,format=RGBx,width=64,height=32,framerate=10/1");
    h.play();
    h.push(checker_frame(1, &[(7, (8, 4, 16, 12), true)]))
        .unwrap();
    let out = h.pull().unwrap();
    let faces = meta::faces(&out);
    assert_eq!(faces, meta::parse_faces(&out));
    let rois: Vec<Rect> = out
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .map(|r| r.rect())
        .collect();
    assert_eq!(rois, [(8, 4, 16, 12)]);
    assert!(faces.iter().all(|f| rois.contains(&f.rect)), "{faces:?}");
}

/// A converter between the detector's metadata and `veilredact` that drops the faces' params
/// (GStreamer's videoconvert does, 1.22 and 1.26): the frame says how many faces it had, so the redactor
/// covers the whole frame and warns, instead of passing the faces in the clear.
#[test]
fn veilredact_covers_a_frame_whose_faces_were_lost_on_the_way() {
    common::init();
    let bin = gst::parse::bin_from_description(
        "videoconvert ! capsfilter caps=video/x-raw,format=BGRx ! veilredact name=r mode=all \
         margin=0",
        true,
    )
    .unwrap();
    let bus = gst::Bus::new();
    bin.set_bus(Some(&bus));
    let mut h = Harness::with_element(&bin, Some("sink"), Some("src"));
    h.set_src_caps_str("video/x-raw,format=RGBx,width=64,height=32,framerate=10/1");
    h.play();
    let (a, b) = ((4, 4, 16, 16), (40, 4, 16, 16));
    let out = h
        .push_and_pull(checker_frame(0, &[(1, a, false), (2, b, false)]))
        .unwrap();
    assert!(
        touched(&out, a) && touched(&out, b),
        "a face left in the clear"
    );
    let stats = bin
        .by_name("r")
        .unwrap()
        .property::<gst::Structure>("stats");
    let lost = stats.get::<u64>("lost").unwrap();
    if lost == 0 {
        // This GStreamer keeps the params: the faces themselves were redacted.
        assert_eq!(stats.get::<u64>("redacted").unwrap(), 2, "{stats}");
        return;
    }
    assert_eq!(lost, 1, "{stats}");
    assert!(touched(&out, (0, 24, 64, 8)), "the whole frame is covered");
    let warning = bus
        .iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .expect("a warning");
    assert!(
        warning.contains("2 faces the detector attached"),
        "{warning}"
    );
}
