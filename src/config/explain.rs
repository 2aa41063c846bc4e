//! The `explain` section: permutation importance and local explanations, computed by
//! re-sending recent rows to the model server (docs/explainability.md).

use std::time::Duration;

use serde::Deserialize;

use super::{positive_duration, Invalid};

/// The `explain` section: permutation importance and local explanations, computed by
/// re-sending recent rows to the model server (docs/explainability.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplainConfig {
    /// How often permutation importance is recomputed; `0s` (the default) turns it off,
    /// since every refresh sends `1 + features` extra requests per model to the model server.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Recent rows a model needs before its importance is computed.
    pub min_rows: usize,
    /// Most recent rows used per refresh, and most rows per request to the model server.
    pub max_rows: usize,
    /// Time limit of one request to the model server.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

/// Most rows `explain.max_rows` may ask for (the explain ring holds this many per model).
/// Defined with the config so that config does not import the explain analysis.
pub const MAX_EXPLAIN_ROWS: usize = 256;

impl ExplainConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        positive_duration("explain.timeout", self.timeout, None)?;
        if self.max_rows == 0 || self.max_rows > MAX_EXPLAIN_ROWS {
            return Err(Invalid::new(
                "explain.max_rows",
                format!(
                    "{} is not between 1 and {}",
                    self.max_rows, MAX_EXPLAIN_ROWS
                ),
            ));
        }
        Ok(())
    }
}

impl Default for ExplainConfig {
    fn default() -> Self {
        ExplainConfig {
            interval: Duration::ZERO,
            min_rows: 32,
            max_rows: 64,
            timeout: Duration::from_secs(5),
        }
    }
}
