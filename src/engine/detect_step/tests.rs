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
    }
}

/// What the step said about one frame: its cut, its skip, its new and lost tracks.
#[derive(Debug, Default, PartialEq)]
struct Heard {
    cut: bool,
    skipped: bool,
    tracks: Vec<TrackEvent>,
}

fn frame(
    step: &mut DetectStep<Fake>,
    pixels: &[u8],
    config: &Config,
    late: Option<Duration>,
    wait: Option<Duration>,
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
            },
            config,
            |_, note| match note {
                Note::Scene { cut, .. } => heard.cut |= cut,
                Note::Skipped { .. } => heard.skipped = true,
                Note::Track(ev) => heard.tracks.push(ev),
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
