// SPDX-License-Identifier: MIT
//! Writes the mean descriptor of every face in a set of photos (raw little-endian f32), through the
//! real elements: `uridecodebin ! videoconvert ! veildetect ! veilembed ! appsink`, with the
//! FP32 detector.
//! scripts/setup.sh runs it on the background set to make the file the embedder manifest's
//! `mean-file` names.
//!
//! usage: cargo run --release --example mean_descriptor -- [--embedder MODEL.onnx] OUT.f32 PHOTO...
//!
//! `--embedder`: another embedder than the elements' default (veilembed's `model`).

use gstfaceveil::engine::manifest::{ModelSpec, Task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gstfaceveil::plugin_register_static()?;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut embedder = String::new();
    if args.first().is_some_and(|a| a == "--embedder") && args.len() > 1 {
        embedder = format!(" model=\"{}\"", args[1]);
        args.drain(..2);
    }
    let [out, photos @ ..] = args.as_slice() else {
        return Err("usage: mean_descriptor [--embedder MODEL.onnx] OUT.f32 PHOTO...".into());
    };
    // The FP32 detector, whatever the default: setup.sh makes this file before the INT8 models,
    // and the mean is the FP32 embedder's on its own model's faces.
    let detector = ModelSpec::find(Task::Detector.fp32_file())?;
    let chain = format!(
        "veildetect model=\"{}\" ! veilembed{embedder} min-quality=0 min-eye-distance=0",
        detector.display()
    );
    let mut all = Vec::new();
    for p in photos {
        let d = gstfaceveil::pipeline::descriptors(std::path::Path::new(p), &chain)?;
        eprintln!("{p}: {} faces", d.len());
        all.extend(d);
    }
    let first = all.first().ok_or("no faces found")?;
    let mut mean = vec![0f64; first.len()];
    for d in &all {
        for (m, v) in mean.iter_mut().zip(d) {
            *m += *v as f64 / all.len() as f64;
        }
    }
    let bytes: Vec<u8> = mean
        .iter()
        .flat_map(|m| (*m as f32).to_le_bytes())
        .collect();
    let tmp = format!("{out}.part");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, out)?;
    eprintln!("mean of {} descriptors written to {out}", all.len());
    Ok(())
}
