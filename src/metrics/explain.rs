//! Explainability metrics (SPEC section 6): `mlmon_feature_importance{model,feature,method}`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{model,feature,method}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ImportanceLabels {
    /// Model name.
    pub model: String,
    /// Feature name (at most `limits.max_features` per model).
    pub feature: String,
    /// `permutation` (computed by mlmon) or `shap` (reserved for supplied values).
    pub method: &'static str,
}

/// The explainability metric families.
#[derive(Debug, Default)]
pub struct ExplainMetrics {
    /// `mlmon_feature_importance`.
    pub importance: Family<ImportanceLabels, Gauge<f64, AtomicU64>>,
}

impl ExplainMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> ExplainMetrics {
        let m = ExplainMetrics::default();
        registry.register(
            "feature_importance",
            "Feature importance; method=permutation: mean absolute change of the model output when the feature's column is shuffled over recent rows (docs/explainability.md)",
            m.importance.clone(),
        );
        m
    }
}
