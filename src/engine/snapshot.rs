// SPDX-License-Identifier: MIT
//! A small JPEG of one face, for `veilmatch`'s opt-in `attach-snapshot`: the face box (enlarged a
//! little) sampled straight from the frame, whatever its format, to at most `max_side` pixels, with
//! the other faces of the frame that fall into it blanked. GStreamer-free.

use std::ops::Range;

use crate::engine::frame::{Affine, ChannelOrder, FrameView, Layout, TensorSpec};

/// A box in frame pixels: x, y, w, h.
pub type Rect = (f32, f32, f32, f32);

/// Margin around a neighbour's face box that is blanked with it, in its size on every side (as
/// `veilredact`'s default margin): a box fits a face tightly, hair and ears go past it.
pub const NEIGHBOUR_MARGIN: f32 = 0.2;

/// The picture of a snapshot, before it is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop {
    /// Packed RGB rows, `width` × `height` pixels.
    pub rgb: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

/// The face at `rect` enlarged by `margin` of its size on each side, scaled to fit `max_side`;
/// `None` when the box is empty. The faces at `others` (every other face of the frame) are black
/// where they fall into it, each with [`NEIGHBOUR_MARGIN`] around it: a neighbour's box whole,
/// its margin except over the face of `rect` itself.
pub fn crop(
    view: &FrameView<'_>,
    rect: Rect,
    others: &[Rect],
    margin: f32,
    max_side: usize,
) -> Option<Crop> {
    let (fx, fy, fw, fh) = rect;
    let (x, y, w, h) = (
        fx - fw * margin,
        fy - fh * margin,
        fw * (1.0 + 2.0 * margin),
        fh * (1.0 + 2.0 * margin),
    );
    if !(w >= 1.0 && h >= 1.0) {
        return None;
    }
    let scale = (max_side as f32 / w.max(h)).min(1.0);
    let (ow, oh) = (
        ((w * scale).round() as usize).max(1),
        ((h * scale).round() as usize).max(1),
    );
    let spec = TensorSpec::raw(ow, oh, Layout::Nhwc, ChannelOrder::Rgb);
    let mut rgb = vec![0f32; ow * oh * 3];
    view.sample_into(&Affine::stretch(ow, oh, x, y, w, h), &spec, &mut rgb);
    let mut rgb: Vec<u8> = rgb
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    // Frame pixels per output pixel, across and down.
    let (sx, sy) = (w / ow as f32, h / oh as f32);
    let centre_in_face = |i: usize, j: usize| {
        let (cx, cy) = (x + (i as f32 + 0.5) * sx, y + (j as f32 + 0.5) * sy);
        cx >= fx && cx < fx + fw && cy >= fy && cy < fy + fh
    };
    for &(nx, ny, nw, nh) in others {
        let (mx, my) = (nw * NEIGHBOUR_MARGIN, nh * NEIGHBOUR_MARGIN);
        let (own_cols, own_rows) = (span(nx, nx + nw, x, sx, ow), span(ny, ny + nh, y, sy, oh));
        for j in span(ny - my, ny + nh + my, y, sy, oh) {
            for i in span(nx - mx, nx + nw + mx, x, sx, ow) {
                let own = own_cols.contains(&i) && own_rows.contains(&j);
                if own || !centre_in_face(i, j) {
                    rgb[(j * ow + i) * 3..][..3].fill(0);
                }
            }
        }
    }
    Some(Crop {
        rgb,
        width: ow,
        height: oh,
    })
}

/// The output pixels (columns or rows) whose area meets `a0..a1` of the frame, for a crop from
/// `origin` with `step` frame pixels per output pixel and `n` output pixels.
fn span(a0: f32, a1: f32, origin: f32, step: f32, n: usize) -> Range<usize> {
    let lo = ((a0 - origin) / step).floor().max(0.0) as usize;
    let hi = (((a1 - origin) / step).ceil().max(0.0) as usize).min(n);
    lo..hi
}

/// [`crop`] as a baseline JPEG of `quality` (1–100).
pub fn jpeg(
    view: &FrameView<'_>,
    rect: Rect,
    others: &[Rect],
    margin: f32,
    max_side: usize,
    quality: u8,
) -> Option<Vec<u8>> {
    let c = crop(view, rect, others, margin, max_side)?;
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
        .encode(
            &c.rgb,
            c.width as u16,
            c.height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::{PixelFormat, YuvMatrix};

    #[test]
    fn a_face_box_becomes_a_small_jpeg() {
        let (w, h) = (320usize, 240usize);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let view =
            FrameView::new(PixelFormat::Rgb, w, h, &[&rgb], &[w * 3], YuvMatrix::BT601).unwrap();
        let j = jpeg(&view, (100.0, 50.0, 80.0, 100.0), &[], 0.2, 64, 80).unwrap();
        assert_eq!(&j[..2], &[0xff, 0xd8], "JPEG start of image");
        // 112×140 px with the margin, scaled to 64 high: the SOF0 segment says 51×64
        let sof = j.windows(2).position(|p| p == [0xff, 0xc0]).unwrap();
        let (hh, ww) = (
            u16::from_be_bytes([j[sof + 5], j[sof + 6]]),
            u16::from_be_bytes([j[sof + 7], j[sof + 8]]),
        );
        assert_eq!((ww, hh), (51, 64));
        assert!(jpeg(&view, (0.0, 0.0, 0.0, 0.0), &[], 0.2, 64, 80).is_none());
    }

    /// At scale 1 the crop's pixel (i, j) is the frame's (84 + i, 30 + j) for this face.
    const FACE: Rect = (100.0, 50.0, 80.0, 100.0);

    fn frame(w: usize, h: usize) -> Vec<u8> {
        // Never black: a black pixel in a crop was blanked.
        (0..w * h * 3).map(|i| (i % 250) as u8 + 1).collect()
    }

    /// The frame pixel (x, y) meets the box grown by `m` of its size on every side.
    fn meets((bx, by, bw, bh): Rect, m: f32, x: usize, y: usize) -> bool {
        let (x, y) = (x as f32, y as f32);
        x + 1.0 > bx - bw * m
            && x < bx + bw * (1.0 + m)
            && y + 1.0 > by - bh * m
            && y < by + bh * (1.0 + m)
    }

    #[test]
    fn a_neighbours_face_in_the_crop_is_blanked_and_nothing_else() {
        let (w, h) = (320usize, 240usize);
        let rgb = frame(w, h);
        let view =
            FrameView::new(PixelFormat::Rgb, w, h, &[&rgb], &[w * 3], YuvMatrix::BT601).unwrap();
        let alone = crop(&view, FACE, &[], 0.2, 200).unwrap();
        assert_eq!((alone.width, alone.height), (112, 140));
        assert!(alone.rgb.iter().all(|&v| v > 0), "black without neighbours");
        // One neighbour overlapping the face's right side, one outside the crop.
        let neighbour = (170.0, 60.0, 40.0, 50.0);
        let far = (260.0, 170.0, 40.0, 50.0);
        let with = crop(&view, FACE, &[neighbour, far], 0.2, 200).unwrap();
        let px = |c: &Crop, x: usize, y: usize| {
            let k = ((y - 30) * c.width + x - 84) * 3;
            [c.rgb[k], c.rgb[k + 1], c.rgb[k + 2]]
        };
        let mut blanked = 0;
        for y in 30..170 {
            for x in 84..196 {
                // The neighbour's box wins over the face; its margin yields to the face.
                let want = meets(neighbour, 0.0, x, y)
                    || (meets(neighbour, NEIGHBOUR_MARGIN, x, y) && !meets(FACE, 0.0, x, y));
                if want {
                    assert_eq!(px(&with, x, y), [0, 0, 0], "({x}, {y}) not blanked");
                    blanked += 1;
                } else {
                    assert_eq!(px(&with, x, y), px(&alone, x, y), "({x}, {y}) changed");
                }
            }
        }
        // The neighbour with its margin inside the crop (columns 162..196, rows 50..120), less its
        // margin over the face: columns 162..170, and columns 170..180 above and below its box.
        assert_eq!(
            blanked,
            (196 - 162) * (120 - 50) - (170 - 162) * (120 - 50) - (180 - 170) * 2 * 10
        );
        // Scaled down, the neighbour's centre is black, the face's centre is not.
        let small = crop(&view, FACE, &[neighbour], 0.2, 64).unwrap();
        let s = small.width as f32 / 112.0;
        let at = |x: f32, y: f32| {
            let k = (((y - 30.0) * s) as usize * small.width + ((x - 84.0) * s) as usize) * 3;
            small.rgb[k..k + 3].to_vec()
        };
        assert_eq!(at(190.0, 85.0), [0, 0, 0]);
        assert_ne!(at(140.0, 100.0), [0, 0, 0]);
    }
}
