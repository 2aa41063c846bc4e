//! The admin HTTP server: `/metrics`, `/healthz`, `/readyz` and the JSON API under
//! `/api/v1`. Every error is a JSON `{"error": "..."}` with a 4xx/5xx status.

pub mod error;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::server::AppState;
pub use error::ApiError;

/// The admin router over the shared state.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/models", get(models))
        .route("/api/v1/models/{model}", get(model))
        .fallback(not_found)
        .with_state(state)
}

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    state.refresh();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (body, content_type) = state.metrics.encode(accept);
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let upstream = state.upstream_reachable(Duration::from_secs(1)).await;
    let baselines = state.baselines_loaded();
    let ready = upstream && baselines;
    let body = json!({
        "ready": ready,
        "checks": { "upstream": upstream, "baselines": baselines },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let models: Vec<serde_json::Value> = state
        .model_names()
        .into_iter()
        .map(|m| state.model_summary(&m))
        .collect();
    Json(json!({ "models": models }))
}

async fn model(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.model_names().contains(&model) {
        return Err(ApiError::NotFound(format!(
            "model {model:?} has not been seen"
        )));
    }
    Ok(Json(state.model_summary(&model)))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}
