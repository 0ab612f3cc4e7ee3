// SPDX-License-Identifier: MIT
//! The separable resize path: per-axis filter taps, the resample of one channel, and the
//! buffers it reuses.

/// Reused buffers of the separable path: three destination planes and one vertically filtered
/// source row.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) planes: [Vec<f32>; 3],
    pub(super) row: Vec<f32>,
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
        // Taps of weight 0 point into the span too, so that the passes may read them unchecked.
        for (j, w) in t.idx.iter_mut().zip(&t.w) {
            if *w == 0.0 {
                *j = t.min_idx;
            }
        }
        t
    }
}

/// Separable resample of the channels of one 8-bit plane whose pixels are `step` bytes apart, the
/// channel at byte `offs[i]` of a pixel going to `outs[i]` (`xt` × `yt` destination pixels each).
///
/// The vertical pass comes first, one destination row at a time, over only the bytes the horizontal
/// taps read: it is the bulk of the work (every source row in reach, every byte), and as a weighted
/// sum of whole rows it vectorises. The horizontal pass, which gathers, then reads only as many rows
/// as the destination has. Both passes are linear, so the order does not change the result beyond
/// rounding.
#[allow(clippy::too_many_arguments)]
pub(super) fn resample(
    src: &[u8],
    stride: usize,
    step: usize,
    offs: &[usize],
    xt: &AxisTaps,
    yt: &AxisTaps,
    row: &mut Vec<f32>,
    outs: &mut [&mut [f32]],
) {
    let job = Job(src, stride, step, offs, xt, yt, row, outs);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above). The same code, compiled for 8 lanes
        // instead of SSE2's 4; without FMA, so results are the same bit for bit.
        unsafe { resample_avx2(job) };
        return;
    }
    resample_body(job);
}

/// The arguments of [`resample`], in its order, handed to the one body that both instruction sets
/// compile.
struct Job<'a, 'o>(
    &'a [u8],
    usize,
    usize,
    &'a [usize],
    &'a AxisTaps,
    &'a AxisTaps,
    &'a mut Vec<f32>,
    &'a mut [&'o mut [f32]],
);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn resample_avx2(job: Job<'_, '_>) {
    resample_body(job);
}

#[inline(always)]
fn resample_body(job: Job<'_, '_>) {
    let Job(src, stride, step, offs, xt, yt, row, outs) = job;
    let (ow, oh) = (xt.inside.len(), yt.inside.len());
    let lo = xt.min_idx * step;
    let hi = xt.max_idx * step + step;
    row.resize(hi - lo, 0.0);
    for oy in 0..oh {
        let idx = &yt.idx[oy * yt.k..][..yt.k];
        let wts = &yt.w[oy * yt.k..][..yt.k];
        let mut first = true;
        for (&r, &wt) in idx.iter().zip(wts) {
            if wt == 0.0 {
                continue;
            }
            let bytes = &src[r * stride + lo..r * stride + hi];
            if first {
                for (a, &b) in row.iter_mut().zip(bytes) {
                    *a = b as f32 * wt;
                }
                first = false;
            } else {
                for (a, &b) in row.iter_mut().zip(bytes) {
                    *a += b as f32 * wt;
                }
            }
        }
        if first {
            row.fill(0.0);
        }
        for (&off, out) in offs.iter().zip(outs.iter_mut()) {
            let orow = &mut out[oy * ow..][..ow];
            for (ox, o) in orow.iter_mut().enumerate() {
                let idx = &xt.idx[ox * xt.k..][..xt.k];
                let wts = &xt.w[ox * xt.k..][..xt.k];
                *o = idx
                    .iter()
                    .zip(wts)
                    .map(|(&j, &w)| row[j * step + off - lo] * w)
                    .sum();
            }
        }
    }
}
