// SPDX-License-Identifier: MIT
//! Face detection results and the model-specific decoders that produce them.
//!
//! A decoder turns a detector's raw output tensors into faces in *tensor* coordinates; the
//! [`Detector`](crate::engine::detector::Detector) maps them to frame coordinates and applies NMS and
//! the size limits. Adding a model family (YuNet, SCRFD, BlazeFace, …) means adding a decoder file here
//! and naming it in the model's manifest (`[detector] decoder = "…"`).

pub mod centerface;
pub mod nms;

use std::fmt;

use crate::engine::manifest::DetectorSection;

/// An axis-aligned box in pixels (top-left corner, size).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Rect {
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    pub fn iou(&self, o: &Rect) -> f32 {
        let x0 = self.x.max(o.x);
        let y0 = self.y.max(o.y);
        let x1 = (self.x + self.w).min(o.x + o.w);
        let y1 = (self.y + self.h).min(o.y + o.h);
        let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// One detected face: box, confidence and landmarks, all in the same coordinate space.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub rect: Rect,
    pub score: f32,
    /// Landmarks in the order the manifest states; for 5-point models: image-left eye, image-right
    /// eye, nose tip, left mouth corner, right mouth corner.
    pub landmarks: Vec<[f32; 2]>,
}

/// A borrowed output tensor.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    pub shape: &'a [i64],
    pub data: &'a [f32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Turns a detector's raw outputs into faces in tensor coordinates.
pub trait Decoder: Send + fmt::Debug {
    /// Output tensor names, in the order `decode` expects them.
    fn output_names(&self) -> &[String];
    /// Decodes one image (batch index 0) of the outputs, keeping faces scoring at least `threshold`.
    fn decode(
        &self,
        outputs: &[TensorView<'_>],
        threshold: f32,
    ) -> Result<Vec<Detection>, DecodeError>;
}

/// Builds the decoder named by a manifest's `[detector]` section.
pub fn decoder_for(section: &DetectorSection) -> Result<Box<dyn Decoder>, DecodeError> {
    match section.decoder.as_str() {
        "centerface" => Ok(Box::new(centerface::CenterFace::from_manifest(section)?)),
        other => Err(DecodeError(format!(
            "unknown detector decoder '{other}' (this build knows: centerface)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_basics() {
        let a = Rect {
            x: 0.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        let b = Rect {
            x: 5.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
        let c = Rect {
            x: 20.0,
            y: 20.0,
            w: 1.0,
            h: 1.0,
        };
        assert_eq!(a.iou(&c), 0.0);
    }
}
