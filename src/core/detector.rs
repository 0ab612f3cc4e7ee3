// SPDX-License-Identifier: MIT
//! A face detector: model session + manifest + decoder, GStreamer-free so that the elements and the
//! CLI share it. It samples a frame straight into the model's input tensor, runs the model and returns
//! faces in frame coordinates.

use ort::value::TensorRef;

use crate::core::detect::nms::nms;
use crate::core::detect::{Decoder, Detection, TensorView, decoder_for};
use crate::core::frame::{Affine, FrameView};
use crate::core::manifest::{ModelSpec, Resize};
use crate::core::runtime::{RuntimeError, SharedSession, check_names, load_session, lock};

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
    /// Loads the model; fails with a message naming the file when the manifest and the model do not
    /// agree (input or output names).
    pub fn new(
        spec: ModelSpec,
        threads: u32,
        inference_size: u32,
    ) -> Result<Detector, RuntimeError> {
        let bad = |reason: String| RuntimeError::Model {
            path: spec.model_path.clone(),
            reason,
        };
        let section = spec
            .manifest
            .detector
            .as_ref()
            .ok_or_else(|| bad("manifest has no [detector] section".into()))?;
        let decoder = decoder_for(section).map_err(|e| bad(e.to_string()))?;
        let session = load_session(&spec.model_path, threads)?;
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
    /// model is shared by the process's elements) times the usual run.
    pub fn expected_wait(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.session.queued() * self.run_ns)
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

    /// Detects faces in a frame; results are in frame pixels, sorted by descending score.
    pub fn detect(
        &mut self,
        frame: &FrameView<'_>,
        p: &DetectParams,
    ) -> Result<Vec<Detection>, RuntimeError> {
        let (fw, fh) = (frame.width() as f32, frame.height() as f32);
        let (tw, th) = self.tensor_size(frame.width(), frame.height());
        // The part of the frame (from its top-left corner) that the whole tensor shows.
        let (src_w, src_h) = match self.spec.manifest.input.resize {
            Resize::Stretch => (fw, fh),
            Resize::Letterbox => {
                let s = (tw as f32 / fw).min(th as f32 / fh);
                (tw as f32 / s, th as f32 / s)
            }
        };
        let t_tensor = std::time::Instant::now();
        let tspec = self.spec.manifest.tensor_spec(tw, th);
        self.tensor.resize(tw * th * 3, 0.0);
        frame.sample_into(
            &Affine::stretch(tw, th, 0.0, 0.0, src_w, src_h),
            &tspec,
            &mut self.tensor,
        );

        let shape = match tspec.layout {
            crate::core::frame::Layout::Nchw => [1usize, 3, th, tw],
            crate::core::frame::Layout::Nhwc => [1usize, th, tw, 3],
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
        self.run_ns = if self.run_ns == 0 {
            took
        } else {
            (self.run_ns * 7 + took) / 8
        };
        let views: Vec<TensorView> = self
            .outputs
            .iter()
            .map(|(shape, data)| TensorView { shape, data })
            .collect();
        let raw = self
            .decoder
            .decode(&views, p.threshold)
            .map_err(|e| run_err(&e))?;

        // Tensor coordinates → frame coordinates (continuous: 0 is the left edge of pixel 0).
        let (kx, ky) = (src_w / tw as f32, src_h / th as f32);
        let faces = raw
            .into_iter()
            .map(|mut d| {
                d.rect.x *= kx;
                d.rect.w *= kx;
                d.rect.y *= ky;
                d.rect.h *= ky;
                for l in &mut d.landmarks {
                    l[0] *= kx;
                    l[1] *= ky;
                }
                d
            })
            .filter(|d| d.rect.w.min(d.rect.h) >= p.min_face_size);
        let mut faces = nms(faces.collect(), p.nms_iou);
        if p.max_faces > 0 {
            faces.truncate(p.max_faces);
        }
        self.times.decode_ns += t_decode.elapsed().as_nanos() as u64;
        Ok(faces)
    }
}
