//! The built-in status page (`GET /` on the admin port, docs/status-page.md) and the bounded
//! history behind its charts.
//!
//! The page is three files embedded in the binary (`include_str!`): no CDN, no external
//! font, nothing fetched but the admin API of the same origin, so it works in an air-gapped
//! cluster. The page and its two assets need no token; the data it shows comes from
//! `/api/v1/...`, which keeps its own rules (`api::auth`): with `admin.token` set, the page
//! asks for the token and sends it as a bearer token, kept in the tab's session storage.
//!
//! Layout:
//! - [`history`]: per model, the last hour of refreshes of the model-level series and the
//!   worst features' PSI, bounded (served by `GET /api/v1/models/{model}/history`).

pub mod history;

use axum::http::header;
use axum::response::{IntoResponse, Response};

pub use history::{History, HistoryReport};

/// The page.
pub const PAGE_HTML: &str = include_str!("page/index.html");
/// Its script.
pub const PAGE_JS: &str = include_str!("page/status.js");
/// Its style sheet.
pub const PAGE_CSS: &str = include_str!("page/status.css");

/// Where the page loads its script from.
pub const SCRIPT_PATH: &str = "/status/status.js";
/// Where the page loads its style sheet from.
pub const STYLE_PATH: &str = "/status/status.css";

/// Only same-origin scripts, styles and API calls; no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidate, so an upgraded binary's page is picked up at once.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the status page.
pub async fn page() -> Response {
    asset(PAGE_HTML, "text/html; charset=utf-8")
}

/// `GET /status/status.js`.
pub async fn script() -> Response {
    asset(PAGE_JS, "text/javascript; charset=utf-8")
}

/// `GET /status/status.css`.
pub async fn style() -> Response {
    asset(PAGE_CSS, "text/css; charset=utf-8")
}
