//! Categorical features: aligning window counts to the baseline's categories, then PSI, JS
//! and the chi-square goodness-of-fit test over the aligned vectors.

use std::collections::HashMap;

use super::chi2::{chi2_gof, Chi2Result};
use super::js::js_divergence_counts;
use super::psi::psi_counts;

/// Name of the bucket that pools values the baseline never saw.
pub const OTHER_CATEGORY: &str = "__other__";

/// Window counts aligned with baseline proportions, category by category.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedCategories {
    /// Category labels: the baseline's categories in the order given, then
    /// [`OTHER_CATEGORY`] when present (see [`align_categories`]).
    pub labels: Vec<String>,
    /// Baseline (expected) proportion of each label; `0.0` for an `__other__` bucket the
    /// baseline did not have (PSI floors it at `1e-4`; chi-square leaves it out while the
    /// window has none either, see [`super::chi2`]).
    pub expected: Vec<f64>,
    /// Window count of each label.
    pub observed: Vec<u64>,
}

impl AlignedCategories {
    /// Number of window values.
    pub fn window_total(&self) -> u64 {
        self.observed.iter().sum()
    }

    /// PSI over the categories ([`super::psi::psi_counts`]); `None` for an empty window.
    pub fn psi(&self) -> Option<f64> {
        psi_counts(&self.expected, &self.observed)
    }

    /// JS divergence over the categories ([`super::js::js_divergence_counts`]); `None` for
    /// an empty window.
    pub fn js_divergence(&self) -> Option<f64> {
        js_divergence_counts(&self.expected, &self.observed)
    }

    /// Chi-square goodness of fit ([`super::chi2::chi2_gof`]); `None` for an empty window
    /// or fewer than two categories.
    pub fn chi2(&self) -> Option<Chi2Result> {
        chi2_gof(&self.observed, &self.expected)
    }
}

/// Aligns window counts to baseline categories.
///
/// - Every baseline category appears once, in the order given (repeated labels are
///   merged by summing), with its proportion as given (not renormalised).
/// - Window values that are not a baseline category — and values already labelled
///   [`OTHER_CATEGORY`] — are pooled into the `__other__` bucket.
/// - The `__other__` bucket is appended last when the baseline has it (its proportion is
///   kept) or when the window has pooled values (expected proportion `0.0`). When neither,
///   it is omitted; either way an empty zero-expected bucket adds no term and no degree of
///   freedom to the chi-square test ([`super::chi2::chi2_gof`]).
///
/// Non-finite or negative baseline proportions are kept as given; the statistics then
/// return `None`.
pub fn align_categories<K1, K2>(
    baseline: impl IntoIterator<Item = (K1, f64)>,
    window: impl IntoIterator<Item = (K2, u64)>,
) -> AlignedCategories
where
    K1: AsRef<str>,
    K2: AsRef<str>,
{
    let mut labels: Vec<String> = Vec::new();
    let mut expected: Vec<f64> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut other_expected = 0.0_f64;
    let mut baseline_has_other = false;
    for (label, p) in baseline {
        let label = label.as_ref();
        if label == OTHER_CATEGORY {
            other_expected += p;
            baseline_has_other = true;
            continue;
        }
        match index.get(label) {
            Some(&i) => expected[i] += p,
            None => {
                index.insert(label.to_owned(), labels.len());
                labels.push(label.to_owned());
                expected.push(p);
            }
        }
    }
    let mut observed = vec![0_u64; labels.len()];
    let mut other_observed = 0_u64;
    for (label, count) in window {
        match index.get(label.as_ref()) {
            Some(&i) => observed[i] = observed[i].saturating_add(count),
            None => other_observed = other_observed.saturating_add(count),
        }
    }
    if baseline_has_other || other_observed > 0 {
        labels.push(OTHER_CATEGORY.to_owned());
        expected.push(other_expected);
        observed.push(other_observed);
    }
    AlignedCategories {
        labels,
        expected,
        observed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseen_values_pool_into_other() {
        let a = align_categories(
            [("a", 0.6), ("b", 0.4)],
            [("a", 5_u64), ("zzz", 2), ("b", 1), ("yyy", 1), ("a", 1)],
        );
        assert_eq!(a.labels, vec!["a", "b", OTHER_CATEGORY]);
        assert_eq!(a.expected, vec![0.6, 0.4, 0.0]);
        assert_eq!(a.observed, vec![6, 1, 3]);
        assert_eq!(a.window_total(), 10);
    }

    #[test]
    fn other_bucket_omitted_when_unused() {
        let a = align_categories([("a", 0.5), ("b", 0.5)], [("a", 3_u64)]);
        assert_eq!(a.labels, vec!["a", "b"]);
        assert_eq!(a.observed, vec![3, 0]);
    }

    #[test]
    fn baseline_other_is_kept_and_merged() {
        let a = align_categories(
            [("a", 0.7), (OTHER_CATEGORY, 0.3)],
            [(OTHER_CATEGORY, 2_u64), ("new", 1), ("a", 4)],
        );
        assert_eq!(a.labels, vec!["a", OTHER_CATEGORY]);
        assert_eq!(a.expected, vec![0.7, 0.3]);
        assert_eq!(a.observed, vec![4, 3]);
    }

    #[test]
    fn identical_distributions_give_chi2_pvalue_one_despite_an_empty_other() {
        // The drift engine always carries an `__other__` cell (expected 0 unless the
        // baseline pooled values); identical 50/50 data must read p = 1, not 0.0067.
        let a = align_categories(
            [("true", 0.5), ("false", 0.5), (OTHER_CATEGORY, 0.0)],
            [("true", 50_u64), ("false", 50)],
        );
        let chi = a.chi2().unwrap();
        assert_eq!(chi.pvalue, 1.0);
        assert_eq!(chi.dof, 1);
    }

    #[test]
    fn empty_window_gives_no_statistics() {
        let a = align_categories([("a", 0.5), ("b", 0.5)], Vec::<(&str, u64)>::new());
        assert_eq!(a.psi(), None);
        assert_eq!(a.js_divergence(), None);
        assert_eq!(a.chi2(), None);
    }
}
