// SPDX-License-Identifier: MIT
//! The per-frame work of `veildetect`, GStreamer-free: on each frame, tell a scene cut from motion
//! (`engine::scene`), ask the schedule whether the model runs (every `interval` frames, or the
//! adaptive schedule of `engine::track`), leave the run out when the frame is late or the shared
//! model busy, run it over the whole frame or over regions around the tracks, and hand the
//! detections to the tracker (hysteresis, track ids), or let the tracker carry the faces. On a live
//! source it also says what a redactor must cover besides the faces found (`engine::cover`): a
//! frame late enough to go without a run must not let a face out in the clear. The element maps
//! the frame, measures lateness and the model's queue, and calls [`DetectStep::process`].
//!
//! Motion gating (`idle_interval`, `engine::gate`): while no face is tracked, a run the schedule
//! asks for happens only where the picture changed since the last run looked at it: none on a
//! still picture (but a full-frame run once the idle interval of stream time has passed since the
//! last one, so that a face that never moves is found), a region run over what moved, a
//! full-frame run when most of it changed. Tracked faces keep the schedule.

use std::time::{Duration, Instant};

use crate::engine::cover::{ChangeGrid, Cover};
use crate::engine::decode::{Detection, Rect};
use crate::engine::detector::{DetectParams, Detector, Region, StageTimes};
use crate::engine::frame::FrameView;
use crate::engine::gate::{Gate, Motion};
use crate::engine::runtime::RuntimeError;
use crate::engine::scene::SceneCut;
use crate::engine::track::{Plan, RunReason, Schedule, TrackEvent, Tracker, TrackerConfig};

/// However late the frames, the model runs at least once in this many frames past the schedule's
/// own spacing (the analysis must not stop: a frame can look late for reasons no skip cures, e.g.
/// a constant offset upstream). Two seconds at 30 fps: rare enough that many cameras sharing one
/// model can still each skip enough to keep up (every forced run blocks its camera for the
/// others' turns too).
pub const MAX_SKIPS_IN_A_ROW: u64 = 60;

/// Frames without a model run after which a camera waits one `max_lateness` longer for a busy
/// shared model (see [`DetectStep::process`]).
pub const AGING: u64 = 4;

/// What the step needs of a detector model; [`Detector`] is the real one, the unit tests feed
/// synthetic detections through their own.
pub trait Model {
    /// Longest tensor side (0 = the manifest's default) from this run on.
    fn set_inference_size(&mut self, size: u32);
    /// Regions that cover `want` on a frame of this size, `None` when a full-frame run costs as
    /// little (see [`Detector::regions`]).
    fn regions(&self, width: usize, height: usize, want: &[Rect]) -> Option<Vec<Region>>;
    /// A run over the whole frame.
    fn detect(
        &mut self,
        frame: &FrameView<'_>,
        params: &DetectParams,
    ) -> Result<Vec<Detection>, RuntimeError>;
    /// Runs over `regions` of the frame only.
    fn detect_regions(
        &mut self,
        frame: &FrameView<'_>,
        regions: &[Region],
        params: &DetectParams,
    ) -> Result<Vec<Detection>, RuntimeError>;
    /// Time spent per stage so far.
    fn times(&self) -> StageTimes;
}

impl Model for Detector {
    fn set_inference_size(&mut self, size: u32) {
        Detector::set_inference_size(self, size)
    }

    fn regions(&self, width: usize, height: usize, want: &[Rect]) -> Option<Vec<Region>> {
        Detector::regions(self, width, height, want)
    }

    fn detect(
        &mut self,
        frame: &FrameView<'_>,
        params: &DetectParams,
    ) -> Result<Vec<Detection>, RuntimeError> {
        Detector::detect(self, frame, params)
    }

    fn detect_regions(
        &mut self,
        frame: &FrameView<'_>,
        regions: &[Region],
        params: &DetectParams,
    ) -> Result<Vec<Detection>, RuntimeError> {
        Detector::detect_regions(self, frame, regions, params)
    }

    fn times(&self) -> StageTimes {
        Detector::times(self)
    }
}

/// The element's settings that steer the per-frame decisions (a copy per frame: no allocation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// The detector's parameters, its threshold the lower of `threshold` and `track-threshold`.
    pub params: DetectParams,
    /// `threshold`: a face scoring under it only continues a track.
    pub start_score: f32,
    pub inference_size: u32,
    /// A run on one frame in N; 0: the adaptive schedule.
    pub interval: u32,
    /// A frame later than this, or a model busy for longer, gets no run (zero: never skip).
    pub max_lateness: Duration,
    /// Motion gating: while no face is tracked, a still picture gets a full-frame run only once
    /// this much stream time has passed since the last one (zero: gating off).
    pub idle_interval: Duration,
}

/// The frame and how it arrives: `late`, how far past the source's latency it reaches the
/// element, and `wait`, how long the shared model is busy before a run could start (both `None`
/// when the source is not live: nothing is then late); `cover`, a redactor downstream wants the
/// cover of live frames (without one, only whether the frame had a full-frame run is said);
/// `time`, the frame's stream time (`None`: unknown, and the frame is not gated).
#[derive(Clone, Copy)]
pub struct FrameIn<'a, 'b> {
    pub view: &'a FrameView<'b>,
    pub late: Option<Duration>,
    pub wait: Option<Duration>,
    pub cover: bool,
    pub time: Option<Duration>,
}

/// What the frame gets.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameOut {
    /// The frame's number (counted from 0 at start).
    pub number: u64,
    /// The model ran on this frame (over the whole of it or over regions).
    pub ran: bool,
    /// The faces with their track ids: the `detected` first ones found by the model on this
    /// frame, the others carried by the tracker.
    pub faces: Vec<(u64, Detection)>,
    pub detected: usize,
    /// On a live source (`late` or `wait` given), what a redactor must cover besides the faces
    /// found on this frame; `None` when the source is not live (every frame is then analysed as
    /// the schedule says, nothing is late).
    pub cover: Option<Cover>,
}

/// A decision, for the element's debug log. Carries no face data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Note<'a> {
    /// The share of the scene-cut grid that changed, and whether that is a cut (the tracks are
    /// then forgotten).
    Scene {
        share: f32,
        cut: bool,
    },
    /// What the adaptive schedule asked of the frame (`interval=0` only).
    Schedule(&'a Option<Plan>),
    /// The run was left out: the frame was late, or the model busy.
    Skipped {
        late: Option<Duration>,
        wait: Option<Duration>,
    },
    Track(TrackEvent),
    /// Motion gating's decision on a run the schedule asked for while no face was tracked, and
    /// the share of the gate's grid that changed since the last run looked at it.
    Gate {
        share: f32,
        gated: Gated,
    },
}

/// What motion gating made of a run the schedule asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gated {
    /// A still picture: no run.
    Still,
    /// A still picture, but the idle interval passed: a full-frame run.
    Forced,
    /// Change in parts of the picture: a run over these many parts (0: the whole frame, the
    /// parts costing as much).
    Moved(usize),
    /// Most of the picture changed: a full-frame run.
    Global,
}

/// Counters over all frames, as the element's `stats` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub frames: u64,
    /// Frames the model ran on.
    pub inferences: u64,
    /// Of them, those it ran on regions only.
    pub region_frames: u64,
    pub regions: u64,
    pub cuts: u64,
    pub skipped: u64,
    pub inference_ns: u64,
    pub stages: StageTimes,
    pub track_ns: u64,
    /// Live frames whose cover is the whole frame, and carried boxes grown for cover.
    pub cover_whole: u64,
    pub cover_grown: u64,
    /// Unseen areas (changed since the last full-frame run, looked at by no run) to be covered.
    pub cover_unseen: u64,
    /// Motion gating: runs left out on a still picture; full-frame runs the idle interval forced
    /// on one; runs over what moved (or the whole frame, where most of it did).
    pub gated_still: u64,
    pub gated_forced: u64,
    pub motion_runs: u64,
}

#[derive(Debug)]
pub struct DetectStep<M = Detector> {
    model: M,
    /// Gives faces their track ids and carries them over the frames the model skips.
    tracker: Tracker,
    /// Frame number of the last model run.
    last_run: Option<u64>,
    /// Frame number of the last model run over the whole frame.
    last_full: Option<u64>,
    /// Tells a new scene from motion: the tracks of before are then forgotten.
    cut: SceneCut,
    /// The picture at the last full-frame run, for the cover of live frames.
    grid: ChangeGrid,
    /// Motion gating: the picture where runs last looked.
    gate: Gate,
    /// The frame of motion gating's last decision (the schedule counts its runs from there while
    /// no face is tracked), and the stream time of the last full-frame run.
    gated_at: Option<u64>,
    last_full_time: Option<Duration>,
    counts: Counts,
}

impl<M: Model> DetectStep<M> {
    pub fn new(model: M) -> Self {
        DetectStep {
            model,
            tracker: Tracker::new(TrackerConfig::default()),
            last_run: None,
            last_full: None,
            cut: SceneCut::default(),
            grid: ChangeGrid::default(),
            gate: Gate::default(),
            gated_at: None,
            last_full_time: None,
            counts: Counts::default(),
        }
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// After a flush (seek): the faces of before are elsewhere; the next frame gets a full run.
    pub fn flush(&mut self) {
        self.tracker.reset();
        self.last_run = None;
        self.last_full = None;
        self.cut.reset();
        self.grid.reset();
        self.forget_gate();
    }

    /// The frame size changed: boxes carried from the old size would be wrong on the new one.
    pub fn resized(&mut self) {
        self.tracker.reset();
        self.last_full = None;
        self.cut.reset();
        self.grid.reset();
        self.forget_gate();
    }

    fn forget_gate(&mut self) {
        self.gate.reset();
        self.gated_at = None;
        self.last_full_time = None;
    }

    /// One frame: the schedule's decision, the model run if any, the tracker's faces. `log` hears
    /// the decisions.
    pub fn process(
        &mut self,
        frame: &FrameIn<'_, '_>,
        config: &Config,
        mut log: impl FnMut(u64, Note<'_>),
    ) -> Result<FrameOut, RuntimeError> {
        let FrameIn {
            view,
            late,
            wait,
            cover,
            time,
        } = *frame;
        let frame_no = self.counts.frames;
        let (w, h) = (view.width(), view.height());
        // Another scene: the faces of before are not on this frame, whoever stands where they
        // stood. Forget them and look at the whole frame now.
        let cut = self.cut.observe(view);
        log(
            frame_no,
            Note::Scene {
                share: self.cut.share(),
                cut,
            },
        );
        if cut {
            self.counts.cuts += 1;
            self.tracker.reset();
            self.last_run = None;
            self.last_full = None;
            self.grid.reset();
            self.forget_gate();
        }
        // Motion gating needs the frame's time; off, it keeps nothing.
        let gating = time.filter(|_| !config.idle_interval.is_zero());
        if gating.is_none() {
            self.forget_gate();
        }
        // While no face is tracked, the schedule counts its frames from gating's last decision
        // too: a gated frame is a frame looked at.
        let idle = self.tracker.is_empty();
        let since = |last: Option<u64>| match (idle, self.gated_at) {
            (true, Some(g)) => last.max(Some(g)),
            _ => last,
        };
        let plan = match config.interval {
            0 => {
                let plan = self.tracker.plan(
                    frame_no,
                    since(self.last_full),
                    w as f32,
                    h as f32,
                    &Schedule::default(),
                );
                log(frame_no, Note::Schedule(&plan));
                plan
            }
            n => since(self.last_run)
                .is_none_or(|l| frame_no.saturating_sub(l) >= n as u64)
                .then_some(Plan::Full(RunReason::Due)),
        };
        let (plan, gated) = match (plan, gating) {
            (Some(Plan::Full(RunReason::Due)), Some(time)) if idle && self.last_full.is_some() => {
                self.gate(frame_no, view, time, config, &mut log)
            }
            (plan, _) => (plan, None),
        };
        let run = plan.is_some() && !self.skips(frame_no, config, late, wait);
        if plan.is_some() && !run {
            self.counts.skipped += 1;
            log(frame_no, Note::Skipped { late, wait });
        }
        let (faces, detected) = match plan.filter(|_| run) {
            Some(plan) => {
                self.last_run = Some(frame_no);
                match gated {
                    Some(Gated::Forced) => self.counts.gated_forced += 1,
                    Some(Gated::Moved(_) | Gated::Global) => self.counts.motion_runs += 1,
                    _ => {}
                }
                let gate = gating.is_some();
                let out = self.run(frame_no, view, &plan, config, gate, &mut log)?;
                if self.last_full == Some(frame_no) {
                    self.last_full_time = time;
                }
                out
            }
            None => {
                let t_track = Instant::now();
                let carried = self.tracker.predict(frame_no);
                self.counts.track_ns += t_track.elapsed().as_nanos() as u64;
                (carried, 0)
            }
        };
        let live = late.is_some() || wait.is_some();
        let cover = match (live, cover) {
            (false, _) => None,
            (true, true) => Some(self.cover(frame_no, view, &faces, detected)),
            // Nobody redacts: no grid sampled; a redactor that comes later starts from the next
            // full-frame run, and meanwhile (if it reads these) covers the frames whole.
            (true, false) => {
                self.grid.reset();
                let full = self.last_full == Some(frame_no);
                Some(Cover {
                    full,
                    whole: !full,
                    ..Cover::default()
                })
            }
        };
        self.counts.frames += 1;
        Ok(FrameOut {
            number: frame_no,
            ran: run,
            faces,
            detected,
            cover,
        })
    }

    /// Motion gating's answer to a full-frame run the schedule asks for while no face is tracked
    /// (see the module's documentation): the plan, and what gating made of it.
    fn gate(
        &mut self,
        frame_no: u64,
        view: &FrameView<'_>,
        time: Duration,
        config: &Config,
        log: &mut impl FnMut(u64, Note<'_>),
    ) -> (Option<Plan>, Option<Gated>) {
        let Some(motion) = self.gate.observe(frame_no, view) else {
            // No reference yet (gating just switched on): as scheduled, which gives it one.
            return (Some(Plan::Full(RunReason::Due)), None);
        };
        self.gated_at = Some(frame_no);
        // Stream time that goes back (a new segment without a flush) counts as passed.
        let overdue = self
            .last_full_time
            .is_none_or(|t| time < t || time - t >= config.idle_interval);
        let (plan, gated) = match motion {
            Motion::Still if overdue => (Some(Plan::Full(RunReason::Idle)), Gated::Forced),
            Motion::Still => {
                self.counts.gated_still += 1;
                (None, Gated::Still)
            }
            Motion::Global => (Some(Plan::Full(RunReason::Motion)), Gated::Global),
            // A run over the whole frame is due anyway: the moving parts are in it.
            Motion::Moved(_) if overdue => (Some(Plan::Full(RunReason::Motion)), Gated::Moved(0)),
            Motion::Moved(parts) => {
                let n = self
                    .model
                    .regions(view.width(), view.height(), &parts)
                    .map_or(0, |r| r.len());
                (
                    Some(Plan::Regions(RunReason::Motion, parts)),
                    Gated::Moved(n),
                )
            }
        };
        log(
            frame_no,
            Note::Gate {
                share: self.gate.share(),
                gated,
            },
        );
        (plan, Some(gated))
    }

    /// What a live frame needs covered besides the faces found on it: nothing after a full-frame
    /// run; otherwise the carried faces' boxes grown by their uncertainty, and what changed since
    /// the last full-frame run outside the faces found on this frame (the whole frame where that
    /// is unbounded). `faces`: the frame's, the first `detected` found by the model.
    fn cover(
        &mut self,
        frame_no: u64,
        view: &FrameView<'_>,
        faces: &[(u64, Detection)],
        detected: usize,
    ) -> Cover {
        if self.last_full == Some(frame_no) {
            self.grid.full_run(view);
            return Cover {
                full: true,
                ..Cover::default()
            };
        }
        let (found, carried) = faces.split_at(detected);
        let mut grown: Vec<Rect> = carried
            .iter()
            .filter_map(|(id, _)| self.tracker.carried_cover(*id, frame_no))
            .collect();
        // Faces the last run missed but the tracker keeps: perhaps still there, so covered too.
        grown.extend(self.tracker.missed_covers(frame_no));
        let found: Vec<Rect> = found.iter().map(|(_, d)| d.rect).collect();
        let cover = self.grid.cover(view, &found, grown);
        self.counts.cover_whole += cover.whole as u64;
        self.counts.cover_grown += cover.grown.len() as u64;
        self.counts.cover_unseen += cover.unseen.len() as u64;
        cover
    }

    /// Whether a run the schedule asks for is left out. On a live source (`late` or `wait` given),
    /// a frame that arrives more than `max_lateness` past the source's latency is skipped, and so
    /// is one while the model is busy with other cameras' frames for longer than this camera's
    /// patience: waiting would make its video late (a fair share: whoever finds the queue short
    /// gets a run). Never once the last run is [`MAX_SKIPS_IN_A_ROW`] frames past due, nor while
    /// no full-frame run happened since the start, a flush, a cut or a change of size (nothing
    /// else would ever bound where the faces are).
    fn skips(
        &self,
        frame_no: u64,
        config: &Config,
        late: Option<Duration>,
        wait: Option<Duration>,
    ) -> bool {
        let most_apart = match config.interval {
            0 => Schedule::default().max_interval,
            n => n,
        };
        let overdue = self
            .last_run
            .is_some_and(|l| frame_no.saturating_sub(l) >= most_apart as u64 + MAX_SKIPS_IN_A_ROW);
        // The longer since this camera's last run, the longer it is willing to wait: every
        // camera ages alike, so each gets its share however their frames are in step.
        let since = self.last_run.map_or(0, |l| frame_no.saturating_sub(l));
        let max_late = config.max_lateness;
        let patience = max_late * (1 + (since / AGING) as u32);
        !overdue
            && self.last_full.is_some()
            && !max_late.is_zero()
            && (late.is_some_and(|l| l > max_late) || wait.is_some_and(|w| w > patience))
    }

    /// The model's run that `plan` asks for, and the tracker's update with its detections;
    /// `gate`: motion gating is on, and keeps where the run looked.
    fn run(
        &mut self,
        frame_no: u64,
        view: &FrameView<'_>,
        plan: &Plan,
        config: &Config,
        gate: bool,
        log: &mut impl FnMut(u64, Note<'_>),
    ) -> Result<(Vec<(u64, Detection)>, usize), RuntimeError> {
        self.model.set_inference_size(config.inference_size);
        // Regions where the schedule asks for them and they cost less than the frame.
        let regions = match plan {
            Plan::Regions(_, want) => self.model.regions(view.width(), view.height(), want),
            Plan::Full(_) => None,
        };
        let t0 = Instant::now();
        let dets = match &regions {
            Some(r) => self.model.detect_regions(view, r, &config.params),
            None => self.model.detect(view, &config.params),
        }?;
        self.counts.inferences += 1;
        self.counts.inference_ns += t0.elapsed().as_nanos() as u64;
        self.counts.stages = self.model.times();
        let t_track = Instant::now();
        self.tracker.set_start_score(config.start_score);
        let tracked = match &regions {
            Some(r) => {
                self.counts.region_frames += 1;
                self.counts.regions += r.len() as u64;
                let rects: Vec<_> = r.iter().map(|r| r.rect).collect();
                if gate {
                    self.gate.looked(frame_no, view, Some(&rects));
                }
                self.tracker.update_regions(frame_no, dets, &rects)
            }
            None => {
                self.last_full = Some(frame_no);
                if gate {
                    self.gate.looked(frame_no, view, None);
                }
                self.tracker.update(frame_no, dets)
            }
        };
        self.counts.track_ns += t_track.elapsed().as_nanos() as u64;
        for ev in self.tracker.events() {
            log(frame_no, Note::Track(ev));
        }
        Ok((tracked, self.tracker.detected()))
    }
}

#[cfg(test)]
mod tests;
