//! Who may call `/api/v1` (SPEC sections 7 and 9), decided from the request head alone.
//!
//! [`guard`] runs before any handler, so before any body byte is read: a request it
//! refuses is answered at once and its body is never buffered (v1 read up to 64 MiB of an
//! unauthenticated upload before looking at the token).
//!
//! - With `admin.token` set, every `/api/v1` call (reads too) needs
//!   `Authorization: Bearer <token>` (the scheme in any case, RFC 9110 section 11.1).
//!   `POST /api/v1/events` may give it as `?token=` instead: KServe's inference logger
//!   cannot send headers.
//! - Without a token, reads are open and mutating calls are refused with 403 naming
//!   `admin.token` and `admin.allow_unauthenticated`, unless
//!   `admin.allow_unauthenticated: true` (the demo sets it).
//! - `/metrics`, `/healthz` and `/readyz` are always open.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::config::Config;

/// The endpoint that also takes the token as `?token=`.
pub const EVENTS_PATH: &str = "/api/v1/events";

/// The access rules in force.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `admin.token`: required by every `/api/v1` call when set.
    pub token: Option<String>,
    /// `admin.allow_unauthenticated`: without a token, mutating calls are allowed.
    pub allow_unauthenticated: bool,
}

impl Policy {
    /// The policy of `cfg`.
    pub fn from_config(cfg: &Config) -> Policy {
        Policy {
            token: cfg.admin.token.clone().filter(|t| !t.is_empty()),
            allow_unauthenticated: allow_unauthenticated(cfg),
        }
    }

    /// Decides on a request from its method, path, query and headers.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(), ApiError> {
        if !path.starts_with("/api/") {
            return Ok(());
        }
        match self.token.as_deref() {
            Some(token) => {
                let from_query = (path == EVENTS_PATH)
                    .then(|| query_token(query))
                    .flatten();
                let given = bearer(headers).or(from_query.as_deref());
                match given {
                    Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
                    _ => Err(ApiError::Unauthorized),
                }
            }
            None if is_read(method) || self.allow_unauthenticated => Ok(()),
            None => Err(ApiError::Forbidden(
                "mutating API calls are refused while no admin token is configured: set admin.token (MLMON_ADMIN__TOKEN) and send it as a bearer token, or set admin.allow_unauthenticated: true".into(),
            )),
        }
    }
}

/// `admin.allow_unauthenticated`.
fn allow_unauthenticated(cfg: &Config) -> bool {
    cfg.admin.allow_unauthenticated
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The credentials of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The `token` query parameter, percent-decoded.
fn query_token(query: Option<&str>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Q {
        token: Option<String>,
    }
    let uri: axum::http::Uri = format!("/?{}", query?).parse().ok()?;
    axum::extract::Query::<Q>::try_from_uri(&uri).ok()?.0.token
}

/// The middleware in front of the admin router: refuses `/api/v1` calls the [`Policy`]
/// does not allow, before their body is read.
pub async fn guard(State(policy): State<Arc<Policy>>, req: Request, next: Next) -> Response {
    let decision = policy.check(
        req.method(),
        req.uri().path(),
        req.uri().query(),
        req.headers(),
    );
    match decision {
        Ok(()) => next.run(req).await,
        Err(e) => {
            if req.uri().query().is_some_and(|q| q.contains("token="))
                && req.uri().path() != EVENTS_PATH
                && matches!(e, ApiError::Unauthorized)
            {
                return ApiError::UnauthorizedHint(
                    "the token goes in the Authorization header (Bearer); ?token= is accepted on /api/v1/events only".into(),
                )
                .into_response();
            }
            e.into_response()
        }
    }
}

/// Succeeds when no token is configured, or the request carries it as a bearer token.
/// (The [`guard`] middleware already enforces the whole [`Policy`]; handlers may call this
/// as a second line.)
pub fn require(cfg: &Config, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = cfg.admin.token.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    match bearer(headers) {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn token_rules() {
        let mut cfg = Config::default();
        let mut h = HeaderMap::new();
        assert!(require(&cfg, &h).is_ok(), "no token configured");
        cfg.admin.token = Some("s3cret".into());
        assert!(require(&cfg, &h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer wrong!".parse().unwrap());
        assert!(require(&cfg, &h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(require(&cfg, &h).is_ok());
        h.insert(header::AUTHORIZATION, "BEARER s3cret".parse().unwrap());
        assert!(require(&cfg, &h).is_ok(), "the scheme is case-insensitive");
    }

    #[test]
    fn policy_with_a_token_guards_reads_and_writes() {
        let p = Policy {
            token: Some("t0k".into()),
            allow_unauthenticated: false,
        };
        let get = Method::GET;
        let post = Method::POST;
        let drift = "/api/v1/models/m/drift";
        assert!(matches!(
            p.check(&get, drift, None, &headers(None)),
            Err(ApiError::Unauthorized)
        ));
        assert!(p
            .check(&get, drift, None, &headers(Some("Bearer t0k")))
            .is_ok());
        assert!(p
            .check(&get, drift, None, &headers(Some("bEaReR t0k")))
            .is_ok());
        assert!(p
            .check(&get, drift, None, &headers(Some("Basic t0k")))
            .is_err());
        assert!(p
            .check(&get, drift, None, &headers(Some("Bearer t0")))
            .is_err());
        // ?token= on the events endpoint only.
        assert!(p
            .check(&post, EVENTS_PATH, Some("token=t0k"), &headers(None))
            .is_ok());
        assert!(p
            .check(&post, EVENTS_PATH, Some("token=t%30k"), &headers(None))
            .is_ok());
        assert!(p
            .check(&post, EVENTS_PATH, Some("token=nope"), &headers(None))
            .is_err());
        assert!(p
            .check(&get, drift, Some("token=t0k"), &headers(None))
            .is_err());
        // Open endpoints.
        for open in ["/metrics", "/healthz", "/readyz"] {
            assert!(p.check(&get, open, None, &headers(None)).is_ok());
        }
    }

    #[test]
    fn policy_without_a_token_refuses_writes_unless_allowed() {
        let mut p = Policy::default();
        let e = p
            .check(
                &Method::PUT,
                "/api/v1/models/m/baseline",
                None,
                &headers(None),
            )
            .unwrap_err();
        assert!(matches!(e, ApiError::Forbidden(_)));
        let msg = e.to_string();
        assert!(msg.contains("admin.token") && msg.contains("admin.allow_unauthenticated"));
        assert!(p
            .check(&Method::GET, "/api/v1/models", None, &headers(None))
            .is_ok());
        p.allow_unauthenticated = true;
        assert!(p
            .check(&Method::POST, "/api/v1/feedback/m", None, &headers(None))
            .is_ok());
    }

    /// A router whose upload handler records whether it ever ran (and so read the body).
    fn app(policy: Policy, reached: Arc<AtomicBool>) -> Router {
        Router::new()
            .route(
                "/api/v1/models/{m}/baseline",
                post(move |body: axum::body::Bytes| {
                    let reached = reached.clone();
                    async move {
                        reached.store(true, Ordering::SeqCst);
                        body.len().to_string()
                    }
                }),
            )
            .route("/api/v1/models", get(|| async { "[]" }))
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(policy),
                guard,
            ))
    }

    #[tokio::test]
    async fn refused_uploads_are_answered_before_the_body_is_read() {
        let reached = Arc::new(AtomicBool::new(false));
        let policy = Policy {
            token: Some("t".into()),
            allow_unauthenticated: false,
        };
        // A body that never ends: reading it would hang the test.
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
        let body = Body::from_stream(tokio_stream_from(rx));
        let req = Request::post("/api/v1/models/m/baseline")
            .header("content-length", "67108864")
            .body(body)
            .unwrap();
        let resp = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            app(policy.clone(), reached.clone()).oneshot(req),
        )
        .await
        .expect("answered without reading the body")
        .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        assert!(!reached.load(Ordering::SeqCst));
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].is_string());

        // With the token, the handler runs.
        let req = Request::post("/api/v1/models/m/baseline")
            .header("authorization", "Bearer t")
            .body(Body::from("{}"))
            .unwrap();
        let resp = app(policy.clone(), reached.clone())
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(reached.load(Ordering::SeqCst));

        // Without a token configured: 403 naming the keys.
        let reached = Arc::new(AtomicBool::new(false));
        let req = Request::post("/api/v1/models/m/baseline")
            .body(Body::from("{}"))
            .unwrap();
        let resp = app(Policy::default(), reached.clone())
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(!reached.load(Ordering::SeqCst));
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("admin.allow_unauthenticated"));
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
