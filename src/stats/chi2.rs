//! Chi-square goodness-of-fit test of window category counts against baseline proportions.
//!
//! The test runs over the categories that **occur**: in the baseline (proportion > 0) or in
//! the window (count > 0). A category with neither — typically the drift engine's
//! always-present `__other__` cell when the baseline pooled nothing and the window saw no
//! new value — adds no term and no degree of freedom, so identical distributions give
//! p = 1. Over the `k` occurring categories, `χ² = Σ (o_i − f_i)² / f_i` with
//! `f_i = p_i · n`, `n = Σ o_i`, and p-value `P(χ²_{k−1} ≥ χ²)`, as
//! `scipy.stats.chisquare(f_obs, f_exp)` on those categories.
//!
//! A category seen in the window but never in the baseline (expected 0) would make the
//! statistic infinite (scipy gives `inf`, p = 0), so each occurring category's expected
//! proportion is first raised to [`CHI2_EXPECTED_FLOOR`] (`1e-4`, the PSI floor) and the
//! vector renormalised to sum 1 before multiplying by `n`: an unseen value then yields a very
//! large, finite statistic (p ≈ 0). When every occurring proportion is at least `1e-4` the
//! result is exactly scipy's.

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::psi::PSI_FLOOR;

/// Expected proportions below this are raised to it (then renormalised) before the test.
pub const CHI2_EXPECTED_FLOOR: f64 = PSI_FLOOR;

/// Result of a chi-square goodness-of-fit test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chi2Result {
    /// The chi-square statistic `Σ (o − f)² / f` over the occurring categories.
    pub statistic: f64,
    /// `P(χ²_dof ≥ statistic)`, in `[0, 1]`.
    pub pvalue: f64,
    /// Degrees of freedom, `k − 1` for `k` occurring categories.
    pub dof: usize,
}

/// Whether a category takes part in the test: it occurs in the baseline or in the window.
fn occurs(observed: u64, expected: f64) -> bool {
    observed > 0 || expected != 0.0
}

/// The expected counts the test uses, one per category (same order as the inputs):
/// `max(p_i, 1e-4)` over the occurring categories, renormalised, times `n = Σ observed`;
/// `0.0` for a category that does not occur (no term). `None` when the lengths differ, the
/// window is empty, or a proportion is negative or non-finite.
pub fn chi2_expected_counts(observed: &[u64], expected: &[f64]) -> Option<Vec<f64>> {
    if observed.len() != expected.len() || expected.is_empty() {
        return None;
    }
    if !expected.iter().all(|p| p.is_finite() && *p >= 0.0) {
        return None;
    }
    let n: u64 = observed.iter().sum();
    if n == 0 {
        return None;
    }
    let floored: Vec<f64> = observed
        .iter()
        .zip(expected)
        .map(|(&o, &p)| {
            if occurs(o, p) {
                p.max(CHI2_EXPECTED_FLOOR)
            } else {
                0.0
            }
        })
        .collect();
    let s: f64 = floored.iter().sum();
    let nf = n as f64;
    Some(floored.iter().map(|&p| p / s * nf).collect())
}

/// Chi-square goodness-of-fit of `observed` window counts against `expected` baseline
/// proportions (same length and category order; see [`super::categorical::align_categories`]),
/// over the categories that occur in either.
///
/// `None` when the window is empty (all counts zero), when fewer than 2 categories occur
/// (no degrees of freedom), when the lengths differ, or when an expected proportion is
/// negative or non-finite.
pub fn chi2_gof(observed: &[u64], expected: &[f64]) -> Option<Chi2Result> {
    let f_exp = chi2_expected_counts(observed, expected)?;
    let k = observed
        .iter()
        .zip(expected)
        .filter(|(&o, &p)| occurs(o, p))
        .count();
    if k < 2 {
        return None;
    }
    let statistic: f64 = observed
        .iter()
        .zip(expected)
        .zip(&f_exp)
        .filter(|((&o, &p), _)| occurs(o, p))
        .map(|((&o, _), &f)| {
            let d = o as f64 - f;
            d * d / f
        })
        .sum();
    let dof = k - 1;
    let pvalue = chi2_sf(statistic, dof as f64)?;
    Some(Chi2Result {
        statistic,
        pvalue,
        dof,
    })
}

/// `P(χ²_dof ≥ x)`; `None` for a non-positive or non-finite `dof` or a NaN `x`.
pub fn chi2_sf(x: f64, dof: f64) -> Option<f64> {
    if x.is_nan() {
        return None;
    }
    // Only valid degrees of freedom and 0 < x ≤ 1000 take the closed form, so the checks
    // below would pass it through unchanged; statrs' distribution is built only without it.
    if let Some(sf) = integer_dof_sf(x, dof) {
        return Some(sf);
    }
    let dist = ChiSquared::new(dof).ok()?;
    if x <= 0.0 {
        return Some(1.0);
    }
    if x == f64::INFINITY {
        return Some(0.0);
    }
    Some(dist.sf(x).clamp(0.0, 1.0))
}

/// Largest `x / 2` of [`integer_dof_sf`]: `e^{-x/2}` and the sum's terms stay normal
/// doubles well inside it.
const CLOSED_FORM_MAX_HALF_X: f64 = 500.0;
/// Largest degrees of freedom of [`integer_dof_sf`] (terms in the sum).
const CLOSED_FORM_MAX_DOF: f64 = 200.0;

/// `P(χ²_k ≥ x)` for a whole number `k` of degrees of freedom in closed form, the
/// regularized upper incomplete gamma function `Q(k/2, x/2)` of a whole or half-whole
/// first argument: with `y = x/2`,
///
/// - `k = 2m`: `Q(m, y) = e^{-y} Σ_{i<m} y^i / i!` (the Poisson tail);
/// - `k = 2m + 1`: `Q(m + ½, y) = erfc(√y) + e^{-y} Σ_{i<m} y^{i+½} / Γ(i + 3/2)`.
///
/// Every term is positive, so the sums lose no digits to cancellation (relative error a
/// few ulps per term). The anomaly scorer calls this once per row with the joint
/// features' count as `k`; statrs' general series and continued fraction cost about ten
/// times as much. `None` (the caller uses statrs) for other `k` and far tails.
fn integer_dof_sf(x: f64, dof: f64) -> Option<f64> {
    if !((1.0..=CLOSED_FORM_MAX_DOF).contains(&dof) && dof.fract() == 0.0) {
        return None;
    }
    let y = x / 2.0;
    if !(y > 0.0 && y <= CLOSED_FORM_MAX_HALF_X) {
        return None;
    }
    let k = dof as u32;
    let m = k / 2;
    let sf = if k.is_multiple_of(2) {
        let (mut term, mut sum) = (1.0_f64, 1.0_f64);
        for i in 1..m {
            term *= y / f64::from(i);
            sum += term;
        }
        (-y).exp() * sum
    } else {
        // Γ(3/2) = √π / 2, then Γ(i + 5/2) = (i + 3/2) Γ(i + 3/2).
        let mut term = 2.0 * (y / std::f64::consts::PI).sqrt();
        let mut sum = 0.0_f64;
        for i in 0..m {
            sum += term;
            term *= y / (f64::from(i) + 1.5);
        }
        libm::erfc(y.sqrt()) + (-y).exp() * sum
    };
    sf.is_finite().then(|| sf.clamp(0.0, 1.0))
}

/// The `q`-quantile of `χ²_dof` (`0 < q < 1`); `None` for invalid arguments.
pub fn chi2_quantile(q: f64, dof: f64) -> Option<f64> {
    if !(q > 0.0 && q < 1.0) {
        return None;
    }
    let dist = ChiSquared::new(dof).ok()?;
    let x = dist.inverse_cdf(q);
    x.is_finite().then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_fit_has_unit_pvalue() {
        let r = chi2_gof(&[25, 25, 50], &[0.25, 0.25, 0.5]).unwrap();
        assert!(r.statistic.abs() < 1e-12);
        assert!((r.pvalue - 1.0).abs() < 1e-12);
        assert_eq!(r.dof, 2);
    }

    #[test]
    fn degenerate_inputs_are_none() {
        assert_eq!(chi2_gof(&[0, 0], &[0.5, 0.5]), None);
        assert_eq!(chi2_gof(&[5], &[1.0]), None);
        assert_eq!(chi2_gof(&[5, 5], &[1.0]), None);
        assert_eq!(chi2_gof(&[5, 5], &[0.5, f64::NAN]), None);
        assert_eq!(chi2_sf(f64::NAN, 3.0), None);
        assert_eq!(chi2_sf(1.0, 0.0), None);
        assert_eq!(chi2_quantile(1.0, 3.0), None);
    }

    #[test]
    fn an_empty_zero_expected_category_adds_no_term_and_no_degree_of_freedom() {
        // Identical 50/50 data next to the drift engine's always-present `__other__` cell.
        let r = chi2_gof(&[50, 50, 0], &[0.5, 0.5, 0.0]).unwrap();
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.pvalue, 1.0);
        assert_eq!(r.dof, 1);
        // A baseline category absent from the window still counts (it occurs in the baseline).
        let r = chi2_gof(&[100, 0, 0], &[0.5, 0.5, 0.0]).unwrap();
        assert_eq!(r.dof, 1);
        assert!((r.statistic - 100.0).abs() < 1e-9, "{}", r.statistic);
        // One occurring category leaves nothing to test.
        assert_eq!(chi2_gof(&[10, 0], &[1.0, 0.0]), None);
    }

    #[test]
    fn unseen_category_is_finite_and_significant() {
        let r = chi2_gof(&[50, 50, 10], &[0.5, 0.5, 0.0]).unwrap();
        assert!(r.statistic.is_finite());
        assert!(r.pvalue < 1e-6);
    }

    /// The closed form is statrs' general incomplete gamma function (an independent
    /// series and continued fraction) to within rounding, in the body and the tails, for
    /// every whole number of degrees of freedom it takes; past its range statrs answers.
    #[test]
    fn closed_form_equals_the_general_incomplete_gamma() {
        let mut worst = 0.0_f64;
        for k in 1..=200u32 {
            let dist = ChiSquared::new(f64::from(k)).unwrap();
            for j in 0..=400 {
                // x from 1e-3 to 1000 (x/2 ≤ 500), log-spaced.
                let x = 10f64.powf(-3.0 + 6.0 * f64::from(j) / 400.0);
                let got = integer_dof_sf(x, f64::from(k)).unwrap();
                let want = dist.sf(x);
                if want < 1e-290 {
                    assert!(got < 1e-280, "k {k} x {x}: {got} vs {want}");
                    continue;
                }
                let rel = (got - want).abs() / want;
                worst = worst.max(rel);
                assert!(
                    rel < 1e-11,
                    "k {k} x {x}: {got} vs statrs {want} (rel {rel:e})"
                );
            }
        }
        assert!(worst > 0.0, "the grid compared nothing");
        // Outside the closed form's range the general function answers.
        assert_eq!(integer_dof_sf(1001.0, 3.0), None);
        assert_eq!(integer_dof_sf(5.0, 2.5), None);
        assert_eq!(integer_dof_sf(5.0, 201.0), None);
        let far = chi2_sf(1500.0, 3.0).unwrap();
        assert_eq!(far, ChiSquared::new(3.0).unwrap().sf(1500.0));
    }
}
