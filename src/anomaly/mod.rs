//! Anomaly and out-of-distribution detection per captured row (docs/anomaly.md).
//!
//! The engine fits a [`scorer::Scorer`] on each model's baseline (refitted whenever the
//! drift engine's baseline changes: loaded, replaced through the API or captured), scores
//! every row the pipeline hands it (off the request path), and keeps:
//!
//! - `mlmon_anomalies_total` and the `mlmon_anomaly_score` histogram, updated per row;
//! - time buckets of (rows, anomalies) over `drift.window`, giving `mlmon_anomaly_rate`
//!   and `mlmon_anomaly_trend`: a two-sided two-proportion z-test of the anomaly share in
//!   the newer half of the window against the older half at the 5 % level
//!   (|z| ≥ 1.96 ⇒ ±1, else 0; 0 while either half has no rows);
//! - a ring of the last `anomaly.ring_size` anomalous rows with their score and
//!   explanation, feature values only when `privacy.log_values` is on.
//!
//! Files: [`scorer`] (the per-row score and its explanation) and [`mahalanobis`] (the
//! multivariate distance), [`engine`] (per-model state, observe/refresh and the
//! [`Analysis`](crate::analysis::Analysis) impl), [`report`] (report types and the trend
//! test), [`config`] (the keys it reads).

pub mod config;
pub mod engine;
pub mod mahalanobis;
pub mod report;
pub mod scorer;

#[cfg(test)]
mod tests;

pub use engine::{joint_rows, AnomalyEngine};
pub use report::{trend_test, AnomalyRecord, AnomalyReport, Trend, WindowTally, TREND_Z};
