// SPDX-License-Identifier: MIT
//! Where the time of a frame goes (bench/pipeline.sh): runs a clip through
//! `decodebin ! veilbin <props> ! fakesink` to its end and prints one JSON line with the
//! per-frame milliseconds of each stage, read from the elements' own `stats`, beside the wall and
//! CPU time of the run (timed from PLAYING after the pipeline prerolled, i.e. with the models
//! loaded, as the Python peer times itself) and the peak resident memory. A run with only the
//! decoder first gives the decoding time (`--decode`).
//!
//!   stages --clip CLIP.mp4 --watchlist LIST [--props "interval=3"] [--decode]

use std::time::Instant;

use clap::Parser;

mod common;
use common::{cpu_seconds, status_kb};
use gst::prelude::*;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    clip: std::path::PathBuf,
    #[arg(long)]
    watchlist: std::path::PathBuf,
    /// More veilbin properties, as gst-launch spells them
    #[arg(long, default_value = "")]
    props: String,
    /// Also time the decoder alone
    #[arg(long)]
    decode: bool,
}

/// Runs `desc` to EOS, timed from PLAYING after the preroll; returns (wall s, CPU s, the pipeline
/// at EOS).
fn run(desc: &str) -> Result<(f64, f64, gst::Pipeline), Box<dyn std::error::Error>> {
    let pipeline = gst::parse::launch(desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline.set_state(gst::State::Paused)?;
    let (res, _, _) = pipeline.state(gst::ClockTime::NONE);
    res?;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    pipeline.set_state(gst::State::Playing)?;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                return Err(format!("{} {:?}", e.error(), e.debug()).into());
            }
            _ => {}
        }
    }
    Ok((t0.elapsed().as_secs_f64(), cpu_seconds() - c0, pipeline))
}

/// The `stats` of the bin's child made by `factory`.
fn stats(bin: &gst::Bin, factory: &str) -> gst::Structure {
    bin.iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == factory))
        .map(|e| e.property::<gst::Structure>("stats"))
        .unwrap_or_else(|| gst::Structure::new_empty("none"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gstfaceveil::engine::runtime::disable_telemetry();
    let a = Args::parse();
    gst::init()?;
    let src = format!("filesrc location=\"{}\" ! decodebin", a.clip.display());
    let (mut dec_wall, mut dec_cpu) = (0.0, 0.0);
    if a.decode {
        let (w, c, p) = run(&format!("{src} ! fakesink sync=false"))?;
        p.set_state(gst::State::Null)?;
        (dec_wall, dec_cpu) = (w, c);
    }
    let (wall, cpu, p) = run(&format!(
        "{src} ! veilbin name=fw watchlist=\"{}\" {} ! fakesink sync=false",
        a.watchlist.display(),
        a.props
    ))?;
    let bin = p
        .by_name("fw")
        .and_then(|b| b.downcast::<gst::Bin>().ok())
        .ok_or("no veilbin")?;
    let (det, emb, watch) = (
        stats(&bin, "veildetect"),
        stats(&bin, "veilembed"),
        stats(&bin, "veilmatch"),
    );
    p.set_state(gst::State::Null)?;
    let frames = det.get::<u64>("frames").unwrap_or(0).max(1) as f64;
    let ms = |s: &gst::Structure, f: &str| s.get::<u64>(f).unwrap_or(0) as f64 / 1000.0 / frames;
    let n = |s: &gst::Structure, f: &str| s.get::<u64>(f).unwrap_or(0);
    println!(
        "{{\"frames\":{frames},\"wall_s\":{wall:.2},\"fps\":{:.2},\"cpu_s\":{cpu:.2},\
         \"cores_busy\":{:.2},\"cpu_ms_per_frame\":{:.2},\"decode_only_wall_s\":{dec_wall:.2},\
         \"decode_cpu_ms_per_frame\":{:.2},\"peak_rss_mb\":{},\"detector_runs\":{},\"faces\":{},\
         \"descriptors\":{},\"embedder_runs\":{},\"searches\":{},\
         \"ms_per_frame\":{{\"tensor\":{:.3},\"detector_wait\":{:.3},\"detector_model\":{:.3},\
         \"decode_nms\":{:.3},\"tracking\":{:.3},\"chips_quality\":{:.3},\"embedder\":{:.3},\
         \"match\":{:.3}}}}}",
        frames / wall,
        cpu / wall,
        cpu * 1000.0 / frames,
        dec_cpu * 1000.0 / frames,
        status_kb("VmHWM:") / 1024,
        n(&det, "inferences"),
        n(&det, "faces"),
        n(&emb, "descriptors"),
        n(&emb, "inferences"),
        n(&watch, "searches"),
        ms(&det, "tensor-time-us"),
        ms(&det, "wait-time-us"),
        ms(&det, "model-time-us"),
        ms(&det, "decode-time-us"),
        ms(&det, "track-time-us"),
        ms(&emb, "chip-time-us"),
        ms(&emb, "inference-time-us"),
        ms(&watch, "match-time-us"),
    );
    Ok(())
}
