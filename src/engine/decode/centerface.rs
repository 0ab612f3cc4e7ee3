// SPDX-License-Identifier: MIT
//! CenterFace decoder: an anchor-free, stride-4 heatmap with box size, centre offset and 5 landmarks
//! per cell.
//!
//! For a cell (y, x) whose heatmap value passes the threshold:
//! `h = exp(scale0) * stride`, `w = exp(scale1) * stride`,
//! `x1 = (x + offset1 + 0.5) * stride - w / 2`, `y1 = (y + offset0 + 0.5) * stride - h / 2`,
//! landmark j = `(lm[2j+1] * w + x1, lm[2j] * h + y1)`.

use super::{DecodeError, Decoder, Detection, Rect, TensorView};
use crate::engine::manifest::DetectorSection;

#[derive(Debug)]
pub struct CenterFace {
    /// heatmap, scale, offset, landmarks
    names: Vec<String>,
    stride: f32,
    landmarks: usize,
}

impl CenterFace {
    pub fn from_manifest(s: &DetectorSection) -> Result<Self, DecodeError> {
        let get = |k: &str| {
            s.outputs.get(k).cloned().ok_or_else(|| {
                DecodeError(format!("centerface manifest lacks [detector.outputs] {k}"))
            })
        };
        Ok(CenterFace {
            names: vec![
                get("heatmap")?,
                get("scale")?,
                get("offset")?,
                get("landmarks")?,
            ],
            stride: s.stride as f32,
            landmarks: s.landmarks,
        })
    }
}

fn check(
    t: &TensorView<'_>,
    what: &str,
    channels: usize,
    hw: Option<(i64, i64)>,
) -> Result<(usize, usize), DecodeError> {
    let s = t.shape;
    let ok = s.len() == 4
        && s[0] >= 1
        && s[1] as usize == channels
        && hw.is_none_or(|(h, w)| s[2] == h && s[3] == w);
    if !ok || t.data.len() < (s.iter().product::<i64>() as usize) {
        return Err(DecodeError(format!(
            "centerface {what} output has shape {s:?}, expected [N, {channels}, H, W] matching the heatmap"
        )));
    }
    Ok((s[2] as usize, s[3] as usize))
}

impl Decoder for CenterFace {
    fn output_names(&self) -> &[String] {
        &self.names
    }

    fn decode(
        &self,
        outputs: &[TensorView<'_>],
        threshold: f32,
    ) -> Result<Vec<Detection>, DecodeError> {
        let [heat, scale, offset, lms] = outputs else {
            return Err(DecodeError(format!(
                "centerface needs 4 outputs, got {}",
                outputs.len()
            )));
        };
        let (h, w) = check(heat, "heatmap", 1, None)?;
        let hw = Some((h as i64, w as i64));
        check(scale, "scale", 2, hw)?;
        check(offset, "offset", 2, hw)?;
        check(lms, "landmarks", 2 * self.landmarks, hw)?;
        let plane = h * w;
        let st = self.stride;
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let score = heat.data[i];
                if score < threshold {
                    continue;
                }
                let bh = scale.data[i].exp() * st;
                let bw = scale.data[plane + i].exp() * st;
                let x1 = (x as f32 + offset.data[plane + i] + 0.5) * st - bw / 2.0;
                let y1 = (y as f32 + offset.data[i] + 0.5) * st - bh / 2.0;
                let landmarks = (0..self.landmarks)
                    .map(|j| {
                        [
                            lms.data[(2 * j + 1) * plane + i] * bw + x1,
                            lms.data[2 * j * plane + i] * bh + y1,
                        ]
                    })
                    .collect();
                out.push(Detection {
                    rect: Rect {
                        x: x1,
                        y: y1,
                        w: bw,
                        h: bh,
                    },
                    score,
                    landmarks,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn decoder() -> CenterFace {
        let mut outputs = BTreeMap::new();
        for (k, v) in [
            ("heatmap", "h"),
            ("scale", "s"),
            ("offset", "o"),
            ("landmarks", "l"),
        ] {
            outputs.insert(k.to_string(), v.to_string());
        }
        CenterFace::from_manifest(&DetectorSection {
            decoder: "centerface".into(),
            stride: 4,
            landmarks: 5,
            outputs,
        })
        .unwrap()
    }

    #[test]
    fn decodes_one_cell() {
        let (h, w) = (3usize, 4usize);
        let plane = h * w;
        let mut heat = vec![0.1f32; plane];
        let cell = w + 2; // y=1, x=2
        heat[cell] = 0.9;
        let mut scale = vec![0f32; 2 * plane];
        scale[cell] = (20.0f32 / 4.0).ln(); // height 20
        scale[plane + cell] = (16.0f32 / 4.0).ln(); // width 16
        let mut offset = vec![0f32; 2 * plane];
        offset[cell] = 0.25; // y
        offset[plane + cell] = -0.5; // x
        let mut lm = vec![0f32; 10 * plane];
        lm[cell] = 0.5; // landmark 0 y = 0.5 of height
        lm[plane + cell] = 0.25; // landmark 0 x = 0.25 of width
        let shape1 = [1i64, 1, h as i64, w as i64];
        let shape2 = [1i64, 2, h as i64, w as i64];
        let shape10 = [1i64, 10, h as i64, w as i64];
        let outs = [
            TensorView {
                shape: &shape1,
                data: &heat,
            },
            TensorView {
                shape: &shape2,
                data: &scale,
            },
            TensorView {
                shape: &shape2,
                data: &offset,
            },
            TensorView {
                shape: &shape10,
                data: &lm,
            },
        ];
        let d = decoder().decode(&outs, 0.5).unwrap();
        assert_eq!(d.len(), 1);
        let r = d[0].rect;
        // x1 = (2 - 0.5 + 0.5) * 4 - 8 = 0; y1 = (1 + 0.25 + 0.5) * 4 - 10 = -3
        assert!(
            (r.x - 0.0).abs() < 1e-4 && (r.y + 3.0).abs() < 1e-4,
            "{r:?}"
        );
        assert!((r.w - 16.0).abs() < 1e-3 && (r.h - 20.0).abs() < 1e-3);
        assert!((d[0].landmarks[0][0] - 4.0).abs() < 1e-4);
        assert!((d[0].landmarks[0][1] - 7.0).abs() < 1e-4);
        assert_eq!(d[0].score, 0.9);
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let heat = vec![0f32; 12];
        let s1 = [1i64, 1, 3, 4];
        let s_bad = [1i64, 2, 2, 4];
        let other = vec![0f32; 80];
        let outs = [
            TensorView {
                shape: &s1,
                data: &heat,
            },
            TensorView {
                shape: &s_bad,
                data: &other,
            },
            TensorView {
                shape: &s_bad,
                data: &other,
            },
            TensorView {
                shape: &s_bad,
                data: &other,
            },
        ];
        assert!(decoder().decode(&outs, 0.5).is_err());
        assert!(decoder().decode(&outs[..2], 0.5).is_err());
    }
}
