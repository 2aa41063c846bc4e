//! The consumer side of the capture queue: parses payloads off the request path and feeds
//! the per-model analyses. One task drains the queue; nothing here can slow the proxy.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::metrics::labels::{ModelLabels, ModelReasonLabels};
use crate::metrics::ProxyMetrics;
use crate::payload::{self, PayloadConfig};
use crate::record::{CapturedExchange, ParsedExchange};

/// Something that consumes parsed exchanges (the analyses).
pub trait Sink: Send + Sync + 'static {
    /// Feature order known for `model` (from its baseline), to name unnamed columns.
    fn feature_order(&self, model: &str) -> Arc<Vec<String>>;
    /// One parsed exchange of `model`.
    fn observe(&self, model: &str, exchange: &Observation<'_>);
    /// The proxied request behind the next [`Sink::observe`] call: its path and (decoded)
    /// body, for sinks that re-send rows in the model's wire format. Ignored by default.
    fn observe_request(&self, _model: &str, _path: &str, _request: &[u8]) {}
}

/// A parsed exchange with its context, as given to a [`Sink`].
#[derive(Debug)]
pub struct Observation<'a> {
    /// Model version when known.
    pub version: Option<&'a str>,
    /// Request id (to join ground truth later).
    pub request_id: &'a str,
    /// When the request arrived.
    pub received_at: SystemTime,
    /// Rows and predictions.
    pub parsed: &'a ParsedExchange,
}

/// Several sinks fed in order: the analyses of one sidecar (drift first, whose baselines
/// name the columns).
pub struct FanOut(pub Vec<Arc<dyn Sink>>);

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FanOut").field(&self.0.len()).finish()
    }
}

impl Sink for FanOut {
    fn feature_order(&self, model: &str) -> Arc<Vec<String>> {
        self.0
            .iter()
            .map(|s| s.feature_order(model))
            .find(|o| !o.is_empty())
            .unwrap_or_default()
    }

    fn observe(&self, model: &str, exchange: &Observation<'_>) {
        for s in &self.0 {
            s.observe(model, exchange);
        }
    }

    fn observe_request(&self, model: &str, path: &str, request: &[u8]) {
        for s in &self.0 {
            s.observe_request(model, path, request);
        }
    }
}

/// A sink that does nothing (no analyses configured).
#[derive(Debug, Default)]
pub struct NoSink;

impl Sink for NoSink {
    fn feature_order(&self, _model: &str) -> Arc<Vec<String>> {
        Arc::default()
    }
    fn observe(&self, _model: &str, _exchange: &Observation<'_>) {}
}

/// Parses captured exchanges and feeds a sink.
pub struct Pipeline {
    payload: PayloadConfig,
    /// Largest inflated size of a compressed body.
    max_decoded: usize,
    /// Models whose error counters are initialised.
    initialised: dashmap::DashSet<String>,
    metrics: Arc<ProxyMetrics>,
    sink: Arc<dyn Sink>,
    /// Exchanges analysed since start ([`Pipeline::analysed`]).
    analysed: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline parsing with `payload` settings into `sink`.
    pub fn new(payload: PayloadConfig, metrics: Arc<ProxyMetrics>, sink: Arc<dyn Sink>) -> Self {
        Pipeline {
            payload,
            max_decoded: MAX_DECODED_BYTES,
            initialised: dashmap::DashSet::new(),
            metrics,
            sink,
            analysed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Exchanges analysed since start: every captured exchange once [`Pipeline::process`]
    /// is done with it (whatever its outcome), every [`Pipeline::ingest`] call.
    pub fn analysed(&self) -> u64 {
        *self.analysed.borrow()
    }

    /// Waits until at least `n` exchanges have been analysed since start.
    pub async fn wait_analysed(&self, n: u64) {
        let mut rx = self.analysed.subscribe();
        // The sender lives in `self`: `wait_for` cannot see it closed while we borrow it.
        let _ = rx.wait_for(|&done| done >= n).await;
    }

    fn count_analysed(&self) {
        self.analysed.send_modify(|done| *done += 1);
    }

    /// Drains the queue until every sender is gone.
    ///
    /// Blocking: run it on a thread of its own (`spawn_blocking`), so parsing and analysis
    /// never occupy a runtime worker that proxies requests. `queued_bytes` is the capture
    /// queue's byte budget, released as each exchange is done.
    pub fn run_blocking(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<CapturedExchange>,
        queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    ) {
        while let Some(ex) = rx.blocking_recv() {
            self.process(&ex);
            queued_bytes.fetch_sub(ex.captured_bytes(), std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Handles one captured exchange.
    pub fn process(&self, ex: &CapturedExchange) {
        self.analyse(ex);
        self.count_analysed();
    }

    fn analyse(&self, ex: &CapturedExchange) {
        self.init_counters(&ex.model);
        // Failed requests say nothing about the model's inputs or outputs.
        if !ex.status.is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
        let Some(request) = ex.request_body.as_deref() else {
            return;
        };
        // Bodies are captured as they travel; compressed ones are inflated here, off the
        // request path, within a bound.
        let request = match decode(
            request,
            ex.request_content_encoding.as_deref(),
            self.max_decoded,
        ) {
            Ok(b) => b,
            Err(reason) => return self.count_reason(&ex.model, reason),
        };
        let response_body = match ex.response_body.as_deref() {
            Some(b) if is_json_or_unknown(ex.response_content_type.as_deref()) => {
                match decode(b, ex.response_content_encoding.as_deref(), self.max_decoded) {
                    Ok(b) => Some(b),
                    Err(reason) => {
                        self.count_reason(&ex.model, reason);
                        None
                    }
                }
            }
            _ => None,
        };
        let request = &request[..];
        let response = response_body.as_deref();
        let order = self.sink.feature_order(&ex.model);
        match payload::parse_lenient(&self.payload, &ex.path, request, response, &order) {
            Ok(lenient) => {
                if let Some(e) = &lenient.response_error {
                    self.count_error(&ex.model, e);
                }
                self.sink.observe_request(&ex.model, &ex.path, request);
                self.feed(
                    &ex.model,
                    &Observation {
                        version: ex.version.as_deref(),
                        request_id: &ex.request_id,
                        received_at: ex.received_at,
                        parsed: &lenient.exchange,
                    },
                )
            }
            Err(e) => self.count_error(&ex.model, &e),
        }
    }

    /// Every payload error reason of a model starts at zero, so `rate()` reads 0, not
    /// "no data", until something goes wrong.
    fn init_counters(&self, model: &str) {
        if self.initialised.contains(model) || !self.initialised.insert(model.to_string()) {
            return;
        }
        let reasons = payload::PayloadError::REASONS
            .iter()
            .chain(DECODE_REASONS.iter());
        for reason in reasons {
            let _ = self
                .metrics
                .payload_errors
                .get_or_create(&ModelReasonLabels {
                    model: model.to_string(),
                    reason,
                });
        }
    }

    fn count_error(&self, model: &str, e: &payload::PayloadError) {
        tracing::debug!(model, reason = e.reason(), error = %e, "payload not understood");
        self.count_reason(model, e.reason());
    }

    fn count_reason(&self, model: &str, reason: &'static str) {
        self.metrics
            .payload_errors
            .get_or_create(&ModelReasonLabels {
                model: model.to_string(),
                reason,
            })
            .inc();
    }

    /// Counts predictions and hands an already parsed exchange to the analyses; the
    /// ingestion API uses this for predictions the proxy did not see.
    pub fn ingest(&self, model: &str, obs: &Observation<'_>) {
        self.feed(model, obs);
        self.count_analysed();
    }

    fn feed(&self, model: &str, obs: &Observation<'_>) {
        let rows = obs.parsed.predictions.len().max(obs.parsed.rows.len());
        if rows > 0 {
            let labels = ModelLabels {
                model: model.to_string(),
            };
            self.metrics
                .predictions
                .get_or_create(&labels)
                .inc_by(rows as u64);
            let ts = obs
                .received_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let g = self.metrics.last_prediction.get_or_create(&labels);
            if ts > g.get() {
                g.set(ts);
            }
        }
        self.sink.observe(model, obs);
    }
}

/// Payload error reasons of [`decode`].
pub const DECODE_REASONS: [&str; 3] = [
    "unsupported_encoding",
    "invalid_encoding",
    "too_large_decoded",
];

/// Largest size a compressed body may inflate to (a bound against compression bombs).
pub const MAX_DECODED_BYTES: usize = 16 * 1024 * 1024;

/// Inflates a `gzip`/`deflate` body (`identity` and no encoding pass as they are).
/// Errors are `mlmon_payload_errors_total` reasons.
pub fn decode<'a>(
    body: &'a [u8],
    encoding: Option<&str>,
    max: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, &'static str> {
    use std::io::Read;
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    let mut out = Vec::new();
    let read = match encoding.as_deref() {
        None | Some("") | Some("identity") => return Ok(std::borrow::Cow::Borrowed(body)),
        Some("gzip") | Some("x-gzip") => flate2::read::MultiGzDecoder::new(body)
            .take(max as u64 + 1)
            .read_to_end(&mut out),
        Some("deflate") => {
            // RFC 9110 "deflate" is zlib; some servers send raw deflate.
            let zlib = flate2::read::ZlibDecoder::new(body)
                .take(max as u64 + 1)
                .read_to_end(&mut out);
            if zlib.is_err() {
                out.clear();
                flate2::read::DeflateDecoder::new(body)
                    .take(max as u64 + 1)
                    .read_to_end(&mut out)
            } else {
                zlib
            }
        }
        Some(_) => return Err("unsupported_encoding"),
    };
    match read {
        Ok(_) if out.len() > max => Err("too_large_decoded"),
        Ok(_) => Ok(std::borrow::Cow::Owned(out)),
        Err(_) => Err("invalid_encoding"),
    }
}

fn is_json_or_unknown(content_type: Option<&str>) -> bool {
    match content_type {
        None => true,
        Some(ct) => {
            let ct = ct.to_ascii_lowercase();
            ct.contains("json") || ct.starts_with("text/plain")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_deflate_bodies_are_inflated() {
        let json = br#"{"predictions":[1,0,1]}"#;
        assert_eq!(&decode(&gzip(json), Some("gzip"), 1024).unwrap()[..], json);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).unwrap();
        assert_eq!(
            &decode(&z.finish().unwrap(), Some("deflate"), 1024).unwrap()[..],
            json
        );
        assert_eq!(&decode(json, None, 1024).unwrap()[..], json);
        assert_eq!(&decode(json, Some("identity"), 1024).unwrap()[..], json);
    }

    #[test]
    fn bad_or_huge_encodings_are_reasons_not_panics() {
        assert_eq!(
            decode(b"not gzip", Some("gzip"), 1024).unwrap_err(),
            "invalid_encoding"
        );
        assert_eq!(
            decode(b"x", Some("br"), 1024).unwrap_err(),
            "unsupported_encoding"
        );
        let bomb = gzip(&vec![b' '; 100_000]);
        assert!(bomb.len() < 1000);
        assert_eq!(
            decode(&bomb, Some("gzip"), 10_000).unwrap_err(),
            "too_large_decoded"
        );
    }
}
