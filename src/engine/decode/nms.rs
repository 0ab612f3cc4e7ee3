// SPDX-License-Identifier: MIT
//! Greedy non-maximum suppression.

use super::Detection;

/// Keeps the best-scoring detections, dropping any whose IoU with a kept one exceeds `iou`.
/// Returns them sorted by descending score.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if keep.iter().all(|k| k.rect.iou(&d.rect) <= iou) {
            keep.push(d);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::decode::Rect;

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            rect: Rect {
                x,
                y: 0.0,
                w: 10.0,
                h: 10.0,
            },
            score,
            landmarks: vec![],
        }
    }

    #[test]
    fn suppresses_overlaps_keeps_best() {
        let out = nms(
            vec![det(0.0, 0.6), det(1.0, 0.9), det(30.0, 0.7), det(2.0, 0.8)],
            0.3,
        );
        let xs: Vec<f32> = out.iter().map(|d| d.rect.x).collect();
        assert_eq!(xs, vec![1.0, 30.0]);
    }

    #[test]
    fn threshold_is_inclusive_of_low_overlap() {
        // IoU of x=0 and x=6 boxes is 40/160 = 0.25 <= 0.3: both stay.
        let out = nms(vec![det(0.0, 0.9), det(6.0, 0.8)], 0.3);
        assert_eq!(out.len(), 2);
        assert!(nms(vec![det(0.0, 0.9), det(6.0, 0.8)], 0.2).len() == 1);
    }
}
