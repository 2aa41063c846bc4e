//! The analysis side of the capture queue: one thread drains it, parses payloads (off the
//! request path), feeds live baseline captures and every analysis. Nothing here can slow
//! the proxy or the admin API: they only ever `try_send` into the queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

use super::{LoggedRow, Receiver, Record};
use crate::analysis::{Analyses, Exchange, RawRequest};
use crate::baseline::Registry;
use crate::metrics::labels::{ModelLabels, ModelReasonLabels};
use crate::metrics::ProxyMetrics;
use crate::payload::{self, PayloadConfig};
use crate::record::{CapturedExchange, ParsedExchange};

/// How long the analysis thread waits for more captures after draining the queue, before
/// it blocks (see [`Worker::run_blocking`]). At most this much queue (about 150 captures at
/// 30 000 requests per second) builds up while it waits.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// Parses records and feeds the analyses.
pub struct Worker {
    payload: PayloadConfig,
    /// Largest inflated size of a compressed body.
    max_decoded: usize,
    /// Models whose error counters are initialised.
    initialised: dashmap::DashSet<String>,
    /// `limits.max_name_bytes`: longer input names are refused.
    max_name_bytes: usize,
    metrics: Arc<ProxyMetrics>,
    baselines: Arc<Registry>,
    analyses: Analyses,
    /// Exchanges analysed since start (tests and the status API wait on it).
    analysed: AtomicU64,
    analysed_tx: watch::Sender<u64>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("payload", &self.payload)
            .field("analyses", &self.analyses)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker parsing with `payload` settings into `analyses`, following `baselines`.
    pub fn new(
        payload: PayloadConfig,
        metrics: Arc<ProxyMetrics>,
        baselines: Arc<Registry>,
        analyses: Analyses,
    ) -> Self {
        Worker {
            payload,
            max_decoded: MAX_DECODED_BYTES,
            initialised: dashmap::DashSet::new(),
            max_name_bytes: crate::config::LimitsConfig::default().max_name_bytes,
            metrics,
            baselines,
            analyses,
            analysed: AtomicU64::new(0),
            analysed_tx: watch::channel(0).0,
        }
    }

    /// Refuses input names longer than `max` bytes (`limits.max_name_bytes`).
    pub fn with_max_name_bytes(mut self, max: usize) -> Self {
        self.max_name_bytes = max;
        self
    }

    /// Drains the queue until every sender is gone.
    ///
    /// Blocking: run it on a thread of its own (`spawn_blocking`), so parsing and analysis
    /// never occupy a runtime worker that proxies requests or answers the API.
    ///
    /// Wake-ups are batched: once the queue is empty the thread lingers [`LINGER`] before
    /// looking again, and blocks only when nothing arrived in that time. Waking a thread
    /// (and the futex call on the proxy's side that wakes it) costs more than analysing a
    /// small exchange, so at a steady 1 000 requests per second this wakes the thread about
    /// 200 times a second instead of 1 000; an idle sidecar still sleeps until a capture.
    pub fn run_blocking(self: Arc<Self>, mut rx: Receiver) {
        while let Some(record) = rx.blocking_recv() {
            self.process(record);
            loop {
                while let Some(record) = rx.try_recv() {
                    self.process(record);
                }
                std::thread::sleep(LINGER);
                if rx.is_empty() {
                    break;
                }
            }
        }
    }

    /// Exchanges analysed since start (every captured exchange counts, whether it parsed or
    /// not; a logged record counts one per row).
    pub fn analysed(&self) -> u64 {
        self.analysed.load(Ordering::Acquire)
    }

    /// Waits until at least `n` exchanges have been analysed since start.
    pub async fn wait_analysed(&self, n: u64) {
        let mut rx = self.analysed_tx.subscribe();
        let _ = rx.wait_for(|&v| v >= n).await;
    }

    fn done(&self, n: u64) {
        let total = self.analysed.fetch_add(n, Ordering::AcqRel) + n;
        self.analysed_tx.send_replace(total);
    }

    /// Handles one record.
    pub fn process(&self, record: Record) {
        let n = record.exchanges();
        match record {
            Record::Captured(ex) => self.captured(&ex),
            Record::Job(job) => job.run(),
            Record::Logged {
                model,
                version,
                rows,
                ..
            } => {
                for LoggedRow {
                    request_id,
                    received_at,
                    parsed,
                } in &rows
                {
                    self.ingest(
                        &model,
                        version.as_deref(),
                        request_id,
                        *received_at,
                        parsed,
                        None,
                    );
                }
            }
        }
        self.done(n);
    }

    fn captured(&self, ex: &CapturedExchange) {
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
        let order = self.baselines.order(&ex.model);
        match payload::parse_lenient(&self.payload, &ex.path, request, response, &order) {
            Ok(lenient) => {
                if let Some(e) = &lenient.response_error {
                    self.count_error(&ex.model, e);
                }
                self.ingest(
                    &ex.model,
                    ex.version.as_deref(),
                    &ex.request_id,
                    ex.received_at,
                    &lenient.exchange,
                    Some(RawRequest {
                        path: &ex.path,
                        body: request,
                        status: ex.status,
                        duration: ex.duration,
                    }),
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

    /// Counts a payload error of `model` (`mlmon_payload_errors_total{reason}`).
    pub fn count_reason(&self, model: &str, reason: &'static str) {
        self.metrics
            .payload_errors
            .get_or_create(&ModelReasonLabels {
                model: model.to_string(),
                reason,
            })
            .inc();
    }

    /// Counts predictions, feeds a live baseline capture and hands one parsed exchange to
    /// every analysis.
    fn ingest(
        &self,
        model: &str,
        version: Option<&str>,
        request_id: &str,
        received_at: SystemTime,
        parsed: &ParsedExchange,
        request: Option<RawRequest<'_>>,
    ) {
        let rows = parsed.predictions.len().max(parsed.rows.len());
        if rows > 0 {
            let labels = ModelLabels {
                model: model.to_string(),
            };
            self.metrics
                .predictions
                .get_or_create(&labels)
                .inc_by(rows as u64);
            let ts = received_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let g = self.metrics.last_prediction.get_or_create(&labels);
            if ts > g.get() {
                g.set(ts);
            }
        }
        // A large batch is analysed through an even sample of at most ROW_BUDGET rows, so
        // one 100 000-row body costs what 2 048 rows cost and never holds up the captures
        // of other models waiting behind it in the queue.
        let sampled = sample_rows(parsed, ROW_BUDGET);
        if sampled.is_some() {
            self.metrics
                .capture_dropped
                .get_or_create(&crate::metrics::labels::ReasonLabels {
                    reason: "row_budget",
                })
                .inc();
        }
        let parsed = sampled.as_ref().unwrap_or(parsed);
        // A model without a baseline may be capturing one from its first rows; those rows
        // (the one completing the capture included) are not compared with themselves.
        let baseline = self.baselines.get(model);
        // With a baseline only its inputs are analysed; over-long names never are.
        let (parsed, refused) = super::admit::admit(
            parsed,
            baseline.as_ref().map(|b| b.order.as_slice()),
            self.max_name_bytes,
        );
        let parsed = &*parsed;
        if refused.unknown > 0 {
            self.metrics
                .unknown_features
                .get_or_create(&ModelLabels {
                    model: model.to_string(),
                })
                .inc_by(refused.unknown);
        }
        if refused.too_long > 0 {
            self.count_reason(model, "name_too_long");
        }
        if baseline.is_none() {
            self.baselines.capture(model, version, parsed);
        }
        self.analyses.observe(&Exchange {
            model,
            version,
            request_id,
            received_at,
            now: Instant::now(),
            parsed,
            request,
            baseline: baseline.as_ref(),
        });
    }
}

/// Most rows of one exchange fed to the analyses; a larger batch is analysed through an
/// even sample of this many rows (counted in
/// `mlmon_capture_dropped_total{reason="row_budget"}`, one per sampled exchange;
/// `mlmon_predictions_total` still counts every row).
pub const ROW_BUDGET: usize = 2_048;

/// An even sample of `budget` rows of `parsed` (row `i * n / budget` for `i < budget`,
/// with its prediction when rows and predictions pair up), or `None` when it holds no more
/// than `budget` rows or predictions.
pub fn sample_rows(parsed: &ParsedExchange, budget: usize) -> Option<ParsedExchange> {
    let n = parsed.rows.len().max(parsed.predictions.len());
    if n <= budget || budget == 0 {
        return None;
    }
    let pick = |i: usize| i * n / budget;
    let take = |len: usize| -> Vec<usize> {
        // Rows and predictions are sampled at the same positions when they pair up; a
        // side of another length (no predictions, say) is sampled on its own.
        if len == n {
            (0..budget).map(pick).collect()
        } else if len > budget {
            (0..budget).map(|i| i * len / budget).collect()
        } else {
            (0..len).collect()
        }
    };
    Some(ParsedExchange {
        rows: take(parsed.rows.len())
            .into_iter()
            .filter_map(|i| parsed.rows.get(i).cloned())
            .collect(),
        predictions: take(parsed.predictions.len())
            .into_iter()
            .filter_map(|i| parsed.predictions.get(i).cloned())
            .collect(),
    })
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
    fn large_batches_are_sampled_evenly_and_pairs_stay_together() {
        use crate::record::{FeatureValue, Prediction, Row};
        let row = |i: usize| Row {
            values: vec![("x".into(), FeatureValue::Number(i as f64))],
        };
        let prediction = |i: usize| Prediction {
            value: FeatureValue::Number(i as f64),
            probabilities: None,
        };
        let parsed = ParsedExchange {
            rows: (0..10_000).map(row).collect(),
            predictions: (0..10_000).map(prediction).collect(),
        };
        assert!(sample_rows(&parsed, 10_000).is_none(), "within the budget");
        let s = sample_rows(&parsed, 100).unwrap();
        assert_eq!((s.rows.len(), s.predictions.len()), (100, 100));
        for (r, p) in s.rows.iter().zip(&s.predictions) {
            assert_eq!(r.values[0].1, p.value, "a row keeps its own prediction");
        }
        // Evenly spread over the whole batch, not its head.
        let xs: Vec<f64> = s
            .rows
            .iter()
            .filter_map(|r| r.values[0].1.as_f64())
            .collect();
        assert_eq!((xs[0], xs[1], xs[99]), (0.0, 100.0, 9_900.0));
        // Rows without predictions are sampled on their own.
        let rows_only = ParsedExchange {
            rows: parsed.rows.clone(),
            predictions: Vec::new(),
        };
        let s = sample_rows(&rows_only, 100).unwrap();
        assert_eq!((s.rows.len(), s.predictions.len()), (100, 0));
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
