//! The health engine: evaluation with the configured thresholds, and the gauge.

use std::sync::Arc;

use super::report::{evaluate, HealthInputs, ModelHealth};
use crate::config::Config;
use crate::metrics::health::HealthMetrics;
use crate::metrics::labels::ModelLabels;

/// Model health: evaluation against the configured thresholds, and the gauge.
#[derive(Debug)]
pub struct HealthEngine {
    cfg: Arc<Config>,
    metrics: Arc<HealthMetrics>,
}

impl HealthEngine {
    /// An engine exporting to `metrics`.
    pub fn new(cfg: Arc<Config>, metrics: Arc<HealthMetrics>) -> Self {
        HealthEngine { cfg, metrics }
    }

    /// Evaluates `model` from its inputs.
    pub fn evaluate(&self, model: &str, inputs: &HealthInputs) -> ModelHealth {
        evaluate(&self.cfg, model, inputs)
    }

    /// Sets `mlmon_model_health` of one model.
    pub fn export(&self, h: &ModelHealth) {
        self.metrics
            .health
            .get_or_create(&ModelLabels {
                model: h.model.clone(),
            })
            .set(h.status.code());
    }
}
