//! The admin HTTP server: the status page (`/`), `/metrics`, `/healthz`, `/readyz` and the
//! JSON API under `/api/v1`. Every error is a JSON `{"error": "..."}` with a 4xx/5xx status.

pub mod anomalies;
pub mod auth;
pub mod compare;
pub mod error;
pub mod events;
pub mod explain;
pub mod feedback;
pub mod health;
pub mod predictions;
pub mod quality;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;
pub use error::ApiError;

/// Reads a JSON body holding one `what` object or an array of them, at most `max`.
/// Returns the records and whether the body was a single object (error messages then
/// name no index). Errors are the API's: 400 not JSON, 422 wrong shape, 413 too many.
///
/// An array is read one element at a time, with a [`background::pause`](crate::background::pause)
/// between two (on the parser thread, a 10 000-record body is many milliseconds of work
/// that must not keep a proxy thread waiting), and elements past `max` are skipped
/// unparsed into values, only counted.
pub fn json_records(
    body: &[u8],
    what: &str,
    max: usize,
) -> Result<(Vec<serde_json::Value>, bool), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let shape = serde::Deserializer::deserialize_any(&mut de, Records { max })
        .and_then(|shape| de.end().map(|()| shape))
        .map_err(|e| ApiError::BadRequest(format!("body is not JSON: {e}")))?;
    match shape {
        Shape::Array(_, n) if n > max => Err(ApiError::TooLarge(format!(
            "{n} {what} records in one call; at most {max}"
        ))),
        Shape::Array(records, _) => Ok((records, false)),
        Shape::Object(v) => Ok((vec![v], true)),
        Shape::Other => Err(ApiError::Unprocessable(format!(
            "body must be a {what} object or an array of them"
        ))),
    }
}

/// What [`json_records`] found at the top of a body.
enum Shape {
    /// The first `max` elements, and how many there were.
    Array(Vec<serde_json::Value>, usize),
    Object(serde_json::Value),
    /// A string, number, boolean or null.
    Other,
}

/// Reads the top of a body into a [`Shape`].
struct Records {
    max: usize,
}

impl<'de> serde::de::Visitor<'de> for Records {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max));
        let mut n = 0usize;
        loop {
            let more = if n < self.max {
                seq.next_element::<serde_json::Value>()?
                    .map(|v| records.push(v))
                    .is_some()
            } else {
                seq.next_element::<serde::de::IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(Shape::Array(records, n));
            }
            n += 1;
            crate::background::pause();
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
        let v = serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(Shape::Object(v))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
}

/// Runs `f` with the state on the reports thread (`AppState::reports`: normal priority, a
/// yield every 50 µs of work), so computing a report (a drift report of 100 features is
/// about 9 ms of two CPUs) never holds a runtime worker the proxy shares. 503 when 64
/// requests already wait for it.
pub(crate) async fn on_reports_thread<T, F>(state: &Arc<AppState>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&AppState) -> T + Send + 'static,
    T: Send + 'static,
{
    let s = state.clone();
    state.reports.run(move || f(&s)).await.map_err(|_| {
        ApiError::Unavailable("too many report requests are waiting: retry later".into())
    })
}

/// Largest baseline snapshot accepted by `PUT /api/v1/models/{model}/baseline`.
pub const MAX_BASELINE_BYTES: usize = 64 * 1024 * 1024;

/// Largest body accepted by the ingestion endpoints (`/api/v1/predictions`, `/api/v1/events`).
pub const MAX_INGEST_BYTES: usize = 16 * 1024 * 1024;

/// The admin router over the shared state.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        // The status page and its assets: open, like /metrics (the data it shows comes
        // from /api/v1, which keeps its rules).
        .route("/", get(crate::status::page))
        .route(crate::status::SCRIPT_PATH, get(crate::status::script))
        .route(crate::status::STYLE_PATH, get(crate::status::style))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/models", get(health::models))
        .route("/api/v1/models/{model}", get(health::model))
        .route(
            "/api/v1/models/{model}/performance",
            get(health::performance),
        )
        .route("/api/v1/feedback/{model}", post(feedback::post_feedback))
        .route(
            "/api/v1/predictions/{model}",
            post(predictions::post_predictions).layer(DefaultBodyLimit::max(MAX_INGEST_BYTES)),
        )
        .route(
            "/api/v1/events",
            post(events::post_event).layer(DefaultBodyLimit::max(MAX_INGEST_BYTES)),
        )
        .route("/api/v1/models/{model}/drift", get(drift))
        .route("/api/v1/models/{model}/sketch", get(sketch))
        .route("/api/v1/models/{model}/history", get(status::history))
        .route("/api/v1/models/{model}/shadow", get(shadow))
        .route("/api/v1/models/{model}/quality", get(quality::quality))
        .route("/api/v1/models/{model}/versions", get(compare::versions))
        .route("/api/v1/models/{model}/compare", get(compare::compare))
        .route(
            "/api/v1/models/{model}/anomalies",
            get(anomalies::anomalies),
        )
        .route(
            "/api/v1/models/{model}/importance",
            get(explain::importance),
        )
        .route(
            "/api/v1/models/{model}/explain",
            post(explain::explain).layer(DefaultBodyLimit::max(explain::MAX_EXPLAIN_BYTES)),
        )
        .route(
            "/api/v1/models/{model}/baseline",
            put(put_baseline).layer(DefaultBodyLimit::max(MAX_BASELINE_BYTES)),
        )
        .fallback(not_found)
        // Outermost last: JSON errors wrap everything, the auth guard runs before any
        // handler (and so before any body is read).
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(auth::Policy::from_config(&state.config)),
            auth::guard,
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
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

async fn drift(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<crate::drift::ModelDriftReport>, ApiError> {
    let m = model.clone();
    let report = on_reports_thread(&state, move |s| s.drift.report(&m)).await?;
    let mut report = report.ok_or_else(|| {
        if state.baselines.capture_pending(&model).is_some() {
            ApiError::NotFound(format!(
                "model {model:?} has no baseline yet: it is being captured from live traffic"
            ))
        } else {
            ApiError::NotFound(format!("model {model:?} has no baseline"))
        }
    })?;
    // Window min/max are raw values: withheld unless privacy.log_values (SPEC section 1).
    if !state.config.privacy.log_values {
        for f in &mut report.features {
            f.min = None;
            f.max = None;
        }
    }
    Ok(Json(report))
}

/// How the shadow model's answers compare with the primary's (docs/shadow.md).
async fn shadow(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::analysis::Analysis;
    state.shadow.report(&model).map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "model {model:?} has no shadow comparison (shadow.upstream unset, or no copy answered yet)"
        ))
    })
}

/// The window and baseline sketches behind KS and Wasserstein (fleet views merge them).
async fn sketch(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<crate::drift::ModelSketches>, ApiError> {
    let m = model.clone();
    on_reports_thread(&state, move |s| s.drift.sketches(&m))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("model {model:?} has no baseline")))
}

async fn put_baseline(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require(&state.config, &headers)?;
    let snapshot = crate::baseline::Snapshot::from_json_bytes(&body, "request body")
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    if snapshot.model.name != model {
        tracing::info!(path_model = %model, snapshot_model = %snapshot.model.name, "baseline installed under the model name of the path");
    }
    let id = snapshot.id.clone();
    let features = snapshot.features.len();
    let model = state.names.fold(&model).to_string();
    state
        .baselines
        .set(&model, Arc::new(snapshot))
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    tracing::info!(model = %model, id = %id, features, "baseline replaced through the API");
    Ok(Json(
        json!({ "model": model, "baseline_id": id, "features": features }),
    ))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    fn status(r: Result<(Vec<serde_json::Value>, bool), ApiError>) -> StatusCode {
        match r {
            Ok(_) => StatusCode::OK,
            Err(e) => e.into_response().status(),
        }
    }

    #[tokio::test]
    async fn reports_are_computed_on_their_own_thread_with_pauses() {
        let built =
            crate::app::build(Arc::new(crate::config::Config::default()), Vec::new()).unwrap();
        let (name, pauses) = on_reports_thread(&built.state, |_| {
            (
                std::thread::current().name().map(str::to_string),
                crate::background::enabled(),
            )
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("mlmon-reports"));
        assert!(pauses);
        assert!(
            !crate::background::enabled(),
            "the runtime's thread does not pause"
        );
    }

    #[test]
    fn records_are_read_one_object_or_an_array_within_the_limit() {
        let (r, single) = json_records(br#"{"a": 1}"#, "x", 3).unwrap();
        assert!(single);
        assert_eq!(r, vec![serde_json::json!({"a": 1})]);
        let (r, single) =
            json_records(br#" [{"a": 1}, {"b": [2, {"c": null}]}] "#, "x", 3).unwrap();
        assert!(!single);
        assert_eq!(
            r,
            vec![
                serde_json::json!({"a": 1}),
                serde_json::json!({"b": [2, {"c": null}]})
            ]
        );
        let (r, _) = json_records(b"[]", "x", 3).unwrap();
        assert!(r.is_empty());
    }

    #[test]
    fn bad_bodies_get_the_same_answers_as_before_streaming() {
        // Not JSON (trailing characters included): 400.
        for body in [
            &b""[..],
            b"[1,",
            b"[1] x",
            b"12abc",
            b"{\"a\":1}}",
            b"\xff",
            b"[1,]",
        ] {
            assert_eq!(
                status(json_records(body, "x", 3)),
                StatusCode::BAD_REQUEST,
                "{body:?}"
            );
        }
        // JSON of the wrong shape: 422, naming what was expected.
        for body in [
            &b"1"[..],
            b"-1.5e3",
            b"\"s\"",
            b"true",
            b"null",
            b"18446744073709551616",
        ] {
            match json_records(body, "feedback", 3) {
                Err(ApiError::Unprocessable(m)) => {
                    assert_eq!(m, "body must be a feedback object or an array of them")
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
        // Too many: 413 with the count, also when an element past the limit is not an
        // object; a syntax error past the limit is still a 400.
        match json_records(b"[{}, {}, 3, [4], {}]", "prediction", 3) {
            Err(ApiError::TooLarge(m)) => {
                assert_eq!(m, "5 prediction records in one call; at most 3")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            status(json_records(b"[{}, {}, {}, {}, {", "x", 3)),
            StatusCode::BAD_REQUEST
        );
    }
}
