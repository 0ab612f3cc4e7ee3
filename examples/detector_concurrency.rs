// SPDX-License-Identifier: MIT
//! Both cores for the detector (bench/detector_concurrency.sh): how many frames a second the
//! detector model gets through when several cameras wait, in the ways a process could share it.
//! Each way runs for `--seconds` on the same tensor (a 640×360 substream frame at the default
//! inference size is a 640×352 tensor), with `--threads` threads in all:
//!
//! - `single`: one session with all the threads, one frame per run (runs one after the other);
//! - `pool`: one single-thread session per thread, each with a caller of its own (runs side by side:
//!   what `FACEVEIL_DETECTOR_SHARING=pool` does);
//! - `batch`: one session with all the threads, the frames of `--batch` cameras in one run;
//! - `pool-batch`: both.
//!
//! Prints one JSON line per way: frames per second, milliseconds per run, CPU milliseconds per
//! frame, and the process's resident memory with that way's sessions loaded.
//!
//!   detector_concurrency [--model M.onnx] [--seconds 10] [--threads 2] [--batch 2]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::Parser;
use gstfaceveil::engine::manifest::{ModelSpec, Task};
use gstfaceveil::engine::runtime::{SharedSession, Sharing, load_shared, lock, resolve_threads};
use ort::value::TensorRef;

mod common;
use common::{cpu_seconds, status_kb};

#[derive(Parser)]
struct Args {
    /// Detector model (default: the default detector's, from the model directory)
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Threads in all (0: as veildetect's threads=0 resolves)
    #[arg(long, default_value_t = 0)]
    threads: u32,
    /// Frames per run of the batch ways
    #[arg(long, default_value_t = 2)]
    batch: usize,
    #[arg(long, default_value_t = 640)]
    width: usize,
    #[arg(long, default_value_t = 352)]
    height: usize,
}

/// Runs `callers` threads, each running batches of `batch` frames on `model` for `seconds`;
/// returns (frames, runs, wall s, CPU s).
fn measure(
    model: &SharedSession,
    input: &str,
    callers: usize,
    batch: usize,
    (w, h): (usize, usize),
    seconds: f64,
) -> (u64, u64, f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(callers + 1));
    let threads: Vec<_> = (0..callers)
        .map(|c| {
            let (model, stop, start, input) = (
                model.clone(),
                stop.clone(),
                start.clone(),
                input.to_string(),
            );
            std::thread::spawn(move || {
                // A picture-like tensor: smooth gradients, not zeros (no shortcut for the kernels).
                let tensor: Vec<f32> = (0..batch * 3 * h * w)
                    .map(|i| ((i * 7 + c * 13) % 251) as f32)
                    .collect();
                let run = || {
                    let t = TensorRef::from_array_view(([batch, 3, h, w], &tensor[..])).unwrap();
                    let mut s = lock(&model);
                    let out = s.run(vec![(input.as_str(), t)]).unwrap();
                    assert!(out.len() > 0);
                };
                run(); // warm-up: the first run plans the shapes
                start.wait();
                let mut runs = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    run();
                    runs += 1;
                }
                runs
            })
        })
        .collect();
    start.wait();
    let (t0, c0) = (Instant::now(), cpu_seconds());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let runs: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    (runs * batch as u64, runs, wall, cpu)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    gstfaceveil::engine::runtime::disable_telemetry();
    let spec = ModelSpec::resolve(args.model.as_deref(), Task::Detector)?;
    let input = spec.manifest.input.name.clone();
    let threads = resolve_threads(args.threads);
    let ways = [
        ("single", Sharing::Single, 1),
        ("pool", Sharing::Pool, 1),
        ("batch", Sharing::Single, args.batch),
        ("pool-batch", Sharing::Pool, args.batch),
    ];
    for (name, sharing, batch) in ways {
        let model = load_shared(&spec.model_path, threads as u32, sharing)?;
        let callers = model.sessions();
        let (frames, runs, wall, cpu) = measure(
            &model,
            &input,
            callers,
            batch,
            (args.width, args.height),
            args.seconds,
        );
        println!(
            "{{\"way\":\"{name}\",\"threads\":{threads},\"sessions\":{callers},\"batch\":{batch},\
             \"tensor\":\"{}x{}\",\"fps\":{:.1},\"ms_per_run\":{:.2},\"cpu_ms_per_frame\":{:.2},\
             \"rss_mb\":{},\"model\":\"{}\"}}",
            args.width,
            args.height,
            frames as f64 / wall,
            wall * 1e3 * callers as f64 / runs.max(1) as f64,
            cpu * 1e3 / frames.max(1) as f64,
            status_kb("VmRSS:") / 1024,
            spec.model_path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy(),
        );
        drop(model);
    }
    Ok(())
}
