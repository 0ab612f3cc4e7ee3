// SPDX-License-Identifier: MIT
//! GStreamer's analytics metadata (the `analytics` feature, GStreamer ≥ 1.24; run on Debian 13 by
//! scripts/debian13-bed.sh): every face is an object-detection entry of class `face` related to a
//! tracking entry, only a matched face has a classification entry (its label), GStreamer's own
//! `objectdetectionoverlay` draws our faces, and veilembed, veilmatch and veilredact work on the
//! faces of another detector that wrote only analytics metadata.
#![cfg(feature = "analytics")]

mod common;

use gst::prelude::*;
use gst_analytics::prelude::*;
use gst_analytics::{
    AnalyticsClassificationMtd, AnalyticsODMtd, AnalyticsRelationMeta, AnalyticsTrackingMtd,
    RelTypes,
};
use gstfaceveil::meta;

use common::{MOVING_H, MOVING_W, require_runtime, scratch};

/// One face as the analytics metadata describes it.
#[derive(Debug)]
struct OdFace {
    rect: (i32, i32, i32, i32),
    track: Vec<u64>,
    classes: Vec<(String, f32)>,
}

/// The object-detection entries of class `face` on `buf`, with their related entries.
fn od_faces(buf: &gst::BufferRef) -> Vec<OdFace> {
    let Some(meta) = buf.meta::<AnalyticsRelationMeta>() else {
        return Vec::new();
    };
    let face = gst::glib::Quark::from_str("face");
    meta.iter::<AnalyticsODMtd>()
        .filter(|od| od.obj_type() == Some(face))
        .map(|od| {
            let l = od.location().unwrap();
            OdFace {
                rect: (l.x, l.y, l.w, l.h),
                track: meta
                    .iter_direct_related::<AnalyticsTrackingMtd>(od.id(), RelTypes::RELATE_TO)
                    .map(|t| t.info().0)
                    .collect(),
                classes: meta
                    .iter_direct_related::<AnalyticsClassificationMtd>(od.id(), RelTypes::RELATE_TO)
                    .flat_map(|c| {
                        (0..c.len())
                            .map(|i| (c.quark(i).as_str().to_string(), c.level(i)))
                            .collect::<Vec<_>>()
                    })
                    .collect(),
            }
        })
        .collect()
}

fn rect_i32(r: (u32, u32, u32, u32)) -> (i32, i32, i32, i32) {
    (r.0 as i32, r.1 as i32, r.2 as i32, r.3 as i32)
}

/// Every face of the pipeline is an entry (box, track), and only the listed person's carries a
/// class: her label. The bystander's entry has a box and a track id, nothing else.
#[test]
fn faces_are_entries_and_a_match_is_a_classification() {
    require_runtime();
    let d = scratch("analytics-entries");
    let list = common::obama_list(&d);
    let out = common::obama_and_biden_through(&format!(
        "veildetect ! veilembed reembed-interval=1 ! veilmatch watchlist=\"{}\"",
        list.display()
    ));
    assert_eq!(out.len(), 12);
    for buf in &out {
        let ours = meta::faces(buf);
        let ods = od_faces(buf);
        assert_eq!(ods.len(), ours.len(), "one entry per face: {ods:?}");
        for f in &ours {
            let od = ods
                .iter()
                .find(|o| o.rect == rect_i32(f.rect))
                .unwrap_or_else(|| panic!("no entry for face {f:?} in {ods:?}"));
            assert_eq!(od.track, [f.track_id]);
            match &f.identity {
                Some(id) => {
                    assert_eq!(od.classes.len(), 1, "{od:?}");
                    assert_eq!(od.classes[0].0, id.label);
                    assert!((od.classes[0].1 - id.score).abs() < 1e-6);
                }
                None => assert!(
                    od.classes.is_empty(),
                    "an unmatched face is classified: {od:?}"
                ),
            }
        }
    }
    let last = od_faces(&out[11]);
    assert_eq!(last.len(), 2, "{last:?}");
    let labels: Vec<&str> = last
        .iter()
        .flat_map(|o| o.classes.iter().map(|c| c.0.as_str()))
        .collect();
    assert_eq!(
        labels,
        ["obama"],
        "obama matched by the last frame, biden not"
    );
}

/// GStreamer's `objectdetectionoverlay` draws the faces veildetect found: the frames change
/// within the faces' boxes (their outlines) and nowhere else.
#[test]
fn objectdetectionoverlay_draws_our_faces() {
    require_runtime();
    if gst::ElementFactory::find("objectdetectionoverlay").is_none() {
        panic!("objectdetectionoverlay (gst-plugins-bad ≥ 1.24, analyticsoverlay) is missing");
    }
    let plain = common::obama_and_biden_through("veildetect");
    let drawn =
        common::obama_and_biden_through("veildetect ! objectdetectionoverlay draw-labels=false");
    assert_eq!((plain.len(), drawn.len()), (12, 12));
    let stride = (MOVING_W * 3).div_ceil(4) * 4;
    for (p, q) in plain.iter().zip(&drawn) {
        let boxes: Vec<_> = od_faces(q).iter().map(|o| o.rect).collect();
        assert_eq!(boxes.len(), 2, "two faces");
        // within a box grown by `m` pixels
        let near = |x: usize, y: usize, m: i32| {
            boxes.iter().any(|&(bx, by, bw, bh)| {
                let (x, y) = (x as i32, y as i32);
                x >= bx - m && x < bx + bw + m && y >= by - m && y < by + bh + m
            })
        };
        let (a, b) = (p.map_readable().unwrap(), q.map_readable().unwrap());
        let mut inside = 0;
        for y in 0..MOVING_H {
            for x in 0..MOVING_W {
                let i = y * stride + x * 3;
                if a[i..i + 3] != b[i..i + 3] {
                    assert!(
                        near(x, y, 3),
                        "pixel ({x}, {y}) outside every face box changed"
                    );
                    inside += 1;
                }
            }
        }
        // Each box's outline: at least its perimeter, one pixel wide, for the two boxes.
        let perimeter: i32 = boxes.iter().map(|b| 2 * (b.2 + b.3)).sum();
        assert!(
            inside >= perimeter as usize,
            "{inside} pixels drawn, the outlines alone are {perimeter}"
        );
    }
}

/// Frames that carry only another detector's faces: the boxes veildetect found, written as bare
/// object-detection entries (class `face`, no landmarks, no track) on fresh copies of the frames.
fn foreign_frames() -> Vec<gst::Buffer> {
    let found = common::obama_and_biden_through("veildetect");
    found
        .iter()
        .map(|b| {
            let map = b.map_readable().unwrap();
            let mut copy = gst::Buffer::from_mut_slice(map.to_vec());
            let c = copy.get_mut().unwrap();
            c.set_pts(b.pts());
            let mut rel = AnalyticsRelationMeta::add(c);
            for f in meta::faces(b) {
                let (x, y, w, h) = rect_i32(f.rect);
                rel.add_od_mtd(gst::glib::Quark::from_str("face"), x, y, w, h, f.score)
                    .unwrap();
            }
            copy
        })
        .collect()
}

/// veilembed, veilmatch and veilredact take another detector's faces: the listed person is
/// matched (and classified) from a box alone, the bystander is not, and veilredact blurs both.
#[test]
fn another_detectors_faces_are_embedded_matched_and_redacted() {
    require_runtime();
    let d = scratch("analytics-foreign");
    let list = common::obama_list(&d);
    let frames = foreign_frames();
    assert!(frames.iter().all(|b| meta::faces(b).is_empty()));
    let (out, pipeline) = common::push_buffers(
        &format!(
            "veilembed reembed-interval=1 ! veilmatch watchlist=\"{}\"",
            list.display()
        ),
        frames.clone(),
    );
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(out.len(), 12);
    let last = meta::faces(&out[11]);
    assert_eq!(last.len(), 2, "{last:?}");
    assert!(
        last.iter()
            .all(|f| f.embedding.as_ref().is_some_and(|e| e.vector.is_some()))
    );
    let labels: Vec<&str> = last
        .iter()
        .filter_map(|f| f.identity.as_ref().map(|i| i.label.as_str()))
        .collect();
    assert_eq!(labels, ["obama"], "{last:?}");
    let classes: Vec<String> = od_faces(&out[11])
        .into_iter()
        .flat_map(|o| o.classes.into_iter().map(|c| c.0))
        .collect();
    assert_eq!(classes, ["obama"]);

    let (redacted, pipeline) = common::push_buffers("veilredact mode=all", frames.clone());
    pipeline.set_state(gst::State::Null).unwrap();
    let stride = (MOVING_W * 3).div_ceil(4) * 4;
    for (before, after) in frames.iter().zip(&redacted) {
        let (a, b) = (
            before.map_readable().unwrap(),
            after.map_readable().unwrap(),
        );
        for f in meta::faces(after) {
            let (x, y, w, h) = (
                f.rect.0 as usize,
                f.rect.1 as usize,
                f.rect.2 as usize,
                f.rect.3 as usize,
            );
            let changed = (y..y + h)
                .flat_map(|yy| (x * 3..(x + w) * 3).map(move |i| yy * stride + i))
                .filter(|&i| a[i] != b[i])
                .count();
            assert!(changed * 2 > w * h * 3, "face {:?} not redacted", f.rect);
        }
        assert_eq!(meta::faces(after).len(), 2);
    }
}
