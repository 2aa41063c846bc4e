//! Chi-square goodness-of-fit test of window category counts against baseline proportions.
//!
//! `χ² = Σ (o_i − f_i)² / f_i` with `f_i = p_i · n`, `n = Σ o_i`, and p-value
//! `P(χ²_{k−1} ≥ χ²)`, as `scipy.stats.chisquare(f_obs, f_exp)`.
//!
//! Zero expected proportions (an `__other__` bucket that the baseline never saw, or a
//! category with no baseline mass) would make the statistic infinite, so each expected
//! proportion is first raised to [`CHI2_EXPECTED_FLOOR`] (`1e-4`, the PSI floor) and the
//! vector renormalised to sum 1 before multiplying by `n`. An unseen value that shows up in
//! the window then yields a very large statistic (p ≈ 0) rather than an infinity.

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::psi::PSI_FLOOR;

/// Expected proportions below this are raised to it (then renormalised) before the test.
pub const CHI2_EXPECTED_FLOOR: f64 = PSI_FLOOR;

/// Result of a chi-square goodness-of-fit test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chi2Result {
    /// The chi-square statistic `Σ (o − f)² / f`.
    pub statistic: f64,
    /// `P(χ²_dof ≥ statistic)`, in `[0, 1]`.
    pub pvalue: f64,
    /// Degrees of freedom, `k − 1` for `k` categories.
    pub dof: usize,
}

/// The expected counts the test uses: `max(p_i, 1e-4)`, renormalised, times `n`.
/// `None` under the same conditions as [`chi2_gof`].
pub fn chi2_expected_counts(expected: &[f64], n: u64) -> Option<Vec<f64>> {
    if expected.is_empty() || n == 0 {
        return None;
    }
    if !expected.iter().all(|p| p.is_finite() && *p >= 0.0) {
        return None;
    }
    let floored: Vec<f64> = expected
        .iter()
        .map(|&p| p.max(CHI2_EXPECTED_FLOOR))
        .collect();
    let s: f64 = floored.iter().sum();
    let nf = n as f64;
    Some(floored.iter().map(|&p| p / s * nf).collect())
}

/// Chi-square goodness-of-fit of `observed` window counts against `expected` baseline
/// proportions (same length and category order; see [`super::categorical::align_categories`]).
///
/// `None` when the window is empty (all counts zero), when there are fewer than 2
/// categories (no degrees of freedom), when the lengths differ, or when an expected
/// proportion is negative or non-finite.
pub fn chi2_gof(observed: &[u64], expected: &[f64]) -> Option<Chi2Result> {
    if observed.len() != expected.len() || observed.len() < 2 {
        return None;
    }
    let n: u64 = observed.iter().sum();
    let f_exp = chi2_expected_counts(expected, n)?;
    let statistic: f64 = observed
        .iter()
        .zip(&f_exp)
        .map(|(&o, &f)| {
            let d = o as f64 - f;
            d * d / f
        })
        .sum();
    let dof = observed.len() - 1;
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
    let dist = ChiSquared::new(dof).ok()?;
    if x <= 0.0 {
        return Some(1.0);
    }
    if x == f64::INFINITY {
        return Some(0.0);
    }
    Some(dist.sf(x).clamp(0.0, 1.0))
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
    fn unseen_category_is_finite_and_significant() {
        let r = chi2_gof(&[50, 50, 10], &[0.5, 0.5, 0.0]).unwrap();
        assert!(r.statistic.is_finite());
        assert!(r.pvalue < 1e-6);
    }
}
