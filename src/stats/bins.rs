//! Baseline numeric bins: `k` strictly increasing interior edges `e1..ek` and `k + 1`
//! proportions `p0..pk`, where bin `i` holds `edges[i-1] < v <= edges[i]` (bin 0 is
//! `(-inf, e1]`, bin `k` is `(ek, +inf)`).

use super::quantiles::quantile_sorted;
use super::StatsError;

/// Index of the bin that holds `v`: the number of edges strictly below `v`, found by
/// binary search (`O(log k)`).
///
/// `-inf` falls in bin 0 and `+inf` in the last bin (`edges.len()`). NaN is not a value:
/// callers count it as missing before binning; if one slips through it lands in bin 0
/// (never a panic). With no edges every value is in bin 0.
pub fn bin_index(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|&e| e < v)
}

/// Counts of `values` per bin (`edges.len() + 1` entries). NaN values are skipped;
/// `±inf` go to the outer bins.
pub fn bin_counts(edges: &[f64], values: &[f64]) -> Vec<u64> {
    let mut counts = vec![0_u64; edges.len() + 1];
    for &v in values.iter().filter(|v| !v.is_nan()) {
        counts[bin_index(edges, v)] += 1;
    }
    counts
}

/// Interior edges at the quantiles `i / n_bins`, `i = 1 .. n_bins − 1`, of an ascending
/// sample (numpy's default `'linear'` quantile definition), with duplicates removed so the
/// edges are strictly increasing.
///
/// - Ties in the baseline collapse edges, so the result may hold fewer than `n_bins − 1`
///   edges. A constant sample yields exactly **one** edge at that constant: bin 0 holds the
///   baseline (`(-inf, c]`), bin 1 (`(c, inf)`) catches upward shifts; downward shifts of a
///   constant feature are visible to KS / Wasserstein / range checks, not to PSI.
/// - An empty sample (after dropping non-finite values) or `n_bins < 2` yields no edges
///   (a single bin, whose PSI is always 0).
/// - Non-finite values are ignored; `sorted` must be ascending otherwise (use
///   [`super::sorted_finite`]); an unsorted slice gives meaningless edges but never a panic.
pub fn quantile_edges(sorted: &[f64], n_bins: usize) -> Vec<f64> {
    let finite = super::finite_run(sorted);
    if finite.is_empty() || n_bins < 2 {
        return Vec::new();
    }
    let mut edges: Vec<f64> = Vec::with_capacity(n_bins - 1);
    for i in 1..n_bins {
        let q = i as f64 / n_bins as f64;
        if let Some(e) = quantile_sorted(finite, q) {
            if e.is_finite() && edges.last().is_none_or(|&last| e > last) {
                edges.push(e);
            }
        }
    }
    edges
}

/// Counts turned into proportions that sum to 1. `None` when the total is zero (an empty
/// window has no distribution; it is not "no drift").
pub fn proportions(counts: &[u64]) -> Option<Vec<f64>> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let t = total as f64;
    Some(counts.iter().map(|&c| c as f64 / t).collect())
}

/// Checks a bin specification as stored in a baseline snapshot: finite, strictly increasing
/// edges; `edges.len() + 1` proportions, each finite and in `[0, 1]`, summing to 1 within
/// `1e-6`. Errors name the offending index and value.
pub fn validate_bins(edges: &[f64], proportions: &[f64]) -> Result<(), StatsError> {
    for (i, &e) in edges.iter().enumerate() {
        if !e.is_finite() {
            return Err(StatsError::NonFiniteEdge { index: i, value: e });
        }
        if i > 0 && e <= edges[i - 1] {
            return Err(StatsError::EdgesNotIncreasing {
                index: i,
                previous: edges[i - 1],
                value: e,
            });
        }
    }
    if proportions.len() != edges.len() + 1 {
        return Err(StatsError::BinCountMismatch {
            edges: edges.len(),
            proportions: proportions.len(),
        });
    }
    validate_proportions(proportions)
}

/// Checks that proportions are finite, within `[0, 1]`, and sum to 1 within `1e-6`.
pub fn validate_proportions(proportions: &[f64]) -> Result<(), StatsError> {
    if proportions.is_empty() {
        return Err(StatsError::Empty);
    }
    for (i, &p) in proportions.iter().enumerate() {
        if !p.is_finite() || !(0.0..=1.0).contains(&p) {
            return Err(StatsError::InvalidProportion { index: i, value: p });
        }
    }
    let sum: f64 = proportions.iter().sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(StatsError::ProportionsDoNotSumToOne { sum });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_index_respects_left_open_right_closed_bins() {
        let edges = [1.0, 2.0, 3.0];
        assert_eq!(bin_index(&edges, 0.5), 0);
        assert_eq!(bin_index(&edges, 1.0), 0); // v == e1 belongs to bin 0
        assert_eq!(bin_index(&edges, 1.000_001), 1);
        assert_eq!(bin_index(&edges, 2.0), 1);
        assert_eq!(bin_index(&edges, 3.0), 2);
        assert_eq!(bin_index(&edges, 3.5), 3);
        assert_eq!(bin_index(&edges, f64::INFINITY), 3);
        assert_eq!(bin_index(&edges, f64::NEG_INFINITY), 0);
        assert_eq!(bin_index(&edges, f64::NAN), 0);
        assert_eq!(bin_index(&[], 42.0), 0);
    }

    #[test]
    fn bin_counts_skip_nan() {
        let c = bin_counts(&[0.0], &[-1.0, 0.0, 1.0, f64::NAN, f64::INFINITY]);
        assert_eq!(c, vec![2, 2]);
    }

    #[test]
    fn proportions_of_empty_window_is_none() {
        assert_eq!(proportions(&[0, 0, 0]), None);
        assert_eq!(proportions(&[]), None);
        assert_eq!(proportions(&[1, 3]), Some(vec![0.25, 0.75]));
    }

    #[test]
    fn constant_sample_gives_one_edge() {
        assert_eq!(quantile_edges(&[4.0; 10], 10), vec![4.0]);
        assert!(quantile_edges(&[], 10).is_empty());
        assert!(quantile_edges(&[1.0, 2.0], 1).is_empty());
    }

    #[test]
    fn validate_bins_names_the_problem() {
        assert!(validate_bins(&[1.0, 2.0], &[0.2, 0.3, 0.5]).is_ok());
        let e = validate_bins(&[1.0, 1.0], &[0.2, 0.3, 0.5]).unwrap_err();
        assert!(e.to_string().contains("index 1"), "{e}");
        assert!(matches!(
            validate_bins(&[1.0], &[1.0]),
            Err(StatsError::BinCountMismatch { .. })
        ));
        assert!(matches!(
            validate_bins(&[f64::NAN], &[0.5, 0.5]),
            Err(StatsError::NonFiniteEdge { .. })
        ));
        assert!(matches!(
            validate_bins(&[1.0], &[0.5, 0.6]),
            Err(StatsError::ProportionsDoNotSumToOne { .. })
        ));
        assert!(matches!(
            validate_bins(&[1.0], &[-0.5, 1.5]),
            Err(StatsError::InvalidProportion { index: 0, .. })
        ));
    }
}
