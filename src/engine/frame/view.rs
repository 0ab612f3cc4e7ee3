// SPDX-License-Identifier: MIT
//! The frame view and its two sampling paths: separable resize and per-pixel warp.

use super::format::{FrameError, PixelFormat, YuvCoeffs, YuvMatrix};
use super::resample::{AxisTaps, SCRATCH, Scratch, resample};
use super::tensor::{Affine, TensorSpec};

/// A read-only view of one raw frame: format, size, planes and strides, borrowed from a mapped buffer.
#[derive(Clone, Copy)]
pub struct FrameView<'a> {
    format: PixelFormat,
    width: usize,
    height: usize,
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
    yuv: YuvCoeffs,
}

impl<'a> FrameView<'a> {
    /// Checks that the planes are large enough for the format, size and strides.
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        planes: &[&'a [u8]],
        strides: &[usize],
        matrix: YuvMatrix,
    ) -> Result<Self, FrameError> {
        if width < 2 || height < 2 {
            return Err(FrameError::TooSmall { width, height });
        }
        let n = format.n_planes();
        if planes.len() < n || strides.len() < n {
            return Err(FrameError::Planes {
                expected: n,
                got: planes.len().min(strides.len()),
            });
        }
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        for p in 0..n {
            let (row_bytes, rows) = match (format, p) {
                (PixelFormat::I420, 0) | (PixelFormat::Nv12, 0) => (width, height),
                (PixelFormat::I420, _) => (cw, ch),
                (PixelFormat::Nv12, _) => (2 * cw, ch),
                _ => (width * format.packed_layout().map_or(1, |l| l.0), height),
            };
            let need = strides[p] * (rows - 1) + row_bytes;
            if strides[p] < row_bytes || planes[p].len() < need {
                return Err(FrameError::PlaneTooShort {
                    plane: p,
                    need,
                    got: planes[p].len(),
                });
            }
        }
        let mut pl: [&[u8]; 3] = [&[]; 3];
        let mut st = [0usize; 3];
        pl[..n].copy_from_slice(&planes[..n]);
        st[..n].copy_from_slice(&strides[..n]);
        Ok(FrameView {
            format,
            width,
            height,
            planes: pl,
            strides: st,
            yuv: matrix.coefficients(),
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// RGB (0..255) at a pixel centre; for tests and tools, not for per-pixel loops.
    pub fn rgb_at(&self, x: usize, y: usize) -> [f32; 3] {
        self.sample(x as f32, y as f32, [0.0; 3])
    }

    /// The grey level (0..255) of the pixel at `x`, `y` (clamped to the frame), read the cheapest
    /// way the format allows: the Y plane's byte for I420 and NV12 (its own, limited, range),
    /// BT.601 weights of R, G and B for packed formats. For coarse change measures (motion, cuts)
    /// that compare frames of one format, not for the model's input.
    #[inline]
    pub fn grey_at(&self, x: usize, y: usize) -> u8 {
        let (x, y) = (x.min(self.width - 1), y.min(self.height - 1));
        let (p, s) = (self.planes[0], self.strides[0]);
        match self.format.packed_layout() {
            Some((bpp, [r, g, b])) => {
                let i = y * s + x * bpp;
                // 0.299, 0.587, 0.114 in 1/256ths, rounded.
                let v = 77 * p[i + r] as u32 + 150 * p[i + g] as u32 + 29 * p[i + b] as u32;
                ((v + 128) >> 8) as u8
            }
            None => p[y * s + x],
        }
    }

    /// Bilinear RGB sample at a point in pixel coordinates (pixel centres at integers). Points within
    /// one pixel of the frame are clamped to the edge; points further out get `border`.
    #[inline]
    fn sample(&self, sx: f32, sy: f32, border: [f32; 3]) -> [f32; 3] {
        let (w, h) = (self.width as f32, self.height as f32);
        if !(sx > -1.0 && sy > -1.0 && sx < w && sy < h) {
            return border;
        }
        match self.format.packed_layout() {
            Some((bpp, off)) => {
                let (x0, x1, fx) = taps(sx, self.width);
                let (y0, y1, fy) = taps(sy, self.height);
                let p = self.planes[0];
                let s = self.strides[0];
                let (r0, r1) = (y0 * s, y1 * s);
                let (a, b) = (x0 * bpp, x1 * bpp);
                let mut out = [0f32; 3];
                for (c, o) in out.iter_mut().zip(off) {
                    let top = lerp(p[r0 + a + o] as f32, p[r0 + b + o] as f32, fx);
                    let bot = lerp(p[r1 + a + o] as f32, p[r1 + b + o] as f32, fx);
                    *c = lerp(top, bot, fy);
                }
                out
            }
            None => {
                let (u, v) = self.chroma(sx, sy);
                self.yuv.rgb(self.luma(sx, sy), u, v)
            }
        }
    }

    /// Bilinear Y of a 4:2:0 frame at a point in pixel coordinates.
    #[inline(always)]
    fn luma(&self, sx: f32, sy: f32) -> f32 {
        Neighbours::new(sx, sy, self.width, self.height).sample(
            self.planes[0],
            self.strides[0],
            1,
            0,
        )
    }

    /// Bilinear U and V of a 4:2:0 frame at a point in luma pixel coordinates (chroma sited at the
    /// centre of each 2x2 block).
    #[inline(always)]
    fn chroma(&self, sx: f32, sy: f32) -> (f32, f32) {
        let (cx, cy) = ((sx + 0.5) * 0.5 - 0.5, (sy + 0.5) * 0.5 - 0.5);
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let n = Neighbours::new(cx, cy, cw, ch);
        let (p, st) = (self.planes, self.strides);
        if self.format == PixelFormat::I420 {
            (n.sample(p[1], st[1], 1, 0), n.sample(p[2], st[2], 1, 0))
        } else {
            (n.sample(p[1], st[1], 2, 0), n.sample(p[1], st[1], 2, 1))
        }
    }

    /// Fills `out` (a tensor of `spec.width` × `spec.height` × 3) by sampling the frame through
    /// `map`, which takes destination pixel centres to source pixel coordinates.
    ///
    /// A map without rotation (a resize, with or without letterbox) takes the separable path: each
    /// plane is filtered once horizontally and once vertically with a triangle filter as wide as the
    /// scale factor (bilinear when enlarging, an area-like filter when shrinking, so a 1080p frame
    /// sampled into a 640-wide tensor is not aliased), chroma at its own resolution, and YUV → RGB
    /// only on the destination pixels. Other maps (face chips) take the per-pixel path.
    pub fn sample_into(&self, map: &Affine, spec: &TensorSpec, out: &mut [f32]) {
        assert!(
            out.len() >= spec.width * spec.height * 3,
            "tensor buffer too small"
        );
        if map.b == 0.0 && map.d == 0.0 && map.a > 0.0 && map.e > 0.0 {
            self.resize_into(map, spec, out);
        } else {
            self.warp_into(map, spec, out);
        }
    }

    fn resize_into(&self, map: &Affine, spec: &TensorSpec, out: &mut [f32]) {
        let (w, h) = (spec.width, spec.height);
        let xt = AxisTaps::new(w, map.a, map.c, self.width);
        let yt = AxisTaps::new(h, map.e, map.f, self.height);
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let Scratch { planes, row } = &mut *scratch;
            for p in planes.iter_mut() {
                p.resize(w * h, 0.0);
            }
            let [p0, p1, p2] = planes;
            let yuv = match self.format.packed_layout() {
                Some((bpp, off)) => {
                    let (src, st) = (self.planes[0], self.strides[0]);
                    resample(src, st, bpp, &off, &xt, &yt, row, &mut [p0, p1, p2]);
                    false
                }
                None => {
                    resample(
                        self.planes[0],
                        self.strides[0],
                        1,
                        &[0],
                        &xt,
                        &yt,
                        row,
                        &mut [p0],
                    );
                    // 4:2:0 chroma, sited at the centre of each 2x2 block.
                    let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
                    let cxt = AxisTaps::new(w, map.a * 0.5, (map.c + 0.5) * 0.5 - 0.5, cw);
                    let cyt = AxisTaps::new(h, map.e * 0.5, (map.f + 0.5) * 0.5 - 0.5, ch);
                    if self.format == PixelFormat::I420 {
                        let (p, s) = (self.planes, self.strides);
                        resample(p[1], s[1], 1, &[0], &cxt, &cyt, row, &mut [p1]);
                        resample(p[2], s[2], 1, &[0], &cxt, &cyt, row, &mut [p2]);
                    } else {
                        let (p, s) = (self.planes[1], self.strides[1]);
                        resample(p, s, 2, &[0, 1], &cxt, &cyt, row, &mut [p1, p2]);
                    }
                    true
                }
            };
            let (p0, p1, p2) = (&p0[..], &p1[..], &p2[..]);
            spec.write(out, |ox, oy, i| {
                if !(xt.inside[ox] && yt.inside[oy]) {
                    spec.border
                } else if yuv {
                    self.yuv.rgb(p0[i], p1[i], p2[i])
                } else {
                    [p0[i], p1[i], p2[i]]
                }
            });
        });
    }

    /// The per-pixel path: each destination pixel averages a grid of bilinear taps spread over its
    /// footprint in the frame, about one per source pixel (at most 8×8).
    fn warp_into(&self, map: &Affine, spec: &TensorSpec, out: &mut [f32]) {
        let taps_along = |dx: f32, dy: f32| ((dx.hypot(dy) - 1e-3).ceil() as usize).clamp(1, 8);
        let (nx, ny) = (taps_along(map.a, map.d), taps_along(map.b, map.e));
        // Tap offsets from the pixel's centre, in frame pixels: an nx × ny grid over the footprint.
        let grid = |nx: usize, ny: usize| -> Vec<(f32, f32)> {
            let mut offsets = Vec::with_capacity(nx * ny);
            for j in 0..ny {
                for i in 0..nx {
                    let du = (i as f32 + 0.5) / nx as f32 - 0.5;
                    let dv = (j as f32 + 0.5) / ny as f32 - 0.5;
                    offsets.push((map.a * du + map.b * dv, map.d * du + map.e * dv));
                }
            }
            offsets
        };
        let offsets = grid(nx, ny);
        if self.format.packed_layout().is_none() {
            // 4:2:0 chroma has half the resolution: half as many taps each way cover it as well.
            let chroma = grid(nx.div_ceil(2), ny.div_ceil(2));
            return self.warp_yuv_into(map, spec, &offsets, &chroma, out);
        }
        let (w, h) = (spec.width, spec.height);
        let norm = 1.0 / offsets.len() as f32;
        let border = spec.border;
        for oy in 0..h {
            let (mut sx, mut sy) = map.apply(0.0, oy as f32);
            for ox in 0..w {
                let rgb = if offsets.len() == 1 {
                    self.sample(sx, sy, border)
                } else {
                    let mut acc = [0f32; 3];
                    for &(dx, dy) in &offsets {
                        let v = self.sample(sx + dx, sy + dy, border);
                        acc[0] += v[0];
                        acc[1] += v[1];
                        acc[2] += v[2];
                    }
                    acc.map(|v| v * norm)
                };
                spec.store(out, ox, oy, rgb);
                sx += map.a;
                sy += map.d;
            }
        }
    }

    /// [`FrameView::warp_into`] for I420 and NV12: luma averaged over the `luma` taps and chroma
    /// over the `chroma` taps, each at its own resolution, and YUV → RGB once per destination
    /// pixel rather than once per tap. Taps off the frame count as `spec.border`, as in
    /// [`FrameView::sample`].
    fn warp_yuv_into(
        &self,
        map: &Affine,
        spec: &TensorSpec,
        luma: &[(f32, f32)],
        chroma: &[(f32, f32)],
        out: &mut [f32],
    ) {
        let (fw, fh) = (self.width as f32, self.height as f32);
        let on = |x: f32, y: f32| x > -1.0 && y > -1.0 && x < fw && y < fh;
        let border = spec.border;
        let n = luma.len() as f32;
        for oy in 0..spec.height {
            let (mut sx, mut sy) = map.apply(0.0, oy as f32);
            for ox in 0..spec.width {
                let (mut ys, mut seen) = (0f32, 0usize);
                for &(dx, dy) in luma {
                    let (x, y) = (sx + dx, sy + dy);
                    if on(x, y) {
                        ys += self.luma(x, y);
                        seen += 1;
                    }
                }
                let rgb = if seen == 0 {
                    border
                } else {
                    let (mut us, mut vs, mut cn) = (0f32, 0f32, 0usize);
                    for &(dx, dy) in chroma {
                        let (x, y) = (sx + dx, sy + dy);
                        if on(x, y) {
                            let (u, v) = self.chroma(x, y);
                            us += u;
                            vs += v;
                            cn += 1;
                        }
                    }
                    if cn == 0 {
                        // On the frame's edge: no chroma tap on the frame, the nearest chroma.
                        (us, vs) = self.chroma(sx, sy);
                        cn = 1;
                    }
                    let c = self
                        .yuv
                        .rgb(ys / seen as f32, us / cn as f32, vs / cn as f32);
                    if seen == luma.len() {
                        c
                    } else {
                        let k = seen as f32 / n;
                        [0, 1, 2].map(|i| c[i] * k + border[i] * (1.0 - k))
                    }
                };
                spec.store(out, ox, oy, rgb);
                sx += map.a;
                sy += map.d;
            }
        }
    }
}

#[inline(always)]
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// Neighbour indices and weight for a coordinate, clamped to [0, n-1].
#[inline(always)]
fn taps(s: f32, n: usize) -> (usize, usize, f32) {
    let max = (n - 1) as f32;
    let s = s.clamp(0.0, max);
    let i0 = s as usize; // s >= 0, so truncation is floor
    let i1 = (i0 + 1).min(n - 1);
    (i0, i1, s - i0 as f32)
}

/// The four neighbours of a point in a `w` × `h` plane and their weights: one point sampled in
/// several planes (U and V) costs one computation of them.
#[derive(Clone, Copy)]
struct Neighbours {
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
    fx: f32,
    fy: f32,
}

impl Neighbours {
    #[inline(always)]
    fn new(sx: f32, sy: f32, w: usize, h: usize) -> Self {
        let (x0, x1, fx) = taps(sx, w);
        let (y0, y1, fy) = taps(sy, h);
        Neighbours {
            x0,
            x1,
            y0,
            y1,
            fx,
            fy,
        }
    }

    /// Bilinear sample of the plane `p` (samples `step` bytes apart, from byte `off`).
    #[inline(always)]
    fn sample(&self, p: &[u8], stride: usize, step: usize, off: usize) -> f32 {
        let (r0, r1) = (self.y0 * stride + off, self.y1 * stride + off);
        let (a, b) = (self.x0 * step, self.x1 * step);
        let top = lerp(p[r0 + a] as f32, p[r0 + b] as f32, self.fx);
        let bot = lerp(p[r1 + a] as f32, p[r1 + b] as f32, self.fx);
        lerp(top, bot, self.fy)
    }
}

#[cfg(test)]
mod tests;
