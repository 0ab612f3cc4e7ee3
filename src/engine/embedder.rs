// SPDX-License-Identifier: MIT
//! A face embedder: aligns each face to the model's template, warps the chip straight from the frame,
//! scores its quality and runs one batched inference for the faces of a frame. GStreamer-free, shared
//! by `veilembed`, the CLI and the tools.

use std::io::Read;
use std::path::Path;

use ort::value::TensorRef;
use sha2::Digest;

use crate::engine::align::similarity;
use crate::engine::cosine::Similarity;
use crate::engine::frame::{Affine, FrameView, Layout, TensorSpec};
use crate::engine::manifest::{EmbedderSection, ModelSpec};
use crate::engine::runtime::{RuntimeError, SharedSession, check_names, load_session, lock};

/// Landmarks in square-pixel geometry: x scaled by the pixel aspect ratio `par`.
pub fn square_pixels(landmarks: &[[f32; 2]], par: f32) -> Vec<[f32; 2]> {
    landmarks.iter().map(|p| [p[0] * par, p[1]]).collect()
}

/// Distance between the eyes (landmarks 0 and 1) in pixels; 0 without landmarks.
pub fn eye_distance(landmarks: &[[f32; 2]]) -> f32 {
    match landmarks {
        [l, r, ..] => (r[0] - l[0]).hypot(r[1] - l[1]),
        _ => 0.0,
    }
}

/// Frontalness in [0, 1] from 5 landmarks (eyes, nose, mouth corners): 1 for a face looking into the
/// camera. With E the eye midpoint, M the mouth midpoint and u the unit vector from E to M:
/// - yaw term `1 - |cross(u, nose - E)| / (0.6 · eye distance)`: the nose leaves the E–M midline
///   when the head turns; 0.6 eye distances away is a profile;
/// - pitch term `1 - |t - 0.5| / 0.5`, with `t = dot(nose - E, u) / |M - E|` (0.495 in the
///   template): the nose slides toward the eyes or the mouth when the head tilts.
///
/// Both clamped to [0, 1] and multiplied. Roll does not count: alignment removes it.
pub fn frontalness(lm: &[[f32; 2]]) -> f32 {
    let [le, re, nose, lm_, rm, ..] = lm else {
        return 0.0;
    };
    let e = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
    let m = [(lm_[0] + rm[0]) / 2.0, (lm_[1] + rm[1]) / 2.0];
    let (ux, uy) = (m[0] - e[0], m[1] - e[1]);
    let len = ux.hypot(uy);
    let de = eye_distance(lm);
    if len < 1e-3 || de < 1e-3 {
        return 0.0;
    }
    let (ux, uy) = (ux / len, uy / len);
    let (nx, ny) = (nose[0] - e[0], nose[1] - e[1]);
    let off = (ux * ny - uy * nx).abs();
    let t = (nx * ux + ny * uy) / len;
    let yaw = (1.0 - off / (0.6 * de)).clamp(0.0, 1.0);
    let pitch = (1.0 - (t - 0.5).abs() / 0.5).clamp(0.0, 1.0);
    yaw * pitch
}

/// Sharpness in [0, 1) of a chip: variance of the 4-neighbour Laplacian of its grey level over the
/// central half of the chip (the face, not the background), mapped by `v / (v + 50)`.
pub fn sharpness(spec: &TensorSpec, chip: &[f32]) -> f32 {
    let (w, h) = (spec.width, spec.height);
    let grey = |x: usize, y: usize| -> f32 {
        (0..3)
            .map(|c| {
                let i = match spec.layout {
                    Layout::Nchw => c * w * h + y * w + x,
                    Layout::Nhwc => (y * w + x) * 3 + c,
                };
                chip[i] / spec.inv_std[c] + spec.mean[c]
            })
            .sum::<f32>()
            / 3.0
    };
    let (x0, x1, y0, y1) = (
        (w / 4).max(1),
        (w * 3 / 4).min(w - 1),
        (h / 4).max(1),
        (h * 3 / 4).min(h - 1),
    );
    if x0 >= x1 || y0 >= y1 {
        return 0.0;
    }
    // The grey level once per pixel of the centre and its 1-pixel rim, then the Laplacian.
    let (gw, gh) = (x1 - x0 + 2, y1 - y0 + 2);
    let mut g = Vec::with_capacity(gw * gh);
    for y in y0 - 1..=y1 {
        for x in x0 - 1..=x1 {
            g.push(grey(x, y));
        }
    }
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for y in 1..gh - 1 {
        let (up, row, down) = (&g[(y - 1) * gw..], &g[y * gw..], &g[(y + 1) * gw..]);
        for x in 1..gw - 1 {
            let l = (row[x - 1] + row[x + 1] + up[x] + down[x] - 4.0 * row[x]) as f64;
            sum += l;
            sq += l * l;
            n += 1.0;
        }
    }
    let var = (sq / n - (sum / n).powi(2)).max(0.0) as f32;
    var / (var + 50.0)
}

/// Mean absolute difference between the chip's colour channels over its central half (0 for a
/// grayscale face, 10–40 for skin in colour), in pixel units.
pub fn colourfulness(spec: &TensorSpec, chip: &[f32]) -> f32 {
    let (w, h) = (spec.width, spec.height);
    let px = |x: usize, y: usize, c: usize| -> f32 {
        let i = match spec.layout {
            Layout::Nchw => c * w * h + y * w + x,
            Layout::Nhwc => (y * w + x) * 3 + c,
        };
        chip[i] / spec.inv_std[c] + spec.mean[c]
    };
    let (mut sum, mut n) = (0f64, 0f64);
    for y in h / 4..h * 3 / 4 {
        for x in w / 4..w * 3 / 4 {
            let (a, b, c) = (px(x, y, 0), px(x, y, 1), px(x, y, 2));
            sum += ((a - b).abs() + (b - c).abs() + (c - a).abs()) as f64 / 3.0;
            n += 1.0;
        }
    }
    if n == 0.0 { 0.0 } else { (sum / n) as f32 }
}

/// Below this [`colourfulness`] a face is in the grayscale domain (an IR camera at night, a
/// black-and-white source): its descriptors are matched at the grayscale threshold.
pub const GRAYSCALE_COLOURFULNESS: f32 = 3.0;

/// Model ids already computed in this process, by (file, modified, length): every camera's elements
/// ask at start, and hashing the file each time made starts slow.
type IdKey = (std::path::PathBuf, std::time::SystemTime, u64);
static MODEL_IDS: std::sync::Mutex<Vec<(IdKey, String)>> = std::sync::Mutex::new(Vec::new());

/// `<manifest name>:<first 16 hex digits of the model file's sha256>`: names the exact model a
/// descriptor was made with.
pub fn model_id(spec: &ModelSpec) -> Result<String, RuntimeError> {
    let err = |e: std::io::Error| RuntimeError::Model {
        path: spec.model_path.clone(),
        reason: e.to_string(),
    };
    let mut f = std::fs::File::open(&spec.model_path).map_err(err)?;
    let meta = f.metadata().map_err(err)?;
    let key: IdKey = (
        spec.model_path.clone(),
        meta.modified().map_err(err)?,
        meta.len(),
    );
    let mut cache = MODEL_IDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, id)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(id.clone());
    }
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let id = format!("{}:{hex}", spec.manifest.model.name);
    cache.push((key, id.clone()));
    Ok(id)
}

/// The similarity an embedder's descriptors are compared with: centred by the manifest's mean file
/// when it names one (the file must then exist).
pub fn similarity_for(spec: &ModelSpec) -> Result<Similarity, RuntimeError> {
    let Some(section) = spec.manifest.embedder.as_ref() else {
        return Err(RuntimeError::Model {
            path: spec.manifest_path.clone(),
            reason: "not an embedder manifest".into(),
        });
    };
    let Some(name) = &section.mean_file else {
        return Ok(Similarity::cosine());
    };
    let path = spec.sibling(name);
    let mean = read_f32_file(&path, section.dimension).map_err(|reason| RuntimeError::Model {
        path: path.clone(),
        reason: format!("{reason} (scripts/setup.sh makes it)"),
    })?;
    Ok(Similarity::centred(mean))
}

/// Reads `n` little-endian f32 from a file of exactly that size.
pub fn read_f32_file(path: &Path, n: usize) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() != n * 4 {
        return Err(format!("holds {} bytes, {} expected", bytes.len(), n * 4));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

pub struct Embedder {
    spec: ModelSpec,
    section: EmbedderSection,
    /// Shared with every other element of the process that loads the same model.
    session: SharedSession,
    chip_spec: TensorSpec,
    model_id: String,
    shared_runs: u64,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model_id", &self.model_id)
            .finish()
    }
}

impl Embedder {
    pub fn new(spec: ModelSpec, threads: u32) -> Result<Embedder, RuntimeError> {
        let bad = |reason: String| RuntimeError::Model {
            path: spec.manifest_path.clone(),
            reason,
        };
        let section = spec.manifest.embedder_section().map_err(bad)?.clone();
        let chip = section.chip_size as usize;
        if section.template.len() < 2 {
            return Err(bad("embedder.template needs at least 2 points".into()));
        }
        if let Some([w, h]) = spec.manifest.input.fixed_size
            && (w as usize != chip || h as usize != chip)
        {
            return Err(bad(format!(
                "input.fixed-size {w}x{h} differs from embedder.chip-size {chip}"
            )));
        }
        let session = load_session(&spec.model_path, threads)?;
        check_names(
            &lock(&session),
            &spec.model_path,
            &spec.manifest.input.name,
            &[&section.output],
        )?;
        let model_id = model_id(&spec)?;
        let chip_spec = spec.manifest.tensor_spec(chip, chip);
        Ok(Embedder {
            spec,
            section,
            session,
            chip_spec,
            model_id,
            shared_runs: 0,
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn dimension(&self) -> usize {
        self.section.dimension
    }

    /// Values per chip in the input tensor.
    pub fn chip_len(&self) -> usize {
        self.chip_spec.width * self.chip_spec.height * 3
    }

    pub fn chip_spec(&self) -> &TensorSpec {
        &self.chip_spec
    }

    /// The map from chip pixels to frame pixels for a face's landmarks; `None` when they cannot be
    /// fitted to the template.
    ///
    /// `par` is the frame's pixel aspect ratio (width / height of one pixel; 1 for square pixels):
    /// the face is aligned in square-pixel geometry, so that an anamorphic frame gives the same
    /// chip as the same picture in square pixels.
    pub fn chip_map(&self, landmarks: &[[f32; 2]], par: f32) -> Option<Affine> {
        let n = self.section.template.len();
        if landmarks.len() < n {
            return None;
        }
        // Chip coordinates here are pixel-centre based, like the sampler's.
        let square = square_pixels(&landmarks[..n], par);
        let m = similarity(&square, &self.section.template)?.inverse()?;
        // chip → square pixels → frame pixels (x / par)
        Some(Affine {
            a: m.a / par,
            b: m.b / par,
            c: m.c / par,
            ..m
        })
    }

    /// Warps a face's chip from the frame (pixel aspect ratio `par`) into `out` (`chip_len()`
    /// values); returns the chip's [`sharpness`]. A face's quality is this times the landmarks'
    /// [`frontalness`] (`engine::embed_step` carries the sharpness along a track).
    pub fn chip_sharpness(
        &self,
        frame: &FrameView<'_>,
        landmarks: &[[f32; 2]],
        par: f32,
        out: &mut [f32],
    ) -> Option<f32> {
        let map = self.chip_map(landmarks, par)?;
        frame.sample_into(&map, &self.chip_spec, out);
        Some(sharpness(&self.chip_spec, out))
    }

    /// Whether a warped chip (from [`Embedder::chip`]) shows a grayscale face.
    pub fn is_grayscale(&self, chip: &[f32]) -> bool {
        colourfulness(&self.chip_spec, chip) < GRAYSCALE_COLOURFULNESS
    }

    /// Runs the model on `n` chips laid out one after another in `chips`: one inference, which may
    /// also carry the chips that other elements of the process (other cameras) bring meanwhile.
    pub fn embed_chips(&mut self, chips: &[f32], n: usize) -> Result<Vec<Vec<f32>>, RuntimeError> {
        self.embed_shared(chips, n, 0)
    }

    /// [`Embedder::embed_chips`], in a run of at most `max_rows` chips (0 = no limit) when shared.
    fn embed_shared(
        &mut self,
        chips: &[f32],
        n: usize,
        max_rows: usize,
    ) -> Result<Vec<Vec<f32>>, RuntimeError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        assert_eq!(chips.len(), n * self.chip_len(), "chip buffer size");
        let (session, this) = (&self.session, &*self);
        let (out, shared) = session.combiner().run(
            this.chip_len(),
            chips,
            n,
            max_rows,
            &mut |rows, n| this.infer(rows, n),
            |what| RuntimeError::Run(format!("embedder run failed: {what}")),
        )?;
        self.shared_runs += (shared.callers > 1) as u64;
        Ok(out)
    }

    /// One model run on `n` chips.
    fn infer(&self, chips: &[f32], n: usize) -> Result<Vec<Vec<f32>>, RuntimeError> {
        let (w, h) = (self.chip_spec.width, self.chip_spec.height);
        let shape = match self.chip_spec.layout {
            Layout::Nchw => [n, 3, h, w],
            Layout::Nhwc => [n, h, w, 3],
        };
        let run_err = |e: &dyn std::fmt::Display| RuntimeError::Run(e.to_string());
        let input = TensorRef::from_array_view((shape, chips)).map_err(|e| run_err(&e))?;
        let mut session = lock(&self.session);
        let outputs = session
            .run(vec![(self.spec.manifest.input.name.as_str(), input)])
            .map_err(|e| run_err(&e))?;
        let value = outputs
            .get(&self.section.output)
            .ok_or_else(|| RuntimeError::Run(format!("no output '{}'", self.section.output)))?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(|e| run_err(&e))?;
        let dim = self.section.dimension;
        if shape.len() != 2 || shape[0] as usize != n || shape[1] as usize != dim {
            return Err(RuntimeError::Run(format!(
                "output shape {shape:?}, expected [{n}, {dim}]"
            )));
        }
        Ok(data.chunks_exact(dim).map(<[f32]>::to_vec).collect())
    }

    /// Model runs of this embedder that also carried other elements' chips.
    pub fn shared_runs(&self) -> u64 {
        self.shared_runs
    }

    /// Runs `n` prepared chips in batches of at most `max_batch` (0 = one batch).
    pub fn embed_batches(
        &mut self,
        chips: &[f32],
        n: usize,
        max_batch: usize,
    ) -> Result<Vec<Vec<f32>>, RuntimeError> {
        let len = self.chip_len();
        let step = if max_batch == 0 { n.max(1) } else { max_batch };
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(step) {
            let end = (start + step).min(n);
            out.extend(self.embed_shared(
                &chips[start * len..end * len],
                end - start,
                max_batch,
            )?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::align::tests::TEMPLATE;
    use crate::engine::frame::ChannelOrder;

    #[test]
    fn template_is_frontal_and_turned_faces_are_not() {
        assert!(frontalness(&TEMPLATE) > 0.95);
        let mut turned = TEMPLATE;
        turned[2][0] += 24.0; // nose toward one eye: head turned
        assert!(frontalness(&turned) < 0.3, "{}", frontalness(&turned));
        let mut tilted = TEMPLATE;
        tilted[2][1] -= 28.0; // nose up at the eyes
        assert!(frontalness(&tilted) < 0.1, "{}", frontalness(&tilted));
        assert_eq!(frontalness(&TEMPLATE[..2]), 0.0);
        assert!((eye_distance(&TEMPLATE) - 52.548).abs() < 0.01);
    }

    /// An RGB NCHW chip of raw pixel values.
    fn raw_spec(size: usize) -> TensorSpec {
        TensorSpec::raw(size, size, Layout::Nchw, ChannelOrder::Rgb)
    }

    #[test]
    fn grey_chips_have_no_colour() {
        let spec = raw_spec(8);
        let grey: Vec<f32> = (0..3 * 64).map(|i| (i % 64) as f32 * 3.0).collect();
        assert_eq!(colourfulness(&spec, &grey), 0.0);
        let skin: Vec<f32> = (0..3 * 64).map(|i| [200.0, 150.0, 120.0][i / 64]).collect();
        assert!((colourfulness(&spec, &skin) - 53.33).abs() < 0.01);
    }

    #[test]
    fn sharp_chips_score_higher_than_flat_ones() {
        let spec = raw_spec(40);
        let checker: Vec<f32> = (0..3 * 1600)
            .map(|i| {
                if (i % 40 + i / 40) % 2 == 0 {
                    200.0
                } else {
                    50.0
                }
            })
            .collect();
        let flat = vec![128.0f32; 3 * 1600];
        let gentle: Vec<f32> = (0..3 * 1600).map(|i| (i % 40) as f32).collect();
        assert!(sharpness(&spec, &checker) > 0.99);
        assert_eq!(sharpness(&spec, &flat), 0.0);
        assert!(sharpness(&spec, &gentle) < 0.01);
    }
}
