//! The `anomaly` section: how sensitive per-row anomaly scoring is (docs/anomaly.md).

use serde::Deserialize;

use super::Invalid;

/// The `anomaly` section: how sensitive per-row anomaly scoring is (docs/anomaly.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Score (in standard-normal sigmas, two-sided) at or above which a row is anomalous.
    pub threshold: f64,
    /// Recent anomalous rows kept for `GET /api/v1/models/{model}/anomalies`.
    pub ring_size: usize,
    /// Classifier outputs whose largest class probability is below this are anomalous
    /// (`low_confidence`); 0 turns the check off.
    pub min_confidence: f64,
    /// Numeric features (in baseline order) entering the multivariate Mahalanobis score.
    pub max_joint_features: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            threshold: 4.0,
            ring_size: 100,
            min_confidence: 0.0,
            max_joint_features: 64,
        }
    }
}

impl AnomalyConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(Invalid::new(
                "anomaly.threshold",
                format!("{} is not a positive number", self.threshold),
            ));
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(Invalid::new(
                "anomaly.min_confidence",
                format!("{} is not between 0 and 1", self.min_confidence),
            ));
        }
        Ok(())
    }
}
