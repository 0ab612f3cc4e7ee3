// SPDX-License-Identifier: MIT
//! Face alignment: the least-squares similarity transform (rotation, uniform scale, shift; Umeyama)
//! that takes a face's landmarks onto a model's template.

use crate::engine::frame::Affine;

/// The similarity transform `src → dst` minimising the squared distance between the mapped `src`
/// points and `dst`. `None` for fewer than two point pairs or coincident source points.
pub fn similarity(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Affine> {
    let n = src.len().min(dst.len());
    if n < 2 {
        return None;
    }
    let mean = |pts: &[[f32; 2]]| {
        let (sx, sy) = pts[..n]
            .iter()
            .fold((0f64, 0f64), |a, p| (a.0 + p[0] as f64, a.1 + p[1] as f64));
        (sx / n as f64, sy / n as f64)
    };
    let (mpx, mpy) = mean(src);
    let (mqx, mqy) = mean(dst);
    // In complex numbers: dst' = z * src' with z = Σ conj(src') dst' / Σ |src'|².
    let (mut a, mut b, mut var) = (0f64, 0f64, 0f64);
    for (p, q) in src[..n].iter().zip(&dst[..n]) {
        let (px, py) = (p[0] as f64 - mpx, p[1] as f64 - mpy);
        let (qx, qy) = (q[0] as f64 - mqx, q[1] as f64 - mqy);
        a += px * qx + py * qy;
        b += px * qy - py * qx;
        var += px * px + py * py;
    }
    if var < 1e-12 {
        return None;
    }
    let (c, s) = (a / var, b / var);
    Some(Affine {
        a: c as f32,
        b: -s as f32,
        c: (mqx - (c * mpx - s * mpy)) as f32,
        d: s as f32,
        e: c as f32,
        f: (mqy - (s * mpx + c * mpy)) as f32,
    })
}

/// Where a frontal face's 5 landmarks lie in its detector box, as fractions of the box (image-left
/// eye, image-right eye, nose tip, image-left and image-right mouth corner): CenterFace's landmarks
/// in its box on the frontal test photos, made symmetric.
pub const BOX_LANDMARKS: [[f32; 2]; 5] = [
    [0.26, 0.365],
    [0.74, 0.365],
    [0.5, 0.54],
    [0.29, 0.71],
    [0.71, 0.71],
];

/// The landmarks a frontal face in box `(x, y, w, h)` would have ([`BOX_LANDMARKS`]): they stand
/// in for those of a face that another detector found, which gives a box only.
pub fn landmarks_in_box(x: f32, y: f32, w: f32, h: f32) -> Vec<[f32; 2]> {
    BOX_LANDMARKS
        .iter()
        .map(|p| [x + p[0] * w, y + p[1] * h])
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The dlib embedder's 5-point template (chip pixels), as its manifest gives it.
    pub(crate) const TEMPLATE: [[f32; 2]; 5] = [
        [47.733, 47.140],
        [100.281, 47.123],
        [74.017, 77.162],
        [52.270, 107.812],
        [95.786, 107.799],
    ];

    fn close(a: &Affine, b: &Affine) -> bool {
        [
            (a.a, b.a),
            (a.b, b.b),
            (a.c, b.c),
            (a.d, b.d),
            (a.e, b.e),
            (a.f, b.f),
        ]
        .iter()
        .all(|(x, y)| (x - y).abs() < 1e-3)
    }

    #[test]
    fn template_onto_itself_is_identity() {
        let m = similarity(&TEMPLATE, &TEMPLATE).unwrap();
        assert!(close(&m, &Affine::IDENTITY), "{m:?}");
    }

    #[test]
    fn recovers_rotation_scale_shift() {
        let (angle, scale, tx, ty) = (0.3f32, 2.5f32, 120.0f32, -40.0f32);
        let truth = Affine {
            a: scale * angle.cos(),
            b: -scale * angle.sin(),
            c: tx,
            d: scale * angle.sin(),
            e: scale * angle.cos(),
            f: ty,
        };
        let moved: Vec<[f32; 2]> = TEMPLATE
            .iter()
            .map(|p| {
                let (x, y) = truth.apply(p[0], p[1]);
                [x, y]
            })
            .collect();
        let m = similarity(&TEMPLATE, &moved).unwrap();
        assert!(close(&m, &truth), "{m:?} vs {truth:?}");
        // and back: frame landmarks onto the template
        let back = similarity(&moved, &TEMPLATE).unwrap();
        let inv = truth.inverse().unwrap();
        assert!(close(&back, &inv), "{back:?} vs {inv:?}");
    }

    #[test]
    fn least_squares_with_noise_and_degenerate_input() {
        let mut noisy = TEMPLATE;
        noisy[2][0] += 3.0; // a nose that is off: the fit stays close to identity
        let m = similarity(&noisy, &TEMPLATE).unwrap();
        assert!((m.a - 1.0).abs() < 0.05 && m.b.abs() < 0.05 && m.c.abs() < 2.0);
        assert!(similarity(&[[1.0, 1.0]; 5], &TEMPLATE).is_none());
        assert!(similarity(&TEMPLATE[..1], &TEMPLATE[..1]).is_none());
    }

    #[test]
    fn box_landmarks_are_symmetric_and_inside_the_box() {
        let lm = landmarks_in_box(100.0, 50.0, 200.0, 300.0);
        assert_eq!(lm.len(), 5);
        assert!(
            lm.iter()
                .all(|p| (100.0..=300.0).contains(&p[0]) && (50.0..=350.0).contains(&p[1]))
        );
        // eyes level, nose centred, mouth under the nose
        assert_eq!(lm[0][1], lm[1][1]);
        assert!((lm[0][0] + lm[1][0] - 2.0 * lm[2][0]).abs() < 1e-3);
        assert!(lm[3][1] > lm[2][1] && lm[2][1] > lm[0][1]);
    }
}
