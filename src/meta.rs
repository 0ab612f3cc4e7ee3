//! The metadata schema every facewatch element reads and writes (documented in docs/METADATA.md).
//! This module is the only place that knows the structure and field names.
//!
//! Each face is one `GstVideoRegionOfInterestMeta` with `roi_type` "face", its rectangle in frame
//! pixels (clamped to the frame) and its `id` equal to the face index. Its params hold one structure
//! per producing element:
//! - `facewatch-face` (facedetector): `index` (guint), `score` (gdouble), `landmarks` (array of
//!   gdouble: x0, y0, x1, y1, …, in frame pixels, unclamped).
//! - later issues add `track-id` to `facewatch-face`, and `facewatch-descriptor` (faceembedder) and
//!   `facewatch-identity` (facewatch) structures.

use gst_video::VideoRegionOfInterestMeta;

use crate::core::detect::{Detection, Rect};

/// `roi_type` of face ROIs.
pub const ROI_TYPE: &str = "face";
/// Name of the detector's param structure.
pub const FACE_PARAMS: &str = "facewatch-face";

/// One face as the detector describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    /// Position in the frame's face list (descending score); equals the ROI id.
    pub index: u32,
    /// Box in frame pixels, clamped to the frame.
    pub rect: (u32, u32, u32, u32),
    pub score: f32,
    /// Landmarks in frame pixels, in the model's order (5-point: left eye, right eye, nose, left
    /// and right mouth corner, as seen in the image).
    pub landmarks: Vec<[f32; 2]>,
}

impl Face {
    /// From a detection in frame coordinates; `None` when the box lies outside the frame.
    pub fn from_detection(index: u32, d: &Detection, frame_w: u32, frame_h: u32) -> Option<Face> {
        let rect = clamp_rect(&d.rect, frame_w, frame_h)?;
        Some(Face {
            index,
            rect,
            score: d.score,
            landmarks: d.landmarks.clone(),
        })
    }

    fn landmarks_array(&self) -> gst::Array {
        gst::Array::new(
            self.landmarks
                .iter()
                .flat_map(|p| [p[0] as f64, p[1] as f64]),
        )
    }

    fn params(&self) -> gst::Structure {
        gst::Structure::builder(FACE_PARAMS)
            .field("index", self.index)
            .field("score", self.score as f64)
            .field("landmarks", self.landmarks_array())
            .build()
    }

    /// The `face` structure of the `facedetector` bus message (shape of OpenCV's `facedetect`).
    pub fn message_structure(&self) -> gst::Structure {
        let (x, y, w, h) = self.rect;
        gst::Structure::builder("face")
            .field("x", x)
            .field("y", y)
            .field("width", w)
            .field("height", h)
            .field("score", self.score as f64)
            .field("landmarks", self.landmarks_array())
            .field("index", self.index)
            .build()
    }

    /// Reads a face ROI; `None` for ROIs that are not facewatch faces.
    pub fn from_roi(roi: &VideoRegionOfInterestMeta) -> Option<Face> {
        if roi.roi_type() != ROI_TYPE {
            return None;
        }
        let p = roi.param(FACE_PARAMS)?;
        let lm = p.get::<gst::Array>("landmarks").ok()?;
        let vals: Vec<f32> = lm
            .iter()
            .filter_map(|v| v.get::<f64>().ok())
            .map(|v| v as f32)
            .collect();
        Some(Face {
            index: p.get::<u32>("index").ok()?,
            rect: roi.rect(),
            score: p.get::<f64>("score").ok()? as f32,
            landmarks: vals.chunks_exact(2).map(|c| [c[0], c[1]]).collect(),
        })
    }
}

/// Rounds a box outward to whole pixels inside the frame; `None` if nothing is left.
pub fn clamp_rect(r: &Rect, frame_w: u32, frame_h: u32) -> Option<(u32, u32, u32, u32)> {
    let x0 = r.x.floor().max(0.0) as u32;
    let y0 = r.y.floor().max(0.0) as u32;
    let x1 = ((r.x + r.w).ceil().max(0.0) as u32).min(frame_w);
    let y1 = ((r.y + r.h).ceil().max(0.0) as u32).min(frame_h);
    (x1 > x0 && y1 > y0).then(|| (x0, y0, x1 - x0, y1 - y0))
}

/// Attaches a face ROI to a buffer.
pub fn add_face(buf: &mut gst::BufferRef, face: &Face) {
    let mut roi = VideoRegionOfInterestMeta::add(buf, ROI_TYPE, face.rect);
    roi.set_id(face.index as i32);
    roi.add_param(face.params());
}

/// The facewatch faces on a buffer, in index order.
pub fn faces(buf: &gst::BufferRef) -> Vec<Face> {
    let mut v: Vec<Face> = buf
        .iter_meta::<VideoRegionOfInterestMeta>()
        .filter_map(|m| Face::from_roi(&m))
        .collect();
    v.sort_by_key(|f| f.index);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_through_buffer() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let det = Detection {
            rect: Rect {
                x: -3.2,
                y: 10.5,
                w: 50.0,
                h: 60.0,
            },
            score: 0.75,
            landmarks: vec![
                [10.0, 20.0],
                [30.5, 20.25],
                [20.0, 35.0],
                [12.0, 50.0],
                [28.0, 50.0],
            ],
        };
        let face = Face::from_detection(0, &det, 40, 200).unwrap();
        assert_eq!(face.rect, (0, 10, 40, 61));
        {
            let b = buf.get_mut().unwrap();
            add_face(b, &face);
            // a foreign ROI is ignored
            VideoRegionOfInterestMeta::add(b, "person", (0, 0, 5, 5));
        }
        let got = faces(&buf);
        assert_eq!(got, vec![face]);
        let s = got[0].message_structure();
        assert_eq!(s.get::<u32>("width").unwrap(), 40);
    }

    #[test]
    fn clamp_outside_is_none() {
        let r = Rect {
            x: 100.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        assert_eq!(clamp_rect(&r, 50, 50), None);
    }
}
