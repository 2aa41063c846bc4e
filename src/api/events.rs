//! `POST /api/v1/events`: KServe's inference logger, so KServe users can feed mlmon
//! without the proxy (`spec.predictor.logger.url: http://mlmon:9464/api/v1/events`).
//!
//! The logger sends CloudEvents in binary mode: the body is the inference request (type
//! `org.kubeflow.serving.inference.request`) or response (`.response`) exactly as the model
//! server saw it, and the attributes are headers: `ce-id` (the request id, shared by the
//! request and its response), `ce-type`, `ce-source`, `ce-specversion`, `ce-time`, and the
//! extensions `ce-inferenceservicename`, `ce-namespace`, `ce-component`, `ce-endpoint`,
//! `ce-metadata`. The two halves arrive separately and in any order; they are paired by
//! `ce-id` in a bounded store ([`MAX_PENDING_EVENTS`], [`EVENT_TTL`]), parsed with the
//! payload adapters and fed to the analyses under the model `ce-inferenceservicename`
//! (else `model.name`). A request whose response never comes (logger mode `request`) is
//! analysed alone (inputs only) when its TTL runs out; a lone response is dropped.
//! Ground truth refers to the pair by its `ce-id`.
//!
//! When `admin.token` is set the logger cannot send an `Authorization` header; give the
//! token in its URL instead: `http://mlmon:9464/api/v1/events?token=...`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use tokio::time::Instant;

use super::{auth, ApiError};
use crate::app::AppState;
pub use crate::ingest::events::{
    EventPairing, Kind, Paired, EVENT_TTL, MAX_PENDING_EVENTS, REQUEST_TYPE, RESPONSE_TYPE,
};
use crate::ingest::{Record, Rejected};
use crate::record::CapturedExchange;

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Query parameters of the endpoint.
#[derive(Debug, serde::Deserialize)]
pub struct EventQuery {
    /// The admin token, for senders that cannot set headers (KServe's logger).
    token: Option<String>,
}

/// The handler.
pub async fn post_event(
    State(state): State<Arc<AppState>>,
    Query(query): Query<EventQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let mut auth_headers = headers.clone();
    if let (None, Some(token)) = (headers.get(header::AUTHORIZATION), query.token.as_deref()) {
        let v = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ApiError::Unauthorized)?;
        auth_headers.insert(header::AUTHORIZATION, v);
    }
    auth::require(&state.config, &auth_headers)?;
    if header_str(&headers, "content-type").is_some_and(|ct| {
        ct.to_ascii_lowercase()
            .starts_with("application/cloudevents")
    }) {
        return Err(ApiError::BadRequest(
            "structured-mode CloudEvents are not supported: send binary mode (ce-* headers, the payload as the body), as KServe's logger does".into(),
        ));
    }
    let missing = |h: &str| ApiError::BadRequest(format!("missing CloudEvents header {h}"));
    header_str(&headers, "ce-specversion").ok_or_else(|| missing("ce-specversion"))?;
    let id = header_str(&headers, "ce-id").ok_or_else(|| missing("ce-id"))?;
    header_str(&headers, "ce-source").ok_or_else(|| missing("ce-source"))?;
    let ty = header_str(&headers, "ce-type").ok_or_else(|| missing("ce-type"))?;
    let kind = match ty {
        REQUEST_TYPE => Kind::Request,
        RESPONSE_TYPE => Kind::Response,
        other => {
            return Err(ApiError::BadRequest(format!(
                "ce-type {other:?} is not {REQUEST_TYPE} or {RESPONSE_TYPE}"
            )))
        }
    };
    let model = header_str(&headers, "ce-inferenceservicename")
        .unwrap_or(&state.config.model.name)
        .to_string();
    let model = state.names.fold(&model).to_string();
    let time = header_str(&headers, "ce-time")
        .and_then(super::predictions::parse_rfc3339)
        .unwrap_or_else(SystemTime::now);
    let ready = state
        .events
        .add(id, kind, &model, time, body, Instant::now());
    let paired = ready.iter().any(|p| p.id == id);
    for p in ready {
        let record = Record::Captured(Box::new(captured(&state, p)));
        if let Err(e) = state.enqueue(record) {
            return Err(ApiError::Unavailable(match e {
                Rejected::Full => "the analysis queue is full (capture.queue / capture.max_queue_bytes): retry later".into(),
                Rejected::Closed => "mlmon is shutting down".into(),
            }));
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "model": model, "paired": paired })),
    ))
}

/// A pair as the record the proxy would have captured: the analysis side parses it with
/// the payload adapters, exactly like proxied traffic.
pub fn captured(state: &AppState, p: Paired) -> CapturedExchange {
    // The logger copies bodies as the model server wrote them: gzip ones are inflated on the
    // analysis side.
    let encoding = |b: &Bytes| b.starts_with(&[0x1f, 0x8b]).then(|| "gzip".to_string());
    CapturedExchange {
        model: p.model,
        version: state.config.model.version.clone(),
        request_id: p.id,
        method: http::Method::POST,
        path: String::new(),
        status: Some(200),
        received_at: p.time,
        duration: Duration::ZERO,
        upstream_duration: None,
        request_content_encoding: encoding(&p.request),
        response_content_encoding: p.response.as_ref().and_then(encoding),
        request_body: Some(p.request),
        response_body: p.response,
        response_content_type: None,
    }
}
