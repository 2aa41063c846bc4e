//! The `explain` section: permutation importance, KernelSHAP, sensitivity and local
//! explanations, computed by re-sending rows to the model server (docs/explainability.md).

use std::time::Duration;

use serde::Deserialize;

use super::{positive_duration, Invalid};

/// A global importance method computed every `explain.interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportanceMethod {
    /// Mean |f(x) − f(x with the feature's column shuffled)| over recent rows.
    Permutation,
    /// Mean |KernelSHAP value| over recent rows.
    Shap,
    /// Mean |central finite-difference derivative| × the feature's baseline scale.
    Sensitivity,
}

impl<'de> Deserialize<'de> for ImportanceMethod {
    /// By name; anything else is refused in one line naming the value (shortened, escaped).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim() {
            "permutation" => Ok(ImportanceMethod::Permutation),
            "shap" => Ok(ImportanceMethod::Shap),
            "sensitivity" => Ok(ImportanceMethod::Sensitivity),
            other => {
                let shown: String = other.chars().take(40).collect();
                Err(serde::de::Error::custom(format!(
                    "{shown:?} is not one of: permutation, shap, sensitivity"
                )))
            }
        }
    }
}

impl ImportanceMethod {
    /// The `method` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportanceMethod::Permutation => "permutation",
            ImportanceMethod::Shap => "shap",
            ImportanceMethod::Sensitivity => "sensitivity",
        }
    }
}

/// The `explain` section: importance and local explanations, computed by re-sending rows
/// to the model server (docs/explainability.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplainConfig {
    /// How often the global importances of `methods` are recomputed; `0s` (the default)
    /// turns them off, since every refresh sends extra requests to the model server.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Global importance methods computed every `interval`.
    pub methods: Vec<ImportanceMethod>,
    /// Recent rows a model needs before its importance is computed.
    pub min_rows: usize,
    /// Most recent rows used per refresh by permutation importance and sensitivity.
    pub max_rows: usize,
    /// Most rows per request to the model server (all methods).
    pub batch_rows: usize,
    /// Recent rows explained by KernelSHAP per refresh (their mean |φ| is the importance).
    pub shap_rows: usize,
    /// Background rows of KernelSHAP at most (a k-means summary of the baseline's joint
    /// sample when it holds more).
    pub background: usize,
    /// Coalitions KernelSHAP evaluates at most; all 2^F − 2 (exact Shapley values) when they
    /// fit: the default 4094 is exact up to 12 features.
    pub shap_coalitions: usize,
    /// Finite-difference step of sensitivity, as a fraction of the feature's baseline scale.
    pub sensitivity_step: f64,
    /// Time limit of one request to the model server.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

/// Most rows `explain.max_rows` may ask for (the explain ring holds this many per model).
/// Defined with the config so that config does not import the explain analysis.
pub const MAX_EXPLAIN_ROWS: usize = 256;
/// Most rows `explain.batch_rows` may put in one request.
pub const MAX_BATCH_ROWS: usize = 65_536;
/// Most background rows.
pub const MAX_BACKGROUND: usize = 100;
/// Most coalitions per KernelSHAP explanation.
pub const MAX_COALITIONS: usize = 65_536;

fn between(key: &str, v: usize, lo: usize, hi: usize) -> Result<(), Invalid> {
    if v < lo || v > hi {
        return Err(Invalid::new(
            key,
            format!("{v} is not between {lo} and {hi}"),
        ));
    }
    Ok(())
}

impl ExplainConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        positive_duration("explain.timeout", self.timeout, None)?;
        between("explain.max_rows", self.max_rows, 1, MAX_EXPLAIN_ROWS)?;
        between("explain.batch_rows", self.batch_rows, 1, MAX_BATCH_ROWS)?;
        between("explain.shap_rows", self.shap_rows, 1, MAX_EXPLAIN_ROWS)?;
        between("explain.background", self.background, 1, MAX_BACKGROUND)?;
        between(
            "explain.shap_coalitions",
            self.shap_coalitions,
            2,
            MAX_COALITIONS,
        )?;
        if !(self.sensitivity_step > 0.0 && self.sensitivity_step <= 0.1) {
            return Err(Invalid::new(
                "explain.sensitivity_step",
                format!("{} is not in (0, 0.1]", self.sensitivity_step),
            ));
        }
        Ok(())
    }
}

impl Default for ExplainConfig {
    fn default() -> Self {
        ExplainConfig {
            interval: Duration::ZERO,
            methods: vec![
                ImportanceMethod::Permutation,
                ImportanceMethod::Shap,
                ImportanceMethod::Sensitivity,
            ],
            min_rows: 32,
            max_rows: 64,
            batch_rows: 1024,
            shap_rows: 8,
            background: 10,
            shap_coalitions: 4094,
            sensitivity_step: 1e-3,
            timeout: Duration::from_secs(5),
        }
    }
}
