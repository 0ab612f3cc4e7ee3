//! Embedder speed on a raw I420 frame (bench/run_embed.sh prepares the frames and runs the Python
//! peer on the same ones).
//!
//! usage: cargo bench --bench embedder -- FRAME.i420 WIDTH HEIGHT [ITERATIONS]
//!
//! Prints JSON lines: the embedder alone at batch 1 and 8 (real chips of the frame's faces), then
//! the whole per-frame detect + align + embed path of `facedetector ! faceembedder` when every face is
//! embedded on every frame (no reuse along tracks).

use std::time::Instant;

use gstfacewatch::core::detector::{DetectParams, Detector};
use gstfacewatch::core::embedder::Embedder;
use gstfacewatch::core::frame::{FrameView, PixelFormat, YuvMatrix};
use gstfacewatch::core::manifest::{ModelSpec, Task};

fn summary(ms: &mut [f64], total_s: f64) -> String {
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

fn time(iterations: usize, mut f: impl FnMut()) -> (Vec<f64>, f64) {
    for _ in 0..3 {
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

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 3 {
        eprintln!("usage: embedder FRAME.i420 WIDTH HEIGHT [ITERATIONS]");
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
    let det_spec =
        ModelSpec::resolve(None, "centerface.onnx", Task::Detector).expect("run scripts/setup.sh");
    let emb_spec =
        ModelSpec::resolve(None, "dlib_resnet.onnx", Task::Embedder).expect("run scripts/setup.sh");
    let mut det = Detector::new(det_spec, threads, 640).unwrap();
    let mut emb = Embedder::new(emb_spec, threads).unwrap();
    let params = DetectParams::default();
    let faces = det.detect(&frame, &params).unwrap();
    let n = faces.len();
    assert!(n > 0, "no face in the frame");
    let (tw, th) = det.tensor_size(w, h);
    println!(
        "{{\"impl\":\"facewatch\",\"step\":\"faces\",\"frame\":\"{w}x{h}\",\"tensor\":\"{tw}x{th}\",\"faces\":{n}}}"
    );

    // a) the embedder alone on real chips of this frame, batch 1 and 8
    let len = emb.chip_len();
    let mut chips = vec![0f32; 8 * len];
    for k in 0..8 {
        emb.chip(
            &frame,
            &faces[k % n].landmarks,
            &mut chips[k * len..(k + 1) * len],
        )
        .unwrap();
    }
    for b in [1usize, 8] {
        let (mut ms, total) = time(iterations, || {
            emb.embed_chips(&chips[..b * len], b).unwrap();
        });
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        println!(
            "{{\"impl\":\"facewatch\",\"step\":\"embed\",\"batch\":{b},\"threads\":{threads},{},\"per_face_ms\":{:.3}}}",
            summary(&mut ms, total),
            mean / b as f64
        );
    }

    // b) the whole per-frame path, every face embedded
    let (mut ms, total) = time(iterations, || {
        let faces = det.detect(&frame, &params).unwrap();
        let lms: Vec<&[[f32; 2]]> = faces.iter().map(|f| f.landmarks.as_slice()).collect();
        emb.embed(&frame, &lms, 8).unwrap();
    });
    println!(
        "{{\"impl\":\"facewatch\",\"step\":\"detect+embed\",\"frame\":\"{w}x{h}\",\"tensor\":\"{tw}x{th}\",\"threads\":{threads},\"faces\":{n},{}}}",
        summary(&mut ms, total)
    );
}
