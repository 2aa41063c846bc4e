//! The configuration health reads. The types live in [`crate::config`]; every level can be
//! set per model under `models.<name>.thresholds`.
//!
//! | key | check |
//! |---|---|
//! | `thresholds.drift_score` | `drift` (a single critical feature makes at least a warning) |
//! | `thresholds.latency_p95` | `latency` |
//! | `sla.latency`, `sla.quantile` | `sla` (over the latency is critical) |
//! | `thresholds.error_rate` | `error_rate` |
//! | `thresholds.anomaly_rate` | `anomaly_rate` |
//! | `thresholds.data_quality` | `data_quality` (lower is worse) |
//! | `thresholds.performance_drop` | `performance` |

pub use crate::config::{SlaConfig, Thresholds};
