//! The `model`, `baseline` and `models.<name>` sections: which model a request belongs to and
//! what it is compared with.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Invalid, Thresholds};

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
    /// Model version when the path carries none.
    pub version: Option<String>,
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
