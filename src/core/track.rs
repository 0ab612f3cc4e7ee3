// SPDX-License-Identifier: MIT
//! The face tracker of `facedetector`: gives each face a track id that stays the same while the face
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
//! - On a skipped frame, the tracks seen at the last detector run are reported at their predicted
//!   position (box and landmarks shifted by velocity × frames since).

use crate::core::detect::{Detection, Rect};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackerConfig {
    pub min_iou: f32,
    pub max_missed: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            min_iou: 0.3,
            max_missed: 5,
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
    /// Detector runs since the track was last paired.
    missed: u32,
}

impl Track {
    fn predicted(&self, frame: u64) -> Detection {
        let dt = frame.saturating_sub(self.frame) as f32;
        let (dx, dy) = (self.vx * dt, self.vy * dt);
        let mut d = self.face.clone();
        d.rect.x += dx;
        d.rect.y += dy;
        for l in &mut d.landmarks {
            l[0] += dx;
            l[1] += dy;
        }
        d
    }
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
        }
    }

    /// The decisions of the last `update` (new and lost tracks), oldest first.
    pub fn events(&mut self) -> std::vec::Drain<'_, TrackEvent> {
        self.events.drain(..)
    }

    /// Forgets every track (e.g. after a flush or a size change). Ids keep counting up.
    pub fn reset(&mut self) {
        self.tracks.clear();
    }

    /// A frame the detector ran on: pairs `dets` with the tracks and returns them with their track
    /// ids, in the order given.
    pub fn update(&mut self, frame: u64, dets: Vec<Detection>) -> Vec<(u64, Detection)> {
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
        pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
        let mut track_of = vec![None; dets.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if !taken[ti] && track_of[di].is_none() {
                taken[ti] = true;
                track_of[di] = Some(ti);
            }
        }
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            if !taken[ti] {
                t.missed += 1;
            }
        }
        let mut out = Vec::with_capacity(dets.len());
        for (di, d) in dets.into_iter().enumerate() {
            let id = match track_of[di] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    let dt = frame.saturating_sub(t.frame).max(1) as f32;
                    let ((ox, oy), (nx, ny)) = (centre(&t.face.rect), centre(&d.rect));
                    t.vx = 0.5 * t.vx + 0.5 * (nx - ox) / dt;
                    t.vy = 0.5 * t.vy + 0.5 * (ny - oy) / dt;
                    t.face = d.clone();
                    t.frame = frame;
                    t.missed = 0;
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
                        missed: 0,
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
        out
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
mod tests {
    use super::*;

    fn face(x: f32, y: f32, s: f32) -> Detection {
        Detection {
            rect: Rect { x, y, w: s, h: s },
            score: 0.9,
            landmarks: vec![[x + s * 0.3, y + s * 0.4]],
        }
    }

    #[test]
    fn steady_motion_keeps_ids() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut ids = Vec::new();
        for f in 0..20u64 {
            let x = f as f32 * 8.0;
            let out = t.update(f, vec![face(x, 10.0, 50.0), face(400.0 - x, 200.0, 60.0)]);
            ids.push((out[0].0, out[1].0));
        }
        assert!(ids.iter().all(|p| *p == ids[0]), "{ids:?}");
        assert_ne!(ids[0].0, ids[0].1);
    }

    #[test]
    fn fast_motion_with_low_iou_still_pairs() {
        let mut t = Tracker::new(TrackerConfig::default());
        let a = t.update(0, vec![face(0.0, 0.0, 40.0)])[0].0;
        // moved 13 px right and down: IoU 0.295, under min_iou, but the centres are 18 px apart
        let b = t.update(1, vec![face(13.0, 13.0, 40.0)])[0].0;
        assert_eq!(a, b);
    }

    #[test]
    fn missed_once_keeps_id_then_expires() {
        let mut t = Tracker::new(TrackerConfig {
            min_iou: 0.3,
            max_missed: 2,
        });
        let a = t.update(0, vec![face(0.0, 0.0, 40.0)])[0].0;
        t.update(1, vec![]);
        assert_eq!(t.update(2, vec![face(1.0, 0.0, 40.0)])[0].0, a);
        let mut events = Vec::new();
        for f in 3..6 {
            t.update(f, vec![]);
            events.extend(t.events());
        }
        assert_eq!(events, [TrackEvent::Lost(a)]);
        let b = t.update(6, vec![face(1.0, 0.0, 40.0)])[0].0;
        assert_ne!(b, a);
        assert_eq!(t.events().collect::<Vec<_>>(), [TrackEvent::Started(b)]);
    }

    #[test]
    fn predict_moves_by_velocity() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(0, vec![face(0.0, 0.0, 40.0)]);
        t.update(3, vec![face(15.0, 0.0, 40.0)]); // 5 px per frame, smoothed to 2.5
        let p = t.predict(5);
        assert_eq!(p.len(), 1);
        assert!((p[0].1.rect.x - 20.0).abs() < 1e-3, "{:?}", p[0].1.rect);
        assert!((p[0].1.landmarks[0][0] - 32.0).abs() < 1e-3);
        // a missed track is not reported on skipped frames
        t.update(6, vec![]);
        assert!(t.predict(7).is_empty());
    }

    #[test]
    fn far_apart_faces_do_not_pair() {
        let mut t = Tracker::new(TrackerConfig::default());
        let a = t.update(0, vec![face(0.0, 0.0, 40.0)])[0].0;
        let b = t.update(1, vec![face(300.0, 0.0, 40.0)])[0].0;
        assert_ne!(a, b);
    }
}
