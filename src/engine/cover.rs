// SPDX-License-Identifier: MIT
//! Fail-closed coverage on a live source: which parts of a frame a redactor must cover because no
//! model run looked at them on this frame. GStreamer-free; `veildetect` attaches the answer to each
//! live frame (docs/METADATA.md), `veilredact` redacts it.
//!
//! A full-frame run found every face there was on its frame. Until the next one, a face can be
//! where nothing looks: a face that enters, a tracked face that moves off its carried box. Either
//! changes the picture. So the grey level of a dense grid of points (240 columns, one point every
//! 8 pixels on a 1080p frame: smaller than any face the model finds at its default size) is kept
//! from the last full-frame run, and on a frame without one every point that changed by more than
//! [`CHANGED`] levels, outside the faces a region run found on this frame, is *unseen*: the
//! changed points, grown by [`GROW`] points, are gathered into boxes. (Not the whole of a region
//! run's regions: a face cut by a region's side may go unfound there.) Where that cannot be bounded
//! (no full-frame run since the start, a flush, a cut or a change of size; or the unseen boxes
//! cover more than [`WHOLE_SHARE`] of the frame) the whole frame is to be covered.

use crate::engine::decode::Rect;
use crate::engine::frame::FrameView;

/// Grid points across the frame (their spacing is the frame's width over this).
const COLS: usize = 240;
/// A point changed when its grey level moved by more than this (0..255) since the last full run.
pub const CHANGED: f32 = 24.0;
/// Changed points are grown by this many points on every side before they are boxed: a face's
/// edge may match the background behind it.
pub const GROW: usize = 2;
/// Unseen boxes covering more than this share of the frame: the whole frame.
pub const WHOLE_SHARE: f32 = 0.6;

/// What a frame of a live source needs covered besides the faces found on it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cover {
    /// The model ran over the whole frame on this frame: nothing else is needed.
    pub full: bool,
    /// Nothing bounds where an unseen face could be: the whole frame.
    pub whole: bool,
    /// Boxes of faces carried by the tracker (not found on this frame), grown by how far the face
    /// may be off its carried box.
    pub grown: Vec<Rect>,
    /// Parts of the frame that changed since the last full-frame run, outside the faces found on
    /// this frame.
    pub unseen: Vec<Rect>,
}

/// The grey grid of the last full-frame run, and the comparison of a frame with it.
#[derive(Debug, Default)]
pub struct ChangeGrid {
    /// Grey levels at the last full-frame run (empty: none since the last reset).
    reference: Vec<f32>,
    current: Vec<f32>,
    size: (usize, usize),
    step: usize,
    cols: usize,
    rows: usize,
}

impl ChangeGrid {
    /// Forgets the reference (a flush, a cut, a change of size).
    pub fn reset(&mut self) {
        self.reference.clear();
    }

    /// Whether a full-frame run's grid is kept for frames of this size.
    pub fn has_reference(&self, width: usize, height: usize) -> bool {
        !self.reference.is_empty() && self.size == (width, height)
    }

    fn sample(&mut self, frame: &FrameView<'_>) {
        let (w, h) = (frame.width(), frame.height());
        self.step = w.div_ceil(COLS).max(1);
        self.cols = w.div_ceil(self.step);
        self.rows = h.div_ceil(self.step);
        self.current.clear();
        for r in 0..self.rows {
            let y = (r * self.step + self.step / 2).min(h - 1);
            for c in 0..self.cols {
                let x = (c * self.step + self.step / 2).min(w - 1);
                let [red, green, blue] = frame.rgb_at(x, y);
                self.current
                    .push(0.299 * red + 0.587 * green + 0.114 * blue);
            }
        }
    }

    /// A frame the model ran on as a whole: its grid is the reference from now on.
    pub fn full_run(&mut self, frame: &FrameView<'_>) {
        self.sample(frame);
        self.size = (frame.width(), frame.height());
        std::mem::swap(&mut self.reference, &mut self.current);
    }

    /// A frame without a full-frame run: what it needs covered, `seen` being the boxes of the
    /// faces a model run found on it and `grown` the carried faces' boxes.
    pub fn cover(&mut self, frame: &FrameView<'_>, seen: &[Rect], grown: Vec<Rect>) -> Cover {
        let (w, h) = (frame.width(), frame.height());
        if !self.has_reference(w, h) {
            return Cover {
                full: false,
                whole: true,
                grown,
                unseen: Vec::new(),
            };
        }
        self.sample(frame);
        let (cols, rows, step) = (self.cols, self.rows, self.step);
        let inside_seen = |c: usize, r: usize| {
            let (x, y) = ((c * step) as f32, (r * step) as f32);
            let s = step as f32;
            seen.iter()
                .any(|q| x >= q.x && y >= q.y && x + s <= q.x + q.w && y + s <= q.y + q.h)
        };
        let changed: Vec<bool> = (0..rows * cols)
            .map(|i| {
                (self.reference[i] - self.current[i]).abs() > CHANGED
                    && !inside_seen(i % cols, i / cols)
            })
            .collect();
        let unseen: Vec<Rect> = boxes(&grow(&changed, cols, rows, GROW), cols, rows)
            .into_iter()
            .map(|(c0, r0, c1, r1)| {
                let (x0, y0) = (c0 * step, r0 * step);
                let (x1, y1) = ((c1 * step).min(w), (r1 * step).min(h));
                Rect {
                    x: x0 as f32,
                    y: y0 as f32,
                    w: (x1 - x0) as f32,
                    h: (y1 - y0) as f32,
                }
            })
            .collect();
        let area: f32 = unseen.iter().map(Rect::area).sum();
        let whole = area > WHOLE_SHARE * (w * h) as f32;
        Cover {
            full: false,
            whole,
            grown,
            unseen: if whole { Vec::new() } else { unseen },
        }
    }
}

/// `mask` dilated by `by` cells (a square).
pub(crate) fn grow(mask: &[bool], cols: usize, rows: usize, by: usize) -> Vec<bool> {
    let mut rowwise = vec![false; mask.len()];
    for r in 0..rows {
        for c in 0..cols {
            if mask[r * cols + c] {
                for cc in c.saturating_sub(by)..(c + by + 1).min(cols) {
                    rowwise[r * cols + cc] = true;
                }
            }
        }
    }
    let mut out = vec![false; mask.len()];
    for r in 0..rows {
        for c in 0..cols {
            if rowwise[r * cols + c] {
                for rr in r.saturating_sub(by)..(r + by + 1).min(rows) {
                    out[rr * cols + c] = true;
                }
            }
        }
    }
    out
}

/// The bounding boxes `(c0, r0, c1, r1)` (cells, ends exclusive) of the 8-connected groups of set
/// cells.
pub(crate) fn boxes(mask: &[bool], cols: usize, rows: usize) -> Vec<(usize, usize, usize, usize)> {
    let mut done = vec![false; mask.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || done[start] {
            continue;
        }
        done[start] = true;
        stack.push(start);
        let (mut c0, mut r0, mut c1, mut r1) = (usize::MAX, usize::MAX, 0, 0);
        while let Some(i) = stack.pop() {
            let (c, r) = (i % cols, i / cols);
            (c0, r0, c1, r1) = (c0.min(c), r0.min(r), c1.max(c + 1), r1.max(r + 1));
            for rr in r.saturating_sub(1)..(r + 2).min(rows) {
                for cc in c.saturating_sub(1)..(c + 2).min(cols) {
                    let j = rr * cols + cc;
                    if mask[j] && !done[j] {
                        done[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        out.push((c0, r0, c1, r1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::{PixelFormat, YuvMatrix};

    const W: usize = 480;
    const H: usize = 270;

    /// A grey RGB frame with a bright square of side `s` at `at`.
    fn frame(at: Option<(usize, usize)>, s: usize) -> Vec<u8> {
        let mut v = vec![90u8; W * H * 3];
        if let Some((x0, y0)) = at {
            for y in y0..y0 + s {
                for x in x0..x0 + s {
                    v[(y * W + x) * 3..][..3].copy_from_slice(&[230, 200, 180]);
                }
            }
        }
        v
    }

    fn view(rgb: &[u8]) -> FrameView<'_> {
        FrameView::new(PixelFormat::Rgb, W, H, &[rgb], &[W * 3], YuvMatrix::BT601).unwrap()
    }

    fn contains(r: &Rect, x: f32, y: f32, w: f32, h: f32) -> bool {
        r.x <= x && r.y <= y && r.x + r.w >= x + w && r.y + r.h >= y + h
    }

    #[test]
    fn without_a_full_run_the_whole_frame() {
        let mut g = ChangeGrid::default();
        let f = frame(None, 0);
        assert!(g.cover(&view(&f), &[], Vec::new()).whole);
        g.full_run(&view(&f));
        assert!(!g.cover(&view(&f), &[], Vec::new()).whole);
        g.reset();
        assert!(g.cover(&view(&f), &[], Vec::new()).whole);
    }

    #[test]
    fn an_unchanged_frame_needs_nothing_a_face_that_appears_is_covered() {
        let mut g = ChangeGrid::default();
        g.full_run(&view(&frame(None, 0)));
        let same = g.cover(&view(&frame(None, 0)), &[], Vec::new());
        assert_eq!(same, Cover::default());
        // a small face (20 px: under any face the model finds at this scale) appears
        let c = g.cover(&view(&frame(Some((301, 117)), 20)), &[], Vec::new());
        assert!(!c.whole && !c.full);
        assert_eq!(c.unseen.len(), 1, "{c:?}");
        assert!(contains(&c.unseen[0], 301.0, 117.0, 20.0, 20.0), "{c:?}");
        // and is small: the rest of the frame is left alone
        assert!(c.unseen[0].area() < 50.0 * 50.0, "{c:?}");
        // where a region run found a face, it is seen
        let seen = Rect {
            x: 300.0,
            y: 116.0,
            w: 22.0,
            h: 22.0,
        };
        let c = g.cover(&view(&frame(Some((301, 117)), 20)), &[seen], Vec::new());
        assert!(c.unseen.is_empty(), "{c:?}");
    }

    #[test]
    fn a_frame_that_changed_mostly_is_covered_whole() {
        let mut g = ChangeGrid::default();
        g.full_run(&view(&frame(None, 0)));
        // two thirds of the frame lit
        let mut lit = frame(None, 0);
        lit[..W * 3 * (H * 2 / 3)].fill(200);
        let c = g.cover(&view(&lit), &[], Vec::new());
        assert!(c.whole && c.unseen.is_empty(), "{c:?}");
        // a quarter of it: bounded
        let mut lit = frame(None, 0);
        lit[..W * 3 * (H / 4)].fill(200);
        let c = g.cover(&view(&lit), &[], Vec::new());
        assert!(!c.whole && c.unseen.len() == 1, "{c:?}");
        // a reference of another size says nothing of this one
        let mut g = ChangeGrid::default();
        let small = vec![90u8; 100 * 50 * 3];
        let v = FrameView::new(
            PixelFormat::Rgb,
            100,
            50,
            &[&small],
            &[300],
            YuvMatrix::BT601,
        )
        .unwrap();
        g.full_run(&v);
        assert!(g.cover(&view(&frame(None, 0)), &[], Vec::new()).whole);
    }

    #[test]
    fn separate_changes_make_separate_boxes() {
        let mask = [
            true, false, false, false, //
            false, false, false, true, //
            false, false, false, true,
        ];
        assert_eq!(boxes(&mask, 4, 3), vec![(0, 0, 1, 1), (3, 1, 4, 3)]);
        let g = grow(&mask, 4, 3, 1);
        assert_eq!(boxes(&g, 4, 3), vec![(0, 0, 4, 3)]);
    }
}
