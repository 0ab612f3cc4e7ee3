// SPDX-License-Identifier: MIT
//! Detector speed on raw I420 frames (see bench/run.sh, which prepares the frames and runs the
//! Python peer on the same ones).
//!
//! usage: cargo bench --bench detector -- FRAME.i420 WIDTH HEIGHT [ITERATIONS]
//!
//! Times `Detector::detect`, the whole per-frame work of the facedetector element: sampling the I420
//! frame into the tensor, inference, decoding and NMS. Prints one JSON line.

mod common;

use gstfacewatch::core::detector::{DetectParams, Detector};
use gstfacewatch::core::manifest::{ModelSpec, Task};

fn main() {
    let (data, w, h, iterations) = common::frame_args("detector");
    let frame = common::i420(&data, w, h);
    let threads = common::threads();
    let spec = ModelSpec::resolve(None, Task::Detector).expect("model (run scripts/setup.sh)");
    let mut det = Detector::new(spec, threads, 640).expect("detector");
    let params = DetectParams::default();
    let mut faces = 0;
    let (mut ms, total) = common::time(iterations, || {
        faces = det.detect(&frame, &params).unwrap().len();
    });
    let (tw, th) = det.tensor_size(w, h);
    println!(
        "{{\"impl\":\"facewatch\",\"frame\":\"{w}x{h}\",\"tensor\":\"{tw}x{th}\",\"threads\":{threads},\"faces\":{faces},{}}}",
        common::summary(&mut ms, total)
    );
}
