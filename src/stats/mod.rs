//! Pure statistics for drift and latency (SPEC section 5): no I/O, no async, no state —
//! functions on slices, each checked against scipy / numpy by fixtures generated with
//! `scripts/gen/stats.py`.
//!
//! # Definitions
//!
//! | statistic | definition | scipy / numpy equivalent |
//! |---|---|---|
//! | [`psi()`] | `Σ (a_i − e_i)·ln(a_i/e_i)`, each proportion floored at `1e-4`, no renormalisation | — (direct formula) |
//! | [`js_divergence`] | Jensen–Shannon divergence, log base 2, inputs normalised, no floor | `jensenshannon(p, q, base=2)**2` |
//! | [`ks_2samp`] | `D = sup abs(F_a − F_b)` over pooled values; p-value `kstwo.sf(D, round(n1·n2/(n1+n2)))` | `ks_2samp(a, b, method='asymp')` |
//! | [`wasserstein()`] | `∫ abs(F_u − F_v) dx` | `wasserstein_distance(u, v)` |
//! | [`chi2_gof`] | over the `k` categories occurring in the baseline or the window: `Σ (o − f)²/f`, `f = max(p, 1e-4)` renormalised `× n`, p-value of `χ²_{k−1}` | `chisquare(f_obs, f_exp)` on those categories |
//! | [`quantile_sorted`] | linear interpolation, `h = (n−1)·q` | `np.quantile(x, q)` |
//! | [`summary`] | count, mean, population std (`ddof = 0`), min, max | `np.mean`, `np.std`, … |
//! | [`quantile_edges`] | interior bin edges at `i/n_bins`, duplicates removed | `np.unique(np.quantile(x, …))` |
//!
//! Numeric bins follow the snapshot format: `k` strictly increasing edges and `k + 1`
//! proportions, bin `i` holding `edges[i-1] < v <= edges[i]` ([`bin_index`]).
//!
//! # Missing and non-finite values, empty inputs
//!
//! Callers count NaN as missing and drop it before calling; nothing here panics if they do
//! not:
//! - functions over samples (`ks_*`, `wasserstein*`, `quantiles`, `summary`,
//!   `quantile_edges`) ignore NaN **and** `±inf` (scipy would return NaN / inf, which no
//!   gauge can use); the `*_sorted` variants trim non-finite values at either end of the
//!   sorted slice ([`sorted_finite`] produces such a slice);
//! - [`bin_index`] puts `-inf` in the first and `+inf` in the last bin; [`bin_counts`]
//!   skips NaN;
//! - proportion/count functions (`psi*`, `js*`, `chi2*`) return `None` for mismatched
//!   lengths or a negative / non-finite entry;
//! - an empty window (no value, or all counts zero) yields `None`, never `0.0`: no data is
//!   not "no drift".
//!
//! # Cost
//!
//! The drift engine evaluates ~100 features × up to 5000 values every 10 s. Sort the
//! reference sample once ([`sorted_finite`]) and the window once per evaluation; then
//! [`ks_2samp_sorted`] and [`wasserstein_sorted`] are `O(n + m)` merges. The KS p-value
//! costs at most a small dense matrix power (`≤ 33×33` for effective sizes up to 2500).
//!
//! # Adaptive thresholds
//!
//! [`adaptive_psi_thresholds`] adds to the configured PSI levels the 99 % / 99.9 %
//! quantiles of PSI under no drift at the current window size (a scaled χ²_{k−1} with an
//! empty-bin correction); see [`adaptive`] for the model and its accuracy.
//!
//! # Layout
//!
//! - [`bins`]: `bin_index`, `bin_counts`, `quantile_edges`, `proportions`, validation
//! - [`psi`](mod@psi), [`js`], [`chi2`], [`categorical`]: distribution comparisons
//! - [`ks`], [`kolmogorov`] (distribution of the KS statistic), [`wasserstein`](mod@wasserstein)
//! - [`quantiles`](mod@quantiles): sample quantiles and summary statistics
//! - [`adaptive`]: noise-derived PSI thresholds
//! - [`sketch`](mod@sketch): a mergeable quantile sketch with computed error bounds; KS and
//!   Wasserstein-1 between two sketches (live drift over the full baseline and window)

pub mod adaptive;
pub mod bins;
pub mod categorical;
pub mod chi2;
pub mod js;
pub mod kolmogorov;
pub mod ks;
pub mod psi;
pub mod quantiles;
pub mod sketch;
pub mod wasserstein;

pub use adaptive::{
    adaptive_psi_thresholds, min_expected_count, psi_null_quantile, Thresholds, CRITICAL_QUANTILE,
    WARNING_QUANTILE,
};
pub use bins::{
    bin_counts, bin_index, proportions, quantile_edges, validate_bins, validate_proportions,
};
pub use categorical::{align_categories, AlignedCategories, OTHER_CATEGORY};
pub use chi2::{
    chi2_expected_counts, chi2_gof, chi2_quantile, chi2_sf, Chi2Result, CHI2_EXPECTED_FLOOR,
};
pub use js::{js_divergence, js_divergence_counts};
pub use kolmogorov::{kstwo_sf, smirnov_sf};
pub use ks::{ks_2samp, ks_2samp_sorted, ks_pvalue_asymp, ks_statistic_sorted, KsResult};
pub use psi::{psi, psi_counts, PSI_FLOOR};
pub use quantiles::{quantile_sorted, quantiles, quantiles_sorted, summary, Summary};
pub use sketch::{compare as compare_sketches, QuantileSketch, SketchComparison};
pub use wasserstein::{wasserstein, wasserstein_sorted};

/// Invalid bin or proportion specifications (as found in a baseline snapshot).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// A bin edge is NaN or infinite.
    #[error("bin edge at index {index} is not finite: {value}")]
    NonFiniteEdge {
        /// Position of the edge in `edges`.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Edges must be strictly increasing.
    #[error("bin edges must be strictly increasing: edge at index {index} ({value}) is not greater than the previous one ({previous})")]
    EdgesNotIncreasing {
        /// Position of the edge in `edges`.
        index: usize,
        /// The edge before it.
        previous: f64,
        /// The offending value.
        value: f64,
    },
    /// `k` edges need `k + 1` proportions.
    #[error("{edges} bin edges need {} proportions, found {proportions}", edges + 1)]
    BinCountMismatch {
        /// Number of edges.
        edges: usize,
        /// Number of proportions.
        proportions: usize,
    },
    /// A proportion is outside `[0, 1]` or not finite.
    #[error("proportion at index {index} must be a finite number in [0, 1], found {value}")]
    InvalidProportion {
        /// Position of the proportion.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Proportions must sum to 1.
    #[error("proportions must sum to 1 (±1e-6), found {sum}")]
    ProportionsDoNotSumToOne {
        /// Their actual sum.
        sum: f64,
    },
    /// No proportions at all.
    #[error("no proportions given")]
    Empty,
}

/// The finite values of `values`, sorted ascending (`O(n log n)`): the input expected by the
/// `*_sorted` functions. Sort a baseline reference sample once and reuse it.
pub fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// The sub-slice of an ascending slice without its leading and trailing non-finite values
/// (where `-inf`/`+inf`/NaN end up after sorting).
pub(crate) fn finite_run(sorted: &[f64]) -> &[f64] {
    let start = sorted
        .iter()
        .position(|x| x.is_finite())
        .unwrap_or(sorted.len());
    let end = sorted
        .iter()
        .rposition(|x| x.is_finite())
        .map_or(start, |i| i + 1);
    &sorted[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_run_trims_both_ends() {
        let v = [f64::NEG_INFINITY, 1.0, 2.0, f64::INFINITY, f64::NAN];
        assert_eq!(finite_run(&v), &[1.0, 2.0]);
        assert!(finite_run(&[f64::NAN]).is_empty());
        assert!(finite_run(&[]).is_empty());
    }

    #[test]
    fn sorted_finite_drops_non_finite() {
        assert_eq!(
            sorted_finite(&[3.0, f64::NAN, -1.0, f64::INFINITY, 2.0]),
            vec![-1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn errors_name_the_values() {
        let e = StatsError::BinCountMismatch {
            edges: 3,
            proportions: 2,
        };
        assert_eq!(e.to_string(), "3 bin edges need 4 proportions, found 2");
    }
}
