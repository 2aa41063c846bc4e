//! Data quality metrics (SPEC section 6): per-feature window ratios and statistics,
//! cumulative error counters by reason, and the model's data quality score.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::ModelLabels;

/// `{model,feature}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QualityFeatureLabels {
    /// Model name.
    pub model: String,
    /// Feature name.
    pub feature: String,
}

/// `{model,feature,stat}` for `mlmon_feature_stat`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureStatLabels {
    /// Model name.
    pub model: String,
    /// Feature name.
    pub feature: String,
    /// `mean`, `std`, `min` or `max`.
    pub stat: &'static str,
}

/// `{model,feature,reason}` for `mlmon_feature_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureReasonLabels {
    /// Model name.
    pub model: String,
    /// Feature name.
    pub feature: String,
    /// `missing`, `type_mismatch`, `unseen_category` or `out_of_range`.
    pub reason: &'static str,
}

type F64Gauge = Gauge<f64, AtomicU64>;

/// The data quality metric families.
#[derive(Debug, Default)]
pub struct QualityMetrics {
    /// `mlmon_feature_missing_ratio`.
    pub missing_ratio: Family<QualityFeatureLabels, F64Gauge>,
    /// `mlmon_feature_outlier_ratio`.
    pub outlier_ratio: Family<QualityFeatureLabels, F64Gauge>,
    /// `mlmon_feature_out_of_range_ratio`.
    pub out_of_range_ratio: Family<QualityFeatureLabels, F64Gauge>,
    /// `mlmon_feature_stat`.
    pub stat: Family<FeatureStatLabels, F64Gauge>,
    /// `mlmon_feature_errors_total`.
    pub errors: Family<FeatureReasonLabels, Counter>,
    /// `mlmon_data_quality_score`.
    pub score: Family<ModelLabels, F64Gauge>,
}

impl QualityMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> QualityMetrics {
        let m = QualityMetrics::default();
        registry.register(
            "feature_missing_ratio",
            "Share of the window's values of the feature that are missing (null, NaN, empty, absent)",
            m.missing_ratio.clone(),
        );
        registry.register(
            "feature_outlier_ratio",
            "Share of the window's numeric values beyond the baseline's Tukey far-out fences (Q1 - 3 IQR, Q3 + 3 IQR)",
            m.outlier_ratio.clone(),
        );
        registry.register(
            "feature_out_of_range_ratio",
            "Share of the window's numeric values outside the baseline [min, max]",
            m.out_of_range_ratio.clone(),
        );
        registry.register(
            "feature_stat",
            "Window statistic of a numeric feature: mean, std (ddof 0), min, max",
            m.stat.clone(),
        );
        registry.register(
            "feature_errors",
            "Feature values with a data quality problem since start, by reason",
            m.errors.clone(),
        );
        registry.register(
            "data_quality_score",
            "Data quality score of the window, 0 (all values broken) to 1 (clean); see docs/quality.md",
            m.score.clone(),
        );
        m
    }

    /// Removes the window gauges of one feature.
    pub fn remove_feature(&self, model: &str, feature: &str) {
        let labels = QualityFeatureLabels {
            model: model.to_string(),
            feature: feature.to_string(),
        };
        self.missing_ratio.remove(&labels);
        self.outlier_ratio.remove(&labels);
        self.out_of_range_ratio.remove(&labels);
        for stat in STATS {
            self.stat.remove(&FeatureStatLabels {
                model: model.to_string(),
                feature: feature.to_string(),
                stat,
            });
        }
    }
}

/// The `stat` label values of `mlmon_feature_stat`.
pub const STATS: [&str; 4] = ["mean", "std", "min", "max"];

/// The `reason` label values of `mlmon_feature_errors_total`.
pub const REASONS: [&str; 4] = [
    "missing",
    "type_mismatch",
    "unseen_category",
    "out_of_range",
];
