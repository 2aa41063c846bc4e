//! Explainability metrics (SPEC section 6): `mlmon_feature_importance{model,feature,method}`
//! and `mlmon_explain_requests_total{model,result}`, the requests mlmon sent to the model
//! server itself.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
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
    /// `permutation`, `shap` or `sensitivity`.
    pub method: &'static str,
}

/// `{model,result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Model name.
    pub model: String,
    /// `ok`, `timeout` (no answer within `explain.timeout`) or `error` (connection failed,
    /// error status, answer not understood).
    pub result: &'static str,
}

/// The explainability metric families.
#[derive(Debug, Default)]
pub struct ExplainMetrics {
    /// `mlmon_feature_importance`.
    pub importance: Family<ImportanceLabels, Gauge<f64, AtomicU64>>,
    /// `mlmon_explain_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
}

impl ExplainMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> ExplainMetrics {
        let m = ExplainMetrics::default();
        registry.register(
            "feature_importance",
            "Feature importance over recent rows; method=permutation: mean absolute change of the model output when the feature's column is shuffled; shap: mean absolute KernelSHAP value; sensitivity: mean absolute finite-difference derivative times the feature's baseline scale (docs/explainability.md)",
            m.importance.clone(),
        );
        registry.register(
            "explain_requests",
            "Requests mlmon sent to the model server itself for importances and explanations, by result (ok, timeout, error)",
            m.requests.clone(),
        );
        m
    }
}
