// SPDX-License-Identifier: MIT
//! The writable planes of a mapped frame, as the painters (`engine::redact`, `engine::draw`) see
//! them: one description per plane (stride, sub-sampling, which channels hold what), so that a
//! painter works in the frame's own format. `video::Input::with_planes_mut` makes them from a
//! GStreamer buffer.

/// One plane of a mapped frame, writable.
#[derive(Debug)]
pub struct PlaneMut<'a> {
    pub data: &'a mut [u8],
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Size in this plane's samples.
    pub width: usize,
    pub height: usize,
    /// Bytes per sample position (1 for a Y plane, 2 for NV12's UV, 3 or 4 for packed RGB).
    pub pixel_bytes: usize,
    /// The byte offsets of the colour channels in a sample position, in the order of `kind`
    /// (R, G, B for RGB; U, V for NV12's UV); alpha and padding are left alone.
    pub channels: &'static [usize],
    pub kind: PlaneKind,
    /// Frame pixels per sample in each direction (2 for 4:2:0 chroma).
    pub sub: usize,
}

/// What a plane's channels hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneKind {
    Rgb,
    Y,
    U,
    V,
    /// NV12's interleaved chroma.
    Uv,
}

impl PlaneKind {
    /// An RGB colour (0..255) as this plane's channel values (BT.601, limited range for YUV).
    pub fn colour(self, [r, g, b]: [u8; 3]) -> [u8; 3] {
        let (r, g, b) = (r as f32, g as f32, b as f32);
        let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
        let u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
        let v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
        let q = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        match self {
            PlaneKind::Rgb => [q(r), q(g), q(b)],
            PlaneKind::Y => [q(y), 0, 0],
            PlaneKind::U => [q(u), 0, 0],
            PlaneKind::V => [q(v), 0, 0],
            PlaneKind::Uv => [q(u), q(v), 0],
        }
    }
}
