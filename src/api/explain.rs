//! `GET /api/v1/models/{model}/importance` and `POST /api/v1/models/{model}/explain`
//! (docs/explainability.md).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{auth, ApiError};
use crate::app::AppState;
use crate::explain::{ExplainError, ExplainMethod, ImportanceReport};

/// Largest body of `POST /api/v1/models/{model}/explain`.
pub const MAX_EXPLAIN_BYTES: usize = 1024 * 1024;

/// Query of both endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodQuery {
    /// `importance`: `permutation`, `shap` or `sensitivity`; `explain`: `occlusion`
    /// (default), `shap` or `sensitivity`.
    pub method: Option<String>,
}

fn method_query(raw: Option<String>) -> Result<MethodQuery, ApiError> {
    match raw {
        None => Ok(MethodQuery::default()),
        Some(q) => serde_urlencoded_query(&q),
    }
}

fn serde_urlencoded_query(q: &str) -> Result<MethodQuery, ApiError> {
    let uri: axum::http::Uri = format!("/?{q}")
        .parse()
        .map_err(|e| ApiError::Unprocessable(format!("query: {e}")))?;
    axum::extract::Query::<MethodQuery>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::Unprocessable(format!("query: {e}")))
}

/// The last importance of a model (`?method=`; default: permutation when computed, else
/// shap, else sensitivity).
pub async fn importance(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ImportanceReport>, ApiError> {
    let q = method_query(raw)?;
    if let Some(m) = q.method.as_deref() {
        if !["permutation", "shap", "sensitivity"].contains(&m) {
            return Err(ApiError::Unprocessable(format!(
                "method={m}: expected permutation, shap or sensitivity"
            )));
        }
    }
    state
        .explain
        .importance(&model, q.method.as_deref())
        .map(|r| Json((*r).clone()))
        .ok_or_else(|| {
            let hint = if state.config.explain.interval.is_zero() {
                "importance is off (set explain.interval)"
            } else {
                "not computed yet (it needs explain.min_rows recent rows of proxied traffic, and a baseline for shap and sensitivity)"
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
    /// KernelSHAP only: background rows (every feature), equally weighted, instead of the
    /// baseline's.
    #[serde(default)]
    pub background: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
}

/// Local explanation of one row through the model server.
pub async fn explain(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, Response> {
    // It makes the model server work: as guarded as a mutating call.
    auth::require(&state.config, &headers).map_err(IntoResponse::into_response)?;
    let q = method_query(raw).map_err(IntoResponse::into_response)?;
    let method = match q.method.as_deref() {
        None | Some("occlusion") => ExplainMethod::Occlusion,
        Some("shap") => ExplainMethod::Shap,
        Some("sensitivity") => ExplainMethod::Sensitivity,
        Some(m) => {
            return Err(ApiError::Unprocessable(format!(
                "method={m}: expected occlusion, shap or sensitivity"
            ))
            .into_response())
        }
    };
    let request: ExplainRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::Unprocessable(format!(
            "request body: expected {{\"features\": {{...}}}}: {e}"
        ))
        .into_response()
    })?;
    match state
        .explain
        .explain_with(
            &model,
            method,
            &request.features,
            request.background.as_deref(),
        )
        .await
    {
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
