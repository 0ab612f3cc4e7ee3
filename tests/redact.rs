// SPDX-License-Identifier: MIT
//! `veilredact` on real photos and the real models: redacted faces are no longer found nor
//! recognised, in every format; `mode=unmatched` spares the listed person only; with the detector
//! on every third frame every face of a moving clip is still covered on every frame;
//! `veiloverlay` draws only where its boxes and labels are.

mod common;

use std::path::Path;

use common::{require_runtime, scratch};
use gst::prelude::*;
use gstfaceveil::meta;

/// Faces `veildetect` finds in an image file.
fn faces_in(image: &Path) -> usize {
    let run = common::run_pipeline(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! veildetect ! appsink name=sink",
        image.display()
    ));
    meta::faces(&run.buffers[0]).len()
}

#[test]
fn mode_all_leaves_no_face_of_t1_to_find_in_any_format() {
    require_runtime();
    let d = scratch("redact-formats");
    assert_eq!(faces_in(&common::photo("t1.jpg")), 6);
    for format in [
        "I420", "NV12", "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "RGBA", "BGRA",
    ] {
        for method in ["pixelate", "blur", "fill"] {
            let out = d.join(format!("{format}-{method}.png"));
            common::run_pipeline(&format!(
                "{} ! veildetect ! veilredact name=r mode=all method={method} ! videoconvert \
                 ! pngenc ! filesink location=\"{}\"",
                common::photo_src("t1.jpg", &format!("video/x-raw,format={format}")),
                out.display()
            ));
            assert_eq!(
                faces_in(&out),
                0,
                "{format} {method}: a face is still found"
            );
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// Irreversible: the embedder, given the redacted pixels at the face's own landmarks, no longer
/// gives a descriptor anywhere near the person's (no faint copy of the face is left).
#[test]
fn a_redacted_face_no_longer_gives_its_persons_descriptor() {
    require_runtime();
    let spec = common::embedder_spec();
    let sim = gstfaceveil::engine::embedder::similarity_for(&spec).unwrap();
    let threshold = spec.manifest.embedder.as_ref().unwrap().match_threshold();
    let original = common::descriptor("obama.jpg", "video/x-raw");
    let other = common::descriptor("biden.jpg", "video/x-raw");
    let stranger = sim.score(&original, &other);
    for method in ["pixelate", "blur"] {
        let run = common::run_pipeline(&format!(
            "{} ! veildetect ! veilredact mode=all method={method} \
             ! veilembed min-quality=0 min-eye-distance=0 ! appsink name=sink",
            common::photo_src("obama.jpg", "video/x-raw")
        ));
        let faces = meta::faces(&run.buffers[0]);
        let d = faces[0]
            .embedding
            .as_ref()
            .and_then(|e| e.vector.clone())
            .expect("a descriptor of the redacted chip");
        let score = sim.score(&original, &d);
        eprintln!(
            "{method}: similarity to the original {score:.3} (threshold {threshold}, another person {stranger:.3})"
        );
        assert!(
            score < threshold - 0.1,
            "{method}: the redacted face still looks like the person ({score:.3})"
        );
    }
}

/// Two faces side by side, obama2 (on the list) and biden, for 12 frames; the frames after
/// `veildetect ! veilembed ! veilmatch ! <tail>`.
fn obama_and_biden(list: &Path, tail: &str) -> Vec<gst::Buffer> {
    common::obama_and_biden_through(&format!(
        "veildetect ! veilembed reembed-interval=1 ! veilmatch watchlist=\"{}\" {tail}",
        list.display()
    ))
}

#[test]
fn mode_unmatched_spares_the_listed_person_and_redacts_the_other() {
    require_runtime();
    let d = scratch("redact-unmatched");
    let list = common::obama_list(&d);
    let plain = obama_and_biden(&list, "");
    let redacted = obama_and_biden(&list, "! veilredact mode=unmatched");
    assert_eq!((plain.len(), redacted.len()), (12, 12));
    // The share of a box's values that differ between the plain and the redacted frame `n`.
    let stride = (common::MOVING_W * 3).div_ceil(4) * 4;
    let changed = |n: usize, r: (u32, u32, u32, u32)| {
        let (a, b) = (
            plain[n].map_readable().unwrap(),
            redacted[n].map_readable().unwrap(),
        );
        let (x, y, w, h) = (r.0 as usize, r.1 as usize, r.2 as usize, r.3 as usize);
        let n = (y..y + h)
            .flat_map(|yy| (x * 3..(x + w) * 3).map(move |i| yy * stride + i))
            .filter(|&i| a[i] != b[i])
            .count();
        n as f64 / (w * h * 3) as f64
    };
    let faces = meta::faces(&redacted[11]);
    let obama = faces
        .iter()
        .find(|f| f.identity.as_ref().is_some_and(|i| i.label == "obama"))
        .expect("obama identified by the last frame");
    let biden = faces
        .iter()
        .find(|f| f.identity.is_none())
        .expect("biden not identified");
    assert_eq!(
        changed(11, obama.rect),
        0.0,
        "the listed person's face was touched"
    );
    assert!(
        changed(11, biden.rect) > 0.5,
        "the other face is not redacted"
    );
    // Before the matcher decided, obama was redacted too (fail closed).
    let first = meta::faces(&redacted[0]);
    assert_eq!(first.len(), 2, "{first:?}");
    for f in &first {
        assert!(f.identity.is_none(), "{f:?}");
        assert!(
            changed(0, f.rect) > 0.5,
            "frame 0: the face at {:?} is not redacted",
            f.rect
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// With the detector on one frame in three, the faces of a moving clip are covered on every frame
/// (the tracker's boxes in between): every face the detector finds on every frame is redacted.
#[test]
fn with_the_detector_on_every_third_frame_every_frame_is_covered() {
    require_runtime();
    let sprites = [
        common::sprite("obama.jpg", 146, 182),
        common::sprite("biden.jpg", 130, 295),
    ];
    let n = 36;
    // obama moves right 8 px a frame, biden left and down
    let pos = |f: usize, k: usize| [(20 + f * 8, 100), (480 - f * 6, 20 + f * 2)][k];
    let original = common::moving_frames(&sprites, n, pos);
    let (reference, p) = common::push_frames(
        "veildetect interval=1",
        common::moving_frames(&sprites, n, pos),
    );
    p.set_state(gst::State::Null).unwrap();
    let (redacted, p) = common::push_frames(
        "veildetect interval=3 ! veilredact mode=all",
        common::moving_frames(&sprites, n, pos),
    );
    p.set_state(gst::State::Null).unwrap();
    assert_eq!((reference.len(), redacted.len()), (n, n));
    let stride = (common::MOVING_W * 3).div_ceil(4) * 4;
    let mut boxes = 0;
    for (i, (r, out)) in reference.iter().zip(&redacted).enumerate() {
        let out = out.map_readable().unwrap();
        for f in meta::faces(r) {
            // the inner 80 % of the detect-every-frame box
            let (x, y, w, h) = (
                f.rect.0 as usize,
                f.rect.1 as usize,
                f.rect.2 as usize,
                f.rect.3 as usize,
            );
            let (x0, y0, x1, y1) = (x + w / 10, y + h / 10, x + w - w / 10, y + h - h / 10);
            let total = (x1 - x0) * (y1 - y0) * 3;
            let same = (y0..y1)
                .flat_map(|yy| (x0 * 3..x1 * 3).map(move |c| yy * stride + c))
                .filter(|&j| out[j] == original[i][j])
                .count();
            assert!(
                (same as f64) < 0.3 * total as f64,
                "frame {i}: face at {:?} left {same} of {total} values as they were",
                f.rect
            );
            boxes += 1;
        }
    }
    assert!(boxes >= 3 * n / 2, "{boxes} faces found in {n} frames");
}

/// `veilbin redact=all` redacts every face of the video it passes on; by default it redacts
/// nothing.
#[test]
fn veilbin_redacts_only_when_asked() {
    require_runtime();
    let d = scratch("redact-bin");
    let list = common::obama_list(&d);
    for (redact, want) in [("", 6), ("redact=all", 0)] {
        let out = d.join("out.png");
        common::run_pipeline(&format!(
            "{} ! veilbin watchlist=\"{}\" {redact} ! videoconvert ! pngenc \
             ! filesink location=\"{}\"",
            common::photo_src("t1.jpg", "video/x-raw"),
            list.display(),
            out.display()
        ));
        assert_eq!(faces_in(&out), want, "veilbin {redact}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// `veiloverlay` changes the video only inside the boxes' outlines and the labels above them.
#[test]
fn the_overlay_changes_only_box_outlines_and_labels() {
    require_runtime();
    let d = scratch("overlay");
    let list = common::obama_list(&d);
    let (size, line) = (20usize, 3usize);
    let plain = obama_and_biden(&list, "");
    let drawn = obama_and_biden(
        &list,
        &format!("! veiloverlay font-size={size} line-width={line} landmarks=false"),
    );
    let (a, b) = (
        plain[11].map_readable().unwrap(),
        drawn[11].map_readable().unwrap(),
    );
    let faces = meta::faces(&drawn[11]);
    assert_eq!(faces.len(), 2);
    let stride = (common::MOVING_W * 3).div_ceil(4) * 4;
    // Where the overlay may draw: each box's outline band, and a label band above the box at most
    // as wide as 12 characters of the font size.
    let allowed = |x: usize, y: usize| {
        faces.iter().any(|f| {
            let (fx, fy, fw, fh) = (
                f.rect.0 as usize,
                f.rect.1 as usize,
                f.rect.2 as usize,
                f.rect.3 as usize,
            );
            let in_box = x >= fx && x < fx + fw && y >= fy && y < fy + fh;
            let inner =
                x >= fx + line && x + line < fx + fw && y >= fy + line && y + line < fy + fh;
            let label = x >= fx && x < fx + 12 * size && y + 2 * size >= fy && y < fy + 2 * size;
            (in_box && !inner) || label
        })
    };
    let mut changed = 0;
    for y in 0..common::MOVING_H {
        for x in 0..common::MOVING_W {
            let i = y * stride + x * 3;
            if a[i..i + 3] != b[i..i + 3] {
                assert!(
                    allowed(x, y),
                    "pixel {x},{y} changed outside boxes and labels"
                );
                changed += 1;
            }
        }
    }
    // Something was drawn: at least the outlines.
    let outline: usize = faces
        .iter()
        .map(|f| 2 * line * (f.rect.2 + f.rect.3) as usize - 4 * line * line)
        .sum();
    assert!(
        changed >= outline,
        "{changed} pixels changed, outlines alone are {outline}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// `mode=unmatched` trusts an identity only on a box the detector found on that frame: with the
/// detector on one frame in three, the listed person's carried boxes (which could have drifted
/// onto somebody else) are redacted, the boxes found are spared.
#[test]
fn mode_unmatched_redacts_a_listed_persons_carried_box() {
    require_runtime();
    let d = scratch("redact-unmatched-carried");
    let list = common::obama_list(&d);
    let sprites = [
        common::sprite("obama2.jpg", 240, 300),
        common::sprite("biden.jpg", 200, 300),
    ];
    let n = 18;
    let pos = |_: usize, k: usize| [(30, 90), (380, 90)][k];
    let run = |tail: &str| {
        let (out, p) = common::push_frames(
            &format!(
                "veildetect interval=3 ! veilembed reembed-interval=1 ! veilmatch watchlist=\"{}\" {tail}",
                list.display()
            ),
            common::moving_frames(&sprites, n, pos),
        );
        p.set_state(gst::State::Null).unwrap();
        out
    };
    let (plain, redacted) = (run(""), run("! veilredact mode=unmatched"));
    assert_eq!((plain.len(), redacted.len()), (n, n));
    let stride = (common::MOVING_W * 3).div_ceil(4) * 4;
    let changed = |i: usize, r: (u32, u32, u32, u32)| {
        let (a, b) = (
            plain[i].map_readable().unwrap(),
            redacted[i].map_readable().unwrap(),
        );
        let (x, y, w, h) = (r.0 as usize, r.1 as usize, r.2 as usize, r.3 as usize);
        let c = (y..y + h)
            .flat_map(|yy| (x * 3..(x + w) * 3).map(move |j| yy * stride + j))
            .filter(|&j| a[j] != b[j])
            .count();
        c as f64 / (w * h * 3) as f64
    };
    let (mut spared, mut carried) = (0, 0);
    for (i, buf) in redacted.iter().enumerate() {
        for f in meta::faces(buf) {
            if f.identity.as_ref().is_none_or(|t| t.label != "obama") {
                continue;
            }
            if f.detected {
                assert_eq!(
                    changed(i, f.rect),
                    0.0,
                    "frame {i}: a found listed face touched"
                );
                spared += 1;
            } else {
                assert!(
                    changed(i, f.rect) > 0.5,
                    "frame {i}: the listed person's carried box is not redacted"
                );
                carried += 1;
            }
        }
    }
    assert!(
        spared > 0 && carried > 0,
        "spared {spared}, carried {carried}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
