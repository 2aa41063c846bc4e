//! `GET /api/v1/models/{model}/anomalies`: window rate, trend and the most recent
//! anomalous rows with their score and explanation.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use super::ApiError;
use crate::anomaly::AnomalyReport;
use crate::app::AppState;

/// Query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomaliesQuery {
    /// Most recent anomalies listed at most (default: all kept in the ring).
    pub limit: Option<usize>,
}

/// The model's anomaly report, computed now.
pub async fn anomalies(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    Query(q): Query<AnomaliesQuery>,
) -> Result<Json<AnomalyReport>, ApiError> {
    let m = model.clone();
    let report = super::on_reports_thread(&state, move |s| s.anomaly.report(&m)).await?;
    let mut report = report.ok_or_else(|| {
        if state.baselines.capture_pending(&model).is_some() {
            ApiError::NotFound(format!(
                "model {model:?} has no baseline yet: it is being captured from live traffic"
            ))
        } else {
            ApiError::NotFound(format!(
                "model {model:?} has no baseline: anomalies are scored against one"
            ))
        }
    })?;
    if let Some(limit) = q.limit {
        report.anomalies.truncate(limit);
    }
    Ok(Json(report))
}
