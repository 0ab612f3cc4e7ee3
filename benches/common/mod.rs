// SPDX-License-Identifier: MIT
//! What the benchmarks share: the command line (a raw I420 frame file, its size, iterations), the
//! frame view over it, and timing summaries.

use std::time::Instant;

use gstfaceveil::engine::frame::{FrameView, PixelFormat, YuvMatrix};
use gstfaceveil::engine::manifest::{ModelSpec, Task};

/// `FRAME.i420 WIDTH HEIGHT [ITERATIONS]` from the command line: the frame's bytes, size and
/// iterations (default 50). Exits with `usage` on bad arguments.
pub fn frame_args(usage: &str) -> (Vec<u8>, usize, usize, usize) {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 3 {
        eprintln!("usage: {usage} FRAME.i420 WIDTH HEIGHT [ITERATIONS]");
        std::process::exit(2);
    }
    let data = std::fs::read(&args[0]).expect("read frame");
    let (w, h): (usize, usize) = (
        args[1].parse().expect("width"),
        args[2].parse().expect("height"),
    );
    let iterations = args.get(3).map_or(50, |s| s.parse().expect("iterations"));
    assert_eq!(
        data.len(),
        w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        "not an I420 frame of {w}x{h}"
    );
    (data, w, h, iterations)
}

/// A BT.601 I420 frame view over tightly packed planes.
pub fn i420(data: &[u8], w: usize, h: usize) -> FrameView<'_> {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (y, rest) = data.split_at(w * h);
    let (u, v) = rest.split_at(cw * ch);
    FrameView::new(
        PixelFormat::I420,
        w,
        h,
        &[y, u, v],
        &[w, cw, cw],
        YuvMatrix::BT601,
    )
    .expect("frame")
}

/// The model a benchmark runs for `task`: the file that `BENCH_DETECTOR` or `BENCH_EMBEDDER` names
/// (e.g. `models/centerface-int8.onnx`; its manifest next to it), else the elements' default.
pub fn model(task: Task) -> ModelSpec {
    let var = match task {
        Task::Detector => "BENCH_DETECTOR",
        Task::Embedder => "BENCH_EMBEDDER",
    };
    let path = std::env::var_os(var)
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from);
    ModelSpec::resolve(path.as_deref(), task)
        .unwrap_or_else(|e| panic!("{var}: {e} (run scripts/setup.sh)"))
}

/// Intra-op threads for both sides of a comparison: `BENCH_THREADS`, default 2.
pub fn threads() -> u32 {
    std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
}

/// Runs before the timed ones.
pub const WARM_UP: usize = 3;

/// Runs `f` [`WARM_UP`] times to warm up, then `iterations` times; per-run milliseconds and total seconds.
pub fn time(iterations: usize, mut f: impl FnMut()) -> (Vec<f64>, f64) {
    for _ in 0..WARM_UP {
        f();
    }
    let mut ms = Vec::with_capacity(iterations);
    let t_all = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        f();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (ms, t_all.elapsed().as_secs_f64())
}

/// `"iterations":…,"fps":…,"mean_ms":…,"p50_ms":…,"p95_ms":…` for JSON output.
pub fn summary(ms: &mut [f64], total_s: f64) -> String {
    let n = ms.len();
    ms.sort_by(f64::total_cmp);
    format!(
        "\"iterations\":{n},\"fps\":{:.2},\"mean_ms\":{:.2},\"p50_ms\":{:.2},\"p95_ms\":{:.2}",
        n as f64 / total_s,
        ms.iter().sum::<f64>() / n as f64,
        ms[n / 2],
        ms[(n * 95 / 100).min(n - 1)]
    )
}
