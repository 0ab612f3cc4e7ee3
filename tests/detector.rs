// SPDX-License-Identifier: MIT
//! veildetect on real photos through real pipelines.

mod common;

use common::{photo_src, require_runtime, run_pipeline};
use gst::prelude::*;
use gstfaceveil::meta::{self, Face};

fn detect(name: &str, caps: &str, props: &str) -> Vec<Face> {
    require_runtime();
    let run = run_pipeline(&format!(
        "{} ! veildetect {props} ! appsink name=sink",
        photo_src(name, caps)
    ));
    assert_eq!(run.buffers.len(), 1, "{name}: one frame expected");
    meta::faces(&run.buffers[0])
}

fn center(f: &Face) -> (f32, f32) {
    let (x, y, w, h) = f.rect;
    (x as f32 + w as f32 / 2.0, y as f32 + h as f32 / 2.0)
}

/// A view of a sprite's RGB pixels, for the tests that call the detector directly.
fn rgb_view(s: &common::Sprite) -> gstfaceveil::engine::frame::FrameView<'_> {
    use gstfaceveil::engine::frame::{FrameView, PixelFormat, YuvMatrix};
    FrameView::new(
        PixelFormat::Rgb,
        s.w,
        s.h,
        &[&s.rgb],
        &[s.w * 3],
        YuvMatrix::BT601,
    )
    .unwrap()
}

#[test]
fn obama_one_face_with_sane_landmarks() {
    let faces = detect("obama.jpg", "video/x-raw,format=RGB", "");
    assert_eq!(faces.len(), 1, "{faces:?}");
    let f = &faces[0];
    assert!(f.score > 0.5);
    assert_eq!(f.landmarks.len(), 5);
    let (x, y, w, h) = f.rect;
    for l in &f.landmarks {
        assert!(
            l[0] > x as f32 && l[0] < (x + w) as f32 && l[1] > y as f32 && l[1] < (y + h) as f32,
            "{f:?}"
        );
    }
    let [le, re, nose, lm, rm] = [
        f.landmarks[0],
        f.landmarks[1],
        f.landmarks[2],
        f.landmarks[3],
        f.landmarks[4],
    ];
    assert!(le[0] < re[0] && lm[0] < rm[0], "left/right order: {f:?}");
    let eyes = le[1].max(re[1]);
    let mouth = lm[1].min(rm[1]);
    assert!(
        eyes < nose[1] && nose[1] < mouth,
        "eyes above nose above mouth: {f:?}"
    );
    assert!(
        nose[0] > le[0] && nose[0] < re[0],
        "nose between the eyes: {f:?}"
    );
}

#[test]
fn counts_on_other_photos() {
    assert_eq!(detect("t1.jpg", "video/x-raw,format=I420", "").len(), 6);
    assert_eq!(
        detect("astronaut.png", "video/x-raw,format=RGB", "").len(),
        1
    );
    assert_eq!(detect("obama2.jpg", "video/x-raw,format=I420", "").len(), 1);
    assert_eq!(detect("biden.jpg", "video/x-raw,format=I420", "").len(), 1);
}

#[test]
fn max_faces_and_min_face_size() {
    let all = detect("t1.jpg", "video/x-raw,format=I420", "");
    let two = detect("t1.jpg", "video/x-raw,format=I420", "max-faces=2");
    assert_eq!(two.len(), 2);
    // the two kept are the two best
    let mut scores: Vec<f32> = all.iter().map(|f| f.score).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(two[0].score, scores[0]);
    assert_eq!(two[1].score, scores[1]);
    let smallest = all.iter().map(|f| f.rect.2.min(f.rect.3)).min().unwrap();
    let big = detect(
        "t1.jpg",
        "video/x-raw,format=I420",
        &format!("min-face-size={}", smallest + 2),
    );
    assert!(
        big.len() < all.len() && !big.is_empty(),
        "{} of {}",
        big.len(),
        all.len()
    );
}

#[test]
fn no_face_in_test_pattern() {
    require_runtime();
    let run = run_pipeline(
        "videotestsrc pattern=smpte num-buffers=3 ! video/x-raw,width=640,height=480,format=I420 \
         ! veildetect ! appsink name=sink",
    );
    assert_eq!(run.buffers.len(), 3);
    for b in &run.buffers {
        assert!(meta::faces(b).is_empty());
    }
}

#[test]
fn formats_agree_within_two_pixels() {
    let base = detect("t1.jpg", "video/x-raw,format=RGB", "");
    assert_eq!(base.len(), 6);
    for fmt in ["BGRx", "I420", "NV12", "xBGR", "BGR", "RGBA"] {
        let got = detect("t1.jpg", &format!("video/x-raw,format={fmt}"), "");
        assert_eq!(got.len(), base.len(), "{fmt}");
        for b in &base {
            // match by nearest centre (indices follow scores, which may swap between formats)
            let g = got
                .iter()
                .min_by(|p, q| {
                    let d = |f: &Face| {
                        (center(f).0 - center(b).0).abs() + (center(f).1 - center(b).1).abs()
                    };
                    d(p).total_cmp(&d(q))
                })
                .unwrap();
            let (bx, by, bw, bh) = b.rect;
            let (gx, gy, gw, gh) = g.rect;
            for (u, v) in [(bx, gx), (by, gy), (bw, gw), (bh, gh)] {
                assert!(
                    u.abs_diff(v) <= 2,
                    "{fmt}: {:?} vs RGB {:?}",
                    g.rect,
                    b.rect
                );
            }
        }
    }
}

#[test]
fn scaled_frame_gives_scaled_boxes() {
    // obama.jpg cropped to its top 910x512 (16:9, the face well inside), then the same crop scaled to 1920x1080.
    let crop = "videocrop bottom=625";
    let base = detect(
        "obama.jpg",
        &format!("video/x-raw,format=I420 ! {crop}"),
        "",
    );
    let big = detect(
        "obama.jpg",
        &format!(
            "video/x-raw,format=I420 ! {crop} ! videoscale add-borders=false ! video/x-raw,width=1920,height=1080"
        ),
        "",
    );
    assert_eq!((base.len(), big.len()), (1, 1));
    let (kx, ky) = (1920.0 / 910.0, 1080.0 / 512.0);
    let (b, g) = (base[0].rect, big[0].rect);
    let expect = [
        b.0 as f32 * kx,
        b.1 as f32 * ky,
        b.2 as f32 * kx,
        b.3 as f32 * ky,
    ];
    let got = [g.0 as f32, g.1 as f32, g.2 as f32, g.3 as f32];
    for i in 0..4 {
        // within 3% of the face's size on that axis
        let tol = 0.03 * if i % 2 == 0 { expect[2] } else { expect[3] };
        assert!(
            (expect[i] - got[i]).abs() <= tol,
            "1920x1080 {got:?} vs scaled {expect:?}"
        );
    }
    for (l, m) in base[0].landmarks.iter().zip(&big[0].landmarks) {
        assert!(
            (l[0] * kx - m[0]).abs() < 0.03 * expect[2]
                && (l[1] * ky - m[1]).abs() < 0.03 * expect[3]
        );
    }
}

#[test]
fn interval_runs_model_one_frame_in_three() {
    require_runtime();
    common::init();
    let pipeline = common::launch(&format!(
        "{} ! imagefreeze num-buffers=9 ! veildetect name=det interval=3 ! appsink name=sink",
        photo_src("obama.jpg", "video/x-raw,format=I420")
    ));
    let det = pipeline.by_name("det").unwrap();
    let sink = common::child::<gst_app::AppSink>(&pipeline, "sink");
    sink.set_property("sync", false);
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut per_frame = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        per_frame.push(meta::faces(sample.buffer().unwrap()).len());
    }
    let stats = det.property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(per_frame, vec![1; 9]);
    assert_eq!(stats.get::<u64>("frames").unwrap(), 9);
    assert_eq!(stats.get::<u64>("inferences").unwrap(), 3);
    assert_eq!(stats.get::<u64>("faces").unwrap(), 9);
}

#[test]
fn decodebin_pipeline_posts_face_message() {
    require_runtime();
    let run = run_pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! veildetect post-messages=true ! fakesink",
        common::photo("obama.jpg").display()
    ));
    let msgs: Vec<_> = run
        .element_messages
        .iter()
        .filter(|s| s.name() == "veildetect")
        .collect();
    assert_eq!(msgs.len(), 1);
    let m = msgs[0];
    assert_eq!(
        m.get::<Option<gst::ClockTime>>("timestamp").unwrap(),
        Some(gst::ClockTime::ZERO)
    );
    assert!(m.has_field("stream-time") && m.has_field("running-time") && m.has_field("duration"));
    let faces = m.get::<gst::List>("faces").unwrap();
    assert_eq!(faces.len(), 1);
    let face = faces.as_slice()[0].get::<gst::Structure>().unwrap();
    assert_eq!(face.name(), "face");
    assert!(face.get::<u32>("width").unwrap() > 100);
    assert_eq!(face.get::<gst::Array>("landmarks").unwrap().len(), 10);
    assert!(face.get::<f64>("score").unwrap() > 0.5);
}

/// Intersection over union of two boxes (x, y, width, height).
fn iou(a: (u32, u32, u32, u32), b: (u32, u32, u32, u32)) -> f32 {
    let (ax0, ay0, ax1, ay1) = (
        a.0 as f32,
        a.1 as f32,
        (a.0 + a.2) as f32,
        (a.1 + a.3) as f32,
    );
    let (bx0, by0, bx1, by1) = (
        b.0 as f32,
        b.1 as f32,
        (b.0 + b.2) as f32,
        (b.1 + b.3) as f32,
    );
    let inter = (ax1.min(bx1) - ax0.max(bx0)).max(0.0) * (ay1.min(by1) - ay0.max(by0)).max(0.0);
    let union = (a.2 * a.3 + b.2 * b.3) as f32 - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// The INT8 detector that scripts/setup.sh makes (models/centerface-int8.onnx, scripts/quantize.py)
/// finds the same faces as the FP32 one on every test photo: as many, and each FP32 box has its own
/// INT8 box with IoU ≥ 0.9.
#[test]
fn int8_detector_finds_the_fp32_boxes() {
    let models = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let (fp32_model, int8) = (
        models.join("centerface.onnx"),
        models.join("centerface-int8.onnx"),
    );
    assert!(
        int8.is_file(),
        "{} missing: run scripts/setup.sh",
        int8.display()
    );
    let dir = common::photo("obama.jpg").parent().unwrap().to_path_buf();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jpg") || n.ends_with(".png"))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in &names {
        let caps = "video/x-raw,format=RGB";
        let fp32 = detect(name, caps, &format!("model=\"{}\"", fp32_model.display()));
        let q = detect(name, caps, &format!("model=\"{}\"", int8.display()));
        assert_eq!(q.len(), fp32.len(), "{name}: INT8 {q:?} vs FP32 {fp32:?}");
        // Greedy one-to-one matching, best pairs first.
        let mut pairs: Vec<(f32, usize, usize)> = (0..fp32.len())
            .flat_map(|i| (0..q.len()).map(move |j| (i, j)))
            .map(|(i, j)| (iou(fp32[i].rect, q[j].rect), i, j))
            .collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut used_f, mut used_q) = (vec![false; fp32.len()], vec![false; q.len()]);
        let mut ious = Vec::new();
        for (v, i, j) in pairs {
            if !used_f[i] && !used_q[j] {
                used_f[i] = true;
                used_q[j] = true;
                ious.push(v);
            }
        }
        eprintln!("{name}: {} faces, IoU INT8 vs FP32 {ious:.3?}", fp32.len());
        assert!(
            ious.iter().all(|v| *v >= 0.9),
            "{name}: IoU {ious:?}: INT8 {q:?} vs FP32 {fp32:?}"
        );
    }
}

/// Between full-frame runs the adaptive schedule looks at a face through a region around it
/// (`Detector::detect_regions`): there the model must find the face as the full-frame run does.
/// t1.jpg's faces stand close, so each region also holds parts of its neighbours. (Regions off
/// the full run's tensor grid gave IoU 0.87 and landmarks 6 % of the face apart.)
#[test]
fn a_region_run_finds_each_face_as_the_full_frame_run_does() {
    use gstfaceveil::engine::decode::Rect;
    use gstfaceveil::engine::detector::{DetectParams, Detector};
    use gstfaceveil::engine::manifest::{ModelSpec, Task};
    require_runtime();
    let s = common::sprite("t1.jpg", 1280, 886);
    let view = rgb_view(&s);
    let models = [Task::Detector.default_file(), Task::Detector.fp32_file()];
    for file in models {
        let spec = ModelSpec::resolve(Some(&ModelSpec::find(file).unwrap()), Task::Detector);
        let mut det = Detector::new(spec.unwrap(), 2, 0).unwrap();
        let p = DetectParams::default();
        let full = det.detect(&view, &p).unwrap();
        assert!(full.len() >= 5, "{file}: {full:?}");
        for f in &full {
            let r = f.rect;
            let m = 0.5 * r.w.max(r.h);
            let want = Rect {
                x: r.x - m,
                y: r.y - m,
                w: r.w + 2.0 * m,
                h: r.h + 2.0 * m,
            };
            let regions = det.regions(s.w, s.h, &[want]).expect("a region");
            let found = det.detect_regions(&view, &regions, &p).unwrap();
            let same = found
                .iter()
                .max_by(|a, b| a.rect.iou(&r).total_cmp(&b.rect.iou(&r)))
                .unwrap_or_else(|| panic!("{file}: the region around {r:?} found nothing"));
            assert!(
                same.rect.iou(&r) >= 0.95,
                "{file}: {:?} vs {r:?}",
                same.rect
            );
            let off = same
                .landmarks
                .iter()
                .zip(&f.landmarks)
                .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
                .fold(0.0, f32::max);
            assert!(
                off <= 0.02 * r.w,
                "{file}: landmarks {off} px apart on {r:?}"
            );
            // nothing the full run does not find: neighbours cut by the region's sides are left out
            assert!(
                found
                    .iter()
                    .all(|d| d.rect.iou(&r) >= 0.9
                        || full.iter().any(|g| g.rect.iou(&d.rect) >= 0.5)),
                "{file}: {found:?}"
            );
        }
    }
}

/// Both cores for the detector (`FACEVEIL_DETECTOR_SHARING=pool`, the default): two single-thread
/// sessions that two callers hold at once, and the faces they find are the one-session detector's.
#[test]
fn a_pool_runs_two_callers_at_once_and_finds_what_one_session_finds() {
    use gstfaceveil::engine::detector::{DetectParams, Detector};
    use gstfaceveil::engine::manifest::{ModelSpec, Task};
    use gstfaceveil::engine::runtime::{Sharing, load_shared, lock};
    require_runtime();
    let spec = || ModelSpec::resolve(None, Task::Detector).unwrap();
    let pool = load_shared(&spec().model_path, 2, Sharing::Pool).unwrap();
    assert_eq!(pool.sessions(), 2);
    let single = load_shared(&spec().model_path, 2, Sharing::Single).unwrap();
    assert_eq!(single.sessions(), 1);
    // Held by this thread, the pool still has a session for another: it locks at once.
    let held = lock(&pool);
    let other = pool.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _second = lock(&other);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(std::time::Duration::from_secs(5))
        .expect("a second caller waits although the pool has a free session");
    drop(held);

    let s = common::sprite("t1.jpg", 1280, 886);
    let view = rgb_view(&s);
    let p = DetectParams::default();
    let mut one = Detector::with_sharing(spec(), 2, 0, Sharing::Single).unwrap();
    let mut two = Detector::with_sharing(spec(), 2, 0, Sharing::Pool).unwrap();
    let (a, b) = (
        one.detect(&view, &p).unwrap(),
        two.detect(&view, &p).unwrap(),
    );
    assert!(a.len() >= 5, "{a:?}");
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(&b) {
        assert!(x.rect.iou(&y.rect) > 0.99, "{x:?} vs {y:?}");
        assert!((x.score - y.score).abs() < 1e-3, "{x:?} vs {y:?}");
    }
}

/// Faces per frame of obama.jpg frozen into 4 frames through `veildetect` with
/// `track-threshold=track`, `threshold` at `first` on the first frame and `then` after it.
fn faces_with_thresholds(track: f32, first: f32, then: f32) -> Vec<Vec<Face>> {
    common::init();
    let pipeline = common::launch(&format!(
        "{} ! imagefreeze num-buffers=4 ! veildetect name=det track-threshold={track} \
         ! appsink name=sink sync=false",
        photo_src("obama.jpg", "video/x-raw,format=I420")
    ));
    let det = pipeline.by_name("det").unwrap();
    let seen = std::sync::atomic::AtomicUsize::new(0);
    let d = det.clone();
    det.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            d.set_property("threshold", if n == 0 { first } else { then });
            gst::PadProbeReturn::Ok
        });
    let sink = common::child::<gst_app::AppSink>(&pipeline, "sink");
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut per_frame = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        per_frame.push(meta::faces(sample.buffer().unwrap()));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    per_frame
}

#[test]
fn a_tracked_face_keeps_its_box_under_threshold_but_a_new_one_needs_it() {
    require_runtime();
    let score = faces_with_thresholds(0.3, 0.5, 0.5)[0][0].score;
    assert!((0.3..0.98).contains(&score), "obama scores {score}");
    // A threshold just over the face's score from the second frame on.
    let raised = (score + 1.0) / 2.0;
    let count = |frames: &[Vec<Face>]| frames.iter().map(Vec::len).collect::<Vec<_>>();
    // Tracked from the first frame: it continues under the raised threshold, as the same track.
    let kept = faces_with_thresholds(0.3, 0.5, raised);
    assert_eq!(count(&kept), [1, 1, 1, 1]);
    assert!(
        kept.iter()
            .all(|f| f[0].track_id == kept[0][0].track_id && f[0].detected)
    );
    // Without hysteresis the raised threshold drops it.
    assert_eq!(
        count(&faces_with_thresholds(1.0, 0.5, raised)),
        [1, 0, 0, 0]
    );
    // A face that never reaches the threshold starts no track, hysteresis or not.
    assert_eq!(
        count(&faces_with_thresholds(0.3, raised, raised)),
        [0, 0, 0, 0]
    );
}

/// Motion gating (`idle-interval`, default 2 s): 5 s of a still picture without a face at 15 fps,
/// then a face that appears and stays. The still part gets a model run on its first frame and
/// one per idle interval; the face is found on the frame it appears, and on every frame after.
#[test]
fn a_still_picture_is_gated_and_a_face_that_appears_is_found() {
    require_runtime();
    let (w, h, fps) = (640usize, 360usize, 15u64);
    let (pw, ph, px, py) = (192usize, 240usize, 380usize, 100usize);
    let photo = run_pipeline(&format!(
        "{} ! appsink name=sink",
        photo_src(
            "obama.jpg",
            &format!("videoscale ! video/x-raw,format=RGB,width={pw},height={ph}")
        )
    ));
    let photo = photo.buffers[0].map_readable().unwrap().to_vec();
    // A still background with some texture (a gradient and stripes).
    let mut background = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let g = (40 + x * 120 / w + if (x / 40 + y / 30) % 2 == 0 { 30 } else { 0 }) as u8;
            background[(y * w + x) * 3..][..3].copy_from_slice(&[g, g.saturating_add(10), g]);
        }
    }
    let mut with_face = background.clone();
    for y in 0..ph {
        let row = &photo[y * pw * 3..(y + 1) * pw * 3];
        with_face[((py + y) * w + px) * 3..][..pw * 3].copy_from_slice(row);
    }
    let (still, total) = (75u64, 120u64);
    let pipeline = common::launch(&format!(
        "appsrc name=src format=time caps=\"video/x-raw,format=RGB,width={w},height={h},\
         framerate={fps}/1\" ! veildetect name=det ! appsink name=sink"
    ));
    let src = common::child::<gst_app::AppSrc>(&pipeline, "src");
    let sink = common::child::<gst_app::AppSink>(&pipeline, "sink");
    sink.set_property("sync", false);
    pipeline.set_state(gst::State::Playing).unwrap();
    let pusher = std::thread::spawn(move || {
        for n in 0..total {
            let pixels = if n < still { &background } else { &with_face };
            let mut buf = gst::Buffer::from_slice(pixels.clone());
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::SECOND * n / fps);
            b.set_duration(gst::ClockTime::SECOND / fps);
            src.push_buffer(buf).unwrap();
        }
        src.end_of_stream().unwrap();
    });
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buf = sample.buffer().unwrap();
        let ran = meta::frame_info(buf).unwrap().detected;
        frames.push((ran, meta::faces(buf).len()));
    }
    pusher.join().unwrap();
    let stats = pipeline
        .by_name("det")
        .unwrap()
        .property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(frames.len(), total as usize);
    let runs: Vec<usize> = (0..still as usize).filter(|&n| frames[n].0).collect();
    // The first frame, then one run each 2 s of stream time (frames 30 and 60).
    assert_eq!(runs, [0, 30, 60], "{stats:?}");
    let get = |k: &str| stats.get::<u64>(k).unwrap();
    assert_eq!(get("gated-still"), still - 3, "{stats:?}");
    assert_eq!(get("gated-forced"), 2, "{stats:?}");
    assert!(frames[..still as usize].iter().all(|f| f.1 == 0));
    // The face: a run on the frame it appears (motion), found there and on every frame after.
    assert!(frames[still as usize].0, "{stats:?}");
    assert!(get("motion-runs") >= 1, "{stats:?}");
    assert!(
        frames[still as usize..].iter().all(|f| f.1 == 1),
        "{:?}",
        &frames[still as usize..]
    );
    // Tracked, it keeps the schedule (interval 1: every frame).
    assert!(frames[still as usize..].iter().all(|f| f.0));
    assert_eq!(get("inferences"), 3 + total - still, "{stats:?}");
}
