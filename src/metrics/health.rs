//! Model health (SPEC section 6): one status per model.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::ModelLabels;

/// The health metric family.
#[derive(Debug, Default)]
pub struct HealthMetrics {
    /// `mlmon_model_health{model}`: 0 healthy, 1 warning, 2 critical.
    pub health: Family<ModelLabels, Gauge>,
}

impl HealthMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> HealthMetrics {
        let m = HealthMetrics::default();
        registry.register(
            "model_health",
            "Model health: 0 healthy, 1 warning, 2 critical (reasons at GET /api/v1/models)",
            m.health.clone(),
        );
        m
    }
}
