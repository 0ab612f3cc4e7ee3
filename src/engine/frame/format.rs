// SPDX-License-Identifier: MIT
//! Pixel formats, YUV → RGB matrices and the errors of a frame that does not fit its format.

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
    pub(super) fn packed_layout(self) -> Option<(usize, [usize; 3])> {
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

    pub(super) fn n_planes(self) -> usize {
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

    pub(super) fn coefficients(&self) -> YuvCoeffs {
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
pub(super) struct YuvCoeffs {
    y_off: f32,
    y_scale: f32,
    r_v: f32,
    g_u: f32,
    g_v: f32,
    b_u: f32,
}

impl YuvCoeffs {
    #[inline(always)]
    pub(super) fn rgb(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
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
