// SPDX-License-Identifier: MIT
//! The face tracker of `veildetect`: gives each face a track id that stays the same while the face
//! stays in view, and carries faces forward on the frames the detector skips.
//!
//! How it works (documented for users in docs/METADATA.md):
//! - Each track keeps its last face (box, landmarks, score) and a velocity: the motion of the box
//!   centre per frame, smoothed (half old, half new).
//! - On a frame the detector ran on, every track's box is first predicted to this frame (constant
//!   velocity). Detections and predicted tracks are paired greedily by IoU, best first; pairs under
//!   `min_iou` are still accepted when the centres are within half a face of each other and the sizes
//!   within 1.5× (fast motion). Paired tracks take the detection; unpaired detections start new
//!   tracks (ids count up from 1); unpaired tracks are kept, unseen, for `max_missed` detector runs
//!   and then dropped, so a face that is missed once keeps its id.
//! - Hysteresis: detections scoring under `start_score` only continue tracks. They are paired after
//!   every strong detection, with the tracks left over, and dropped when no track takes them: a
//!   face whose score dips for a frame (half out of the frame, turning, blurred) keeps its box,
//!   while a weak detection never starts a track. A weak detection of a full-frame run that no
//!   track takes is a candidate: the schedule looks at it again on the next frame, by a region
//!   run, where a face that enters (half in view, coming out from behind another) often scores
//!   enough to start its track, instead of waiting for the next full-frame run.
//! - On a skipped frame, the tracks seen at the last detector run are reported at their predicted
//!   position (box and landmarks shifted by velocity × frames since, and scaled about the centre by
//!   the track's growth per frame, compounded).
//! - [`Tracker::carried_cover`]: where a carried face may be, for fail-closed redaction on a live
//!   source (`engine::cover`).
//! - [`Tracker::plan`] is the adaptive schedule (`interval=0`): the detector runs on every frame
//!   while a track is new, uncertain, near the frame's edge or moving or changing size fast enough
//!   that its carried box could drift off the face; while no face is in view, every
//!   `search_interval` frames; while every track is steady, up to `max_interval` frames apart.

use crate::engine::decode::{Detection, Rect};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackerConfig {
    pub min_iou: f32,
    pub max_missed: u32,
    /// Detections scoring under this continue tracks but start none (0: every detection starts).
    pub start_score: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            min_iou: 0.3,
            max_missed: 5,
            start_score: 0.0,
        }
    }
}

#[derive(Clone, Debug)]
struct Track {
    id: u64,
    face: Detection,
    /// Frame number of `face`.
    frame: u64,
    vx: f32,
    vy: f32,
    /// Growth of the box per frame (1 = steady), smoothed like the velocity.
    vs: f32,
    /// Detector runs since the track was last paired.
    missed: u32,
    /// Detector runs the track was paired on (1 when it starts).
    hits: u32,
    /// The last frame a run looked at the track: the whole frame, or a region with the track's
    /// predicted box inside (paired or missed there).
    looked: u64,
    /// How far off the carried box was, per frame carried, as a fraction of the face's size:
    /// the error of the prediction at the last runs (position and size), smoothed.
    drift: f32,
}

impl Track {
    /// See [`Tracker::carried_cover`].
    fn cover(&self, frame: u64) -> Rect {
        let dt = frame.saturating_sub(self.frame) as f32;
        let (a, b) = (self.face.rect, self.predicted(frame).rect);
        let size = a.w.max(a.h).max(b.w.max(b.h));
        let m = dt * self.drift.max(INITIAL_DRIFT) * size;
        let (x0, y0) = (a.x.min(b.x) - m, a.y.min(b.y) - m);
        let (x1, y1) = (
            (a.x + a.w).max(b.x + b.w) + m,
            (a.y + a.h).max(b.y + b.h) + m,
        );
        Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    fn predicted(&self, frame: u64) -> Detection {
        let dt = frame.saturating_sub(self.frame) as f32;
        let (dx, dy) = (self.vx * dt, self.vy * dt);
        let k = self.vs.powf(dt);
        let (cx, cy) = centre(&self.face.rect);
        let mut d = self.face.clone();
        d.rect.w *= k;
        d.rect.h *= k;
        d.rect.x = cx + dx - d.rect.w / 2.0;
        d.rect.y = cy + dy - d.rect.h / 2.0;
        for l in &mut d.landmarks {
            l[0] = cx + dx + (l[0] - cx) * k;
            l[1] = cy + dy + (l[1] - cy) * k;
        }
        d
    }
}

/// A new track's prediction error until measured (per frame, fraction of the face's size).
const INITIAL_DRIFT: f32 = 0.05;

/// The adaptive schedule of the detector (`veildetect interval=0`): when may a frame go without a
/// model run, the tracker carrying the faces? See [`Tracker::plan`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Most frames between two runs while every track is steady.
    pub max_interval: u32,
    /// Frames between two runs while no face is in view: a face that enters is found this late.
    pub search_interval: u32,
    /// A track is new (a run on every frame) until paired on this many runs.
    pub young: u32,
    /// A face whose box comes within this fraction of the frame's width or height of an edge is
    /// entering or leaving: a run on every frame.
    pub edge: f32,
    /// A run comes before a face's carried box could be off by more than this fraction of its
    /// size, judged by how far off the tracker's predictions for the face were at the last runs:
    /// the box's IoU with the face stays around 0.7 or more.
    pub max_drift: f32,
    /// A face whose last detection scored under this is uncertain: a run every 2nd frame.
    pub min_score: f32,
    /// Between full-frame runs, a face that needs a look gets a run over its predicted box grown
    /// by this fraction of its size on each side (a region run) instead of the whole frame. The
    /// model's box depends on what surrounds the face: with half a face of it, boxes of faces
    /// crowded together came out further from the full run's (worst face of the 8-face 1080p
    /// bench clip boxed on 94.7 % of its frames against FP32 on every frame; a whole face: 97.4 %).
    pub margin: f32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            max_interval: 3,
            search_interval: 3,
            young: 3,
            edge: 0.02,
            max_drift: 0.12,
            min_score: 0.6,
            margin: 1.0,
        }
    }
}

/// Why the adaptive schedule runs the detector on a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunReason {
    /// No run yet, or `max_interval` frames since the last (or `search_interval` with no face).
    Due,
    /// A track is new.
    New,
    /// A track was missed on the last run, or scored low (every 2nd frame).
    Uncertain,
    /// A face that moves is at the edge of the frame (every 2nd frame).
    Edge,
    /// A face's motion or change of size is not as the tracker predicts.
    Moving,
    /// A weak face of the last full-frame run that continues no track is looked at again.
    Candidate,
    /// No face is tracked and the picture changed since the last run looked at it (motion
    /// gating, `engine::gate`): a run over the parts that changed, or the whole frame.
    Motion,
    /// No face is tracked and the picture is still, but the idle interval passed since the last
    /// full-frame run: one now, so that a face that never moves is found all the same.
    Idle,
}

/// What the adaptive schedule asks of a frame (see [`Tracker::plan`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// A run over the whole frame.
    Full(RunReason),
    /// Runs over these parts of the frame only (frame pixels, possibly past its edges): the
    /// predicted boxes of the faces that need a look, grown by the schedule's margin.
    Regions(RunReason, Vec<Rect>),
}

/// A decision of the tracker, for the element's debug log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackEvent {
    /// A detection paired with no track: a new track.
    Started(u64),
    /// A track unpaired for more than `max_missed` detector runs was dropped.
    Lost(u64),
}

#[derive(Debug, Default)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
    events: Vec<TrackEvent>,
    /// How many of the faces the last update returned the run found (they come first).
    detected: usize,
    /// The weak detections of the last full-frame run that no track took, and its frame.
    candidates: Vec<Rect>,
    candidates_frame: u64,
}

/// `r` lies inside `region` (the sides may touch).
fn inside(r: &Rect, region: &Rect) -> bool {
    r.x >= region.x
        && r.y >= region.y
        && r.x + r.w <= region.x + region.w
        && r.y + r.h <= region.y + region.h
}

/// `r` grown by `margin` of its longer side on each side.
fn grown(r: &Rect, margin: f32) -> Rect {
    let m = margin * r.w.max(r.h);
    Rect {
        x: r.x - m,
        y: r.y - m,
        w: r.w + 2.0 * m,
        h: r.h + 2.0 * m,
    }
}

fn centre(r: &Rect) -> (f32, f32) {
    (r.x + r.w / 2.0, r.y + r.h / 2.0)
}

/// How well a predicted track box and a detection go together; `None` if they do not.
fn affinity(p: &Rect, d: &Rect, min_iou: f32) -> Option<f32> {
    let iou = p.iou(d);
    if iou >= min_iou {
        return Some(iou);
    }
    let ((px, py), (dx, dy)) = (centre(p), centre(d));
    let size = p.w.max(p.h).max(d.w.max(d.h));
    let ratio = (p.w * p.h).max(1e-3) / (d.w * d.h).max(1e-3);
    let near = (px - dx).hypot(py - dy) < 0.5 * size;
    let similar = (1.0 / 2.25..=2.25).contains(&ratio);
    // Below every IoU pairing, but still a pairing.
    (near && similar).then_some(iou * 0.01)
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            tracks: Vec::new(),
            next_id: 1,
            events: Vec::new(),
            detected: 0,
            candidates: Vec::new(),
            candidates_frame: 0,
        }
    }

    /// Detections scoring under `score` continue tracks but start none (the element's threshold,
    /// which may change while playing; see the module's documentation).
    pub fn set_start_score(&mut self, score: f32) {
        self.config.start_score = score;
    }

    /// Of the faces the last [`Tracker::update`] or [`Tracker::update_regions`] returned, how many
    /// the detector found on that frame: they come first, the carried ones after.
    pub fn detected(&self) -> usize {
        self.detected
    }

    /// The decisions of the last `update` (new and lost tracks), oldest first.
    pub fn events(&mut self) -> std::vec::Drain<'_, TrackEvent> {
        self.events.drain(..)
    }

    /// No track is kept (none in view, none missed and held) and no weak face waits for a look.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty() && self.candidates.is_empty()
    }

    /// Forgets every track (e.g. after a flush or a size change). Ids keep counting up.
    pub fn reset(&mut self) {
        self.tracks.clear();
        self.candidates.clear();
    }

    /// A frame the detector ran on (the whole frame): pairs `dets` with the tracks and returns them
    /// with their track ids, in the order given, less the weak ones that continue no track.
    pub fn update(&mut self, frame: u64, dets: Vec<Detection>) -> Vec<(u64, Detection)> {
        self.update_in(frame, dets, None)
    }

    /// A frame the detector ran on in `regions` only (frame pixels): `dets` are paired as by
    /// [`Tracker::update`]; a track counts as missed only when its predicted box lies inside a
    /// region. Returns the detections with their track ids, in the order given, then the tracks
    /// that no region looked at, carried to this frame as on a frame without a run.
    pub fn update_regions(
        &mut self,
        frame: u64,
        dets: Vec<Detection>,
        regions: &[Rect],
    ) -> Vec<(u64, Detection)> {
        self.update_in(frame, dets, Some(regions))
    }

    fn update_in(
        &mut self,
        frame: u64,
        dets: Vec<Detection>,
        regions: Option<&[Rect]>,
    ) -> Vec<(u64, Detection)> {
        self.events.clear();
        let predicted: Vec<Detection> = self.tracks.iter().map(|t| t.predicted(frame)).collect();
        let mut pairs = Vec::new();
        for (ti, p) in predicted.iter().enumerate() {
            for (di, d) in dets.iter().enumerate() {
                if let Some(a) = affinity(&p.rect, &d.rect, self.config.min_iou) {
                    pairs.push((a, ti, di));
                }
            }
        }
        // Strong detections first, then by affinity.
        let strong = |di: usize| dets[di].score >= self.config.start_score;
        pairs.sort_by(|x, y| strong(y.2).cmp(&strong(x.2)).then(y.0.total_cmp(&x.0)));
        let mut track_of = vec![None; dets.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if !taken[ti] && track_of[di].is_none() {
                taken[ti] = true;
                track_of[di] = Some(ti);
            }
        }
        let mut carried = Vec::new();
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            if taken[ti] {
                continue;
            }
            let seen = regions.is_none_or(|rs| rs.iter().any(|r| inside(&predicted[ti].rect, r)));
            if seen {
                t.missed += 1;
                t.looked = frame;
            } else if t.missed == 0 {
                carried.push((t.id, predicted[ti].clone()));
            }
        }
        // A full-frame run's weak faces are looked at again on the next frame; that look (or the
        // next full run) ends them.
        if regions.is_none() || frame > self.candidates_frame {
            self.candidates.clear();
        }
        let mut out = Vec::with_capacity(dets.len() + carried.len());
        for (di, d) in dets.into_iter().enumerate() {
            if track_of[di].is_none() && d.score < self.config.start_score {
                if regions.is_none() {
                    self.candidates.push(d.rect);
                    self.candidates_frame = frame;
                }
                continue;
            }
            let id = match track_of[di] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    let dt = frame.saturating_sub(t.frame).max(1) as f32;
                    let p = t.predicted(frame).rect;
                    let ((px, py), (cx, cy)) = (centre(&p), centre(&d.rect));
                    let size = p.w.max(p.h).max(1.0);
                    let off =
                        (px - cx).hypot(py - cy) / size + (d.rect.w / p.w.max(1.0)).ln().abs();
                    t.drift = 0.5 * t.drift + 0.5 * off / dt;
                    let ((ox, oy), (nx, ny)) = (centre(&t.face.rect), centre(&d.rect));
                    t.vx = 0.5 * t.vx + 0.5 * (nx - ox) / dt;
                    t.vy = 0.5 * t.vy + 0.5 * (ny - oy) / dt;
                    let (old, new) = (t.face.rect.w * t.face.rect.h, d.rect.w * d.rect.h);
                    if old > 0.0 && new > 0.0 {
                        let growth = (new / old).sqrt().powf(1.0 / dt).clamp(0.8, 1.25);
                        t.vs = 0.5 * t.vs + 0.5 * growth;
                    }
                    t.face = d.clone();
                    t.frame = frame;
                    t.missed = 0;
                    t.hits += 1;
                    t.looked = frame;
                    t.id
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.events.push(TrackEvent::Started(id));
                    self.tracks.push(Track {
                        id,
                        face: d.clone(),
                        frame,
                        vx: 0.0,
                        vy: 0.0,
                        vs: 1.0,
                        missed: 0,
                        hits: 1,
                        looked: frame,
                        drift: INITIAL_DRIFT,
                    });
                    id
                }
            };
            out.push((id, d));
        }
        let max_missed = self.config.max_missed;
        let events = &mut self.events;
        self.tracks.retain(|t| {
            let keep = t.missed <= max_missed;
            if !keep {
                events.push(TrackEvent::Lost(t.id));
            }
            keep
        });
        self.detected = out.len();
        out.extend(carried);
        out
    }

    /// What the adaptive schedule asks of `frame` (of `width` × `height` pixels), the last
    /// full-frame run having been on `last_full`; `None` lets the tracker carry the faces.
    ///
    /// A full-frame run comes `max_interval` frames after the last one (`search_interval` while
    /// no face is in view): it finds the faces that enter. In between, each face is looked at
    /// as often as it needs (new: every frame; missed, uncertain or moving at the edge: every
    /// 2nd; otherwise before its carried box could drift `max_drift` of its size), by a run over
    /// its predicted box with a margin, not over the whole frame. So is, on the frame after a
    /// full-frame run, each weak face of that run that continues no track (a candidate).
    pub fn plan(
        &self,
        frame: u64,
        last_full: Option<u64>,
        width: f32,
        height: f32,
        s: &Schedule,
    ) -> Option<Plan> {
        let Some(last) = last_full else {
            return Some(Plan::Full(RunReason::Due));
        };
        let since = frame.saturating_sub(last);
        let limit = if self.tracks.iter().any(|t| t.missed == 0) {
            s.max_interval
        } else {
            s.search_interval
        };
        if since >= limit.max(1) as u64 {
            return Some(Plan::Full(RunReason::Due));
        }
        let (mx, my) = (s.edge * width, s.edge * height);
        let mut why: Option<(u64, RunReason)> = None;
        let mut regions = Vec::new();
        for t in &self.tracks {
            let r = t.predicted(frame).rect;
            // Each face allows so many frames between looks; it gets one when they are up.
            let mut need: Option<(u64, RunReason)> = None;
            let mut allow = |frames: u64, reason: RunReason| {
                if need.is_none_or(|(f, _)| frames < f) {
                    need = Some((frames, reason));
                }
            };
            if t.missed > 0 {
                // A face the last look missed (occluded, turned away) is looked for every 2nd
                // frame while its predicted box is still on the frame; one that left is not.
                if r.x >= 0.0 && r.y >= 0.0 && r.x + r.w <= width && r.y + r.h <= height {
                    allow(2, RunReason::Uncertain);
                }
            } else {
                if t.hits < s.young {
                    allow(1, RunReason::New);
                }
                if t.face.score < s.min_score {
                    allow(2, RunReason::Uncertain);
                }
                let moving = t.vx.hypot(t.vy) / t.face.rect.w.max(t.face.rect.h).max(1.0) > 0.01;
                let at_edge =
                    r.x < mx || r.y < my || r.x + r.w > width - mx || r.y + r.h > height - my;
                if at_edge && moving {
                    allow(2, RunReason::Edge);
                }
                let frames = (s.max_drift / t.drift.max(1e-6)).floor().max(1.0) as u64;
                allow(frames, RunReason::Moving);
            }
            let Some((frames, reason)) = need else {
                continue;
            };
            if frame.saturating_sub(t.looked) < frames {
                continue;
            }
            if why.is_none_or(|(f, _)| frames < f) {
                why = Some((frames, reason));
            }
            regions.push(grown(&r, s.margin));
        }
        if frame == self.candidates_frame + 1 && !self.candidates.is_empty() {
            why = Some((1, RunReason::Candidate));
            regions.extend(self.candidates.iter().map(|r| grown(r, s.margin)));
        }
        why.map(|(_, reason)| Plan::Regions(reason, regions))
    }

    /// Where the carried face of track `id` may be on `frame`, for a redactor that must cover it:
    /// its box at its last detection and its predicted box, together, grown on every side by its
    /// prediction error per frame (never under the initial guess) times the frames since that
    /// detection. `None` for a track that is not carried.
    pub fn carried_cover(&self, id: u64, frame: u64) -> Option<Rect> {
        let t = self.tracks.iter().find(|t| t.id == id && t.missed == 0)?;
        Some(t.cover(frame))
    }

    /// The same cover for every track that the last detector run missed but that is kept (a face
    /// a region run did not find, or one turned away): it is not in the frame's faces, yet it
    /// may still be there.
    pub fn missed_covers(&self, frame: u64) -> Vec<Rect> {
        (self.tracks.iter())
            .filter(|t| t.missed > 0)
            .map(|t| t.cover(frame))
            .collect()
    }

    /// A frame the detector skipped: the faces seen at the last detector run, moved to this frame.
    pub fn predict(&self, frame: u64) -> Vec<(u64, Detection)> {
        self.tracks
            .iter()
            .filter(|t| t.missed == 0)
            .map(|t| (t.id, t.predicted(frame)))
            .collect()
    }
}

#[cfg(test)]
mod tests;
