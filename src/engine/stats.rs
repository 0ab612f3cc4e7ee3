// SPDX-License-Identifier: MIT
//! Rates one can state: the exact (Clopper–Pearson) confidence interval of a binomial proportion,
//! and what a per-pair false-match rate means for a visit against a list of N people.
//!
//! The Clopper–Pearson bounds of k successes in n trials are the rates p at which the binomial
//! tails reach α/2: the lower bound solves P(X ≥ k | p) = α/2, the upper P(X ≤ k | p) = α/2 (the
//! Beta quantiles Beta⁻¹(α/2; k, n−k+1) and Beta⁻¹(1−α/2; k+1, n−k) are the same numbers). The
//! tails are summed exactly in log space and the bounds found by bisection, so no special function
//! is needed.

/// P(X ≤ k) for X ~ Binomial(n, p).
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    // ln C(n, i), term by term; the largest term anchors the sum against underflow.
    let mut log_c = 0.0;
    let mut logs = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        if i > 0 {
            log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        logs.push(log_c + i as f64 * lp + (n - i) as f64 * lq);
    }
    let max = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logs.iter().map(|l| (l - max).exp()).sum();
    (max + sum.ln()).exp().min(1.0)
}

/// The p in (0, 1) at which the decreasing function `f` crosses `target`, by bisection.
fn solve_decreasing(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-15 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The two-sided Clopper–Pearson interval of k successes in n trials at `confidence` (0.95 for
/// 95 %): (lower, upper). Lower is 0 when k = 0, upper 1 when k = n; n = 0 gives (0, 1).
pub fn clopper_pearson(k: u64, n: u64, confidence: f64) -> (f64, f64) {
    assert!(k <= n, "{k} successes in {n} trials");
    let alpha = 1.0 - confidence;
    if n == 0 {
        return (0.0, 1.0);
    }
    let lower = if k == 0 {
        0.0
    } else {
        // P(X ≥ k | p) = 1 − P(X ≤ k − 1 | p) rises with p; P(X ≤ k − 1 | p) falls.
        solve_decreasing(|p| binomial_cdf(k - 1, n, p), 1.0 - alpha / 2.0)
    };
    let upper = if k == n {
        1.0
    } else {
        solve_decreasing(|p| binomial_cdf(k, n, p), alpha / 2.0)
    };
    (lower, upper)
}

/// The chance that at least one of `n` independent comparisons matches when each does with
/// probability `p`: 1 − (1 − p)^n, a stranger's false alarm against a list of n people. Rising in
/// `p`, so the bounds of p's interval give the bounds of this one.
pub fn any_of(p: f64, n: u64) -> f64 {
    // exp(n · ln(1 − p)) keeps precision for tiny p.
    -(n as f64 * (-p).ln_1p()).exp_m1()
}

/// The per-comparison rate at which [`any_of`] over `n` comparisons is `rate`.
pub fn per_comparison(rate: f64, n: u64) -> f64 {
    -((-rate).ln_1p() / n as f64).exp_m1()
}

/// How many trials without a single success put the upper Clopper–Pearson bound at or below
/// `p_max`: the smallest n with 1 − (α/2)^(1/n) ≤ p_max (the "rule of three", 3/p at a one-sided
/// 95 %; about 3.69/p at this two-sided 95 %).
pub fn trials_for_zero(p_max: f64, confidence: f64) -> u64 {
    let alpha = 1.0 - confidence;
    ((alpha / 2.0).ln() / (-p_max).ln_1p()).ceil() as u64
}

/// The fewest successes k for which the Clopper–Pearson interval is narrower than the estimate
/// k/n itself, in `n` trials (for n much larger than k it hardly depends on n).
pub fn successes_for_narrow_interval(n: u64, confidence: f64) -> Option<u64> {
    (1..=n).find(|&k| {
        let (lo, hi) = clopper_pearson(k, n, confidence);
        hi - lo < k as f64 / n as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn cdf_small_cases() {
        // n = 2, p = 0.5: P(0) = 0.25, P(≤1) = 0.75.
        assert!(close(binomial_cdf(0, 2, 0.5), 0.25, 1e-12));
        assert!(close(binomial_cdf(1, 2, 0.5), 0.75, 1e-12));
        assert_eq!(binomial_cdf(2, 2, 0.5), 1.0);
        // n = 10, p = 0.1: P(≤1) = 0.9^10 + 10 · 0.1 · 0.9^9.
        let want = 0.9f64.powi(10) + 0.9f64.powi(9);
        assert!(close(binomial_cdf(1, 10, 0.1), want, 1e-12));
        // Large n, no underflow: P(X ≤ 50 | 100000, 5e-4) is near its mean, about 0.54.
        let c = binomial_cdf(50, 100_000, 5e-4);
        assert!(c > 0.5 && c < 0.6, "{c}");
    }

    #[test]
    fn clopper_pearson_known_values() {
        // Published values (e.g. R's binom.test).
        let (lo, hi) = clopper_pearson(0, 100, 0.95);
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.036217, 1e-5), "{hi}");
        let (lo, hi) = clopper_pearson(5, 100, 0.95);
        assert!(close(lo, 0.016431, 1e-5), "{lo}");
        assert!(close(hi, 0.112834, 1e-5), "{hi}");
        let (lo, hi) = clopper_pearson(10, 10, 0.95);
        assert!(close(lo, 0.691503, 1e-5), "{lo}");
        assert_eq!(hi, 1.0);
        // k = 0: the upper bound is 1 − (α/2)^(1/n) in closed form.
        let (_, hi) = clopper_pearson(0, 19_000, 0.95);
        assert!(close(hi, 1.0 - 0.025f64.powf(1.0 / 19_000.0), 1e-9));
        assert_eq!(clopper_pearson(0, 0, 0.95), (0.0, 1.0));
    }

    #[test]
    fn interval_holds_the_estimate_and_narrows() {
        for (k, n) in [(1u64, 1821u64), (3, 19_000), (50, 1000), (999, 1000)] {
            let p = k as f64 / n as f64;
            let (lo, hi) = clopper_pearson(k, n, 0.95);
            assert!(lo < p && p < hi, "{k}/{n}: {lo} {hi}");
            // A higher confidence widens it; ten times the trials narrows it.
            let (lo99, hi99) = clopper_pearson(k, n, 0.99);
            assert!(lo99 < lo && hi99 > hi);
            let (lo10, hi10) = clopper_pearson(10 * k, 10 * n, 0.95);
            assert!(hi10 - lo10 < hi - lo);
        }
    }

    #[test]
    fn visits_against_a_list() {
        assert!(close(any_of(0.5, 2), 0.75, 1e-12));
        assert_eq!(any_of(0.0, 1000), 0.0);
        // Tiny p: about N · p.
        assert!(close(any_of(1e-7, 100), 1e-5, 1e-9));
        for (rate, n) in [(0.001, 100u64), (0.005, 100), (0.3, 10)] {
            assert!(close(any_of(per_comparison(rate, n), n), rate, 1e-12));
        }
    }

    #[test]
    fn trials_needed() {
        // Rule of three (one-sided) ≈ 3/p; two-sided 95 % ≈ 3.69/p.
        let n = trials_for_zero(1e-4, 0.95);
        assert!((36_000..37_000).contains(&n), "{n}");
        let (_, hi) = clopper_pearson(0, n, 0.95);
        assert!(hi <= 1e-4);
        let (_, hi) = clopper_pearson(0, n - 1, 0.95);
        assert!(hi > 1e-4);
        // The interval is narrower than the figure once there are enough successes, whatever n.
        let k = successes_for_narrow_interval(1_000_000, 0.95).unwrap();
        let (lo, hi) = clopper_pearson(k, 1_000_000, 0.95);
        assert!(hi - lo < k as f64 / 1e6);
        let (lo, hi) = clopper_pearson(k - 1, 1_000_000, 0.95);
        assert!(hi - lo >= (k - 1) as f64 / 1e6);
        assert!((10..40).contains(&k), "{k}");
    }
}
