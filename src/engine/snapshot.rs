// SPDX-License-Identifier: MIT
//! A small JPEG of one face, for `veilmatch`'s opt-in `attach-snapshot`: the face box (enlarged a
//! little) sampled straight from the frame, whatever its format, to at most `max_side` pixels.
//! GStreamer-free.

use crate::engine::frame::{Affine, ChannelOrder, FrameView, Layout, TensorSpec};

/// The face at `rect` (x, y, w, h in frame pixels) enlarged by `margin` of its size on each side,
/// scaled to fit `max_side`, as a baseline JPEG of `quality` (1–100); `None` when the box is
/// empty.
pub fn jpeg(
    view: &FrameView<'_>,
    rect: (f32, f32, f32, f32),
    margin: f32,
    max_side: usize,
    quality: u8,
) -> Option<Vec<u8>> {
    let (x, y, w, h) = rect;
    let (x, y, w, h) = (
        x - w * margin,
        y - h * margin,
        w * (1.0 + 2.0 * margin),
        h * (1.0 + 2.0 * margin),
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
    let bytes: Vec<u8> = rgb
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
        .encode(&bytes, ow as u16, oh as u16, jpeg_encoder::ColorType::Rgb)
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
        let j = jpeg(&view, (100.0, 50.0, 80.0, 100.0), 0.2, 64, 80).unwrap();
        assert_eq!(&j[..2], &[0xff, 0xd8], "JPEG start of image");
        // 112×140 px with the margin, scaled to 64 high: the SOF0 segment says 51×64
        let sof = j.windows(2).position(|p| p == [0xff, 0xc0]).unwrap();
        let (hh, ww) = (
            u16::from_be_bytes([j[sof + 5], j[sof + 6]]),
            u16::from_be_bytes([j[sof + 7], j[sof + 8]]),
        );
        assert_eq!((ww, hh), (51, 64));
        assert!(jpeg(&view, (0.0, 0.0, 0.0, 0.0), 0.2, 64, 80).is_none());
    }
}
