//! Performance metrics (SPEC section 6): model quality against ground truth, label-free
//! estimates, and how feedback was joined.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{model,metric}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelMetricLabels {
    /// Model name.
    pub model: String,
    /// `mae`, `rmse`, `r2`, `accuracy`, `precision`, `recall` or `f1`.
    pub metric: &'static str,
}

/// `{model,result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedbackLabels {
    /// Model name.
    pub model: String,
    /// `matched`, `unmatched` or `late`.
    pub result: &'static str,
}

type F64Gauge = Gauge<f64, AtomicU64>;

/// The performance metric families.
#[derive(Debug, Default)]
pub struct PerformanceMetrics {
    /// `mlmon_performance{model,metric}`.
    pub performance: Family<ModelMetricLabels, F64Gauge>,
    /// `mlmon_estimated_performance{model,metric}`.
    pub estimated: Family<ModelMetricLabels, F64Gauge>,
    /// `mlmon_feedback_total{model,result}`.
    pub feedback: Family<FeedbackLabels, Counter>,
}

impl PerformanceMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> PerformanceMetrics {
        let m = PerformanceMetrics::default();
        registry.register(
            "performance",
            "Model performance over the window from ground truth (feedback): mae, rmse, r2 or accuracy, precision, recall, f1",
            m.performance.clone(),
        );
        registry.register(
            "estimated_performance",
            "Label-free performance estimate from the predicted probabilities (confidence-based, as NannyML's CBPE)",
            m.estimated.clone(),
        );
        registry.register(
            "feedback",
            "Ground-truth records received, by result: matched (joined to a prediction), unmatched (unknown, duplicate or unusable), late (after feedback.ttl)",
            m.feedback.clone(),
        );
        m
    }
}
