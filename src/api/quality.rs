//! `GET /api/v1/models/{model}/quality`: per-feature data quality over the window.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use super::ApiError;
use crate::app::AppState;
use crate::quality::QualityReport;

/// The model's data quality report, computed now.
pub async fn quality(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<QualityReport>, ApiError> {
    let m = model.clone();
    let report = super::on_reports_thread(&state, move |s| s.quality.report(&m)).await?;
    report.map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "model {model:?} has no data quality state: no rows seen and no baseline"
        ))
    })
}
