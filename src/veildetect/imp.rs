// SPDX-License-Identifier: MIT
//! veildetect implementation: properties, caps and the streaming glue. Detection itself lives in
//! `engine::detector`.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use crate::element;
use crate::engine::detector::{DetectParams, Detector, StageTimes};
use crate::engine::manifest::Task;
use crate::engine::scene::SceneCut;
use crate::engine::track::{Plan, RunReason, Schedule, TrackEvent, Tracker, TrackerConfig};
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
/// However late the frames, the model runs at least once in this many frames (the analysis must
/// not stop: a frame can look late for reasons no skip cures, e.g. a constant offset upstream).
/// Two seconds at 30 fps: rare enough that many cameras sharing one model can still each skip
/// enough to keep up (every forced run blocks its camera for the others' turns too).
const MAX_SKIPS_IN_A_ROW: u64 = 60;
/// Frames without a model run after which a camera waits one `max-lateness` longer for a busy
/// shared model (see `process`).
const AGING: u64 = 4;

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
    "threads" => threads,
    "post-messages" => post_messages,
});

/// What the streaming thread reads of the settings on every frame (a copy: no allocation).
#[derive(Debug, Clone, Copy)]
struct Live {
    /// The detector's parameters, its threshold the lower of `threshold` and `track-threshold`.
    params: DetectParams,
    /// `threshold`: a face scoring under it only continues a track.
    start_score: f32,
    inference_size: u32,
    interval: u32,
    max_lateness: u32,
    post_messages: bool,
}

impl Settings {
    fn live(&self) -> Live {
        Live {
            params: self.params(),
            start_score: self.threshold,
            inference_size: self.inference_size,
            interval: self.interval,
            max_lateness: self.max_lateness,
            post_messages: self.post_messages,
        }
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
    frames: u64,
    inferences: u64,
    region_frames: u64,
    regions: u64,
    cuts: u64,
    skipped: u64,
    faces: u64,
    inference_ns: u64,
    stages: StageTimes,
    track_ns: u64,
}

impl element::Stats for Stats {
    fn structure(&self) -> gst::Structure {
        let us = |ns: u64| ns / 1000;
        gst::Structure::builder("veildetect-stats")
            .field("frames", self.frames)
            .field("inferences", self.inferences)
            .field("region-inferences", self.region_frames)
            .field("regions", self.regions)
            .field("scene-cuts", self.cuts)
            .field("skipped", self.skipped)
            .field("faces", self.faces)
            .field("inference-time-us", us(self.inference_ns))
            .field("tensor-time-us", us(self.stages.tensor_ns))
            .field("wait-time-us", us(self.stages.wait_ns))
            .field("model-time-us", us(self.stages.model_ns))
            .field("decode-time-us", us(self.stages.decode_ns))
            .field("track-time-us", us(self.track_ns))
            .build()
    }
}

pub struct State {
    detector: Detector,
    /// Gives faces their track ids and carries them over the frames the model skips.
    tracker: Tracker,
    /// Frame number of the last model run.
    last_run: Option<u64>,
    /// Frame number of the last model run over the whole frame.
    last_full: Option<u64>,
    /// Tells a new scene from motion: the tracks of before are then forgotten.
    cut: SceneCut,
    /// Whether upstream is live, and then its latency (asked once, at the first frame): a live
    /// frame is late when it arrives more than that latency after its running time.
    live: Option<Option<gst::ClockTime>>,
    stats: Stats,
}

impl element::Running for State {
    type Stats = Stats;

    fn flush(&mut self) {
        // After a seek the faces of before are elsewhere.
        self.tracker.reset();
        self.last_run = None;
        self.last_full = None;
        self.cut.reset();
    }

    fn input_changed(&mut self, old: Option<&video::Input>, new: &video::Input) {
        if let Some(old) = old
            && (old.info.width(), old.info.height()) != (new.info.width(), new.info.height())
        {
            // Boxes carried from the old size would be wrong on the new one.
            self.tracker.reset();
            self.last_full = None;
            self.cut.reset();
        }
    }

    fn stats(&self) -> Stats {
        self.stats
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
                        "Minimum detector score for a face that continues a tracked face \
                         (hysteresis): a face whose score dips under 'threshold' for a while \
                         (half out of the frame, turning away, blurred) keeps its box and track id; \
                         a face scoring under 'threshold' never starts a track. At or above \
                         'threshold': no hysteresis",
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
                        "Longest side of the model's input tensor in pixels, rounded to the model's size \
                         multiple (32 for CenterFace); the other side follows the frame's aspect ratio. \
                         0 = the manifest's default. Larger finds smaller faces, costs more time",
                    )
                    .maximum(8192)
                    .default_value(DEFAULT_INFERENCE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb(
                        "Run the model on one frame in N (1 = every frame); on the frames in between the \
                         tracker moves the faces of the last analysed frame along their motion. \
                         0 = adaptive: the whole frame every 3rd frame (faces that enter are found \
                         there); in between, each face as often as it needs (every frame while it is \
                         new, every 2nd while uncertain or moving at the frame's edge, before its \
                         carried box could drift off it), by a run over that face and its \
                         surroundings only, not the whole frame; so is, on the next frame, a full \
                         run's weak face (between track-threshold and threshold)",
                    )
                    .minimum(0)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-lateness")
                    .nick("Maximum lateness")
                    .blurb(
                        "On a live source, a frame that reaches this element more than this many \
                         milliseconds late, or while the model (shared by the process's cameras) \
                         is busy for longer than that, gets no model run (the tracker carries the \
                         faces, the next frame is tried; the model still runs at least once in 60 \
                         frames): the analysis keeps up with the video instead of slowing it. \
                         Counted in stats 'skipped'. 0 = never skip",
                    )
                    .default_value(DEFAULT_MAX_LATENESS)
                    .mutable_playing()
                    .build(),
                crate::props::threads("for this element"),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb(
                        "Post a 'veildetect' element message for every frame: timestamp, stream-time, \
                         running-time, duration and 'faces', a list of 'face' structures (x, y, width, \
                         height, score, landmarks, index, track-id), like OpenCV's facedetect",
                    )
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                crate::props::stats(
                    "frames, inferences (frames the model ran on), region-inferences (those of \
                     them it ran on regions around faces only, interval=0), regions (model runs \
                     on regions), scene-cuts (frames showing another scene than the one before: \
                     the tracks are forgotten and the whole frame analysed), skipped (model runs left out \
                     because the frame was late on a live source, see max-lateness), faces \
                     (attached, over all frames), inference-time-us (all of the detection), and \
                     its parts: tensor-time-us (frame to model input), wait-time-us (for the \
                     model while other elements of the process use it), model-time-us, \
                     decode-time-us (heatmap decode and NMS); track-time-us (the tracker)",
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
            detector,
            tracker: Tracker::new(TrackerConfig::default()),
            last_run: None,
            last_full: None,
            cut: SceneCut::default(),
            live: None,
            stats: Stats::default(),
        })
    }

    fn process(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.base.live(Settings::live);
        if self.base.peek(|s| s.is_some_and(|s| s.live.is_none())) {
            let live = self.upstream_latency();
            gst::debug!(CAT, imp = self, "upstream live with latency: {live:?}");
            self.base.with_state(|s| {
                s.live = Some(live);
                Ok(())
            })?;
        }
        let late = self.lateness(buf);
        let (frame_no, run, faces) = self.base.with_frame_state(|state, input| {
            let frame_no = state.stats.frames;
            let (fw, fh) = (input.info.width() as f32, input.info.height() as f32);
            // Another scene: the faces of before are not on this frame, whoever stands where they
            // stood. Forget them and look at the whole frame now.
            let cut = &mut state.cut;
            let new_scene = input
                .with_frame(buf, |view| cut.observe(view))
                .map_err(|m| element::fail(self, m))?;
            let share = 100.0 * cut.share();
            gst::trace!(CAT, imp = self, "frame {frame_no}: {share:.0} % of the grid changed");
            if new_scene {
                gst::debug!(
                    CAT,
                    imp = self,
                    "frame {frame_no}: scene cut ({share:.0} % of the grid changed), tracks forgotten"
                );
                state.stats.cuts += 1;
                state.tracker.reset();
                state.last_run = None;
                state.last_full = None;
            }
            let plan = match settings.interval {
                0 => {
                    let plan =
                        state
                            .tracker
                            .plan(frame_no, state.last_full, fw, fh, &Schedule::default());
                    gst::trace!(CAT, imp = self, "frame {frame_no}: schedule {plan:?}");
                    plan
                }
                n => state
                    .last_run
                    .is_none_or(|l| frame_no.saturating_sub(l) >= n as u64)
                    .then_some(Plan::Full(RunReason::Due)),
            };
            let due = plan.is_some();
            let most_apart = match settings.interval {
                0 => Schedule::default().max_interval,
                n => n,
            };
            // Late past the source's own latency (only a live source can be late).
            let late = match state.live {
                Some(Some(latency)) => late.and_then(|l| l.checked_sub(latency)),
                _ => None,
            };
            let overdue = state.last_run.is_some_and(|l| {
                frame_no.saturating_sub(l) >= most_apart as u64 + MAX_SKIPS_IN_A_ROW
            });
            // On a live source, a frame is also skipped when the model is busy with other
            // cameras' frames for longer than the lateness allowed: waiting would make this
            // camera's video late (a fair share: whoever finds the queue short gets a run).
            let max_late = gst::ClockTime::from_mseconds(settings.max_lateness as u64);
            let wait = match state.live {
                Some(Some(_)) => Some(state.detector.expected_wait()),
                _ => None,
            };
            // The longer since this camera's last run, the longer it is willing to wait: every
            // camera ages alike, so each gets its share however their frames are in step.
            let since = state.last_run.map_or(0, |l| frame_no.saturating_sub(l));
            let patience = std::time::Duration::from(max_late) * (1 + (since / AGING) as u32);
            let skip = due
                && !overdue
                && settings.max_lateness > 0
                && (late.is_some_and(|l| l > max_late) || wait.is_some_and(|w| w > patience));
            if skip {
                state.stats.skipped += 1;
                gst::log!(
                    CAT,
                    imp = self,
                    "frame {frame_no}: {late:?} late, model busy for {wait:?}: model run skipped"
                );
            }
            let run = due && !skip;
            if run {
                state.last_run = Some(frame_no);
            }
            let (tracked, detected) = if let Some(plan) = plan.filter(|_| run) {
                state.detector.set_inference_size(settings.inference_size);
                let (w, h) = (input.info.width() as usize, input.info.height() as usize);
                // Regions where the schedule asks for them and they cost less than the frame.
                let regions = match &plan {
                    Plan::Regions(_, want) => state.detector.regions(w, h, want),
                    Plan::Full(_) => None,
                };
                let t0 = Instant::now();
                let detector = &mut state.detector;
                let params = &settings.params;
                let dets = input
                    .with_frame(buf, |view| match &regions {
                        Some(r) => detector.detect_regions(view, r, params),
                        None => detector.detect(view, params),
                    })
                    .map_err(|m| element::fail(self, m))?
                    .map_err(|e| element::fail_run(self, &e))?;
                state.stats.inferences += 1;
                state.stats.inference_ns += t0.elapsed().as_nanos() as u64;
                state.stats.stages = state.detector.times();
                let t_track = Instant::now();
                state.tracker.set_start_score(settings.start_score);
                let tracked = match &regions {
                    Some(r) => {
                        state.stats.region_frames += 1;
                        state.stats.regions += r.len() as u64;
                        let rects: Vec<_> = r.iter().map(|r| r.rect).collect();
                        state.tracker.update_regions(frame_no, dets, &rects)
                    }
                    None => {
                        state.last_full = Some(frame_no);
                        state.tracker.update(frame_no, dets)
                    }
                };
                state.stats.track_ns += t_track.elapsed().as_nanos() as u64;
                let detected = state.tracker.detected();
                for ev in state.tracker.events() {
                    match ev {
                        TrackEvent::Started(id) => {
                            gst::debug!(CAT, imp = self, "frame {frame_no}: new track {id}")
                        }
                        TrackEvent::Lost(id) => {
                            gst::debug!(CAT, imp = self, "frame {frame_no}: track {id} lost")
                        }
                    }
                }
                (tracked, detected)
            } else {
                let t_track = Instant::now();
                let carried = state.tracker.predict(frame_no);
                state.stats.track_ns += t_track.elapsed().as_nanos() as u64;
                (carried, 0)
            };
            state.stats.frames += 1;
            let (w, h) = (input.info.width(), input.info.height());
            let faces: Vec<Face> = tracked
                .iter()
                .enumerate()
                .filter_map(|(i, (id, d))| Face::from_detection(0, *id, d, i < detected, w, h))
                .enumerate()
                .map(|(i, f)| Face {
                    index: i as u32,
                    ..f
                })
                .collect();
            state.stats.faces += faces.len() as u64;
            Ok((frame_no, run, faces))
        })?;

        gst::trace!(CAT, imp = self, "{} faces (model ran: {run})", faces.len());
        meta::set_frame_info(
            buf,
            &meta::FrameInfo {
                frame: frame_no,
                detected: run,
                faces: faces.len() as u32,
            },
        );
        for f in &faces {
            meta::add_face(buf, f);
        }
        if settings.post_messages {
            self.post_faces_message(buf, &faces);
        }
        Ok(gst::FlowSuccess::Ok)
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
