//! Prints the faces `facedetector` finds in each frame of one or more files (photos or videos),
//! one JSON line per frame:
//!
//! ```text
//! cargo run --release --example detect -- tests/photos/t1.jpg clip.mp4
//! ```
//!
//! It uses only the public element interface: a pipeline `uridecodebin ! videoconvert !
//! facedetector ! appsink`, and the face metadata read back with `gstfacewatch::meta::faces`.

use gst::prelude::*;

fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let uri = gst::glib::filename_to_uri(std::path::absolute(path)?, None)?;
    let pipeline = gst::parse::launch(&format!(
        "uridecodebin uri=\"{uri}\" ! videoconvert ! facedetector ! appsink name=sink sync=false"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    pipeline.set_state(gst::State::Playing)?;
    let mut frame = 0u64;
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().ok_or("sample without buffer")?;
        let faces: Vec<String> = gstfacewatch::meta::faces(buffer)
            .iter()
            .map(|f| {
                let (x, y, w, h) = f.rect;
                format!(
                    "{{\"x\":{x},\"y\":{y},\"width\":{w},\"height\":{h},\"score\":{:.3}}}",
                    f.score
                )
            })
            .collect();
        let pts = buffer.pts().map_or(-1.0, |t| t.nseconds() as f64 / 1e9);
        println!(
            "{{\"file\":\"{path}\",\"frame\":{frame},\"pts\":{pts:.3},\"faces\":[{}]}}",
            faces.join(",")
        );
        frame += 1;
    }
    // pull_sample fails on EOS or on an error: tell which.
    let bus = pipeline.bus().ok_or("no bus")?;
    let err = bus.pop_filtered(&[gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null)?;
    if let Some(msg) = err
        && let gst::MessageView::Error(e) = msg.view()
    {
        return Err(format!("{path}: {} ({:?})", e.error(), e.debug()).into());
    }
    Ok(())
}

fn main() {
    gst::init().expect("GStreamer init");
    gstfacewatch::plugin_register_static().expect("register facewatch");
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
