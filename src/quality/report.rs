//! What the quality engine reports: window counts, ratios, limits and the score.

use serde::Serialize;

use super::check::Spec;
use super::engine::FeatureQuality;
use crate::window::Moments;

/// Counts of one feature in one time bucket.
#[derive(Debug, Clone, Default)]
pub(super) struct Counts {
    pub(super) values: u64,
    pub(super) missing: u64,
    pub(super) type_mismatch: u64,
    pub(super) unseen: u64,
    pub(super) out_of_range: u64,
    pub(super) outlier: u64,
    pub(super) numeric: u64,
    pub(super) moments: Moments,
}

impl Counts {
    pub(super) fn merge(&mut self, o: &Counts) {
        self.values += o.values;
        self.missing += o.missing;
        self.type_mismatch += o.type_mismatch;
        self.unseen += o.unseen;
        self.out_of_range += o.out_of_range;
        self.outlier += o.outlier;
        self.numeric += o.numeric;
        self.moments.merge(&o.moments);
    }
}

/// Window counts of one feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QualityCounts {
    /// Values in the window, missing ones included.
    pub values: u64,
    /// Missing values.
    pub missing: u64,
    /// Text on a numeric feature.
    pub type_mismatch: u64,
    /// Categories the baseline never saw.
    pub unseen_category: u64,
    /// Numeric values outside the baseline `[min, max]`.
    pub out_of_range: u64,
    /// Numeric values beyond the outlier fences.
    pub outlier: u64,
    /// Usable numeric values (the base of the outlier and out-of-range ratios).
    pub numeric: u64,
}

/// The baseline limits a numeric feature is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QualityLimits {
    /// Baseline minimum.
    pub min: Option<f64>,
    /// Baseline maximum.
    pub max: Option<f64>,
    /// Lower outlier fence, `Q1 − 3·IQR`.
    pub lower_fence: Option<f64>,
    /// Upper outlier fence, `Q3 + 3·IQR`.
    pub upper_fence: Option<f64>,
}

/// Errors since start by reason.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorTotals {
    /// Missing values.
    pub missing: u64,
    /// Type mismatches.
    pub type_mismatch: u64,
    /// Unseen categories.
    pub unseen_category: u64,
    /// Values out of the baseline range.
    pub out_of_range: u64,
}

/// Data quality of one feature over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureQualityReport {
    /// Feature name.
    pub feature: String,
    /// `numeric`, `categorical`, or `unknown` (not in the baseline, no value seen yet).
    #[serde(rename = "type")]
    pub feature_type: &'static str,
    /// Whether the baseline describes the feature.
    pub in_baseline: bool,
    /// Window counts.
    pub window: QualityCounts,
    /// Missing share of the window's values.
    pub missing_ratio: Option<f64>,
    /// Missing share in the baseline.
    pub baseline_missing_ratio: Option<f64>,
    /// Type mismatch share of the window's values.
    pub type_mismatch_ratio: Option<f64>,
    /// Unseen category share of the window's values.
    pub unseen_category_ratio: Option<f64>,
    /// Out-of-range share of the window's numeric values.
    pub out_of_range_ratio: Option<f64>,
    /// Outlier share of the window's numeric values.
    pub outlier_ratio: Option<f64>,
    /// The feature's share of problems used by the score (`None` without values).
    pub problem_ratio: Option<f64>,
    /// Window mean (numeric).
    pub mean: Option<f64>,
    /// Window standard deviation, ddof = 0 (numeric).
    pub std: Option<f64>,
    /// Window minimum (numeric).
    pub min: Option<f64>,
    /// Window maximum (numeric).
    pub max: Option<f64>,
    /// Baseline limits (numeric features of the baseline).
    pub limits: Option<QualityLimits>,
    /// Errors since start.
    pub errors_total: ErrorTotals,
}

/// Data quality of one model over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// Model name.
    pub model: String,
    /// Baseline id, when the model has a baseline.
    pub baseline_id: Option<String>,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Rows seen in the window.
    pub rows: u64,
    /// Data quality score in 0..1; `None` before any value.
    pub score: Option<f64>,
    /// Features in baseline order, then features the baseline does not know.
    pub features: Vec<FeatureQualityReport>,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The report of one feature from its window counts `c`; the window extremes only when
/// `log_values` (`privacy.log_values`).
pub(super) fn feature_report(
    f: &FeatureQuality,
    c: &Counts,
    log_values: bool,
) -> FeatureQualityReport {
    let baseline_missing = f.spec.baseline_missing();
    let problem = (c.values > 0).then(|| {
        let n = c.values as f64;
        let excess = (c.missing as f64 / n - baseline_missing).max(0.0);
        (excess + (c.type_mismatch + c.unseen + c.out_of_range) as f64 / n).min(1.0)
    });
    let numeric = f.spec.type_name() == "numeric" && c.moments.n > 0;
    let limits = match &f.spec {
        Spec::Numeric {
            min, max, fences, ..
        } => Some(QualityLimits {
            min: *min,
            max: *max,
            lower_fence: fences.map(|f| f.0),
            upper_fence: fences.map(|f| f.1),
        }),
        _ => None,
    };
    FeatureQualityReport {
        feature: f.name.clone(),
        feature_type: f.spec.type_name(),
        in_baseline: f.in_baseline,
        window: QualityCounts {
            values: c.values,
            missing: c.missing,
            type_mismatch: c.type_mismatch,
            unseen_category: c.unseen,
            out_of_range: c.out_of_range,
            outlier: c.outlier,
            numeric: c.numeric,
        },
        missing_ratio: ratio(c.missing, c.values),
        baseline_missing_ratio: f.in_baseline.then_some(baseline_missing),
        type_mismatch_ratio: ratio(c.type_mismatch, c.values),
        unseen_category_ratio: ratio(c.unseen, c.values),
        out_of_range_ratio: ratio(c.out_of_range, c.numeric),
        outlier_ratio: ratio(c.outlier, c.numeric),
        problem_ratio: problem,
        mean: numeric.then_some(c.moments.mean),
        std: if numeric { c.moments.std() } else { None },
        // Window extremes are raw feature values: withheld from the API and
        // `mlmon_feature_stat` unless privacy.log_values (SPEC section 1).
        min: (numeric && log_values).then_some(c.moments.min),
        max: (numeric && log_values).then_some(c.moments.max),
        limits,
        errors_total: ErrorTotals {
            missing: f.totals[0],
            type_mismatch: f.totals[1],
            unseen_category: f.totals[2],
            out_of_range: f.totals[3],
        },
    }
}

/// The data quality score: 1 − the mean problem ratio of the features with values in the
/// window; `None` when none has any.
pub(super) fn score(features: &[FeatureQualityReport]) -> Option<f64> {
    let problems: Vec<f64> = features.iter().filter_map(|f| f.problem_ratio).collect();
    (!problems.is_empty()).then(|| 1.0 - problems.iter().sum::<f64>() / problems.len() as f64)
}
