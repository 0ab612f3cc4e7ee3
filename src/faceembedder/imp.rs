//! faceembedder implementation: properties, caps and the streaming glue. Alignment, chips, quality
//! and inference live in `core::embedder`; the per-track re-embedding decisions in `core::reembed`.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use crate::core::embedder::{Embedder, eye_distance};
use crate::core::manifest::{ModelSpec, Task};
use crate::core::reembed::{DescriptorCache, Policy};
use crate::errors::{model_error, runtime_error};
use crate::meta::{self, Embedding};
use crate::video;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "faceembedder",
        gst::DebugColorFlags::empty(),
        Some("facewatch face embedder"),
    )
});

const DEFAULT_MODEL_FILE: &str = "dlib_resnet.onnx";
const DEFAULT_REEMBED_INTERVAL: u32 = 10;
const DEFAULT_MIN_FACE_SIZE: u32 = 16;
const DEFAULT_MIN_QUALITY: f32 = 0.15;
const DEFAULT_MAX_BATCH: u32 = 8;

#[derive(Debug, Clone)]
struct Settings {
    model: Option<PathBuf>,
    threads: u32,
    reembed_interval: u32,
    min_face_size: u32,
    min_quality: f32,
    max_batch: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: None,
            threads: 0,
            reembed_interval: DEFAULT_REEMBED_INTERVAL,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            min_quality: DEFAULT_MIN_QUALITY,
            max_batch: DEFAULT_MAX_BATCH,
        }
    }
}

/// What the streaming thread reads of the settings on every frame (a copy: no allocation).
#[derive(Debug, Clone, Copy)]
struct Live {
    reembed_interval: u32,
    min_face_size: u32,
    min_quality: f32,
    max_batch: u32,
}

impl Settings {
    fn live(&self) -> Live {
        Live {
            reembed_interval: self.reembed_interval,
            min_face_size: self.min_face_size,
            min_quality: self.min_quality,
            max_batch: self.max_batch,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    frames: u64,
    faces: u64,
    descriptors: u64,
    inferences: u64,
    reused: u64,
    gated: u64,
    inference_ns: u64,
}

struct State {
    embedder: Embedder,
    input: Option<video::Input>,
    cache: DescriptorCache,
    /// Chips of the faces that get a new descriptor on this frame, one after another.
    chips: Vec<f32>,
    warned_no_meta: bool,
    stats: Stats,
}

#[derive(Default)]
pub struct FaceEmbedder {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceEmbedder {
    const NAME: &'static str = "GstFaceEmbedder";
    type Type = super::FaceEmbedder;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceEmbedder {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                crate::props::model("embedder", DEFAULT_MODEL_FILE),
                crate::props::threads(),
                glib::ParamSpecUInt::builder("reembed-interval")
                    .nick("Re-embed interval")
                    .blurb(
                        "Frames after which a tracked face gets a fresh descriptor (0 = once per track). \
                         With N > 0 a new track first gets 3 descriptors in a row, so the matcher can \
                         decide quickly. New descriptors are made only on frames facedetector ran its \
                         model on (see its 'interval'). A track is also re-embedded when its face size \
                         changes 1.3x or its quality rises by 0.15; otherwise its last descriptor is reused",
                    )
                    .default_value(DEFAULT_REEMBED_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Faces whose eyes are closer than this many pixels get no descriptor")
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("min-quality")
                    .nick("Minimum quality")
                    .blurb(
                        "Faces under this quality get no new descriptor. Quality = frontalness (from \
                         the landmarks) x sharpness (Laplacian variance of the aligned chip), 0..1; see \
                         docs/METADATA.md",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_MIN_QUALITY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-batch")
                    .nick("Maximum batch")
                    .blurb("Most faces per inference; a frame with more runs several (0 = all in one)")
                    .default_value(DEFAULT_MAX_BATCH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Counters since start: frames, faces, descriptors (computed), inferences \
                         (batched model runs), reused (descriptors carried from the track), gated \
                         (faces under min-face-size or min-quality), inference-time-us",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => s.model = crate::props::path(value),
            "threads" => s.threads = value.get().expect("type checked upstream"),
            "reembed-interval" => s.reembed_interval = value.get().expect("type checked upstream"),
            "min-face-size" => s.min_face_size = value.get().expect("type checked upstream"),
            "min-quality" => s.min_quality = value.get().expect("type checked upstream"),
            "max-batch" => s.max_batch = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
        gst::debug!(CAT, imp = self, "set {} from {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => crate::props::path_value(&s.model),
            "threads" => s.threads.to_value(),
            "reembed-interval" => s.reembed_interval.to_value(),
            "min-face-size" => s.min_face_size.to_value(),
            "min-quality" => s.min_quality.to_value(),
            "max-batch" => s.max_batch.to_value(),
            "stats" => {
                let st = *self.stats.lock().unwrap();
                gst::Structure::builder("faceembedder-stats")
                    .field("frames", st.frames)
                    .field("faces", st.faces)
                    .field("descriptors", st.descriptors)
                    .field("inferences", st.inferences)
                    .field("reused", st.reused)
                    .field("gated", st.gated)
                    .field("inference-time-us", st.inference_ns / 1000)
                    .build()
                    .to_value()
            }
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for FaceEmbedder {}

impl ElementImpl for FaceEmbedder {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face embedder",
                "Filter/Analyzer/Video",
                "Computes a descriptor for each face that facedetector found (aligned chip warped from \
                 the frame, one batched inference per frame, reused along each track) and adds it to \
                 the face's region-of-interest metadata; video passes through unchanged",
                "facewatch developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(|| crate::props::pad_templates(&video::raw_caps()));
        TEMPLATES.as_ref()
    }
}

/// What the embedder decided for one face of the frame.
struct Plan {
    index: u32,
    track: u64,
    size: f32,
    quality: f32,
    /// Gets a new descriptor (its chip is in `State::chips`, in plan order).
    embed: bool,
}

impl BaseTransformImpl for FaceEmbedder {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let spec = ModelSpec::resolve(
            settings.model.as_deref(),
            DEFAULT_MODEL_FILE,
            Task::Embedder,
        )
        .map_err(|e| model_error(&e))?;
        gst::info!(CAT, imp = self, "loading {}", spec.model_path.display());
        let embedder = Embedder::new(spec, settings.threads).map_err(|e| runtime_error(&e))?;
        gst::info!(CAT, imp = self, "model id {}", embedder.model_id());
        *self.stats.lock().unwrap() = Stats::default();
        *self.state.lock().unwrap() = Some(State {
            embedder,
            input: None,
            cache: DescriptorCache::new(policy(settings.reembed_interval)),
            chips: Vec::new(),
            warned_no_meta: false,
            stats: Stats::default(),
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.state.lock().unwrap().take();
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view()
            && let Some(state) = self.state.lock().unwrap().as_mut()
        {
            state.cache.clear();
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings.lock().unwrap().live();
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let Some(input) = state.input.clone() else {
            return Err(gst::FlowError::NotNegotiated);
        };
        let frame_no = state.stats.frames;
        state.stats.frames += 1;
        let Some(frame_info) = meta::frame_info(buf) else {
            if !state.warned_no_meta {
                state.warned_no_meta = true;
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    ("Frames without facedetector metadata pass through untouched: put facedetector before faceembedder")
                );
            }
            return Ok(gst::FlowSuccess::Ok);
        };
        state.cache.set_policy(policy(settings.reembed_interval));
        let faces = meta::faces(buf);

        // Chips and quality for every face; keep the chips of those that need a new descriptor.
        let State {
            embedder,
            cache,
            chips,
            stats,
            ..
        } = state;
        let len = embedder.chip_len();
        let plans = input
            .with_frame(buf, |view| {
                let mut plans = Vec::with_capacity(faces.len());
                let mut n = 0;
                for f in &faces {
                    chips.resize((n + 1) * len, 0.0);
                    let size = eye_distance(&f.landmarks);
                    let quality = embedder
                        .chip(view, &f.landmarks, &mut chips[n * len..(n + 1) * len])
                        .unwrap_or(0.0);
                    let eligible =
                        size >= settings.min_face_size as f32 && quality >= settings.min_quality;
                    // Only on frames the detector ran on: elsewhere the landmarks are the tracker's
                    // prediction, good for a box, not for an aligned chip.
                    let embed = frame_info.detected
                        && eligible
                        && cache.needs(f.track_id, frame_no, size, quality);
                    n += embed as usize;
                    stats.gated += !eligible as u64;
                    plans.push(Plan {
                        index: f.index,
                        track: f.track_id,
                        size,
                        quality,
                        embed,
                    });
                }
                chips.truncate(n * len);
                plans
            })
            .map_err(|m| {
                self.post_error_message(m);
                gst::FlowError::Error
            })?;

        let n = plans.iter().filter(|p| p.embed).count();
        let mut fresh = Vec::new();
        if n > 0 {
            let t0 = Instant::now();
            let max_batch = settings.max_batch as usize;
            fresh = embedder.embed_batches(chips, n, max_batch).map_err(|e| {
                self.post_error_message(runtime_error(&e));
                gst::FlowError::Error
            })?;
            stats.inference_ns += t0.elapsed().as_nanos() as u64;
            stats.inferences += if max_batch == 0 {
                1
            } else {
                n.div_ceil(max_batch)
            } as u64;
            stats.descriptors += n as u64;
        }
        let mut fresh = fresh.into_iter();
        let model_id = embedder.model_id().to_string();
        let mut out = Vec::with_capacity(plans.len());
        for p in &plans {
            let vector = if p.embed {
                let d = fresh.next();
                if let Some(d) = &d {
                    cache.store(p.track, frame_no, p.size, p.quality, d.clone());
                }
                d
            } else {
                let cached = cache.touch(p.track, frame_no).map(|e| e.descriptor.clone());
                stats.reused += cached.is_some() as u64;
                cached
            };
            out.push((
                p.index,
                Embedding {
                    quality: p.quality,
                    model_id: model_id.clone(),
                    vector,
                    fresh: p.embed,
                },
            ));
        }
        cache.prune(frame_no);
        stats.faces += plans.len() as u64;
        *self.stats.lock().unwrap() = *stats;
        drop(guard);

        gst::trace!(CAT, imp = self, "{} faces, {n} new descriptors", out.len());
        for (index, e) in &out {
            meta::set_embedding(buf, *index, e);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

fn policy(interval: u32) -> Policy {
    Policy {
        interval,
        ..Policy::default()
    }
}

impl VideoFilterImpl for FaceEmbedder {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        _out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let Some(input) = video::Input::new(in_info) else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                (
                    "Unsupported video format {:?} (caps {incaps})",
                    in_info.format()
                )
            );
            return Err(gst::loggable_error!(CAT, "unsupported format"));
        };
        let mut guard = self.state.lock().unwrap();
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        state.input = Some(input);
        Ok(())
    }
}
