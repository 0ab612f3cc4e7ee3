// SPDX-License-Identifier: MIT
//! veildetect implementation: properties, caps and the streaming glue. The per-frame decisions
//! (scene cut, schedule, skips, regions, tracking) live in `engine::detect_step`, the model run in
//! `engine::detector`.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use crate::element;
use crate::engine::detect_step::{Config, Counts, DetectStep, FrameIn, Gated, Note};
use crate::engine::detector::{DetectParams, Detector};
use crate::engine::manifest::Task;
use crate::engine::track::TrackEvent;
use crate::meta::{self, Face};
use crate::video;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "veildetect",
        gst::DebugColorFlags::empty(),
        Some("faceveil face detector"),
    )
});

const DEFAULT_THRESHOLD: f32 = 0.5;
const DEFAULT_TRACK_THRESHOLD: f32 = 0.3;
const DEFAULT_NMS_IOU: f32 = 0.3;
const DEFAULT_MIN_FACE_SIZE: u32 = 0;
const DEFAULT_MAX_FACES: u32 = 0;
const DEFAULT_INFERENCE_SIZE: u32 = 640;
const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_POST_MESSAGES: bool = false;
const DEFAULT_MAX_LATENESS: u32 = 100;
const DEFAULT_IDLE_INTERVAL: u32 = 2000;

#[derive(Debug, Clone)]
pub struct Settings {
    model: Option<PathBuf>,
    threshold: f32,
    track_threshold: f32,
    nms_iou: f32,
    min_face_size: u32,
    max_faces: u32,
    inference_size: u32,
    interval: u32,
    max_lateness: u32,
    idle_interval: u32,
    threads: u32,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: None,
            threshold: DEFAULT_THRESHOLD,
            track_threshold: DEFAULT_TRACK_THRESHOLD,
            nms_iou: DEFAULT_NMS_IOU,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            max_faces: DEFAULT_MAX_FACES,
            inference_size: DEFAULT_INFERENCE_SIZE,
            interval: DEFAULT_INTERVAL,
            max_lateness: DEFAULT_MAX_LATENESS,
            idle_interval: DEFAULT_IDLE_INTERVAL,
            threads: 0,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

crate::props::settings_properties!(Settings {
    "model" => model,
    "threshold" => threshold,
    "track-threshold" => track_threshold,
    "nms-iou" => nms_iou,
    "min-face-size" => min_face_size,
    "max-faces" => max_faces,
    "inference-size" => inference_size,
    "interval" => interval,
    "max-lateness" => max_lateness,
    "idle-interval" => idle_interval,
    "threads" => threads,
    "post-messages" => post_messages,
});

impl Settings {
    /// What the streaming thread reads of the settings on every frame (a copy: no allocation).
    fn live(&self) -> (Config, bool) {
        let config = Config {
            params: self.params(),
            start_score: self.threshold,
            inference_size: self.inference_size,
            interval: self.interval,
            max_lateness: Duration::from_millis(self.max_lateness as u64),
            idle_interval: Duration::from_millis(self.idle_interval as u64),
        };
        (config, self.post_messages)
    }

    fn params(&self) -> DetectParams {
        DetectParams {
            threshold: self.threshold.min(self.track_threshold),
            nms_iou: self.nms_iou,
            min_face_size: self.min_face_size as f32,
            max_faces: self.max_faces as usize,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    counts: Counts,
    /// Faces attached, over all frames.
    faces: u64,
}

impl element::Stats for Stats {
    fn structure(&self) -> gst::Structure {
        let us = |ns: u64| ns / 1000;
        let c = &self.counts;
        gst::Structure::builder("veildetect-stats")
            .field("frames", c.frames)
            .field("inferences", c.inferences)
            .field("region-inferences", c.region_frames)
            .field("regions", c.regions)
            .field("scene-cuts", c.cuts)
            .field("skipped", c.skipped)
            .field("faces", self.faces)
            .field("inference-time-us", us(c.inference_ns))
            .field("tensor-time-us", us(c.stages.tensor_ns))
            .field("wait-time-us", us(c.stages.wait_ns))
            .field("model-time-us", us(c.stages.model_ns))
            .field("decode-time-us", us(c.stages.decode_ns))
            .field("track-time-us", us(c.track_ns))
            .field("cover-whole", c.cover_whole)
            .field("cover-grown", c.cover_grown)
            .field("cover-unseen", c.cover_unseen)
            .field("gated-still", c.gated_still)
            .field("gated-forced", c.gated_forced)
            .field("motion-runs", c.motion_runs)
            .build()
    }
}

pub struct State {
    step: DetectStep,
    /// Whether upstream is live, and then its latency (asked once, at the first frame): a live
    /// frame is late when it arrives more than that latency after its running time.
    live: Option<Option<gst::ClockTime>>,
    faces: u64,
    /// When each track was first seen (GStreamer analytics tracking entries).
    track_times: meta::TrackTimes,
}

impl element::Running for State {
    type Stats = Stats;

    fn flush(&mut self) {
        self.step.flush();
    }

    fn input_changed(&mut self, old: Option<&video::Input>, new: &video::Input) {
        if let Some(old) = old
            && (old.info.width(), old.info.height()) != (new.info.width(), new.info.height())
        {
            self.step.resized();
        }
    }

    fn stats(&self) -> Stats {
        Stats {
            counts: self.step.counts(),
            faces: self.faces,
        }
    }
}

#[derive(Default)]
pub struct VeilDetect {
    base: element::Base<Settings, State>,
}

#[glib::object_subclass]
impl ObjectSubclass for VeilDetect {
    const NAME: &'static str = "GstVeilDetect";
    type Type = super::VeilDetect;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for VeilDetect {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                crate::props::model(Task::Detector, ""),
                glib::ParamSpecFloat::builder("threshold")
                    .nick("Threshold")
                    .blurb("Minimum detector score for a face")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("track-threshold")
                    .nick("Track threshold")
                    .blurb(
                        "Minimum detector score for a face that continues a track but starts none \
                         (hysteresis, off at or above 'threshold'; see docs/METADATA.md)",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_TRACK_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("nms-iou")
                    .nick("NMS IoU")
                    .blurb("Overlap (intersection over union) above which the weaker of two faces is dropped")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_NMS_IOU)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Drop faces whose box is smaller than this many frame pixels on its shorter side (0 = keep all)")
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-faces")
                    .nick("Maximum faces")
                    .blurb("Keep at most this many faces per frame, the highest scoring (0 = no limit)")
                    .default_value(DEFAULT_MAX_FACES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("inference-size")
                    .nick("Inference size")
                    .blurb(
                        "Longest side of the model's input in pixels, rounded to the model's size \
                         multiple (0 = the manifest's default; larger finds smaller faces, costs more)",
                    )
                    .maximum(8192)
                    .default_value(DEFAULT_INFERENCE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb(
                        "Run the model on one frame in N, the tracker carrying the faces in between \
                         (1 = every frame; 0 = adaptive, see docs/METADATA.md)",
                    )
                    .minimum(0)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-lateness")
                    .nick("Maximum lateness")
                    .blurb(
                        "On a live source, skip the model on frames more than this many milliseconds \
                         late or while the shared model is busy longer (0 = never; see docs/METADATA.md)",
                    )
                    .default_value(DEFAULT_MAX_LATENESS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("idle-interval")
                    .nick("Idle interval")
                    .blurb(
                        "Motion gating: while no face is tracked, run the model only where the \
                         picture changed since the last run, and on a still picture over the whole \
                         frame once this many milliseconds of stream time after the last such run \
                         (0 = off: every run the schedule asks for; see docs/METADATA.md)",
                    )
                    .default_value(DEFAULT_IDLE_INTERVAL)
                    .mutable_playing()
                    .build(),
                crate::props::threads("for this element"),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb(
                        "Post a 'veildetect' element message with the faces of every frame, like \
                         OpenCV's facedetect (see docs/METADATA.md)",
                    )
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                crate::props::stats(
                    "frames, inferences, region-inferences, regions, scene-cuts, skipped, faces, \
                     inference-, tensor-, wait-, model-, decode- and track-time-us, and \
                     cover-whole, cover-grown, cover-unseen, gated-still, gated-forced and \
                     motion-runs (see docs/METADATA.md)",
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

impl GstObjectImpl for VeilDetect {}

impl ElementImpl for VeilDetect {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face detector",
                "Filter/Analyzer/Video",
                "Finds faces and their landmarks and attaches them as GstVideoRegionOfInterestMeta \
                 (roi_type 'face'); video passes through unchanged",
                "faceveil developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        video::pad_templates()
    }
}

element::in_place_filter!(VeilDetect, video CAT);

impl element::Filter for VeilDetect {
    type State = State;

    fn open(&self) -> Result<State, gst::ErrorMessage> {
        let settings = self.base.settings();
        let detector = element::load_model(
            self,
            *CAT,
            settings.model.as_deref(),
            Task::Detector,
            |spec| Detector::new(spec, settings.threads, settings.inference_size),
        )?;
        Ok(State {
            step: DetectStep::new(detector),
            live: None,
            faces: 0,
            track_times: meta::TrackTimes::default(),
        })
    }

    fn process(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (config, post_messages) = self.base.live(Settings::live);
        if self.base.peek(|s| s.is_some_and(|s| s.live.is_none())) {
            let live = self.upstream_latency();
            gst::debug!(CAT, imp = self, "upstream live with latency: {live:?}");
            self.base.with_state(|s| {
                s.live = Some(live);
                Ok(())
            })?;
        }
        let late = self.lateness(buf);
        // Motion gating counts stream time; a buffer without a time is not gated.
        let time = {
            let (_, stream) = element::buffer_times(self, buf);
            stream.or(buf.pts()).map(Duration::from)
        };
        let live = self
            .base
            .peek(|s| s.is_some_and(|s| matches!(s.live, Some(Some(_)))));
        let cover_wanted = live && self.cover_wanted();
        let (out, faces, cover) = self.base.with_frame_state(|state, input| {
            // Late past the source's own latency, and the shared model's queue: only a live
            // source can be late.
            let (late, wait) = match state.live {
                Some(Some(latency)) => (
                    late.and_then(|l| l.checked_sub(latency))
                        .map(Duration::from),
                    Some(state.step.model().expected_wait()),
                ),
                _ => (None, None),
            };
            let step = &mut state.step;
            let out = input
                .with_frame(buf, |view| {
                    let frame = FrameIn {
                        view,
                        late,
                        wait,
                        cover: cover_wanted,
                        time,
                    };
                    step.process(&frame, &config, |n, note| log_note(self, n, note))
                })
                .map_err(|m| element::fail(self, m))?
                .map_err(|e| element::fail_run(self, &e))?;
            let (w, h) = (input.info.width(), input.info.height());
            let faces: Vec<Face> = out
                .faces
                .iter()
                .enumerate()
                .filter_map(|(i, (id, d))| Face::from_detection(0, *id, d, i < out.detected, w, h))
                .enumerate()
                .map(|(i, f)| Face {
                    index: i as u32,
                    ..f
                })
                .collect();
            state.faces += faces.len() as u64;
            let clamp = |r: &Vec<_>| -> Vec<_> {
                r.iter().filter_map(|r| meta::clamp_rect(r, w, h)).collect()
            };
            let cover = out.cover.as_ref().map(|c| meta::FrameCover {
                full: c.full,
                whole: c.whole,
                grown: clamp(&c.grown),
                unseen: clamp(&c.unseen),
            });
            Ok((out, faces, cover))
        })?;

        gst::trace!(
            CAT,
            imp = self,
            "{} faces (model ran: {})",
            faces.len(),
            out.ran
        );
        meta::set_frame_info(
            buf,
            &meta::FrameInfo {
                frame: out.number,
                detected: out.ran,
                faces: faces.len() as u32,
            },
        );
        if let Some(cover) = &cover {
            meta::set_frame_cover(buf, cover);
        }
        let mut faces = faces;
        self.base.with_state(|state| {
            meta::add_detected_faces(buf, &mut faces, &mut state.track_times);
            Ok(())
        })?;
        if post_messages {
            self.post_faces_message(buf, &faces);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

/// The step's decisions under this element's category (no face data).
fn log_note(imp: &VeilDetect, frame: u64, note: Note<'_>) {
    match note {
        Note::Scene { share, cut } => {
            let share = 100.0 * share;
            gst::trace!(
                CAT,
                imp = imp,
                "frame {frame}: {share:.0} % of the grid changed"
            );
            if cut {
                gst::debug!(
                    CAT,
                    imp = imp,
                    "frame {frame}: scene cut ({share:.0} % of the grid changed), tracks forgotten"
                );
            }
        }
        Note::Schedule(plan) => gst::trace!(CAT, imp = imp, "frame {frame}: schedule {plan:?}"),
        Note::Skipped { late, wait } => gst::log!(
            CAT,
            imp = imp,
            "frame {frame}: {late:?} late, model busy for {wait:?}: model run skipped"
        ),
        Note::Gate { share, gated } => {
            let share = 100.0 * share;
            let (what, parts) = match gated {
                Gated::Still => ("still picture, model run left out", 0),
                Gated::Forced => ("still picture, idle interval passed: full-frame run", 0),
                Gated::Moved(0) => ("motion: full-frame run", 0),
                Gated::Moved(n) => ("motion: run over regions", n),
                Gated::Global => ("most of the picture changed: full-frame run", 0),
            };
            gst::log!(
                CAT,
                imp = imp,
                "frame {frame}: no tracked face, {share:.0} % of the gate's grid changed: {what} ({parts})"
            );
        }
        Note::Track(TrackEvent::Started(id)) => {
            gst::debug!(CAT, imp = imp, "frame {frame}: new track {id}")
        }
        Note::Track(TrackEvent::Lost(id)) => {
            gst::debug!(CAT, imp = imp, "frame {frame}: track {id} lost")
        }
    }
}

impl VeilDetect {
    /// The latency of a live source upstream; `None` when it is not live (a latency query).
    fn upstream_latency(&self) -> Option<gst::ClockTime> {
        let mut q = gst::query::Latency::new();
        let pad = self.obj().static_pad("sink").expect("sink pad");
        if !pad.peer_query(&mut q) {
            return None;
        }
        let (live, min, _) = q.result();
        live.then_some(min)
    }

    /// Whether a redactor downstream wants the cover of live frames (it answers
    /// [`meta::COVER_QUERY`]); asked on every live frame, so that a redactor whose mode changes
    /// is heard at once.
    fn cover_wanted(&self) -> bool {
        let mut q = gst::query::Custom::new(gst::Structure::new_empty(meta::COVER_QUERY));
        self.obj()
            .static_pad("src")
            .is_some_and(|pad| pad.peer_query(&mut q))
    }

    /// How late `buf` reaches this element: the clock's running time now minus the buffer's.
    fn lateness(&self, buf: &gst::BufferRef) -> Option<gst::ClockTime> {
        let obj = self.obj();
        let now = obj.clock()?.time().checked_sub(obj.base_time()?)?;
        let (running, _) = element::buffer_times(self, buf);
        now.checked_sub(running?)
    }

    fn post_faces_message(&self, buf: &gst::BufferRef, faces: &[Face]) {
        let obj = self.obj();
        let (running, stream) = element::buffer_times(self, buf);
        let pts = buf.pts();
        let list = gst::List::new(faces.iter().map(|f| f.message_structure()));
        let s = gst::Structure::builder("veildetect")
            .field("timestamp", pts)
            .field("stream-time", stream)
            .field("running-time", running)
            .field("duration", buf.duration())
            .field("faces", list)
            .build();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }
}
