//! `GET /api/v1/models` (every model with its health and reasons),
//! `GET /api/v1/models/{model}` and `GET /api/v1/models/{model}/performance`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::ApiError;
use crate::app::AppState;

fn summary(state: &AppState, model: &str) -> Value {
    let mut v = state.model_summary(model);
    let health = state.model_health(model);
    let performance = state.performance.report(model);
    if let Value::Object(o) = &mut v {
        o.insert("status".into(), json!(health.status));
        o.insert("reasons".into(), json!(health.reasons));
        o.insert("checks".into(), json!(health.checks));
        o.insert("performance".into(), json!(performance));
    }
    v
}

/// `GET /api/v1/models`.
pub async fn models(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let models: Vec<Value> = super::on_reports_thread(&state, |s| {
        s.model_names()
            .into_iter()
            .map(|m| summary(s, &m))
            .collect()
    })
    .await?;
    Ok(Json(json!({ "models": models })))
}

/// `GET /api/v1/models/{model}`.
pub async fn model(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !state.model_names().contains(&model) {
        return Err(ApiError::NotFound(format!(
            "model {model:?} has not been seen"
        )));
    }
    Ok(Json(
        super::on_reports_thread(&state, move |s| summary(s, &model)).await?,
    ))
}

/// `GET /api/v1/models/{model}/performance`.
pub async fn performance(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<crate::performance::PerformanceReport>, ApiError> {
    let m = model.clone();
    let report = super::on_reports_thread(&state, move |s| s.performance.report(&m)).await?;
    report.map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "model {model:?} has no predictions or feedback yet"
        ))
    })
}
