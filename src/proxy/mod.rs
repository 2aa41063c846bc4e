//! The transparent reverse proxy.
//!
//! Every request is forwarded to the upstream with its method, path, query, headers (minus
//! hop-by-hop ones) and body bytes unchanged; the response comes back the same way.
//! Bodies stream frame by frame ([`tee`]), so chunked and server-sent-event responses are
//! never buffered. Monitoring happens beside the data path: latency metrics are updated
//! with atomics, and the captured exchange is handed to the analyses with `try_send` on a
//! bounded queue — a full queue drops the capture (counted), never the request.
//!
//! Only inference requests (`POST`/`PUT`) are timed and analysed; health and metadata
//! calls (`GET`, `HEAD`, …) are forwarded and counted in `mlmon_requests_total` only, so
//! probes do not flatter the latency figures.

pub mod model_id;
pub mod tee;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, HOST,
};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::config::Config;
use crate::ingest::{Queue, Record};
use crate::latency::LatencyWindows;
use crate::metrics::labels::{status_class, ModelCodeLabels, ModelLabels, ReasonLabels};
use crate::metrics::ProxyMetrics;
use crate::record::CapturedExchange;
use crate::shadow::{Answer, Shadow, ShadowCopy};
use model_id::ModelNames;
use tee::{Finish, RequestTee, ResponseTee, SharedTap, Tap};

/// The request id header, kept or generated, forwarded and returned.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The body the proxy answers with: the upstream's (teed) or a small JSON error.
pub type ProxyBody = Either<ResponseTee<Incoming>, ResponseTee<Full<Bytes>>>;

/// The upstream HTTP client.
pub type UpstreamClient = Client<HttpConnector, RequestTee<crate::net::Body>>;

/// Everything the proxy needs, shared by all connections.
#[derive(Debug)]
pub struct Proxy {
    client: UpstreamClient,
    upstream: Uri,
    upstream_version: Version,
    timeout: Duration,
    max_body: usize,
    default_model: String,
    default_version: Option<String>,
    version_header: Option<HeaderName>,
    sla: Duration,
    names: Arc<ModelNames>,
    metrics: Arc<ProxyMetrics>,
    latency: Arc<LatencyWindows>,
    queue: Queue,
    /// Shadow traffic, when `shadow.upstream` is set.
    shadow: Option<Arc<Shadow>>,
}

/// Builds the pooled upstream client (HTTP/1.1 keep-alive, or h2c with prior knowledge).
/// The one client stack for the model server: the proxy and the explainer (which re-sends
/// rows) both use it, with the same connect timeout, pool and protocol settings.
pub fn upstream_client<B>(cfg: &Config) -> Client<HttpConnector, B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(cfg.proxy.connect_timeout));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(cfg.proxy.pool_max_idle_per_host)
        .http2_only(cfg.proxy.upstream_http2);
    builder.build(connector)
}

impl Proxy {
    /// A proxy for `cfg`, sending captures to `queue`.
    pub fn new(
        cfg: &Config,
        names: Arc<ModelNames>,
        metrics: Arc<ProxyMetrics>,
        latency: Arc<LatencyWindows>,
        queue: Queue,
    ) -> Result<Proxy, String> {
        Ok(Proxy {
            client: upstream_client(cfg),
            upstream: cfg.upstream_uri()?,
            upstream_version: if cfg.proxy.upstream_http2 {
                Version::HTTP_2
            } else {
                Version::HTTP_11
            },
            timeout: cfg.proxy.upstream_timeout,
            max_body: cfg.capture.max_body_bytes,
            default_model: cfg.model.name.clone(),
            default_version: cfg.model.version.clone(),
            // Validated by `Config::validate`; an invalid name is no header.
            version_header: cfg
                .model
                .version_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
            sla: cfg.sla.latency,
            names,
            metrics,
            latency,
            queue,
            shadow: None,
        })
    }

    /// Copies sampled inference requests to `shadow` once the primary has answered.
    pub fn with_shadow(mut self, shadow: Option<Arc<Shadow>>) -> Proxy {
        self.shadow = shadow;
        self
    }

    /// Proxies one request. Never fails: upstream problems become 502/504 responses.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<crate::net::Body>,
    ) -> Result<Response<ProxyBody>, Infallible> {
        let started = Instant::now();
        let received_at = SystemTime::now();
        let (mut parts, body) = req.into_parts();

        let path = parts.uri.path().to_string();
        let (path_model, path_version) = model_id::from_path(&path);
        let model = self.names.fold(path_model.unwrap_or(&self.default_model));
        // Counts the request as `canceled` if the client goes away before its answer
        // (hyper drops this future then).
        let mut gone = ClientGone {
            metrics: Some(self.metrics.clone()),
            model: model.clone(),
        };
        // SPEC 10: the path, else the configured header, else `model.version`; folded to
        // at most `model.max_versions` per model.
        let header_version = self
            .version_header
            .as_ref()
            .and_then(|h| parts.headers.get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let version = path_version
            .or(header_version)
            .or(self.default_version.as_deref())
            .map(|v| self.names.fold_version(&model, v).to_string());
        let inference = parts.method == Method::POST || parts.method == Method::PUT;
        let request_encoding = header_string(&parts.headers, &CONTENT_ENCODING);

        let request_id = match parts.headers.get(&REQUEST_ID) {
            Some(v) if !v.is_empty() => v.clone(),
            _ => {
                let id = uuid::Uuid::new_v4().to_string();
                // A UUID is always a valid header value.
                let v = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("invalid"));
                parts.headers.insert(REQUEST_ID, v.clone());
                v
            }
        };

        remove_hop_by_hop(&mut parts.headers);
        // An HTTP/2 client names the host in the `:authority` of the URI, which is about
        // to become the upstream's: keep it for the model server as `Host`, as HTTP/1
        // clients' `Host` is kept.
        if !parts.headers.contains_key(HOST) {
            if let Some(v) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                parts.headers.insert(HOST, v);
            }
        }
        parts.uri = match self.upstream_uri(&parts.uri) {
            Ok(uri) => uri,
            Err(e) => {
                tracing::warn!(error = %e, path = %path, "cannot build upstream URI");
                gone.disarm();
                return Ok(self.local_error(
                    StatusCode::BAD_REQUEST,
                    "bad request URI",
                    Context::new(
                        &self,
                        model,
                        version,
                        request_id,
                        &parts.method,
                        path,
                        received_at,
                        started,
                        inference,
                        None,
                    ),
                ));
            }
        };
        parts.version = self.upstream_version;
        // Sampled when it arrives; the copy leaves once the primary's answer has.
        let shadow = match &self.shadow {
            Some(s) if inference && s.sampled() => Some((
                s.clone(),
                parts.headers.clone(),
                parts.uri.query().map(str::to_string),
            )),
            _ => None,
        };

        // Every request body is watched (to tell a client's failure from the upstream's);
        // only inference bodies are copied.
        let req_tap: SharedTap = Arc::new(Mutex::new(Tap::new(if inference {
            self.max_body
        } else {
            0
        })));
        let method = parts.method.clone();
        let upstream_req = Request::from_parts(parts, RequestTee::new(body, Some(req_tap.clone())));
        let mut ctx = Context::new(
            &self,
            model,
            version,
            request_id.clone(),
            &method,
            path,
            received_at,
            started,
            inference,
            Some(req_tap.clone()),
        );
        ctx.request_encoding = request_encoding;
        ctx.shadow = shadow.map(|(shadow, headers, query)| ShadowRequest {
            shadow,
            headers,
            query,
        });

        let sent = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.client.request(upstream_req)).await;
        gone.disarm();
        let client_failed = req_tap.lock().map(|t| t.failed).unwrap_or(false);
        match result {
            Ok(Ok(resp)) => {
                let upstream_elapsed = sent.elapsed();
                let (mut parts, body) = resp.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                parts.headers.insert(REQUEST_ID, request_id);
                let content_type = header_string(&parts.headers, &CONTENT_TYPE);
                ctx.response_encoding = header_string(&parts.headers, &CONTENT_ENCODING);
                let streaming = content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("text/event-stream"));
                let finish = ctx.finisher(
                    Some(parts.status.as_u16()),
                    Some(upstream_elapsed),
                    content_type,
                );
                // Streams are forwarded as they come but never captured: they are not one
                // JSON document, and could be endless.
                let copy = inference && !streaming;
                let body = ResponseTee::new(body, self.max_body, copy, Box::new(finish));
                Ok(Response::from_parts(parts, Either::Left(body)))
            }
            Ok(Err(e)) if client_failed => {
                // The client stopped sending its body (aborted, or silent past
                // `server.body_timeout`): not the upstream's fault.
                ctx.canceled = true;
                if crate::net::is_body_timeout(&e) {
                    tracing::debug!(path = %ctx.path, "request body timed out");
                    Ok(
                        self.local_error(
                            StatusCode::REQUEST_TIMEOUT,
                            "request body timed out",
                            ctx,
                        ),
                    )
                } else {
                    tracing::debug!(error = %e, path = %ctx.path, "client aborted its request body");
                    Ok(self.local_error(StatusCode::BAD_REQUEST, "request body aborted", ctx))
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, upstream = %self.upstream, "upstream request failed");
                Ok(self.local_error(StatusCode::BAD_GATEWAY, "upstream unreachable", ctx))
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.timeout, upstream = %self.upstream, "upstream timed out");
                Ok(self.local_error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out", ctx))
            }
        }
    }

    fn upstream_uri(&self, original: &Uri) -> Result<Uri, http::Error> {
        let prefix = self.upstream.path().trim_end_matches('/');
        let pq = original
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let mut builder = Uri::builder();
        if let Some(s) = self.upstream.scheme() {
            builder = builder.scheme(s.clone());
        }
        if let Some(a) = self.upstream.authority() {
            builder = builder.authority(a.clone());
        }
        builder.path_and_query(format!("{prefix}{pq}")).build()
    }

    fn local_error(&self, status: StatusCode, message: &str, ctx: Context) -> Response<ProxyBody> {
        let body = serde_json::json!({ "error": message, "status": status.as_u16() }).to_string();
        let request_id = ctx.request_id.clone();
        let finish = ctx.finisher(None, None, None);
        let body = ResponseTee::new(Full::new(Bytes::from(body)), 0, false, Box::new(finish));
        let mut resp = Response::new(Either::Right(body));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp.headers_mut().insert(REQUEST_ID, request_id);
        resp
    }
}

/// What the finaliser needs to know about a request.
struct Context {
    metrics: Arc<ProxyMetrics>,
    latency: Arc<LatencyWindows>,
    queue: Queue,
    sla: Duration,
    model: Arc<str>,
    version: Option<String>,
    request_id: HeaderValue,
    method: Method,
    path: String,
    received_at: SystemTime,
    started: Instant,
    inference: bool,
    req_tap: Option<SharedTap>,
    request_encoding: Option<String>,
    response_encoding: Option<String>,
    /// The client went away or stopped sending before the exchange ended.
    canceled: bool,
    /// Set when the request is sampled for the shadow.
    shadow: Option<ShadowRequest>,
}

/// What a sampled request keeps for its shadow copy.
struct ShadowRequest {
    shadow: Arc<Shadow>,
    headers: HeaderMap,
    query: Option<String>,
}

/// Counts a request as `code="canceled"` when dropped armed: the client went away
/// before the proxy had an answer for it.
struct ClientGone {
    metrics: Option<Arc<ProxyMetrics>>,
    model: Arc<str>,
}

impl ClientGone {
    /// The request reached an outcome that is counted elsewhere.
    fn disarm(&mut self) {
        self.metrics = None;
    }
}

impl Drop for ClientGone {
    fn drop(&mut self) {
        if let Some(m) = self.metrics.take() {
            m.requests
                .get_or_create(&ModelCodeLabels {
                    model: self.model.to_string(),
                    code: CANCELED,
                })
                .inc();
        }
    }
}

/// `mlmon_requests_total{code}` of requests whose client went away first.
pub const CANCELED: &str = "canceled";

fn header_string(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    fn new(
        proxy: &Proxy,
        model: Arc<str>,
        version: Option<String>,
        request_id: HeaderValue,
        method: &Method,
        path: String,
        received_at: SystemTime,
        started: Instant,
        inference: bool,
        req_tap: Option<SharedTap>,
    ) -> Context {
        Context {
            metrics: proxy.metrics.clone(),
            latency: proxy.latency.clone(),
            queue: proxy.queue.clone(),
            sla: proxy.sla,
            model,
            version,
            request_id,
            method: method.clone(),
            path,
            received_at,
            started,
            inference,
            req_tap,
            request_encoding: None,
            response_encoding: None,
            canceled: false,
            shadow: None,
        }
    }

    fn finisher(
        self,
        status: Option<u16>,
        upstream: Option<Duration>,
        content_type: Option<String>,
    ) -> Finisher {
        Finisher {
            ctx: self,
            status,
            upstream,
            content_type,
        }
    }
}

/// Records metrics and hands the capture to the queue when the response body ends.
struct Finisher {
    ctx: Context,
    status: Option<u16>,
    upstream: Option<Duration>,
    content_type: Option<String>,
}

impl Finish for Finisher {
    fn finish(self: Box<Self>, mut response: Tap, ended: bool) {
        let Finisher {
            mut ctx,
            status,
            upstream,
            content_type,
        } = *self;
        let elapsed = ctx.started.elapsed();
        let m = &ctx.metrics;
        let model = ModelLabels {
            model: ctx.model.to_string(),
        };
        // Dropped before its end without an upstream error: the client went away.
        let canceled = ctx.canceled || (!ended && !response.failed);
        // A sampled request is copied below, or counted as skipped here.
        let mut shadow = ctx.shadow.take().map(|r| Skip::new(r, &ctx.model));
        m.requests
            .get_or_create(&ModelCodeLabels {
                model: model.model.clone(),
                code: if canceled {
                    CANCELED
                } else {
                    status_class(status)
                },
            })
            .inc();
        if !ctx.inference || ctx.canceled {
            return;
        }
        m.request_duration
            .get_or_create(&model)
            .observe(elapsed.as_secs_f64());
        if let Some(up) = upstream {
            m.upstream_duration
                .get_or_create(&model)
                .observe(up.as_secs_f64());
        }
        if elapsed > ctx.sla {
            m.sla_violations.get_or_create(&model).inc();
        }
        let failed = status.is_none_or(|s| s >= 500);
        ctx.latency.record_outcome(&model.model, elapsed, failed);
        if let Some(v) = &ctx.version {
            ctx.latency.record_version(&model.model, v, elapsed, failed);
        }

        // Only exchanges the model answered are analysed.
        let Some(status) = status else { return };
        let mut too_large = response.overflowed;
        let request_body = ctx.req_tap.as_ref().and_then(|t| {
            let mut t = t.lock().ok()?;
            too_large |= t.overflowed;
            t.take_complete()
        });
        if too_large {
            m.capture_dropped
                .get_or_create(&ReasonLabels {
                    reason: "too_large",
                })
                .inc();
            return;
        }
        let Some(request_body) = request_body else {
            m.capture_dropped
                .get_or_create(&ReasonLabels {
                    reason: "body_error",
                })
                .inc();
            return;
        };
        let response_body = response.take_complete();
        if let Some(copy) = shadow.take() {
            copy.send(
                &ctx.path,
                &request_body,
                status,
                response_body.as_ref().map(|body| Answer {
                    body: body.clone(),
                    content_type: content_type.clone(),
                    content_encoding: ctx.response_encoding.clone(),
                }),
            );
        }
        let record = CapturedExchange {
            model: model.model,
            version: ctx.version,
            request_id: ctx.request_id.to_str().unwrap_or_default().to_string(),
            method: ctx.method,
            path: ctx.path,
            status: Some(status),
            received_at: ctx.received_at,
            duration: elapsed,
            upstream_duration: upstream,
            request_body: Some(request_body),
            response_body,
            response_content_type: content_type,
            request_content_encoding: ctx.request_encoding,
            response_content_encoding: ctx.response_encoding,
        };
        if ctx
            .queue
            .try_send(Record::Captured(Box::new(record)))
            .is_err()
        {
            m.capture_dropped
                .get_or_create(&ReasonLabels {
                    reason: "queue_full",
                })
                .inc();
        }
    }
}

/// A sampled request on its way to the shadow: counted as `skipped` when dropped unsent
/// (the client went away, the body was not captured, the upstream failed).
struct Skip {
    request: Option<ShadowRequest>,
    model: Arc<str>,
}

impl Skip {
    fn new(request: ShadowRequest, model: &Arc<str>) -> Skip {
        Skip {
            request: Some(request),
            model: model.clone(),
        }
    }

    /// Offers the copy (after the primary's answer has been sent).
    fn send(mut self, path: &str, body: &Bytes, status: u16, primary: Option<Answer>) {
        if let Some(request) = self.request.take() {
            request.shadow.offer(ShadowCopy {
                model: self.model.to_string(),
                path: path.to_string(),
                query: request.query,
                headers: request.headers,
                body: body.clone(),
                primary_status: status,
                primary,
            });
        }
    }
}

impl Drop for Skip {
    fn drop(&mut self) {
        if let Some(r) = self.request.take() {
            r.shadow.skip(&self.model);
        }
    }
}

/// Removes the hop-by-hop headers of RFC 9110 section 7.6.1, and those the `Connection`
/// header names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| HeaderName::from_bytes(s.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The hop-by-hop headers of RFC 9110 section 7.6.1 (and the legacy `keep-alive`,
/// `proxy-connection`), as names built once rather than parsed from text per request.
static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-model-header", HeaderValue::from_static("kept"));
        h.insert("authorization", HeaderValue::from_static("Bearer t"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2);
        assert!(h.contains_key("x-model-header"));
        assert!(h.contains_key("authorization"));
    }
}
