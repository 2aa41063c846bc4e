//! The `log` section.

use serde::Deserialize;

use super::Invalid;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `log` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `mlmon=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl LogConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if self.level.parse::<tracing_subscriber::EnvFilter>().is_err() {
            return Err(Invalid::new(
                "log.level",
                format!("{:?} is not a valid log filter", self.level),
            ));
        }
        Ok(())
    }
}
