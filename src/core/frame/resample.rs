// SPDX-License-Identifier: MIT
//! The separable resize path: per-axis filter taps, the resample of one channel, and the
//! buffers it reuses.

/// Reused buffers of the separable path: three destination planes and the horizontal pass.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) planes: [Vec<f32>; 3],
    pub(super) tmp: Vec<f32>,
}

thread_local! {
    pub(super) static SCRATCH: std::cell::RefCell<Scratch> =
        std::cell::RefCell::new(Scratch::default());
}

/// Filter taps along one axis of a resize: for each destination index, `k` source indices (clamped
/// to the frame, so edges repeat) and normalised triangle-filter weights of radius max(scale, 1).
pub(super) struct AxisTaps {
    k: usize,
    idx: Vec<usize>,
    w: Vec<f32>,
    /// Whether the destination pixel centre falls on the frame (else it gets the border value).
    pub(super) inside: Vec<bool>,
    min_idx: usize,
    max_idx: usize,
}

impl AxisTaps {
    pub(super) fn new(n_out: usize, scale: f32, offset: f32, n_src: usize) -> AxisTaps {
        let support = scale.max(1.0);
        let k = (2.0 * support).ceil() as usize + 1;
        let mut t = AxisTaps {
            k,
            idx: Vec::with_capacity(n_out * k),
            w: Vec::with_capacity(n_out * k),
            inside: Vec::with_capacity(n_out),
            min_idx: usize::MAX,
            max_idx: 0,
        };
        let last = n_src as i64 - 1;
        for i in 0..n_out {
            let center = scale * i as f32 + offset;
            t.inside.push(center > -1.0 && center < n_src as f32);
            let first = (center - support).floor() as i64 + 1;
            let start = t.w.len();
            for j in first..first + k as i64 {
                let weight = (1.0 - (j as f32 - center).abs() / support).max(0.0);
                let jc = j.clamp(0, last) as usize;
                if weight > 0.0 {
                    t.min_idx = t.min_idx.min(jc);
                    t.max_idx = t.max_idx.max(jc);
                }
                t.idx.push(jc);
                t.w.push(weight);
            }
            let sum: f32 = t.w[start..].iter().sum();
            if sum > 0.0 {
                t.w[start..].iter_mut().for_each(|w| *w /= sum);
            }
        }
        if t.min_idx > t.max_idx {
            (t.min_idx, t.max_idx) = (0, 0);
        }
        t
    }
}

/// Separable resample of one 8-bit channel (every `step` bytes from `off` in each row) into `out`
/// (`xt` × `yt` destination pixels).
#[allow(clippy::too_many_arguments)]
pub(super) fn resample(
    src: &[u8],
    stride: usize,
    step: usize,
    off: usize,
    xt: &AxisTaps,
    yt: &AxisTaps,
    tmp: &mut Vec<f32>,
    out: &mut [f32],
) {
    let (ow, oh) = (xt.inside.len(), yt.inside.len());
    let (r0, r1) = (yt.min_idx, yt.max_idx);
    tmp.resize((r1 - r0 + 1) * ow, 0.0);
    for r in r0..=r1 {
        let row = &src[r * stride..];
        let trow = &mut tmp[(r - r0) * ow..][..ow];
        for (ox, t) in trow.iter_mut().enumerate() {
            let idx = &xt.idx[ox * xt.k..][..xt.k];
            let wts = &xt.w[ox * xt.k..][..xt.k];
            *t = idx
                .iter()
                .zip(wts)
                .map(|(&j, &w)| row[j * step + off] as f32 * w)
                .sum();
        }
    }
    for oy in 0..oh {
        let orow = &mut out[oy * ow..][..ow];
        orow.fill(0.0);
        for t in 0..yt.k {
            let wt = yt.w[oy * yt.k + t];
            if wt == 0.0 {
                continue;
            }
            let r = yt.idx[oy * yt.k + t];
            let trow = &tmp[(r - r0) * ow..][..ow];
            for (o, v) in orow.iter_mut().zip(trow) {
                *o += v * wt;
            }
        }
    }
}
