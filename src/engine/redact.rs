// SPDX-License-Identifier: MIT
//! Redaction of face boxes in place, in the frame's own format (no conversion of the frame):
//! pixelate, blur or fill a box on every plane of the frame. GStreamer-free; `veilredact` maps the
//! frame and describes its planes.

use super::frame::PlaneMut;

/// How a box is made unrecognisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Blocks of the box's mean colour; the block is `strength` % of the box's longer side.
    Pixelate,
    /// Three box-blur passes of radius `strength` % of the box's longer side (≈ a Gaussian).
    Blur,
    /// Black.
    Fill,
}

/// Whose faces are redacted (`veilredact`'s mode, less `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    All,
    /// Everyone the matcher has not identified.
    Unmatched,
    /// Only those it identified.
    Matched,
}

/// What the matcher says about a face on this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Its track carries no identity.
    No,
    /// Its track carries an identity decided on earlier descriptors: the face on this frame may be
    /// somebody else (a tracker swap, a face replaced by another at the same place).
    Unverified,
    /// This frame's fresh descriptor of the face is a hit for its track's identity.
    Verified,
}

impl Known {
    /// From a face's identity tag: whether it has one, and whether it was verified on this frame.
    pub fn of(identified: bool, verified: bool) -> Known {
        match (identified, verified) {
            (false, _) => Known::No,
            (true, false) => Known::Unverified,
            (true, true) => Known::Verified,
        }
    }
}

/// Whether a face is redacted: `known`, what the matcher says of it; `detected`, the detector's
/// model found it on this frame (false: a box the tracker carried). In doubt each mode redacts:
/// `unmatched` spares a face only when its identity was verified on this frame's detection of it
/// (a carried box may have drifted onto somebody else, and an identity decided on an earlier
/// descriptor may have passed to a bystander who took the track); `matched` redacts every face
/// whose track carries an identity, verified or not.
pub fn redacts(whose: Whose, known: Known, detected: bool) -> bool {
    match whose {
        Whose::All => true,
        Whose::Unmatched => !(known == Known::Verified && detected),
        Whose::Matched => known != Known::No,
    }
}

/// A box in frame pixels: `x0..x1` × `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelBox {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl PixelBox {
    /// A face rectangle (frame pixels, float) enlarged by `margin` × its size on every side, snapped
    /// outwards to even coordinates (so that subsampled chroma covers it whole) and clipped to the
    /// frame; `None` when nothing of it is inside.
    pub fn around(
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        margin: f32,
        frame_w: usize,
        frame_h: usize,
    ) -> Option<PixelBox> {
        let (mx, my) = (w * margin, h * margin);
        let even_down = |v: f32| ((v.max(0.0) as usize) / 2) * 2;
        let even_up = |v: f32, max: usize| ((v.max(0.0).ceil() as usize).div_ceil(2) * 2).min(max);
        let b = PixelBox {
            x0: even_down(x - mx),
            y0: even_down(y - my),
            x1: even_up(x + w + mx, frame_w),
            y1: even_up(y + h + my, frame_h),
        };
        (b.x0 < b.x1 && b.y0 < b.y1).then_some(b)
    }

    fn longer_side(&self) -> usize {
        (self.x1 - self.x0).max(self.y1 - self.y0)
    }
}

/// Redacts `b` on every plane. `strength` is in per cent of the box's longer side (pixelate: block
/// size; blur: radius); `scratch` is reused between calls.
pub fn redact(
    planes: &mut [PlaneMut<'_>],
    b: PixelBox,
    method: Method,
    strength: u32,
    scratch: &mut Vec<u32>,
) {
    // In frame pixels, even so that chroma blocks line up with luma blocks.
    let size = (b.longer_side() * strength.clamp(1, 100) as usize / 100).max(2) / 2 * 2;
    for p in planes.iter_mut() {
        let s = p.sub.max(1);
        let (x0, y0) = (b.x0 / s, b.y0 / s);
        let (x1, y1) = (
            b.x1.div_ceil(s).min(p.width),
            b.y1.div_ceil(s).min(p.height),
        );
        if x0 >= x1 || y0 >= y1 {
            continue;
        }
        let r = Region { x0, y0, x1, y1 };
        match method {
            Method::Fill => fill(p, r),
            Method::Pixelate => pixelate(p, r, (size / s).max(1)),
            Method::Blur => blur(p, r, (size / s).max(1), scratch),
        }
    }
}

#[derive(Clone, Copy)]
struct Region {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

fn fill(p: &mut PlaneMut<'_>, r: Region) {
    let black = p.kind.colour([0, 0, 0]);
    for y in r.y0..r.y1 {
        let row = &mut p.data[y * p.stride..];
        for x in r.x0..r.x1 {
            let px = &mut row[x * p.pixel_bytes..(x + 1) * p.pixel_bytes];
            for (&c, &v) in p.channels.iter().zip(&black) {
                px[c] = v;
            }
        }
    }
}

/// Each `block`×`block` tile of the region (from its top-left corner) becomes its mean.
fn pixelate(p: &mut PlaneMut<'_>, r: Region, block: usize) {
    let n = p.channels.len();
    let mut by = r.y0;
    while by < r.y1 {
        let ey = (by + block).min(r.y1);
        let mut bx = r.x0;
        while bx < r.x1 {
            let ex = (bx + block).min(r.x1);
            let mut sums = [0u32; 4];
            for y in by..ey {
                let row = &p.data[y * p.stride..];
                for x in bx..ex {
                    let px = &row[x * p.pixel_bytes..];
                    for (s, &c) in sums.iter_mut().zip(p.channels) {
                        *s += px[c] as u32;
                    }
                }
            }
            let count = ((ey - by) * (ex - bx)) as u32;
            let mut mean = [0u8; 4];
            for (m, s) in mean.iter_mut().zip(&sums[..n]) {
                *m = ((s + count / 2) / count) as u8;
            }
            for y in by..ey {
                let row = &mut p.data[y * p.stride..];
                for x in bx..ex {
                    let px = &mut row[x * p.pixel_bytes..];
                    for (&c, &m) in p.channels.iter().zip(&mean[..n]) {
                        px[c] = m;
                    }
                }
            }
            bx = ex;
        }
        by = ey;
    }
}

/// Three passes of a horizontal and a vertical running-sum box blur of `radius`, per channel, inside
/// the region (edges clamped to the region, so nothing outside leaks in or changes).
fn blur(p: &mut PlaneMut<'_>, r: Region, radius: usize, scratch: &mut Vec<u32>) {
    let (w, h) = (r.x1 - r.x0, r.y1 - r.y0);
    let radius = radius.min(w.max(h));
    scratch.resize(w * h * 2 + w.max(h), 0);
    let (img, rest) = scratch.split_at_mut(w * h);
    let (tmp, line) = rest.split_at_mut(w * h);
    for &c in p.channels {
        for y in 0..h {
            let row = &p.data[(r.y0 + y) * p.stride..];
            for x in 0..w {
                img[y * w + x] = row[(r.x0 + x) * p.pixel_bytes + c] as u32;
            }
        }
        for _ in 0..3 {
            // rows: img → tmp
            for y in 0..h {
                box_line(&img[y * w..(y + 1) * w], 1, w, radius, &mut line[..w]);
                tmp[y * w..(y + 1) * w].copy_from_slice(&line[..w]);
            }
            // columns: tmp → img
            for x in 0..w {
                box_line(&tmp[x..], w, h, radius, &mut line[..h]);
                for y in 0..h {
                    img[y * w + x] = line[y];
                }
            }
        }
        for y in 0..h {
            let row = &mut p.data[(r.y0 + y) * p.stride..];
            for x in 0..w {
                row[(r.x0 + x) * p.pixel_bytes + c] = img[y * w + x] as u8;
            }
        }
    }
}

/// `out[i]` = the rounded mean of `src[(i - radius)..=(i + radius)]` (indices clamped to the line),
/// reading `len` values `step` apart.
fn box_line(src: &[u32], step: usize, len: usize, radius: usize, out: &mut [u32]) {
    let at = |i: isize| src[(i.clamp(0, len as isize - 1) as usize) * step];
    let r = radius as isize;
    let n = (2 * r + 1) as u32;
    let mut sum: u32 = (-r..=r).map(at).sum();
    for (i, o) in out.iter_mut().enumerate().take(len) {
        *o = (sum + n / 2) / n;
        let i = i as isize;
        sum = sum + at(i + r + 1) - at(i - r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::PlaneKind;

    fn pbox(x0: usize, y0: usize, x1: usize, y1: usize) -> PixelBox {
        PixelBox { x0, y0, x1, y1 }
    }

    /// A 40×20 RGBx frame of noise, and its plane.
    fn noise(w: usize, h: usize, bytes: usize) -> Vec<u8> {
        let mut s = 12345u32;
        (0..w * h * bytes)
            .map(|_| {
                s = s.wrapping_mul(1103515245).wrapping_add(12345);
                (s >> 16) as u8
            })
            .collect()
    }

    fn plane<'a>(data: &'a mut [u8], w: usize, h: usize) -> PlaneMut<'a> {
        PlaneMut {
            data,
            stride: w * 4,
            width: w,
            height: h,
            pixel_bytes: 4,
            channels: &[0, 1, 2],
            kind: PlaneKind::Rgb,
            sub: 1,
        }
    }

    #[test]
    fn unmatched_spares_only_an_identity_verified_on_a_box_found_on_this_frame() {
        let (no, unverified, verified) = (Known::No, Known::Unverified, Known::Verified);
        assert_eq!(Known::of(false, true), no);
        assert_eq!(Known::of(true, false), unverified);
        assert_eq!(Known::of(true, true), verified);
        assert!(!redacts(Whose::Unmatched, verified, true));
        assert!(redacts(Whose::Unmatched, verified, false), "a carried box");
        assert!(
            redacts(Whose::Unmatched, unverified, true),
            "an identity decided on an earlier descriptor"
        );
        assert!(redacts(Whose::Unmatched, no, true));
        assert!(redacts(Whose::All, verified, true));
        assert!(redacts(Whose::Matched, verified, false));
        assert!(redacts(Whose::Matched, unverified, true), "in doubt");
        assert!(!redacts(Whose::Matched, no, true));
    }

    #[test]
    fn boxes_grow_by_the_margin_snap_to_even_and_stay_in_the_frame() {
        let b = PixelBox::around(11.0, 11.0, 10.0, 10.0, 0.2, 100, 100).unwrap();
        assert_eq!(
            b,
            PixelBox {
                x0: 8,
                y0: 8,
                x1: 24,
                y1: 24
            }
        );
        let edge = PixelBox::around(-5.0, 90.0, 20.0, 20.0, 0.0, 100, 101).unwrap();
        assert_eq!(
            edge,
            PixelBox {
                x0: 0,
                y0: 90,
                x1: 16,
                y1: 101
            }
        );
        assert!(PixelBox::around(200.0, 0.0, 10.0, 10.0, 0.2, 100, 100).is_none());
    }

    #[test]
    fn each_method_changes_the_box_only_and_leaves_alpha() {
        let (w, h) = (40, 20);
        let b = pbox(10, 4, 30, 16);
        for method in [Method::Pixelate, Method::Blur, Method::Fill] {
            let orig = noise(w, h, 4);
            let mut data = orig.clone();
            redact(
                &mut [plane(&mut data, w, h)],
                b,
                method,
                20,
                &mut Vec::new(),
            );
            for y in 0..h {
                for x in 0..w {
                    let i = (y * w + x) * 4;
                    let inside = (b.x0..b.x1).contains(&x) && (b.y0..b.y1).contains(&y);
                    assert_eq!(data[i + 3], orig[i + 3], "{method:?}: alpha changed");
                    if !inside {
                        assert_eq!(
                            data[i..i + 3],
                            orig[i..i + 3],
                            "{method:?}: outside changed at {x},{y}"
                        );
                    }
                }
            }
            let changed = (0..w * h)
                .filter(|p| data[p * 4..p * 4 + 3] != orig[p * 4..p * 4 + 3])
                .count();
            assert!(changed > 200, "{method:?}: {changed} pixels changed");
        }
    }

    #[test]
    fn pixelate_leaves_one_value_per_block_and_fill_is_black() {
        let (w, h) = (40, 40);
        let b = pbox(0, 0, 40, 40);
        let mut data = noise(w, h, 4);
        // strength 25 % of 40 = blocks of 10
        redact(
            &mut [plane(&mut data, w, h)],
            b,
            Method::Pixelate,
            25,
            &mut Vec::new(),
        );
        for y in 0..h {
            for x in 0..w {
                let (i, j) = ((y * w + x) * 4, ((y / 10 * 10) * w + x / 10 * 10) * 4);
                assert_eq!(data[i..i + 3], data[j..j + 3], "{x},{y}");
            }
        }
        let mut data = noise(w, h, 4);
        redact(
            &mut [plane(&mut data, w, h)],
            b,
            Method::Fill,
            0,
            &mut Vec::new(),
        );
        assert!(data.chunks(4).all(|p| p[..3] == [0, 0, 0]));
    }

    #[test]
    fn blur_averages_out_noise_and_keeps_flat_areas() {
        let (w, h) = (40, 40);
        let b = pbox(0, 0, 40, 40);
        let mut flat = vec![77u8; w * h * 4];
        redact(
            &mut [plane(&mut flat, w, h)],
            b,
            Method::Blur,
            20,
            &mut Vec::new(),
        );
        assert!(flat.iter().all(|&v| v == 77));
        let mut data = noise(w, h, 4);
        let spread = |d: &[u8]| {
            let v: Vec<f64> = d.chunks(4).map(|p| p[0] as f64).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let before = spread(&data);
        redact(
            &mut [plane(&mut data, w, h)],
            b,
            Method::Blur,
            20,
            &mut Vec::new(),
        );
        assert!(
            spread(&data) < before / 8.0,
            "{} → {}",
            before,
            spread(&data)
        );
    }

    #[test]
    fn subsampled_planes_are_redacted_over_the_same_area() {
        // I420 10×10 box in a 20×20 frame: Y 20×20, U 10×10.
        let mut y = vec![200u8; 400];
        let mut u = vec![50u8; 100];
        let b = pbox(4, 4, 14, 14);
        let mut planes = [
            PlaneMut {
                data: &mut y,
                stride: 20,
                width: 20,
                height: 20,
                pixel_bytes: 1,
                channels: &[0],
                kind: PlaneKind::Y,
                sub: 1,
            },
            PlaneMut {
                data: &mut u,
                stride: 10,
                width: 10,
                height: 10,
                pixel_bytes: 1,
                channels: &[0],
                kind: PlaneKind::U,
                sub: 2,
            },
        ];
        redact(&mut planes, b, Method::Fill, 0, &mut Vec::new());
        let y_black = y.iter().filter(|&&v| v == 16).count();
        let u_black = u.iter().filter(|&&v| v == 128).count();
        assert_eq!((y_black, u_black), (100, 25));
        assert_eq!(u[2 * 10 + 2], 128);
        assert_eq!(u[2 * 10 + 7], 50);
    }
}
