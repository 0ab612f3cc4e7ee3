// SPDX-License-Identifier: MIT
//! Motion gating: whether a frame on which no face is tracked needs a detector run at all, and
//! where. GStreamer-free; `engine::detect_step` asks it before the schedule's search runs.
//!
//! A still camera shows the same picture for hours: a model run over it finds what the last run
//! found. So the grey level of a coarse grid of cells ([`COLS`] across, square cells, each the mean
//! of 4 × 4 points read straight from the frame's luma, [`FrameView::grey_at`]) is kept from the
//! frames a model run looked at (the whole grid after a full-frame run, the cells inside its
//! regions after a region run), and a frame is compared with it:
//! - *still*: fewer than [`MIN_CELLS`] cells changed by more than [`CHANGED`] levels (camera noise
//!   and compression flicker move a 16-point mean far less);
//! - *moved*: the changed cells, grown by [`GROW`] cells and gathered into boxes, each then grown
//!   by [`MARGIN`] of its longer side (a face that turns changes its own area; the model needs
//!   its surroundings too);
//! - *global*: more than [`GLOBAL_SHARE`] of the cells changed (lights, the camera moved): the
//!   whole frame.
//!
//! Because the reference is the last frame a run looked at, not the previous frame, slow change
//! (someone creeping in, the light of the day) adds up until it shows.

use crate::engine::cover::{boxes, grow};
use crate::engine::decode::Rect;
use crate::engine::frame::FrameView;

/// Cells across the frame; rows make the cells square (36 on a 16:9 frame).
pub const COLS: usize = 64;
/// A cell changed when its mean grey level moved by more than this (0..255).
pub const CHANGED: u32 = 20;
/// Fewer changed cells than this: still (a single cell is noise, a face covers several).
pub const MIN_CELLS: usize = 2;
/// More than this share of the cells changed: the whole frame.
pub const GLOBAL_SHARE: f32 = 0.5;
/// Changed cells are grown by this many cells before they are boxed.
pub const GROW: usize = 1;
/// Each box is grown by this fraction of its longer side on every side.
pub const MARGIN: f32 = 0.5;
/// Points per cell side whose grey levels make the cell's mean.
const POINTS: usize = 4;

/// What changed since the frames a run looked at.
#[derive(Clone, Debug, PartialEq)]
pub enum Motion {
    /// Nothing to speak of.
    Still,
    /// Change in these parts of the frame only (frame pixels, possibly past its edges).
    Moved(Vec<Rect>),
    /// Most of the frame changed.
    Global,
}

#[derive(Debug, Default)]
pub struct Gate {
    /// Sums of the cells' points at the frames runs looked at (empty: none since the last reset).
    reference: Vec<u16>,
    current: Vec<u16>,
    /// The frame `current` was sampled from.
    sampled: Option<u64>,
    size: (usize, usize),
    cols: usize,
    rows: usize,
    share: f32,
}

impl Gate {
    /// Forgets the reference (a flush, a cut, a change of size, gating switched off).
    pub fn reset(&mut self) {
        self.reference.clear();
        self.sampled = None;
        self.share = 0.0;
    }

    /// Whether a reference is kept for frames of this size.
    pub fn has_reference(&self, width: usize, height: usize) -> bool {
        !self.reference.is_empty() && self.size == (width, height)
    }

    /// The share of the cells that changed at the last [`Gate::observe`], for logs.
    pub fn share(&self) -> f32 {
        self.share
    }

    /// The cell `(c, r)`'s pixel bounds `(x0, y0, x1, y1)`, ends exclusive.
    fn cell(&self, c: usize, r: usize) -> (usize, usize, usize, usize) {
        let (w, h) = self.size;
        (
            c * w / self.cols,
            r * h / self.rows,
            (c + 1) * w / self.cols,
            (r + 1) * h / self.rows,
        )
    }

    /// Samples frame `frame_no` into `current` (once per frame).
    fn sample(&mut self, frame_no: u64, view: &FrameView<'_>) {
        let size = (view.width(), view.height());
        if self.sampled == Some(frame_no) && self.size == size {
            return;
        }
        if self.size != size {
            self.reference.clear();
        }
        self.size = size;
        self.cols = COLS.min(size.0);
        self.rows = ((self.cols * size.1 + size.0 / 2) / size.0).clamp(1, size.1);
        self.current.clear();
        for r in 0..self.rows {
            for c in 0..self.cols {
                let (x0, y0, x1, y1) = self.cell(c, r);
                let mut sum = 0u16;
                for j in 0..POINTS {
                    let y = y0 + (2 * j + 1) * (y1 - y0) / (2 * POINTS);
                    for i in 0..POINTS {
                        let x = x0 + (2 * i + 1) * (x1 - x0) / (2 * POINTS);
                        sum += view.grey_at(x, y) as u16;
                    }
                }
                self.current.push(sum);
            }
        }
        self.sampled = Some(frame_no);
    }

    /// What changed on frame `frame_no` since the frames runs looked at; `None` while no full-frame
    /// run gave a reference for frames of this size.
    pub fn observe(&mut self, frame_no: u64, view: &FrameView<'_>) -> Option<Motion> {
        self.sample(frame_no, view);
        self.share = 0.0;
        if !self.has_reference(view.width(), view.height()) {
            return None;
        }
        let limit = (CHANGED * (POINTS * POINTS) as u32) as i32;
        let changed: Vec<bool> = (self.reference.iter().zip(&self.current))
            .map(|(a, b)| (*a as i32 - *b as i32).abs() > limit)
            .collect();
        let n = changed.iter().filter(|c| **c).count();
        self.share = n as f32 / changed.len() as f32;
        if n < MIN_CELLS {
            return Some(Motion::Still);
        }
        if self.share > GLOBAL_SHARE {
            return Some(Motion::Global);
        }
        let (cols, rows) = (self.cols, self.rows);
        let moved = boxes(&grow(&changed, cols, rows, GROW), cols, rows)
            .into_iter()
            .map(|(c0, r0, c1, r1)| {
                let (x0, y0, _, _) = self.cell(c0, r0);
                let (_, _, x1, y1) = self.cell(c1 - 1, r1 - 1);
                let (w, h) = ((x1 - x0) as f32, (y1 - y0) as f32);
                let m = MARGIN * w.max(h);
                Rect {
                    x: x0 as f32 - m,
                    y: y0 as f32 - m,
                    w: w + 2.0 * m,
                    h: h + 2.0 * m,
                }
            })
            .collect();
        Some(Motion::Moved(moved))
    }

    /// A model run looked at frame `frame_no`: over the whole of it (`regions` `None`), and its
    /// grid is the reference from now on; or over `regions` only (frame pixels), and only the
    /// cells inside them take this frame's levels (the others keep what the last run that looked
    /// there saw). A region run before any full-frame run gives no reference.
    pub fn looked(&mut self, frame_no: u64, view: &FrameView<'_>, regions: Option<&[Rect]>) {
        self.sample(frame_no, view);
        match regions {
            None => self.reference.clone_from(&self.current),
            Some(regions) => {
                if !self.has_reference(view.width(), view.height()) {
                    return;
                }
                for r in 0..self.rows {
                    for c in 0..self.cols {
                        let (x0, y0, x1, y1) = self.cell(c, r);
                        let (x0, y0, x1, y1) = (x0 as f32, y0 as f32, x1 as f32, y1 as f32);
                        let inside = regions
                            .iter()
                            .any(|q| x0 >= q.x && y0 >= q.y && x1 <= q.x + q.w && y1 <= q.y + q.h);
                        if inside {
                            let i = r * self.cols + c;
                            self.reference[i] = self.current[i];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::{PixelFormat, YuvMatrix};

    const W: usize = 640;
    const H: usize = 360;

    /// A textured grey I420 picture (Y plane only matters) with noise of amplitude `noise` from
    /// `seed`, and bright squares of side `s` at `squares`.
    fn picture(seed: u32, noise: u32, squares: &[(usize, usize, usize)]) -> Vec<u8> {
        let mut y = vec![0u8; W * H * 3 / 2];
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        for j in 0..H {
            for i in 0..W {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let n = if noise == 0 {
                    0
                } else {
                    (state % (2 * noise + 1)) as i32 - noise as i32
                };
                let base = 60 + ((i * 7 + j * 13) % 61) as i32;
                let lit = squares
                    .iter()
                    .any(|&(x, yy, s)| (x..x + s).contains(&i) && (yy..yy + s).contains(&j));
                let v = if lit { 220 } else { base + n };
                y[j * W + i] = v.clamp(16, 235) as u8;
            }
        }
        y
    }

    fn view(px: &[u8]) -> FrameView<'_> {
        let (y, uv) = px.split_at(W * H);
        let (u, v) = uv.split_at(W * H / 4);
        FrameView::new(
            PixelFormat::I420,
            W,
            H,
            &[y, u, v],
            &[W, W / 2, W / 2],
            YuvMatrix::BT601,
        )
        .unwrap()
    }

    fn rect(x: f32, y: f32, w: f32, h: f32) -> Rect {
        Rect { x, y, w, h }
    }

    fn contains(r: &Rect, x: f32, y: f32, s: f32) -> bool {
        r.x <= x && r.y <= y && r.x + r.w >= x + s && r.y + r.h >= y + s
    }

    #[test]
    fn without_a_full_look_nothing_is_said() {
        let mut g = Gate::default();
        let p = picture(1, 0, &[]);
        assert_eq!(g.observe(0, &view(&p)), None);
        // A region run first gives no reference either.
        g.looked(0, &view(&p), Some(&[rect(0.0, 0.0, 100.0, 100.0)]));
        assert_eq!(g.observe(1, &view(&p)), None);
        g.looked(1, &view(&p), None);
        assert_eq!(g.observe(2, &view(&p)), Some(Motion::Still));
        g.reset();
        assert_eq!(g.observe(3, &view(&p)), None);
    }

    #[test]
    fn noise_is_still_a_face_sized_change_is_motion_there() {
        let mut g = Gate::default();
        g.looked(0, &view(&picture(1, 0, &[])), None);
        // Sensor noise of ±12 levels on every pixel, frame after frame: still.
        for n in 1..20 {
            assert_eq!(
                g.observe(n, &view(&picture(n as u32, 12, &[]))),
                Some(Motion::Still),
                "frame {n}: {}",
                g.share()
            );
        }
        // A 40-pixel bright square in the lower right corner: motion there, and only there.
        let p = picture(30, 4, &[(560, 280, 40)]);
        let Some(Motion::Moved(boxes)) = g.observe(30, &view(&p)) else {
            panic!("no motion seen: {}", g.share());
        };
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        assert!(contains(&boxes[0], 560.0, 280.0, 40.0), "{boxes:?}");
        assert!(boxes[0].x > 400.0 && boxes[0].y > 180.0, "{boxes:?}");
        // Two apart: two boxes.
        let p = picture(31, 4, &[(20, 20, 40), (560, 280, 40)]);
        let Some(Motion::Moved(boxes)) = g.observe(31, &view(&p)) else {
            panic!("no motion seen");
        };
        assert_eq!(boxes.len(), 2, "{boxes:?}");
    }

    #[test]
    fn slow_change_adds_up_against_the_last_look() {
        let mut g = Gate::default();
        g.looked(0, &view(&picture(1, 0, &[])), None);
        // A square that brightens by 5 levels a frame: each frame like the one before, but after
        // a few frames far from what the last run saw.
        let mut moved = None;
        for n in 1..40u64 {
            let mut p = picture(1, 0, &[]);
            for j in 100..160 {
                for i in 300..360 {
                    p[j * W + i] = p[j * W + i].saturating_add(5 * n as u8);
                }
            }
            if let Some(Motion::Moved(b)) = g.observe(n, &view(&p)) {
                moved = Some((n, b));
                break;
            }
        }
        let (n, boxes) = moved.expect("the slow change is seen");
        assert!((4..=6).contains(&n), "seen at frame {n}");
        assert!(contains(&boxes[0], 300.0, 100.0, 60.0), "{boxes:?}");
    }

    #[test]
    fn a_region_run_refreshes_only_its_cells() {
        let mut g = Gate::default();
        g.looked(0, &view(&picture(1, 0, &[])), None);
        let p = picture(1, 0, &[(40, 40, 40), (500, 250, 40)]);
        // A run over the upper left corner looked at the first square, not at the second.
        g.looked(1, &view(&p), Some(&[rect(0.0, 0.0, 200.0, 150.0)]));
        let Some(Motion::Moved(boxes)) = g.observe(2, &view(&p)) else {
            panic!("the second square is still new");
        };
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        assert!(contains(&boxes[0], 500.0, 250.0, 40.0), "{boxes:?}");
        // After a full look, the picture is still.
        g.looked(2, &view(&p), None);
        assert_eq!(g.observe(3, &view(&p)), Some(Motion::Still));
    }

    #[test]
    fn lights_on_is_global() {
        let mut g = Gate::default();
        g.looked(0, &view(&picture(1, 0, &[])), None);
        let mut p = picture(1, 0, &[]);
        for v in &mut p[..W * H * 2 / 3] {
            *v = v.saturating_add(40);
        }
        assert_eq!(g.observe(1, &view(&p)), Some(Motion::Global));
        assert!(g.share() > GLOBAL_SHARE);
        // Another frame size: no reference.
        let small = vec![100u8; 320 * 180 * 3];
        let v = FrameView::new(
            PixelFormat::Rgb,
            320,
            180,
            &[&small],
            &[960],
            YuvMatrix::BT601,
        )
        .unwrap();
        assert_eq!(g.observe(2, &v), None);
    }
}
