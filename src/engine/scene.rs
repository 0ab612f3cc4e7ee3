// SPDX-License-Identifier: MIT
//! Scene cuts: a frame that shows another scene than the one before (a camera switched by a
//! multiplexer, a PTZ preset jump, an edit in a file, lights switched). The tracker's faces of
//! before are then somebody else's, or nobody's: `veildetect` forgets them and runs its model on
//! the whole frame.
//!
//! Motion changes part of a frame; a cut changes most of it. The grey level at a coarse grid of
//! points (one per cell, 32 × 18 on any frame size) is compared with the previous frame's: a cut
//! is more than half of the points changed by more than [`CHANGED`] levels, leaving out points
//! that are black on both frames (the bars of a letterboxed picture). Faces walking by,
//! camera noise and compression change far fewer; a frame-filling face that moves can be taken for
//! a cut, which costs one full-frame model run and new track ids, nothing worse.

use crate::engine::frame::FrameView;

const COLS: usize = 32;
const ROWS: usize = 18;
/// A point changed when its grey level moved by more than this (0..255).
const CHANGED: f32 = 32.0;
/// A cut: more than this share of the points changed.
const SHARE: f32 = 0.5;
/// Points no brighter than this on both frames are left out (bars of a letterboxed picture, the
/// dark), unless that leaves under a tenth of them.
const BLACK: f32 = 24.0;

#[derive(Debug, Default)]
pub struct SceneCut {
    previous: Vec<f32>,
    current: Vec<f32>,
    share: f32,
}

impl SceneCut {
    /// Takes the next frame; true when it starts a new scene (never for the first frame, or the
    /// first after [`SceneCut::reset`] or a change of size, which the caller knows of).
    pub fn observe(&mut self, frame: &FrameView<'_>) -> bool {
        let (w, h) = (frame.width(), frame.height());
        self.current.clear();
        for r in 0..ROWS {
            let y = (2 * r + 1) * h / (2 * ROWS);
            for c in 0..COLS {
                let x = (2 * c + 1) * w / (2 * COLS);
                let [red, green, blue] = frame.rgb_at(x, y);
                self.current
                    .push(0.299 * red + 0.587 * green + 0.114 * blue);
            }
        }
        self.share = 0.0;
        if self.previous.len() == self.current.len() {
            // Points black on both frames (letterbox bars, the dark) say nothing.
            let (mut seen, mut changed) = (0usize, 0usize);
            for (a, b) in self.previous.iter().zip(&self.current) {
                if a.max(*b) > BLACK {
                    seen += 1;
                    changed += ((a - b).abs() > CHANGED) as usize;
                }
            }
            if seen * 10 >= self.current.len() {
                self.share = changed as f32 / seen as f32;
            }
        }
        std::mem::swap(&mut self.previous, &mut self.current);
        self.share > SHARE
    }

    /// The share of the points that changed at the last [`SceneCut::observe`] (0 when it had no
    /// frame to compare with), for logs.
    pub fn share(&self) -> f32 {
        self.share
    }

    /// Forgets the previous frame (after a flush or seek: what follows is not a cut).
    pub fn reset(&mut self) {
        self.previous.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::frame::{PixelFormat, YuvMatrix};

    const W: usize = 160;
    const H: usize = 90;

    /// A grey RGB frame: a textured background, dark for an even `scene`, bright for an odd one,
    /// and a bright square at `square`.
    fn frame(scene: usize, square: (usize, usize, usize)) -> Vec<u8> {
        let mut v = vec![0u8; W * H * 3];
        for y in 0..H {
            for x in 0..W {
                let g = ((x * 7 + y * 13) % 41 + 30 + 120 * (scene % 2)) as u8;
                let (sx, sy, s) = square;
                let g = if (sx..sx + s).contains(&x) && (sy..sy + s).contains(&y) {
                    250
                } else {
                    g
                };
                v[(y * W + x) * 3..][..3].copy_from_slice(&[g, g, g]);
            }
        }
        v
    }

    fn observe(cut: &mut SceneCut, rgb: &[u8]) -> bool {
        let view = FrameView::new(PixelFormat::Rgb, W, H, &[rgb], &[W * 3], YuvMatrix::BT601);
        cut.observe(&view.unwrap())
    }

    #[test]
    fn motion_is_not_a_cut_another_scene_is() {
        let mut cut = SceneCut::default();
        assert!(
            !observe(&mut cut, &frame(0, (10, 10, 30))),
            "the first frame"
        );
        // a face-sized square moving across the same background
        for x in (12..100).step_by(6) {
            assert!(!observe(&mut cut, &frame(0, (x, 10, 30))), "moved to {x}");
        }
        // another background: another scene
        assert!(observe(&mut cut, &frame(1, (100, 10, 30))));
        assert!(!observe(&mut cut, &frame(1, (100, 10, 30))));
        // letterboxed: the bars do not count
        let boxed = |scene| {
            let mut v = frame(scene, (0, 0, 0));
            for y in 0..H {
                for x in (0..40).chain(W - 40..W) {
                    v[(y * W + x) * 3..][..3].fill(0);
                }
            }
            v
        };
        cut.reset();
        assert!(!observe(&mut cut, &boxed(0)));
        assert!(observe(&mut cut, &boxed(1)));
        assert!(!observe(&mut cut, &boxed(1)));
        // after a reset the next frame is never a cut
        cut.reset();
        assert!(!observe(&mut cut, &frame(2, (0, 0, 1))));
    }
}
