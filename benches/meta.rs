// SPDX-License-Identifier: MIT
//! What reading and writing a frame's face metadata costs, per frame, with FACES faces (default
//! 3), each with a 128-d descriptor and the first with an identity.
//!
//! usage: cargo bench --bench meta [-- FACES]
//! Prints one JSON line:
//! - `read_parse_us`: reading the faces from the ROI params (`meta::parse_faces`);
//! - `read_us`: `meta::faces`, which takes the typed faces the writers stored where they still
//!   describe the ROIs;
//! - `chain_us`: what the elements of `veilbin redact=all` plus `veiloverlay` do to one frame's
//!   metadata: the detector attaches the faces, the embedder reads them and adds a descriptor to
//!   each (one call per face), the matcher reads them and adds the identity, the redactor and the
//!   overlay read them, one call per descriptor as before `meta::set_embeddings`;
//! - `chain_batch_us`: the same with one call for all descriptors (`meta::set_embeddings`).
//!
//! To measure a tree from before the typed faces (BENCHMARKS.md, *Reading the faces*), copy this
//! file there with `meta::parse_faces` read as `meta::faces` and `chain_batch`'s body as the
//! per-face loop of `chain`.

use std::time::Instant;

use gstfaceveil::meta::{self, Embedding, Face, IdentityTag, TrackTimes};

fn faces(n: usize) -> Vec<Face> {
    (0..n)
        .map(|i| Face {
            index: i as u32,
            track_id: 10 + i as u64,
            rect: (100 * i as u32, 50, 80, 100),
            score: 0.9,
            landmarks: vec![[100.0 * i as f32 + 20.5, 80.25]; 5],
            detected: true,
            embedding: None,
            identity: None,
            analytics_id: None,
        })
        .collect()
}

fn embedding(i: usize) -> Embedding {
    Embedding {
        quality: 0.6,
        model_id: "dlib_resnet:0123456789abcdef".into(),
        vector: Some(
            (0..128)
                .map(|k| ((i * 128 + k) as f32 * 0.37).sin())
                .collect(),
        ),
        fresh: true,
        grayscale: false,
    }
}

fn tag() -> IdentityTag {
    IdentityTag {
        label: "alice".into(),
        identity_id: "0123456789abcdef0123456789abcdef".into(),
        score: 0.71,
        verified: true,
    }
}

/// One frame through the elements' metadata calls; `batch`: the descriptors in one call.
fn chain(n: usize, batch: bool) -> usize {
    let mut buf = gst::Buffer::new();
    let b = buf.get_mut().unwrap();
    let mut fs = faces(n);
    meta::add_detected_faces(b, &mut fs, &mut TrackTimes::default());
    let got = meta::faces(b);
    if batch {
        chain_batch(b, &got);
    } else {
        for f in &got {
            meta::set_embedding(b, f.index, &embedding(f.index as usize));
        }
    }
    let got = meta::faces(b);
    meta::set_identity(b, got[0].index, &tag());
    let redact = meta::faces(b);
    let overlay = meta::faces(b);
    redact.len() + overlay.len()
}

fn chain_batch(b: &mut gst::BufferRef, got: &[Face]) {
    let e: Vec<(u32, Embedding)> = got
        .iter()
        .map(|f| (f.index, embedding(f.index as usize)))
        .collect();
    meta::set_embeddings(b, &e);
}

/// Median µs per call of `f` over 7 rounds of `iters` calls.
fn time(iters: usize, mut f: impl FnMut() -> usize) -> f64 {
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            let mut sink = 0;
            for _ in 0..iters {
                sink += std::hint::black_box(f());
            }
            std::hint::black_box(sink);
            t.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[3]
}

fn main() {
    gst::init().unwrap();
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let mut buf = gst::Buffer::new();
    {
        let b = buf.get_mut().unwrap();
        let mut fs = faces(n);
        meta::add_detected_faces(b, &mut fs, &mut TrackTimes::default());
        for i in 0..n {
            meta::set_embedding(b, i as u32, &embedding(i));
        }
        meta::set_identity(b, 0, &tag());
    }
    assert_eq!(
        meta::faces(&buf),
        meta::parse_faces(&buf),
        "the two reads agree"
    );
    let iters = 20_000;
    let read_parse = time(iters, || meta::parse_faces(&buf).len());
    let read = time(iters, || meta::faces(&buf).len());
    let chain_us = time(iters / 4, || chain(n, false));
    let chain_batch_us = time(iters / 4, || chain(n, true));
    println!(
        "{{\"faces\": {n}, \"read_parse_us\": {read_parse:.2}, \"read_us\": {read:.2}, \
         \"chain_us\": {chain_us:.2}, \"chain_batch_us\": {chain_batch_us:.2}}}"
    );
}
