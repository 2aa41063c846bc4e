//! Per-version metrics (SPEC section 10, docs/versions.md). Only these families carry a
//! `version` label (besides the proxy-side `mlmon_version_requests_total`,
//! `mlmon_version_errors_total` and `mlmon_version_latency_seconds`, written at scrape by
//! [`crate::latency::LatencyCollector`]); `version` values are folded to at most
//! `model.max_versions` per model, `reference` is one of them.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{model,version,metric}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionMetricLabels {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// `accuracy` or `mae`.
    pub metric: &'static str,
}

/// `{model,version,against}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionPsiLabels {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// `baseline` or `reference` (the reference version).
    pub against: &'static str,
}

/// `{model,version,reference,metric}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComparisonLabels {
    /// Model name.
    pub model: String,
    /// The version compared (B).
    pub version: String,
    /// The reference version it is compared with (A).
    pub reference: String,
    /// `accuracy`, `absolute_error`, `error_rate`, `latency_mean` or
    /// `prediction_distribution`.
    pub metric: &'static str,
}

type F64Gauge = Gauge<f64, AtomicU64>;

/// The per-version families the versions analysis exports at refresh.
#[derive(Debug, Default)]
pub struct VersionMetrics {
    /// `mlmon_version_performance{model,version,metric}`.
    pub performance: Family<VersionMetricLabels, F64Gauge>,
    /// `mlmon_version_estimated_performance{model,version,metric}`.
    pub estimated: Family<VersionMetricLabels, F64Gauge>,
    /// `mlmon_version_prediction_psi{model,version,against}`.
    pub prediction_psi: Family<VersionPsiLabels, F64Gauge>,
    /// `mlmon_version_comparison_verdict{model,version,reference,metric}`.
    pub verdict: Family<ComparisonLabels, F64Gauge>,
    /// `mlmon_version_comparison_difference{model,version,reference,metric}`.
    pub difference: Family<ComparisonLabels, F64Gauge>,
    /// `mlmon_version_comparison_p_value{model,version,reference,metric}`.
    pub p_value: Family<ComparisonLabels, F64Gauge>,
    /// Label sets exported at the last refresh (to remove those that left the window).
    exported: Mutex<Exported>,
}

/// The label sets of one refresh.
#[derive(Debug, Default)]
pub struct Exported {
    /// Of `performance`.
    pub performance: HashSet<VersionMetricLabels>,
    /// Of `estimated`.
    pub estimated: HashSet<VersionMetricLabels>,
    /// Of `prediction_psi`.
    pub prediction_psi: HashSet<VersionPsiLabels>,
    /// Of the three comparison families (`verdict` only where there is a verdict).
    pub comparison: HashSet<ComparisonLabels>,
    /// Of `verdict`.
    pub verdict: HashSet<ComparisonLabels>,
}

impl VersionMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> VersionMetrics {
        let m = VersionMetrics::default();
        registry.register(
            "version_performance",
            "Performance of each model version over the window from ground truth: accuracy (classifiers) or mae (regressors)",
            m.performance.clone(),
        );
        registry.register(
            "version_estimated_performance",
            "Label-free accuracy estimate of each model version from its class scores (CBPE)",
            m.estimated.clone(),
        );
        registry.register(
            "version_prediction_psi",
            "PSI of each version's predictions over the window against the baseline or against the reference version",
            m.prediction_psi.clone(),
        );
        registry.register(
            "version_comparison_verdict",
            "Each version against the reference version: 1 better, 0 no difference, -1 worse with significance; absent while there is not enough data",
            m.verdict.clone(),
        );
        registry.register(
            "version_comparison_difference",
            "Each version's metric minus the reference version's (for prediction_distribution the KS statistic or the largest class-share difference)",
            m.difference.clone(),
        );
        registry.register(
            "version_comparison_p_value",
            "Two-sided p-value of each version against the reference version (two-proportion z, Welch's t, KS or chi-square)",
            m.p_value.clone(),
        );
        m
    }

    /// Replaces what the last refresh exported by `now`: series not in `now` are removed
    /// (their version left the window), the values of those in `now` were set by the caller.
    pub fn retain(&self, now: Exported) {
        let Ok(mut last) = self.exported.lock() else {
            return;
        };
        for l in last.performance.difference(&now.performance) {
            self.performance.remove(l);
        }
        for l in last.estimated.difference(&now.estimated) {
            self.estimated.remove(l);
        }
        for l in last.prediction_psi.difference(&now.prediction_psi) {
            self.prediction_psi.remove(l);
        }
        for l in last.comparison.difference(&now.comparison) {
            self.difference.remove(l);
            self.p_value.remove(l);
        }
        for l in last.verdict.difference(&now.verdict) {
            self.verdict.remove(l);
        }
        *last = now;
    }
}
