// SPDX-License-Identifier: MIT
//! Descriptor comparison: cosine similarity of L2-normalised descriptors, optionally centred first by
//! subtracting a mean descriptor that ships with the model (computed at set-up time from a
//! background set of faces). Centring removes what all faces share and spreads the scores: see
//! docs/CALIBRATION.md.

/// Prepares descriptors for comparison and scores pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Similarity {
    mean: Option<Vec<f32>>,
}

impl Similarity {
    /// Plain cosine on L2-normalised vectors.
    pub fn cosine() -> Self {
        Similarity { mean: None }
    }

    /// Cosine after subtracting `mean`.
    pub fn centred(mean: Vec<f32>) -> Self {
        Similarity { mean: Some(mean) }
    }

    pub fn mean(&self) -> Option<&[f32]> {
        self.mean.as_deref()
    }

    /// Centres (if configured) and L2-normalises a descriptor. A zero vector stays zero (it then
    /// scores 0 against everything).
    pub fn prepare(&self, d: &[f32]) -> Vec<f32> {
        let mut v: Vec<f32> = match &self.mean {
            Some(m) if m.len() == d.len() => d.iter().zip(m).map(|(x, m)| x - m).collect(),
            _ => d.to_vec(),
        };
        l2_normalise(&mut v);
        v
    }

    /// Score of two raw descriptors, in [-1, 1].
    pub fn score(&self, a: &[f32], b: &[f32]) -> f32 {
        dot(&self.prepare(a), &self.prepare(b))
    }
}

pub fn l2_normalise(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Dot product (vectorisable: fixed-width partial sums).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_basics() {
        let s = Similarity::cosine();
        assert!((s.score(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(s.score(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert!((s.score(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(s.score(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn centring_spreads_similar_vectors() {
        // Two vectors that share a large common part look alike until it is removed.
        let common = [5.0f32, 5.0, 5.0];
        let a = [6.0f32, 5.0, 5.0];
        let b = [5.0f32, 6.0, 5.0];
        let plain = Similarity::cosine().score(&a, &b);
        let centred = Similarity::centred(common.to_vec()).score(&a, &b);
        assert!(plain > 0.9 && centred.abs() < 1e-6, "{plain} {centred}");
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..131).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..131).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }
}
