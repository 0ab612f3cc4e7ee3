// SPDX-License-Identifier: MIT
//! Stranger false alarms per visit, with exact 95 % intervals (Clopper–Pearson,
//! `engine::stats`): per pair of faces of different people, measured on open-set lists of 10
//! where the faces allow, and carried to lists of 10, 100 and 1,000 under independence.

use gstfaceveil::engine::stats::{
    any_of, clopper_pearson, per_comparison, successes_for_narrow_interval, trials_for_zero,
};

const CONFIDENCE: f64 = 0.95;
/// List sizes of the table.
pub const LIST_SIZES: [u64; 3] = [10, 100, 1000];
/// The target of issue 23 at a list of 100: per visit, and the upper 95 % bound.
const TARGET_N: u64 = 100;
const TARGET: f64 = 0.001;
const TARGET_UPPER: f64 = 0.005;

/// A rate with three significant digits, as a percentage.
pub fn pct(x: f64) -> String {
    let v = 100.0 * x;
    if v == 0.0 {
        return "0 %".into();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(1, 8) as usize;
    format!("{v:.decimals$} %")
}

fn interval(k: u64, n: u64) -> (f64, f64) {
    clopper_pearson(k, n, CONFIDENCE)
}

/// One kind of faces (colour or grayscale): the per-pair counts at its threshold and, where
/// measured, the open-set visits against lists of 10.
pub struct Faces<'a> {
    pub name: &'a str,
    pub threshold: f32,
    /// Pairs of faces of different people, and how many of them score ≥ the threshold.
    pub pairs: u64,
    pub false_matches: u64,
    /// What the pairs are.
    pub pairs_from: &'a str,
    /// Open set, lists of 10: stranger visits, those with a false alarm, and how they were made.
    pub measured_10: Option<(u64, u64, &'a str)>,
}

/// The section of the report.
pub fn section(faces: &[Faces]) -> String {
    let mut md = String::from(
        "\n## Stranger false alarms per visit, with 95 % intervals\n\n\
         A stranger's *visit*: one probe (one photo, or one fresh descriptor of a track) compared with\n\
         every person on a list of N; a false alarm when the best of them passes the threshold. The\n\
         intervals are exact two-sided 95 % binomial intervals (Clopper–Pearson, `engine::stats`).\n\
         Thresholds are the manifest's (`threshold` for colour faces, `threshold-gray` for grayscale).\n\n\
         **Per pair** (p: how often a face of one person scores ≥ the threshold against one face of\n\
         another):\n\n\
         | faces | threshold | pairs of different people | false matches | p | 95 % interval | interval narrower than p? |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for f in faces {
        let p = f.false_matches as f64 / f.pairs.max(1) as f64;
        let (lo, hi) = interval(f.false_matches, f.pairs);
        md.push_str(&format!(
            "| {} | {:.2} | {} ({}) | {} | {} | {} – {} | {} |\n",
            f.name,
            f.threshold,
            f.pairs,
            f.pairs_from,
            f.false_matches,
            pct(p),
            pct(lo),
            pct(hi),
            if hi - lo < p {
                "yes"
            } else {
                "**no** (see below)"
            }
        ));
    }
    md.push_str(
        "\n**Per visit**. *Measured*: open-set lists of 10 enrolled from one photo each, every face of\n\
         the people not on the list a stranger's visit (k visits with a false alarm of n). *Extrapolated*:\n\
         1 − (1 − p)^N from the per-pair p above, its interval from p's bounds (the function rises\n\
         with p, so the bounds carry over). The extrapolation assumes a stranger's chances against\n\
         different people are independent; the measured lists of 10 check that where they exist.\n\n\
         | faces | N | per visit | 95 % interval | how |\n|---|---|---|---|---|\n",
    );
    for f in faces {
        let p = f.false_matches as f64 / f.pairs.max(1) as f64;
        let (lo, hi) = interval(f.false_matches, f.pairs);
        if let Some((n, k, how)) = f.measured_10 {
            let (mlo, mhi) = interval(k, n);
            md.push_str(&format!(
                "| {} | 10 | {} ({k} of {n} visits) | {} – {} | measured: {how} |\n",
                f.name,
                pct(k as f64 / n.max(1) as f64),
                pct(mlo),
                pct(mhi),
            ));
        }
        for n in LIST_SIZES {
            md.push_str(&format!(
                "| {} | {} | {} | {} – {} | extrapolated from p |\n",
                f.name,
                n,
                pct(any_of(p, n)),
                pct(any_of(lo, n)),
                pct(any_of(hi, n)),
            ));
        }
    }
    // Against the target, and what it would take to show it.
    let p_target = per_comparison(TARGET, TARGET_N);
    let p_upper = per_comparison(TARGET_UPPER, TARGET_N);
    let k_narrow = successes_for_narrow_interval(1_000_000, CONFIDENCE).unwrap_or(0);
    md.push_str(&format!(
        "\nTarget (issue 23): at a list of {TARGET_N}, at most {} stranger false alarms per visit, the upper 95 %\n\
         bound at most {}; per pair that is p ≤ {} (bound ≤ {}).\n\n",
        pct(TARGET),
        pct(TARGET_UPPER),
        pct(p_target),
        pct(p_upper)
    ));
    for f in faces {
        let p = f.false_matches as f64 / f.pairs.max(1) as f64;
        let (_, hi) = interval(f.false_matches, f.pairs);
        let (v, vhi) = (any_of(p, TARGET_N), any_of(hi, TARGET_N));
        let verdict = |x: f64, goal: f64| {
            if x <= goal {
                format!(
                    "meets {} by a factor {:.1}",
                    pct(goal),
                    goal / x.max(1e-300)
                )
            } else {
                format!("misses {} by a factor {:.1}", pct(goal), x / goal)
            }
        };
        md.push_str(&format!(
            "- {} at {:.2}: {} per visit ({});\n  upper bound {} ({}).",
            f.name,
            f.threshold,
            pct(v),
            if f.false_matches == 0 {
                "meets it: no false match seen".to_string()
            } else {
                verdict(v, TARGET)
            },
            pct(vhi),
            verdict(vhi, TARGET_UPPER)
        ));
        if f.false_matches == 0 {
            md.push_str(&format!(
                "\n  No pair matched falsely, so the figure is 0 and no interval is narrower than it;\n  \
                 the upper bound falls to {} at N = {TARGET_N} with {} pairs of different people\n  \
                 and still no false match ({} times the {} here).\n",
                pct(TARGET_UPPER),
                trials_for_zero(p_upper, CONFIDENCE),
                (trials_for_zero(p_upper, CONFIDENCE) as f64 / f.pairs as f64).ceil(),
                f.pairs
            ));
        } else {
            let (lo, hi) = interval(f.false_matches, f.pairs);
            if hi - lo >= p {
                md.push_str(&format!(
                    "\n  The interval is wider than the figure: that needs about {k_narrow} false matches,\n  \
                     about {} pairs of different people at this p.\n",
                    (k_narrow as f64 / p).ceil()
                ));
            } else {
                md.push('\n');
            }
        }
    }
    md.push_str(
        "\nCaveats: the colour pairs are few and not independent (augmentations of one photo are\n\
         compared with the same faces), and every grayscale photo comes from one camera and light;\n\
         the extrapolation to 100 and 1,000 people assumes independence the lists of 10 can only\n\
         partly check. In a video the element needs `min-hits` (2) hits along one track before it\n\
         alerts: a probe's figure is what one descriptor risks; a visit's depends on how many fresh\n\
         descriptors its track yields and how alike they are, which these photos do not measure.\n",
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(pct(0.0), "0 %");
        assert_eq!(pct(0.0534), "5.34 %");
        assert_eq!(pct(0.000195), "0.0195 %");
        assert_eq!(pct(0.5), "50.0 %");
    }

    #[test]
    fn section_states_intervals_and_the_target() {
        let faces = [
            Faces {
                name: "colour",
                threshold: 0.66,
                pairs: 1821,
                false_matches: 0,
                pairs_from: "test",
                measured_10: Some((200, 3, "test lists")),
            },
            Faces {
                name: "grayscale",
                threshold: 0.79,
                pairs: 19000,
                false_matches: 2,
                pairs_from: "test",
                measured_10: None,
            },
        ];
        let md = section(&faces);
        // k = 0: no interval narrower than 0, and the pairs it would take.
        assert!(md.contains("| colour | 0.66 | 1821 (test) | 0 | 0 % | 0 % – "));
        assert!(md.contains(&trials_for_zero(per_comparison(0.005, 100), 0.95).to_string()));
        // Measured lists of 10, with their interval.
        let (lo, hi) = clopper_pearson(3, 200, 0.95);
        assert!(md.contains(&format!(
            "1.50 % (3 of 200 visits) | {} – {}",
            pct(lo),
            pct(hi)
        )));
        // Extrapolation at 1000 from 2 of 19000.
        let p = 2.0 / 19000.0;
        assert!(md.contains(&format!("| grayscale | 1000 | {} |", pct(any_of(p, 1000)))));
        // 2 of 19000 per pair: about 1 % at 100, which misses 0.1 %.
        assert!(md.contains("grayscale at 0.79") && md.contains("misses 0.100 %"));
    }
}
