// SPDX-License-Identifier: MIT
//! Prints the faces `veildetect` finds in each frame of one or more files (photos or videos),
//! one JSON line per frame:
//!
//! ```text
//! cargo run --release --example detect -- tests/photos/t1.jpg clip.mp4
//! ```
//!
//! It uses only the public interface: `gstfaceveil::pipeline::run_file` runs
//! `uridecodebin ! videoconvert ! veildetect ! appsink`, and `gstfaceveil::meta::faces` reads the
//! faces back from each frame.

fn run(path: &str) -> Result<(), String> {
    let mut frame = 0u64;
    gstfaceveil::pipeline::run_file(std::path::Path::new(path), "veildetect", |sample| {
        let Some(buffer) = sample.buffer() else {
            return;
        };
        let faces: Vec<String> = gstfaceveil::meta::faces(buffer)
            .iter()
            .map(|f| {
                let (x, y, w, h) = f.rect;
                format!(
                    "{{\"x\":{x},\"y\":{y},\"width\":{w},\"height\":{h},\"score\":{:.3},\"track\":{}}}",
                    f.score, f.track_id
                )
            })
            .collect();
        let pts = buffer.pts().map_or(-1.0, |t| t.nseconds() as f64 / 1e9);
        println!(
            "{{\"file\":\"{path}\",\"frame\":{frame},\"pts\":{pts:.3},\"faces\":[{}]}}",
            faces.join(",")
        );
        frame += 1;
    })?;
    Ok(())
}

fn main() {
    gst::init().expect("GStreamer init");
    gstfaceveil::plugin_register_static().expect("register faceveil");
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: detect FILE...");
        std::process::exit(2);
    }
    for f in &files {
        if let Err(e) = run(f) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
