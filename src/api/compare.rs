//! `GET /api/v1/models/{model}/versions` (each version's window figures and each against
//! the reference) and `GET /api/v1/models/{model}/compare?a=V1&b=V2` (SPEC 10,
//! docs/versions.md).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use super::ApiError;
use crate::app::AppState;
use crate::versions::engine::CompareError;
use crate::versions::{CompareParams, Comparison, VersionsReport};

/// The query of `compare`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    /// Version A (the reference).
    pub a: Option<String>,
    /// Version B (the candidate).
    pub b: Option<String>,
    /// Significance level (default 0.05).
    pub alpha: Option<f64>,
    /// Power of the sample sizes (default 0.8).
    pub power: Option<f64>,
    /// Smallest standardized effect worth detecting (default 0.2).
    pub min_effect: Option<f64>,
}

/// Every version of the model with data in the window.
pub async fn versions(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<VersionsReport>, ApiError> {
    state
        .versions
        .versions_report(&model)
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "model {model:?} has no versioned traffic in the window"
            ))
        })
}

/// Version `b` against version `a`.
pub async fn compare(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    Query(q): Query<CompareQuery>,
) -> Result<Json<Comparison>, ApiError> {
    let (Some(a), Some(b)) = (q.a, q.b) else {
        return Err(ApiError::BadRequest(
            "name the two versions: ?a=V1&b=V2".into(),
        ));
    };
    if a == b {
        return Err(ApiError::BadRequest(format!(
            "a and b are the same version {a:?}"
        )));
    }
    let d = CompareParams::default();
    let params = CompareParams {
        alpha: q.alpha.unwrap_or(d.alpha),
        power: q.power.unwrap_or(d.power),
        min_effect: q.min_effect.unwrap_or(d.min_effect),
    };
    params.check().map_err(ApiError::BadRequest)?;
    // The windows are read under short per-model locks; the tests are O(n log n) on at
    // most MAX_PREDICTIONS values per version, run off the runtime's workers.
    let engine = state.versions.clone();
    let m = model.clone();
    let result = tokio::task::spawn_blocking(move || engine.compare(&m, &a, &b, &params))
        .await
        .map_err(|_| ApiError::Unavailable("the comparison could not be computed; retry".into()))?;
    result.map(Json).map_err(|e| match e {
        CompareError::UnknownModel => ApiError::NotFound(format!(
            "model {model:?} has no versioned traffic in the window"
        )),
        CompareError::UnknownVersion(v) => ApiError::NotFound(format!(
            "version {v:?} of model {model:?} has no data in the window"
        )),
    })
}
