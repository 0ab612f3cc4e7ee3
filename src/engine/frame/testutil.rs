// SPDX-License-Identifier: MIT
//! Synthetic frames and tensor specs shared by the unit tests of the frame module.

use super::tensor::{ChannelOrder, Layout, TensorSpec};

/// A smooth synthetic RGB image so that bilinear sampling of any format agrees closely.
pub(super) fn rgb_image(w: usize, h: usize) -> Vec<u8> {
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

pub(super) fn pack(rgb: &[u8], bpp: usize, off: [usize; 3]) -> Vec<u8> {
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
pub(super) fn to_i420(rgb: &[u8], w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
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

pub(super) fn spec(w: usize, h: usize, layout: Layout, order: ChannelOrder) -> TensorSpec {
    TensorSpec::raw(w, h, layout, order)
}
