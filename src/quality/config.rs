//! The configuration the quality engine reads. Quality has no section of its own; it
//! shares the drift window and the limits. The types live in [`crate::config`].
//!
//! | key | effect |
//! |---|---|
//! | `drift.window` | length of the window the ratios, moments and score cover |
//! | `limits.max_features` | features tracked per model (baseline ones first, then unknown ones as they appear) |
//! | `model.max_models` | models without a baseline tracked at most (past it, rows of new models are not checked) |
//! | `thresholds.data_quality` (and `models.<m>.thresholds.data_quality`) | levels of the score, lower is worse; read by model health, not here |

pub use crate::config::{DriftConfig, LimitsConfig, ModelConfig};
