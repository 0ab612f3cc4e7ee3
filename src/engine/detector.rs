// SPDX-License-Identifier: MIT
//! A face detector: model session + manifest + decoder, GStreamer-free so that the elements and the
//! CLI share it. It samples a frame straight into the model's input tensor, runs the model and returns
//! faces in frame coordinates.

use ort::value::TensorRef;

use crate::engine::decode::nms::nms;
use crate::engine::decode::{Decoder, Detection, Rect, TensorView, decoder_for};
use crate::engine::frame::{Affine, FrameView};
use crate::engine::manifest::{ModelSpec, Resize};
use crate::engine::runtime::{
    RuntimeError, SharedSession, Sharing, check_names, load_shared, lock,
};

/// Filtering applied after decoding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectParams {
    /// Minimum detector score.
    pub threshold: f32,
    /// IoU above which the weaker of two overlapping faces is dropped.
    pub nms_iou: f32,
    /// Faces whose box is smaller than this (shorter side, frame pixels) are dropped.
    pub min_face_size: f32,
    /// Keep at most this many faces (the best-scoring); 0 = no limit.
    pub max_faces: usize,
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams {
            threshold: 0.5,
            nms_iou: 0.3,
            min_face_size: 0.0,
            max_faces: 0,
        }
    }
}

/// Where a detector's time went, summed over its runs (ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimes {
    /// Frame → input tensor (sampling straight from the frame's format).
    pub tensor_ns: u64,
    /// Waiting for the turn at the model shared with other elements (cameras).
    pub wait_ns: u64,
    /// The model run, outputs copied out.
    pub model_ns: u64,
    /// Heatmap decode, scaling to the frame, NMS.
    pub decode_ns: u64,
}

/// A region run costs as little as a full-frame run past this share of the full run's tensor
/// pixels (a run's fixed costs, and the model's cost is not quite proportional to its pixels).
pub const MAX_REGION_SHARE: f32 = 0.6;

/// How far inside a region's side (frame pixels) a face must stay, where that side is not the
/// frame's: closer, the model saw it cut.
const CUT: f32 = 1.0;

/// A region run's part of the frame: `rect` in frame pixels (inside the frame), sampled into a
/// `tensor` of that size at the scale of a full-frame run, so that a face looks to the model as it
/// does on the whole frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub rect: Rect,
    pub tensor: (usize, usize),
}

/// Regions that cover `want` (frame pixels) for a frame whose full-frame run shows `shown` pixels (the frame, or more when letterboxed) in a tensor of `full` with sides in
/// multiples of `multiple`: each grown outward to the full run's tensor grid of `multiple`
/// pixels, inside the frame, overlapping ones merged. `None` when a full-frame run costs as
/// little: together more than `max_share` of its tensor, or one as wide or as tall as it.
pub fn regions_for(
    shown: (f32, f32),
    full: (usize, usize),
    multiple: usize,
    want: &[Rect],
    max_share: f32,
) -> Option<Vec<Region>> {
    let (sx, sy) = (full.0 as f32 / shown.0, full.1 as f32 / shown.1);
    let m = multiple.max(1);
    // On the full run's tensor grid, in whole multiples: the region's tensor is then a piece of
    // the full run's, sampled at the same points, and the model's feature maps (strides up to
    // the multiple) line up with the full run's.
    let (gw, gh) = (full.0 / m, full.1 / m);
    let grow = |r: &Rect| -> Option<Region> {
        let cells = |lo: f32, len: f32, s: f32, n: usize| -> Option<(usize, usize)> {
            let a = ((lo * s / m as f32).floor().max(0.0) as usize).min(n);
            let b = (((lo + len) * s / m as f32).ceil().max(0.0) as usize).min(n);
            (b > a && b - a < n).then_some((a, b))
        };
        let (x0, x1) = cells(r.x, r.w, sx, gw)?;
        let (y0, y1) = cells(r.y, r.h, sy, gh)?;
        let tensor = ((x1 - x0) * m, (y1 - y0) * m);
        Some(Region {
            rect: Rect {
                x: (x0 * m) as f32 / sx,
                y: (y0 * m) as f32 / sy,
                w: tensor.0 as f32 / sx,
                h: tensor.1 as f32 / sy,
            },
            tensor,
        })
    };
    let mut rects: Vec<Rect> = want.to_vec();
    loop {
        let regions: Vec<Region> = rects.iter().map(grow).collect::<Option<_>>()?;
        let pixels: usize = regions.iter().map(|r| r.tensor.0 * r.tensor.1).sum();
        if pixels as f32 > max_share * (full.0 * full.1) as f32 {
            return None;
        }
        // Two that overlap become one over both (a face in both would be found twice).
        let overlap = (0..regions.len()).find_map(|i| {
            (i + 1..regions.len())
                .find(|&j| regions[i].rect.iou(&regions[j].rect) > 0.0)
                .map(|j| (i, j))
        });
        let Some((i, j)) = overlap else {
            return Some(regions);
        };
        let (a, b) = (regions[i].rect, regions[j].rect);
        let (x0, y0) = (a.x.min(b.x), a.y.min(b.y));
        let (x1, y1) = ((a.x + a.w).max(b.x + b.w), (a.y + a.h).max(b.y + b.h));
        rects[i] = Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        };
        rects.swap_remove(j);
    }
}

pub struct Detector {
    spec: ModelSpec,
    /// Shared with every other element of the process that loads the same model.
    session: SharedSession,
    decoder: Box<dyn Decoder>,
    /// Longest tensor side asked for (0 = manifest default).
    inference_size: u32,
    tensor: Vec<f32>,
    /// The model's outputs of the last run (shape, values), reused from frame to frame.
    outputs: Vec<(Vec<i64>, Vec<f32>)>,
    /// Moving average of one model run (without the wait for the turn), ns.
    run_ns: u64,
    times: StageTimes,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("model", &self.spec.model_path)
            .field("decoder", &self.decoder)
            .finish()
    }
}

impl Detector {
    /// Loads the model, shared with the process's other detectors as `FACEVEIL_DETECTOR_SHARING`
    /// says ([`Sharing::from_env`]); fails with a message naming the file when the manifest and the
    /// model do not agree (input or output names), or the variable holds another value.
    pub fn new(
        spec: ModelSpec,
        threads: u32,
        inference_size: u32,
    ) -> Result<Detector, RuntimeError> {
        let sharing = Sharing::from_env().map_err(|reason| RuntimeError::Model {
            path: spec.model_path.clone(),
            reason,
        })?;
        Detector::with_sharing(spec, threads, inference_size, sharing)
    }

    /// [`Detector::new`] with the sharing given.
    pub fn with_sharing(
        spec: ModelSpec,
        threads: u32,
        inference_size: u32,
        sharing: Sharing,
    ) -> Result<Detector, RuntimeError> {
        let bad = |reason: String| RuntimeError::Model {
            path: spec.model_path.clone(),
            reason,
        };
        let section = spec.manifest.detector_section().map_err(bad)?;
        let decoder = decoder_for(section).map_err(|e| bad(e.to_string()))?;
        let session = load_shared(&spec.model_path, threads, sharing)?;
        let outputs: Vec<&str> = decoder.output_names().iter().map(String::as_str).collect();
        check_names(
            &lock(&session),
            &spec.model_path,
            &spec.manifest.input.name,
            &outputs,
        )?;
        Ok(Detector {
            spec,
            session,
            decoder,
            inference_size,
            tensor: Vec::new(),
            outputs: Vec::new(),
            run_ns: 0,
            times: StageTimes::default(),
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Changes the longest tensor side (0 = the manifest's default) from the next frame on.
    pub fn set_inference_size(&mut self, inference_size: u32) {
        self.inference_size = inference_size;
    }

    /// How long a caller would wait now before its model run starts: the callers ahead (this
    /// model is shared by the process's elements) beyond the free sessions, times the usual run,
    /// over the sessions that run side by side.
    pub fn expected_wait(&self) -> std::time::Duration {
        let seats = self.session.sessions() as u64;
        let ahead = (self.session.queued() + 1).saturating_sub(seats);
        std::time::Duration::from_nanos(ahead * self.run_ns / seats)
    }

    /// Time spent per stage so far.
    pub fn times(&self) -> StageTimes {
        self.times
    }

    /// Tensor size used for a frame of this size.
    pub fn tensor_size(&self, frame_w: usize, frame_h: usize) -> (usize, usize) {
        self.spec
            .manifest
            .tensor_size(frame_w, frame_h, self.inference_size)
    }

    /// The part of the frame (from its top-left corner) that the whole tensor of a full-frame run
    /// shows: the frame, or more when the model letterboxes.
    fn shown(&self, frame_w: usize, frame_h: usize) -> (f32, f32) {
        let (fw, fh) = (frame_w as f32, frame_h as f32);
        let (tw, th) = self.tensor_size(frame_w, frame_h);
        match self.spec.manifest.input.resize {
            Resize::Stretch => (fw, fh),
            Resize::Letterbox => {
                let s = (tw as f32 / fw).min(th as f32 / fh);
                (tw as f32 / s, th as f32 / s)
            }
        }
    }

    /// Detects faces in a frame; results are in frame pixels, sorted by descending score.
    pub fn detect(
        &mut self,
        frame: &FrameView<'_>,
        p: &DetectParams,
    ) -> Result<Vec<Detection>, RuntimeError> {
        let tensor = self.tensor_size(frame.width(), frame.height());
        let (w, h) = self.shown(frame.width(), frame.height());
        let all = Rect {
            x: 0.0,
            y: 0.0,
            w,
            h,
        };
        let mut faces = Vec::new();
        self.run(frame, &all, tensor, p.threshold, &mut faces)?;
        Ok(self.finish(faces, p))
    }

    /// The regions of a region run that looks at `want` (frame pixels) on a frame of this size
    /// ([`regions_for`]); `None` when a full-frame run costs as little, or the model takes one
    /// size only.
    pub fn regions(&self, frame_w: usize, frame_h: usize, want: &[Rect]) -> Option<Vec<Region>> {
        let input = &self.spec.manifest.input;
        if input.fixed_size.is_some() || want.is_empty() {
            return None;
        }
        regions_for(
            self.shown(frame_w, frame_h),
            self.tensor_size(frame_w, frame_h),
            input.size_multiple as usize,
            want,
            MAX_REGION_SHARE,
        )
    }

    /// Detects faces in `regions` of a frame only (one model run each), as a full-frame run would
    /// find them there. A face cut by a region's side inside the frame is left out: it is seen
    /// whole by the next full-frame run. Results as [`Detector::detect`].
    pub fn detect_regions(
        &mut self,
        frame: &FrameView<'_>,
        regions: &[Region],
        p: &DetectParams,
    ) -> Result<Vec<Detection>, RuntimeError> {
        let (fw, fh) = (frame.width() as f32, frame.height() as f32);
        let mut faces = Vec::new();
        for r in regions {
            let start = faces.len();
            self.run(frame, &r.rect, r.tensor, p.threshold, &mut faces)?;
            let b = r.rect;
            let inside = |d: &Detection| {
                let f = d.rect;
                (b.x <= 0.0 || f.x >= b.x + CUT)
                    && (b.y <= 0.0 || f.y >= b.y + CUT)
                    && (b.x + b.w >= fw || f.x + f.w <= b.x + b.w - CUT)
                    && (b.y + b.h >= fh || f.y + f.h <= b.y + b.h - CUT)
            };
            let mut i = start;
            while i < faces.len() {
                if inside(&faces[i]) {
                    i += 1;
                } else {
                    faces.swap_remove(i);
                }
            }
        }
        Ok(self.finish(faces, p))
    }

    /// One model run on the `src` rectangle of the frame (frame pixels) sampled into a `tensor` of
    /// that size; appends the faces found, in frame pixels, before size limits and NMS.
    fn run(
        &mut self,
        frame: &FrameView<'_>,
        src: &Rect,
        (tw, th): (usize, usize),
        threshold: f32,
        faces: &mut Vec<Detection>,
    ) -> Result<(), RuntimeError> {
        let t_tensor = std::time::Instant::now();
        let tspec = self.spec.manifest.tensor_spec(tw, th);
        self.tensor.resize(tw * th * 3, 0.0);
        frame.sample_into(
            &Affine::stretch(tw, th, src.x, src.y, src.w, src.h),
            &tspec,
            &mut self.tensor,
        );

        let shape = match tspec.layout {
            crate::engine::frame::Layout::Nchw => [1usize, 3, th, tw],
            crate::engine::frame::Layout::Nhwc => [1usize, th, tw, 3],
        };
        let run_err = |e: &dyn std::fmt::Display| RuntimeError::Run(e.to_string());
        let input =
            TensorRef::from_array_view((shape, &self.tensor[..])).map_err(|e| run_err(&e))?;
        // The outputs are copied out so that the session is free for the next camera while this
        // one decodes.
        let t_wait = std::time::Instant::now();
        self.times.tensor_ns += (t_wait - t_tensor).as_nanos() as u64;
        let mut session = lock(&self.session);
        let t0 = std::time::Instant::now();
        self.times.wait_ns += (t0 - t_wait).as_nanos() as u64;
        let outputs = session
            .run(vec![(self.spec.manifest.input.name.as_str(), input)])
            .map_err(|e| run_err(&e))?;
        let names = self.decoder.output_names();
        self.outputs.resize_with(names.len(), Default::default);
        for (name, (shape, data)) in names.iter().zip(&mut self.outputs) {
            let value = outputs
                .get(name)
                .ok_or_else(|| RuntimeError::Run(format!("model produced no output '{name}'")))?;
            let (s, d) = value.try_extract_tensor::<f32>().map_err(|e| run_err(&e))?;
            shape.clear();
            shape.extend_from_slice(s);
            data.clear();
            data.extend_from_slice(d);
        }
        drop(outputs);
        drop(session);
        let t_decode = std::time::Instant::now();
        let took = (t_decode - t0).as_nanos() as u64;
        self.times.model_ns += took;
        // The usual run, for the wait estimate of other cameras: full-frame runs only.
        if (tw, th) == self.tensor_size(frame.width(), frame.height()) {
            self.run_ns = if self.run_ns == 0 {
                took
            } else {
                (self.run_ns * 7 + took) / 8
            };
        }
        let views: Vec<TensorView> = self
            .outputs
            .iter()
            .map(|(shape, data)| TensorView { shape, data })
            .collect();
        let raw = self
            .decoder
            .decode(&views, threshold)
            .map_err(|e| run_err(&e))?;

        // Tensor coordinates → frame coordinates (continuous: 0 is the left edge of pixel 0).
        let (kx, ky) = (src.w / tw as f32, src.h / th as f32);
        faces.extend(raw.into_iter().map(|mut d| {
            d.rect.x = src.x + d.rect.x * kx;
            d.rect.w *= kx;
            d.rect.y = src.y + d.rect.y * ky;
            d.rect.h *= ky;
            for l in &mut d.landmarks {
                l[0] = src.x + l[0] * kx;
                l[1] = src.y + l[1] * ky;
            }
            d
        }));
        self.times.decode_ns += t_decode.elapsed().as_nanos() as u64;
        Ok(())
    }

    /// Size limit, NMS and the face limit over one frame's faces.
    fn finish(&mut self, faces: Vec<Detection>, p: &DetectParams) -> Vec<Detection> {
        let t = std::time::Instant::now();
        let faces = faces
            .into_iter()
            .filter(|d| d.rect.w.min(d.rect.h) >= p.min_face_size);
        let mut faces = nms(faces.collect(), p.nms_iou);
        if p.max_faces > 0 {
            faces.truncate(p.max_faces);
        }
        self.times.decode_ns += t.elapsed().as_nanos() as u64;
        faces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: f32, y: f32, w: f32, h: f32) -> Rect {
        Rect { x, y, w, h }
    }

    fn covers(outer: &Rect, inner: &Rect) -> bool {
        outer.x <= inner.x
            && outer.y <= inner.y
            && outer.x + outer.w >= inner.x + inner.w
            && outer.y + outer.h >= inner.y + inner.h
    }

    const HD: (f32, f32) = (1920.0, 1080.0);
    const FULL: (usize, usize) = (640, 352);

    #[test]
    fn a_region_keeps_the_full_runs_scale_and_covers_the_face() {
        let want = rect(900.0, 400.0, 200.0, 240.0);
        let r = regions_for(HD, FULL, 32, &[want], 0.6).unwrap();
        assert_eq!(r.len(), 1);
        let r = r[0];
        assert_eq!((r.tensor.0 % 32, r.tensor.1 % 32), (0, 0));
        // x 900..1100 → tensor 300..367 → cells 9..12; y 400..640 → 130.4..208.6 → cells 4..7
        assert_eq!(r.tensor, (96, 96));
        assert!((r.rect.w / r.tensor.0 as f32 - 1920.0 / 640.0).abs() < 1e-4);
        assert!((r.rect.h / r.tensor.1 as f32 - 1080.0 / 352.0).abs() < 1e-4);
        assert!(covers(&r.rect, &want), "{r:?}");
        // on the full run's grid of 32 tensor pixels
        assert_eq!(r.rect.x * 640.0 / 1920.0 % 32.0, 0.0);
        assert!((r.rect.y * 352.0 / 1080.0 % 32.0).abs() < 1e-3, "{r:?}");
    }

    #[test]
    fn a_region_past_the_frames_edge_is_moved_inside() {
        let want = rect(-50.0, 1000.0, 150.0, 150.0);
        let r = regions_for(HD, FULL, 32, &[want], 0.6).unwrap()[0];
        assert_eq!(r.rect.x, 0.0);
        assert!((r.rect.y + r.rect.h - 1080.0).abs() < 1e-3, "{r:?}");
    }

    #[test]
    fn overlapping_regions_become_one_over_both() {
        let a = rect(100.0, 100.0, 200.0, 200.0);
        let b = rect(280.0, 150.0, 200.0, 200.0);
        let far = rect(1500.0, 700.0, 100.0, 100.0);
        let r = regions_for(HD, FULL, 32, &[a, b, far], 0.6).unwrap();
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().any(|r| covers(&r.rect, &a) && covers(&r.rect, &b)));
        assert!(r.iter().any(|r| covers(&r.rect, &far)));
        assert_eq!(r[0].rect.iou(&r[1].rect), 0.0);
    }

    #[test]
    fn a_full_frame_run_when_regions_cost_as_much() {
        // as wide as the frame
        assert!(regions_for(HD, FULL, 32, &[rect(0.0, 0.0, 1900.0, 100.0)], 0.6).is_none());
        // together more than the share of the full tensor
        let big = [
            rect(0.0, 0.0, 900.0, 900.0),
            rect(1000.0, 0.0, 900.0, 900.0),
        ];
        assert!(regions_for(HD, FULL, 32, &big, 0.6).is_none());
        assert!(regions_for(HD, FULL, 32, &big[..1], 0.6).is_some());
    }
}
