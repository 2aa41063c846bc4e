//! Two-sample Kolmogorov–Smirnov test.
//!
//! The statistic is `D = sup_x |F_a(x) − F_b(x)|` with both empirical CDFs evaluated at every
//! pooled value (`F(x)` = share of the sample `≤ x`), which is how scipy handles ties
//! (`scipy.stats.ks_2samp(a, b).statistic`).
//!
//! The p-value is scipy's two-sided asymptotic one (`ks_2samp(a, b, method='asymp').pvalue`):
//! `kstwo.sf(D, round(n1·n2/(n1+n2)))`, the exact one-sample Kolmogorov distribution at the
//! effective sample size (see [`super::kolmogorov`]), with `round` half-to-even like numpy.

use super::kolmogorov::kstwo_sf;

/// Result of a two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// `D`, the largest absolute difference of the two empirical CDFs, in `[0, 1]`.
    pub statistic: f64,
    /// Two-sided asymptotic p-value, in `[0, 1]`.
    pub pvalue: f64,
}

/// KS test of two unsorted samples: copies and sorts them (`O(n log n)`), dropping NaN and
/// `±inf`. `None` when either sample has no finite value.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Option<KsResult> {
    let a = super::sorted_finite(a);
    let b = super::sorted_finite(b);
    ks_2samp_sorted(&a, &b)
}

/// KS test of two ascending samples in `O(n + m)` (sort the baseline sample once, e.g. with
/// [`super::sorted_finite`], and the window per evaluation).
///
/// Leading/trailing non-finite values are ignored. `None` when either sample is empty.
/// Slices that are not sorted give a meaningless answer, never a panic.
pub fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> Option<KsResult> {
    let a = super::finite_run(a);
    let b = super::finite_run(b);
    let statistic = ks_statistic_sorted(a, b)?;
    let pvalue = ks_pvalue_asymp(statistic, a.len(), b.len())?;
    Some(KsResult { statistic, pvalue })
}

/// The two-sample statistic `D` of two ascending samples, `O(n + m)`.
/// `None` when either sample is empty (after trimming non-finite ends).
pub fn ks_statistic_sorted(a: &[f64], b: &[f64]) -> Option<f64> {
    let a = super::finite_run(a);
    let b = super::finite_run(b);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0_usize, 0_usize);
    let mut d = 0.0_f64;
    while i < a.len() && j < b.len() {
        // A NaN inside a slice that claimed to be sorted is skipped, so the loop always ends.
        if a[i].is_nan() {
            i += 1;
            continue;
        }
        if b[j].is_nan() {
            j += 1;
            continue;
        }
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        d = d.max(diff.abs());
    }
    Some(d.min(1.0))
}

/// Two-sided asymptotic p-value for a two-sample statistic `d` with sample sizes `n1`, `n2`:
/// `kstwo.sf(d, round(n1·n2/(n1+n2)))`, as scipy's `ks_2samp(..., method='asymp')`.
///
/// `None` when a sample size is 0 or `d` is NaN. When the effective size rounds to 0
/// (only `n1 = n2 = 1`) scipy answers NaN; this returns `1.0`, the exact p-value for two
/// single observations (no pair of single values is evidence of a difference).
pub fn ks_pvalue_asymp(d: f64, n1: usize, n2: usize) -> Option<f64> {
    if n1 == 0 || n2 == 0 || d.is_nan() {
        return None;
    }
    let (m, n) = if n1 >= n2 {
        (n1 as f64, n2 as f64)
    } else {
        (n2 as f64, n1 as f64)
    };
    let en = (m * n / (m + n)).round_ties_even();
    if en < 1.0 {
        return Some(1.0);
    }
    Some(kstwo_sf(d.clamp(0.0, 1.0), en as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_samples_give_none() {
        assert_eq!(ks_2samp(&[], &[1.0]), None);
        assert_eq!(ks_2samp(&[1.0], &[]), None);
        assert_eq!(ks_2samp(&[f64::NAN], &[1.0]), None);
        assert_eq!(ks_pvalue_asymp(0.5, 0, 3), None);
    }

    #[test]
    fn identical_samples_have_zero_statistic_and_unit_pvalue() {
        let a = [1.0, 2.0, 2.0, 3.0];
        let r = ks_2samp(&a, &a).unwrap();
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.pvalue, 1.0);
    }

    #[test]
    fn disjoint_samples_have_unit_statistic() {
        let r = ks_2samp(&[1.0, 2.0, 3.0], &[10.0, 11.0]).unwrap();
        assert_eq!(r.statistic, 1.0);
        assert!(r.pvalue < 0.5);
    }

    #[test]
    fn single_observations_are_no_evidence() {
        let r = ks_2samp(&[1.0], &[2.0]).unwrap();
        assert_eq!(r.statistic, 1.0);
        assert_eq!(r.pvalue, 1.0);
    }

    #[test]
    fn nan_inside_sorted_slice_terminates() {
        let a = [1.0, f64::NAN, 3.0];
        let b = [f64::NAN, 2.0];
        assert!(ks_2samp_sorted(&a, &b).is_some());
    }
}
