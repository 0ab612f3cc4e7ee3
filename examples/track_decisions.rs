// SPDX-License-Identifier: MIT
//! What deciding per track does to false alarms and time-to-match (bench/track_decisions.sh; its
//! table in BENCHMARKS.md, "Decisions per track").
//!
//! `record`: runs a clip of bench/make_clip.py through `veildetect ! veilembed` (their defaults)
//! once and writes every face of every frame (track, fresh or not, grayscale, quality, the raw
//! descriptor when fresh) with the person it shows: the truth sprite whose box it overlaps most
//! (IoU ≥ 0.3), named after its photo (`obama2.jpg` → `obama`, `orl/s3/5.png` → `s3`; a photo with
//! several faces: `t1#2`).
//!
//!   track_decisions record --clip C.mp4 --truth C.json --out C.faces.json
//!
//! `replay`: feeds the recorded faces, frame by frame, to `veilmatch`'s own per-frame code
//! (`engine::match_step::FrameMatcher`, cooldown 0 so that every match is reported) with a watch
//! list and prints one JSON line: `visits` (tracks, by the person most of their faces show),
//! `false_alarms` (matches on a track to an identity that is not the person it shows: (track,
//! identity) pairs), `stranger_visits_alerted`, `genuine_visits` (tracks of a listed person),
//! `matched`, and `frames_to_match` (for each matched genuine visit, frames from the track's first
//! frame to its first match to the right identity).
//!
//!   track_decisions replay --list L.fvl [--threshold T] [--gray-threshold G] [--min-hits N] C.faces.json…
//!
//! The replay uses only the engine's public per-frame API, so the same file builds against an older
//! commit (bench/track_decisions.sh runs main's per-frame rule that way).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use gstfaceveil::engine::embedder::{model_id, similarity_for};
use gstfaceveil::engine::manifest::{ModelSpec, Task};
use gstfaceveil::engine::match_step::{DescriptorIn, FaceIn, FrameMatcher, Verdict};
use gstfaceveil::engine::matcher::{Config, Event};
use gstfaceveil::engine::watchlist::reload::{Key, Reloader, Source};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Record {
        #[arg(long)]
        clip: PathBuf,
        #[arg(long)]
        truth: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    Replay {
        #[arg(long)]
        list: PathBuf,
        /// 0: the manifest's
        #[arg(long, default_value_t = 0.0)]
        threshold: f32,
        /// 0: the manifest's
        #[arg(long, default_value_t = 0.0)]
        gray_threshold: f32,
        #[arg(long, default_value_t = 2)]
        min_hits: u32,
        #[arg(long, default_value_t = 30)]
        hit_window: u64,
        recordings: Vec<PathBuf>,
    },
}

type Box4 = [f32; 4];

fn iou(a: &Box4, b: &Box4) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &Box4| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// The person a sprite's photo shows (see the module's doc).
fn person(source: &str, several: bool, sprite: usize) -> String {
    let p = Path::new(source);
    let parent = p
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    if parent.len() > 1
        && parent.starts_with('s')
        && parent[1..].bytes().all(|b| b.is_ascii_digit())
    {
        return parent;
    }
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = stem
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .to_string();
    if several {
        format!("{name}#{sprite}")
    } else {
        name
    }
}

fn record(clip: &Path, truth: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let t: Value = serde_json::from_slice(&std::fs::read(truth)?)?;
    let sprites = t["sprites"].as_array().ok_or("truth: no sprites")?;
    let mut per_source: BTreeMap<&str, usize> = BTreeMap::new();
    for s in sprites {
        *per_source
            .entry(s["source"].as_str().unwrap_or(""))
            .or_default() += 1;
    }
    let names: Vec<String> = sprites
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let src = s["source"].as_str().unwrap_or("");
            person(src, per_source[src] > 1, k)
        })
        .collect();
    let boxes = t["boxes"].as_array().ok_or("truth: no boxes")?;
    let mut frames = Vec::new();
    gstfaceveil::pipeline::run_file(clip, "veildetect ! veilembed", |sample| {
        let Some(buf) = sample.buffer() else { return };
        let truth = boxes.get(frames.len()).and_then(|b| b.as_array());
        let faces: Vec<Value> = gstfaceveil::meta::faces(buf)
            .into_iter()
            .filter_map(|f| {
                let e = f.embedding?;
                let (x, y, w, h) = f.rect;
                let r = [x as f32, y as f32, (x + w) as f32, (y + h) as f32];
                let who = truth.and_then(|tb| {
                    tb.iter()
                        .filter_map(|b| {
                            let bx: Vec<f32> = b["box"]
                                .as_array()?
                                .iter()
                                .filter_map(|v| v.as_f64().map(|v| v as f32))
                                .collect();
                            let bx: Box4 = bx.try_into().ok()?;
                            Some((iou(&r, &bx), b["sprite"].as_u64()? as usize))
                        })
                        .filter(|(o, _)| *o >= 0.3)
                        .max_by(|a, b| a.0.total_cmp(&b.0))
                        .and_then(|(_, s)| names.get(s).cloned())
                });
                Some(json!({
                    "track": f.track_id,
                    "person": who,
                    "model": e.model_id,
                    "fresh": e.fresh,
                    "grayscale": e.grayscale,
                    "quality": e.quality,
                    "has_vector": e.vector.is_some(),
                    "vector": if e.fresh { e.vector } else { None },
                }))
            })
            .collect();
        frames.push(Value::Array(faces));
    })?;
    std::fs::write(
        out,
        serde_json::to_vec(&json!({"clip": clip, "frames": frames}))?,
    )?;
    Ok(())
}

#[derive(Default)]
struct Visit {
    first: u64,
    persons: BTreeMap<String, u32>,
    matches: Vec<(u64, String)>,
}

fn replay(
    list: &Path,
    config: Config,
    recordings: &[PathBuf],
) -> Result<Value, Box<dyn std::error::Error>> {
    let spec = ModelSpec::resolve(None, Task::Embedder)?;
    let calibrated = spec.manifest.embedder.as_ref().map_or((0.66, 0.66), |e| {
        (e.match_threshold(), e.match_threshold_gray())
    });
    let (key, _) = Key::resolve(None, list)?;
    let labels: BTreeSet<String>;
    let mut visits: BTreeMap<(usize, u64), Visit> = BTreeMap::new();
    let mut ms = 0.0;
    {
        let source = Source {
            path: list.to_path_buf(),
            key,
            model_id: model_id(&spec)?,
            similarity: similarity_for(&spec)?,
            floor: None,
        };
        let mut m = FrameMatcher::new(
            Reloader::open(source, std::time::Duration::from_secs(3600))?,
            config,
            calibrated,
        );
        labels = m
            .list()
            .index()
            .entries()
            .iter()
            .map(|e| e.label.clone())
            .collect();
        let mut clock = 0.0;
        for (clip, rec) in recordings.iter().enumerate() {
            let r: Value = serde_json::from_slice(&std::fs::read(rec)?)?;
            m.clear();
            for faces in r["frames"].as_array().ok_or("no frames")? {
                let faces = faces.as_array().ok_or("bad frame")?;
                let vectors: Vec<Option<Vec<f32>>> = faces
                    .iter()
                    .map(|f| {
                        f["vector"].as_array().map(|v| {
                            v.iter()
                                .filter_map(|x| x.as_f64().map(|x| x as f32))
                                .collect()
                        })
                    })
                    .collect();
                let input: Vec<FaceIn> = faces
                    .iter()
                    .zip(&vectors)
                    .map(|(f, v)| FaceIn {
                        track: f["track"].as_u64().unwrap_or(0),
                        descriptor: Some(DescriptorIn {
                            model_id: f["model"].as_str().unwrap_or(""),
                            vector: v.as_deref(),
                            fresh: f["fresh"].as_bool().unwrap_or(false),
                            grayscale: f["grayscale"].as_bool().unwrap_or(false),
                            quality: f["quality"].as_f64().unwrap_or(0.0) as f32,
                        }),
                    })
                    .collect();
                clock += 1.0 / 30.0;
                let t0 = std::time::Instant::now();
                let out = m.process(&input, config, Some(clock), 1_000_000_000, |_, _, _| {});
                ms += t0.elapsed().as_secs_f64() * 1e3;
                for f in faces {
                    let v = visits
                        .entry((clip, f["track"].as_u64().unwrap_or(0)))
                        .or_insert_with(|| Visit {
                            first: out.frame,
                            ..Visit::default()
                        });
                    if let Some(p) = f["person"].as_str() {
                        *v.persons.entry(p.to_string()).or_default() += 1;
                    }
                }
                match out.verdict {
                    Verdict::Matched { events, .. } => {
                        for (i, ev) in events {
                            if let Event::Match(x) = ev {
                                let track = faces[i]["track"].as_u64().unwrap_or(0);
                                if let Some(v) = visits.get_mut(&(clip, track)) {
                                    v.matches.push((out.frame, x.label.clone()));
                                }
                            }
                        }
                    }
                    Verdict::ModelMismatch(e) => return Err(e.to_string().into()),
                    Verdict::NoDescriptors { .. } => {}
                }
            }
        }
    }
    let (mut false_alarms, mut strangers_alerted, mut genuine, mut matched) = (0, 0, 0, 0);
    let mut ttm = Vec::new();
    let mut visit_count = 0;
    for v in visits.values() {
        let Some(who) = v
            .persons
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(p, _)| p.as_str())
        else {
            continue; // on nobody of the truth
        };
        visit_count += 1;
        let wrong: BTreeSet<&str> = v
            .matches
            .iter()
            .filter(|(_, l)| l != who)
            .map(|(_, l)| l.as_str())
            .collect();
        false_alarms += wrong.len();
        if labels.contains(who) {
            genuine += 1;
            if let Some((f, _)) = v.matches.iter().find(|(_, l)| l == who) {
                matched += 1;
                ttm.push(f - v.first);
            }
        } else if !wrong.is_empty() {
            strangers_alerted += 1;
        }
    }
    ttm.sort_unstable();
    let mean = if ttm.is_empty() {
        f64::NAN
    } else {
        ttm.iter().sum::<u64>() as f64 / ttm.len() as f64
    };
    Ok(json!({
        "visits": visit_count,
        "false_alarms": false_alarms,
        "stranger_visits_alerted": strangers_alerted,
        "genuine_visits": genuine,
        "matched": matched,
        "frames_to_match_mean": mean,
        "frames_to_match_median": ttm.get(ttm.len() / 2),
        "frames_to_match": ttm,
        "match_ms": ms,
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gstfaceveil::engine::runtime::disable_telemetry();
    match Args::parse().cmd {
        Cmd::Record { clip, truth, out } => {
            gst::init()?;
            gstfaceveil::plugin_register_static()?;
            record(&clip, &truth, &out)
        }
        Cmd::Replay {
            list,
            threshold,
            gray_threshold,
            min_hits,
            hit_window,
            recordings,
        } => {
            let config = Config {
                threshold,
                threshold_gray: gray_threshold,
                min_margin: 0.0,
                min_hits,
                hit_window,
                cooldown: 0.0,
                report_unknown: false,
                known_margin: gstfaceveil::engine::matcher::KNOWN_MARGIN, // not in BASE
            };
            println!("{}", replay(&list, config, &recordings)?);
            Ok(())
        }
    }
}
