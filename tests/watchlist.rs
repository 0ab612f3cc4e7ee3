// SPDX-License-Identifier: MIT
//! The watch list end to end: the `faceveil` CLI makes and changes lists, real pipelines
//! `veildetect ! veilembed ! veilmatch` match clips made from the photos.

mod common;

use std::process::Command;

use common::{
    array, cli, cli_ok, obama_list, photo, photo_src, require_runtime, run_pipeline, scratch,
    watch_segments,
};
use gst::prelude::*;

fn messages<'a>(run: &'a common::Run, name: &str) -> Vec<&'a gst::Structure> {
    run.element_messages
        .iter()
        .filter(|s| s.name() == name)
        .collect()
}

/// Which 1-second segment a message's running time falls in.
fn segment_of(s: &gst::Structure) -> u64 {
    s.get::<Option<gst::ClockTime>>("running-time")
        .unwrap()
        .expect("running time")
        .seconds()
}

#[test]
fn matches_only_the_enrolled_person() {
    let d = scratch("e2e");
    let list = obama_list(&d);
    let segs = [
        ("obama2.jpg", 10),
        ("obama3.jpg", 10),
        ("biden.jpg", 10),
        ("astronaut.png", 10),
    ];
    let run = watch_segments(&segs, &list, "cooldown=0");
    assert_eq!(run.buffers.len(), 40);
    let matches = messages(&run, "faceveil-match");
    assert!(!matches.is_empty(), "no match: {:?}", run.element_messages);
    let key_list = std::fs::read_to_string(d.join("w.fvl.key")).unwrap();
    for m in &matches {
        assert_eq!(m.get::<String>("label").unwrap(), "obama");
        assert!(segment_of(m) <= 1, "match outside the obama segments: {m}");
        assert!(m.get::<f64>("score").unwrap() >= m.get::<f64>("threshold").unwrap());
        assert_eq!(m.get::<String>("camera-id").unwrap(), "fw");
        assert!(m.get::<String>("model-id").unwrap().starts_with("sface:"));
        for f in [
            "identity-id",
            "margin",
            "track-id",
            "x",
            "y",
            "width",
            "height",
            "pts",
            "stream-time",
            "utc",
            "frame",
        ] {
            assert!(m.has_field(f), "{f} missing in {m}");
        }
        // what the match rests on: a colour face, decided at the colour threshold, min-hits (2)
        // hits or more, each at least its threshold, from obama's one descriptor
        let (colour, _) = thresholds();
        let threshold = m.get::<f64>("threshold").unwrap();
        assert!((threshold - colour).abs() < 1e-6, "{m}");
        assert!(!m.get::<bool>("grayscale").unwrap(), "{m}");
        let (reference, references) = (
            m.get::<u32>("reference").unwrap(),
            m.get::<u32>("references").unwrap(),
        );
        assert!(reference < references && references == 1, "{m}");
        let quality = m.get::<f64>("quality").unwrap();
        assert!(quality > 0.0 && quality <= 1.0, "{m}");
        let scores = array::<f64>(m, "hit-scores");
        assert!(scores.len() >= 2, "{m}");
        assert!(scores.iter().all(|s| *s >= threshold), "{m}");
        assert!(scores.contains(&m.get::<f64>("score").unwrap()), "{m}");
        let frames = array::<u64>(m, "hit-frames");
        assert_eq!(frames.len(), scores.len());
        assert!(frames.windows(2).all(|w| w[0] < w[1]), "{m}");
        assert!(
            *frames.last().unwrap() <= m.get::<u64>("frame").unwrap(),
            "{m}"
        );
        // no descriptor, no image, no key in a message
        let text = m.to_string();
        assert!(!text.contains("descriptor") && !text.contains(key_list.trim()));
    }
    // both obama segments produce a match (a new track each, or the same track carried on)
    let tagged: Vec<bool> = run
        .buffers
        .iter()
        .map(|b| {
            gstfaceveil::meta::faces(b)
                .iter()
                .any(|f| f.identity.as_ref().is_some_and(|i| i.label == "obama"))
        })
        .collect();
    assert!(
        tagged[..20].iter().filter(|t| **t).count() >= 10,
        "{tagged:?}"
    );
    // After the cut to biden the track may carry the name until its next fresh descriptor (at most
    // reembed-interval = 2 frames), never longer.
    assert!(
        tagged[22..].iter().all(|t| !t),
        "biden/astronaut tagged as obama: {tagged:?}"
    );
    assert!(
        messages(&run, "faceveil-unknown").is_empty(),
        "unknowns only when asked"
    );

    let run = watch_segments(&segs, &list, "cooldown=0 report-unknown=true");
    let unknown: Vec<u64> = messages(&run, "faceveil-unknown")
        .iter()
        .map(|m| segment_of(m))
        .collect();
    assert!(unknown.contains(&2) && unknown.contains(&3), "{unknown:?}");
    assert!(unknown.iter().all(|s| *s >= 2), "{unknown:?}");
    std::fs::remove_dir_all(d).unwrap();
}

/// The embedder manifest's calibrated thresholds, colour and grayscale.
fn thresholds() -> (f64, f64) {
    let e = common::embedder_spec().manifest.embedder.unwrap();
    (e.match_threshold() as f64, e.match_threshold_gray() as f64)
}

/// obama2.jpg in black and white: a grayscale face, matched at the grayscale threshold, and the
/// message says so (it once reported the colour threshold).
#[test]
fn a_grayscale_match_reports_the_grayscale_threshold() {
    let d = scratch("gray-match");
    let list = obama_list(&d);
    require_runtime();
    let run = run_pipeline(&format!(
        "{} ! veildetect ! veilembed reembed-interval=1 ! veilmatch watchlist=\"{}\" ! appsink name=sink",
        photo_src(
            "obama2.jpg",
            "video/x-raw,format=GRAY8 ! videoconvert ! video/x-raw,format=I420 ! imagefreeze num-buffers=10"
        ),
        list.display()
    ));
    let matches = messages(&run, "faceveil-match");
    assert_eq!(matches.len(), 1, "{:?}", run.element_messages);
    let m = matches[0];
    let (colour, gray) = thresholds();
    assert!(
        (m.get::<f64>("threshold").unwrap() - gray).abs() < 1e-6,
        "the grayscale threshold {gray}, not the colour one {colour}: {m}"
    );
    assert!(m.get::<bool>("grayscale").unwrap(), "{m}");
    assert!(array::<bool>(m, "hit-grayscale").iter().all(|g| *g), "{m}");
    assert!(
        array::<f64>(m, "hit-thresholds")
            .iter()
            .all(|t| (t - gray).abs() < 1e-6),
        "{m}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn one_alert_per_visit() {
    let d = scratch("cooldown");
    let list = obama_list(&d);
    let run = watch_segments(&[("obama2.jpg", 60)], &list, "");
    assert_eq!(
        messages(&run, "faceveil-match").len(),
        1,
        "{:?}",
        run.element_messages
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn expired_identity_never_matches() {
    let d = scratch("expired");
    let list = d.join("w.fvl");
    cli_ok(&list, &["init"]);
    cli_ok(
        &list,
        &[
            "enroll",
            "--label",
            "obama",
            "--expires",
            "2020-01-01T00:00:00Z",
            photo("obama.jpg").to_str().unwrap(),
        ],
    );
    let run = watch_segments(&[("obama2.jpg", 20)], &list, "report-unknown=true");
    assert!(
        messages(&run, "faceveil-match").is_empty(),
        "{:?}",
        run.element_messages
    );
    // The control: the matcher saw obama's face with descriptors on every frame and decided, on
    // its own list, that he is nobody on it.
    assert_eq!(run.buffers.len(), 20);
    let described = run
        .buffers
        .iter()
        .filter(|b| {
            gstfaceveil::meta::faces(b)
                .iter()
                .any(|f| f.embedding.as_ref().is_some_and(|e| e.vector.is_some()))
        })
        .count();
    assert_eq!(described, 20, "frames with a descriptor");
    assert_eq!(
        messages(&run, "faceveil-unknown").len(),
        1,
        "{:?}",
        run.element_messages
    );
    assert!(cli_ok(&list, &["purge-expired"]).contains("purged 1"));
    std::fs::remove_dir_all(d).unwrap();
}

/// Frames pushed in real time through the elements while the list changes on disk.
#[test]
fn hot_reload_and_a_bad_reload_keeps_the_old_list() {
    require_runtime();
    let d = scratch("reload");
    let list = obama_list(&d);
    let pipeline = common::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=I420,width=640,height=480,framerate=10/1 \
         ! veildetect ! veilembed reembed-interval=1 ! veilmatch watchlist=\"{}\" cooldown=0 \
         ! appsink name=sink sync=false",
        list.display()
    ));
    let src = common::child::<gst_app::AppSrc>(&pipeline, "src");
    let sink = common::child::<gst_app::AppSink>(&pipeline, "sink");
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let frame_of = |name: &str| {
        let run = run_pipeline(&format!(
            "{} ! videoscale ! video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1 ! appsink name=sink",
            common::photo_src(name, "video/x-raw")
        ));
        run.buffers[0].copy_deep().unwrap()
    };
    let (biden, obama) = (frame_of("biden.jpg"), frame_of("obama2.jpg"));
    let mut n = 0u64;
    // Pushes `count` frames, at most 10 a second, and waits until they came out of the elements;
    // returns on how many of them the face had a descriptor.
    let mut push = |frame: &gst::Buffer, count: usize| {
        let mut described = 0;
        for _ in 0..count {
            let mut b = frame.copy();
            b.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(100 * n));
            n += 1;
            let t = std::time::Instant::now();
            src.push_buffer(b).unwrap();
            let sample = sink
                .try_pull_sample(gst::ClockTime::from_seconds(60))
                .unwrap_or_else(|| panic!("frame {n} did not come out"));
            described += gstfaceveil::meta::faces(sample.buffer().unwrap())
                .iter()
                .any(|f| f.embedding.as_ref().is_some_and(|e| e.vector.is_some()))
                as usize;
            std::thread::sleep(std::time::Duration::from_millis(100).saturating_sub(t.elapsed()));
        }
        described
    };
    let mut seen = Vec::new();
    let drain = |seen: &mut Vec<String>| {
        while let Some(m) = bus.pop() {
            match m.view() {
                gst::MessageView::Element(e) => {
                    let s = e.structure().unwrap();
                    let label = s.get::<String>("label").unwrap_or_default();
                    seen.push(format!("{}:{label}", s.name()));
                }
                gst::MessageView::Warning(w) => {
                    seen.push(format!("warning:{} {:?}", w.error(), w.debug()))
                }
                gst::MessageView::Error(e) => panic!("{}", e.error()),
                _ => {}
            }
        }
    };
    // Biden, not yet on the list: his face described on every frame, and no match.
    assert_eq!(push(&biden, 10), 10);
    drain(&mut seen);
    assert!(
        !seen.iter().any(|s| s.starts_with("faceveil-match")),
        "{seen:?}"
    );
    // enroll biden while the pipeline plays
    cli_ok(
        &list,
        &[
            "enroll",
            "--label",
            "biden",
            photo("biden.jpg").to_str().unwrap(),
        ],
    );
    assert!(push(&biden, 30) > 0);
    drain(&mut seen);
    assert!(seen.iter().any(|s| s == "faceveil-reloaded:"), "{seen:?}");
    assert!(seen.iter().any(|s| s == "faceveil-match:biden"), "{seen:?}");
    // a corrupt file replaces the list: a warning, the old list kept
    let before = seen.len();
    std::fs::write(&list, b"FWATCHL\0 this is not a watch list any more").unwrap();
    assert!(push(&biden, 20) > 0);
    assert!(push(&obama, 30) > 0);
    drain(&mut seen);
    let after = &seen[before..];
    assert!(
        after
            .iter()
            .any(|s| s.starts_with("warning:") && s.contains("(old list kept)")),
        "{after:?}"
    );
    assert!(
        after.iter().any(|s| s == "faceveil-match:obama"),
        "{after:?} / {seen:?}"
    );
    src.end_of_stream().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn every_bad_file_is_a_distinct_clear_error() {
    let d = scratch("errors");
    let list = obama_list(&d);
    let good = std::fs::read(&list).unwrap();
    let bad = d.join("bad.fvl");
    std::fs::copy(d.join("w.fvl.key"), d.join("bad.fvl.key")).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, i32, &str)> = Vec::new();
    let mut tampered = good.clone();
    let last = tampered.len() - 30;
    tampered[last] ^= 0x40;
    cases.push(("tampered", tampered, 5, "failed authentication"));
    cases.push(("truncated", good[..good.len() - 7].to_vec(), 4, "truncated"));
    let mut future = good.clone();
    future[8] = 9;
    cases.push(("future", future, 7, "newer"));
    cases.push(("garbage", b"hello".to_vec(), 4, "not a faceveil watch list"));
    for (what, bytes, code, phrase) in &cases {
        std::fs::write(&bad, bytes).unwrap();
        let (c, text) = cli(&bad, &["verify"]);
        assert_eq!(c, *code, "{what}: {text}");
        assert!(
            text.contains(phrase) && text.contains("bad.fvl"),
            "{what}: {text}"
        );
        // the element refuses it at start, naming the file
        let run = common::run_failing(&format!(
            "videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! veilmatch watchlist=\"{}\" ! fakesink",
            bad.display()
        ));
        assert!(run.start_failed, "{what}");
        let e = run.error.unwrap_or_default();
        assert!(e.contains(phrase) && e.contains("bad.fvl"), "{what}: {e}");
    }
    // wrong key
    std::fs::write(&bad, &good).unwrap();
    std::fs::write(d.join("other.key"), "ab".repeat(32)).unwrap();
    let (c, text) = cli(
        &bad,
        &[
            "--key-file",
            d.join("other.key").to_str().unwrap(),
            "verify",
        ],
    );
    assert_eq!(c, 6, "{text}");
    assert!(text.contains("wrong key"), "{text}");
    // a list with descriptors of another embedder model only
    common::write_list(
        &bad,
        "other_model:0123456789abcdef",
        &[("alice", 1)],
        gstfaceveil::engine::watchlist::store::read_key_file(&d.join("bad.fvl.key")).unwrap(),
    );
    let (c, text) = cli(&bad, &["verify"]);
    assert_eq!(c, 7, "{text}");
    assert!(
        text.contains("other_model") && text.contains("faceveil enroll --model sface.onnx"),
        "{text}"
    );
    // failed writes leave the list as it was
    let before = std::fs::read(&list).unwrap();
    let (c, text) = cli(
        &list,
        &[
            "enroll",
            "--label",
            "group",
            photo("t1.jpg").to_str().unwrap(),
        ],
    );
    assert_eq!(c, 8, "{text}");
    assert!(
        text.contains("t1.jpg") && text.contains("6 faces"),
        "{text}"
    );
    let (c, _) = cli(
        &list,
        &[
            "--key-file",
            d.join("other.key").to_str().unwrap(),
            "enroll",
            "--label",
            "x",
            photo("biden.jpg").to_str().unwrap(),
        ],
    );
    assert_eq!(c, 6);
    let (c, _) = cli(&list, &["remove", "--label", "nobody"]);
    assert_eq!(c, 9);
    assert_eq!(
        std::fs::read(&list).unwrap(),
        before,
        "the list changed after failed writes"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn concurrent_enrolls_both_land() {
    let d = scratch("concurrent");
    let list = d.join("w.fvl");
    cli_ok(&list, &["init"]);
    let spawn = |label: &str, p: &str| {
        Command::new(env!("CARGO_BIN_EXE_faceveil"))
            .arg("--list")
            .arg(&list)
            .args(["enroll", "--label", label, photo(p).to_str().unwrap()])
            .env_remove("FACEVEIL_KEY")
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (
        spawn("biden", "biden.jpg"),
        spawn("astronaut", "astronaut.png"),
    );
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let listed = cli_ok(&list, &["list"]);
    assert!(
        listed.contains("2 identities") && listed.contains("biden") && listed.contains("astronaut"),
        "{listed}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn list_never_shows_descriptors_and_the_file_is_encrypted() {
    let d = scratch("privacy");
    let list = obama_list(&d);
    let json = cli_ok(&list, &["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["label"], "obama");
    // one descriptor of each installed model, the default's among them
    let models = v["models"].as_object().unwrap();
    assert!(models.keys().any(|m| m.starts_with("dlib_resnet:")), "{v}");
    assert!(models.values().all(|n| *n == 1), "{v}");
    assert_eq!(v["descriptors"], models.len(), "{v}");
    assert!(!json.contains('['), "no vectors in the listing: {json}");
    let bytes = std::fs::read(&list).unwrap();
    assert!(
        !bytes.windows(5).any(|w| w == b"obama"),
        "label visible in the file"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.join("w.fvl.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // rekey: the old key no longer opens it, the new one does
    let old_key = std::fs::read_to_string(d.join("w.fvl.key")).unwrap();
    cli_ok(&list, &["rekey"]);
    assert_ne!(
        std::fs::read_to_string(d.join("w.fvl.key")).unwrap(),
        old_key
    );
    cli_ok(&list, &["verify"]);
    std::fs::write(d.join("old.key"), old_key).unwrap();
    assert_eq!(
        cli(
            &list,
            &["--key-file", d.join("old.key").to_str().unwrap(), "verify"]
        )
        .0,
        6
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn enroll_from_a_video_takes_the_best_frames() {
    let d = scratch("video-enroll");
    let list = d.join("w.fvl");
    cli_ok(&list, &["init"]);
    let video = common::clip(&d, &[("obama2.jpg", 20)]);
    let out = cli_ok(
        &list,
        &["enroll", "--label", "obama", video.to_str().unwrap()],
    );
    // at most 5 of each installed model; the default's from the 5 best frames
    assert!(
        out.contains(": 5 descriptor(s) of ") && !out.contains(", 0 of"),
        "{out}"
    );
    assert!(out.ends_with("from 1 file(s)\n"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(cli_ok(&list, &["list", "--json"]).trim()).unwrap();
    let models = json["models"].as_object().unwrap();
    let dlib = models.iter().find(|(m, _)| m.starts_with("dlib_resnet:"));
    assert_eq!(dlib.map(|(_, n)| n.clone()), Some(5.into()), "{json}");
    assert_eq!(
        json["descriptors"],
        models.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        "{json}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn reload_signal_swaps_the_list_or_keeps_the_old_one() {
    require_runtime();
    let d = scratch("signal");
    let list = obama_list(&d);
    let pipeline = common::launch(&format!(
        "videotestsrc num-buffers=1000 is-live=true ! video/x-raw,width=64,height=64,framerate=10/1 \
         ! veilmatch name=fw watchlist=\"{}\" ! fakesink",
        list.display()
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let fw = pipeline.by_name("fw").unwrap();
    assert_eq!(fw.property::<u32>("identities"), 1);
    cli_ok(
        &list,
        &[
            "enroll",
            "--label",
            "biden",
            photo("biden.jpg").to_str().unwrap(),
        ],
    );
    assert!(fw.emit_by_name::<bool>("reload", &[]));
    assert_eq!(fw.property::<u32>("identities"), 2);
    std::fs::write(&list, b"not a list").unwrap();
    assert!(!fw.emit_by_name::<bool>("reload", &[]));
    assert_eq!(
        fw.property::<u32>("identities"),
        2,
        "the old list stays in use"
    );
    pipeline.set_state(gst::State::Null).unwrap();
    std::fs::remove_dir_all(d).unwrap();
}

/// `attach-snapshot`: a small JPEG of the matched face in faceveil-match, never in
/// faceveil-unknown, and nothing without the property.
#[test]
fn a_snapshot_only_for_matches_and_only_when_asked() {
    let d = scratch("snapshot");
    let list = obama_list(&d);
    let segments = [("obama2.jpg", 12), ("biden.jpg", 12)];
    let run = watch_segments(&segments, &list, "report-unknown=true attach-snapshot=true");
    let matches = messages(&run, "faceveil-match");
    assert_eq!(matches.len(), 1);
    let sample = matches[0]
        .get::<gst::Sample>("snapshot")
        .expect("a snapshot");
    assert_eq!(
        sample.caps().unwrap().structure(0).unwrap().name(),
        "image/jpeg"
    );
    // It decodes, and it is small.
    let jpeg = sample.buffer().unwrap().map_readable().unwrap().to_vec();
    let file = d.join("snap.jpg");
    std::fs::write(&file, &jpeg).unwrap();
    let decoded = common::run_pipeline(&format!(
        "filesrc location=\"{}\" ! jpegdec ! appsink name=sink",
        file.display()
    ));
    assert_eq!(decoded.buffers.len(), 1);
    assert!(jpeg.len() < 20_000, "{} bytes", jpeg.len());
    let unknown = messages(&run, "faceveil-unknown");
    assert!(!unknown.is_empty());
    assert!(unknown.iter().all(|m| !m.has_field("snapshot")));

    let plain = watch_segments(&segments[..1], &list, "");
    let matches = messages(&plain, "faceveil-match");
    assert_eq!(matches.len(), 1, "{:?}", plain.element_messages);
    assert!(!matches[0].has_field("snapshot"), "{}", matches[0]);
    std::fs::remove_dir_all(d).unwrap();
}

/// A list written in format version 4 (one embedder model for the whole list, as faceveil wrote
/// lists before they held several) still opens: the CLI shows its one model, veilmatch matches
/// under it, and an enrolment writes it as version 5 with a second model. The file is made here as
/// version 4 wrote it (plaintext: header ‖ content ‖ sha256(header ‖ content)), from obama's
/// descriptor.
#[test]
fn a_version_4_list_opens_matches_and_gains_a_model() {
    use gstfaceveil::engine::watchlist::file::Secret;
    use gstfaceveil::engine::watchlist::store::{load, read_key_file};
    use sha2::Digest;

    require_runtime();
    let d = scratch("v4");
    let now = d.join("now.fvl");
    cli_ok(&now, &["init"]);
    cli_ok(
        &now,
        &[
            "--model",
            "dlib_resnet.onnx",
            "enroll",
            "--label",
            "obama",
            photo("obama.jpg").to_str().unwrap(),
        ],
    );
    let w = load(
        &now,
        &Secret::Key(read_key_file(&d.join("now.fvl.key")).unwrap()),
    )
    .unwrap();
    let model = w.models()[0].to_string();
    assert!(model.starts_with("dlib_resnet:"), "{model}");

    /// An identity as version 4 wrote it (no role).
    #[derive(serde::Serialize)]
    struct V4Identity<'a> {
        id: &'a str,
        label: &'a str,
        note: &'a Option<String>,
        added_by: &'a str,
        added_at: i64,
        expires_at: Option<i64>,
        descriptors: &'a [gstfaceveil::engine::watchlist::Descriptor],
        suspended: bool,
    }
    #[derive(serde::Serialize)]
    struct V4<'a> {
        model_id: &'a str,
        created_at: i64,
        identities: Vec<V4Identity<'a>>,
        generation: u64,
        written_at: i64,
        default_expiry: Option<u64>,
        audit: Option<gstfaceveil::engine::audit::Head>,
    }
    let content = postcard::to_stdvec(&V4 {
        model_id: &model,
        created_at: w.created_at,
        identities: (w.identities.iter())
            .map(|i| V4Identity {
                id: &i.id,
                label: &i.label,
                note: &i.note,
                added_by: &i.added_by,
                added_at: i.added_at,
                expires_at: i.expires_at,
                descriptors: &i.descriptors,
                suspended: i.suspended,
            })
            .collect(),
        generation: 3,
        written_at: w.written_at,
        default_expiry: None,
        audit: None,
    })
    .unwrap();
    let mut file = [0u8; 80].to_vec();
    file[..8].copy_from_slice(b"FWATCHL\0");
    file[8..10].copy_from_slice(&4u16.to_le_bytes());
    file[72..80].copy_from_slice(&((content.len() + 32) as u64).to_le_bytes());
    file.extend_from_slice(&content);
    let sum = sha2::Sha256::digest(&file);
    file.extend_from_slice(&sum);
    let old = d.join("old.fvl");
    std::fs::write(&old, &file).unwrap();

    let shown = cli_ok(&old, &["--plaintext", "list"]);
    assert!(
        shown.contains(&format!("1 identity, model {model} (1 identity)")),
        "{shown}"
    );
    // Under the default embedder (SFace) the dlib-only list is a clear error naming the fix ...
    let (code, text) = common::cli(&old, &["--plaintext", "verify"]);
    assert_eq!(code, 7, "{text}");
    assert!(
        text.contains("faceveil enroll --model sface.onnx"),
        "{text}"
    );
    // ... and it is intact under its own model.
    let verified = cli_ok(
        &old,
        &["--plaintext", "--model", "dlib_resnet.onnx", "verify"],
    );
    assert!(verified.contains("generation 3"), "{verified}");

    // obama gains the default model: the list is written as version 5, covers both, and matches
    let out = cli_ok(
        &old,
        &[
            "--plaintext",
            "--model",
            "sface.onnx",
            "enroll",
            "--label",
            "obama",
            photo("obama.jpg").to_str().unwrap(),
        ],
    );
    assert!(out.contains("1 descriptor(s) of sface:"), "{out}");
    let bytes = std::fs::read(&old).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 5);
    let shown = cli_ok(&old, &["--plaintext", "list"]);
    assert!(
        shown.contains(&format!("{model} (1 identity)")) && shown.contains("sface:"),
        "{shown}"
    );
    let run = watch_segments(&[("obama2.jpg", 10)], &old, "allow-plaintext=true");
    let matched = messages(&run, "faceveil-match");
    assert!(
        !matched.is_empty(),
        "the upgraded version 4 list did not match"
    );
    assert!(
        matched
            .iter()
            .all(|s| s.get::<String>("label").unwrap() == "obama"),
        "{matched:?}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// The faces of frames `from..` tagged with `label`.
fn tagged_from(run: &common::Run, from: usize, label: &str) -> usize {
    run.buffers[from..]
        .iter()
        .filter(|b| {
            gstfaceveil::meta::faces(b)
                .iter()
                .any(|f| f.identity.as_ref().is_some_and(|i| i.label == label))
        })
        .count()
}

/// Known people (issue 23): obama listed, biden known. A clip of obama then biden: obama alerts,
/// biden never does and is never tagged, and biden (label or id) is in no message, no warning and
/// no line the element logs, at any level.
#[test]
fn a_known_person_is_never_alerted_on_and_a_listed_one_is() {
    use std::sync::{Arc, Mutex};
    let d = scratch("known");
    let list = obama_list(&d);
    cli_ok(
        &list,
        &[
            "enroll",
            "--known",
            "--label",
            "biden",
            photo("biden.jpg").to_str().unwrap(),
        ],
    );
    let shown = cli_ok(&list, &["list", "--json"]);
    let biden_id = (shown.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["label"] == "biden")
        .map(|v| v["id"].as_str().unwrap().to_string())
        .unwrap();

    // everything veilmatch logs, at every level, while the clip runs
    common::init();
    let logged = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = logged.clone();
    let hook = gst::log::add_log_function(move |cat, _, _, _, _, _, msg| {
        if cat.name() == "veilmatch" {
            let text = msg.get().map(|m| m.to_string()).unwrap_or_default();
            sink.lock().unwrap().push(text);
        }
    });
    gst::log::set_threshold_for_name("veilmatch", gst::DebugLevel::Memdump);
    let run = watch_segments(
        &[("obama2.jpg", 10), ("biden.jpg", 10)],
        &list,
        "cooldown=0",
    );
    gst::log::unset_threshold_for_name("veilmatch");
    gst::log::remove_log_function(hook);

    let matches = messages(&run, "faceveil-match");
    assert!(
        !matches.is_empty(),
        "obama did not alert: {:?}",
        run.element_messages
    );
    for m in &matches {
        assert_eq!(m.get::<String>("label").unwrap(), "obama");
        assert_eq!(segment_of(m), 0, "an alert outside obama's segment: {m}");
    }
    assert!(tagged_from(&run, 0, "obama") >= 5);
    // after the cut to biden, the obama tag lasts until the track's next fresh descriptor at most
    assert_eq!(tagged_from(&run, 12, "obama"), 0);
    assert_eq!(tagged_from(&run, 0, "biden"), 0);
    let logged = logged.lock().unwrap();
    assert!(
        logged.iter().any(|l| l.contains("not matched")),
        "the element's log was not captured: {logged:?}"
    );
    let said = (run.element_messages.iter().map(|s| s.to_string()))
        .chain(run.warnings.iter().cloned())
        .chain(run.stats.iter().map(|(_, s)| s.to_string()))
        .chain(logged.iter().cloned());
    for text in said {
        assert!(
            !text.contains("biden") && !text.contains(&biden_id),
            "the known person named: {text}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// What known people are for: at a threshold low enough (0.05) that biden (about 0.11 to obama
/// under the default SFace, 0.44 under dlib) alerts as obama, enrolling biden as a known person stops that alert; obama still alerts, and
/// the element counts the faces it held back.
#[test]
fn a_look_alike_enrolled_as_known_stops_the_false_alert() {
    let d = scratch("known-look-alike");
    let list = obama_list(&d);
    let low = "cooldown=0 threshold=0.05";
    let before = watch_segments(&[("biden.jpg", 10)], &list, low);
    let false_alerts = messages(&before, "faceveil-match");
    assert!(
        false_alerts
            .iter()
            .any(|m| m.get::<String>("label").unwrap() == "obama"),
        "at 0.05 biden should alert as obama without the known entry: {:?}",
        before.element_messages
    );
    assert!(tagged_from(&before, 0, "obama") >= 5);
    assert_eq!(before.stats("fw").get::<u64>("known-held").unwrap(), 0);

    cli_ok(
        &list,
        &[
            "enroll",
            "--known",
            "--label",
            "biden",
            photo("biden.jpg").to_str().unwrap(),
        ],
    );
    let after = watch_segments(&[("obama2.jpg", 10), ("biden.jpg", 10)], &list, low);
    let matches = messages(&after, "faceveil-match");
    assert!(!matches.is_empty(), "obama did not alert");
    for m in &matches {
        assert_eq!(m.get::<String>("label").unwrap(), "obama");
        assert_eq!(segment_of(m), 0, "biden alerted as obama: {m}");
    }
    assert!(tagged_from(&after, 0, "obama") >= 5);
    assert_eq!(tagged_from(&after, 12, "obama"), 0, "biden tagged as obama");
    let held = after.stats("fw").get::<u64>("known-held").unwrap();
    assert!(held >= 3, "{}", after.stats("fw"));
    std::fs::remove_dir_all(&d).unwrap();
}
