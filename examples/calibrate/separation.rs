// SPDX-License-Identifier: MIT
//! How far apart the genuine and impostor scores lie, model against model: the decidability index
//! d′ and the false-match rate at fixed false-non-match rates (threshold-free, so that two
//! embedders with different score scales compare fairly).

/// False-non-match rates (%) at which the false-match rate is read. 0.23 % holds 2 of the 900
/// genuine ORL pairs (0.22 %), the point of the reference measurement in issue 23.
pub const FNMR_TARGETS: [f64; 3] = [0.1, 0.23, 1.0];

fn mean_sd(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|x| *x as f64).sum::<f64>() / n;
    let var = v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// d′ = |μg − μi| / sqrt((σg² + σi²) / 2).
pub fn d_prime(genuine: &[f32], impostor: &[f32]) -> f64 {
    let ((mg, sg), (mi, si)) = (mean_sd(genuine), mean_sd(impostor));
    (mg - mi).abs() / ((sg * sg + si * si) / 2.0).sqrt()
}

/// At the highest threshold whose false-non-match rate (genuine scores below it) is at most
/// `fnmr` %: (threshold, that false-non-match rate %, the false-match rate % = impostor scores at
/// or above it).
pub fn fmr_at_fnmr(genuine: &[f32], impostor: &[f32], fnmr: f64) -> (f32, f64, f64) {
    let mut g = genuine.to_vec();
    g.sort_by(f32::total_cmp);
    // At most k genuine pairs may fall below the threshold; g[k] is the highest threshold for that.
    let k = ((fnmr / 100.0 * g.len() as f64) + 1e-9).floor() as usize;
    let t = g[k.min(g.len() - 1)];
    let pct = |n: usize, of: usize| 100.0 * n as f64 / of as f64;
    (
        t,
        pct(g.iter().filter(|s| **s < t).count(), g.len()),
        pct(impostor.iter().filter(|s| **s >= t).count(), impostor.len()),
    )
}

/// One row of the separation table: set, scoring, pair counts, means, d′ and the false-match
/// rates at [`FNMR_TARGETS`].
pub fn row(set: &str, scoring: &str, genuine: &[f32], impostor: &[f32]) -> String {
    let ((mg, sg), (mi, si)) = (mean_sd(genuine), mean_sd(impostor));
    let mut s = format!(
        "| {set} | {scoring} | {} / {} | {mg:.3} ± {sg:.3} | {mi:.3} ± {si:.3} | **{:.2}** |",
        genuine.len(),
        impostor.len(),
        d_prime(genuine, impostor)
    );
    for target in FNMR_TARGETS {
        let (t, fnmr, fmr) = fmr_at_fnmr(genuine, impostor, target);
        s.push_str(&format!(" {fmr:.3} % ({fnmr:.2} % at {t:.3}) |"));
    }
    s.push('\n');
    s
}

/// The table's header.
pub fn header() -> String {
    let mut s = String::from(
        "| set | scoring | genuine / impostor pairs | genuine mean ± sd | impostor mean ± sd | d′ |",
    );
    for t in FNMR_TARGETS {
        s.push_str(&format!(" FMR at FNMR ≤ {t} % |"));
    }
    s.push_str("\n|---|---|---|---|---|---|");
    s.push_str(&"---|".repeat(FNMR_TARGETS.len()));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d_prime_and_rates() {
        // Genuine 0.8 ± 0.1, impostor 0.2 ± 0.1: d′ = 0.6 / 0.1 = 6.
        let g = [0.7, 0.9, 0.7, 0.9];
        let i = [0.1, 0.3, 0.1, 0.3];
        assert!((d_prime(&g, &i) - 6.0).abs() < 1e-5);
        // No genuine pair may be missed: threshold at the lowest genuine score, 0.7; no impostor.
        assert_eq!(fmr_at_fnmr(&g, &i, 0.1), (0.7, 0.0, 0.0));
        let i = [0.1, 0.75, 0.72, 0.3];
        let (t, fnmr, fmr) = fmr_at_fnmr(&g, &i, 0.1);
        assert_eq!((t, fnmr, fmr), (0.7, 0.0, 50.0));
        // 25 % may be missed: one genuine pair below, the threshold rises to the next score.
        let g = [0.6, 0.9, 0.8, 0.95];
        let (t, fnmr, fmr) = fmr_at_fnmr(&g, &i, 25.0);
        assert_eq!((t, fnmr, fmr), (0.8, 25.0, 0.0));
    }
}
