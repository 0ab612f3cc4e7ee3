// SPDX-License-Identifier: MIT
//! Many live cameras in one process (bench/cameras.sh): N `veilbin`s, each fed by a live
//! 30 fps source showing the same still frame, run for a while; prints one JSON line with the
//! detector runs, skipped frames and matches of every camera, the embedder runs shared between
//! cameras, the process's CPU time and its peak resident memory.
//!
//!   cameras --cameras N --seconds S --frame FILE.i420 --width W --height H --watchlist LIST
//!           [--props "interval=1"]

use std::time::{Duration, Instant};

use clap::Parser;

mod common;
use common::{cpu_seconds, status_kb};
use gst::prelude::*;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 4)]
    cameras: usize,
    /// Seconds measured, after `warmup`.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// A raw I420 frame (bench/make_frames.sh makes them).
    #[arg(long)]
    frame: std::path::PathBuf,
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 720)]
    height: u32,
    #[arg(long)]
    watchlist: std::path::PathBuf,
    /// More veilbin properties for every camera, as gst-launch spells them.
    #[arg(long, default_value = "")]
    props: String,
}

/// (detector runs, skipped, frames) of camera `i`, and its embedder's shared runs.
fn counters(pipeline: &gst::Pipeline, i: usize) -> (u64, u64, u64, u64) {
    let bin = pipeline
        .by_name(&format!("cam{i}"))
        .and_then(|b| b.downcast::<gst::Bin>().ok())
        .expect("camera bin");
    let mut out = (0, 0, 0, 0);
    for e in bin.iterate_recurse().into_iter().flatten() {
        let factory = e
            .factory()
            .map(|f| f.name().to_string())
            .unwrap_or_default();
        let s = || e.property::<gst::Structure>("stats");
        match factory.as_str() {
            "veildetect" => {
                let s = s();
                out.0 = s.get("inferences").unwrap_or(0);
                out.1 = s.get("skipped").unwrap_or(0);
                out.2 = s.get("frames").unwrap_or(0);
            }
            "veilembed" => out.3 = s().get("shared-inferences").unwrap_or(0),
            _ => {}
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gstfaceveil::engine::runtime::disable_telemetry();
    let a = Args::parse();
    gst::init()?;
    let desc: String = (0..a.cameras)
        .map(|i| {
            format!(
                " filesrc location=\"{}\" ! rawvideoparse format=i420 width={} height={} \
                 framerate=30/1 ! imagefreeze is-live=true ! video/x-raw,framerate=30/1 \
                 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=2000000000 \
                 ! veilbin name=cam{i} \
                 camera-id=cam{i} watchlist=\"{}\" {} ! fakesink sync=false",
                a.frame.display(),
                a.width,
                a.height,
                a.watchlist.display(),
                a.props
            )
        })
        .collect();
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline.set_state(gst::State::Playing)?;
    let mut matched = std::collections::BTreeSet::new();
    let mut pump = |until: Instant| -> Result<(), String> {
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
            else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Error(e) => return Err(format!("{} {:?}", e.error(), e.debug())),
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure()
                        && s.name() == "faceveil-match"
                    {
                        matched.insert(s.get::<String>("camera-id").unwrap_or_default());
                    }
                }
                _ => {}
            }
        }
        Ok(())
    };
    pump(Instant::now() + Duration::from_secs(a.warmup))?;
    let before: Vec<_> = (0..a.cameras).map(|i| counters(&pipeline, i)).collect();
    let (t0, cpu0) = (Instant::now(), cpu_seconds());
    pump(t0 + Duration::from_secs(a.seconds))?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let after: Vec<_> = (0..a.cameras).map(|i| counters(&pipeline, i)).collect();
    let rss_kb = status_kb("VmRSS:");
    let hwm_kb = status_kb("VmHWM:");
    pipeline.set_state(gst::State::Null)?;

    let per_cam: Vec<String> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| {
            format!(
                "{{\"analysed_fps\":{:.2},\"skipped_fps\":{:.2},\"frames_fps\":{:.2}}}",
                (a.0 - b.0) as f64 / wall,
                (a.1 - b.1) as f64 / wall,
                (a.2 - b.2) as f64 / wall
            )
        })
        .collect();
    let analysed: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.0 - b.0) as f64 / wall)
        .collect();
    let shared: u64 = after.iter().map(|a| a.3).sum();
    let (min, max) = analysed
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    println!(
        "{{\"cameras\":{},\"seconds\":{wall:.1},\"analysed_fps_total\":{:.2},\
         \"analysed_fps_min\":{min:.2},\"analysed_fps_max\":{max:.2},\"cores_busy\":{:.2},\
         \"rss_mb\":{},\"peak_rss_mb\":{},\"matched_cameras\":{},\"shared_embedder_runs\":{shared},\
         \"per_camera\":[{}]}}",
        a.cameras,
        analysed.iter().sum::<f64>(),
        cpu / wall,
        rss_kb / 1024,
        hwm_kb / 1024,
        matched.len(),
        per_cam.join(",")
    );
    Ok(())
}
