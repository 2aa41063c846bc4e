//! Drift metrics (SPEC section 6): per-feature statistics and status, the model drift
//! score, per-bin live counts and baseline ratios (for fleet-wide PSI in PromQL), and
//! which baseline is loaded.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::ModelLabels;

/// `{model,feature,kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureLabels {
    /// Model name.
    pub model: String,
    /// Feature name (`prediction` for the output).
    pub feature: String,
    /// `input` or `output`.
    pub kind: &'static str,
}

/// `{model,feature,kind,bin}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BinLabels {
    /// Model name.
    pub model: String,
    /// Feature name.
    pub feature: String,
    /// `input` or `output`.
    pub kind: &'static str,
    /// Bin index (`0` … `k`) for numeric features, the category for categorical ones.
    pub bin: String,
}

/// `{model,id}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BaselineLabels {
    /// Model name.
    pub model: String,
    /// Baseline snapshot id.
    pub id: String,
}

type F64Gauge = Gauge<f64, AtomicU64>;

/// The drift metric families.
#[derive(Debug, Default)]
pub struct DriftMetrics {
    /// `mlmon_feature_psi`.
    pub psi: Family<FeatureLabels, F64Gauge>,
    /// `mlmon_feature_js_divergence`.
    pub js: Family<FeatureLabels, F64Gauge>,
    /// `mlmon_feature_ks_statistic`.
    pub ks_statistic: Family<FeatureLabels, F64Gauge>,
    /// `mlmon_feature_ks_pvalue`.
    pub ks_pvalue: Family<FeatureLabels, F64Gauge>,
    /// `mlmon_feature_wasserstein`.
    pub wasserstein: Family<FeatureLabels, F64Gauge>,
    /// `mlmon_feature_chi2_pvalue`.
    pub chi2_pvalue: Family<FeatureLabels, F64Gauge>,
    /// `mlmon_feature_drift_status`: 0 ok, 1 warning, 2 critical.
    pub status: Family<FeatureLabels, Gauge>,
    /// `mlmon_model_drift_score`.
    pub drift_score: Family<ModelLabels, F64Gauge>,
    /// `mlmon_feature_bin_observations_total`.
    pub bin_observations: Family<BinLabels, Counter>,
    /// `mlmon_baseline_bin_ratio`.
    pub baseline_bin_ratio: Family<BinLabels, F64Gauge>,
    /// `mlmon_baseline_info`.
    pub baseline_info: Family<BaselineLabels, Gauge>,
    /// The families above, encoded once per change (empty for a group built by `default`,
    /// which no page shows).
    pub cache: super::CachedFamilies,
}

impl DriftMetrics {
    /// The group with its families in its own registry (prefix `mlmon`), written into every
    /// page from [`DriftMetrics::cache`]: they change only when the drift engine refreshes
    /// or installs a baseline, and it says so ([`super::CachedFamilies::changed`]).
    pub fn cached() -> DriftMetrics {
        let mut registry = Registry::with_prefix("mlmon");
        let mut m = DriftMetrics::register(&mut registry);
        m.cache = super::CachedFamilies::new(registry);
        m
    }

    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> DriftMetrics {
        let m = DriftMetrics::default();
        registry.register(
            "feature_psi",
            "Population stability index of the window against the baseline bins",
            m.psi.clone(),
        );
        registry.register(
            "feature_js_divergence",
            "Jensen-Shannon divergence (base 2) of the window against the baseline bins",
            m.js.clone(),
        );
        registry.register(
            "feature_ks_statistic",
            "Two-sample Kolmogorov-Smirnov statistic D, window vs baseline sample",
            m.ks_statistic.clone(),
        );
        registry.register(
            "feature_ks_pvalue",
            "Asymptotic p-value of the two-sample KS test",
            m.ks_pvalue.clone(),
        );
        registry.register(
            "feature_wasserstein",
            "Wasserstein-1 distance, window vs baseline sample",
            m.wasserstein.clone(),
        );
        registry.register(
            "feature_chi2_pvalue",
            "Chi-square goodness-of-fit p-value of window categories vs baseline proportions",
            m.chi2_pvalue.clone(),
        );
        registry.register(
            "feature_drift_status",
            "Drift status of the feature: 0 ok, 1 warning, 2 critical",
            m.status.clone(),
        );
        registry.register(
            "model_drift_score",
            "Share of input features drifted (warning or worse), importance-weighted when the baseline has importances",
            m.drift_score.clone(),
        );
        registry.register(
            "feature_bin_observations",
            "Live values counted per baseline bin since start (fleet-wide PSI in PromQL)",
            m.bin_observations.clone(),
        );
        registry.register(
            "baseline_bin_ratio",
            "Baseline proportion per bin",
            m.baseline_bin_ratio.clone(),
        );
        registry.register(
            "baseline_info",
            "The baseline snapshot loaded for the model; always 1",
            m.baseline_info.clone(),
        );
        m
    }

    /// Removes every per-feature series of `labels`' feature.
    pub fn remove_feature_values(&self, labels: &FeatureLabels) {
        self.psi.remove(labels);
        self.js.remove(labels);
        self.ks_statistic.remove(labels);
        self.ks_pvalue.remove(labels);
        self.wasserstein.remove(labels);
        self.chi2_pvalue.remove(labels);
        self.status.remove(labels);
    }
}
