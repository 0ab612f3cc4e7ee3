// SPDX-License-Identifier: MIT
//! GStreamer glue for pixel access: the raw formats every faceveil element takes, and the
//! `VideoFrameRef` → [`FrameView`] bridge into the GStreamer-free sampler.

use gst_video::prelude::*;

use crate::engine::frame::{FrameError, FrameView, PixelFormat, YuvMatrix};
use crate::engine::frame::{PlaneKind, PlaneMut};

/// Raw formats the elements read directly (no conversion of the frame).
pub const FORMATS: [gst_video::VideoFormat; 10] = [
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Nv12,
];

/// Smallest frame the elements read. Smaller frames are refused in `set_info` with an error that
/// names this size (not in the caps, where a decoder linked at run time would only report
/// "not-negotiated").
pub const MIN_SIZE: i32 = 16;

/// `video/x-raw` in [`FORMATS`], any size, any frame rate.
pub fn raw_caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(FORMATS)
        .build()
}

/// `src` and `sink` pad templates of an element that reads pixels: [`raw_caps`] on both.
pub fn pad_templates() -> &'static [gst::PadTemplate] {
    static TEMPLATES: std::sync::LazyLock<Vec<gst::PadTemplate>> =
        std::sync::LazyLock::new(|| crate::props::pad_templates(&raw_caps()));
    TEMPLATES.as_ref()
}

pub fn pixel_format(f: gst_video::VideoFormat) -> Option<PixelFormat> {
    use gst_video::VideoFormat as V;
    Some(match f {
        V::Rgb => PixelFormat::Rgb,
        V::Bgr => PixelFormat::Bgr,
        V::Rgbx => PixelFormat::Rgbx,
        V::Bgrx => PixelFormat::Bgrx,
        V::Xrgb => PixelFormat::Xrgb,
        V::Xbgr => PixelFormat::Xbgr,
        V::Rgba => PixelFormat::Rgba,
        V::Bgra => PixelFormat::Bgra,
        V::I420 => PixelFormat::I420,
        V::Nv12 => PixelFormat::Nv12,
        _ => return None,
    })
}

/// The YUV matrix the caps' colorimetry states (BT.601 when unknown).
pub fn yuv_matrix(info: &gst_video::VideoInfo) -> YuvMatrix {
    let c = info.colorimetry();
    let m = match c.matrix() {
        gst_video::VideoColorMatrix::Bt709 => YuvMatrix::BT709,
        gst_video::VideoColorMatrix::Bt2020 => YuvMatrix::BT2020,
        _ => YuvMatrix::BT601,
    };
    m.with_full_range(c.range() == gst_video::VideoColorRange::Range0_255)
}

/// A view of a mapped frame for the samplers.
pub fn frame_view<'a>(
    frame: &'a gst_video::VideoFrameRef<&'a gst::BufferRef>,
    format: PixelFormat,
    matrix: YuvMatrix,
) -> Result<FrameView<'a>, FrameError> {
    let n = frame.n_planes() as usize;
    let mut planes: Vec<&[u8]> = Vec::with_capacity(n);
    for i in 0..n {
        planes.push(frame.plane_data(i as u32).map_err(|_| FrameError::Planes {
            expected: n,
            got: i,
        })?);
    }
    let strides: Vec<usize> = frame.plane_stride()[..n]
        .iter()
        .map(|s| *s as usize)
        .collect();
    FrameView::new(
        format,
        frame.width() as usize,
        frame.height() as usize,
        &planes,
        &strides,
        matrix,
    )
}

/// The negotiated input of an element that reads pixels.
#[derive(Clone, Debug)]
pub struct Input {
    pub info: gst_video::VideoInfo,
    pub format: PixelFormat,
    pub matrix: YuvMatrix,
}

impl Input {
    /// From negotiated caps; `None` for a format the samplers do not read.
    pub fn new(info: &gst_video::VideoInfo) -> Option<Input> {
        Some(Input {
            format: pixel_format(info.format())?,
            matrix: yuv_matrix(info),
            info: info.clone(),
        })
    }

    /// Maps `buf` readable and hands its frame view to `f`.
    pub fn with_frame<R>(
        &self,
        buf: &gst::BufferRef,
        f: impl FnOnce(&FrameView<'_>) -> R,
    ) -> Result<R, gst::ErrorMessage> {
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &self.info).map_err(|_| {
                gst::error_msg!(gst::StreamError::Failed, ("Could not map the video frame"))
            })?;
        let view = frame_view(&frame, self.format, self.matrix)
            .map_err(|e| gst::error_msg!(gst::StreamError::Format, ("Bad video frame: {e}")))?;
        Ok(f(&view))
    }

    /// Maps `buf` writable and hands its planes ([`planes_mut`]) to `f`: the painting elements'
    /// way in.
    pub fn with_planes_mut<R>(
        &self,
        buf: &mut gst::BufferRef,
        f: impl FnOnce(&mut [PlaneMut<'_>]) -> R,
    ) -> Result<R, gst::ErrorMessage> {
        let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, &self.info)
            .map_err(|_| {
                gst::error_msg!(
                    gst::StreamError::Format,
                    ("Cannot map the frame for writing")
                )
            })?;
        let strides: Vec<usize> = frame.plane_stride().iter().map(|&s| s as usize).collect();
        let (w, h) = (self.info.width() as usize, self.info.height() as usize);
        let mut planes = planes_mut(self.format, frame.planes_data_mut(), &strides, w, h);
        Ok(f(&mut planes))
    }
}

/// [`FORMATS`] as caps spell them, for error messages.
pub fn format_names() -> String {
    FORMATS.map(|f| f.to_str().to_string()).join(", ")
}

/// The writable planes of a mapped frame (`VideoFrameRef::planes_data_mut`) in `format`, for the
/// elements that paint on the frame (`veilredact`, `veiloverlay`).
pub fn planes_mut<'a>(
    format: PixelFormat,
    data: [&'a mut [u8]; 4],
    strides: &[usize],
    w: usize,
    h: usize,
) -> Vec<PlaneMut<'a>> {
    let [p0, p1, p2, _] = data;
    let packed = |data: &'a mut [u8], bytes: usize, channels: &'static [usize]| PlaneMut {
        data,
        stride: strides[0],
        width: w,
        height: h,
        pixel_bytes: bytes,
        channels,
        kind: PlaneKind::Rgb,
        sub: 1,
    };
    let plane =
        |data: &'a mut [u8], i: usize, bytes: usize, channels: &'static [usize], kind, sub| {
            PlaneMut {
                data,
                stride: strides[i],
                width: w.div_ceil(sub),
                height: h.div_ceil(sub),
                pixel_bytes: bytes,
                channels,
                kind,
                sub,
            }
        };
    match format {
        PixelFormat::Rgb => vec![packed(p0, 3, &[0, 1, 2])],
        PixelFormat::Bgr => vec![packed(p0, 3, &[2, 1, 0])],
        PixelFormat::Rgbx | PixelFormat::Rgba => vec![packed(p0, 4, &[0, 1, 2])],
        PixelFormat::Bgrx | PixelFormat::Bgra => vec![packed(p0, 4, &[2, 1, 0])],
        PixelFormat::Xrgb => vec![packed(p0, 4, &[1, 2, 3])],
        PixelFormat::Xbgr => vec![packed(p0, 4, &[3, 2, 1])],
        PixelFormat::I420 => vec![
            plane(p0, 0, 1, &[0], PlaneKind::Y, 1),
            plane(p1, 1, 1, &[0], PlaneKind::U, 2),
            plane(p2, 2, 1, &[0], PlaneKind::V, 2),
        ],
        PixelFormat::Nv12 => vec![
            plane(p0, 0, 1, &[0], PlaneKind::Y, 1),
            plane(p1, 1, 2, &[0, 1], PlaneKind::Uv, 2),
        ],
    }
}
