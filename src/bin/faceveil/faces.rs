// SPDX-License-Identifier: MIT
//! The faces of photos and videos, read through `veildetect ! veilembed` (the pipelines' code):
//! what `enroll` and `identify` look at.

use std::path::Path;

use crate::shared::Fail;

/// One face of a frame read from an input file.
pub(crate) struct Seen {
    pub(crate) frame: usize,
    pub(crate) rect: (u32, u32, u32, u32),
    pub(crate) area: u32,
    pub(crate) quality: f32,
    /// Distance between the eyes in pixels.
    pub(crate) eyes: f32,
    pub(crate) grayscale: bool,
    pub(crate) vector: Option<Vec<f32>>,
    pub(crate) model_id: String,
}

/// The faces of each frame of a file, through `veildetect ! veilembed` (the pipelines' code).
pub(crate) fn read_faces(path: &Path, model: Option<&Path>) -> Result<Vec<Vec<Seen>>, Fail> {
    let model = model
        .map(|m| format!("model=\"{}\"", m.display()))
        .unwrap_or_default();
    let mut frames: Vec<Vec<Seen>> = Vec::new();
    gstfaceveil::pipeline::run_file(
        path,
        &format!("veildetect ! veilembed reembed-interval=1 {model}"),
        |sample| {
            let n = frames.len();
            frames.push(seen(sample, n));
        },
    )
    .map_err(|e| Fail(8, format!("cannot be read: {e}")))?;
    if frames.is_empty() {
        return Err(Fail(8, format!("{}: no video frame in it", path.display())));
    }
    Ok(frames)
}

/// [`read_faces`] with each of `models`: the faces are detected once, then embedded by each
/// model. By model, the faces of each frame.
pub(crate) fn read_faces_models(
    path: &Path,
    models: &[&Path],
) -> Result<Vec<Vec<Vec<Seen>>>, Fail> {
    let branches: Vec<String> = models
        .iter()
        .map(|m| format!("veilembed reembed-interval=1 model=\"{}\"", m.display()))
        .collect();
    let mut out: Vec<Vec<Vec<Seen>>> = models.iter().map(|_| Vec::new()).collect();
    gstfaceveil::pipeline::run_file_branches(path, "veildetect", &branches, |k, sample| {
        let n = out[k].len();
        out[k].push(seen(sample, n));
    })
    .map_err(|e| Fail(8, format!("cannot be read: {e}")))?;
    if out.iter().any(|frames| frames.is_empty()) {
        return Err(Fail(8, format!("{}: no video frame in it", path.display())));
    }
    Ok(out)
}

/// The faces of frame `n`, as `sample` carries them.
fn seen(sample: &gst::Sample, n: usize) -> Vec<Seen> {
    let Some(buf) = sample.buffer() else {
        return Vec::new();
    };
    gstfaceveil::meta::faces(buf)
        .into_iter()
        .map(|f| {
            let e = f.embedding;
            Seen {
                frame: n,
                rect: f.rect,
                area: f.rect.2 * f.rect.3,
                eyes: gstfaceveil::engine::embedder::eye_distance(&f.landmarks),
                grayscale: e.as_ref().is_some_and(|e| e.grayscale),
                quality: e.as_ref().map_or(0.0, |e| e.quality),
                model_id: e.as_ref().map(|e| e.model_id.clone()).unwrap_or_default(),
                vector: e.and_then(|e| e.vector),
            }
        })
        .collect()
}
