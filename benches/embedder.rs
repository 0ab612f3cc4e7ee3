// SPDX-License-Identifier: MIT
//! Embedder speed on a raw I420 frame (bench/run_embed.sh prepares the frames and runs the Python
//! peer on the same ones).
//!
//! usage: cargo bench --bench embedder -- FRAME.i420 WIDTH HEIGHT [ITERATIONS]
//!
//! `BENCH_DETECTOR` and `BENCH_EMBEDDER` (model files, e.g. `models/dlib_resnet-int8.onnx`) run
//! other models than the default ones.
//!
//! Prints JSON lines: the embedder alone at batch 1 and 8 (real chips of the frame's faces), the
//! chip warp with its sharpness per face, then
//! the whole per-frame detect + align + embed path of `veildetect ! veilembed` when every face is
//! embedded on every frame (no reuse along tracks).

mod common;

use gstfaceveil::engine::detector::{DetectParams, Detector};
use gstfaceveil::engine::embed_step::{FaceIn, FrameEmbedder, FrameIn, Gates};
use gstfaceveil::engine::embedder::Embedder;
use gstfaceveil::engine::manifest::Task;

fn main() {
    let (data, w, h, iterations) = common::frame_args("embedder");
    let frame = common::i420(&data, w, h);
    let threads = common::threads();
    let det_spec = common::model(Task::Detector);
    let emb_spec = common::model(Task::Embedder);
    let model = emb_spec.manifest.model.name.clone();
    let mut det = Detector::new(det_spec, threads, 640).unwrap();
    let mut emb = Embedder::new(emb_spec, threads).unwrap();
    let params = DetectParams::default();
    let faces = det.detect(&frame, &params).unwrap();
    let n = faces.len();
    assert!(n > 0, "no face in the frame");
    let (tw, th) = det.tensor_size(w, h);
    println!(
        "{{\"impl\":\"faceveil\",\"step\":\"faces\",\"frame\":\"{w}x{h}\",\"tensor\":\"{tw}x{th}\",\"faces\":{n}}}"
    );

    // a) the embedder alone on real chips of this frame, batch 1 and 8
    let len = emb.chip_len();
    let mut chips = vec![0f32; 8 * len];
    for k in 0..8 {
        emb.chip_sharpness(
            &frame,
            &faces[k % n].landmarks,
            1.0,
            &mut chips[k * len..(k + 1) * len],
        )
        .unwrap();
    }
    for b in [1usize, 8] {
        let (mut ms, total) = common::time(iterations, || {
            emb.embed_chips(&chips[..b * len], b).unwrap();
        });
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        println!(
            "{{\"impl\":\"faceveil\",\"model\":\"{model}\",\"step\":\"embed\",\"batch\":{b},\"threads\":{threads},{},\"per_face_ms\":{:.3}}}",
            common::summary(&mut ms, total),
            mean / b as f64
        );
    }

    // the chip warp (straight from the I420 frame) and its sharpness, per face
    let mut chip = vec![0f32; len];
    let (mut ms, total) = common::time(iterations, || {
        for f in &faces {
            emb.chip_sharpness(&frame, &f.landmarks, 1.0, &mut chip);
        }
    });
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    println!(
        "{{\"impl\":\"faceveil\",\"step\":\"chip+sharpness\",\"faces\":{n},{},\"per_face_ms\":{:.3}}}",
        common::summary(&mut ms, total),
        mean / n as f64
    );

    // b) the whole per-frame path of the element (the same `FrameEmbedder`), every face embedded:
    // the detector runs on every frame and each track is re-embedded on every frame.
    let gates = Gates {
        min_eye_distance: 0.0,
        min_quality: 0.0,
        max_batch: 8,
        reembed_interval: 1,
    };
    let mut per_frame = FrameEmbedder::new(emb);
    let mut frame_no = 0;
    let (mut ms, total) = common::time(iterations, || {
        let faces = det.detect(&frame, &params).unwrap();
        let face_in: Vec<FaceIn> = (faces.iter().enumerate())
            .map(|(i, f)| FaceIn {
                track: i as u64 + 1,
                landmarks: &f.landmarks,
                detected: true,
                verify: false,
            })
            .collect();
        let out = (per_frame.process(
            &FrameIn {
                view: &frame,
                par: 1.0,
                number: frame_no,
            },
            &face_in,
            &gates,
            |_, _| {},
        ))
        .unwrap();
        assert!(out.iter().all(|o| o.fresh), "every face embedded");
        frame_no += 1;
    });
    println!(
        "{{\"impl\":\"faceveil\",\"step\":\"detect+embed\",\"frame\":\"{w}x{h}\",\"tensor\":\"{tw}x{th}\",\"threads\":{threads},\"faces\":{n},{}}}",
        common::summary(&mut ms, total)
    );
}
