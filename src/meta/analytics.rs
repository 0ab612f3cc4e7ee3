// SPDX-License-Identifier: MIT
//! GStreamer's analytics metadata (`GstAnalyticsRelationMeta`, GStreamer ≥ 1.24), written beside
//! faceveil's own (the `analytics` cargo feature; docs/METADATA.md, *GStreamer analytics
//! metadata*), so that `objectdetectionoverlay`, the tensor decoders and other analytics elements
//! see our faces, and faceveil's elements see faces that an analytics detector found.
//!
//! - Every face `veildetect` attaches is one object-detection entry: class `face`, its box in frame
//!   pixels, the detector's score as the confidence. It relates to a tracking entry holding the
//!   track id and the running time the track was first seen.
//! - A face whose track `veilmatch` matched to a listed person also relates to a classification
//!   entry: that person's label, with the match score as the confidence. Nothing else is written
//!   about a face: no descriptor, and for a face that did not match, no label or score.
//!
//! Relations go from the object-detection entry to the other entry (`RELATE_TO`).

use gst::glib;
use gst_analytics::prelude::*;
use gst_analytics::{AnalyticsODMtd, AnalyticsRelationMeta, AnalyticsTrackingMtd, RelTypes};

use super::{Face, ForeignTracks, FrameInfo, TrackTimes};
use crate::engine::align::landmarks_in_box;
use crate::engine::decode::{Detection, Rect};

/// The object-detection class of a face.
pub const FACE_CLASS: &str = "face";

fn face_quark() -> glib::Quark {
    glib::Quark::from_str(FACE_CLASS)
}

/// The frame's relation meta, added when it has none.
fn relation_meta(
    buf: &mut gst::BufferRef,
) -> gst::MetaRefMut<'_, AnalyticsRelationMeta, gst::meta::Standalone> {
    if buf.meta::<AnalyticsRelationMeta>().is_none() {
        return AnalyticsRelationMeta::add(buf);
    }
    buf.meta_mut::<AnalyticsRelationMeta>()
        .expect("the frame has a relation meta")
}

/// Adds each face's object-detection and tracking entries, and records the former's id in the
/// face (`analytics_id`). A face the meta cannot take keeps none (logged by the caller's ROI only).
pub fn add_faces(buf: &mut gst::BufferRef, faces: &mut [Face], times: &mut TrackTimes) {
    let now = buf.pts().unwrap_or(gst::ClockTime::ZERO);
    let tracks: Vec<u64> = faces.iter().map(|f| f.track_id).collect();
    let first_seen = times.update(&tracks, now);
    if faces.is_empty() && buf.meta::<AnalyticsRelationMeta>().is_some() {
        return;
    }
    // A frame with no face still gets the (empty) meta: "the detector ran and found nobody".
    let mut meta = relation_meta(buf);
    for (f, seen) in faces.iter_mut().zip(first_seen) {
        let (x, y, w, h) = f.rect;
        let od = meta
            .add_od_mtd(
                face_quark(),
                x as i32,
                y as i32,
                w as i32,
                h as i32,
                f.score,
            )
            .map(|m| m.id())
            .ok();
        let track = meta.add_tracking_mtd(f.track_id, seen).map(|m| m.id());
        if let (Some(od), Ok(track)) = (od, track) {
            let _ = meta.set_relation(RelTypes::RELATE_TO, od, track);
        }
        f.analytics_id = od;
    }
}

/// Relates the object-detection entry `od` to a classification entry with `label` (an id that is
/// no entry's is refused by the meta: nothing is related).
pub fn classify(buf: &mut gst::BufferRef, od: u32, label: &str, score: f32) {
    let Some(mut meta) = buf.meta_mut::<AnalyticsRelationMeta>() else {
        return;
    };
    let cls = meta
        .add_one_cls_mtd(score, glib::Quark::from_str(label))
        .map(|m| m.id());
    if let Ok(cls) = cls {
        let _ = meta.set_relation(RelTypes::RELATE_TO, od, cls);
    }
}

/// A face another detector described: box, confidence, its object-detection entry and its
/// tracking entry's id, if related to one.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignFace {
    pub rect: (i32, i32, i32, i32),
    pub confidence: f32,
    pub od: u32,
    pub track: Option<u64>,
}

/// The faces (object-detection entries of class `face`) on a frame; `None` without a relation meta.
pub fn foreign_faces(buf: &gst::BufferRef) -> Option<Vec<ForeignFace>> {
    let meta = buf.meta::<AnalyticsRelationMeta>()?;
    let face = face_quark();
    let mut out = Vec::new();
    for od in meta.iter::<AnalyticsODMtd>() {
        if od.obj_type() != Some(face) {
            continue;
        }
        let Ok(loc) = od.location() else { continue };
        let track = meta
            .iter_direct_related::<AnalyticsTrackingMtd>(od.id(), RelTypes::RELATE_TO)
            .next()
            .map(|t| t.info().0);
        out.push(ForeignFace {
            rect: (loc.x, loc.y, loc.w, loc.h),
            confidence: loc.loc_conf_lvl,
            od: od.id(),
            track,
        });
    }
    Some(out)
}

/// See [`super::adopt_foreign_faces`].
pub fn adopt(
    buf: &mut gst::BufferRef,
    frame_w: u32,
    frame_h: u32,
    tracks: &mut ForeignTracks,
) -> bool {
    let Some(found) = foreign_faces(buf) else {
        return false;
    };
    let mut faces = Vec::with_capacity(found.len());
    let mut untracked = Vec::new();
    for f in found {
        let (x, y, w, h) = f.rect;
        let r = Rect {
            x: x as f32,
            y: y as f32,
            w: w.max(0) as f32,
            h: h.max(0) as f32,
        };
        let Some(rect) = super::clamp_rect(&r, frame_w, frame_h) else {
            continue;
        };
        let score = if f.confidence.is_finite() {
            f.confidence.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let landmarks = landmarks_in_box(r.x, r.y, r.w, r.h);
        let track_id = match f.track {
            Some(t) if t > 0 => t,
            _ => {
                untracked.push((
                    faces.len(),
                    Detection {
                        rect: r,
                        score,
                        landmarks: landmarks.clone(),
                    },
                ));
                0
            }
        };
        faces.push(Face {
            index: faces.len() as u32,
            track_id,
            rect,
            score,
            landmarks,
            detected: true,
            embedding: None,
            identity: None,
            analytics_id: Some(f.od),
        });
    }
    // Every frame goes through the tracker, with or without untracked faces (tracks age).
    tracks.frames += 1;
    let (at, dets): (Vec<usize>, Vec<Detection>) = untracked.into_iter().unzip();
    let ids = tracks.tracker.update(tracks.frames, dets);
    for (i, (id, _)) in at.into_iter().zip(ids) {
        faces[i].track_id = (1u64 << 63) | id;
    }
    // A face the tracker did not return (it never drops one at a start score of 0) is left out.
    faces.retain(|f| f.track_id != 0);
    for (i, f) in faces.iter_mut().enumerate() {
        f.index = i as u32;
    }
    super::set_frame_info(
        buf,
        &FrameInfo {
            frame: tracks.frames,
            detected: true,
            faces: faces.len() as u32,
        },
    );
    super::add_faces(buf, &faces);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{IdentityTag, faces, frame_info, set_identity};
    use gst_analytics::AnalyticsClassificationMtd;

    fn face(index: u32, track_id: u64, x: u32) -> Face {
        Face {
            index,
            track_id,
            rect: (x, 20, 40, 50),
            score: 0.8,
            landmarks: landmarks_in_box(x as f32, 20.0, 40.0, 50.0),
            detected: true,
            embedding: None,
            identity: None,
            analytics_id: None,
        }
    }

    #[test]
    fn faces_become_entries_and_only_a_match_is_classified() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let mut times = TrackTimes::default();
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_seconds(2));
            let mut fs = [face(0, 7, 10), face(1, 8, 100)];
            crate::meta::add_detected_faces(b, &mut fs, &mut times);
            assert!(fs.iter().all(|f| f.analytics_id.is_some()));
            let tag = IdentityTag {
                label: "alice".into(),
                identity_id: "id-a".into(),
                score: 0.7,
                verified: true,
            };
            assert!(set_identity(b, 0, &tag));
        }
        let got = faces(&buf);
        let meta = buf.meta::<AnalyticsRelationMeta>().unwrap();
        let ods: Vec<_> = meta.iter::<AnalyticsODMtd>().collect();
        assert_eq!(ods.len(), 2);
        for (od, f) in ods.iter().zip(&got) {
            assert_eq!(od.obj_type(), Some(face_quark()));
            let loc = od.location().unwrap();
            assert_eq!((loc.x, loc.y, loc.w, loc.h), (f.rect.0 as i32, 20, 40, 50));
            assert_eq!(Some(od.id()), f.analytics_id);
            let t: Vec<_> = meta
                .iter_direct_related::<AnalyticsTrackingMtd>(od.id(), RelTypes::RELATE_TO)
                .map(|t| t.info())
                .collect();
            assert_eq!(t.len(), 1);
            assert_eq!(t[0].0, f.track_id);
            assert_eq!(t[0].1, gst::ClockTime::from_seconds(2));
        }
        let classes = |od: u32| -> Vec<(String, f32)> {
            meta.iter_direct_related::<AnalyticsClassificationMtd>(od, RelTypes::RELATE_TO)
                .flat_map(|c| {
                    (0..c.len())
                        .map(|i| (c.quark(i).as_str().to_string(), c.level(i)))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        assert_eq!(classes(ods[0].id()), [("alice".to_string(), 0.7)]);
        assert!(
            classes(ods[1].id()).is_empty(),
            "an unmatched face has no class"
        );
        assert_eq!(meta.iter::<AnalyticsClassificationMtd>().count(), 1);

        // A later frame: track 7 keeps its first-seen time, track 9 is new.
        let mut next = gst::Buffer::new();
        let b = next.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_seconds(3));
        let mut fs = [face(0, 7, 12), face(1, 9, 200)];
        crate::meta::add_detected_faces(b, &mut fs, &mut times);
        let meta = next.meta::<AnalyticsRelationMeta>().unwrap();
        let seen: Vec<(u64, gst::ClockTime)> = meta
            .iter::<AnalyticsTrackingMtd>()
            .map(|t| {
                let i = t.info();
                (i.0, i.1)
            })
            .collect();
        assert_eq!(
            seen,
            [
                (7, gst::ClockTime::from_seconds(2)),
                (9, gst::ClockTime::from_seconds(3))
            ]
        );
    }

    #[test]
    fn another_detectors_faces_are_adopted() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let b = buf.get_mut().unwrap();
        {
            let mut meta = AnalyticsRelationMeta::add(b);
            let person = glib::Quark::from_str("person");
            meta.add_od_mtd(person, 0, 0, 30, 30, 0.9).unwrap();
            let od = meta
                .add_od_mtd(face_quark(), -10, 5, 60, 70, 0.75)
                .unwrap()
                .id();
            let t = meta
                .add_tracking_mtd(42, gst::ClockTime::ZERO)
                .unwrap()
                .id();
            meta.set_relation(RelTypes::RELATE_TO, od, t).unwrap();
            meta.add_od_mtd(face_quark(), 100, 100, 20, 20, 0.5)
                .unwrap();
            // entirely outside the frame: dropped
            meta.add_od_mtd(face_quark(), 500, 500, 20, 20, 0.5)
                .unwrap();
        }
        let mut tracks = ForeignTracks::default();
        assert!(adopt(b, 320, 240, &mut tracks));
        let got = faces(b);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].rect, got[0].track_id), ((0, 5, 50, 70), 42));
        assert_eq!(got[0].score, 0.75);
        assert_eq!(got[0].landmarks.len(), 5);
        assert_eq!(got[1].rect, (100, 100, 20, 20));
        assert_eq!(got[1].track_id, (1u64 << 63) | 1);
        assert_eq!(frame_info(b).map(|i| i.faces), Some(2));

        // The next frame: the untracked face moved a little and keeps its track.
        let mut next = gst::Buffer::new();
        let n = next.get_mut().unwrap();
        AnalyticsRelationMeta::add(n)
            .add_od_mtd(face_quark(), 103, 101, 20, 20, 0.5)
            .unwrap();
        assert!(adopt(n, 320, 240, &mut tracks));
        assert_eq!(faces(n)[0].track_id, (1u64 << 63) | 1);

        // a frame with no analytics meta is not adopted
        let mut plain = gst::Buffer::new();
        assert!(!adopt(plain.get_mut().unwrap(), 320, 240, &mut tracks));
    }
}
