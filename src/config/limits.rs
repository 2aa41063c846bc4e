//! The `limits` and `privacy` sections: what may be exported, and how much of it.

use serde::Deserialize;

use super::{count_between, Invalid};

/// The `privacy` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Whether raw feature values may appear in logs, metrics and API answers.
    pub log_values: bool,
}

/// The `limits` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Features exported per model.
    pub max_features: usize,
    /// Longest name kept, in bytes (UTF-8): longer model names fold into `__other__`,
    /// longer input feature names are refused (`payload_errors{reason="name_too_long"}`).
    pub max_name_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_features: 256,
            max_name_bytes: 128,
        }
    }
}

impl LimitsConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        // Below 16 bytes shortened names would collide; past 4 KiB one label can bloat
        // `/metrics` by megabytes (issue 11, finding 7).
        count_between("limits.max_name_bytes", self.max_name_bytes, 16, 4096)
    }
}
