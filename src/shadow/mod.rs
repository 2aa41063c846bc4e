//! Shadow traffic (SPEC section 10, docs/shadow.md): a copy of sampled inference requests
//! goes to a candidate model once the primary has answered; the client only ever sees the
//! primary's answer and never waits for the shadow.
//!
//! ```text
//! proxy ── response body ended ──▶ Shadow::offer (try_send; full → skipped)
//!                                      │ bounded queue (shadow.queue)
//!                                      ▼
//!                                  Runner: ≤ shadow.concurrency requests in flight,
//!                                  each within shadow.timeout ─▶ ok / error / timeout
//!                                      │ both answered 2xx
//!                                      ▼ ingest::Record::Job (try_send)
//!                                  analysis thread: parse both with the payload adapters,
//!                                  compare row by row ([`compare::Comparison`])
//! ```
//!
//! Nothing here runs on the request's own future: the proxy's finaliser hands over
//! reference-counted bodies with `try_send` and returns. Failures, timeouts and slowness of
//! the shadow are counted in `mlmon_shadow_requests_total` and
//! `mlmon_shadow_duration_seconds`, never seen by the client.

pub mod compare;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, HOST};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::config::Config;
use crate::ingest::{Record, WeakQueue};
use crate::metrics::labels::{ModelLabels, ReasonLabels};
use crate::metrics::shadow::ShadowMetrics;
use crate::metrics::ProxyMetrics;
use crate::shutdown::Shutdown;
pub use compare::{Answer, CompareJob, Comparison};

/// Header set on every copy, so the candidate (and its logs) can tell shadow traffic.
pub const SHADOW_HEADER: HeaderName = HeaderName::from_static("x-mlmon-shadow");

/// What the proxy hands over for one sampled request, once the primary has answered.
#[derive(Debug)]
pub struct ShadowCopy {
    /// Model (folded like every `model` label).
    pub model: String,
    /// The client's request path (no query), to parse the primary's exchange with.
    pub path: String,
    /// The client's query, kept on the copy.
    pub query: Option<String>,
    /// The request headers as forwarded to the primary (hop-by-hop ones removed).
    pub headers: HeaderMap,
    /// The request body, as the client sent it.
    pub body: Bytes,
    /// The primary's answer: status, body (when captured), content type and encoding.
    pub primary_status: u16,
    /// The primary's captured response body (`None` when not captured).
    pub primary: Option<Answer>,
}

impl ShadowCopy {
    /// Approximate memory held while queued.
    fn bytes(&self) -> usize {
        self.body.len() + self.primary.as_ref().map_or(0, |a| a.body.len()) + 512
    }
}

/// Decides which requests are copied: every request whose index `n` moves
/// `floor(n × sample)` on, so exactly `sample` of them (to one request), spread evenly and
/// without a random draw on the request path.
#[derive(Debug)]
pub struct Sampler {
    sample: f64,
    seen: AtomicU64,
}

impl Sampler {
    /// A sampler copying `sample` (0..1) of the requests.
    pub fn new(sample: f64) -> Sampler {
        Sampler {
            sample: sample.clamp(0.0, 1.0),
            seen: AtomicU64::new(0),
        }
    }

    /// Whether the next request is copied.
    pub fn next(&self) -> bool {
        if self.sample >= 1.0 {
            return true;
        }
        if self.sample <= 0.0 {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.sample).floor() > (n * self.sample).floor()
    }
}

/// The proxy's handle: samples requests and offers copies to the bounded shadow queue.
#[derive(Debug)]
pub struct Shadow {
    tx: mpsc::Sender<ShadowCopy>,
    /// Bytes held by copies queued or in flight, and their bound.
    budget: Arc<Budget>,
    sampler: Sampler,
    metrics: Arc<ShadowMetrics>,
    initialised: dashmap::DashSet<String>,
}

impl Shadow {
    /// Whether this inference request is to be copied (decided when it arrives).
    pub fn sampled(&self) -> bool {
        self.sampler.next()
    }

    /// Offers a copy; never waits. A full queue counts the copy as `skipped`.
    pub fn offer(&self, copy: ShadowCopy) {
        self.init(&copy.model);
        let size = copy.bytes();
        if !self.budget.take(size) {
            self.metrics.count(&copy.model, "skipped");
            return;
        }
        if let Err(e) = self.tx.try_send(copy) {
            let copy = match e {
                mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
            };
            self.budget.give(size);
            self.metrics.count(&copy.model, "skipped");
        }
    }

    /// Counts a sampled request that could not be copied (body not captured, primary
    /// failed, client gone) as `skipped`.
    pub fn skip(&self, model: &str) {
        self.init(model);
        self.metrics.count(model, "skipped");
    }

    fn init(&self, model: &str) {
        if !self.initialised.contains(model) && self.initialised.insert(model.to_string()) {
            self.metrics.init(model);
        }
    }
}

/// Bytes of copies queued or in flight (`shadow.max_queue_bytes`).
#[derive(Debug)]
struct Budget {
    held: AtomicUsize,
    max: usize,
}

impl Budget {
    fn take(&self, n: usize) -> bool {
        let before = self.held.fetch_add(n, Ordering::AcqRel);
        if before + n > self.max {
            self.held.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn give(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The sending side of shadow traffic: drains the shadow queue with at most
/// `shadow.concurrency` requests in flight. Start it with [`Runner::run`].
#[derive(Debug)]
pub struct Runner {
    rx: mpsc::Receiver<ShadowCopy>,
    concurrency: usize,
    budget: Arc<Budget>,
    sender: Arc<Sender>,
}

/// What one in-flight copy needs.
#[derive(Debug)]
struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
    base: Uri,
    path: Option<String>,
    timeout: Duration,
    max_body: usize,
    metrics: Arc<ShadowMetrics>,
    proxy_metrics: Arc<ProxyMetrics>,
    comparison: Arc<Comparison>,
    queue: WeakQueue,
}

/// Shadow traffic for `cfg`: the proxy's handle and the runner, or `None` when
/// `shadow.upstream` is unset. Comparisons go to `queue`, the analysis side.
pub fn build(
    cfg: &Config,
    metrics: Arc<ShadowMetrics>,
    proxy_metrics: Arc<ProxyMetrics>,
    comparison: Arc<Comparison>,
    queue: WeakQueue,
) -> Result<Option<(Arc<Shadow>, Runner)>, String> {
    let Some(base) = cfg.shadow.uri().map_err(|i| i.message)? else {
        return Ok(None);
    };
    let (tx, rx) = mpsc::channel(cfg.shadow.queue.max(1));
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(cfg.proxy.connect_timeout.min(cfg.shadow.timeout)));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(cfg.shadow.concurrency)
        .build(connector);
    let budget = Arc::new(Budget {
        held: AtomicUsize::new(0),
        max: cfg.shadow.max_queue_bytes,
    });
    let shadow = Arc::new(Shadow {
        tx,
        budget: budget.clone(),
        sampler: Sampler::new(cfg.shadow.sample),
        metrics: metrics.clone(),
        initialised: dashmap::DashSet::new(),
    });
    let runner = Runner {
        rx,
        concurrency: cfg.shadow.concurrency.max(1),
        budget,
        sender: Arc::new(Sender {
            client,
            base,
            path: cfg.shadow.path.clone(),
            timeout: cfg.shadow.timeout,
            max_body: cfg.capture.max_body_bytes,
            metrics,
            proxy_metrics,
            comparison,
            queue,
        }),
    };
    Ok(Some((shadow, runner)))
}

/// How one copy ended.
enum Outcome {
    /// A 2xx answer read in full.
    Ok(Answer),
    /// Unreachable, a non-2xx status or a body error.
    Error,
    /// Past `shadow.timeout`.
    Timeout,
}

impl Runner {
    /// Sends queued copies until shutdown (or until the proxy's handle is gone). Copies in
    /// flight at shutdown end within `shadow.timeout`, or with the runtime.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let slots = Arc::new(Semaphore::new(self.concurrency));
        loop {
            // A slot first, then a copy: while every slot is busy, copies wait in the
            // bounded queue, and past it the proxy's offer counts them as skipped.
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = shutdown.wait() => break,
            };
            let copy = tokio::select! {
                c = self.rx.recv() => match c {
                    Some(c) => c,
                    None => break,
                },
                _ = shutdown.wait() => break,
            };
            let sender = self.sender.clone();
            let budget = self.budget.clone();
            tokio::spawn(async move {
                let size = copy.bytes();
                sender.send(copy).await;
                budget.give(size);
                drop(permit);
            });
        }
    }
}

impl Sender {
    async fn send(&self, copy: ShadowCopy) {
        let path = self.path.as_deref().unwrap_or(&copy.path).to_string();
        let req = match self.request(&copy, &path) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, path = %path, "cannot build the shadow request");
                self.metrics.count(&copy.model, "error");
                return;
            }
        };
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, self.exchange(req)).await {
            Ok(o) => o,
            Err(_) => Outcome::Timeout,
        };
        let labels = ModelLabels {
            model: copy.model.clone(),
        };
        let answer = match outcome {
            Outcome::Ok(answer) => {
                self.metrics
                    .duration
                    .get_or_create(&labels)
                    .observe(started.elapsed().as_secs_f64());
                self.metrics.count(&copy.model, "ok");
                answer
            }
            Outcome::Error => {
                self.metrics
                    .duration
                    .get_or_create(&labels)
                    .observe(started.elapsed().as_secs_f64());
                self.metrics.count(&copy.model, "error");
                return;
            }
            Outcome::Timeout => {
                tracing::debug!(model = %copy.model, timeout = ?self.timeout, "shadow request timed out");
                self.metrics.count(&copy.model, "timeout");
                return;
            }
        };
        // Compared on the analysis thread, when the primary answered 2xx with a body.
        let Some(primary) = copy.primary else { return };
        if !(200..300).contains(&copy.primary_status) {
            return;
        }
        let job = CompareJob {
            comparison: self.comparison.clone(),
            model: copy.model,
            primary_path: copy.path,
            shadow_path: path,
            request: copy.body,
            request_encoding: copy
                .headers
                .get(CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            primary,
            shadow: answer,
        };
        if self.queue.try_send(Record::Job(Box::new(job))).is_err() {
            self.proxy_metrics
                .capture_dropped
                .get_or_create(&ReasonLabels {
                    reason: "queue_full",
                })
                .inc();
        }
    }

    fn request(&self, copy: &ShadowCopy, path: &str) -> Result<Request<Full<Bytes>>, http::Error> {
        let prefix = self.base.path().trim_end_matches('/');
        let pq = match &copy.query {
            Some(q) => format!("{prefix}{path}?{q}"),
            None => format!("{prefix}{path}"),
        };
        let mut builder = Uri::builder().path_and_query(pq);
        if let Some(s) = self.base.scheme() {
            builder = builder.scheme(s.clone());
        }
        if let Some(a) = self.base.authority() {
            builder = builder.authority(a.clone());
        }
        let uri = builder.build()?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(Full::new(copy.body.clone()))?;
        *req.headers_mut() = copy.headers.clone();
        // Length comes from the body; the host is the candidate's.
        req.headers_mut().remove(http::header::CONTENT_LENGTH);
        if let Some(a) = self.base.authority() {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                req.headers_mut().insert(HOST, v);
            }
        }
        req.headers_mut()
            .insert(SHADOW_HEADER, HeaderValue::from_static("1"));
        Ok(req)
    }

    async fn exchange(&self, req: Request<Full<Bytes>>) -> Outcome {
        let resp = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "shadow upstream failed");
                return Outcome::Error;
            }
        };
        let (parts, body) = resp.into_parts();
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                tracing::debug!(error = %e, "shadow response body failed or too large");
                return Outcome::Error;
            }
        };
        if !parts.status.is_success() {
            return Outcome::Error;
        }
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        Outcome::Ok(Answer {
            body,
            content_type: header(CONTENT_TYPE),
            content_encoding: header(CONTENT_ENCODING),
        })
    }
}
