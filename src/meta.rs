// SPDX-License-Identifier: MIT
//! The metadata schema every faceveil element reads and writes (documented in docs/METADATA.md).
//! This module is the only place that knows the structure and field names.
//!
//! Each face is one `GstVideoRegionOfInterestMeta` with `roi_type` "face", its rectangle in frame
//! pixels (clamped to the frame) and its `id` equal to the face index. Its params hold one structure
//! per producing element:
//! - `faceveil-face` (veildetect): `index` (guint), `score` (gdouble), `landmarks` (array of
//!   gdouble: x0, y0, x1, y1, …, in frame pixels, unclamped).
//!   `track-id` (guint64, ≥ 1): stable across frames while the face stays in view.
//! - `faceveil-descriptor` (veilembed): `quality` (gdouble, this frame), `model-id` (string),
//!   `grayscale` (gboolean: the face has no colour on this frame, so its descriptor is matched at
//!   the grayscale threshold), and when the face has a descriptor: `descriptor` (GBytes, little-endian f32), `dimension`
//!   (guint), `fresh` (gboolean: computed on this frame, not reused from its track).
//! - `faceveil-identity` (veilmatch): `label` (string), `identity-id` (string), `score` (gdouble),
//!   `verified` (gboolean: this frame's fresh descriptor of the face is a hit for the identity;
//!   absent: false), on faces whose track is matched to a watch-list identity.
//!
//! [`strip_descriptors`] takes the embedder's part off (what `veilbin` passes on by default).
//!
//! With the `analytics` feature (GStreamer ≥ 1.24) every face is also described in GStreamer's
//! own analytics metadata ([`analytics`]).

use std::ops::ControlFlow;

use gst::buffer::BufferMetaForeachAction;
use gst::meta::CustomMeta;
use gst_video::VideoRegionOfInterestMeta;

use crate::engine::decode::{Detection, Rect};

#[cfg(feature = "analytics")]
pub mod analytics;
mod typed;

/// Name of the frame-level custom meta `veildetect` adds to every frame it passes.
pub const FRAME_META: &str = "FaceveilFrameMeta";

/// Registers the frame meta (idempotent; done at plugin load).
pub fn register() {
    if !CustomMeta::is_registered(FRAME_META) {
        CustomMeta::register_simple(FRAME_META);
    }
}

/// Frame-level facts from `veildetect`: the frame went through it, whether the model ran on it,
/// and how many faces it carries. Lets later elements tell "no face" from "no detector".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Frame number since the detector started.
    pub frame: u64,
    /// The model ran on this frame (false: faces carried by the tracker).
    pub detected: bool,
    pub faces: u32,
}

pub fn set_frame_info(buf: &mut gst::BufferRef, info: &FrameInfo) {
    register();
    if let Ok(mut m) = CustomMeta::add(buf, FRAME_META) {
        let s = m.mut_structure();
        s.set("frame", info.frame);
        s.set("detected", info.detected);
        s.set("faces", info.faces);
    }
}

/// Name of the custom downstream query `veildetect` sends on each live frame: a `veilredact`
/// downstream that redacts (mode not `none`) answers it, and the detector then computes the
/// frame's cover ([`FrameCover`]); unanswered, it spares that cost.
pub const COVER_QUERY: &str = "faceveil-cover";

/// What a live frame needs redacted besides its faces (`veildetect` on a live source; see
/// `engine::cover`), in frame pixels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameCover {
    /// The model ran over the whole frame: nothing more.
    pub full: bool,
    /// The whole frame.
    pub whole: bool,
    /// Carried faces' boxes grown by their uncertainty.
    pub grown: Vec<(u32, u32, u32, u32)>,
    /// Areas changed since the last full-frame run, outside the faces found on this frame.
    pub unseen: Vec<(u32, u32, u32, u32)>,
}

fn rects_array(rects: &[(u32, u32, u32, u32)]) -> gst::Array {
    gst::Array::new(rects.iter().flat_map(|r| [r.0, r.1, r.2, r.3]))
}

fn rects_of(a: &gst::Array) -> Option<Vec<(u32, u32, u32, u32)>> {
    let v: Vec<u32> = a
        .iter()
        .map(|v| v.get::<u32>().ok())
        .collect::<Option<_>>()?;
    v.len().is_multiple_of(4).then(|| {
        v.chunks_exact(4)
            .map(|c| (c[0], c[1], c[2], c[3]))
            .collect()
    })
}

/// Adds the cover of a live frame to its frame meta (after [`set_frame_info`]).
pub fn set_frame_cover(buf: &mut gst::BufferRef, cover: &FrameCover) {
    if let Ok(mut m) = CustomMeta::from_mut_buffer(buf, FRAME_META) {
        let s = m.mut_structure();
        s.set("full", cover.full);
        s.set("whole", cover.whole);
        s.set("grown", rects_array(&cover.grown));
        s.set("unseen", rects_array(&cover.unseen));
    }
}

/// The cover of a live frame; `None` when the frame has none (not live, or an older writer). A
/// cover that cannot be read is the whole frame.
pub fn frame_cover(buf: &gst::BufferRef) -> Option<FrameCover> {
    if !CustomMeta::is_registered(FRAME_META) {
        return None;
    }
    let m = CustomMeta::from_buffer(buf, FRAME_META).ok()?;
    let s = m.structure();
    if !s.has_field("full") {
        return None;
    }
    let read = || {
        Some(FrameCover {
            full: s.get("full").ok()?,
            whole: s.get("whole").ok()?,
            grown: rects_of(&s.get("grown").ok()?)?,
            unseen: rects_of(&s.get("unseen").ok()?)?,
        })
    };
    Some(read().unwrap_or(FrameCover {
        whole: true,
        ..FrameCover::default()
    }))
}

pub fn frame_info(buf: &gst::BufferRef) -> Option<FrameInfo> {
    if !CustomMeta::is_registered(FRAME_META) {
        return None;
    }
    let m = CustomMeta::from_buffer(buf, FRAME_META).ok()?;
    let s = m.structure();
    Some(FrameInfo {
        frame: s.get("frame").ok()?,
        detected: s.get("detected").ok()?,
        faces: s.get("faces").ok()?,
    })
}

/// Name of the custom downstream query `veilembed` sends on each frame when it verifies identities
/// (`verify-identified`): a `veilmatch` downstream answers it with the tracks that carry an
/// identity ([`identified_tracks`]), whose faces then get a fresh descriptor on every frame the
/// detector finds them.
pub const IDENTIFIED_QUERY: &str = "faceveil-identified";

/// The query [`IDENTIFIED_QUERY`], unanswered.
pub fn identified_query() -> gst::query::Custom<gst::Query> {
    gst::query::Custom::new(gst::Structure::new_empty(IDENTIFIED_QUERY))
}

/// Whether `q` is [`IDENTIFIED_QUERY`].
pub fn is_identified_query(q: &gst::QueryRef) -> bool {
    q.type_() == gst::QueryType::Custom
        && q.structure().is_some_and(|s| s.name() == IDENTIFIED_QUERY)
}

/// Answers [`IDENTIFIED_QUERY`] with the tracks that carry an identity.
pub fn answer_identified(q: &mut gst::QueryRef, tracks: &[u64]) {
    q.structure_mut()
        .set("tracks", gst::Array::new(tracks.iter().copied()));
}

/// The tracks an answered [`IDENTIFIED_QUERY`] names; none when unanswered or unreadable.
pub fn identified_tracks(q: &gst::QueryRef) -> Vec<u64> {
    q.structure()
        .and_then(|s| s.get::<gst::Array>("tracks").ok())
        .map(|a| a.iter().filter_map(|v| v.get::<u64>().ok()).collect())
        .unwrap_or_default()
}

/// `roi_type` of face ROIs.
pub const ROI_TYPE: &str = "face";
/// Name of the detector's param structure.
pub const FACE_PARAMS: &str = "faceveil-face";
/// Name of the embedder's param structure.
pub const DESCRIPTOR_PARAMS: &str = "faceveil-descriptor";
/// Name of the matcher's param structure.
pub const IDENTITY_PARAMS: &str = "faceveil-identity";

/// The watch-list identity a face's track is matched to.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentityTag {
    pub label: String,
    pub identity_id: String,
    pub score: f32,
    /// Confirmed on this frame by a fresh descriptor of this face (false: carried by the track).
    pub verified: bool,
}

impl IdentityTag {
    fn params(&self) -> gst::Structure {
        gst::Structure::builder(IDENTITY_PARAMS)
            .field("label", &self.label)
            .field("identity-id", &self.identity_id)
            .field("score", self.score as f64)
            .field("verified", self.verified)
            .build()
    }

    fn from_params(p: &gst::StructureRef) -> Option<IdentityTag> {
        Some(IdentityTag {
            label: p.get("label").ok()?,
            identity_id: p.get("identity-id").ok()?,
            score: p.get::<f64>("score").ok()? as f32,
            // An older writer's tag was never verified.
            verified: p.get::<bool>("verified").unwrap_or(false),
        })
    }
}

/// What the embedder says about a face.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// Quality of the face on this frame (frontalness × sharpness, 0..1).
    pub quality: f32,
    /// The embedder model (`name:sha256-prefix`).
    pub model_id: String,
    /// The descriptor, when the face (or its track) has one.
    pub vector: Option<Vec<f32>>,
    /// The descriptor was computed on this frame.
    pub fresh: bool,
    /// The face has no colour on this frame (an IR or black-and-white source).
    pub grayscale: bool,
}

impl Embedding {
    fn params(&self) -> gst::Structure {
        let mut b = gst::Structure::builder(DESCRIPTOR_PARAMS)
            .field("quality", self.quality as f64)
            .field("model-id", &self.model_id)
            .field("grayscale", self.grayscale);
        if let Some(v) = &self.vector {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            b = b
                .field("descriptor", gst::glib::Bytes::from_owned(bytes))
                .field("dimension", v.len() as u32)
                .field("fresh", self.fresh);
        }
        b.build()
    }

    /// The embedding as reading its structure back gives it (`fresh` is written only with a
    /// descriptor).
    fn as_read_back(&self) -> Embedding {
        Embedding {
            fresh: self.fresh && self.vector.is_some(),
            ..self.clone()
        }
    }

    fn from_params(p: &gst::StructureRef) -> Option<Embedding> {
        let vector = p.get::<gst::glib::Bytes>("descriptor").ok().map(|b| {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>()
        });
        if let Some(v) = &vector
            && p.get::<u32>("dimension").ok()? as usize != v.len()
        {
            return None;
        }
        Some(Embedding {
            quality: p.get::<f64>("quality").ok()? as f32,
            model_id: p.get::<String>("model-id").ok()?,
            vector,
            fresh: p.get::<bool>("fresh").unwrap_or(false),
            grayscale: p.get::<bool>("grayscale").unwrap_or(false),
        })
    }
}

/// One face as the detector describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    /// Position in the frame's face list (descending score); equals the ROI id.
    pub index: u32,
    /// Tracker id, stable across frames while the face stays in view (≥ 1).
    pub track_id: u64,
    /// Box in frame pixels, clamped to the frame.
    pub rect: (u32, u32, u32, u32),
    pub score: f32,
    /// Landmarks in frame pixels, in the model's order (5-point: left eye, right eye, nose, left
    /// and right mouth corner, as seen in the image).
    pub landmarks: Vec<[f32; 2]>,
    /// The model found the face on this frame (false: the tracker carried it from an earlier one).
    pub detected: bool,
    /// Added by veilembed.
    pub embedding: Option<Embedding>,
    /// Added by veilmatch.
    pub identity: Option<IdentityTag>,
    /// The face's object-detection entry in the frame's GStreamer analytics metadata (the
    /// `analytics` feature, GStreamer ≥ 1.24), where it has one.
    pub analytics_id: Option<u32>,
}

impl Face {
    /// From a detection in frame coordinates (`detected`: by the model on this frame, not carried
    /// by the tracker); `None` when the box lies outside the frame.
    pub fn from_detection(
        index: u32,
        track_id: u64,
        d: &Detection,
        detected: bool,
        frame_w: u32,
        frame_h: u32,
    ) -> Option<Face> {
        let rect = clamp_rect(&d.rect, frame_w, frame_h)?;
        Some(Face {
            index,
            track_id,
            rect,
            score: d.score,
            landmarks: d.landmarks.clone(),
            detected,
            embedding: None,
            identity: None,
            analytics_id: None,
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
            .field("track-id", self.track_id)
            .field("score", self.score as f64)
            .field("landmarks", self.landmarks_array())
            .field("detected", self.detected)
            .field_if_some("analytics-id", self.analytics_id)
            .build()
    }

    /// The `face` structure of the `veildetect` bus message (shape of OpenCV's `facedetect`).
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
            .field("track-id", self.track_id)
            .build()
    }

    /// What of this face leaves `veilbin` unless its `keep-descriptors` asks for more: the
    /// detector's part (box, track id) and, on a face matched to the watch list, the identity;
    /// not the embedder's (the descriptor, the quality). A face that did not match has no identity
    /// to keep: `veilmatch` gives none, nor a score or a nearest label.
    pub fn stripped(&self) -> Face {
        Face {
            embedding: None,
            ..self.clone()
        }
    }

    /// The face as reading its ROI back gives it ([`Face::from_roi`]).
    fn as_read_back(&self) -> Face {
        Face {
            embedding: self.embedding.as_ref().map(Embedding::as_read_back),
            ..self.clone()
        }
    }

    /// Reads a face ROI; `None` for ROIs that are not faceveil faces.
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
            track_id: p.get::<u64>("track-id").ok()?,
            rect: roi.rect(),
            score: p.get::<f64>("score").ok()? as f32,
            landmarks: vals.chunks_exact(2).map(|c| [c[0], c[1]]).collect(),
            detected: p.get::<bool>("detected").unwrap_or(true),
            embedding: roi
                .param(DESCRIPTOR_PARAMS)
                .and_then(Embedding::from_params),
            identity: roi
                .param(IDENTITY_PARAMS)
                .and_then(IdentityTag::from_params),
            analytics_id: p.get::<u32>("analytics-id").ok(),
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

/// Attaches a face ROI to a buffer: the detector's part, and the embedder's and the matcher's
/// where the face has them.
pub fn add_face(buf: &mut gst::BufferRef, face: &Face) {
    add_faces(buf, std::slice::from_ref(face));
}

/// Attaches face ROIs (as [`add_face`]) and keeps the frame's typed faces up to date.
fn add_faces(buf: &mut gst::BufferRef, new: &[Face]) {
    let before = typed::take(buf);
    for face in new {
        attach_roi(buf, face);
    }
    let after = match before {
        Some(mut fs) => {
            fs.extend(new.iter().map(Face::as_read_back));
            fs.sort_by_key(|f| f.index);
            // With two faces under one index their order is the ROIs' order: read it.
            if fs.windows(2).all(|w| w[0].index != w[1].index) {
                fs
            } else {
                parse_faces(buf)
            }
        }
        None => parse_faces(buf),
    };
    typed::store(buf, after);
}

fn attach_roi(buf: &mut gst::BufferRef, face: &Face) {
    let mut roi = VideoRegionOfInterestMeta::add(buf, ROI_TYPE, face.rect);
    roi.set_id(face.index as i32);
    roi.add_param(face.params());
    if let Some(e) = &face.embedding {
        roi.add_param(e.params());
    }
    if let Some(id) = &face.identity {
        roi.add_param(id.params());
    }
}

/// A faceveil face ROI (the parts of faceveil's elements), not another producer's.
fn is_ours(roi: &VideoRegionOfInterestMeta) -> bool {
    roi.roi_type() == ROI_TYPE
        && roi
            .params()
            .any(|p| [FACE_PARAMS, DESCRIPTOR_PARAMS, IDENTITY_PARAMS].contains(&p.name().as_str()))
}

/// The buffer has something [`strip_descriptors`] takes off (read only: the buffer need not be
/// made writable for nothing).
pub fn carries_descriptors(buf: &gst::BufferRef) -> bool {
    buf.iter_meta::<VideoRegionOfInterestMeta>().any(|roi| {
        is_ours(&roi) && (roi.param(DESCRIPTOR_PARAMS).is_some() || Face::from_roi(&roi).is_none())
    })
}

/// Takes the embedder's part (descriptor, quality) off every faceveil face on the buffer, keeping
/// what [`Face::stripped`] keeps; other ROIs are left alone. A face ROI whose parts cannot be read
/// is taken off whole. Returns whether anything was taken off.
pub fn strip_descriptors(buf: &mut gst::BufferRef) -> bool {
    if !carries_descriptors(buf) {
        return false;
    }
    let kept: Vec<Face> = faces(buf).iter().map(Face::stripped).collect();
    // ROI params cannot be taken off one by one: the ROIs go, the stripped faces come back.
    buf.foreach_meta_mut(|mut m| {
        let ours = m
            .downcast_ref::<VideoRegionOfInterestMeta>()
            .is_some_and(|roi| is_ours(roi));
        ControlFlow::Continue(if ours {
            BufferMetaForeachAction::Remove
        } else {
            BufferMetaForeachAction::Keep
        })
    });
    add_faces(buf, &kept);
    true
}

/// A part one element adds to a face.
enum Part<'a> {
    Embedding(&'a Embedding),
    Identity(&'a IdentityTag),
}

impl Part<'_> {
    fn params(&self) -> gst::Structure {
        match self {
            Part::Embedding(e) => e.params(),
            Part::Identity(id) => id.params(),
        }
    }

    /// The name of its param structure.
    fn name(&self) -> &'static str {
        match self {
            Part::Embedding(_) => DESCRIPTOR_PARAMS,
            Part::Identity(_) => IDENTITY_PARAMS,
        }
    }

    /// Sets the part on the typed face as reading the ROI gives it, where its structure is the
    /// first of its name on the ROI (the one read).
    fn apply(&self, face: &mut Face) {
        match self {
            Part::Embedding(e) => face.embedding = Some(Embedding::as_read_back(e)),
            Part::Identity(id) => face.identity = Some((*id).clone()),
        }
    }
}

/// Adds each part to the first face ROI with its index, in one pass over the ROIs, and keeps the
/// frame's typed faces up to date; returns, for each part, whether there was such a face.
fn add_parts(buf: &mut gst::BufferRef, parts: &[(u32, Part)]) -> Vec<bool> {
    if parts.is_empty() {
        return Vec::new();
    }
    let typed = typed::take(buf);
    let mut found = vec![false; parts.len()];
    // The part's structure is the first of its name on its ROI: reading the ROI gives it.
    let mut first = vec![false; parts.len()];
    let mut ours = 0;
    for mut roi in buf.iter_meta_mut::<VideoRegionOfInterestMeta>() {
        if roi.roi_type() != ROI_TYPE {
            continue;
        }
        let Some(index) = roi.param(FACE_PARAMS).map(|p| p.get::<u32>("index").ok()) else {
            continue;
        };
        ours += 1;
        for (i, (want, part)) in parts.iter().enumerate() {
            if !found[i] && index == Some(*want) {
                // A structure of this name already there (readable or not) is what is read, and
                // the typed face already says so.
                first[i] = roi.param(part.name()).is_none();
                roi.add_param(part.params());
                found[i] = true;
            }
        }
    }
    // In place only where each faceveil ROI is one face under its own index: then the ROI that
    // got the part is the face's.
    let faces = match typed {
        Some(mut fs) if fs.len() == ours && fs.windows(2).all(|w| w[0].index != w[1].index) => {
            for ((want, part), _) in parts.iter().zip(&first).filter(|(_, first)| **first) {
                if let Some(f) = fs.iter_mut().find(|f| f.index == *want) {
                    part.apply(f);
                }
            }
            fs
        }
        _ => parse_faces(buf),
    };
    typed::store(buf, faces);
    found
}

/// Attaches the embedder's part to the face with this index; false if there is no such face.
pub fn set_embedding(buf: &mut gst::BufferRef, index: u32, e: &Embedding) -> bool {
    add_parts(buf, &[(index, Part::Embedding(e))])[0]
}

/// Attaches the embedder's parts to the faces with these indexes, in one pass ([`set_embedding`]
/// for each).
pub fn set_embeddings(buf: &mut gst::BufferRef, embeddings: &[(u32, Embedding)]) {
    let parts: Vec<(u32, Part)> = embeddings
        .iter()
        .map(|(i, e)| (*i, Part::Embedding(e)))
        .collect();
    add_parts(buf, &parts);
}

/// Attaches the matcher's part to the face with this index; false if there is no such face. With
/// the `analytics` feature the face's object-detection entry also gets a classification entry
/// with the label (see [`analytics`]).
pub fn set_identity(buf: &mut gst::BufferRef, index: u32, id: &IdentityTag) -> bool {
    set_identities(buf, &[(index, id.clone())])[0]
}

/// Attaches the matcher's parts to the faces with these indexes, in one pass ([`set_identity`]
/// for each).
pub fn set_identities(buf: &mut gst::BufferRef, ids: &[(u32, IdentityTag)]) -> Vec<bool> {
    #[cfg(feature = "analytics")]
    let od: Vec<Option<u32>> = {
        let fs = faces(buf);
        ids.iter()
            .map(|(i, _)| {
                fs.iter()
                    .find(|f| f.index == *i)
                    .and_then(|f| f.analytics_id)
            })
            .collect()
    };
    let parts: Vec<(u32, Part)> = ids.iter().map(|(i, t)| (*i, Part::Identity(t))).collect();
    let found = add_parts(buf, &parts);
    #[cfg(feature = "analytics")]
    for (((_, id), od), found) in ids.iter().zip(od).zip(&found) {
        if let (Some(od), true) = (od, found) {
            analytics::classify(buf, od, &id.label, id.score);
        }
    }
    found
}

/// Attaches a frame's faces as [`veildetect`](crate) found them: one ROI each and, with the
/// `analytics` feature, one object-detection entry each, linked to a tracking entry (see
/// [`analytics`]); `times` keeps when each track was first seen.
pub fn add_detected_faces(buf: &mut gst::BufferRef, faces: &mut [Face], times: &mut TrackTimes) {
    #[cfg(feature = "analytics")]
    analytics::add_faces(buf, faces, times);
    #[cfg(not(feature = "analytics"))]
    let _ = times;
    add_faces(buf, faces);
}

/// When each track on the latest frame was first seen (the running time of its first frame), for
/// the analytics tracking entries; tracks that left are forgotten.
#[derive(Debug, Default)]
pub struct TrackTimes {
    #[cfg_attr(not(feature = "analytics"), allow(dead_code))]
    first_seen: std::collections::HashMap<u64, gst::ClockTime>,
}

impl TrackTimes {
    /// Each track's first-seen time, `now` for a new one; forgets the tracks not in `tracks`.
    #[cfg_attr(not(feature = "analytics"), allow(dead_code))]
    fn update(&mut self, tracks: &[u64], now: gst::ClockTime) -> Vec<gst::ClockTime> {
        self.first_seen.retain(|t, _| tracks.contains(t));
        tracks
            .iter()
            .map(|t| *self.first_seen.entry(*t).or_insert(now))
            .collect()
    }
}

/// Faces another detector described in GStreamer's analytics metadata (object-detection entries
/// of class `face`) on a frame that `veildetect` did not see: they are attached as faceveil faces
/// (and the frame gets its frame meta), so the element and those after it treat them like
/// `veildetect`'s. Such faces have no landmarks: the standard positions within their box stand in
/// (`engine::align::landmarks_in_box`). A face related to a tracking entry keeps that track id;
/// the others are tracked by `tracks` (ids with the top bit set, so they meet no tracker's).
/// True when the frame had analytics metadata (its faces, if any, are now attached); false without
/// the `analytics` feature.
pub fn adopt_foreign_faces(
    buf: &mut gst::BufferRef,
    frame_w: u32,
    frame_h: u32,
    tracks: &mut ForeignTracks,
) -> bool {
    #[cfg(feature = "analytics")]
    {
        analytics::adopt(buf, frame_w, frame_h, tracks)
    }
    #[cfg(not(feature = "analytics"))]
    {
        let _ = (buf, frame_w, frame_h, tracks);
        false
    }
}

/// The tracker of [`adopt_foreign_faces`] for faces that come without a tracking entry.
#[derive(Debug)]
pub struct ForeignTracks {
    #[cfg_attr(not(feature = "analytics"), allow(dead_code))]
    tracker: crate::engine::track::Tracker,
    #[cfg_attr(not(feature = "analytics"), allow(dead_code))]
    frames: u64,
}

impl Default for ForeignTracks {
    fn default() -> Self {
        ForeignTracks {
            tracker: crate::engine::track::Tracker::new(Default::default()),
            frames: 0,
        }
    }
}

/// The faceveil faces on a buffer, in index order: the typed faces the writers stored with the
/// ROIs, or where the ROIs changed since (a scaler, an application), read from the ROIs.
pub fn faces(buf: &gst::BufferRef) -> Vec<Face> {
    typed::faces(buf).unwrap_or_else(|| parse_faces(buf))
}

/// The buffer has typed faces and they say what reading its ROIs says (for the tests: the
/// faces came through the elements without being parsed again).
#[doc(hidden)]
pub fn typed_faces_in_step(buf: &gst::BufferRef) -> bool {
    typed::faces(buf).is_some_and(|fs| fs == parse_faces(buf))
}

/// The faceveil faces on a buffer, in index order, read from the ROI params every time (what
/// [`faces`] does when the typed faces do not apply; public for the benchmark and the tests).
#[doc(hidden)]
pub fn parse_faces(buf: &gst::BufferRef) -> Vec<Face> {
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
        let face = Face::from_detection(0, 7, &det, true, 40, 200).unwrap();
        assert_eq!(face.rect, (0, 10, 40, 61));
        {
            let b = buf.get_mut().unwrap();
            add_face(b, &face);
            // a foreign ROI is ignored
            VideoRegionOfInterestMeta::add(b, "person", (0, 0, 5, 5));
        }
        let emb = Embedding {
            quality: 0.5,
            model_id: "m:0123".into(),
            vector: Some(vec![1.0, -2.5, 3.25]),
            fresh: true,
            grayscale: false,
        };
        assert!(set_embedding(buf.get_mut().unwrap(), 0, &emb));
        assert!(!set_embedding(buf.get_mut().unwrap(), 3, &emb));
        assert_eq!(frame_info(&buf), None);
        let fi = FrameInfo {
            frame: 9,
            detected: true,
            faces: 1,
        };
        set_frame_info(buf.get_mut().unwrap(), &fi);
        assert_eq!(frame_info(&buf), Some(fi));
        assert_eq!(frame_cover(&buf), None);
        let cover = FrameCover {
            full: false,
            whole: false,
            grown: vec![(1, 2, 3, 4)],
            unseen: vec![(5, 6, 7, 8), (9, 10, 11, 12)],
        };
        set_frame_cover(buf.get_mut().unwrap(), &cover);
        assert_eq!(frame_cover(&buf), Some(cover));
        assert_eq!(frame_info(&buf), Some(fi));
        let tag = IdentityTag {
            label: "alice".into(),
            identity_id: "id".into(),
            score: 0.75,
            verified: true,
        };
        assert!(set_identity(buf.get_mut().unwrap(), 0, &tag));
        let got = faces(&buf);
        let mut want = face.clone();
        want.embedding = Some(emb);
        want.identity = Some(tag);
        assert_eq!(got, vec![want]);
        let s = got[0].message_structure();
        assert_eq!(s.get::<u32>("width").unwrap(), 40);
    }

    #[test]
    fn an_identity_without_verified_reads_as_unverified_and_the_query_carries_tracks() {
        gst::init().unwrap();
        let old = gst::Structure::builder(IDENTITY_PARAMS)
            .field("label", "alice")
            .field("identity-id", "id")
            .field("score", 0.75f64)
            .build();
        assert_eq!(
            IdentityTag::from_params(&old).map(|t| t.verified),
            Some(false)
        );
        let mut q = identified_query();
        assert!(is_identified_query(&q));
        assert!(identified_tracks(&q).is_empty(), "unanswered");
        answer_identified(&mut q, &[3, 9]);
        assert_eq!(identified_tracks(&q), [3, 9]);
        let other = gst::query::Custom::new(gst::Structure::new_empty("faceveil-cover"));
        assert!(!is_identified_query(&other));
    }

    /// Every param structure name of every ROI on `buf`, by ROI type.
    fn params_of(buf: &gst::BufferRef) -> Vec<(String, Vec<String>)> {
        buf.iter_meta::<VideoRegionOfInterestMeta>()
            .map(|roi| {
                (
                    roi.roi_type().to_string(),
                    roi.params().map(|p| p.name().to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn stripping_keeps_boxes_tracks_and_the_matched_label_only() {
        gst::init().unwrap();
        let face = |index: u32, track_id: u64, x: u32| Face {
            index,
            track_id,
            rect: (x, 10, 40, 50),
            score: 0.9,
            landmarks: vec![[1.0, 2.0]; 5],
            detected: true,
            embedding: Some(Embedding {
                quality: 0.6,
                model_id: "m:0123".into(),
                vector: Some(vec![0.5; 4]),
                fresh: true,
                grayscale: false,
            }),
            identity: None,
            analytics_id: None,
        };
        let listed = Face {
            identity: Some(IdentityTag {
                label: "alice".into(),
                identity_id: "id-a".into(),
                score: 0.8,
                verified: true,
            }),
            ..face(0, 3, 0)
        };
        let bystander = face(1, 4, 100);
        let mut buf = gst::Buffer::new();
        {
            let b = buf.get_mut().unwrap();
            set_frame_info(
                b,
                &FrameInfo {
                    frame: 1,
                    detected: true,
                    faces: 2,
                },
            );
            add_face(b, &listed);
            add_face(b, &bystander);
            VideoRegionOfInterestMeta::add(b, "person", (0, 0, 5, 5));
            // Another producer's face: not ours to strip.
            VideoRegionOfInterestMeta::add(b, ROI_TYPE, (9, 9, 5, 5))
                .add_param(gst::Structure::builder("other-detector").build());
        }
        assert_eq!(faces(&buf), [listed.clone(), bystander.clone()]);
        assert!(strip_descriptors(buf.get_mut().unwrap()));

        let got = faces(&buf);
        assert_eq!(got.len(), 2);
        let (a, b) = (&got[0], &got[1]);
        assert_eq!((a.rect, a.track_id), (listed.rect, 3));
        assert_eq!(
            a.identity, listed.identity,
            "the matched face keeps its identity"
        );
        assert_eq!((b.rect, b.track_id), (bystander.rect, 4));
        assert_eq!(b.identity, None);
        assert!(got.iter().all(|f| f.embedding.is_none()), "{got:?}");
        let mut params = params_of(&buf);
        params.sort();
        assert_eq!(
            params,
            [
                ("face".into(), vec!["faceveil-face".into()]),
                (
                    "face".into(),
                    vec!["faceveil-face".into(), "faceveil-identity".into()]
                ),
                ("face".into(), vec!["other-detector".into()]),
                ("person".into(), vec![]),
            ]
        );
        assert_eq!(frame_info(&buf).map(|f| f.faces), Some(2));
        // Nothing left to strip.
        assert!(!strip_descriptors(buf.get_mut().unwrap()));
    }

    fn sample_embedding(vector: Vec<f32>, grayscale: bool) -> Embedding {
        Embedding {
            quality: 0.5,
            model_id: "m:0123".into(),
            vector: Some(vector),
            fresh: true,
            grayscale,
        }
    }

    fn sample_tag(label: &str, verified: bool) -> IdentityTag {
        IdentityTag {
            label: label.into(),
            identity_id: format!("id-{label}"),
            score: 0.75,
            verified,
        }
    }

    fn sample_face(index: u32, track_id: u64, x: u32) -> Face {
        Face {
            index,
            track_id,
            rect: (x, 10, 40, 50),
            score: 0.9,
            landmarks: vec![[x as f32 + 0.25, 20.5]; 5],
            detected: true,
            embedding: None,
            identity: None,
            analytics_id: None,
        }
    }

    /// The typed faces are there and say what the ROIs say.
    fn typed_agrees(buf: &gst::BufferRef) -> Vec<Face> {
        let parsed = parse_faces(buf);
        assert_eq!(
            typed::faces(buf).as_ref(),
            Some(&parsed),
            "typed faces in step"
        );
        assert_eq!(faces(buf), parsed);
        parsed
    }

    #[test]
    fn typed_faces_follow_every_writer_and_a_copy_reads_the_rois() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let b = buf.get_mut().unwrap();
        VideoRegionOfInterestMeta::add(b, "person", (0, 0, 5, 5));
        let mut fs = vec![sample_face(0, 3, 0), sample_face(1, 4, 100)];
        add_detected_faces(b, &mut fs, &mut TrackTimes::default());
        assert_eq!(typed_agrees(b), fs);
        let with_vector = sample_embedding(vec![0.5, -1.25, 3.0], false);
        // `fresh` is written only with a descriptor: the typed face must read as the ROI does.
        let without = Embedding {
            vector: None,
            fresh: true,
            ..with_vector.clone()
        };
        set_embeddings(b, &[(1, without), (0, with_vector.clone())]);
        let got = typed_agrees(b);
        assert!(!got[1].embedding.as_ref().unwrap().fresh);
        assert_eq!(got[0].embedding.as_ref(), Some(&with_vector));
        // A second embedding of a face: the first one is what is read.
        let later = Embedding {
            quality: 0.1,
            ..with_vector.clone()
        };
        assert!(set_embedding(b, 0, &later));
        assert!(!set_embedding(b, 7, &later));
        assert_eq!(typed_agrees(b)[0].embedding.as_ref(), Some(&with_vector));
        let tag = sample_tag("alice", true);
        assert_eq!(
            set_identities(b, &[(0, tag.clone()), (9, tag.clone())]),
            [true, false]
        );
        assert_eq!(typed_agrees(b)[0].identity.as_ref(), Some(&tag));
        add_face(b, &sample_face(2, 5, 200));
        assert_eq!(typed_agrees(b).len(), 3);

        // A copy of the buffer (make_writable behind a tee) has copies of the ROIs: it is read
        // from them, and its next writer stores the faces anew.
        let mut copy = buf.copy();
        assert_eq!(typed::faces(&copy), None);
        assert_eq!(faces(&copy), parse_faces(&copy));
        assert!(set_identity(copy.get_mut().unwrap(), 2, &tag));
        assert_eq!(typed_agrees(&copy).len(), 3);
        let b = buf.get_mut().unwrap();
        assert!(strip_descriptors(b));
        let got = typed_agrees(b);
        assert!(got.iter().all(|f| f.embedding.is_none()));
        assert_eq!(got[0].identity.as_ref(), Some(&tag));
        assert_eq!(buf.iter_meta::<typed::FacesMeta>().count(), 1);
    }

    /// A ROI that already holds a part's structure, unreadable: the one added after it is not
    /// what reading gives, so the typed face must not have it either.
    #[test]
    fn a_part_behind_an_unreadable_one_is_not_taken() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let b = buf.get_mut().unwrap();
        let mut fs = vec![sample_face(0, 3, 0)];
        add_detected_faces(b, &mut fs, &mut TrackTimes::default());
        for mut roi in b.iter_meta_mut::<VideoRegionOfInterestMeta>() {
            roi.add_param(gst::Structure::builder(IDENTITY_PARAMS).build());
        }
        // The next writer reads the ROIs and stores them, in step again.
        assert!(set_embedding(b, 0, &sample_embedding(vec![1.0; 4], false)));
        assert!(typed_agrees(b)[0].embedding.is_some());
        assert!(set_identity(b, 0, &sample_tag("alice", true)));
        assert_eq!(typed_agrees(b)[0].identity, None);
    }

    #[test]
    fn changed_rois_are_read_again_and_the_next_writer_stores_them() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let b = buf.get_mut().unwrap();
        let mut fs = vec![sample_face(0, 3, 0), sample_face(1, 4, 100)];
        add_detected_faces(b, &mut fs, &mut TrackTimes::default());
        typed_agrees(b);

        // The ROI boxes change under the stored faces (an application rescaling them in place).
        for mut roi in b.iter_meta_mut::<VideoRegionOfInterestMeta>() {
            let (x, y, w, h) = roi.rect();
            roi.set_rect((x / 2, y / 2, w / 2, h / 2));
        }
        assert_eq!(typed::faces(b), None, "stale boxes are not used");
        let got = faces(b);
        assert_eq!(got[1].rect, (50, 5, 20, 25));
        assert_eq!(got, parse_faces(b));
        assert!(set_identity(b, 1, &sample_tag("bob", false)));
        assert_eq!(typed_agrees(b)[1].rect, (50, 5, 20, 25));

        // Another producer adds a face ROI; one of ours loses its landmarks (unreadable).
        VideoRegionOfInterestMeta::add(b, ROI_TYPE, (1, 1, 4, 4));
        assert_eq!(typed::faces(b), None);
        VideoRegionOfInterestMeta::add(b, ROI_TYPE, (2, 2, 4, 4)).add_param(
            gst::Structure::builder(FACE_PARAMS)
                .field("index", 0u32)
                .field("track-id", 9u64)
                .build(),
        );
        assert_eq!(faces(b).len(), 2);
        // The unreadable ROI holds index 0 too: the part may land on it, and the typed faces
        // must still say what reading the ROIs says.
        let e = sample_embedding(vec![1.0; 4], true);
        set_embeddings(b, &[(0, e.clone()), (1, e)]);
        assert_eq!(typed_agrees(b).len(), 2);
        // An application takes a face off.
        b.foreach_meta_mut(|mut m| {
            let last = m
                .downcast_ref::<VideoRegionOfInterestMeta>()
                .is_some_and(|r| r.id() == 1);
            ControlFlow::Continue(if last {
                BufferMetaForeachAction::Remove
            } else {
                BufferMetaForeachAction::Keep
            })
        });
        assert_eq!(typed::faces(b), None);
        assert_eq!(faces(b).len(), 1);
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
