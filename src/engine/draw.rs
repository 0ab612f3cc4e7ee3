// SPDX-License-Identifier: MIT
//! Drawing on a frame in its own format (boxes, dots, text with a TrueType font through
//! `ab_glyph`), on the planes `engine::frame::PlaneMut` describes. GStreamer-free; `veiloverlay` is
//! the element.

use ab_glyph::{Font as _, FontVec, PxScale, ScaleFont};

use crate::engine::frame::PlaneMut;

/// A rectangle in frame pixels, `x0..x1` × `y0..y1`, possibly partly outside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

/// Fills `r` (clipped to the frame) with an RGB colour, on every plane.
pub fn fill(planes: &mut [PlaneMut<'_>], r: Rect, rgb: [u8; 3]) {
    for p in planes.iter_mut() {
        let s = p.sub.max(1) as i64;
        let (x0, y0) = (r.x0.max(0) / s, r.y0.max(0) / s);
        let (x1, y1) = (
            ((r.x1 + s - 1) / s).min(p.width as i64),
            ((r.y1 + s - 1) / s).min(p.height as i64),
        );
        let colour = p.kind.colour(rgb);
        for y in y0..y1.max(y0) {
            let row = &mut p.data[y as usize * p.stride..];
            for x in x0..x1.max(x0) {
                let px = &mut row[x as usize * p.pixel_bytes..];
                for (&c, &v) in p.channels.iter().zip(&colour) {
                    px[c] = v;
                }
            }
        }
    }
}

/// The outline of `r`, `width` pixels wide, inside `r`.
pub fn outline(planes: &mut [PlaneMut<'_>], r: Rect, width: i64, rgb: [u8; 3]) {
    let w = width.max(1);
    for side in [
        Rect { y1: r.y0 + w, ..r },
        Rect { y0: r.y1 - w, ..r },
        Rect { x1: r.x0 + w, ..r },
        Rect { x0: r.x1 - w, ..r },
    ] {
        fill(planes, side, rgb);
    }
}

/// A coverage mask (0..255), `w`×`h`, row by row.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub w: usize,
    pub h: usize,
    pub alpha: Vec<u8>,
}

/// Blends an RGB colour into the frame through `mask` placed with its top-left corner at
/// (`x`, `y`). Subsampled planes take the mean coverage of the pixels each sample stands for.
pub fn blend(planes: &mut [PlaneMut<'_>], mask: &Mask, x: i64, y: i64, rgb: [u8; 3]) {
    let at = |mx: i64, my: i64| -> u32 {
        if mx < 0 || my < 0 || mx >= mask.w as i64 || my >= mask.h as i64 {
            0
        } else {
            mask.alpha[my as usize * mask.w + mx as usize] as u32
        }
    };
    for p in planes.iter_mut() {
        let s = p.sub.max(1) as i64;
        let colour = p.kind.colour(rgb);
        let (sx0, sy0) = (x.max(0) / s, y.max(0) / s);
        let sx1 = ((x + mask.w as i64 + s - 1) / s).min(p.width as i64);
        let sy1 = ((y + mask.h as i64 + s - 1) / s).min(p.height as i64);
        for sy in sy0..sy1.max(sy0) {
            let row = &mut p.data[sy as usize * p.stride..];
            for sx in sx0..sx1.max(sx0) {
                let mut a = 0;
                for dy in 0..s {
                    for dx in 0..s {
                        a += at(sx * s + dx - x, sy * s + dy - y);
                    }
                }
                let a = a / (s * s) as u32;
                if a == 0 {
                    continue;
                }
                let px = &mut row[sx as usize * p.pixel_bytes..];
                for (&c, &v) in p.channels.iter().zip(&colour) {
                    px[c] = ((v as u32 * a + px[c] as u32 * (255 - a) + 127) / 255) as u8;
                }
            }
        }
    }
}

/// A TrueType/OpenType font for labels.
pub struct Font(FontVec);

impl std::fmt::Debug for Font {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Font")
    }
}

impl Font {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Font, String> {
        FontVec::try_from_vec(bytes)
            .map(Font)
            .map_err(|e| e.to_string())
    }

    /// `text` on one line at `px` pixels: its coverage mask (width = the advance of the text,
    /// height = ascent + descent).
    pub fn render(&self, text: &str, px: f32) -> Mask {
        let font = self.0.as_scaled(PxScale::from(px));
        let (ascent, descent) = (font.ascent(), font.descent());
        let h = (ascent - descent).ceil().max(1.0) as usize;
        let mut caret = 0.0f32;
        let mut glyphs = Vec::new();
        let mut last = None;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(prev) = last {
                caret += font.kern(prev, id);
            }
            glyphs.push(id.with_scale_and_position(px, ab_glyph::point(caret, ascent)));
            caret += font.h_advance(id);
            last = Some(id);
        }
        let w = caret.ceil().max(1.0) as usize;
        let mut alpha = vec![0u8; w * h];
        for g in glyphs {
            let Some(outlined) = self.0.outline_glyph(g) else {
                continue;
            };
            let b = outlined.px_bounds();
            outlined.draw(|gx, gy, c| {
                let (x, y) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                    let v = &mut alpha[y as usize * w + x as usize];
                    *v = (*v).max((c * 255.0).round() as u8);
                }
            });
        }
        Mask { w, h, alpha }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::PlaneKind;

    fn rgb_plane(data: &mut [u8], w: usize, h: usize) -> PlaneMut<'_> {
        PlaneMut {
            data,
            stride: w * 3,
            width: w,
            height: h,
            pixel_bytes: 3,
            channels: &[0, 1, 2],
            kind: PlaneKind::Rgb,
            sub: 1,
        }
    }

    #[test]
    fn outline_paints_the_border_only_and_clips() {
        let (w, h) = (20, 10);
        let mut d = vec![9u8; w * h * 3];
        let r = Rect {
            x0: 2,
            y0: 2,
            x1: 8,
            y1: 8,
        };
        outline(&mut [rgb_plane(&mut d, w, h)], r, 1, [255, 0, 0]);
        let red = |x: usize, y: usize| d[(y * w + x) * 3] == 255;
        assert!(red(2, 2) && red(7, 7) && red(2, 5) && red(7, 3));
        assert!(!red(3, 3) && !red(8, 8) && !red(1, 1));
        // partly outside: no panic, the inside part drawn
        let mut d = vec![9u8; w * h * 3];
        outline(
            &mut [rgb_plane(&mut d, w, h)],
            Rect {
                x0: -5,
                y0: -5,
                x1: 30,
                y1: 30,
            },
            2,
            [0, 255, 0],
        );
        assert_eq!(d[1], 9, "the corner is outside the drawn band");
    }

    #[test]
    fn yuv_colours_are_bt601_limited_range() {
        assert_eq!(PlaneKind::Y.colour([0, 0, 0])[0], 16);
        assert_eq!(PlaneKind::Y.colour([255, 255, 255])[0], 235);
        assert_eq!(PlaneKind::Uv.colour([255, 255, 255])[..2], [128, 128]);
        assert_eq!(PlaneKind::V.colour([255, 0, 0])[0], 240);
    }

    #[test]
    fn blending_a_mask_mixes_by_coverage() {
        let (w, h) = (4, 4);
        let mut d = vec![100u8; w * h * 3];
        let mask = Mask {
            w: 2,
            h: 1,
            alpha: vec![255, 128],
        };
        blend(&mut [rgb_plane(&mut d, w, h)], &mask, 1, 1, [200, 200, 200]);
        let at = |x: usize, y: usize| d[(y * w + x) * 3];
        assert_eq!(
            (at(1, 1), at(2, 1), at(3, 1), at(1, 0)),
            (200, 150, 100, 100)
        );
    }
}
