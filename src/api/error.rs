//! The one API error type; it maps to a JSON body without leaking internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An API error answered as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request body or parameters are wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 401: a bearer token is required or wrong.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// 401 with a hint at what went wrong.
    #[error("missing or wrong bearer token: {0}")]
    UnauthorizedHint(String),
    /// 403: the call is not allowed in this configuration.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such model or endpoint.
    #[error("{0}")]
    NotFound(String),
    /// 413: the body is too large.
    #[error("{0}")]
    TooLarge(String),
    /// 422: the body parses but cannot be used.
    #[error("{0}")]
    Unprocessable(String),
    /// 503: mlmon cannot answer now.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::UnauthorizedHint(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status(),
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if matches!(self, ApiError::Unauthorized | ApiError::UnauthorizedHint(_)) {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Middleware: error answers that axum or a layer produced as plain text (405 for a
/// wrong method, 413 past a body limit, 400/415/422 from extractors) become the API's
/// JSON `{"error": "..."}` with the same status and headers (`Allow` included).
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // Rejection texts are short; anything longer is cut.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed for this endpoint".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large for this endpoint".to_string(),
        _ if !text.is_empty() => text,
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_ascii_lowercase(),
    };
    let body = serde_json::json!({ "error": message }).to_string();
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, Bytes};
    use axum::extract::DefaultBodyLimit;
    use axum::http::Request;
    use axum::routing::{get, post};
    use axum::Router;
    use tower::ServiceExt;

    async fn call(req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let app = Router::new()
            .route("/r", get(|| async { "ok" }))
            .route(
                "/u",
                post(|b: Bytes| async move { b.len().to_string() })
                    .layer(DefaultBodyLimit::max(10)),
            )
            .layer(axum::middleware::from_fn(json_errors));
        let resp = app.oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, 4096).await.unwrap();
        let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (parts.status, parts.headers, v)
    }

    #[tokio::test]
    async fn method_and_size_errors_are_json() {
        let (status, headers, v) = call(Request::post("/r").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(v["error"].is_string(), "{v}");
        assert_eq!(headers["content-type"], "application/json");
        assert!(headers.contains_key("allow"));
        let (status, _, v) = call(
            Request::post("/u")
                .body(Body::from(vec![b'x'; 100]))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(v["error"].as_str().unwrap().contains("too large"));
        // Success passes untouched.
        let (status, _, _) = call(Request::get("/r").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
    }
}
