// SPDX-License-Identifier: MIT
//! Unit tests of the detector's per-frame step, with a model that finds the faces a test gives it.

use super::*;
use crate::engine::detector::{MAX_REGION_SHARE, regions_for};
use crate::engine::frame::{PixelFormat, YuvMatrix};

const W: usize = 640;
const H: usize = 480;

/// A model that finds the faces a test puts in `faces` (those scoring at least the threshold):
/// all of them on a full-frame run, those inside a region on a region run. It notes each run: its
/// regions, or `None` for the whole frame.
#[derive(Default)]
struct Fake {
    faces: Vec<Detection>,
    runs: Vec<Option<Vec<Rect>>>,
    /// Not the model's: whether the frames say a redactor wants the cover (the tests' switch).
    cover: bool,
}

fn inside(r: &Rect, region: &Rect) -> bool {
    r.x >= region.x
        && r.y >= region.y
        && r.x + r.w <= region.x + region.w
        && r.y + r.h <= region.y + region.h
}

impl Model for Fake {
    fn set_inference_size(&mut self, _size: u32) {}

    fn regions(&self, width: usize, height: usize, want: &[Rect]) -> Option<Vec<Region>> {
        let shown = (width as f32, height as f32);
        regions_for(shown, (width, height), 32, want, MAX_REGION_SHARE)
    }

    fn detect(
        &mut self,
        _frame: &FrameView<'_>,
        params: &DetectParams,
    ) -> Result<Vec<Detection>, RuntimeError> {
        self.runs.push(None);
        Ok(self.found(params, |_| true))
    }

    fn detect_regions(
        &mut self,
        _frame: &FrameView<'_>,
        regions: &[Region],
        params: &DetectParams,
    ) -> Result<Vec<Detection>, RuntimeError> {
        let rects: Vec<Rect> = regions.iter().map(|r| r.rect).collect();
        let found = self.found(params, |d| rects.iter().any(|r| inside(&d.rect, r)));
        self.runs.push(Some(rects));
        Ok(found)
    }

    fn times(&self) -> StageTimes {
        StageTimes::default()
    }
}

impl Fake {
    fn found(&self, params: &DetectParams, seen: impl Fn(&Detection) -> bool) -> Vec<Detection> {
        self.faces
            .iter()
            .filter(|d| d.score >= params.threshold && seen(d))
            .cloned()
            .collect()
    }
}

fn face(x: f32, y: f32, score: f32) -> Detection {
    Detection {
        rect: Rect {
            x,
            y,
            w: 80.0,
            h: 80.0,
        },
        score,
        landmarks: vec![[x + 24.0, y + 32.0]],
    }
}

/// A grey RGB frame: frames of different `level`s are different scenes, frames of one level the
/// same scene.
fn scene(level: u8) -> Vec<u8> {
    vec![level; W * H * 3]
}

/// The element's defaults (threshold 0.5, track-threshold 0.3, max-lateness 100 ms).
fn config(interval: u32) -> Config {
    Config {
        params: DetectParams {
            threshold: 0.3,
            ..DetectParams::default()
        },
        start_score: 0.5,
        inference_size: 640,
        interval,
        max_lateness: Duration::from_millis(100),
        idle_interval: Duration::ZERO,
    }
}

/// What the step said about one frame: its cut, its skip, its new and lost tracks.
#[derive(Debug, Default, PartialEq)]
struct Heard {
    cut: bool,
    skipped: bool,
    tracks: Vec<TrackEvent>,
    gated: Option<Gated>,
}

fn frame(
    step: &mut DetectStep<Fake>,
    pixels: &[u8],
    config: &Config,
    late: Option<Duration>,
    wait: Option<Duration>,
) -> (FrameOut, Heard) {
    frame_at(step, pixels, config, late, wait, None)
}

/// [`frame`] with the frame's stream time.
fn frame_at(
    step: &mut DetectStep<Fake>,
    pixels: &[u8],
    config: &Config,
    late: Option<Duration>,
    wait: Option<Duration>,
    time: Option<Duration>,
) -> (FrameOut, Heard) {
    let view = FrameView::new(
        PixelFormat::Rgb,
        W,
        H,
        &[pixels],
        &[W * 3],
        YuvMatrix::BT601,
    )
    .expect("a frame view");
    let mut heard = Heard::default();
    let out = step
        .process(
            &FrameIn {
                view: &view,
                late,
                wait,
                cover: step.model.cover,
                time,
            },
            config,
            |_, note| match note {
                Note::Scene { cut, .. } => heard.cut |= cut,
                Note::Skipped { .. } => heard.skipped = true,
                Note::Track(ev) => heard.tracks.push(ev),
                Note::Gate { gated, .. } => heard.gated = Some(gated),
                Note::Schedule(_) => {}
            },
        )
        .expect("the fake model never fails");
    (out, heard)
}

fn ids(out: &FrameOut) -> Vec<u64> {
    out.faces.iter().map(|f| f.0).collect()
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

#[test]
fn a_scene_cut_forgets_the_tracks_and_runs_the_whole_frame() {
    let (dark, bright, cfg) = (scene(60), scene(200), config(0));
    // Five frames of one scene with a steady face: the whole frame on frames 0 and 3.
    let steady = || {
        let mut step = DetectStep::new(Fake::default());
        step.model.faces = vec![face(200.0, 150.0, 0.9)];
        for _ in 0..5 {
            let (out, heard) = frame(&mut step, &dark, &cfg, None, None);
            assert!(!heard.cut);
            assert_eq!(ids(&out), [1]);
        }
        step
    };
    // The same scene goes on: frame 5 gets no run over the whole frame.
    let mut step = steady();
    let runs = step.model.runs.len();
    frame(&mut step, &dark, &cfg, None, None);
    assert!(step.model.runs[runs..].iter().all(|r| r.is_some()));
    // Another scene: a full-frame run, whoever stands where the face stood is somebody else.
    let mut step = steady();
    let runs = step.model.runs.len();
    let (out, heard) = frame(&mut step, &bright, &cfg, None, None);
    assert!(heard.cut && out.ran);
    assert_eq!(step.model.runs[runs..], [None]);
    assert_eq!(ids(&out), [2]);
    assert_eq!(heard.tracks, [TrackEvent::Started(2)]);
    assert_eq!(step.counts().cuts, 1);
    assert_eq!(step.counts().frames, 6);
    // The new scene goes on: no cut.
    assert!(!frame(&mut step, &bright, &cfg, None, None).1.cut);
}

#[test]
fn a_late_frame_is_skipped_and_the_tracker_carries_its_faces() {
    let mut step = DetectStep::new(Fake::default());
    step.model.faces = vec![face(200.0, 150.0, 0.9)];
    let (px, cfg) = (scene(60), config(1));
    let (out, _) = frame(&mut step, &px, &cfg, ms(0), ms(0));
    assert!(out.ran);
    let (out, heard) = frame(&mut step, &px, &cfg, ms(150), ms(0));
    assert!(!out.ran && heard.skipped);
    assert_eq!((ids(&out), out.detected), (vec![1], 0), "carried");
    assert_eq!(step.model.runs.len(), 1);
    // Late, but within max-lateness: a run.
    let (out, _) = frame(&mut step, &px, &cfg, ms(100), ms(0));
    assert!(out.ran);
    assert_eq!((ids(&out), out.detected), (vec![1], 1));
    // Not live (nothing late), or max-lateness 0: never skipped.
    assert!(frame(&mut step, &px, &cfg, None, None).0.ran);
    let never = Config {
        max_lateness: Duration::ZERO,
        ..cfg
    };
    assert!(frame(&mut step, &px, &never, ms(5000), ms(5000)).0.ran);
    assert_eq!(step.counts().skipped, 1);
    assert_eq!(step.counts().inferences, 4);
}

#[test]
fn a_busy_model_is_waited_for_longer_the_longer_since_the_last_run() {
    let mut step = DetectStep::new(Fake::default());
    let (px, cfg) = (scene(60), config(1));
    assert!(frame(&mut step, &px, &cfg, ms(0), ms(0)).0.ran);
    // 150 ms of queue: over the 100 ms of patience for 3 frames, under the 200 ms of the 4th.
    let ran: Vec<bool> = (0..4)
        .map(|_| frame(&mut step, &px, &cfg, ms(0), ms(150)).0.ran)
        .collect();
    assert_eq!(ran, [false, false, false, true]);
    assert_eq!(step.counts().skipped, 3);
}

#[test]
fn however_late_the_frames_the_model_runs_once_in_sixty_past_the_interval() {
    let mut step = DetectStep::new(Fake::default());
    step.model.faces = vec![face(200.0, 150.0, 0.9)];
    let (px, cfg) = (scene(60), config(1));
    let mut ran = Vec::new();
    for n in 0..130u64 {
        let late = if n == 0 { ms(0) } else { ms(1000) };
        let (out, _) = frame(&mut step, &px, &cfg, late, ms(0));
        if out.ran {
            ran.push(out.number);
        }
        // The face is on every frame, found or carried.
        assert_eq!(ids(&out), [1], "frame {n}");
    }
    assert_eq!(ran, [0, 1 + MAX_SKIPS_IN_A_ROW, 2 + 2 * MAX_SKIPS_IN_A_ROW]);
    assert_eq!(step.counts().skipped, 127);
    assert_eq!(step.counts().frames, 130);
}

#[test]
fn between_full_runs_the_model_looks_at_regions_around_the_tracks() {
    let mut step = DetectStep::new(Fake::default());
    let a = face(200.0, 150.0, 0.9);
    step.model.faces = vec![a.clone()];
    let (px, cfg) = (scene(60), config(0));
    assert!(frame(&mut step, &px, &cfg, None, None).0.ran);
    assert_eq!(step.model.runs, [None]);
    // A face that enters far from the track is left to the next full-frame run.
    step.model.faces.push(face(500.0, 350.0, 0.9));
    let (out, _) = frame(&mut step, &px, &cfg, None, None);
    assert!(out.ran);
    let Some(Some(regions)) = step.model.runs.last() else {
        panic!("no region run: {:?}", step.model.runs);
    };
    assert_eq!(regions.len(), 1);
    assert!(inside(&a.rect, &regions[0]), "{regions:?}");
    assert!(regions[0].w < W as f32 / 2.0, "{regions:?}");
    assert_eq!((ids(&out), out.detected), (vec![1], 1));
    let c = step.counts();
    assert_eq!((c.inferences, c.region_frames, c.regions), (2, 1, 1));
    // The full-frame run (every 3rd frame) finds it.
    frame(&mut step, &px, &cfg, None, None);
    let (out, heard) = frame(&mut step, &px, &cfg, None, None);
    assert_eq!(step.model.runs.last(), Some(&None));
    assert_eq!(ids(&out), [1, 2]);
    assert_eq!(heard.tracks, [TrackEvent::Started(2)]);
}

#[test]
fn a_face_whose_score_dips_keeps_its_track_a_weak_one_starts_none() {
    let mut step = DetectStep::new(Fake::default());
    let (px, cfg) = (scene(60), config(1));
    step.model.faces = vec![face(200.0, 150.0, 0.9)];
    assert_eq!(ids(&frame(&mut step, &px, &cfg, None, None).0), [1]);
    // Between track-threshold and threshold: continues the track; a weak face elsewhere is dropped.
    step.model.faces = vec![face(202.0, 150.0, 0.4), face(450.0, 300.0, 0.4)];
    let (out, heard) = frame(&mut step, &px, &cfg, None, None);
    assert_eq!((ids(&out), out.detected), (vec![1], 1));
    assert_eq!(out.faces[0].1.score, 0.4);
    assert!(heard.tracks.is_empty());
    // With track-threshold at threshold: no hysteresis, the dipping face is missed.
    let off = Config {
        params: DetectParams {
            threshold: 0.5,
            ..cfg.params
        },
        ..cfg
    };
    let (out, _) = frame(&mut step, &px, &off, None, None);
    assert!(out.ran && out.faces.is_empty());
}

#[test]
fn a_flush_or_a_new_size_starts_over() {
    let mut step = DetectStep::new(Fake::default());
    step.model.faces = vec![face(200.0, 150.0, 0.9)];
    let cfg = config(3);
    assert!(frame(&mut step, &scene(60), &cfg, None, None).0.ran);
    assert!(!frame(&mut step, &scene(60), &cfg, None, None).0.ran);
    step.flush();
    // After a seek: a run at once, the tracks of before forgotten, and another picture is no cut.
    let (out, heard) = frame(&mut step, &scene(200), &cfg, None, None);
    assert!(out.ran && !heard.cut);
    assert_eq!(ids(&out), [2]);
    assert_eq!(step.counts().cuts, 0);
    // A new frame size: the adaptive schedule runs over the whole frame again.
    let cfg = config(0);
    let runs = step.model.runs.len();
    step.resized();
    let (out, heard) = frame(&mut step, &scene(200), &cfg, None, None);
    assert!(out.ran && !heard.cut);
    assert_eq!(step.model.runs[runs..], [None]);
    assert_eq!(ids(&out), [3]);
    assert_eq!(step.counts().frames, 4);
}

/// A grey frame with bright squares where `faces` are (80 × 80 at their corners).
fn with_faces(faces: &[Detection]) -> Vec<u8> {
    let mut v = scene(60);
    for f in faces {
        let (x0, y0) = (f.rect.x as usize, f.rect.y as usize);
        for y in y0..(y0 + 80).min(H) {
            for x in x0..(x0 + 80).min(W) {
                v[(y * W + x) * 3..][..3].copy_from_slice(&[230, 190, 170]);
            }
        }
    }
    v
}

#[test]
fn a_live_camera_runs_on_its_first_frame_however_late_and_after_a_flush() {
    let mut step = DetectStep::new(Fake::default());
    step.model.faces = vec![face(200.0, 150.0, 0.9)];
    let (px, cfg) = (scene(60), config(1));
    // A live camera late from its first frame on: the run is not left out.
    let (out, heard) = frame(&mut step, &px, &cfg, ms(1000), ms(0));
    assert!(out.ran && !heard.skipped, "{out:?}");
    assert!(!frame(&mut step, &px, &cfg, ms(1000), ms(0)).0.ran);
    step.flush();
    assert!(frame(&mut step, &px, &cfg, ms(1000), ms(0)).0.ran);
    step.resized();
    assert!(frame(&mut step, &px, &cfg, ms(1000), ms(0)).0.ran);
    // ... and a frame of another scene (a cut) too.
    let (out, heard) = frame(&mut step, &scene(200), &cfg, ms(1000), ms(0));
    assert!(heard.cut && out.ran);
}

#[test]
fn a_live_frame_without_a_full_run_says_what_to_cover() {
    let mut step = DetectStep::new(Fake::default());
    step.model.cover = true;
    let a = face(100.0, 100.0, 0.9);
    step.model.faces = vec![a.clone()];
    let cfg = config(1);
    // Not live: no cover (the schedule decides, nothing is late).
    assert_eq!(
        frame(
            &mut step,
            &with_faces(std::slice::from_ref(&a)),
            &cfg,
            None,
            None
        )
        .0
        .cover,
        None
    );
    step.flush();
    let (out, _) = frame(
        &mut step,
        &with_faces(std::slice::from_ref(&a)),
        &cfg,
        ms(0),
        ms(0),
    );
    assert_eq!(
        out.cover,
        Some(Cover {
            full: true,
            ..Cover::default()
        })
    );
    // Late: no run. The carried face gets a grown box; a face that entered where nothing looked
    // is unseen, and covered.
    let b = face(400.0, 300.0, 0.9);
    step.model.faces.push(b.clone());
    let (out, heard) = frame(
        &mut step,
        &with_faces(&[a.clone(), b.clone()]),
        &cfg,
        ms(500),
        ms(0),
    );
    assert!(heard.skipped && !out.ran);
    let cover = out.cover.expect("a live frame's cover");
    assert!(!cover.full && !cover.whole, "{cover:?}");
    assert_eq!(cover.grown.len(), 1);
    assert!(inside(&a.rect, &cover.grown[0]), "{cover:?}");
    assert_eq!(cover.unseen.len(), 1, "{cover:?}");
    assert!(inside(&b.rect, &cover.unseen[0]), "{cover:?}");
    assert!(!inside(&a.rect, &cover.unseen[0]), "{cover:?}");
    let c = step.counts();
    assert_eq!((c.cover_whole, c.cover_grown, c.cover_unseen), (0, 1, 1));
}

#[test]
fn a_live_frame_that_changed_mostly_since_the_full_run_is_covered_whole() {
    let mut step = DetectStep::new(Fake::default());
    step.model.cover = true;
    let cfg = config(1);
    assert!(frame(&mut step, &scene(60), &cfg, ms(0), ms(0)).0.ran);
    // Three quarters of the picture a little brighter (a light switched on): no cut, but an
    // unseen area over 60 % of the frame.
    let mut px = scene(60);
    px[..W * 3 * (H * 3 / 4)].fill(88);
    let (out, heard) = frame(&mut step, &px, &cfg, ms(500), ms(0));
    assert!(!out.ran, "{heard:?}");
    assert!(out.cover.unwrap().whole);
    assert_eq!(step.counts().cover_whole, 1);
}

#[test]
fn on_a_region_run_the_faces_found_are_seen_a_face_that_enters_elsewhere_is_not() {
    let mut step = DetectStep::new(Fake::default());
    step.model.cover = true;
    let cfg = config(0);
    let a = face(100.0, 100.0, 0.9);
    step.model.faces = vec![a.clone()];
    assert!(
        frame(
            &mut step,
            &with_faces(std::slice::from_ref(&a)),
            &cfg,
            ms(0),
            ms(0)
        )
        .0
        .ran
    );
    // The next frame: a region run around the new track finds it moved; another face enters.
    let (a2, b) = (face(110.0, 100.0, 0.9), face(400.0, 300.0, 0.9));
    step.model.faces = vec![a2.clone(), b.clone()];
    let (out, _) = frame(
        &mut step,
        &with_faces(&[a2.clone(), b.clone()]),
        &cfg,
        ms(0),
        ms(0),
    );
    assert!(out.ran && matches!(step.model.runs.last(), Some(Some(_))));
    assert_eq!(out.detected, 1);
    let cover = out.cover.unwrap();
    assert!(
        !cover.full && !cover.whole && cover.grown.is_empty(),
        "{cover:?}"
    );
    assert!(cover.unseen.iter().any(|u| inside(&b.rect, u)), "{cover:?}");
    let centre = |r: &Rect| (r.x + r.w / 2.0, r.y + r.h / 2.0);
    let (cx, cy) = centre(&a2.rect);
    assert!(
        !cover
            .unseen
            .iter()
            .any(|u| u.x <= cx && cx <= u.x + u.w && u.y <= cy && cy <= u.y + u.h),
        "the face found on this frame is covered: {cover:?}"
    );
}

#[test]
fn without_a_redactor_downstream_a_live_frame_only_says_whether_it_had_a_full_run() {
    let mut step = DetectStep::new(Fake::default());
    let a = face(100.0, 100.0, 0.9);
    step.model.faces = vec![a.clone()];
    let (px, cfg) = (with_faces(std::slice::from_ref(&a)), config(1));
    let (out, _) = frame(&mut step, &px, &cfg, ms(0), ms(0));
    assert_eq!(out.cover.map(|c| (c.full, c.whole)), Some((true, false)));
    let (out, _) = frame(&mut step, &px, &cfg, ms(500), ms(0));
    let cover = out.cover.unwrap();
    assert!(
        !cover.full && cover.whole && cover.grown.is_empty(),
        "{cover:?}"
    );
    // A redactor comes: whole until the next full-frame run gives the grid its reference.
    step.model.cover = true;
    assert!(
        frame(&mut step, &px, &cfg, ms(500), ms(0))
            .0
            .cover
            .unwrap()
            .whole
    );
    assert!(
        frame(&mut step, &px, &cfg, ms(0), ms(0))
            .0
            .cover
            .unwrap()
            .full
    );
    let cover = frame(&mut step, &px, &cfg, ms(500), ms(0)).0.cover.unwrap();
    assert!(!cover.whole && cover.grown.len() == 1, "{cover:?}");
    assert_eq!(step.counts().cover_whole, 1);
}

/// 15 frames a second: the stream time of frame `n`.
fn at(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n * 1000 / 15))
}

/// Gating on, with the element's default idle interval (2 s).
fn gated(interval: u32) -> Config {
    Config {
        idle_interval: Duration::from_secs(2),
        ..config(interval)
    }
}

/// Runs `n` frames of `px` at 15 fps from frame `from` on; the frames the model ran on.
fn still(step: &mut DetectStep<Fake>, px: &[u8], cfg: &Config, from: u64, n: u64) -> Vec<u64> {
    (from..from + n)
        .filter(|&f| frame_at(step, px, cfg, None, None, at(f)).0.ran)
        .collect()
}

#[test]
fn a_still_scene_without_faces_runs_the_model_once_per_idle_interval() {
    for interval in [1, 0, 3] {
        let mut step = DetectStep::new(Fake::default());
        let px = scene(60);
        let ran = still(&mut step, &px, &gated(interval), 0, 100);
        // The first frame, then a full-frame run each time 2 s have passed since the last one.
        assert_eq!(ran, [0, 30, 60, 90], "interval {interval}");
        assert!(step.model.runs.iter().all(|r| r.is_none()));
        let c = step.counts();
        assert_eq!((c.inferences, c.gated_forced, c.motion_runs), (4, 3, 0));
        assert!(c.gated_still > 0, "{c:?}");
    }
}

#[test]
fn gating_off_or_without_time_the_schedule_is_as_before() {
    let px = scene(60);
    // Idle interval 0: every frame (interval 1), every 3rd (adaptive), with or without time.
    for (cfg, time) in [(config(1), true), (gated(1), false), (config(1), false)] {
        let mut step = DetectStep::new(Fake::default());
        let ran: Vec<u64> = (0..30)
            .filter(|&f| {
                let t = if time { at(f) } else { None };
                frame_at(&mut step, &px, &cfg, None, None, t).0.ran
            })
            .collect();
        assert_eq!(ran, (0..30).collect::<Vec<_>>());
        let c = step.counts();
        assert_eq!((c.gated_still, c.gated_forced, c.motion_runs), (0, 0, 0));
    }
    let mut step = DetectStep::new(Fake::default());
    let ran = still(&mut step, &px, &config(0), 0, 12);
    assert_eq!(ran, [0, 3, 6, 9]);
}

#[test]
fn motion_in_a_corner_gets_a_region_run_there_and_finds_the_face() {
    let mut step = DetectStep::new(Fake::default());
    let cfg = gated(1);
    assert_eq!(still(&mut step, &scene(60), &cfg, 0, 10), [0]);
    // A face enters in the lower right corner.
    let b = face(520.0, 360.0, 0.9);
    step.model.faces = vec![b.clone()];
    let (out, heard) = frame_at(
        &mut step,
        &with_faces(std::slice::from_ref(&b)),
        &cfg,
        None,
        None,
        at(10),
    );
    assert!(out.ran, "{heard:?}");
    let Some(Some(regions)) = step.model.runs.last() else {
        panic!("no region run: {:?}", step.model.runs);
    };
    assert!(regions.iter().any(|r| inside(&b.rect, r)), "{regions:?}");
    let area: f32 = regions.iter().map(Rect::area).sum();
    assert!(area < (W * H) as f32 / 2.0, "{regions:?}");
    assert!(
        matches!(heard.gated, Some(Gated::Moved(n)) if n > 0),
        "{heard:?}"
    );
    assert_eq!((ids(&out), out.detected), (vec![1], 1));
    assert_eq!(heard.tracks, [TrackEvent::Started(1)]);
    assert_eq!(step.counts().motion_runs, 1);
}

#[test]
fn a_tracked_face_keeps_its_schedule_on_a_still_picture() {
    let a = face(200.0, 150.0, 0.9);
    let px = with_faces(std::slice::from_ref(&a));
    for interval in [1, 0] {
        let runs = |cfg: Config| {
            let mut step = DetectStep::new(Fake::default());
            step.model.faces = vec![a.clone()];
            let ran = still(&mut step, &px, &cfg, 0, 60);
            let counts = step.counts();
            (ran, step.model.runs, counts)
        };
        let (on, on_runs, c) = runs(gated(interval));
        let (off, off_runs, _) = runs(config(interval));
        assert_eq!(on, off, "interval {interval}");
        assert_eq!(on_runs, off_runs);
        assert_eq!((c.gated_still, c.gated_forced, c.motion_runs), (0, 0, 0));
        if interval == 1 {
            assert_eq!(on.len(), 60);
        }
    }
}

#[test]
fn a_cut_gets_a_full_run_however_still_the_picture_was() {
    let mut step = DetectStep::new(Fake::default());
    let cfg = gated(1);
    assert_eq!(still(&mut step, &scene(60), &cfg, 0, 10), [0]);
    let (out, heard) = frame_at(&mut step, &scene(200), &cfg, None, None, at(10));
    assert!(heard.cut && out.ran && heard.gated.is_none(), "{heard:?}");
    assert_eq!(step.model.runs.last(), Some(&None));
    // The new scene is still: gated again.
    assert_eq!(
        still(&mut step, &scene(200), &cfg, 11, 10),
        Vec::<u64>::new()
    );
    // A flush too: the next frame runs whatever the picture.
    step.flush();
    assert_eq!(still(&mut step, &scene(200), &cfg, 21, 5), [21]);
}

#[test]
fn a_gated_frame_on_a_live_camera_covers_what_changed() {
    let mut step = DetectStep::new(Fake::default());
    step.model.cover = true;
    let cfg = gated(1);
    let px = scene(60);
    let (out, _) = frame_at(&mut step, &px, &cfg, ms(0), ms(0), at(0));
    assert!(out.ran && out.cover.as_ref().unwrap().full);
    // Unchanged: gated, and nothing to cover.
    let (out, heard) = frame_at(&mut step, &px, &cfg, ms(0), ms(0), at(1));
    assert!(!out.ran && heard.gated == Some(Gated::Still), "{heard:?}");
    assert_eq!(out.cover, Some(Cover::default()));
    // A change too small for the gate (one of its cells): still no run, but the cover's finer
    // grid sees it, and it is covered.
    let mut small = scene(60);
    for y in 304..310 {
        for x in 404..410 {
            small[(y * W + x) * 3..][..3].copy_from_slice(&[250, 250, 250]);
        }
    }
    let (out, heard) = frame_at(&mut step, &small, &cfg, ms(0), ms(0), at(2));
    assert!(!out.ran && heard.gated == Some(Gated::Still), "{heard:?}");
    let cover = out.cover.unwrap();
    assert!(!cover.full && !cover.whole, "{cover:?}");
    assert_eq!(cover.unseen.len(), 1, "{cover:?}");
    let u = cover.unseen[0];
    assert!(u.x <= 404.0 && u.y <= 304.0 && u.x + u.w >= 410.0 && u.y + u.h >= 310.0);
    assert_eq!(step.counts().gated_still, 2);
}
