//! The configuration the anomaly engine reads. The types live in [`crate::config`].
//!
//! | key | effect |
//! |---|---|
//! | `anomaly.threshold` | score (sigma-equivalents) at or above which a row is anomalous |
//! | `anomaly.min_confidence` | classifier outputs whose largest class probability is below it are anomalous (`low_confidence`; 0: off) |
//! | `anomaly.max_joint_features` | numeric features in the Mahalanobis distance at most |
//! | `anomaly.ring_size` | recent anomalous rows kept for the API (0: none) |
//! | `drift.window` | window of the rate and of the trend test (older half against newer half) |
//! | `limits.max_features` | features scored per model |
//! | `privacy.log_values` | whether the ring holds feature values |
//! | `thresholds.anomaly_rate` | levels of the rate; read by model health, not here |

pub use crate::config::{AnomalyConfig, DriftConfig, LimitsConfig, PrivacyConfig};
