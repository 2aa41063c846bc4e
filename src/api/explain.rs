//! `GET /api/v1/models/{model}/importance` and `POST /api/v1/models/{model}/explain`
//! (docs/explainability.md).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{auth, ApiError};
use crate::app::AppState;
use crate::explain::{ExplainError, ImportanceReport};

/// Largest body of `POST /api/v1/models/{model}/explain`.
pub const MAX_EXPLAIN_BYTES: usize = 1024 * 1024;

/// The last permutation importance of a model.
pub async fn importance(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<ImportanceReport>, ApiError> {
    state
        .explain
        .importance(&model)
        .map(|r| Json((*r).clone()))
        .ok_or_else(|| {
            let hint = if state.config.explain.interval.is_zero() {
                "permutation importance is off (set explain.interval)"
            } else {
                "not computed yet (it needs explain.min_rows recent rows of proxied traffic)"
            };
            ApiError::NotFound(format!("model {model:?} has no feature importance: {hint}"))
        })
}

/// Body of `POST /api/v1/models/{model}/explain`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// The row to explain: feature name → value.
    pub features: serde_json::Map<String, serde_json::Value>,
}

/// Occlusion explanation of one row through the model server.
pub async fn explain(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, Response> {
    // It makes the model server work: as guarded as a mutating call.
    auth::require(&state.config, &headers).map_err(IntoResponse::into_response)?;
    let request: ExplainRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::Unprocessable(format!(
            "request body: expected {{\"features\": {{...}}}}: {e}"
        ))
        .into_response()
    })?;
    match state.explain.explain(&model, &request.features).await {
        Ok(v) => Ok(Json(v)),
        Err(e) => Err(match e {
            ExplainError::NoBaseline { .. } | ExplainError::NoTemplate { .. } => {
                ApiError::NotFound(e.to_string()).into_response()
            }
            ExplainError::BadRow(_)
            | ExplainError::Encode(_)
            | ExplainError::NotEnoughRows { .. } => {
                ApiError::Unprocessable(e.to_string()).into_response()
            }
            ExplainError::Upstream { .. }
            | ExplainError::UpstreamStatus { .. }
            | ExplainError::Response { .. } => {
                tracing::warn!(model = %model, error = %e, "explanation failed at the model server");
                (
                    StatusCode::BAD_GATEWAY,
                    Json(serde_json::json!({ "error": e.to_string() })),
                )
                    .into_response()
            }
        }),
    }
}
