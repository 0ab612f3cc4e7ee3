// SPDX-License-Identifier: MIT
//! Unit tests of the tracker and the adaptive schedule.

use super::*;

fn face(x: f32, y: f32, s: f32) -> Detection {
    Detection {
        rect: Rect { x, y, w: s, h: s },
        score: 0.9,
        landmarks: vec![[x + s * 0.3, y + s * 0.4]],
    }
}

/// Runs the adaptive schedule over `frames` frames of 640x480 whose faces are `faces(frame)`
/// (a region run finds those inside its regions); returns the frames the detector ran on, and
/// whether over the whole frame.
fn schedule(frames: u64, faces: impl Fn(u64) -> Vec<Detection>) -> Vec<(u64, bool)> {
    let mut t = Tracker::new(TrackerConfig::default());
    let s = Schedule::default();
    let mut last = None;
    let mut runs = Vec::new();
    for f in 0..frames {
        match t.plan(f, last, 640.0, 480.0, &s) {
            Some(Plan::Full(_)) => {
                t.update(f, faces(f));
                last = Some(f);
                runs.push((f, true));
            }
            Some(Plan::Regions(_, rs)) => {
                let found = faces(f)
                    .into_iter()
                    .filter(|d| rs.iter().any(|r| inside(&d.rect, r)))
                    .collect();
                t.update_regions(f, found, &rs);
                runs.push((f, false));
            }
            None => {
                t.predict(f);
            }
        }
    }
    runs
}

fn schedule_runs(frames: u64, faces: impl Fn(u64) -> Vec<Detection>) -> Vec<u64> {
    schedule(frames, faces).into_iter().map(|r| r.0).collect()
}

#[test]
fn between_full_runs_a_new_face_gets_region_runs() {
    let runs = schedule(7, |_| vec![face(200.0, 150.0, 80.0)]);
    assert_eq!(
        runs,
        [(0, true), (1, false), (2, false), (3, true), (6, true)]
    );
}

#[test]
fn a_region_run_misses_only_the_tracks_it_looked_at() {
    let mut t = Tracker::new(TrackerConfig::default());
    let out = t.update(0, vec![face(10.0, 10.0, 40.0), face(300.0, 300.0, 40.0)]);
    let (a, b) = (out[0].0, out[1].0);
    // a region around a only, where the detector finds nothing: a is missed, b is carried
    let region = Rect {
        x: 0.0,
        y: 0.0,
        w: 100.0,
        h: 100.0,
    };
    let out = t.update_regions(1, vec![], &[region]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, b);
    assert!(t.predict(2).iter().all(|(id, _)| *id != a));
    // the region finds a again: same id, and b is still carried
    let out = t.update_regions(2, vec![face(11.0, 10.0, 40.0)], &[region]);
    assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), [a, b]);
}

#[test]
fn schedule_runs_every_frame_for_a_new_face_then_every_third_while_it_is_steady() {
    let runs = schedule_runs(30, |_| vec![face(200.0, 150.0, 80.0)]);
    // 3 runs in a row (new), then every max_interval (3) frames from the first.
    assert_eq!(&runs[..4], &[0, 1, 2, 3], "{runs:?}");
    assert!(runs[3..].windows(2).all(|w| w[1] - w[0] == 3), "{runs:?}");
}

#[test]
fn schedule_searches_every_third_frame_with_no_face() {
    let runs = schedule_runs(12, |_| Vec::new());
    assert_eq!(runs, vec![0, 3, 6, 9]);
}

#[test]
fn schedule_runs_more_often_for_a_face_that_moves_unpredictably() {
    // steady motion is predicted: as few runs as a still face
    let steady = schedule_runs(60, |f| vec![face(100.0 + f as f32 * 6.0, 150.0, 80.0)]);
    // a zig-zag the constant-velocity prediction gets wrong
    let zigzag = schedule_runs(60, |f| {
        let x = if (f / 2) % 2 == 0 { 200.0 } else { 230.0 };
        vec![face(x, 150.0, 80.0)]
    });
    assert!(steady.len() <= 22, "{steady:?}");
    assert!(zigzag.len() >= 40, "{zigzag:?}");
}

#[test]
fn schedule_watches_a_face_entering_at_the_edge() {
    // moving in from the left edge, its box partly outside
    let runs = schedule_runs(10, |f| vec![face(-40.0 + f as f32 * 3.0, 150.0, 80.0)]);
    assert!(runs.windows(2).all(|w| w[1] - w[0] <= 2), "{runs:?}");
}

#[test]
fn prediction_follows_growth() {
    let mut t = Tracker::new(TrackerConfig::default());
    for f in 0..4u64 {
        let s = 50.0 * 1.1f32.powi(f as i32);
        t.update(f, vec![face(100.0 - s / 2.0, 100.0 - s / 2.0, s)]);
    }
    let p = &t.predict(6)[0].1.rect;
    let want = 50.0 * 1.1f32.powi(6);
    assert!((p.w - want).abs() / want < 0.05, "{p:?} vs {want}");
    assert!((p.x + p.w / 2.0 - 100.0).abs() < 1.0, "{p:?}");
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
        max_missed: 2,
        ..TrackerConfig::default()
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

fn scored(x: f32, s: f32, score: f32) -> Detection {
    Detection {
        score,
        ..face(x, 0.0, s)
    }
}

/// A tracker whose tracks start at 0.5 (the element's default threshold).
fn with_hysteresis() -> Tracker {
    Tracker::new(TrackerConfig {
        start_score: 0.5,
        ..TrackerConfig::default()
    })
}

#[test]
fn a_weak_detection_continues_a_track_but_starts_none() {
    let mut t = with_hysteresis();
    let a = t.update(0, vec![scored(0.0, 40.0, 0.9)])[0].0;
    // The face's score dips under the threshold: it keeps its box and id; a weak detection
    // elsewhere is dropped.
    let out = t.update(1, vec![scored(200.0, 40.0, 0.4), scored(1.0, 40.0, 0.4)]);
    assert_eq!(out.len(), 1);
    assert_eq!(t.detected(), 1);
    assert_eq!(out[0].0, a);
    assert!((out[0].1.rect.x - 1.0).abs() < 1e-3);
    assert!(t.events().next().is_none());
    // A weak detection alone on the first frame starts nothing.
    let mut u = with_hysteresis();
    assert!(u.update(0, vec![scored(0.0, 40.0, 0.4)]).is_empty());
    assert!(u.predict(1).is_empty());
}

#[test]
fn a_weak_face_of_a_full_run_is_looked_at_on_the_next_frame() {
    let mut t = with_hysteresis();
    let s = Schedule::default();
    assert_eq!(
        t.plan(0, None, 640.0, 480.0, &s),
        Some(Plan::Full(RunReason::Due))
    );
    // Half in view at the full run: too weak for a track, a candidate.
    assert!(t.update(0, vec![scored(0.0, 60.0, 0.4)]).is_empty());
    let Some(Plan::Regions(RunReason::Candidate, rs)) = t.plan(1, Some(0), 640.0, 480.0, &s) else {
        panic!("no look at the candidate");
    };
    assert_eq!(rs.len(), 1);
    assert!(inside(&scored(0.0, 60.0, 0.4).rect, &rs[0]));
    // Found there: a track starts a frame after the full run, not at the next one.
    let out = t.update_regions(1, vec![scored(2.0, 60.0, 0.8)], &rs);
    assert_eq!(out.len(), 1);
    // Looked at once: a candidate that stays weak gets no more runs of its own.
    let mut u = with_hysteresis();
    u.update(0, vec![scored(0.0, 60.0, 0.4)]);
    let Some(Plan::Regions(_, rs)) = u.plan(1, Some(0), 640.0, 480.0, &s) else {
        panic!("no look at the candidate");
    };
    assert!(
        u.update_regions(1, vec![scored(1.0, 60.0, 0.4)], &rs)
            .is_empty()
    );
    assert_eq!(u.plan(2, Some(0), 640.0, 480.0, &s), None);
}

#[test]
fn a_strong_detection_takes_the_track_before_a_weak_one() {
    let mut t = with_hysteresis();
    let a = t.update(0, vec![scored(0.0, 40.0, 0.9)])[0].0;
    // The weak box overlaps the track more, but the strong one pairs first; the weak one is
    // then left without a track and dropped.
    let out = t.update(1, vec![scored(0.0, 40.0, 0.45), scored(8.0, 40.0, 0.8)]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, a);
    assert!((out[0].1.rect.x - 8.0).abs() < 1e-3);
    // Carried faces come after the detected ones.
    let b = t.update(2, vec![scored(9.0, 40.0, 0.9), scored(300.0, 40.0, 0.9)])[1].0;
    let region = Rect {
        x: 250.0,
        y: -50.0,
        w: 150.0,
        h: 150.0,
    };
    let out = t.update_regions(3, vec![scored(301.0, 40.0, 0.9)], &[region]);
    assert_eq!(t.detected(), 1);
    assert_eq!(out.iter().map(|f| f.0).collect::<Vec<_>>(), [b, a]);
}

#[test]
fn far_apart_faces_do_not_pair() {
    let mut t = Tracker::new(TrackerConfig::default());
    let a = t.update(0, vec![face(0.0, 0.0, 40.0)])[0].0;
    let b = t.update(1, vec![face(300.0, 0.0, 40.0)])[0].0;
    assert_ne!(a, b);
}

#[test]
fn a_carried_cover_spans_the_last_box_and_the_prediction_and_grows_with_time() {
    let mut t = Tracker::new(TrackerConfig::default());
    let id = t.update(0, vec![face(100.0, 100.0, 40.0)])[0].0;
    t.update(1, vec![face(120.0, 100.0, 40.0)]);
    // velocity 10 px a frame (smoothed): predicted at 150 on frame 4
    let p = t.predict(4)[0].1.rect;
    let c = t.carried_cover(id, 4).unwrap();
    assert!(c.x <= 120.0 && c.x + c.w >= p.x + p.w, "{c:?} {p:?}");
    assert!(c.y < 100.0 && c.y + c.h > 140.0, "{c:?}");
    let later = t.carried_cover(id, 10).unwrap();
    assert!(later.h > c.h && later.w > c.w, "{later:?} {c:?}");
    // on the frame of its detection, the box itself
    let now = t.carried_cover(id, 1).unwrap();
    assert_eq!((now.x, now.w), (120.0, 40.0));
    assert_eq!(t.carried_cover(id + 1, 4), None);
}

#[test]
fn a_track_a_region_run_missed_is_still_covered_until_it_is_dropped() {
    let mut t = Tracker::new(TrackerConfig::default());
    t.update(0, vec![face(100.0, 100.0, 40.0)]);
    assert!(
        t.missed_covers(1).is_empty(),
        "a found face is carried, not missed"
    );
    // A region run over the face that finds nothing: the track is kept, unseen, and left out of
    // the frame's faces; its box is still to be covered.
    let region = Rect {
        x: 50.0,
        y: 50.0,
        w: 150.0,
        h: 150.0,
    };
    let out = t.update_regions(1, vec![], &[region]);
    assert!(out.is_empty());
    let covers = t.missed_covers(1);
    assert_eq!(covers.len(), 1);
    let c = covers[0];
    assert!(
        c.x <= 100.0 && c.y <= 100.0 && c.x + c.w >= 140.0 && c.y + c.h >= 140.0,
        "{c:?}"
    );
    // Missed by more runs than max_missed: dropped, no longer covered.
    for f in 2..10 {
        t.update_regions(f, vec![], &[region]);
    }
    assert!(t.missed_covers(10).is_empty());
}
