//! The serializable per-version report (`GET /api/v1/models/{model}/versions`).

use serde::Serialize;

use super::compare::Comparison;

/// A figure with the number of observations behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figure {
    /// The value.
    pub value: f64,
    /// Observations behind it.
    pub n: u64,
}

/// The window figures of one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionSummary {
    /// The version label.
    pub version: String,
    /// Inference requests in the window (proxied traffic).
    pub requests: u64,
    /// Of which server errors.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: Option<f64>,
    /// Mean latency, seconds.
    pub latency_mean: Option<f64>,
    /// Latency quantiles, seconds.
    pub latency_p50: Option<f64>,
    /// 95th percentile.
    pub latency_p95: Option<f64>,
    /// 99th percentile.
    pub latency_p99: Option<f64>,
    /// Prediction rows in the window.
    pub prediction_rows: u64,
    /// Accuracy against ground truth (classifiers).
    pub accuracy: Option<Figure>,
    /// Mean absolute error against ground truth (regressors).
    pub mae: Option<Figure>,
    /// Label-free accuracy estimate from class scores.
    pub estimated_accuracy: Option<Figure>,
    /// PSI of the predictions against the baseline's prediction.
    pub prediction_psi_baseline: Option<f64>,
    /// PSI of the predictions against the reference version's.
    pub prediction_psi_reference: Option<f64>,
}

/// `GET /api/v1/models/{model}/versions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionsReport {
    /// Model name.
    pub model: String,
    /// `classification` or `regression` when known.
    pub task: Option<&'static str>,
    /// The version the others are compared with.
    pub reference: Option<String>,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Every version with data in the window.
    pub versions: Vec<VersionSummary>,
    /// Each other version against the reference (default parameters).
    pub comparisons: Vec<Comparison>,
}
