//! Model health (SPEC section 5): one status per model — `healthy`, `warning` or
//! `critical` — from every signal mlmon has, each failing check with its reason and what
//! to look at first.
//!
//! | check | value | levels (`thresholds.*`, per model under `models.<name>.thresholds`) |
//! |---|---|---|
//! | `drift` | model drift score (share of input features drifted) | `drift_score`; a single critical feature makes at least a warning |
//! | `latency` | window p95 | `latency_p95` |
//! | `sla` | window `sla.quantile` latency | over `sla.latency` is critical |
//! | `error_rate` | (5xx + error) / all requests over the window | `error_rate` |
//! | `anomaly_rate` | share of anomalous rows over the window | `anomaly_rate` |
//! | `data_quality` | data quality score (lower is worse) | `data_quality` |
//! | `performance` | relative drop of the primary metric (accuracy, or R²) against the baseline's reference | `performance_drop` |
//!
//! A check without data (no traffic, no baseline, no analysis) is `unknown` and does not
//! change the status. Health takes its inputs from the analyses and the proxy's traffic
//! windows ([`HealthInputs`], gathered by [`crate::app`]); it never reads metric values back.
//! The error rate is (5xx + mlmon's own 502/504) / inference requests over `drift.window`.
//!
//! Files: [`report`] (the checks and how each is evaluated), [`engine`] (evaluation with the
//! configuration and the `mlmon_model_health` gauge), [`config`] (the keys it reads).

pub mod config;
pub mod engine;
pub mod report;

#[cfg(test)]
mod tests;

pub use crate::latency::ErrorRate;
pub use engine::HealthEngine;
pub use report::{evaluate, primary_metric, Check, HealthInputs, HealthStatus, ModelHealth};
