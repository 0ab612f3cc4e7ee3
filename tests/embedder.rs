// SPDX-License-Identifier: MIT
//! veilembed and the tracker on real photos through real pipelines, and the converted model against
//! face-api's own descriptors.

mod common;

use common::{descriptor, embed_photo, embedder_spec, require_runtime};
use gst::prelude::*;
use gstfaceveil::engine::cosine::Similarity;
use gstfaceveil::engine::embedder::{Embedder, similarity_for};
use gstfaceveil::meta;
use sha2::Digest;

/// Regenerates a chip of tests/data/faceapi_reference.json from its formula (HWC RGB bytes).
fn chip_bytes(c: &serde_json::Value) -> Vec<u8> {
    let p = &c["params"];
    let num = |v: &serde_json::Value| v.as_i64().unwrap();
    let arr = |k: &str| -> Vec<i64> { p[k].as_array().unwrap().iter().map(num).collect() };
    let mut out = vec![0u8; 150 * 150 * 3];
    let mut s: u64 = 0;
    if c["kind"] == "lcg" {
        s = p["seed"].as_u64().unwrap();
    }
    for y in 0..150i64 {
        for x in 0..150i64 {
            for ch in 0..3i64 {
                let i = ((y * 150 + x) * 3 + ch) as usize;
                out[i] = match c["kind"].as_str().unwrap() {
                    "linear" => {
                        ((num(&p["a"]) * x + num(&p["b"]) * y + num(&p["e"]) * ch + num(&p["d"]))
                            % 256) as u8
                    }
                    "triangle" => {
                        let (fx, fy, ph, per) = (arr("fx"), arr("fy"), arr("phase"), arr("period"));
                        let c = ch as usize;
                        let half = per[c] / 2;
                        let t = (fx[c] * x + fy[c] * y + ph[c]) % per[c];
                        ((t - half).abs() * 255 / half) as u8
                    }
                    "checker" => {
                        let cell = num(&p["cell"]);
                        let key = if (x / cell + y / cell) % 2 == 0 {
                            "light"
                        } else {
                            "dark"
                        };
                        arr(key)[ch as usize] as u8
                    }
                    "lcg" => {
                        s = (p["mul"].as_u64().unwrap() * s + p["add"].as_u64().unwrap())
                            % (1 << 32);
                        (s >> 24) as u8
                    }
                    k => panic!("unknown chip kind {k}"),
                };
            }
        }
    }
    out
}

#[test]
fn converted_model_matches_faceapi() {
    require_runtime();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/faceapi_reference.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // face-api's descriptors are dlib's: the dlib model, whatever the default embedder.
    let dlib = gstfaceveil::engine::manifest::ModelSpec::find("dlib_resnet.onnx").unwrap();
    let dlib = gstfaceveil::engine::manifest::ModelSpec::resolve(
        Some(&dlib),
        gstfaceveil::engine::manifest::Task::Embedder,
    )
    .unwrap();
    let mut emb = Embedder::new(dlib, 2).unwrap();
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for c in reference["chips"].as_array().unwrap() {
        let bytes = chip_bytes(c);
        let sha: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            sha,
            c["sha256"].as_str().unwrap(),
            "chip {} regenerated differently",
            c["name"]
        );
        // HWC u8 → NCHW f32, RGB 0..255 (the manifest's input)
        let mut chw = vec![0f32; bytes.len()];
        for i in 0..150 * 150 {
            for ch in 0..3 {
                chw[ch * 150 * 150 + i] = bytes[i * 3 + ch] as f32;
            }
        }
        let expect: Vec<f32> = c["descriptor"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let alone = emb.embed_chips(&chw, 1).unwrap().remove(0);
        let diff = alone
            .iter()
            .zip(&expect)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            diff <= 1e-4,
            "chip {}: max abs difference {diff}",
            c["name"]
        );
        batch.extend(chw);
        want.push(expect);
    }
    let all = emb.embed_chips(&batch, want.len()).unwrap();
    for (got, expect) in all.iter().zip(&want) {
        let diff = got
            .iter()
            .zip(expect)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff <= 1e-4, "batched: max abs difference {diff}");
    }
}

fn threshold_and_similarity() -> (f32, Similarity) {
    let spec = embedder_spec();
    let t = spec
        .manifest
        .embedder
        .as_ref()
        .unwrap()
        .threshold
        .expect("calibrated threshold in the manifest");
    (t, similarity_for(&spec).unwrap())
}

#[test]
fn same_person_above_threshold_others_below() {
    let (t, sim) = threshold_and_similarity();
    let caps = "video/x-raw,format=I420";
    let obama: Vec<Vec<f32>> = ["obama.jpg", "obama2.jpg", "obama3.jpg"]
        .iter()
        .map(|p| descriptor(p, caps))
        .collect();
    for i in 0..3 {
        for j in i + 1..3 {
            let s = sim.score(&obama[i], &obama[j]);
            assert!(s > t, "obama {i} vs {j}: {s} <= threshold {t}");
        }
    }
    for other in ["biden.jpg", "astronaut.png"] {
        let d = descriptor(other, caps);
        for (i, o) in obama.iter().enumerate() {
            let s = sim.score(&d, o);
            assert!(s < t, "{other} vs obama {i}: {s} >= threshold {t}");
        }
    }
}

/// Descriptors of obama, obama2, obama3 and biden through `veildetect ! veilembed model=<model>`.
fn four_descriptors(model: &std::path::Path, id_prefix: &str) -> Vec<Vec<f32>> {
    let props = format!("model=\"{}\"", model.display());
    ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]
        .iter()
        .map(|p| {
            let faces = embed_photo(p, "video/x-raw,format=I420", &props);
            let e = faces[0].embedding.as_ref().expect("embedded");
            assert!(e.model_id.starts_with(id_prefix), "{}", e.model_id);
            e.vector
                .clone()
                .unwrap_or_else(|| panic!("{p}: no descriptor"))
        })
        .collect()
}

/// The lowest same-person score (obama's three photos) minus the highest obama/biden score.
fn obama_margin(d: &[Vec<f32>], sim: &Similarity) -> f32 {
    let same = [(0, 1), (0, 2), (1, 2)].map(|(a, b)| sim.score(&d[a], &d[b]));
    let other = [0, 1, 2].map(|a| sim.score(&d[a], &d[3]));
    same.iter().cloned().fold(f32::MAX, f32::min) - other.iter().cloned().fold(f32::MIN, f32::max)
}

/// SFace (models/sface.onnx, the second embedder) through the real elements: 112x112 chips on the
/// ArcFace template, from its manifest. Obama's photos score far above Obama against Biden, and
/// a wrong template (the chip turned upside down) loses that margin,
/// so the alignment is what makes it.
#[test]
fn sface_through_the_elements_tells_obama_from_biden() {
    require_runtime();
    let model = gstfaceveil::engine::manifest::ModelSpec::find("sface.onnx")
        .expect("models/sface.onnx (run scripts/setup.sh)");
    let spec = gstfaceveil::engine::manifest::ModelSpec::load(&model).unwrap();
    let e = spec.manifest.embedder.as_ref().unwrap();
    assert_eq!((e.chip_size, e.dimension), (112, 128));
    let sim = similarity_for(&spec).unwrap();
    let d = four_descriptors(&model, "sface:");
    assert!(d.iter().all(|v| v.len() == 128));
    let margin = obama_margin(&d, &sim);
    assert!(margin > SFACE_MARGIN, "margin {margin}");

    // Negative control: the same model and photos with the template turned upside down.
    let dir = common::scratch("sface-wrong-template");
    std::os::unix::fs::symlink(&model, dir.join("sface.onnx")).unwrap();
    let text = std::fs::read_to_string(&spec.manifest_path).unwrap();
    let start = text.find("template = [").expect("template in the manifest");
    let end = start + text[start..].find("\n]").expect("template's end") + 2;
    // Turned by 180° about the chip's centre (pixel centres 0..=111): still a similarity.
    let side = (e.chip_size - 1) as f32;
    let turned: Vec<String> = (e.template.iter())
        .map(|p| format!("[{}, {}]", side - p[0], side - p[1]))
        .collect();
    let turned = format!(
        "{}template = [{}]{}",
        &text[..start],
        turned.join(", "),
        &text[end..]
    );
    std::fs::write(dir.join("sface.toml"), turned).unwrap();
    let wrong = four_descriptors(&dir.join("sface.onnx"), "sface:");
    let wrong_margin = obama_margin(&wrong, &sim);
    assert!(
        wrong_margin < margin - SFACE_MARGIN / 2.0,
        "upside-down chips: margin {wrong_margin}, aligned {margin}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The least the aligned SFace margin must be: measured 0.42 aligned, 0.02 with the chips upside
/// down.
const SFACE_MARGIN: f32 = 0.3;

#[test]
fn formats_give_the_same_descriptor() {
    let base = descriptor("obama.jpg", "video/x-raw,format=RGB");
    let cos = Similarity::cosine();
    for fmt in ["BGRx", "I420", "NV12"] {
        let d = descriptor("obama.jpg", &format!("video/x-raw,format={fmt}"));
        let s = cos.score(&base, &d);
        assert!(s >= 0.99, "{fmt}: cosine {s}");
    }
}

#[test]
fn batched_equals_one_at_a_time() {
    let caps = "video/x-raw,format=I420";
    let batched = embed_photo("t1.jpg", caps, "max-batch=8 min-quality=0");
    let single = embed_photo("t1.jpg", caps, "max-batch=1 min-quality=0");
    assert_eq!(batched.len(), 6);
    assert_eq!(single.len(), 6);
    for (b, s) in batched.iter().zip(&single) {
        let (vb, vs) = (
            b.embedding.as_ref().unwrap().vector.as_ref().unwrap(),
            s.embedding.as_ref().unwrap().vector.as_ref().unwrap(),
        );
        let diff = vb
            .iter()
            .zip(vs)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff <= 1e-4, "face {}: {diff}", b.index);
    }
}

#[test]
fn descriptor_metadata_is_complete() {
    let faces = embed_photo("obama.jpg", "video/x-raw,format=I420", "");
    let e = faces[0].embedding.as_ref().unwrap();
    assert_eq!(e.vector.as_ref().unwrap().len(), 128);
    assert!(e.fresh);
    assert!(e.model_id.starts_with("sface:") && e.model_id.len() == "sface:".len() + 16);
    assert!(e.quality > 0.2 && e.quality <= 1.0, "{}", e.quality);
}

#[test]
fn quality_gate_withholds_descriptors() {
    let faces = embed_photo("obama.jpg", "video/x-raw,format=I420", "min-quality=1.0");
    let e = faces[0].embedding.as_ref().unwrap();
    assert!(e.vector.is_none() && e.quality < 1.0);
    let faces = embed_photo(
        "obama.jpg",
        "video/x-raw,format=I420",
        "min-eye-distance=10000",
    );
    assert!(faces[0].embedding.as_ref().unwrap().vector.is_none());
}

/// A face of a frame: its track id, and its box's left and top edges.
type TrackBox = (u64, u32, u32);

/// Pushes `frames` 640x480 RGB frames (`common::moving_frames`) through
/// `veildetect ! veilembed <props>`. Returns per frame the (track-id, box x, box y) of each face,
/// and the embedder's stats.
fn moving_clip(
    sprites: &[common::Sprite],
    frames: usize,
    pos: impl Fn(usize, usize) -> (usize, usize),
    props: &str,
) -> (Vec<Vec<TrackBox>>, gst::Structure) {
    moving_clip_with(sprites, frames, pos, "", props)
}

/// As `moving_clip`, with properties for the detector too.
fn moving_clip_with(
    sprites: &[common::Sprite],
    frames: usize,
    pos: impl Fn(usize, usize) -> (usize, usize),
    detector_props: &str,
    props: &str,
) -> (Vec<Vec<TrackBox>>, gst::Structure) {
    require_runtime();
    let frames = common::moving_frames(sprites, frames, pos);
    let (buffers, pipeline) = common::push_frames(
        &format!("veildetect {detector_props} ! veilembed name=emb {props}"),
        frames,
    );
    let out = buffers
        .iter()
        .map(|b| {
            meta::faces(b)
                .iter()
                .map(|f| (f.track_id, f.rect.0, f.rect.1))
                .collect()
        })
        .collect();
    let stats = pipeline
        .by_name("emb")
        .unwrap()
        .property::<gst::Structure>("stats");
    pipeline.set_state(gst::State::Null).unwrap();
    (out, stats)
}

#[test]
fn one_face_moving_keeps_its_track_and_is_embedded_once() {
    let face = common::sprite("obama.jpg", 182, 227);
    let (frames, stats) = moving_clip(&[face], 40, |n, _| (20 + n * 10, 120), "reembed-interval=0");
    assert_eq!(frames.len(), 40);
    assert!(frames.iter().all(|f| f.len() == 1), "{frames:?}");
    let id = frames[0][0].0;
    assert!(frames.iter().all(|f| f[0].0 == id), "{frames:?}");
    // it did move
    assert!(frames[39][0].1 > frames[0][0].1 + 300);
    assert_eq!(stats.get::<u64>("descriptors").unwrap(), 1, "{stats}");
    assert_eq!(stats.get::<u64>("reused").unwrap(), 39, "{stats}");
}

#[test]
fn two_faces_keep_two_tracks() {
    let a = common::sprite("obama.jpg", 146, 182);
    let b = common::sprite("biden.jpg", 130, 295);
    let (frames, stats) = moving_clip(
        &[a, b],
        30,
        |n, k| {
            if k == 0 {
                (20 + n * 8, 10)
            } else {
                (500 - n * 8, 180)
            }
        },
        "reembed-interval=0",
    );
    assert!(frames.iter().all(|f| f.len() == 2), "{frames:?}");
    let ids: std::collections::BTreeSet<u64> =
        frames.iter().flatten().map(|(id, _, _)| *id).collect();
    assert_eq!(ids.len(), 2, "{frames:?}");
    // Each id stays on its face: obama's box is always the upper one (he walks along y = 10,
    // biden along y = 180), and the upper box moves right, the lower one left.
    let upper_lower = |f: &Vec<TrackBox>| {
        let (a, b) = (f[0], f[1]);
        if a.2 < b.2 { (a, b) } else { (b, a) }
    };
    let (obama, biden) = upper_lower(&frames[0]);
    for (n, f) in frames.iter().enumerate() {
        let (upper, lower) = upper_lower(f);
        assert_eq!(
            (upper.0, lower.0),
            (obama.0, biden.0),
            "frame {n}: the ids swapped faces: {frames:?}"
        );
    }
    let (obama_last, biden_last) = upper_lower(&frames[29]);
    assert!(
        obama_last.1 > obama.1 + 150 && biden_last.1 + 150 < biden.1,
        "{frames:?}"
    );
    assert_eq!(stats.get::<u64>("descriptors").unwrap(), 2, "{stats}");
}

#[test]
fn reembed_interval_refreshes() {
    let face = common::sprite("obama.jpg", 182, 227);
    let (_, stats) = moving_clip(&[face], 30, |_, _| (200, 120), "reembed-interval=10");
    // warm-up on frames 0, 1, 2, then every 10 frames: 12, 22
    assert_eq!(stats.get::<u64>("descriptors").unwrap(), 5, "{stats}");
}

#[test]
fn a_steady_track_measures_its_sharpness_every_few_frames_not_every_frame() {
    let face = common::sprite("obama.jpg", 182, 227);
    // Detected on every one of 21 frames, one descriptor: chips on frame 0 (new) and then every
    // SHARPNESS_EVERY (5) frames, 5, 10, 15 and 20, not on each of the 21.
    let (_, stats) = moving_clip(&[face], 21, |n, _| (200 + n, 120), "reembed-interval=0");
    assert_eq!(stats.get::<u64>("descriptors").unwrap(), 1, "{stats}");
    assert_eq!(stats.get::<u64>("chips").unwrap(), 5, "{stats}");
    // with a refresh every 3 frames, the chip of each refresh also measures.
    let face = common::sprite("obama.jpg", 182, 227);
    let (_, stats) = moving_clip(&[face], 21, |n, _| (200 + n, 120), "reembed-interval=3");
    let (d, c) = (
        stats.get::<u64>("descriptors").unwrap(),
        stats.get::<u64>("chips").unwrap(),
    );
    assert!(d >= 7 && c == d, "{stats}");
}

#[test]
fn descriptors_only_on_frames_the_detector_ran_on() {
    let face = common::sprite("obama.jpg", 182, 227);
    // veildetect interval=3 runs on frames 0, 3, 6, …; with reembed-interval=1 every one of those
    // (and only those) gets a descriptor: 10 of 30 frames.
    let (frames, stats) = moving_clip_with(
        &[face],
        30,
        |n, _| (20 + n * 4, 120),
        "interval=3",
        "reembed-interval=1",
    );
    assert!(frames.iter().all(|f| f.len() == 1));
    assert_eq!(stats.get::<u64>("descriptors").unwrap(), 10, "{stats}");
}

#[test]
fn without_detector_metadata_passes_through_with_one_warning() {
    require_runtime();
    let run = common::run_pipeline(
        "videotestsrc num-buffers=5 ! video/x-raw,format=I420,width=64,height=64 ! veilembed ! appsink name=sink",
    );
    assert_eq!(run.buffers.len(), 5);
    assert!(run.buffers.iter().all(|b| meta::faces(b).is_empty()));
    // One warning for the five frames, saying what to do.
    assert_eq!(run.warnings.len(), 1, "{:?}", run.warnings);
    assert!(
        run.warnings[0].contains("put veildetect before veilembed"),
        "{:?}",
        run.warnings
    );
}

/// An anamorphic frame (pixels twice as tall as wide, PAR 1/2, as some SD and DVB sources send) is
/// aligned in square-pixel geometry: it gives the descriptor of the same picture in square pixels.
#[test]
fn non_square_pixels_are_aligned_in_square_geometry() {
    let (threshold, sim) = threshold_and_similarity();
    let reference = sim.prepare(&common::descriptor("obama.jpg", "video/x-raw,format=RGBx"));
    let stretched = "videoscale ! video/x-raw,width=1252,height=1200,pixel-aspect-ratio=1/2";
    let score = |caps: &str| {
        let faces = common::embed_photo("obama2.jpg", caps, "min-quality=0 min-eye-distance=0");
        assert_eq!(faces.len(), 1, "{caps}");
        let v = faces[0]
            .embedding
            .as_ref()
            .unwrap()
            .vector
            .as_ref()
            .unwrap();
        gstfaceveil::engine::cosine::dot(&reference, &sim.prepare(v))
    };
    let square = score("video/x-raw,format=RGBx");
    let corrected = score(&format!(
        "{stretched} ! videoconvert ! video/x-raw,format=RGBx"
    ));
    // The same pixels, with the caps claiming square pixels: the face is stretched 2x.
    let ignored = score(&format!(
        "{stretched} ! capssetter caps=video/x-raw,pixel-aspect-ratio=1/1 ! videoconvert ! video/x-raw,format=RGBx"
    ));
    eprintln!("square {square:.3} corrected {corrected:.3} ignored {ignored:.3}");
    assert!(
        corrected >= threshold,
        "PAR 1/2 aligned: {corrected:.3} < {threshold}"
    );
    // (the detector still sees the stretched pixels: its landmarks are a little less exact)
    assert!(
        (corrected - square).abs() < 0.08,
        "{corrected:.3} vs {square:.3}"
    );
    assert!(
        ignored < corrected - 0.1,
        "stretched without PAR: {ignored:.3}"
    );
}
