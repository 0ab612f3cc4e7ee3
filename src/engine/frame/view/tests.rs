// SPDX-License-Identifier: MIT
//! Tests of the frame view and its samplers.

use super::*;
use crate::engine::frame::tensor::{ChannelOrder, Layout};
use crate::engine::frame::testutil::{pack, rgb_image, spec, to_i420};

#[test]
fn packed_formats_agree() {
    let (w, h) = (37, 23);
    let rgb = rgb_image(w, h);
    let base = FrameView::new(PixelFormat::Rgb, w, h, &[&rgb], &[w * 3], YuvMatrix::BT601).unwrap();
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

/// One picture as RGB, I420 and NV12 planes, for views of each format.
struct Formats {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    uv: Vec<u8>,
}

impl Formats {
    /// `w` even: the chroma strides are `w / 2`.
    fn new(w: usize, h: usize) -> Self {
        let rgb = rgb_image(w, h);
        let (y, u, v) = to_i420(&rgb, w, h);
        let uv = u.iter().zip(&v).flat_map(|(a, b)| [*a, *b]).collect();
        Formats {
            w,
            h,
            rgb,
            y,
            u,
            v,
            uv,
        }
    }

    /// RGB, I420 and NV12 views of the picture.
    fn views(&self) -> [FrameView<'_>; 3] {
        let (w, h) = (self.w, self.h);
        let m = YuvMatrix::BT601;
        [
            FrameView::new(PixelFormat::Rgb, w, h, &[&self.rgb], &[w * 3], m).unwrap(),
            FrameView::new(
                PixelFormat::I420,
                w,
                h,
                &[&self.y, &self.u, &self.v],
                &[w, w / 2, w / 2],
                m,
            )
            .unwrap(),
            FrameView::new(PixelFormat::Nv12, w, h, &[&self.y, &self.uv], &[w, w], m).unwrap(),
        ]
    }
}

#[test]
fn yuv_formats_match_rgb() {
    let f = Formats::new(40, 30);
    let (w, h) = (f.w, f.h);
    let [base, i420, nv12] = f.views();
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
fn rotated_chips_from_yuv_match_rgb() {
    // A face chip's map: rotated 20°, shrinking 2.5× (3 × 3 luma taps, 2 × 2 chroma taps),
    // partly off the frame (the border mixes in on the edge).
    let f = Formats::new(120, 90);
    let [base, i420, nv12] = f.views();
    let (c, s) = (
        20f32.to_radians().cos() * 2.5,
        20f32.to_radians().sin() * 2.5,
    );
    let map = Affine {
        a: c,
        b: -s,
        c: -10.0,
        d: s,
        e: c,
        f: 5.0,
    };
    let mut sp = spec(40, 40, Layout::Nchw, ChannelOrder::Rgb);
    sp.border = [20.0, 200.0, 90.0];
    let mut want = vec![0f32; 40 * 40 * 3];
    base.sample_into(&map, &sp, &mut want);
    // Some pixels lie wholly off the frame (the green plane holds the border's 200).
    assert!(want[1600..3200].contains(&200.0));
    for view in [&i420, &nv12] {
        let mut got = vec![0f32; want.len()];
        view.sample_into(&map, &sp, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 4.0, "{:?} [{i}]: {g} vs {w}", view.format());
        }
    }
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
    let view = FrameView::new(PixelFormat::Rgb, w, h, &[&rgb], &[w * 3], YuvMatrix::BT601).unwrap();
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
fn grey_reads_the_y_plane_or_weighs_rgb() {
    let f = Formats::new(40, 30);
    let (w, h) = (f.w, f.h);
    let [rgb, i420, nv12] = f.views();
    let bgrx = pack(&f.rgb, 4, [2, 1, 0]);
    let bgrx = FrameView::new(
        PixelFormat::Bgrx,
        w,
        h,
        &[&bgrx],
        &[w * 4],
        YuvMatrix::BT601,
    )
    .unwrap();
    for yy in 0..h {
        for xx in 0..w {
            let [r, g, b] = rgb.rgb_at(xx, yy);
            let want = 0.299 * r + 0.587 * g + 0.114 * b;
            for view in [&rgb, &bgrx] {
                let got = view.grey_at(xx, yy) as f32;
                assert!((got - want).abs() <= 1.0, "({xx},{yy}): {got} vs {want}");
            }
            // YUV: the Y byte itself, limited range.
            let y = f.y[yy * w + xx];
            assert_eq!((i420.grey_at(xx, yy), nv12.grey_at(xx, yy)), (y, y));
            assert!((y as f32 - (16.0 + want * 219.0 / 255.0)).abs() <= 1.0);
        }
    }
    // Past the edge: clamped.
    assert_eq!(rgb.grey_at(w + 5, h + 5), rgb.grey_at(w - 1, h - 1));
}
