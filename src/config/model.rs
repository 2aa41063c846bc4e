//! The `model`, `baseline` and `models.<name>` sections: which model a request belongs to and
//! what it is compared with.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Invalid, Thresholds};

/// Highest `model.max_versions`: every version-labelled family multiplies by it.
pub const MAX_VERSIONS: usize = 16;

/// Whether the model is a classifier or a regressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Decide from the baseline's prediction type.
    #[default]
    Auto,
    /// Class labels (and probabilities).
    Classification,
    /// Numeric outputs.
    Regression,
}

/// The `model` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Model name when the path carries none.
    pub name: String,
    /// Model version when neither the path nor `model.version_header` carries one; also
    /// the reference the other versions are compared with (docs/versions.md).
    pub version: Option<String>,
    /// Request header naming the version when the path carries none (e.g. one a canary
    /// route sets).
    pub version_header: Option<String>,
    /// Distinct versions tracked per model; the rest fold into `__other__`.
    pub max_versions: usize,
    /// Distinct model names tracked; the rest fold into `__other__`.
    pub max_models: usize,
    /// Classification or regression.
    pub task: Task,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: "default".into(),
            version: None,
            version_header: None,
            max_versions: 4,
            max_models: 32,
            task: Task::Auto,
        }
    }
}

impl ModelConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if self.max_models == 0 {
            return Err(Invalid::new(
                "model.max_models",
                "0 is not allowed; must be at least 1".into(),
            ));
        }
        if !(1..=MAX_VERSIONS).contains(&self.max_versions) {
            return Err(Invalid::new(
                "model.max_versions",
                format!(
                    "{} is not allowed; must be 1..={MAX_VERSIONS}",
                    self.max_versions
                ),
            ));
        }
        if let Some(h) = &self.version_header {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(Invalid::new(
                    "model.version_header",
                    format!("{h:?} is not a valid HTTP header name"),
                ));
            }
        }
        if self.version.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(Invalid::new(
                "model.version",
                "\"\" is not allowed; leave it unset or name a version".into(),
            ));
        }
        if self.name.trim().is_empty() {
            return Err(Invalid::new(
                "model.name",
                format!("{:?} is not allowed; must not be empty", self.name),
            ));
        }
        Ok(())
    }
}

/// The `baseline` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Snapshot files to load at start (one per model).
    pub files: Vec<PathBuf>,
    /// Capture the first N live rows as the baseline instead (0: off).
    pub capture_rows: usize,
}

/// Per-model settings under `models.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelOverrides {
    /// Thresholds for this model (replace the global ones as a whole section).
    pub thresholds: Option<Thresholds>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_are_checked_by_name() {
        let ok = ModelConfig {
            version_header: Some("x-model-version".into()),
            ..ModelConfig::default()
        };
        assert!(ok.check().is_ok());
        assert_eq!(ModelConfig::default().max_versions, 4);
        for (bad, key) in [
            (
                ModelConfig {
                    max_versions: 0,
                    ..ModelConfig::default()
                },
                "model.max_versions",
            ),
            (
                ModelConfig {
                    max_versions: MAX_VERSIONS + 1,
                    ..ModelConfig::default()
                },
                "model.max_versions",
            ),
            (
                ModelConfig {
                    version_header: Some("bad header".into()),
                    ..ModelConfig::default()
                },
                "model.version_header",
            ),
            (
                ModelConfig {
                    version: Some(" ".into()),
                    ..ModelConfig::default()
                },
                "model.version",
            ),
        ] {
            let e = bad
                .check()
                .err()
                .map(|e| format!("{e:?}"))
                .unwrap_or_default();
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
