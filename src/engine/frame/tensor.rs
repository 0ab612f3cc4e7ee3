// SPDX-License-Identifier: MIT
//! What the sampler writes (size, layout, channel order, normalisation) and the affine maps
//! it samples through.

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
    /// A tensor of raw pixel values (0..255, no normalisation, black border) in `order`: for
    /// pictures (snapshots) and tests rather than models.
    pub fn raw(width: usize, height: usize, layout: Layout, order: ChannelOrder) -> TensorSpec {
        TensorSpec {
            width,
            height,
            layout,
            order,
            mean: [0.0; 3],
            inv_std: [1.0; 3],
            border: [0.0; 3],
        }
    }

    /// Fills the whole tensor from `pixel(x, y, y * width + x)`, an RGB pixel (0..255), normalised,
    /// in this tensor's channel order and layout; one pass in memory order.
    #[inline(always)]
    pub(super) fn write(&self, out: &mut [f32], pixel: impl Fn(usize, usize, usize) -> [f32; 3]) {
        let (w, h) = (self.width, self.height);
        let plane = w * h;
        let src: [usize; 3] = match self.order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        let norm = |rgb: [f32; 3]| -> [f32; 3] {
            std::array::from_fn(|c| (rgb[src[c]] - self.mean[c]) * self.inv_std[c])
        };
        match self.layout {
            Layout::Nchw => {
                let (o0, rest) = out[..3 * plane].split_at_mut(plane);
                let (o1, o2) = rest.split_at_mut(plane);
                for y in 0..h {
                    for x in 0..w {
                        let i = y * w + x;
                        let v = norm(pixel(x, y, i));
                        (o0[i], o1[i], o2[i]) = (v[0], v[1], v[2]);
                    }
                }
            }
            Layout::Nhwc => {
                let mut px = out[..3 * plane].chunks_exact_mut(3);
                for y in 0..h {
                    for x in 0..w {
                        if let Some(o) = px.next() {
                            o.copy_from_slice(&norm(pixel(x, y, y * w + x)));
                        }
                    }
                }
            }
        }
    }

    /// Writes one RGB pixel (0..255), normalised, in this tensor's channel order and layout.
    #[inline(always)]
    pub(super) fn store(&self, out: &mut [f32], x: usize, y: usize, rgb: [f32; 3]) {
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
    use crate::engine::frame::format::{PixelFormat, YuvMatrix};
    use crate::engine::frame::testutil::spec;
    use crate::engine::frame::view::FrameView;

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
    fn affine_inverse_and_stretch() {
        let m = Affine::stretch(10, 5, 2.0, 3.0, 20.0, 10.0);
        // destination pixel centre 0 maps to the centre of the first 2x2 source block.
        assert_eq!(m.apply(0.0, 0.0), (2.5, 3.5));
        let inv = m.inverse().unwrap();
        let (x, y) = inv.apply(2.5, 3.5);
        assert!(x.abs() < 1e-5 && y.abs() < 1e-5);
    }
}
