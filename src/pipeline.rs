// SPDX-License-Identifier: MIT
//! Running a media file through faceveil elements from an application or tool: the one place that
//! builds `uridecodebin ! videoconvert ! <chain> ! appsink` and drains it, ending on EOS or on the
//! first error (never blocking on a pipeline that failed).

use gst::prelude::*;

/// Decodes `path` (any format `uridecodebin` reads), runs it through `chain` (a gst-launch fragment
/// such as `"veildetect ! veilembed"`) and calls `on_sample` for every frame that comes out.
/// Returns the number of frames, or the first error of the pipeline, naming the file.
pub fn run_file(
    path: &std::path::Path,
    chain: &str,
    mut on_sample: impl FnMut(&gst::Sample),
) -> Result<usize, String> {
    let abs = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !abs.is_file() {
        return Err(format!("{}: no such file", path.display()));
    }
    let uri = gst::glib::filename_to_uri(&abs, None).map_err(|e| e.to_string())?;
    let pipeline = gst::parse::launch(&format!(
        "uridecodebin uri=\"{uri}\" ! videoconvert ! {chain} ! appsink name=sink sync=false"
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline".to_string())?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let result = (|| {
        pipeline.set_state(gst::State::Playing).map_err(|_| {
            first_error(&bus).unwrap_or_else(|| "the pipeline did not start".into())
        })?;
        let mut frames = 0;
        loop {
            if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
                on_sample(&sample);
                frames += 1;
                continue;
            }
            if let Some(e) = first_error(&bus) {
                return Err(e);
            }
            if sink.is_eos() {
                return Ok(frames);
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result.map_err(|e| format!("{}: {e}", path.display()))
}

fn first_error(bus: &gst::Bus) -> Option<String> {
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(e.error().to_string()),
        _ => None,
    }
}

/// Every descriptor the elements of `chain` (ending in `veilembed`) attach, over all frames.
pub fn descriptors(path: &std::path::Path, chain: &str) -> Result<Vec<Vec<f32>>, String> {
    let mut out = Vec::new();
    run_file(path, chain, |sample| {
        if let Some(buf) = sample.buffer() {
            out.extend(
                crate::meta::faces(buf)
                    .into_iter()
                    .filter_map(|f| f.embedding?.vector),
            );
        }
    })?;
    Ok(out)
}
