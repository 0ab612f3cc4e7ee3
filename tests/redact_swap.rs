// SPDX-License-Identifier: MIT
//! `veilbin redact=unmatched` when the tracker hands a listed person's track to a bystander: the
//! listed face (obama, on the list) is shown for [`SWAP`] frames, then a stranger's face at the
//! same place, so that the tracker keeps the track and the identity decided on the listed face's
//! descriptors. The stranger must be redacted on every frame: a second `veildetect` over the
//! output (frames copied out, without the bin's metadata) finds no face on any frame from
//! [`SWAP`] on, while it finds the listed person, spared, on frames before it (the positive
//! control), and finds the stranger on the frames of the same bin without redaction.

mod common;

use common::{require_runtime, scratch};
use gst::prelude::*;
use gstfaceveil::meta;

const FRAMES: usize = 30;
/// The first frame that shows the stranger.
const SWAP: usize = 15;

/// The frames: the listed person, then the stranger, placed so that their faces' boxes nearly
/// coincide (obama2 at 150x188: face about (51, 33) 60x69 in it; biden at 240x300: (111, 18)
/// 61x67).
fn frames() -> Vec<Vec<u8>> {
    let mut v = common::moving_frames(&[common::sprite("obama2.jpg", 150, 188)], SWAP, |_, _| {
        (360, 85)
    });
    v.extend(common::moving_frames(
        &[common::sprite("biden.jpg", 240, 300)],
        FRAMES - SWAP,
        |_, _| (300, 100),
    ));
    v
}

/// The frames after `veilbin <props>`, in RGB, with the bin's metadata.
fn through_bin(props: &str) -> Vec<gst::Buffer> {
    let (out, p) = common::push_frames(
        &format!("veilbin {props} ! videoconvert ! video/x-raw,format=RGB"),
        frames(),
    );
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(out.len(), FRAMES);
    out
}

/// How many faces a fresh `veildetect` (every frame) finds on each of `bufs`' pictures.
fn check(bufs: &[gst::Buffer]) -> Vec<usize> {
    let pictures = bufs
        .iter()
        .map(|b| b.map_readable().unwrap().to_vec())
        .collect();
    let (out, p) = common::push_frames("veildetect interval=1 idle-interval=0", pictures);
    p.set_state(gst::State::Null).unwrap();
    out.iter().map(|b| meta::faces(b).len()).collect()
}

#[test]
fn redact_unmatched_redacts_a_stranger_who_takes_a_listed_persons_track() {
    require_runtime();
    let d = scratch("redact-swap");
    let list = common::obama_list(&d);
    let watch = format!("watchlist=\"{}\"", list.display());

    // Without redaction: the listed person is identified before the swap, and the tracker keeps
    // the track across it (otherwise this would test nothing).
    let plain = through_bin(&watch);
    let track_of = |b: &gst::Buffer| meta::faces(b).first().map(|f| f.track_id);
    let identified = plain[..SWAP]
        .iter()
        .filter(|b| meta::faces(b).iter().any(|f| f.identity.is_some()))
        .count();
    assert!(identified > 0, "the listed person is never identified");
    let (before, after) = (track_of(&plain[SWAP - 1]), track_of(&plain[SWAP]));
    assert!(
        before.is_some() && before == after,
        "the tracker did not keep the track across the swap: {before:?} then {after:?}"
    );
    // Without verification (the bin verifies only for redact=unmatched) the stranger carries the
    // listed person's identity on frames the detector found him: the hazard is real here.
    let inherited = plain[SWAP..]
        .iter()
        .flat_map(|b| meta::faces(b))
        .filter(|f| f.detected && f.identity.is_some())
        .count();
    assert!(inherited > 0, "the stranger never carried the identity");
    let found_plain = check(&plain);
    assert!(
        found_plain[SWAP..].iter().filter(|&&n| n > 0).count() >= (FRAMES - SWAP) * 9 / 10,
        "the check does not find the stranger: {found_plain:?}"
    );

    let redacted = through_bin(&format!("{watch} redact=unmatched"));
    let found = check(&redacted);
    eprintln!("faces the check finds per frame: {found:?}");
    assert!(
        found[..SWAP].iter().any(|&n| n > 0),
        "the listed person is never spared: {found:?}"
    );
    for (n, &k) in found.iter().enumerate().skip(SWAP) {
        assert_eq!(
            k,
            0,
            "frame {n}: the stranger in the listed person's track is in the clear ({:?})",
            meta::faces(&redacted[n])
                .iter()
                .map(|f| (
                    f.track_id,
                    f.detected,
                    f.identity.as_ref().map(|i| i.verified)
                ))
                .collect::<Vec<_>>()
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}
