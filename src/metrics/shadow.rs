//! Shadow traffic metrics (SPEC section 10): requests by result, latency, and how the
//! candidate's predictions compare with the primary's over `drift.window`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::labels::ModelLabels;
use super::proxy::LATENCY_BUCKETS;
use super::F64Family;

/// `{model,result}` for `mlmon_shadow_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelResultLabels {
    /// Model name (folded like every `model` label).
    pub model: String,
    /// One of [`RESULTS`].
    pub result: &'static str,
}

/// The `result` vocabulary: `ok` (2xx answer read in full), `error` (connection failure,
/// non-2xx status, body error), `timeout` (past `shadow.timeout`), `skipped` (sampled but
/// not sent: shadow queue full, request body not captured, primary failed).
pub const RESULTS: [&str; 4] = ["ok", "error", "timeout", "skipped"];

type HistogramFamily = Family<ModelLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

/// The shadow metric families.
#[derive(Debug)]
pub struct ShadowMetrics {
    /// `mlmon_shadow_requests_total{model,result}`.
    pub requests: Family<ModelResultLabels, Counter>,
    /// `mlmon_shadow_duration_seconds{model}`: shadow request to the end of its body.
    pub duration: HistogramFamily,
    /// `mlmon_shadow_agreement{model}`: share of compared rows whose labels agree
    /// (classifiers).
    pub agreement: F64Family<ModelLabels>,
    /// `mlmon_shadow_mean_abs_diff{model}`: mean |shadow − primary| (regression).
    pub mean_abs_diff: F64Family<ModelLabels>,
    /// `mlmon_shadow_prediction_psi{model}`: PSI of the shadow's predictions against the
    /// primary's.
    pub prediction_psi: F64Family<ModelLabels>,
}

impl ShadowMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> ShadowMetrics {
        let m = ShadowMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            agreement: Family::default(),
            mean_abs_diff: Family::default(),
            prediction_psi: Family::default(),
        };
        registry.register(
            "shadow_requests",
            "Copies of inference requests for the shadow model by result: ok, error (unreachable or non-2xx), timeout (past shadow.timeout), skipped (sampled but not sent: shadow queue full, body not captured, primary failed)",
            m.requests.clone(),
        );
        registry.register_with_unit(
            "shadow_duration",
            "Shadow model latency, from sending the copy to the end of its response body",
            Unit::Seconds,
            m.duration.clone(),
        );
        registry.register(
            "shadow_agreement",
            "Share of rows whose predicted label is the same from the shadow and the primary model, over drift.window (classifiers)",
            m.agreement.clone(),
        );
        registry.register(
            "shadow_mean_abs_diff",
            "Mean absolute difference between the shadow's and the primary's predictions, over drift.window (regression)",
            m.mean_abs_diff.clone(),
        );
        registry.register(
            "shadow_prediction_psi",
            "PSI of the shadow model's predictions against the primary's over drift.window (labels for classifiers, primary-quantile bins for regression)",
            m.prediction_psi.clone(),
        );
        m
    }

    /// Starts every result of `model` at zero, so `rate()` reads 0 rather than nothing.
    pub fn init(&self, model: &str) {
        for result in RESULTS {
            let _ = self.requests.get_or_create(&ModelResultLabels {
                model: model.to_string(),
                result,
            });
        }
    }

    /// Counts one copy of `model`'s traffic with `result`.
    pub fn count(&self, model: &str, result: &'static str) {
        self.requests
            .get_or_create(&ModelResultLabels {
                model: model.to_string(),
                result,
            })
            .inc();
    }
}
