//! `POST /api/v1/predictions/{model}`: predictions the proxy did not see (batch scoring,
//! another serving path), fed to the same analyses as proxied traffic.
//!
//! Body: one object or an array of
//! `{"features": {...}, "prediction": x, "probabilities": [..]?, "timestamp": RFC3339?, "request_id": s?}`.
//! Each record is one request of one row (ground truth refers to it with `row` 0); a record
//! without `request_id` gets a generated one, returned in the answer. `timestamp` sets
//! `mlmon_last_prediction_timestamp_seconds`; windows use the arrival time.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{auth, ApiError};
use crate::app::AppState;
use crate::ingest::{self, LoggedRow, Rejected};
use crate::record::{FeatureValue, ParsedExchange, Prediction, Row};

/// Records accepted per call at most.
pub const MAX_PREDICTION_RECORDS: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    features: Map<String, Value>,
    prediction: Value,
    #[serde(default)]
    probabilities: Option<Vec<f64>>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
}

/// Parses an RFC 3339 timestamp (`Z` or a `±hh:mm` offset, optional fraction).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if let Some(rest) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return humantime::parse_rfc3339_weak(rest).ok();
    }
    let split = s.len().checked_sub(6)?;
    let (local, offset) = (s.get(..split)?, s.get(split..)?);
    let sign = match offset.as_bytes().first()? {
        b'+' => 1i64,
        b'-' => -1i64,
        _ => return None,
    };
    if offset.as_bytes().get(3) != Some(&b':') {
        return None;
    }
    let h: i64 = offset.get(1..3)?.parse().ok()?;
    let m: i64 = offset.get(4..6)?.parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    let t = humantime::parse_rfc3339_weak(local).ok()?;
    let shift = Duration::from_secs(((h * 60 + m) * 60) as u64);
    // Local time minus a positive offset is UTC.
    if sign > 0 {
        t.checked_sub(shift)
    } else {
        t.checked_add(shift)
    }
}

fn record_name(single: bool, i: usize) -> String {
    if single {
        "prediction record".into()
    } else {
        format!("prediction record {i}")
    }
}

/// Parses a body into (request id, arrival time, exchange) per record.
pub fn parse_predictions(
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<(String, SystemTime, ParsedExchange)>, ApiError> {
    let (records, single) = super::json_records(body, "prediction", MAX_PREDICTION_RECORDS)?;
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.into_iter().enumerate() {
        crate::background::pause();
        let at = record_name(single, i);
        let r: Record =
            serde_json::from_value(r).map_err(|e| ApiError::Unprocessable(format!("{at}: {e}")))?;
        let mut row = Row::default();
        for (name, v) in r.features {
            let v = FeatureValue::from_json(&v).ok_or_else(|| {
                ApiError::Unprocessable(format!(
                    "{at}: feature {name:?} must be a number, string, boolean or null"
                ))
            })?;
            row.values.push((name, v));
        }
        let value = FeatureValue::from_json(&r.prediction).ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "{at}: prediction must be a number, string, boolean or null"
            ))
        })?;
        if let Some(p) = &r.probabilities {
            if p.iter().any(|x| !x.is_finite() || *x < 0.0 || *x > 1.0) {
                return Err(ApiError::Unprocessable(format!(
                    "{at}: probabilities must be numbers between 0 and 1"
                )));
            }
        }
        let received_at = match &r.timestamp {
            None => now,
            Some(ts) => parse_rfc3339(ts).ok_or_else(|| {
                ApiError::Unprocessable(format!(
                    "{at}: timestamp {ts:?} is not RFC 3339 (e.g. 2026-01-02T03:04:05Z)"
                ))
            })?,
        };
        let id = match r.request_id {
            Some(id) if !id.is_empty() => id,
            Some(_) => {
                return Err(ApiError::Unprocessable(format!(
                    "{at}: request_id is empty"
                )))
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        out.push((
            id,
            received_at,
            ParsedExchange {
                rows: vec![row],
                predictions: vec![Prediction {
                    value,
                    probabilities: r.probabilities,
                }],
            },
        ));
    }
    Ok(out)
}

/// The handler: parses and validates the records on the low-priority parser thread (not on
/// the runtime's workers, which the proxy shares), offers them
/// to the capture queue as one record and answers `202 Accepted` with the request ids (the
/// analyses take them in shortly after), or `503` when the queue is full.
pub async fn post_predictions(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    auth::require(&state.config, &headers)?;
    let names = state.names.clone();
    let version = state.config.model.version.clone();
    // Everything proportional to the body (parsing, the rows, the answer with one id per
    // record) is done on the parser thread, never on a runtime worker the proxy shares.
    let (record, answer) = state
        .parser
        .run(move || -> Result<_, ApiError> {
            let records = parse_predictions(&body, SystemTime::now())?;
            let model = names.fold(&model).to_string();
            let latest = records
                .iter()
                .filter_map(|(_, t, _)| t.duration_since(UNIX_EPOCH).ok())
                .max()
                .map(|d| d.as_secs_f64());
            let ids: Vec<&str> = records.iter().map(|(id, _, _)| id.as_str()).collect();
            let answer = serde_json::to_vec(&json!({
                "model": model,
                "accepted": ids.len(),
                "request_ids": ids,
                "latest_timestamp": latest,
            }))
            .map_err(|e| ApiError::Unavailable(format!("cannot write the answer: {e}")))?;
            let rows: Vec<LoggedRow> = records
                .into_iter()
                .map(|(request_id, received_at, parsed)| LoggedRow {
                    request_id,
                    received_at,
                    parsed,
                })
                .collect();
            Ok((ingest::Record::logged(model, version, rows), answer))
        })
        .await
        .map_err(|_| {
            ApiError::Unavailable("too many ingestion bodies are being parsed: retry later".into())
        })??;
    match state.enqueue(record) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            answer,
        )),
        Err(Rejected::Full) => Err(ApiError::Unavailable(
            "the analysis queue is full (capture.queue / capture.max_queue_bytes): retry later"
                .into(),
        )),
        Err(Rejected::Closed) => Err(ApiError::Unavailable("mlmon is shutting down".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_offsets() {
        let z = parse_rfc3339("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(parse_rfc3339("2026-01-02T05:04:05+02:00").unwrap(), z);
        assert_eq!(parse_rfc3339("2026-01-02T01:04:05-02:00").unwrap(), z);
        let frac = parse_rfc3339("2026-01-02T03:04:05.250Z").unwrap();
        assert_eq!(frac.duration_since(z).unwrap(), Duration::from_millis(250));
        assert_eq!(
            z.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_767_323_045
        );
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(parse_rfc3339("2026-01-02T03:04:05+2:00").is_none());
    }
}
