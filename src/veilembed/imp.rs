// SPDX-License-Identifier: MIT
//! veilembed implementation: properties, caps and the streaming glue. Alignment, chips, quality
//! and inference live in `engine::embedder`; the per-track re-embedding decisions in `engine::reembed`.

use std::path::PathBuf;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use crate::element;
use crate::engine::embed_step::{Counts, Decision, FaceIn, FrameEmbedder, FrameIn, Gates};
use crate::engine::embedder::Embedder;
use crate::engine::manifest::Task;
use crate::meta::{self, Embedding};
use crate::video;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "veilembed",
        gst::DebugColorFlags::empty(),
        Some("faceveil face embedder"),
    )
});

const DEFAULT_REEMBED_INTERVAL: u32 = 10;
const DEFAULT_MIN_EYE_DISTANCE: u32 = 16;
const DEFAULT_MIN_QUALITY: f32 = 0.15;
const DEFAULT_MAX_BATCH: u32 = 8;
const DEFAULT_VERIFY_IDENTIFIED: bool = false;

#[derive(Debug, Clone)]
pub struct Settings {
    model: Option<PathBuf>,
    threads: u32,
    reembed_interval: u32,
    min_eye_distance: u32,
    min_quality: f32,
    max_batch: u32,
    verify_identified: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: None,
            threads: 0,
            reembed_interval: DEFAULT_REEMBED_INTERVAL,
            min_eye_distance: DEFAULT_MIN_EYE_DISTANCE,
            min_quality: DEFAULT_MIN_QUALITY,
            max_batch: DEFAULT_MAX_BATCH,
            verify_identified: DEFAULT_VERIFY_IDENTIFIED,
        }
    }
}

crate::props::settings_properties!(Settings {
    "model" => model,
    "threads" => threads,
    "reembed-interval" => reembed_interval,
    "min-eye-distance" => min_eye_distance,
    "min-quality" => min_quality,
    "max-batch" => max_batch,
    "verify-identified" => verify_identified,
});

impl Settings {
    /// What the streaming thread reads of the settings on every frame (a copy: no allocation).
    fn gates(&self) -> Gates {
        Gates {
            min_eye_distance: self.min_eye_distance as f32,
            min_quality: self.min_quality,
            max_batch: self.max_batch as usize,
            reembed_interval: self.reembed_interval,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats(Counts);

impl element::Stats for Stats {
    fn structure(&self) -> gst::Structure {
        let c = &self.0;
        gst::Structure::builder("veilembed-stats")
            .field("frames", c.frames)
            .field("faces", c.faces)
            .field("descriptors", c.descriptors)
            .field("inferences", c.inferences)
            .field("reused", c.reused)
            .field("gated", c.gated)
            .field("inference-time-us", c.inference_ns / 1000)
            .field("shared-inferences", c.shared)
            .field("chips", c.chips)
            .field("chip-time-us", c.chip_ns / 1000)
            .build()
    }
}

pub struct State {
    embedder: FrameEmbedder,
    /// Frames seen, including those without veildetect metadata.
    frames: u64,
    warned_no_meta: bool,
    /// Tracks of another detector's untracked faces (`meta::adopt_foreign_faces`).
    foreign_tracks: meta::ForeignTracks,
}

impl element::Running for State {
    type Stats = Stats;

    fn flush(&mut self) {
        self.embedder.clear();
    }

    fn stats(&self) -> Stats {
        Stats(self.embedder.counts())
    }
}

#[derive(Default)]
pub struct VeilEmbed {
    base: element::Base<Settings, State>,
}

#[glib::object_subclass]
impl ObjectSubclass for VeilEmbed {
    const NAME: &'static str = "GstVeilEmbed";
    type Type = super::VeilEmbed;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for VeilEmbed {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                crate::props::model(Task::Embedder, ""),
                crate::props::threads("for this element"),
                glib::ParamSpecUInt::builder("reembed-interval")
                    .nick("Re-embed interval")
                    .blurb(
                        "Frames after which a tracked face gets a fresh descriptor (0 = once per track; see \
                         docs/METADATA.md for the other triggers)",
                    )
                    .default_value(DEFAULT_REEMBED_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-eye-distance")
                    .nick("Minimum eye distance")
                    .blurb("Faces whose eyes are closer than this many pixels get no descriptor")
                    .default_value(DEFAULT_MIN_EYE_DISTANCE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("min-quality")
                    .nick("Minimum quality")
                    .blurb(
                        "Faces under this quality (frontalness x sharpness, 0..1) get no new descriptor",
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
                glib::ParamSpecBoolean::builder("verify-identified")
                    .nick("Verify identified")
                    .blurb(
                        "Every detected face whose track veilmatch has identified gets a fresh \
                         descriptor on every frame, so that veilredact mode=unmatched can spare it \
                         (veilbin redact=unmatched sets it)",
                    )
                    .default_value(DEFAULT_VERIFY_IDENTIFIED)
                    .mutable_playing()
                    .build(),
                crate::props::stats(
                    "frames, faces, descriptors (computed), inferences \
                         (batched model runs), reused (descriptors carried from the track), gated \
                         (faces under min-eye-distance or min-quality), inference-time-us, \
                         shared-inferences (runs that also carried faces of other elements of \
                         the process: cameras that share the model are batched together), \
                         chips (chips warped from the frame: for a descriptor, or to measure a \
                         face's sharpness, which a track carries for 5 detected frames when it \
                         needs no descriptor), chip-time-us (their warping, quality and colour checks)",
                ),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.base.set_property(self, *CAT, value, pspec);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.base.property(pspec)
    }
}

impl GstObjectImpl for VeilEmbed {}

impl ElementImpl for VeilEmbed {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face embedder",
                "Filter/Analyzer/Video",
                "Computes a descriptor for each face that veildetect found (or, built with the \
                 analytics feature, another detector's GStreamer analytics 'face' entries; aligned \
                 chip warped from the frame, one batched inference per frame, reused along each \
                 track) and adds it to the face's region-of-interest metadata; video passes \
                 through unchanged",
                "faceveil developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        video::pad_templates()
    }
}

element::in_place_filter!(VeilEmbed, video CAT);

impl element::Filter for VeilEmbed {
    type State = State;

    fn open(&self) -> Result<State, gst::ErrorMessage> {
        let settings = self.base.settings();
        let embedder = element::load_model(
            self,
            *CAT,
            settings.model.as_deref(),
            Task::Embedder,
            |spec| Embedder::new(spec, settings.threads),
        )?;
        gst::info!(CAT, imp = self, "model id {}", embedder.model_id());
        Ok(State {
            embedder: FrameEmbedder::new(embedder),
            frames: 0,
            warned_no_meta: false,
            foreign_tracks: meta::ForeignTracks::default(),
        })
    }

    fn process(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (gates, verify) = self.base.live(|s| (s.gates(), s.verify_identified));
        if meta::frame_info(buf).is_none() {
            // Faces another detector described in GStreamer's analytics metadata.
            self.base.with_frame_state(|state, input| {
                let (w, h) = (input.info.width(), input.info.height());
                Ok(meta::adopt_foreign_faces(
                    buf,
                    w,
                    h,
                    &mut state.foreign_tracks,
                ))
            })?;
        }
        let Some(_) = meta::frame_info(buf) else {
            let warn = self.base.with_state(|state| {
                state.frames += 1;
                Ok(!std::mem::replace(&mut state.warned_no_meta, true))
            })?;
            if warn {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    ("Frames without veildetect metadata pass through untouched: put veildetect before veilembed")
                );
            }
            return Ok(gst::FlowSuccess::Ok);
        };
        let faces = meta::faces(buf);
        // The tracks veilmatch has identified up to the frame before (none without a veilmatch).
        let identified = if verify && !faces.is_empty() {
            self.identified_tracks()
        } else {
            Vec::new()
        };
        let (model_id, out) = self.base.with_frame_state(|state, input| {
            let frame_no = state.frames;
            state.frames += 1;
            let face_in: Vec<FaceIn> = faces
                .iter()
                .map(|f| FaceIn {
                    track: f.track_id,
                    landmarks: &f.landmarks,
                    detected: f.detected,
                    verify: identified.contains(&f.track_id),
                })
                .collect();
            let embedder = &mut state.embedder;
            let par = input.info.par();
            let par = par.numer() as f32 / par.denom().max(1) as f32;
            let out = input
                .with_frame(buf, |view| {
                    let frame = FrameIn {
                        view,
                        par,
                        number: frame_no,
                    };
                    embedder.process(&frame, &face_in, &gates, |track, d| {
                        log_decision(self, frame_no, track, d)
                    })
                })
                .map_err(|m| element::fail(self, m))?
                .map_err(|e| element::fail_run(self, &e))?;
            Ok((embedder.embedder().model_id().to_string(), out))
        })?;

        gst::trace!(CAT, imp = self, "{} faces", out.len());
        let embeddings: Vec<(u32, Embedding)> = faces
            .iter()
            .zip(out)
            .map(|(f, o)| {
                let e = Embedding {
                    quality: o.quality,
                    model_id: model_id.clone(),
                    vector: o.vector,
                    fresh: o.fresh,
                    grayscale: o.grayscale,
                };
                (f.index, e)
            })
            .collect();
        meta::set_embeddings(buf, &embeddings);
        Ok(gst::FlowSuccess::Ok)
    }
}

impl VeilEmbed {
    /// Asks downstream which tracks carry an identity (answered by a `veilmatch`).
    fn identified_tracks(&self) -> Vec<u64> {
        let mut q = meta::identified_query();
        let answered = self
            .obj()
            .static_pad("src")
            .is_some_and(|pad| pad.peer_query(&mut q));
        if answered {
            meta::identified_tracks(&q)
        } else {
            Vec::new()
        }
    }
}

/// The per-face decisions under this element's category (no descriptor, no identity).
fn log_decision(imp: &VeilEmbed, frame: u64, track: u64, d: Decision) {
    match d {
        Decision::Gated {
            eye_distance,
            quality,
        } => gst::log!(
            CAT,
            imp = imp,
            "frame {frame} track {track}: gated (eye distance {eye_distance:.1}, quality {quality:.2})"
        ),
        Decision::Embed(reason) => {
            gst::debug!(
                CAT,
                imp = imp,
                "frame {frame} track {track}: new descriptor ({reason:?})"
            )
        }
        Decision::Reuse(had) => gst::log!(
            CAT,
            imp = imp,
            "frame {frame} track {track}: {}",
            if had {
                "descriptor reused"
            } else {
                "no descriptor yet"
            }
        ),
    }
}
