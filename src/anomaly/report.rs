//! What the anomaly engine reports: window counts, the trend test and the ring of recent
//! anomalous rows.

use serde::Serialize;

use super::scorer::{Method, RowScore};

/// Critical value of the trend test (two-sided 5 %).
pub const TREND_Z: f64 = 1.959_963_984_540_054;

/// One anomalous row as listed by the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyRecord {
    /// When the request arrived (RFC 3339).
    pub timestamp: String,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// Row index within the request's batch.
    pub row: usize,
    /// Model version, when known.
    pub version: Option<String>,
    /// The score and its explanation.
    #[serde(flatten)]
    pub score: RowScore,
}

#[derive(Debug, Clone, Copy, Default)]
/// Rows and anomalies of one time bucket (or a sum of buckets).
pub(super) struct Tally {
    pub(super) rows: u64,
    pub(super) anomalies: u64,
}

/// Window anomaly counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowTally {
    /// Rows scored in the window.
    pub rows: u64,
    /// Anomalous rows in the window.
    pub anomalies: u64,
    /// `anomalies / rows`; `None` without rows.
    pub rate: Option<f64>,
}

/// The trend test's result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trend {
    /// −1 decreasing, 0 stable, 1 increasing.
    pub direction: i64,
    /// The z statistic (newer half minus older half); `None` when not computable.
    pub z: Option<f64>,
    /// Rows and anomalies in the older half.
    pub older: WindowTally,
    /// Rows and anomalies in the newer half.
    pub newer: WindowTally,
}

/// Anomaly state of one model, for the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyReport {
    /// Model name.
    pub model: String,
    /// Baseline the scorer was fitted on.
    pub baseline_id: String,
    /// `multivariate` or `univariate`.
    pub method: Method,
    /// Why the multivariate score is off, when it is.
    pub fallback_reason: Option<String>,
    /// Numeric features in the Mahalanobis distance.
    pub joint_features: Vec<String>,
    /// Ledoit–Wolf shrinkage of the fitted covariance.
    pub shrinkage: Option<f64>,
    /// `anomaly.threshold` (sigma-equivalents).
    pub threshold: f64,
    /// `anomaly.min_confidence`.
    pub min_confidence: f64,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Window counts and rate.
    pub window: WindowTally,
    /// Trend of the rate over the window.
    pub trend: Trend,
    /// Rows scored since the baseline was installed.
    pub scored_total: u64,
    /// Anomalous rows since the baseline was installed.
    pub anomalies_total: u64,
    /// Whether feature values are included (`privacy.log_values`).
    pub values_included: bool,
    /// The most recent anomalous rows, newest first.
    pub anomalies: Vec<AnomalyRecord>,
}

/// Counts and rate of a tally.
pub(super) fn tally(t: Tally) -> WindowTally {
    WindowTally {
        rows: t.rows,
        anomalies: t.anomalies,
        rate: (t.rows > 0).then(|| t.anomalies as f64 / t.rows as f64),
    }
}

/// Two-sided two-proportion z-test of `newer` against `older` at [`TREND_Z`].
pub fn trend_test(older: (u64, u64), newer: (u64, u64)) -> (i64, Option<f64>) {
    let ((n1, a1), (n2, a2)) = (older, newer);
    if n1 == 0 || n2 == 0 {
        return (0, None);
    }
    let (p1, p2) = (a1 as f64 / n1 as f64, a2 as f64 / n2 as f64);
    let p = (a1 + a2) as f64 / (n1 + n2) as f64;
    let se = (p * (1.0 - p) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se <= 0.0 {
        return (0, Some(0.0));
    }
    let z = (p2 - p1) / se;
    let dir = if z >= TREND_Z {
        1
    } else if z <= -TREND_Z {
        -1
    } else {
        0
    };
    (dir, Some(z))
}
