//! Anomaly metrics (SPEC section 6): anomalous rows counted, the window anomaly rate and
//! its trend, and the distribution of per-row scores.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::ModelLabels;

/// Upper bounds of the `mlmon_anomaly_score` buckets (sigma-equivalent scores).
pub const SCORE_BUCKETS: [f64; 12] = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 12.0];

fn score_histogram() -> Histogram {
    Histogram::new(SCORE_BUCKETS)
}

/// The anomaly metric families.
#[derive(Debug)]
pub struct AnomalyMetrics {
    /// `mlmon_anomalies_total`.
    pub anomalies: Family<ModelLabels, Counter>,
    /// `mlmon_anomaly_rate`.
    pub rate: Family<ModelLabels, Gauge<f64, AtomicU64>>,
    /// `mlmon_anomaly_trend`: −1 decreasing, 0 stable, 1 increasing.
    pub trend: Family<ModelLabels, Gauge>,
    /// `mlmon_anomaly_score`.
    pub score: Family<ModelLabels, Histogram, fn() -> Histogram>,
}

impl Default for AnomalyMetrics {
    fn default() -> Self {
        AnomalyMetrics {
            anomalies: Family::default(),
            rate: Family::default(),
            trend: Family::default(),
            score: Family::new_with_constructor(score_histogram),
        }
    }
}

impl AnomalyMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> AnomalyMetrics {
        let m = AnomalyMetrics::default();
        registry.register(
            "anomalies",
            "Rows scored at or above anomaly.threshold since start",
            m.anomalies.clone(),
        );
        registry.register(
            "anomaly_rate",
            "Share of the window's scored rows that are anomalous",
            m.rate.clone(),
        );
        registry.register(
            "anomaly_trend",
            "Anomaly rate trend over the window: -1 decreasing, 0 stable, 1 increasing (two-proportion z-test of the window halves, 5 %)",
            m.trend.clone(),
        );
        registry.register(
            "anomaly_score",
            "Per-row anomaly score in standard-normal sigmas (docs/anomaly.md)",
            m.score.clone(),
        );
        m
    }
}
