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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
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
use crate::ingest::{Record, Rejected};
use crate::record::CapturedExchange;

/// The CloudEvents type of a logged inference request.
pub const REQUEST_TYPE: &str = "org.kubeflow.serving.inference.request";
/// The CloudEvents type of a logged inference response.
pub const RESPONSE_TYPE: &str = "org.kubeflow.serving.inference.response";
/// How long a half waits for the other.
pub const EVENT_TTL: Duration = Duration::from_secs(60);
/// Halves waiting at most (the oldest are dropped past this).
pub const MAX_PENDING_EVENTS: usize = 10_000;

/// One request/response pair, or a request alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// `ce-id`.
    pub id: String,
    /// Model (`ce-inferenceservicename`).
    pub model: String,
    /// When the request happened (`ce-time` of the request, else arrival).
    pub time: SystemTime,
    /// Request body.
    pub request: Bytes,
    /// Response body, when it came.
    pub response: Option<Bytes>,
}

#[derive(Debug)]
struct Half {
    at: Instant,
    model: String,
    time: SystemTime,
    request: Option<Bytes>,
    response: Option<Bytes>,
}

/// Waiting halves by `ce-id`, and their arrival order.
type Halves = (HashMap<String, Half>, VecDeque<(Instant, String)>);

/// Halves of logged exchanges waiting for each other.
#[derive(Debug, Default)]
pub struct EventPairing {
    inner: Mutex<Halves>,
}

/// Which half an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The inference request.
    Request,
    /// The inference response.
    Response,
}

impl EventPairing {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one half. Returns the pairs ready for analysis: this event's pair when complete,
    /// and requests whose response did not come within [`EVENT_TTL`].
    pub fn add(
        &self,
        id: &str,
        kind: Kind,
        model: &str,
        time: SystemTime,
        body: Bytes,
        now: Instant,
    ) -> Vec<Paired> {
        let Ok(mut guard) = self.inner.lock() else {
            return Vec::new();
        };
        let (halves, order) = &mut *guard;
        let mut ready = Vec::new();
        // Expire, then make room.
        while let Some((at, _)) = order.front() {
            let expired = now.saturating_duration_since(*at) >= EVENT_TTL;
            if !expired && halves.len() < MAX_PENDING_EVENTS {
                break;
            }
            let Some((at, old)) = order.pop_front() else {
                break;
            };
            if halves.get(&old).is_some_and(|h| h.at == at) {
                if let Some(h) = halves.remove(&old) {
                    if let Some(request) = h.request {
                        ready.push(Paired {
                            id: old,
                            model: h.model,
                            time: h.time,
                            request,
                            response: None,
                        });
                    }
                }
            }
        }
        let complete = match halves.get_mut(id) {
            Some(h) => {
                match kind {
                    Kind::Request => {
                        h.request = Some(body);
                        h.time = time;
                        h.model = model.to_string();
                    }
                    Kind::Response => h.response = Some(body),
                }
                h.request.is_some() && h.response.is_some()
            }
            None => {
                let (request, response) = match kind {
                    Kind::Request => (Some(body), None),
                    Kind::Response => (None, Some(body)),
                };
                halves.insert(
                    id.to_string(),
                    Half {
                        at: now,
                        model: model.to_string(),
                        time,
                        request,
                        response,
                    },
                );
                order.push_back((now, id.to_string()));
                false
            }
        };
        if complete {
            if let Some(h) = halves.remove(id) {
                if let Some(request) = h.request {
                    ready.push(Paired {
                        id: id.to_string(),
                        model: h.model,
                        time: h.time,
                        request,
                        response: h.response,
                    });
                }
            }
        }
        ready
    }

    /// Halves waiting.
    pub fn pending(&self) -> usize {
        self.inner.lock().map(|g| g.0.len()).unwrap_or(0)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pairs_in_any_order_and_expires_lone_requests() {
        let s = EventPairing::new();
        let t = SystemTime::now();
        let now = Instant::now();
        assert!(s
            .add("a", Kind::Response, "m", t, Bytes::from_static(b"r"), now)
            .is_empty());
        let ready = s.add("a", Kind::Request, "m", t, Bytes::from_static(b"q"), now);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].response.as_deref(), Some(&b"r"[..]));
        assert!(s
            .add("b", Kind::Request, "m", t, Bytes::from_static(b"q"), now)
            .is_empty());
        assert!(s
            .add("c", Kind::Response, "m", t, Bytes::from_static(b"r"), now)
            .is_empty());
        tokio::time::advance(EVENT_TTL).await;
        let ready = s.add(
            "d",
            Kind::Request,
            "m",
            t,
            Bytes::from_static(b"q"),
            Instant::now(),
        );
        assert_eq!(ready.len(), 1, "b alone; the lone response c is dropped");
        assert_eq!(ready[0].id, "b");
        assert!(ready[0].response.is_none());
        assert_eq!(s.pending(), 1);
    }
}
