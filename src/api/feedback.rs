//! `POST /api/v1/feedback/{model}`: ground truth for earlier predictions.
//!
//! Body: `{"request_id": "...", "actual": x}` (optionally `"row": i` for row `i` of a
//! batch; 0 otherwise), or an array of them. `actual` is a number, string or boolean.
//! The answer counts what became of each record and lists it:
//! `matched`, `duplicate` (the row had ground truth already; the first stands), `unknown`,
//! `late` (the prediction's `feedback.ttl` ran out) or `pending` (the prediction has not
//! been analysed yet; it is joined when it is, or counted unmatched after a grace).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::{auth, ApiError};
use crate::app::AppState;
use crate::performance::FeedbackItem;

/// Records accepted per call at most.
pub const MAX_FEEDBACK_RECORDS: usize = 10_000;

/// Parses a feedback body into items; errors name the record and field.
pub fn parse_feedback(body: &[u8]) -> Result<Vec<FeedbackItem>, ApiError> {
    let (records, single) = super::json_records(body, "feedback", MAX_FEEDBACK_RECORDS)?;
    let at = |i: usize| {
        if single {
            "feedback".to_string()
        } else {
            format!("feedback record {i}")
        }
    };
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            FeedbackItem::from_json(r)
                .map_err(|e| ApiError::Unprocessable(format!("{}: {e}", at(i))))
        })
        .collect()
}

/// The handler.
pub async fn post_feedback(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth::require(&state.config, &headers)?;
    if !state.model_names().contains(&model) {
        return Err(ApiError::NotFound(format!(
            "model {model:?} has not been seen: send its predictions first"
        )));
    }
    let items = parse_feedback(&body)?;
    // The one path of ground truth (also the feedback sources'): performance and versions.
    let outcomes = state.apply_feedback(&model, &items).unwrap_or_default();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let results: Vec<Value> = items
        .iter()
        .zip(&outcomes)
        .map(|(item, o)| {
            *counts.entry(o.name()).or_default() += 1;
            json!({ "request_id": item.request_id, "row": item.row, "result": o.name() })
        })
        .collect();
    Ok(Json(json!({
        "model": model,
        "received": items.len(),
        "counts": counts,
        "results": results,
    })))
}
