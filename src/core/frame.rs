//! A borrowed view of a raw video frame and the one sampler every element uses to read pixels.
//!
//! The sampler never converts a whole frame. It maps each pixel of the *destination* (a model's input
//! tensor, a 150×150 face chip, …) through an affine transform into the source frame, samples that
//! point bilinearly in the frame's own format (packed RGB variants, I420 or NV12, with YUV → RGB done
//! after interpolation), and writes the normalised value straight into the tensor layout the model
//! wants. A plain resize is the affine transform without rotation.

use std::fmt;

/// Pixel formats the samplers read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgbx,
    Bgrx,
    Xrgb,
    Xbgr,
    Rgba,
    Bgra,
    I420,
    Nv12,
}

impl PixelFormat {
    /// For packed formats: bytes per pixel and the byte offsets of R, G and B.
    fn packed_layout(self) -> Option<(usize, [usize; 3])> {
        Some(match self {
            PixelFormat::Rgb => (3, [0, 1, 2]),
            PixelFormat::Bgr => (3, [2, 1, 0]),
            PixelFormat::Rgbx | PixelFormat::Rgba => (4, [0, 1, 2]),
            PixelFormat::Bgrx | PixelFormat::Bgra => (4, [2, 1, 0]),
            PixelFormat::Xrgb => (4, [1, 2, 3]),
            PixelFormat::Xbgr => (4, [3, 2, 1]),
            PixelFormat::I420 | PixelFormat::Nv12 => return None,
        })
    }

    fn n_planes(self) -> usize {
        match self {
            PixelFormat::I420 => 3,
            PixelFormat::Nv12 => 2,
            _ => 1,
        }
    }
}

/// YUV → RGB matrix of a frame (ignored for RGB formats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YuvMatrix {
    /// Luma weight of red (0.299 for BT.601, 0.2126 for BT.709, 0.2627 for BT.2020).
    pub kr: f32,
    /// Luma weight of blue (0.114 for BT.601, 0.0722 for BT.709, 0.0593 for BT.2020).
    pub kb: f32,
    /// Full range (0..255) instead of limited range (16..235 / 16..240).
    pub full_range: bool,
}

impl YuvMatrix {
    pub const BT601: YuvMatrix = YuvMatrix {
        kr: 0.299,
        kb: 0.114,
        full_range: false,
    };
    pub const BT709: YuvMatrix = YuvMatrix {
        kr: 0.2126,
        kb: 0.0722,
        full_range: false,
    };
    pub const BT2020: YuvMatrix = YuvMatrix {
        kr: 0.2627,
        kb: 0.0593,
        full_range: false,
    };

    pub fn with_full_range(self, full_range: bool) -> Self {
        YuvMatrix { full_range, ..self }
    }

    fn coefficients(&self) -> YuvCoeffs {
        let kg = 1.0 - self.kr - self.kb;
        let (y_off, y_scale, c_scale) = if self.full_range {
            (0.0, 1.0, 1.0)
        } else {
            (16.0, 255.0 / 219.0, 255.0 / 224.0)
        };
        YuvCoeffs {
            y_off,
            y_scale,
            r_v: 2.0 * (1.0 - self.kr) * c_scale,
            g_u: -2.0 * (1.0 - self.kb) * self.kb / kg * c_scale,
            g_v: -2.0 * (1.0 - self.kr) * self.kr / kg * c_scale,
            b_u: 2.0 * (1.0 - self.kb) * c_scale,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct YuvCoeffs {
    y_off: f32,
    y_scale: f32,
    r_v: f32,
    g_u: f32,
    g_v: f32,
    b_u: f32,
}

impl YuvCoeffs {
    #[inline(always)]
    fn rgb(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let y = (y - self.y_off) * self.y_scale;
        let u = u - 128.0;
        let v = v - 128.0;
        [
            (y + self.r_v * v).clamp(0.0, 255.0),
            (y + self.g_u * u + self.g_v * v).clamp(0.0, 255.0),
            (y + self.b_u * u).clamp(0.0, 255.0),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    TooSmall {
        width: usize,
        height: usize,
    },
    Planes {
        expected: usize,
        got: usize,
    },
    PlaneTooShort {
        plane: usize,
        need: usize,
        got: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooSmall { width, height } => {
                write!(f, "frame {width}x{height} is smaller than 2x2")
            }
            FrameError::Planes { expected, got } => {
                write!(f, "expected {expected} planes, got {got}")
            }
            FrameError::PlaneTooShort { plane, need, got } => {
                write!(f, "plane {plane} holds {got} bytes, {need} needed")
            }
        }
    }
}

impl std::error::Error for FrameError {}

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
                let y = bilinear(
                    self.planes[0],
                    self.strides[0],
                    1,
                    0,
                    sx,
                    sy,
                    self.width,
                    self.height,
                );
                // 4:2:0 chroma, sited at the centre of each 2x2 block.
                let (cx, cy) = ((sx + 0.5) * 0.5 - 0.5, (sy + 0.5) * 0.5 - 0.5);
                let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
                let (u, v) = if self.format == PixelFormat::I420 {
                    (
                        bilinear(self.planes[1], self.strides[1], 1, 0, cx, cy, cw, ch),
                        bilinear(self.planes[2], self.strides[2], 1, 0, cx, cy, cw, ch),
                    )
                } else {
                    (
                        bilinear(self.planes[1], self.strides[1], 2, 0, cx, cy, cw, ch),
                        bilinear(self.planes[1], self.strides[1], 2, 1, cx, cy, cw, ch),
                    )
                };
                self.yuv.rgb(y, u, v)
            }
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
            let Scratch { planes, tmp } = &mut *scratch;
            for p in planes.iter_mut() {
                p.resize(w * h, 0.0);
            }
            let [p0, p1, p2] = planes;
            let yuv = match self.format.packed_layout() {
                Some((bpp, off)) => {
                    let (src, st) = (self.planes[0], self.strides[0]);
                    resample(src, st, bpp, off[0], &xt, &yt, tmp, p0);
                    resample(src, st, bpp, off[1], &xt, &yt, tmp, p1);
                    resample(src, st, bpp, off[2], &xt, &yt, tmp, p2);
                    false
                }
                None => {
                    resample(self.planes[0], self.strides[0], 1, 0, &xt, &yt, tmp, p0);
                    // 4:2:0 chroma, sited at the centre of each 2x2 block.
                    let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
                    let cxt = AxisTaps::new(w, map.a * 0.5, (map.c + 0.5) * 0.5 - 0.5, cw);
                    let cyt = AxisTaps::new(h, map.e * 0.5, (map.f + 0.5) * 0.5 - 0.5, ch);
                    if self.format == PixelFormat::I420 {
                        resample(self.planes[1], self.strides[1], 1, 0, &cxt, &cyt, tmp, p1);
                        resample(self.planes[2], self.strides[2], 1, 0, &cxt, &cyt, tmp, p2);
                    } else {
                        resample(self.planes[1], self.strides[1], 2, 0, &cxt, &cyt, tmp, p1);
                        resample(self.planes[1], self.strides[1], 2, 1, &cxt, &cyt, tmp, p2);
                    }
                    true
                }
            };
            let mut i = 0;
            for oy in 0..h {
                for ox in 0..w {
                    let rgb = if !(xt.inside[ox] && yt.inside[oy]) {
                        spec.border
                    } else if yuv {
                        self.yuv.rgb(p0[i], p1[i], p2[i])
                    } else {
                        [p0[i], p1[i], p2[i]]
                    };
                    spec.store(out, ox, oy, rgb);
                    i += 1;
                }
            }
        });
    }

    /// The per-pixel path: each destination pixel averages a grid of bilinear taps spread over its
    /// footprint in the frame, about one per source pixel (at most 8×8).
    fn warp_into(&self, map: &Affine, spec: &TensorSpec, out: &mut [f32]) {
        let (w, h) = (spec.width, spec.height);
        let taps_along = |dx: f32, dy: f32| ((dx.hypot(dy) - 1e-3).ceil() as usize).clamp(1, 8);
        let (nx, ny) = (taps_along(map.a, map.d), taps_along(map.b, map.e));
        let mut offsets = Vec::with_capacity(nx * ny);
        for j in 0..ny {
            for i in 0..nx {
                let du = (i as f32 + 0.5) / nx as f32 - 0.5;
                let dv = (j as f32 + 0.5) / ny as f32 - 0.5;
                offsets.push((map.a * du + map.b * dv, map.d * du + map.e * dv));
            }
        }
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
}

/// Reused buffers of the separable path: three destination planes and the horizontal pass.
#[derive(Default)]
struct Scratch {
    planes: [Vec<f32>; 3],
    tmp: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Filter taps along one axis of a resize: for each destination index, `k` source indices (clamped
/// to the frame, so edges repeat) and normalised triangle-filter weights of radius max(scale, 1).
struct AxisTaps {
    k: usize,
    idx: Vec<usize>,
    w: Vec<f32>,
    /// Whether the destination pixel centre falls on the frame (else it gets the border value).
    inside: Vec<bool>,
    min_idx: usize,
    max_idx: usize,
}

impl AxisTaps {
    fn new(n_out: usize, scale: f32, offset: f32, n_src: usize) -> AxisTaps {
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
fn resample(
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

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn bilinear(
    p: &[u8],
    stride: usize,
    step: usize,
    off: usize,
    sx: f32,
    sy: f32,
    w: usize,
    h: usize,
) -> f32 {
    let (x0, x1, fx) = taps(sx, w);
    let (y0, y1, fy) = taps(sy, h);
    let (r0, r1) = (y0 * stride + off, y1 * stride + off);
    let top = lerp(p[r0 + x0 * step] as f32, p[r0 + x1 * step] as f32, fx);
    let bot = lerp(p[r1 + x0 * step] as f32, p[r1 + x1 * step] as f32, fx);
    lerp(top, bot, fy)
}

/// Tensor memory layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Nchw,
    Nhwc,
}

/// Channel order of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// What the sampler writes: size, layout, channel order and normalisation `(v - mean) / std`, with
/// mean and std given in the tensor's channel order.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub width: usize,
    pub height: usize,
    pub layout: Layout,
    pub order: ChannelOrder,
    pub mean: [f32; 3],
    pub inv_std: [f32; 3],
    /// RGB value for destination pixels that fall outside the frame.
    pub border: [f32; 3],
}

impl TensorSpec {
    /// Writes one RGB pixel (0..255), normalised, in this tensor's channel order and layout.
    #[inline(always)]
    fn store(&self, out: &mut [f32], x: usize, y: usize, rgb: [f32; 3]) {
        let src: [usize; 3] = match self.order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        for c in 0..3 {
            let v = (rgb[src[c]] - self.mean[c]) * self.inv_std[c];
            let idx = match self.layout {
                Layout::Nchw => c * self.width * self.height + y * self.width + x,
                Layout::Nhwc => (y * self.width + x) * 3 + c,
            };
            out[idx] = v;
        }
    }
}

/// An affine map `(x, y) -> (a x + b y + c, d x + e y + f)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    pub e: f32,
    pub f: f32,
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        d: 0.0,
        e: 1.0,
        f: 0.0,
    };

    #[inline]
    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        (
            self.a * x + self.b * y + self.c,
            self.d * x + self.e * y + self.f,
        )
    }

    /// The map from pixel centres of a `dst_w`×`dst_h` image to pixel coordinates of the source rectangle
    /// (`x`, `y`, `w`, `h`) that the image shows stretched (pixel-centre aligned, like a scaler).
    pub fn stretch(dst_w: usize, dst_h: usize, x: f32, y: f32, w: f32, h: f32) -> Affine {
        let sx = w / dst_w as f32;
        let sy = h / dst_h as f32;
        Affine {
            a: sx,
            b: 0.0,
            c: x + 0.5 * sx - 0.5,
            d: 0.0,
            e: sy,
            f: y + 0.5 * sy - 0.5,
        }
    }

    /// Inverse map; `None` for a degenerate map.
    pub fn inverse(&self) -> Option<Affine> {
        let det = self.a * self.e - self.b * self.d;
        if det.abs() < 1e-12 {
            return None;
        }
        let (a, b, d, e) = (self.e / det, -self.b / det, -self.d / det, self.a / det);
        Some(Affine {
            a,
            b,
            c: -(a * self.c + b * self.f),
            d,
            e,
            f: -(d * self.c + e * self.f),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth synthetic RGB image so that bilinear sampling of any format agrees closely.
    fn rgb_image(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                v.push((40 + x * 150 / w) as u8);
                v.push((60 + y * 120 / h) as u8);
                v.push((200 - (x + y) * 100 / (w + h)) as u8);
            }
        }
        v
    }

    fn pack(rgb: &[u8], bpp: usize, off: [usize; 3]) -> Vec<u8> {
        let n = rgb.len() / 3;
        let mut v = vec![255u8; n * bpp];
        for i in 0..n {
            for c in 0..3 {
                v[i * bpp + off[c]] = rgb[i * 3 + c];
            }
        }
        v
    }

    /// BT.601 limited-range RGB → I420 with 2x2 chroma averaging.
    fn to_i420(rgb: &[u8], w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let mut y = vec![0u8; w * h];
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let mut u = vec![0u8; cw * ch];
        let mut v = vec![0u8; cw * ch];
        let px = |i: usize| {
            let (r, g, b) = (
                rgb[i * 3] as f32,
                rgb[i * 3 + 1] as f32,
                rgb[i * 3 + 2] as f32,
            );
            let yy = 16.0 + (0.299 * r + 0.587 * g + 0.114 * b) * 219.0 / 255.0;
            let uu = 128.0 + (-0.168_736 * r - 0.331_264 * g + 0.5 * b) * 224.0 / 255.0;
            let vv = 128.0 + (0.5 * r - 0.418_688 * g - 0.081_312 * b) * 224.0 / 255.0;
            (yy, uu, vv)
        };
        for j in 0..h {
            for i in 0..w {
                y[j * w + i] = px(j * w + i).0.round() as u8;
            }
        }
        for j in 0..ch {
            for i in 0..cw {
                let (mut su, mut sv, mut n) = (0.0, 0.0, 0.0);
                for dy in 0..2 {
                    for dx in 0..2 {
                        let (xx, yy) = (2 * i + dx, 2 * j + dy);
                        if xx < w && yy < h {
                            let (_, uu, vv) = px(yy * w + xx);
                            su += uu;
                            sv += vv;
                            n += 1.0;
                        }
                    }
                }
                u[j * cw + i] = (su / n).round() as u8;
                v[j * cw + i] = (sv / n).round() as u8;
            }
        }
        (y, u, v)
    }

    fn spec(w: usize, h: usize, layout: Layout, order: ChannelOrder) -> TensorSpec {
        TensorSpec {
            width: w,
            height: h,
            layout,
            order,
            mean: [0.0; 3],
            inv_std: [1.0; 3],
            border: [0.0; 3],
        }
    }

    #[test]
    fn packed_formats_agree() {
        let (w, h) = (37, 23);
        let rgb = rgb_image(w, h);
        let base =
            FrameView::new(PixelFormat::Rgb, w, h, &[&rgb], &[w * 3], YuvMatrix::BT601).unwrap();
        let s = spec(16, 10, Layout::Nchw, ChannelOrder::Rgb);
        let map = Affine::stretch(16, 10, 0.0, 0.0, w as f32, h as f32);
        let mut want = vec![0f32; 16 * 10 * 3];
        base.sample_into(&map, &s, &mut want);
        for fmt in [
            PixelFormat::Bgr,
            PixelFormat::Rgbx,
            PixelFormat::Bgrx,
            PixelFormat::Xrgb,
            PixelFormat::Xbgr,
            PixelFormat::Rgba,
            PixelFormat::Bgra,
        ] {
            let (bpp, off) = fmt.packed_layout().unwrap();
            let data = pack(&rgb, bpp, off);
            let view = FrameView::new(fmt, w, h, &[&data], &[w * bpp], YuvMatrix::BT601).unwrap();
            let mut got = vec![0f32; want.len()];
            view.sample_into(&map, &s, &mut got);
            assert_eq!(got, want, "{fmt:?}");
        }
    }

    #[test]
    fn yuv_formats_match_rgb() {
        let (w, h) = (40, 30);
        let rgb = rgb_image(w, h);
        let (y, u, v) = to_i420(&rgb, w, h);
        let mut uv = Vec::new();
        for (a, b) in u.iter().zip(&v) {
            uv.push(*a);
            uv.push(*b);
        }
        let base =
            FrameView::new(PixelFormat::Rgb, w, h, &[&rgb], &[w * 3], YuvMatrix::BT601).unwrap();
        let i420 = FrameView::new(
            PixelFormat::I420,
            w,
            h,
            &[&y, &u, &v],
            &[w, w / 2, w / 2],
            YuvMatrix::BT601,
        )
        .unwrap();
        let nv12 = FrameView::new(
            PixelFormat::Nv12,
            w,
            h,
            &[&y, &uv],
            &[w, w],
            YuvMatrix::BT601,
        )
        .unwrap();
        for yy in 1..h - 1 {
            for xx in 1..w - 1 {
                let want = base.rgb_at(xx, yy);
                for view in [&i420, &nv12] {
                    let got = view.rgb_at(xx, yy);
                    for c in 0..3 {
                        assert!(
                            (got[c] - want[c]).abs() < 4.0,
                            "({xx},{yy}) c{c}: {got:?} vs {want:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn layout_order_and_normalisation() {
        let rgb = [10u8, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30];
        let view = FrameView::new(PixelFormat::Rgb, 2, 2, &[&rgb], &[6], YuvMatrix::BT601).unwrap();
        let mut s = spec(2, 2, Layout::Nhwc, ChannelOrder::Bgr);
        s.mean = [30.0, 20.0, 10.0];
        s.inv_std = [0.5, 0.5, 0.5];
        let mut out = vec![0f32; 12];
        view.sample_into(&Affine::IDENTITY, &s, &mut out);
        assert_eq!(&out[..3], &[0.0, 0.0, 0.0]);
        let s = spec(2, 2, Layout::Nchw, ChannelOrder::Rgb);
        view.sample_into(&Affine::IDENTITY, &s, &mut out);
        assert_eq!(
            out,
            vec![10., 10., 10., 10., 20., 20., 20., 20., 30., 30., 30., 30.]
        );
    }

    #[test]
    fn outside_gets_border_and_edges_clamp() {
        let rgb = [100u8; 12];
        let view = FrameView::new(PixelFormat::Rgb, 2, 2, &[&rgb], &[6], YuvMatrix::BT601).unwrap();
        let mut s = spec(4, 1, Layout::Nchw, ChannelOrder::Rgb);
        s.border = [7.0; 3];
        let map = Affine {
            c: -3.0,
            ..Affine::IDENTITY
        };
        let mut out = vec![0f32; 12];
        view.sample_into(&map, &s, &mut out);
        // x = -3, -2 (outside), -1 (outside: the edge band is open), 0 (inside)
        assert_eq!(&out[..4], &[7.0, 7.0, 7.0, 100.0]);
        let map = Affine {
            c: -0.5,
            ..Affine::IDENTITY
        };
        view.sample_into(&map, &s, &mut out);
        assert_eq!(out[0], 100.0);
    }

    #[test]
    fn shrinking_averages_the_footprint() {
        // A 1-pixel checkerboard shrunk 4x: bilinear alone would hit single pixels (0 or 255);
        // the area filter gives the mean grey.
        let (w, h) = (16, 16);
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                if (x + y) % 2 == 0 {
                    rgb[(y * w + x) * 3..][..3].fill(255);
                }
            }
        }
        let view =
            FrameView::new(PixelFormat::Rgb, w, h, &[&rgb], &[w * 3], YuvMatrix::BT601).unwrap();
        let s = spec(4, 4, Layout::Nchw, ChannelOrder::Rgb);
        let map = Affine::stretch(4, 4, 0.0, 0.0, 16.0, 16.0);
        let mut out = vec![0f32; 48];
        view.resize_into(&map, &s, &mut out);
        for v in &out {
            assert!((v - 127.5).abs() < 8.0, "separable: {v}");
        }
        view.warp_into(&map, &s, &mut out);
        for v in &out {
            assert!((v - 127.5).abs() < 8.0, "per pixel: {v}");
        }
    }

    #[test]
    fn separable_path_matches_per_pixel_path_when_enlarging() {
        let (w, h) = (23, 17);
        let rgb = rgb_image(w, h);
        let (y, u, v) = to_i420(&rgb, w, h);
        let rgb_view =
            FrameView::new(PixelFormat::Rgb, w, h, &[&rgb], &[w * 3], YuvMatrix::BT601).unwrap();
        let i420 = FrameView::new(
            PixelFormat::I420,
            w,
            h,
            &[&y, &u, &v],
            &[w, 12, 12],
            YuvMatrix::BT601,
        )
        .unwrap();
        let s = spec(50, 31, Layout::Nchw, ChannelOrder::Bgr);
        for view in [rgb_view, i420] {
            for map in [
                Affine::stretch(50, 31, 0.0, 0.0, w as f32, h as f32),
                Affine::stretch(50, 31, -3.0, 2.0, 30.0, 20.0), // partly outside: border
            ] {
                let (mut a, mut b) = (vec![0f32; 50 * 31 * 3], vec![0f32; 50 * 31 * 3]);
                view.resize_into(&map, &s, &mut a);
                view.warp_into(&map, &s, &mut b);
                for (p, q) in a.iter().zip(&b) {
                    assert!((p - q).abs() < 1e-3, "{p} vs {q}");
                }
            }
        }
    }

    #[test]
    fn rejects_short_planes() {
        let data = vec![0u8; 10];
        assert!(matches!(
            FrameView::new(PixelFormat::Rgb, 4, 4, &[&data], &[12], YuvMatrix::BT601),
            Err(FrameError::PlaneTooShort { .. })
        ));
        assert!(matches!(
            FrameView::new(PixelFormat::I420, 4, 4, &[&data], &[4], YuvMatrix::BT601),
            Err(FrameError::Planes { .. })
        ));
    }

    #[test]
    fn affine_inverse_and_stretch() {
        let m = Affine::stretch(10, 5, 2.0, 3.0, 20.0, 10.0);
        // destination pixel centre 0 maps to the centre of the first 2x2 source block.
        assert_eq!(m.apply(0.0, 0.0), (2.5, 3.5));
        let inv = m.inverse().unwrap();
        let (x, y) = inv.apply(2.5, 3.5);
        assert!(x.abs() < 1e-5 && y.abs() < 1e-5);
    }
}
