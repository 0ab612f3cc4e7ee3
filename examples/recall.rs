// SPDX-License-Identifier: MIT
//! Does a detector schedule miss faces? (run per clip by bench/pipeline.sh; its table in BENCHMARKS.md).
//! Runs a clip from bench/make_clip.py twice through `decodebin ! veilbin cooldown=0`: once
//! with the FP32 detector (or `--reference-model`) on every frame and its own threshold only (the
//! reference: `track-threshold` equal to `threshold`), once with the properties under test.
//! Prints one JSON line (`RECALL_MISSES=1`: each missed reference box on stderr too):
//! - `recall`: of the faces the reference boxes on each frame, the share that the run under test
//!   also boxes there (IoU ≥ 0.5), over all frames; `worst_face_recall`: the same for the face of
//!   the clip (a truth track with ≥ 15 reference boxes) that fares worst;
//! - `extra_boxes` of the run's `boxes`: those at IoU < 0.5 with every reference box (a face
//!   carried past where it went, or taken below the reference's threshold), and `boxes_on_nobody`
//!   of those: at IoU < 0.3 with every face of the truth;
//! - `detector_runs` of each run;
//! - `match_latency_s`: for each visit of the enrolled person (truth tracks whose sprite is
//!   `--person`*), seconds from the first frame on which the face is wholly in view and boxed by
//!   the reference to the first `faceveil-match` whose box is on that face (`null`: never), for
//!   the run under test and the reference;
//! - `faces`: [truth track, boxed, reference boxes] per face.
//!
//!   recall --clip CLIP.mp4 --truth CLIP.json --watchlist LIST [--props "interval=0"]

use std::sync::{Arc, Mutex};

use clap::Parser;
use gst::prelude::*;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    clip: std::path::PathBuf,
    /// The clip's truth file (bench/make_clip.py --truth)
    #[arg(long)]
    truth: std::path::PathBuf,
    #[arg(long)]
    watchlist: std::path::PathBuf,
    /// veilbin properties of the run under test, as gst-launch spells them
    #[arg(long, default_value = "")]
    props: String,
    /// Sprite file name prefix of the enrolled person
    #[arg(long, default_value = "obama")]
    person: String,
    /// The reference's detector model (on every frame). Unset: the FP32 model
    #[arg(long)]
    reference_model: Option<std::path::PathBuf>,
}

type Box4 = [f32; 4]; // x0, y0, x1, y1

/// A face of the truth: track, sprite source, box, wholly inside the frame.
type TruthFace = (u64, String, Box4, bool);

/// Boxes per frame, by PTS, as the appsink receives them.
type Seen = Arc<Mutex<Vec<(u64, Vec<(Box4, bool)>)>>>;

fn iou(a: &Box4, b: &Box4) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &Box4| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// What one run saw: boxes per frame, the first match per frame's box, detector runs.
struct Run {
    boxes: Vec<Vec<Box4>>,
    /// Per box: the detector's model found it on that frame (not carried by the tracker).
    detected: Vec<Vec<bool>>,
    /// (frame, box) of each faceveil-match.
    matches: Vec<(usize, Box4)>,
    detector_runs: u64,
}

fn run(clip: &std::path::Path, list: &std::path::Path, props: &str) -> Result<Run, String> {
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! veilbin name=fw watchlist=\"{}\" cooldown=0 {props} \
         ! appsink name=sink sync=false",
        clip.display(),
        list.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    // Frame number by PTS: the matcher's messages carry the PTS of the frame they were decided on.
    let boxes: Seen = Arc::default();
    let b = boxes.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
                let faces = gstfaceveil::meta::faces(buf)
                    .iter()
                    .map(|f| {
                        let (x, y, w, h) = f.rect;
                        let b = [x as f32, y as f32, (x + w) as f32, (y + h) as f32];
                        (b, f.detected)
                    })
                    .collect();
                let pts = buf.pts().map_or(u64::MAX, |t| t.nseconds());
                b.lock().unwrap().push((pts, faces));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let mut matches = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => return Err(format!("{} {:?}", e.error(), e.debug())),
            gst::MessageView::Element(m) => {
                let Some(s) = m.structure().filter(|s| s.name() == "faceveil-match") else {
                    continue;
                };
                let g = |f: &str| s.get::<u32>(f).unwrap_or(0) as f32;
                let (x, y) = (g("x"), g("y"));
                let pts = s.get::<u64>("pts").unwrap_or(u64::MAX);
                matches.push((pts, [x, y, x + g("width"), y + g("height")]));
            }
            _ => {}
        }
    }
    let bin = pipeline
        .by_name("fw")
        .and_then(|b| b.downcast::<gst::Bin>().ok())
        .ok_or("no veilbin")?;
    let detector_runs = bin
        .iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "veildetect"))
        .map_or(0, |e| {
            e.property::<gst::Structure>("stats")
                .get::<u64>("inferences")
                .unwrap_or(0)
        });
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| e.to_string())?;
    let mut frames = std::mem::take(&mut *boxes.lock().unwrap());
    frames.sort_by_key(|(pts, _)| *pts);
    let frame_of = |pts: u64| frames.iter().position(|(p, _)| *p == pts);
    let matches = matches
        .into_iter()
        .filter_map(|(pts, b)| Some((frame_of(pts)?, b)))
        .collect();
    Ok(Run {
        detected: frames
            .iter()
            .map(|(_, b)| b.iter().map(|x| x.1).collect())
            .collect(),
        boxes: frames
            .into_iter()
            .map(|(_, b)| b.into_iter().map(|x| x.0).collect())
            .collect(),
        matches,
        detector_runs,
    })
}

/// Truth: per frame, its faces; and the clip's frame rate (30 when the truth does not say).
fn truth(path: &std::path::Path) -> Result<(Vec<Vec<TruthFace>>, f64), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let sprites: Vec<String> = v["sprites"]
        .as_array()
        .ok_or("no sprites")?
        .iter()
        .map(|s| s["source"].as_str().unwrap_or("").to_string())
        .collect();
    let fps = v["fps"].as_f64().unwrap_or(30.0);
    let frames = v["boxes"].as_array().ok_or("no boxes")?;
    let faces = frames
        .iter()
        .map(|f| {
            f.as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    let r = &b["box"];
                    let bx = [0, 1, 2, 3].map(|i| r[i].as_f64().unwrap_or(0.0) as f32);
                    let sprite = b["sprite"].as_u64().unwrap_or(0) as usize;
                    (
                        b["track"].as_u64().unwrap_or(0),
                        sprites.get(sprite).cloned().unwrap_or_default(),
                        bx,
                        b["inside"].as_f64().unwrap_or(0.0) >= 0.999,
                    )
                })
                .collect()
        })
        .collect();
    Ok((faces, fps))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gstfaceveil::engine::runtime::disable_telemetry();
    let a = Args::parse();
    gst::init()?;
    let (truth, fps) = truth(&a.truth)?;
    // The reference: on every frame (motion gating off), the FP32 detector (whatever the default)
    // or the one asked for.
    let model = match &a.reference_model {
        Some(m) => m.clone(),
        None => gstfaceveil::engine::manifest::ModelSpec::find(
            gstfaceveil::engine::manifest::Task::Detector.fp32_file(),
        )?,
    };
    let reference = run(
        &a.clip,
        &a.watchlist,
        &format!(
            "interval=1 track-threshold=1 idle-interval=0 detector-model=\"{}\"",
            model.display()
        ),
    )?;
    let reference_name = model.file_name().unwrap_or_default().to_string_lossy();
    let test = run(&a.clip, &a.watchlist, &a.props)?;
    let n = reference.boxes.len().min(test.boxes.len()).min(truth.len());

    // Recall over the reference's boxes, per truth track too.
    let (mut found, mut total) = (0usize, 0usize);
    let mut per_track: std::collections::BTreeMap<u64, (usize, usize)> = Default::default();
    let mut first_boxed: std::collections::HashMap<u64, usize> = Default::default();
    for (f, faces) in truth.iter().enumerate().take(n) {
        for r in &reference.boxes[f] {
            let hit = test.boxes[f].iter().any(|t| iou(r, t) >= 0.5);
            found += hit as usize;
            total += 1;
            let owner = faces
                .iter()
                .map(|(track, _, b, _)| (*track, iou(r, b)))
                .filter(|(_, o)| *o >= 0.3)
                .max_by(|x, y| x.1.total_cmp(&y.1));
            if let Some((track, _)) = owner {
                let e = per_track.entry(track).or_default();
                e.0 += hit as usize;
                e.1 += 1;
                first_boxed.entry(track).or_insert(f);
            }
            if !hit && std::env::var_os("RECALL_MISSES").is_some() {
                let (best, detected) = test.boxes[f]
                    .iter()
                    .zip(&test.detected[f])
                    .map(|(t, d)| (iou(r, t), *d))
                    .fold((0.0, false), |a, b| if b.0 > a.0 { b } else { a });
                let (track, age) = owner.map_or((0, 0), |(t, _)| (t, f - first_boxed[&t]));
                let inside = faces.iter().find(|x| x.0 == track).is_some_and(|x| x.3);
                eprintln!(
                    "frame {f}: missed {r:?} (best IoU {best:.2}, that box detected on this frame: \
                     {detected}), truth track {track}, boxed by the reference {age} frames before, \
                     wholly in view: {inside}"
                );
            }
        }
    }
    // The other way round: the run's boxes that box no face of the reference (carried past a
    // face that left, or a face the reference's threshold does not take).
    // Of those, the ones on no face of the truth at all (IoU < 0.3: the truth's boxes are not
    // clipped to the frame): boxes on nobody.
    let (mut extra, mut nobody, mut boxes) = (0usize, 0usize, 0usize);
    for ((seen, want), faces) in test.boxes.iter().zip(&reference.boxes).zip(&truth).take(n) {
        for t in seen {
            boxes += 1;
            if !want.iter().any(|r| iou(r, t) >= 0.5) {
                extra += 1;
                nobody += !faces.iter().any(|x| iou(&x.2, t) >= 0.3) as usize;
            }
        }
    }
    let worst = per_track
        .values()
        .filter(|(_, t)| *t >= 15)
        .map(|(h, t)| *h as f64 / *t as f64)
        .fold(1.0f64, f64::min);

    // The enrolled person's visits: from wholly in view and boxed by the reference to matched.
    let mut entries: Vec<(u64, usize)> = Vec::new();
    for (f, faces) in truth.iter().enumerate().take(n) {
        for (track, source, b, inside) in faces {
            if !source.starts_with(&a.person) || !inside || entries.iter().any(|e| e.0 == *track) {
                continue;
            }
            if reference.boxes[f].iter().any(|r| iou(r, b) >= 0.3) {
                entries.push((*track, f));
            }
        }
    }
    let latency = |r: &Run| -> Vec<Option<f64>> {
        entries
            .iter()
            .map(|&(track, start)| {
                r.matches
                    .iter()
                    .filter(|(f, _)| *f < n)
                    .find(|(f, mb)| {
                        truth[*f]
                            .iter()
                            .any(|(t, _, b, _)| *t == track && iou(mb, b) >= 0.3)
                    })
                    .map(|(f, _)| (*f as f64 - start as f64).max(0.0) / fps)
            })
            .collect()
    };
    let js = |v: Vec<Option<f64>>| {
        v.iter()
            .map(|x| x.map_or("null".to_string(), |s| format!("{s:.2}")))
            .collect::<Vec<_>>()
            .join(",")
    };
    let faces = per_track
        .iter()
        .map(|(t, (h, n))| format!("[{t},{h},{n}]"))
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "{{\"frames\":{n},\"reference\":\"{reference_name}\",\"reference_boxes\":{total},\"recall\":{:.4},\"worst_face_recall\":{worst:.4},\"extra_boxes\":{extra},\"boxes_on_nobody\":{nobody},\"boxes\":{boxes},\
         \"detector_runs\":{},\"reference_detector_runs\":{},\"visits\":{},\
         \"match_latency_s\":[{}],\"reference_match_latency_s\":[{}],\"faces\":[{faces}]}}",
        found as f64 / total.max(1) as f64,
        test.detector_runs,
        reference.detector_runs,
        entries.len(),
        js(latency(&test)),
        js(latency(&reference)),
    );
    Ok(())
}
