//! Detector speed on raw I420 frames (see bench/run.sh, which prepares the frames and runs the
//! Python peer on the same ones).
//!
//! usage: cargo bench --bench detector -- FRAME.i420 WIDTH HEIGHT [ITERATIONS]
//!
//! Times `Detector::detect`, the whole per-frame work of the facedetector element: sampling the I420
//! frame into the tensor, inference, decoding and NMS. Prints one JSON line.

use std::time::Instant;

use gstfacewatch::core::detector::{DetectParams, Detector};
use gstfacewatch::core::frame::{FrameView, PixelFormat, YuvMatrix};
use gstfacewatch::core::manifest::{ModelSpec, Task};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 3 {
        eprintln!("usage: detector FRAME.i420 WIDTH HEIGHT [ITERATIONS]");
        std::process::exit(2);
    }
    let data = std::fs::read(&args[0]).expect("read frame");
    let (w, h): (usize, usize) = (args[1].parse().unwrap(), args[2].parse().unwrap());
    let iterations: usize = args.get(3).map_or(50, |s| s.parse().unwrap());
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    assert_eq!(
        data.len(),
        w * h + 2 * cw * ch,
        "not an I420 frame of {w}x{h}"
    );
    let (y, rest) = data.split_at(w * h);
    let (u, v) = rest.split_at(cw * ch);
    let frame = FrameView::new(
        PixelFormat::I420,
        w,
        h,
        &[y, u, v],
        &[w, cw, cw],
        YuvMatrix::BT601,
    )
    .unwrap();

    let threads: u32 = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let spec = ModelSpec::resolve(None, "centerface.onnx", Task::Detector)
        .expect("model (run scripts/setup.sh)");
    let mut det = Detector::new(spec, threads, 640).expect("detector");
    let params = DetectParams::default();
    for _ in 0..3 {
        det.detect(&frame, &params).unwrap();
    }
    let mut ms = Vec::with_capacity(iterations);
    let mut faces = 0;
    let t_all = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        faces = det.detect(&frame, &params).unwrap().len();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let total = t_all.elapsed().as_secs_f64();
    ms.sort_by(f64::total_cmp);
    let (tw, th) = det.tensor_size(w, h);
    println!(
        "{{\"impl\":\"facewatch\",\"frame\":\"{w}x{h}\",\"tensor\":\"{tw}x{th}\",\"threads\":{threads},\
         \"iterations\":{iterations},\"faces\":{faces},\"fps\":{:.2},\"mean_ms\":{:.2},\"p50_ms\":{:.2},\"p95_ms\":{:.2}}}",
        iterations as f64 / total,
        ms.iter().sum::<f64>() / iterations as f64,
        ms[iterations / 2],
        ms[(iterations * 95 / 100).min(iterations - 1)]
    );
}
