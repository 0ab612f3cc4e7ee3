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
    let tail = format!("{chain} ! appsink name=sink0 sync=false");
    drain(path, &tail, 1, |_, s| on_sample(s))
}

/// [`run_file`] through `head`, whose frames a `tee` then hands to each of `branches` (gst-launch
/// fragments, such as one `veilembed` per model after one `veildetect`): `on_sample(branch,
/// sample)` for every frame out of each. Returns the number of frames of the first branch.
pub fn run_file_branches(
    path: &std::path::Path,
    head: &str,
    branches: &[String],
    on_sample: impl FnMut(usize, &gst::Sample),
) -> Result<usize, String> {
    if branches.is_empty() {
        return Err("no branch to run".into());
    }
    let mut tail = format!("{head} ! tee name=branches");
    for (k, b) in branches.iter().enumerate() {
        tail += &format!(" branches. ! queue ! {b} ! appsink name=sink{k} sync=false");
    }
    drain(path, &tail, branches.len(), on_sample)
}

/// Runs `uridecodebin ! videoconvert ! <tail>` on `path`, `tail` ending in the appsinks `sink0`
/// .. `sink<sinks - 1>`, and drains them all until each is at its end or the pipeline fails.
fn drain(
    path: &std::path::Path,
    tail: &str,
    sinks: usize,
    mut on_sample: impl FnMut(usize, &gst::Sample),
) -> Result<usize, String> {
    let abs = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !abs.is_file() {
        return Err(format!("{}: no such file", path.display()));
    }
    let uri = gst::glib::filename_to_uri(&abs, None).map_err(|e| e.to_string())?;
    let pipeline = gst::parse::launch(&format!(
        "uridecodebin uri=\"{uri}\" ! videoconvert ! {tail}"
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline".to_string())?;
    let sinks = (0..sinks)
        .map(|k| {
            pipeline
                .by_name(&format!("sink{k}"))
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .ok_or("no appsink")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bus = pipeline.bus().ok_or("no bus")?;
    // Each sink waits this long for a frame in a round over them.
    let wait = gst::ClockTime::from_mseconds(100 / sinks.len() as u64);
    let result = (|| {
        pipeline.set_state(gst::State::Playing).map_err(|_| {
            first_error(&bus).unwrap_or_else(|| "the pipeline did not start".into())
        })?;
        let mut frames = 0;
        loop {
            let mut pulled = false;
            for (k, sink) in sinks.iter().enumerate() {
                if let Some(sample) = sink.try_pull_sample(wait) {
                    on_sample(k, &sample);
                    frames += usize::from(k == 0);
                    pulled = true;
                }
            }
            if pulled {
                continue;
            }
            if let Some(e) = first_error(&bus) {
                return Err(e);
            }
            if sinks.iter().all(|s| s.is_eos()) {
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
