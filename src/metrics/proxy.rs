//! Proxy traffic metrics: requests, latency, SLA, predictions, payload errors, capture drops.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::labels::{ModelCodeLabels, ModelLabels, ModelReasonLabels, ReasonLabels, VersionLabels};

/// Latency buckets (seconds): fine below 100 ms where SLAs live, coarse above.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

type HistogramFamily = Family<ModelLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

/// Metrics written on the request path and by the pipeline for proxied traffic.
#[derive(Debug)]
pub struct ProxyMetrics {
    /// `mlmon_requests_total{model,code}`.
    pub requests: Family<ModelCodeLabels, Counter>,
    /// `mlmon_request_duration_seconds{model}`: end-to-end through the proxy.
    pub request_duration: HistogramFamily,
    /// `mlmon_upstream_duration_seconds{model}`: model server time to response headers.
    pub upstream_duration: HistogramFamily,
    /// `mlmon_sla_violations_total{model}`.
    pub sla_violations: Family<ModelLabels, Counter>,
    /// `mlmon_predictions_total{model}`: rows predicted.
    pub predictions: Family<ModelLabels, Counter>,
    /// `mlmon_payload_errors_total{model,reason}`.
    pub payload_errors: Family<ModelReasonLabels, Counter>,
    /// `mlmon_capture_dropped_total{reason}`.
    pub capture_dropped: Family<ReasonLabels, Counter>,
    /// `mlmon_unknown_features_total{model}`: input values whose name is not in the
    /// model's baseline (left out of every analysis).
    pub unknown_features: Family<ModelLabels, Counter>,
    /// `mlmon_last_prediction_timestamp_seconds{model}`.
    pub last_prediction: Family<ModelLabels, Gauge<f64, AtomicU64>>,
    /// `mlmon_capture_queue_length`: records waiting for analysis.
    pub queue_length: Gauge,
}

impl ProxyMetrics {
    /// Registers the group in `registry` (whose prefix is `mlmon`).
    pub fn register(registry: &mut Registry, build_version: &str) -> ProxyMetrics {
        let m = ProxyMetrics {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            upstream_duration: Family::new_with_constructor(latency_histogram),
            sla_violations: Family::default(),
            predictions: Family::default(),
            payload_errors: Family::default(),
            capture_dropped: Family::default(),
            unknown_features: Family::default(),
            last_prediction: Family::default(),
            queue_length: Gauge::default(),
        };
        registry.register(
            "requests",
            "Proxied requests by model and status class (2xx, 3xx, 4xx, 5xx, error = upstream unreachable or timed out, canceled = the client went away first)",
            m.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "End-to-end latency of inference requests through the proxy, until the last response byte",
            Unit::Seconds,
            m.request_duration.clone(),
        );
        registry.register_with_unit(
            "upstream_duration",
            "Model server time of inference requests, until its response headers",
            Unit::Seconds,
            m.upstream_duration.clone(),
        );
        registry.register(
            "sla_violations",
            "Inference requests slower than sla.latency",
            m.sla_violations.clone(),
        );
        registry.register(
            "predictions",
            "Rows predicted (a batch of N rows counts N)",
            m.predictions.clone(),
        );
        registry.register(
            "payload_errors",
            "Request or response bodies that could not be understood, by reason",
            m.payload_errors.clone(),
        );
        registry.register(
            "capture_dropped",
            "Captures skipped: queue_full (analysis behind), too_large (body over capture.max_body_bytes), body_error, event_unpaired (a logged response whose request never came)",
            m.capture_dropped.clone(),
        );
        registry.register(
            "unknown_features",
            "Input values whose name is not among the model's baseline features; they are left out of quality, anomaly and health",
            m.unknown_features.clone(),
        );
        registry.register(
            "last_prediction_timestamp_seconds",
            "Unix time of the last prediction seen for the model",
            m.last_prediction.clone(),
        );
        registry.register(
            "capture_queue_length",
            "Captured exchanges waiting for analysis",
            m.queue_length.clone(),
        );
        let build_info: Family<VersionLabels, Gauge> = Family::default();
        build_info
            .get_or_create(&VersionLabels {
                version: build_version.to_string(),
            })
            .set(1);
        registry.register("build_info", "mlmon build; always 1", build_info);
        // Every drop reason starts at zero so alerts on increase() see the series.
        for reason in ["queue_full", "too_large", "body_error", "row_budget"] {
            let _ = m.capture_dropped.get_or_create(&ReasonLabels { reason });
        }
        m
    }
}
