// SPDX-License-Identifier: MIT
//! Model manifests: a small TOML file next to each model (`centerface.onnx` → `centerface.toml`) that
//! states everything the elements need to feed and decode it. Nothing about a model is hard-coded in
//! an element.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::frame::{ChannelOrder, Layout, TensorSpec};

/// Where models are searched for when an element's `model` property is unset, in order:
/// `$FACEVEIL_MODEL_DIR`, then the data dir meson installs to (`<datadir>/faceveil/models`, fixed at
/// build time), then `/usr/local/share/faceveil/models` and `/usr/share/faceveil/models`.
pub fn model_search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("FACEVEIL_MODEL_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    if let Some(d) = option_env!("FACEVEIL_INSTALL_MODEL_DIR") {
        dirs.push(PathBuf::from(d));
    }
    for d in [
        "/usr/local/share/faceveil/models",
        "/usr/share/faceveil/models",
    ] {
        let d = PathBuf::from(d);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

#[derive(Debug)]
pub enum ManifestError {
    /// No model given and none found in the search dirs.
    NotFound {
        file: String,
        searched: Vec<PathBuf>,
    },
    /// The model file does not exist.
    MissingModel(PathBuf),
    /// The manifest next to the model does not exist.
    MissingManifest { model: PathBuf, manifest: PathBuf },
    /// The manifest cannot be read or parsed, or states something inconsistent.
    Invalid { manifest: PathBuf, reason: String },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::NotFound { file, searched } => write!(
                f,
                "no model file '{file}' in {} (set the 'model' property or FACEVEIL_MODEL_DIR; \
                 scripts/setup.sh prepares the default models)",
                searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ManifestError::MissingModel(p) => write!(
                f,
                "model file {} does not exist (scripts/setup.sh prepares the default models)",
                p.display()
            ),
            ManifestError::MissingManifest { model, manifest } => write!(
                f,
                "model {} has no manifest: expected {} (see docs/MODELS.md)",
                model.display(),
                manifest.display()
            ),
            ManifestError::Invalid { manifest, reason } => {
                write!(f, "invalid model manifest {}: {reason}", manifest.display())
            }
        }
    }
}

impl std::error::Error for ManifestError {}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    Detector,
    Embedder,
}

impl Task {
    /// The model file looked up in the model dirs when an element's `model` is unset.
    pub fn default_file(self) -> &'static str {
        match self {
            // The INT8 detector (scripts/quantize.py): the same boxes as FP32 on the test photos at
            // IoU >= 0.96, landmarks within the FP32 ones' own spread (docs/MODELS.md), the model
            // 1.6x faster.
            Task::Detector => "centerface-int8.onnx",
            // SFace, FP32: d′ 6.4 against dlib's 3.9 on grayscale ORL and 7.4 against 4.9 on the
            // colour pairs (docs/CALIBRATION.md); its INT8 version saves only 10–20 % of its time
            // (BENCHMARKS.md). Lists made before format 5 hold only dlib_resnet descriptors: they
            // need `faceveil enroll --model sface.onnx` for each person, or `model` set to
            // dlib_resnet.onnx (docs/MODELS.md).
            Task::Embedder => self.fp32_file(),
        }
    }

    /// The FP32 model, as converted from its source (the INT8 ones are made from it).
    pub fn fp32_file(self) -> &'static str {
        match self {
            Task::Detector => "centerface.onnx",
            Task::Embedder => "sface.onnx",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Resize {
    /// Stretch the frame to the tensor (aspect ratio not kept).
    #[default]
    Stretch,
    /// Scale keeping the aspect ratio; the rest of the tensor is padded with `mean`.
    Letterbox,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ModelSection {
    pub name: String,
    pub task: Task,
    /// The model's file name, next to the manifest.
    pub file: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InputSection {
    pub name: String,
    pub layout: String,
    pub color: String,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    #[serde(default)]
    pub resize: Resize,
    /// Tensor width and height must be multiples of this.
    #[serde(default = "one")]
    pub size_multiple: u32,
    /// Longest tensor side when the element does not choose one.
    pub default_size: Option<u32>,
    /// A model that only takes one size: [width, height].
    pub fixed_size: Option<[u32; 2]>,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DetectorSection {
    /// Decoder family, e.g. "centerface".
    pub decoder: String,
    pub stride: u32,
    /// Number of landmarks per face.
    pub landmarks: usize,
    /// Role → output tensor name, as the decoder wants them.
    pub outputs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EmbedderSection {
    pub output: String,
    pub dimension: usize,
    /// Chip size in pixels (square).
    pub chip_size: u32,
    /// Landmark positions in chip pixels, in the detector's landmark order.
    pub template: Vec<[f32; 2]>,
    /// "cosine" (on L2-normalised vectors).
    pub metric: String,
    /// Default match threshold, from docs/CALIBRATION.md.
    pub threshold: Option<f32>,
    /// Default match threshold for grayscale faces (docs/CALIBRATION.md); unset: `threshold`.
    pub threshold_gray: Option<f32>,
    /// Mean descriptor (raw little-endian f32 × dimension, next to the manifest) that scores are
    /// centred by; made by scripts/setup.sh from a background set of faces.
    pub mean_file: Option<String>,
}

impl EmbedderSection {
    /// The calibrated match threshold: the manifest's, else 0.66 (dlib_resnet's, the first embedder).
    pub fn match_threshold(&self) -> f32 {
        self.threshold.unwrap_or(0.66)
    }

    /// The calibrated match threshold for grayscale faces.
    pub fn match_threshold_gray(&self) -> f32 {
        self.threshold_gray
            .unwrap_or_else(|| self.match_threshold())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model: ModelSection,
    pub input: InputSection,
    pub detector: Option<DetectorSection>,
    pub embedder: Option<EmbedderSection>,
}

/// A model file with its parsed manifest.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub model_path: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest: Manifest,
}

impl Manifest {
    pub fn parse(text: &str, manifest: &Path) -> Result<Manifest, ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            manifest: manifest.to_path_buf(),
            reason,
        };
        let m: Manifest = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if !matches!(m.input.layout.as_str(), "nchw" | "nhwc") {
            return Err(invalid(format!(
                "input.layout '{}' is not nchw or nhwc",
                m.input.layout
            )));
        }
        if !matches!(m.input.color.as_str(), "rgb" | "bgr") {
            return Err(invalid(format!(
                "input.color '{}' is not rgb or bgr",
                m.input.color
            )));
        }
        m.check_numbers().map_err(invalid)?;
        match m.model.task {
            Task::Detector if m.detector.is_none() => {
                return Err(invalid(
                    "task is detector but there is no [detector] section".into(),
                ));
            }
            Task::Embedder if m.embedder.is_none() => {
                return Err(invalid(
                    "task is embedder but there is no [embedder] section".into(),
                ));
            }
            _ => {}
        }
        Ok(m)
    }

    /// Every number of the manifest finite and in a range the code can work with: a manifest is
    /// input like any other file (`threshold = nan` would make every face match, `stride = 0`
    /// would find no face at all, so redaction would pass every frame in the clear).
    fn check_numbers(&self) -> Result<(), String> {
        fn within<T: PartialOrd + std::fmt::Display + Copy>(
            key: &str,
            v: T,
            lo: T,
            hi: T,
        ) -> Result<(), String> {
            // `!(lo <= v && v <= hi)` is also true for NaN.
            if !(lo <= v && v <= hi) {
                return Err(format!("{key} = {v} is outside {lo}..={hi}"));
            }
            Ok(())
        }
        let i = &self.input;
        for c in 0..3 {
            within("input.mean", i.mean[c], -1e4, 1e4)?;
            within("input.std", i.std[c].abs(), 1e-6, 1e4)?;
        }
        within("input.size-multiple", i.size_multiple, 1, 1024)?;
        if let Some(d) = i.default_size {
            within("input.default-size", d, i.size_multiple, 8192)?;
        }
        if let Some([w, h]) = i.fixed_size {
            within("input.fixed-size width", w, 1, 8192)?;
            within("input.fixed-size height", h, 1, 8192)?;
        }
        if let Some(d) = &self.detector {
            within("detector.stride", d.stride, 1, 256)?;
            within("detector.landmarks", d.landmarks, 0, 128)?;
        }
        if let Some(e) = &self.embedder {
            within("embedder.dimension", e.dimension, 1, 65536)?;
            within("embedder.chip-size", e.chip_size, 8, 2048)?;
            let side = e.chip_size as f32;
            for p in e.template.iter().flatten() {
                within("embedder.template", *p, 0.0, side)?;
            }
            if e.metric != "cosine" {
                return Err(format!("embedder.metric '{}' is not cosine", e.metric));
            }
            if let Some(t) = e.threshold {
                within("embedder.threshold", t, -1.0, 1.0)?;
            }
            if let Some(t) = e.threshold_gray {
                within("embedder.threshold-gray", t, -1.0, 1.0)?;
            }
        }
        Ok(())
    }

    /// The `[detector]` section, or why there is none.
    pub fn detector_section(&self) -> Result<&DetectorSection, String> {
        self.detector
            .as_ref()
            .ok_or_else(|| "manifest has no [detector] section".into())
    }

    /// The `[embedder]` section, or why there is none.
    pub fn embedder_section(&self) -> Result<&EmbedderSection, String> {
        self.embedder
            .as_ref()
            .ok_or_else(|| "manifest has no [embedder] section".into())
    }

    /// The tensor a frame is sampled into, for a tensor of `width`×`height`.
    pub fn tensor_spec(&self, width: usize, height: usize) -> TensorSpec {
        let i = &self.input;
        TensorSpec {
            width,
            height,
            layout: if i.layout == "nhwc" {
                Layout::Nhwc
            } else {
                Layout::Nchw
            },
            order: if i.color == "bgr" {
                ChannelOrder::Bgr
            } else {
                ChannelOrder::Rgb
            },
            mean: i.mean,
            inv_std: i.std.map(|s| 1.0 / s),
            // Padding becomes exactly zero after normalisation: the value the network saw in training.
            border: if i.color == "bgr" {
                [i.mean[2], i.mean[1], i.mean[0]]
            } else {
                i.mean
            },
        }
    }

    /// Tensor size for a frame: the longest side becomes `longest` (0 = the manifest's default),
    /// rounded to the size multiple, the other side follows the frame's aspect ratio, also rounded.
    /// A fixed-size model ignores both.
    pub fn tensor_size(&self, frame_w: usize, frame_h: usize, longest: u32) -> (usize, usize) {
        if let Some([w, h]) = self.input.fixed_size {
            return (w as usize, h as usize);
        }
        let m = self.input.size_multiple as usize;
        let longest = if longest == 0 {
            self.input.default_size.unwrap_or(640)
        } else {
            longest
        } as usize;
        let round = |v: f64| (((v / m as f64).round() as usize).max(1)) * m;
        let longest = round(longest as f64);
        let scale = longest as f64 / frame_w.max(frame_h) as f64;
        if frame_w >= frame_h {
            (longest, round(frame_h as f64 * scale))
        } else {
            (round(frame_w as f64 * scale), longest)
        }
    }
}

impl ModelSpec {
    /// A file named by the manifest, next to it.
    pub fn sibling(&self, name: &str) -> PathBuf {
        self.manifest_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(name)
    }

    /// Loads the manifest that sits next to `model` (same name, `.toml`).
    pub fn load(model: &Path) -> Result<ModelSpec, ManifestError> {
        if !model.is_file() {
            return Err(ManifestError::MissingModel(model.to_path_buf()));
        }
        let manifest_path = model.with_extension("toml");
        let text = match std::fs::read_to_string(&manifest_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ManifestError::MissingManifest {
                    model: model.to_path_buf(),
                    manifest: manifest_path,
                });
            }
            Err(e) => {
                return Err(ManifestError::Invalid {
                    manifest: manifest_path,
                    reason: e.to_string(),
                });
            }
        };
        let manifest = Manifest::parse(&text, &manifest_path)?;
        Ok(ModelSpec {
            model_path: model.to_path_buf(),
            manifest_path,
            manifest,
        })
    }

    /// The first of the search dirs ([`model_search_dirs`]) that holds `file`.
    pub fn find(file: &str) -> Result<PathBuf, ManifestError> {
        let searched = model_search_dirs();
        searched
            .iter()
            .map(|d| d.join(file))
            .find(|p| p.is_file())
            .ok_or_else(|| ManifestError::NotFound {
                file: file.to_string(),
                searched: searched.clone(),
            })
    }

    /// Resolves an element's `model` property: the given path, or the task's default file in the
    /// search dirs.
    pub fn resolve(model: Option<&Path>, task: Task) -> Result<ModelSpec, ManifestError> {
        let path = match model {
            Some(p) => p.to_path_buf(),
            None => ModelSpec::find(task.default_file())?,
        };
        let spec = ModelSpec::load(&path)?;
        if spec.manifest.model.task != task {
            return Err(ManifestError::Invalid {
                manifest: spec.manifest_path,
                reason: format!(
                    "model task is {:?}, this element needs {task:?}",
                    spec.manifest.model.task
                ),
            });
        }
        Ok(spec)
    }

    /// The installed models of `task`: in each search dir ([`model_search_dirs`]), in order, every
    /// manifest (`*.toml`) of that task whose model file is beside it, by file name; a file name
    /// found in an earlier dir hides the later ones (as [`ModelSpec::find`] picks the first).
    /// Manifests that cannot be read or parsed are skipped.
    pub fn installed(task: Task) -> Vec<ModelSpec> {
        ModelSpec::installed_in(&model_search_dirs(), task)
    }

    /// [`ModelSpec::installed`] in `dirs`.
    pub fn installed_in(dirs: &[PathBuf], task: Task) -> Vec<ModelSpec> {
        let mut found: Vec<ModelSpec> = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut manifests: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            manifests.sort();
            for manifest in manifests {
                let Ok(text) = std::fs::read_to_string(&manifest) else {
                    continue;
                };
                let Ok(m) = Manifest::parse(&text, &manifest) else {
                    continue;
                };
                let seen = found
                    .iter()
                    .any(|f| f.model_path.file_name() == Some(m.model.file.as_ref()));
                if m.model.task != task || seen {
                    continue;
                }
                if let Ok(spec) = ModelSpec::load(&dir.join(&m.model.file))
                    && spec.manifest_path == manifest
                {
                    found.push(spec);
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CENTERFACE: &str = include_str!("../../models/centerface.toml");

    fn parse(s: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(s, Path::new("test.toml"))
    }

    #[test]
    fn shipped_centerface_manifest_parses() {
        let m = parse(CENTERFACE).unwrap();
        assert_eq!(m.model.task, Task::Detector);
        let d = m.detector.as_ref().unwrap();
        assert_eq!(d.decoder, "centerface");
        assert_eq!(d.outputs.len(), 4);
        assert_eq!(m.input.size_multiple, 32);
    }

    #[test]
    fn tensor_size_rounds_and_keeps_aspect() {
        let m = parse(CENTERFACE).unwrap();
        assert_eq!(m.tensor_size(640, 480, 640), (640, 480));
        assert_eq!(m.tensor_size(1920, 1080, 640), (640, 352)); // 360 rounds to 352
        assert_eq!(m.tensor_size(1080, 1920, 640), (352, 640));
        assert_eq!(m.tensor_size(1920, 1080, 0), (640, 352));
        assert_eq!(m.tensor_size(1920, 1080, 650), (640, 352));
        assert_eq!(m.tensor_size(16, 16, 640), (640, 640));
    }

    #[test]
    fn rejects_bad_manifests() {
        assert!(parse("[model]\nname='x'").is_err());
        let bad_layout = CENTERFACE.replace("layout = \"nchw\"", "layout = \"chw\"");
        assert!(matches!(
            parse(&bad_layout),
            Err(ManifestError::Invalid { .. })
        ));
        let unknown = CENTERFACE.replace("[detector]", "[detector]\nbogus = 1");
        assert!(parse(&unknown).is_err());
        let no_det = CENTERFACE.split("[detector]").next().unwrap().to_string();
        assert!(parse(&no_det).is_err());
    }

    #[test]
    fn rejects_numbers_out_of_range() {
        const DLIB: &str = include_str!("../../models/dlib_resnet.toml");
        assert!(parse(DLIB).is_ok());
        for (text, key) in [
            (
                DLIB.replace("threshold = 0.66", "threshold = nan"),
                "embedder.threshold",
            ),
            (
                DLIB.replace("threshold = 0.66", "threshold = 2.0"),
                "embedder.threshold",
            ),
            (
                DLIB.replace("threshold-gray = 0.79", "threshold-gray = -inf"),
                "threshold-gray",
            ),
            (
                DLIB.replace("dimension = 128", "dimension = 0"),
                "embedder.dimension",
            ),
            (
                DLIB.replace("chip-size = 150", "chip-size = 0"),
                "embedder.chip-size",
            ),
            (
                DLIB.replace("[47.733, 47.140]", "[47.733, nan]"),
                "embedder.template",
            ),
            (
                DLIB.replace("metric = \"cosine\"", "metric = \"l2\""),
                "metric",
            ),
            (
                CENTERFACE.replace("stride = 4", "stride = 0"),
                "detector.stride",
            ),
            (
                CENTERFACE.replace("size-multiple = 32", "size-multiple = 0"),
                "size-multiple",
            ),
            (
                CENTERFACE.replace("default-size = 640", "default-size = 0"),
                "default-size",
            ),
            (
                CENTERFACE.replace("std = [1.0, 1.0, 1.0]", "std = [1.0, 0.0, 1.0]"),
                "input.std",
            ),
            (
                CENTERFACE.replace("mean = [0.0, 0.0, 0.0]", "mean = [0.0, nan, 0.0]"),
                "input.mean",
            ),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn installed_models_of_a_task_first_dir_first() {
        const DLIB: &str = include_str!("../../models/dlib_resnet.toml");
        let root = std::env::temp_dir().join(format!("fv-installed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (a, b) = (root.join("a"), root.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let put = |dir: &Path, stem: &str, manifest: &str, model: bool| {
            let m = (manifest.replace("dlib_resnet", stem))
                .replace("\"centerface.onnx\"", &format!("\"{stem}.onnx\""));
            std::fs::write(dir.join(format!("{stem}.toml")), m).unwrap();
            if model {
                std::fs::write(dir.join(format!("{stem}.onnx")), b"x").unwrap();
            }
        };
        put(&a, "emb2", DLIB, true);
        put(&a, "emb1", DLIB, true);
        put(&a, "nofile", DLIB, false);
        put(&a, "det", CENTERFACE, true);
        std::fs::write(a.join("broken.toml"), "not a manifest").unwrap();
        put(&b, "emb1", DLIB, true);
        put(&b, "emb3", DLIB, true);
        let got =
            ModelSpec::installed_in(&[a.clone(), root.join("none"), b.clone()], Task::Embedder);
        let names: Vec<PathBuf> = got.iter().map(|s| s.model_path.clone()).collect();
        assert_eq!(
            names,
            [
                a.join("emb1.onnx"),
                a.join("emb2.onnx"),
                b.join("emb3.onnx")
            ],
            "sorted per dir; emb1 of b hidden by a's; no model file, another task, a broken manifest: skipped"
        );
        assert!(got.iter().all(|s| s.manifest.model.task == Task::Embedder));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_files_are_named() {
        let dir = std::env::temp_dir().join(format!("fw-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("m.onnx");
        let e = ModelSpec::load(&model).unwrap_err();
        assert!(e.to_string().contains("m.onnx"), "{e}");
        std::fs::write(&model, b"x").unwrap();
        let e = ModelSpec::load(&model).unwrap_err();
        assert!(matches!(e, ManifestError::MissingManifest { .. }));
        assert!(e.to_string().contains("m.toml"), "{e}");
        std::fs::write(dir.join("m.toml"), CENTERFACE).unwrap();
        assert!(ModelSpec::load(&model).is_ok());
        let e = ModelSpec::resolve(Some(&model), Task::Embedder).unwrap_err();
        assert!(e.to_string().contains("Embedder"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
