// SPDX-License-Identifier: MIT
//! Detector speed on raw I420 frames (see bench/run.sh, which prepares the frames and runs the
//! Python peer on the same ones).
//!
//! usage: cargo bench --bench detector -- FRAME.i420 WIDTH HEIGHT [ITERATIONS]
//!
//! `BENCH_DETECTOR=models/centerface-int8.onnx` runs another model than the default one.
//!
//! Times `Detector::detect`, the whole per-frame work of the veildetect element: sampling the I420
//! frame into the tensor, inference, decoding and NMS. Prints one JSON line.

mod common;

use gstfaceveil::engine::detector::{DetectParams, Detector};
use gstfaceveil::engine::manifest::Task;

fn main() {
    let (data, w, h, iterations) = common::frame_args("detector");
    let frame = common::i420(&data, w, h);
    let threads = common::threads();
    let spec = common::model(Task::Detector);
    let model = spec.manifest.model.name.clone();
    let mut det = Detector::new(spec, threads, 640).expect("detector");
    let params = DetectParams::default();
    let mut faces = 0;
    let (mut ms, total) = common::time(iterations, || {
        faces = det.detect(&frame, &params).unwrap().len();
    });
    let (tw, th) = det.tensor_size(w, h);
    // Per stage, over every run including the warm-up ones.
    let t = det.times();
    let runs = (iterations + common::WARM_UP) as f64 * 1e6;
    println!(
        "{{\"impl\":\"faceveil\",\"model\":\"{model}\",\"frame\":\"{w}x{h}\",\"tensor\":\"{tw}x{th}\",\"threads\":{threads},\"faces\":{faces},{},\"tensor_ms\":{:.2},\"model_ms\":{:.2},\"decode_ms\":{:.2}}}",
        common::summary(&mut ms, total),
        t.tensor_ns as f64 / runs,
        t.model_ns as f64 / runs,
        t.decode_ns as f64 / runs,
    );
}
