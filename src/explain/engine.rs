//! The explain engine: per model a template of the wire format and a ring of recent rows,
//! and the requests it sends to the model server for importances and explanations.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::background::{self, Background};
use super::encode::{EncodeError, Layout, Template};
use super::report::{mean_abs_diff, FeatureImportance, ImportanceReport, Output, OutputPicker};
use super::shap;
use crate::analysis::LiveImportance;
use crate::analysis::{Analysis, Exchange};
use crate::baseline::FeatureType;
use crate::baseline::{Registry, Snapshot};
use crate::config::{Config, ImportanceMethod};
use crate::metrics::explain::{ExplainMetrics, ImportanceLabels, RequestLabels};
use crate::payload;
use crate::record::{FeatureValue, Row};

/// Recent rows kept per model.
pub const RING_ROWS: usize = crate::config::MAX_EXPLAIN_ROWS;
/// Rows copied into a model's ring per [`RING_PERIOD`] at most. Copying every row of busy
/// traffic into a ring of [`RING_ROWS`] only to drop it again a moment later was a fifth of
/// the analysis thread's allocations (issue 13); past this budget the ring holds rows of the
/// last second, which are as recent as a refresh every `explain.interval` can tell apart.
pub const RING_ROWS_PER_PERIOD: usize = RING_ROWS;
/// See [`RING_ROWS_PER_PERIOD`].
pub const RING_PERIOD: Duration = Duration::from_secs(1);
/// How often a model's template is re-learnt from live traffic.
pub const TEMPLATE_REFRESH: Duration = Duration::from_secs(30);
/// Header marking requests mlmon sends to the model server itself.
pub const EXPLAIN_HEADER: &str = "x-mlmon-explain";
/// Largest response body read from the model server.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Most rows one KernelSHAP run (an explanation, or a refresh's rows) may send: bounds the
/// outputs held in memory (about 40 MB) and the load on the model server.
pub const MAX_SHAP_ROWS: usize = 1 << 20;
/// Seed of KernelSHAP's coalition sampling (explanations are reproducible).
const SHAP_SEED: u64 = 0x6d6c_6d6f_6e53;

/// Why an importance or an explanation could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// No proxied request of the model was understood yet, so its wire format is unknown.
    #[error("model {model:?}: no request with predictions seen yet, its wire format is unknown")]
    NoTemplate {
        /// Model name.
        model: String,
    },
    /// The model has no baseline (occlusion needs reference values).
    #[error("model {model:?} has no baseline")]
    NoBaseline {
        /// Model name.
        model: String,
    },
    /// Too few recent rows for permutation importance.
    #[error("model {model:?}: {rows} recent rows, explain.min_rows is {min}")]
    NotEnoughRows {
        /// Model name.
        model: String,
        /// Rows available.
        rows: usize,
        /// `explain.min_rows`.
        min: usize,
    },
    /// The row to explain is not usable.
    #[error("{0}")]
    BadRow(String),
    /// Rows cannot be written in the model's format.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The model server could not be reached or timed out.
    #[error("model server request to {url} failed: {detail}")]
    Upstream {
        /// Request URL.
        url: String,
        /// What failed.
        detail: String,
        /// Whether it was `explain.timeout` running out.
        timeout: bool,
    },
    /// The model server answered with an error status.
    #[error("model server answered {status} to {url}")]
    UpstreamStatus {
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
    },
    /// The model server's answer holds no usable predictions.
    #[error("model server response from {url} not understood: {detail}")]
    Response {
        /// Request URL.
        url: String,
        /// Why.
        detail: String,
    },
}

/// One row of the ring: its values, and its feature names shared with the other rows of
/// the same layout (one allocation per layout instead of one `String` per value: a ring of
/// 256 rows of 100 features costs 0.8 MB instead of about 2 MB).
#[derive(Debug, Clone)]
struct KeptRow {
    names: Arc<[String]>,
    values: Vec<FeatureValue>,
}

impl KeptRow {
    fn get(&self, name: &str) -> Option<&FeatureValue> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.values.get(i))
    }

    fn to_row(&self) -> Row {
        Row {
            values: self
                .names
                .iter()
                .cloned()
                .zip(self.values.iter().cloned())
                .collect(),
        }
    }
}

/// What is kept of one model: its template and recent rows.
#[derive(Debug, Default)]
struct ModelState {
    template: Option<Arc<Template>>,
    learnt_at: Option<Instant>,
    rows: VecDeque<KeptRow>,
    /// The feature names of the last row kept, shared by the rows that carry the same.
    names: Option<Arc<[String]>>,
    /// Start of the current [`RING_PERIOD`] and the rows copied in it.
    period: Option<tokio::time::Instant>,
    copied_in_period: usize,
}

/// The upstream client explain sends through: the proxy's client stack with a buffered body.
type ExplainClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

/// Per-model rows, templates and importance results; see the module documentation.
pub struct ExplainEngine {
    cfg: Arc<Config>,
    metrics: Arc<ExplainMetrics>,
    baselines: Option<Arc<Registry>>,
    client: ExplainClient,
    upstream: String,
    models: Mutex<HashMap<String, ModelState>>,
    results: Mutex<HashMap<String, HashMap<&'static str, Arc<ImportanceReport>>>>,
    live: Arc<LiveImportance>,
}

impl std::fmt::Debug for ExplainEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExplainEngine")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl ExplainEngine {
    /// An engine sending to `cfg.upstream`; `baselines` supplies references for occlusion.
    pub fn new(
        cfg: Arc<Config>,
        metrics: Arc<ExplainMetrics>,
        baselines: Option<Arc<Registry>>,
    ) -> Result<ExplainEngine, String> {
        let client = crate::proxy::upstream_client(&cfg);
        Ok(ExplainEngine {
            upstream: cfg.upstream.trim_end_matches('/').to_string(),
            cfg,
            metrics,
            baselines,
            client,
            models: Mutex::new(HashMap::new()),
            results: Mutex::new(HashMap::new()),
            live: Arc::new(LiveImportance::default()),
        })
    }

    /// The same engine publishing its SHAP importances to `live` (read by the drift score).
    pub fn with_live_importance(mut self, live: Arc<LiveImportance>) -> ExplainEngine {
        self.live = live;
        self
    }

    /// POSTs one JSON body to the model server through the shared client stack, within
    /// `explain.timeout`, and reads at most [`MAX_RESPONSE_BYTES`] of the answer.
    async fn send(
        &self,
        model: &str,
        url: &str,
        body: Vec<u8>,
    ) -> Result<bytes::Bytes, ExplainError> {
        let result = self.send_once(url, body).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(ExplainError::Upstream { timeout: true, .. }) => "timeout",
            Err(_) => "error",
        };
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                model: model.to_string(),
                result: label,
            })
            .inc();
        result
    }

    async fn send_once(&self, url: &str, body: Vec<u8>) -> Result<bytes::Bytes, ExplainError> {
        use http_body_util::BodyExt;
        let upstream = |detail: String| ExplainError::Upstream {
            url: url.to_string(),
            detail,
            timeout: false,
        };
        let req = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(EXPLAIN_HEADER, "1")
            .header("x-request-id", uuid::Uuid::new_v4().to_string())
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| upstream(e.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| upstream(e.to_string()))?;
            let status = resp.status().as_u16();
            if !(200..300).contains(&status) {
                return Err(ExplainError::UpstreamStatus {
                    url: url.to_string(),
                    status,
                });
            }
            let limited = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BYTES);
            match limited.collect().await {
                Ok(b) => Ok(b.to_bytes()),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    Err(ExplainError::Response {
                        url: url.to_string(),
                        detail: format!("response larger than {MAX_RESPONSE_BYTES} bytes"),
                    })
                }
                Err(e) => Err(upstream(e.to_string())),
            }
        };
        tokio::time::timeout(self.cfg.explain.timeout, exchange)
            .await
            .map_err(|_| ExplainError::Upstream {
                url: url.to_string(),
                detail: format!("no answer within {:?}", self.cfg.explain.timeout),
                timeout: true,
            })?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ModelState>> {
        self.models.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The model's learnt template, if any.
    pub fn template(&self, model: &str) -> Option<Arc<Template>> {
        self.lock().get(model).and_then(|s| s.template.clone())
    }

    /// The rows kept for `model`, oldest first (tests).
    #[cfg(test)]
    pub(crate) fn ring(&self, model: &str) -> Vec<Row> {
        self.lock()
            .get(model)
            .map(|s| s.rows.iter().map(KeptRow::to_row).collect())
            .unwrap_or_default()
    }

    /// Recent rows kept for `model`.
    pub fn recent_rows(&self, model: &str) -> usize {
        self.lock().get(model).map_or(0, |s| s.rows.len())
    }

    /// The last importance of `model` by `method` (`None`: permutation when computed, else
    /// the first computed of shap, sensitivity).
    pub fn importance(&self, model: &str, method: Option<&str>) -> Option<Arc<ImportanceReport>> {
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        let per = results.get(model)?;
        match method {
            Some(m) => per.get(m).cloned(),
            None => ["permutation", "shap", "sensitivity"]
                .iter()
                .find_map(|m| per.get(m).cloned()),
        }
    }

    fn max_rows(&self) -> usize {
        self.cfg.explain.max_rows.clamp(1, RING_ROWS)
    }

    /// Rows per request: `explain.batch_rows`, 1 for a format that takes one row at a time.
    pub fn batch(&self, template: &Template) -> usize {
        if template.batches() {
            self.cfg.explain.batch_rows.max(1)
        } else {
            1
        }
    }

    fn picker(&self, model: &str) -> OutputPicker {
        let snapshot = self.baselines.as_ref().and_then(|b| b.snapshot(model));
        OutputPicker::new(&self.cfg.performance.positive_class, snapshot.as_deref())
    }

    fn snapshot(&self, model: &str) -> Result<Arc<Snapshot>, ExplainError> {
        self.baselines
            .as_ref()
            .and_then(|d| d.snapshot(model))
            .ok_or_else(|| ExplainError::NoBaseline {
                model: model.to_string(),
            })
    }

    /// Predicts `rows` through the model server, in the template's format.
    /// Returns the outputs and the number of requests sent.
    pub async fn predict(
        &self,
        model: &str,
        template: &Template,
        rows: &[Row],
    ) -> Result<(Vec<Output>, usize), ExplainError> {
        self.predict_with(model, template, rows.len(), |i| rows[i].clone())
            .await
    }

    /// Predicts `total` rows made by `row(i)` on demand, `explain.batch_rows` per request
    /// (rows are built one request at a time, so memory stays bounded by one request).
    async fn predict_with(
        &self,
        model: &str,
        template: &Template,
        total: usize,
        row: impl Fn(usize) -> Row,
    ) -> Result<(Vec<Output>, usize), ExplainError> {
        let picker = self.picker(model);
        let chunk = self.batch(template);
        let url = format!("{}{}", self.upstream, template.path);
        let mut out = Vec::with_capacity(total);
        let mut requests = 0;
        let mut start = 0;
        while start < total {
            let end = (start + chunk).min(total);
            let part: Vec<Row> = (start..end).map(&row).collect();
            start = end;
            let body = template.encode(&part)?;
            let body = serde_json::to_vec(&body).map_err(|e| ExplainError::Response {
                url: url.clone(),
                detail: format!("cannot serialise the request: {e}"),
            })?;
            requests += 1;
            let bytes = self.send(model, &url, body.clone()).await?;
            let parsed = payload::parse_lenient(
                &self.cfg.payload,
                &template.path,
                &body,
                Some(&bytes),
                &template.features,
            )
            .map_err(|e| ExplainError::Response {
                url: url.clone(),
                detail: format!("mlmon's own request does not parse back: {e}"),
            })?;
            if let Some(e) = parsed.response_error {
                return Err(ExplainError::Response {
                    url: url.clone(),
                    detail: e.to_string(),
                });
            }
            let predictions = &parsed.exchange.predictions;
            if predictions.len() != part.len() {
                return Err(ExplainError::Response {
                    url: url.clone(),
                    detail: format!(
                        "{} predictions for {} rows sent",
                        predictions.len(),
                        part.len()
                    ),
                });
            }
            out.extend(predictions.iter().map(|p| picker.output(p)));
        }
        Ok((out, requests))
    }

    /// Computes every method of `explain.methods` for every model with enough recent rows,
    /// updates the gauges and the API answers. Failures are logged (and counted in
    /// `mlmon_explain_requests_total`) and leave the last result in place.
    pub async fn refresh(&self) {
        let models: Vec<String> = self.lock().keys().cloned().collect();
        for model in models {
            for method in self.cfg.explain.methods.clone() {
                let result = match method {
                    ImportanceMethod::Permutation => self.compute_importance(&model).await,
                    ImportanceMethod::Shap => self.compute_shap_importance(&model).await,
                    ImportanceMethod::Sensitivity => {
                        self.compute_sensitivity_importance(&model).await
                    }
                };
                match result {
                    Ok(report) => {
                        tracing::debug!(model = %model, method = method.as_str(), rows = report.rows, requests = report.requests, "importance computed")
                    }
                    Err(ExplainError::NotEnoughRows { .. } | ExplainError::NoTemplate { .. }) => {
                        break
                    }
                    // SHAP and sensitivity need a baseline (background, scales): not an error.
                    Err(ExplainError::NoBaseline { .. }) => {}
                    Err(e) => {
                        tracing::warn!(model = %model, method = method.as_str(), error = %e, "importance failed")
                    }
                }
            }
        }
    }

    /// The template and the most recent `n` rows that carry every feature of it, once the
    /// model has `explain.min_rows` of them.
    fn recent(&self, model: &str, n: usize) -> Result<(Arc<Template>, Vec<Row>), ExplainError> {
        let models = self.lock();
        let state = models.get(model);
        let template =
            state
                .and_then(|s| s.template.clone())
                .ok_or_else(|| ExplainError::NoTemplate {
                    model: model.to_string(),
                })?;
        let complete: Vec<&KeptRow> = state
            .map(|s| {
                s.rows
                    .iter()
                    .rev()
                    .filter(|r| template.features.iter().all(|f| r.get(f).is_some()))
                    .take(self.max_rows().max(n))
                    .collect()
            })
            .unwrap_or_default();
        let min = self.cfg.explain.min_rows.max(2);
        if complete.len() < min.min(RING_ROWS) {
            return Err(ExplainError::NotEnoughRows {
                model: model.to_string(),
                rows: complete.len(),
                min,
            });
        }
        let rows = complete.into_iter().take(n).map(KeptRow::to_row).collect();
        Ok((template, rows))
    }

    /// Stores `features` (unsorted) as the importance of `model` by `method`: gauges (features
    /// gone from the previous result are removed), API answer, live SHAP weights.
    fn publish(
        &self,
        model: &str,
        method: ImportanceMethod,
        mut features: Vec<FeatureImportance>,
        rows: usize,
        model_rows: usize,
        requests: usize,
    ) -> Arc<ImportanceReport> {
        let name = method.as_str();
        features.sort_by(|a, b| b.importance.total_cmp(&a.importance));
        if let Some(previous) = self.importance(model, Some(name)) {
            for gone in previous
                .features
                .iter()
                .filter(|p| !features.iter().any(|f| f.feature == p.feature))
            {
                self.metrics.importance.remove(&ImportanceLabels {
                    model: model.to_string(),
                    feature: gone.feature.clone(),
                    method: name,
                });
            }
        }
        for f in &features {
            self.metrics
                .importance
                .get_or_create(&ImportanceLabels {
                    model: model.to_string(),
                    feature: f.feature.clone(),
                    method: name,
                })
                .set(f.importance);
        }
        if method == ImportanceMethod::Shap {
            self.live.set(
                model,
                features
                    .iter()
                    .map(|f| (f.feature.clone(), f.importance))
                    .collect(),
            );
        }
        let report = Arc::new(ImportanceReport {
            model: model.to_string(),
            method: name,
            rows,
            model_rows,
            requests,
            computed_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            features,
        });
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(model.to_string())
            .or_default()
            .insert(name, report.clone());
        report
    }

    /// Computes permutation importance of `model` now.
    pub async fn compute_importance(
        &self,
        model: &str,
    ) -> Result<Arc<ImportanceReport>, ExplainError> {
        let (template, rows) = self.recent(model, self.max_rows())?;
        let (base, mut requests) = self.predict(model, &template, &rows).await?;
        let features: Vec<&String> = template
            .features
            .iter()
            .take(self.cfg.limits.max_features)
            .collect();
        let mut out = Vec::with_capacity(features.len());
        for (j, feature) in features.iter().enumerate() {
            let mut column: Vec<FeatureValue> = rows
                .iter()
                .map(|r| r.get(feature).cloned().unwrap_or(FeatureValue::Missing))
                .collect();
            let mut rng = rand::rngs::StdRng::seed_from_u64(0x6d6c_6d6f_6e00 ^ j as u64);
            column.shuffle(&mut rng);
            let permuted: Vec<Row> = rows
                .iter()
                .zip(column)
                .map(|(r, v)| replace(r, feature, v))
                .collect();
            let (perm, n) = self.predict(model, &template, &permuted).await?;
            requests += n;
            out.push(FeatureImportance {
                feature: (*feature).clone(),
                importance: mean_abs_diff(&base, &perm),
            });
        }
        let model_rows = rows.len() * (1 + features.len());
        Ok(self.publish(
            model,
            ImportanceMethod::Permutation,
            out,
            rows.len(),
            model_rows,
            requests,
        ))
    }

    /// KernelSHAP values of each of `xs` against `bg`, through the model server; see
    /// [`ShapRun`].
    pub async fn kernel_shap(
        &self,
        model: &str,
        template: &Template,
        xs: &[Row],
        bg: &Background,
    ) -> Result<ShapRun, ExplainError> {
        let features: Vec<&String> = template
            .features
            .iter()
            .take(self.cfg.limits.max_features)
            .collect();
        // Players: features the background gives a value; the others keep the row's value.
        let players: Vec<(String, Vec<FeatureValue>)> = features
            .iter()
            .filter_map(|f| {
                let column: Option<Vec<FeatureValue>> =
                    bg.rows.iter().map(|r| r.get(f).cloned()).collect();
                column.map(|c| ((*f).clone(), c))
            })
            .collect();
        let skipped: Vec<String> = template
            .features
            .iter()
            .filter(|f| !players.iter().any(|(p, _)| p == *f))
            .cloned()
            .collect();
        let c = shap::coalitions(players.len(), self.cfg.explain.shap_coalitions, SHAP_SEED);
        let k = bg.rows.len();
        let block = 1 + k * (c.masks.len() + 1);
        let total = xs.len() * block;
        if total > MAX_SHAP_ROWS {
            return Err(ExplainError::BadRow(format!(
                "KernelSHAP would send {total} rows to the model server (more than {MAX_SHAP_ROWS}): \
                 lower explain.shap_coalitions, explain.background or explain.shap_rows"
            )));
        }
        // Row i of block r: 0..k background b (v0), k: the row, then coalition-major.
        let make = |i: usize| -> Row {
            let (r, j) = (i / block, i % block);
            let x = &xs[r];
            if j == k {
                return x.clone();
            }
            let (mask, b) = if j < k {
                (None, j)
            } else {
                let t = j - k - 1;
                (Some(&c.masks[t / k]), t % k)
            };
            let mut row = x.clone();
            for (p, (name, column)) in players.iter().enumerate() {
                if mask.is_some_and(|m| m[p]) {
                    continue;
                }
                if let Some(slot) = row.values.iter_mut().find(|(n, _)| n == name) {
                    slot.1 = column[b].clone();
                }
            }
            row
        };
        let (outputs, requests) = self.predict_with(model, template, total, make).await?;
        let picker = self.picker(model);
        let scores: Vec<f64> = outputs.iter().map(|o| picker.score(o)).collect();
        let weigh = |from: usize| -> f64 { (0..k).map(|b| bg.weights[b] * scores[from + b]).sum() };
        let mut rows = Vec::with_capacity(xs.len());
        for r in 0..xs.len() {
            let base = r * block;
            let v0 = weigh(base);
            let v1 = scores[base + k];
            let v: Vec<f64> = (0..c.masks.len())
                .map(|t| weigh(base + k + 1 + t * k))
                .collect();
            let phi = shap::solve(&c, &v, v0, v1).map_err(ExplainError::BadRow)?;
            rows.push(ShapRow {
                prediction: v1,
                expected_value: v0,
                phi,
            });
        }
        Ok(ShapRun {
            players: players.into_iter().map(|(n, _)| n).collect(),
            skipped,
            coalitions: c.masks.len(),
            exact: c.exact,
            background_rows: k,
            model_rows: total,
            requests,
            rows,
        })
    }

    /// The background of `model`: a k-means summary of its baseline's joint sample.
    fn baseline_background(
        &self,
        snapshot: &Snapshot,
        template: &Template,
    ) -> Result<Background, ExplainError> {
        background::from_baseline(snapshot, &template.features, self.cfg.explain.background)
            .ok_or_else(|| {
                ExplainError::BadRow(format!(
                    "the baseline of model {:?} has no value for any of its features ({})",
                    snapshot.model.name,
                    template.features.join(", ")
                ))
            })
    }

    /// Mean |KernelSHAP value| of `model` over its `explain.shap_rows` most recent rows.
    pub async fn compute_shap_importance(
        &self,
        model: &str,
    ) -> Result<Arc<ImportanceReport>, ExplainError> {
        let (template, rows) = self.recent(model, self.cfg.explain.shap_rows)?;
        let snapshot = self.snapshot(model)?;
        let bg = self.baseline_background(&snapshot, &template)?;
        let run = self.kernel_shap(model, &template, &rows, &bg).await?;
        let n = run.rows.len().max(1) as f64;
        let out = run
            .players
            .iter()
            .enumerate()
            .map(|(j, name)| FeatureImportance {
                feature: name.clone(),
                importance: run.rows.iter().map(|r| r.phi[j].abs()).sum::<f64>() / n,
            })
            .collect();
        Ok(self.publish(
            model,
            ImportanceMethod::Shap,
            out,
            rows.len(),
            run.model_rows,
            run.requests,
        ))
    }

    /// Features sensitivity can differentiate: numeric in the baseline, with a numeric
    /// value in every row, sent as a real number; with their scale and step.
    fn numeric_features(
        &self,
        template: &Template,
        snapshot: &Snapshot,
        xs: &[Row],
    ) -> (Vec<Differentiable>, Vec<String>) {
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        for name in template.features.iter().take(self.cfg.limits.max_features) {
            let scale = snapshot
                .features
                .get(name)
                .filter(|b| b.kind == FeatureType::Numeric)
                .and_then(baseline_scale);
            let numeric_values = xs
                .iter()
                .all(|r| matches!(r.get(name), Some(FeatureValue::Number(_))));
            match scale {
                Some(scale) if numeric_values && sends_reals(template, name) => {
                    out.push(Differentiable {
                        name: name.clone(),
                        scale,
                        step: scale * self.cfg.explain.sensitivity_step,
                    })
                }
                _ => skipped.push(name.clone()),
            }
        }
        (out, skipped)
    }

    /// Central finite differences of f at each of `xs` for each of `features`: rows per
    /// explained row 1 + 2 × features (the row, then +h and −h per feature). Returns the
    /// outputs at the rows, the derivatives (row-major) and (rows sent, requests).
    async fn gradients(
        &self,
        model: &str,
        template: &Template,
        xs: &[Row],
        features: &[Differentiable],
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>, usize, usize), ExplainError> {
        let block = 1 + 2 * features.len();
        let total = xs.len() * block;
        let make = |i: usize| -> Row {
            let (r, j) = (i / block, i % block);
            let x = &xs[r];
            if j == 0 {
                return x.clone();
            }
            let d = &features[(j - 1) / 2];
            let sign = if (j - 1) % 2 == 0 { 1.0 } else { -1.0 };
            let v = match x.get(&d.name) {
                Some(FeatureValue::Number(v)) => FeatureValue::Number(v + sign * d.step),
                other => other.cloned().unwrap_or(FeatureValue::Missing),
            };
            replace(x, &d.name, v)
        };
        let (outputs, requests) = self.predict_with(model, template, total, make).await?;
        let picker = self.picker(model);
        let scores: Vec<f64> = outputs.iter().map(|o| picker.score(o)).collect();
        let mut fx = Vec::with_capacity(xs.len());
        let mut grads = Vec::with_capacity(xs.len());
        for r in 0..xs.len() {
            let base = r * block;
            fx.push(scores[base]);
            grads.push(
                features
                    .iter()
                    .enumerate()
                    .map(|(j, d)| {
                        (scores[base + 1 + 2 * j] - scores[base + 2 + 2 * j]) / (2.0 * d.step)
                    })
                    .collect(),
            );
        }
        Ok((fx, grads, total, requests))
    }

    /// Sensitivity of `model`: mean over its `explain.max_rows` most recent rows of
    /// |∂f/∂x_j| × the feature's baseline scale.
    pub async fn compute_sensitivity_importance(
        &self,
        model: &str,
    ) -> Result<Arc<ImportanceReport>, ExplainError> {
        let (template, rows) = self.recent(model, self.max_rows())?;
        let snapshot = self.snapshot(model)?;
        let (features, _) = self.numeric_features(&template, &snapshot, &rows);
        let (_, grads, model_rows, requests) =
            self.gradients(model, &template, &rows, &features).await?;
        let n = grads.len().max(1) as f64;
        let out = features
            .iter()
            .enumerate()
            .map(|(j, d)| FeatureImportance {
                feature: d.name.clone(),
                importance: d.scale * grads.iter().map(|g| g[j].abs()).sum::<f64>() / n,
            })
            .collect();
        Ok(self.publish(
            model,
            ImportanceMethod::Sensitivity,
            out,
            rows.len(),
            model_rows,
            requests,
        ))
    }

    /// The row of an explanation request, checked against the model's features.
    fn row_of(
        &self,
        model: &str,
        template: &Template,
        features: &serde_json::Map<String, serde_json::Value>,
        what: &str,
    ) -> Result<Row, ExplainError> {
        if let Some(unknown) = features.keys().find(|k| !template.features.contains(k)) {
            return Err(ExplainError::BadRow(format!(
                "{what}.{unknown}: not a feature of model {model:?} (known: {})",
                template.features.join(", ")
            )));
        }
        let mut row = Row::default();
        for name in &template.features {
            let v = features.get(name).ok_or_else(|| {
                ExplainError::BadRow(format!(
                    "{what}.{name}: missing (every feature of the model is needed)"
                ))
            })?;
            let v = FeatureValue::from_json(v).ok_or_else(|| {
                ExplainError::BadRow(format!("{what}.{name}: not a number, string or null"))
            })?;
            row.values.push((name.clone(), v));
        }
        Ok(row)
    }

    /// Explanation of one row given as `{feature: value}` by `method` (docs/explainability.md).
    /// `background` (KernelSHAP only) replaces the baseline's background: rows of every
    /// feature, equally weighted.
    pub async fn explain_with(
        &self,
        model: &str,
        method: ExplainMethod,
        features: &serde_json::Map<String, serde_json::Value>,
        background: Option<&[serde_json::Map<String, serde_json::Value>]>,
    ) -> Result<serde_json::Value, ExplainError> {
        let template = self
            .template(model)
            .ok_or_else(|| ExplainError::NoTemplate {
                model: model.to_string(),
            })?;
        let row = self.row_of(model, &template, features, "features")?;
        match method {
            ExplainMethod::Occlusion => {
                if background.is_some() {
                    return Err(ExplainError::BadRow(
                        "background: only method=shap takes a background".into(),
                    ));
                }
                self.occlusion(model, &template, row).await
            }
            ExplainMethod::Sensitivity => {
                if background.is_some() {
                    return Err(ExplainError::BadRow(
                        "background: only method=shap takes a background".into(),
                    ));
                }
                self.sensitivity(model, &template, row).await
            }
            ExplainMethod::Shap => {
                let (bg, baseline_id) = match background {
                    Some(rows) => {
                        if rows.is_empty() || rows.len() > crate::config::MAX_BACKGROUND {
                            return Err(ExplainError::BadRow(format!(
                                "background: {} rows; between 1 and {} are accepted",
                                rows.len(),
                                crate::config::MAX_BACKGROUND
                            )));
                        }
                        let parsed = rows
                            .iter()
                            .enumerate()
                            .map(|(i, r)| {
                                self.row_of(model, &template, r, &format!("background[{i}]"))
                            })
                            .collect::<Result<Vec<Row>, _>>()?;
                        let n = parsed.len();
                        (
                            Background {
                                rows: parsed,
                                weights: vec![1.0 / n as f64; n],
                                source: format!("request ({n} rows)"),
                            },
                            None,
                        )
                    }
                    None => {
                        let snapshot = self.snapshot(model)?;
                        (
                            self.baseline_background(&snapshot, &template)?,
                            Some(snapshot.id.clone()),
                        )
                    }
                };
                let run = self
                    .kernel_shap(model, &template, std::slice::from_ref(&row), &bg)
                    .await?;
                let Some(r) = run.rows.first() else {
                    return Err(ExplainError::BadRow("no prediction for the row".into()));
                };
                let mut contributions: Vec<(String, f64)> = run
                    .players
                    .iter()
                    .cloned()
                    .zip(r.phi.iter().copied())
                    .collect();
                contributions.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
                Ok(serde_json::json!({
                    "model": model,
                    "method": "shap",
                    "output": "score",
                    "prediction": r.prediction,
                    "expected_value": r.expected_value,
                    "baseline_id": baseline_id,
                    "background": {"rows": run.background_rows, "source": bg.source},
                    "coalitions": run.coalitions,
                    "exact": run.exact,
                    "model_rows": run.model_rows,
                    "requests": run.requests,
                    "features": contributions.iter().map(|(f, v)| serde_json::json!({
                        "feature": f, "shap": v,
                    })).collect::<Vec<_>>(),
                    "skipped": run.skipped,
                }))
            }
        }
    }

    /// Occlusion explanation of one row given as `{feature: value}`; see the module docs.
    pub async fn explain(
        &self,
        model: &str,
        features: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, ExplainError> {
        self.explain_with(model, ExplainMethod::Occlusion, features, None)
            .await
    }

    async fn sensitivity(
        &self,
        model: &str,
        template: &Template,
        row: Row,
    ) -> Result<serde_json::Value, ExplainError> {
        let snapshot = self.snapshot(model)?;
        let xs = std::slice::from_ref(&row);
        let (features, skipped) = self.numeric_features(template, &snapshot, xs);
        let (fx, grads, model_rows, requests) =
            self.gradients(model, template, xs, &features).await?;
        let (Some(fx), Some(g)) = (fx.first(), grads.first()) else {
            return Err(ExplainError::BadRow("no prediction for the row".into()));
        };
        let mut out: Vec<serde_json::Value> = features
            .iter()
            .zip(g)
            .map(|(d, g)| {
                serde_json::json!({
                    "feature": d.name,
                    "gradient": g,
                    "step": d.step,
                    "scale": d.scale,
                    "importance": (g * d.scale).abs(),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            let key = |v: &serde_json::Value| v["importance"].as_f64().unwrap_or(0.0);
            key(b).total_cmp(&key(a))
        });
        Ok(serde_json::json!({
            "model": model,
            "method": "sensitivity",
            "output": "score",
            "prediction": fx,
            "baseline_id": snapshot.id,
            "model_rows": model_rows,
            "requests": requests,
            "features": out,
            "skipped": skipped,
        }))
    }

    async fn occlusion(
        &self,
        model: &str,
        template: &Template,
        row: Row,
    ) -> Result<serde_json::Value, ExplainError> {
        let baseline = self.snapshot(model)?;
        let mut rows = vec![row.clone()];
        let mut occluded = Vec::new();
        let mut skipped = Vec::new();
        for name in template.features.iter().take(self.cfg.limits.max_features) {
            match baseline.features.get(name).and_then(reference_value) {
                Some(reference) => {
                    rows.push(replace(&row, name, reference.clone()));
                    occluded.push((name.clone(), reference));
                }
                None => skipped.push(name.clone()),
            }
        }
        let (outputs, requests) = self.predict(model, template, &rows).await?;
        let Some(fx) = outputs.first() else {
            return Err(ExplainError::BadRow("no prediction for the row".into()));
        };
        let mut contributions: Vec<serde_json::Value> = occluded
            .iter()
            .zip(outputs.iter().skip(1))
            .map(|((name, reference), out)| {
                serde_json::json!({
                    "feature": name,
                    "contribution": fx.minus(out),
                    "reference": match reference {
                        FeatureValue::Number(v) => serde_json::json!(v),
                        FeatureValue::Text(s) => serde_json::json!(s),
                        FeatureValue::Missing => serde_json::Value::Null,
                    },
                })
            })
            .collect();
        contributions.sort_by(|a, b| {
            let key = |v: &serde_json::Value| v["contribution"].as_f64().unwrap_or(0.0).abs();
            key(b).total_cmp(&key(a))
        });
        Ok(serde_json::json!({
            "model": model,
            "method": "occlusion",
            "output": match fx { Output::Score(_) => "score", Output::Label(_) => "label" },
            "prediction": fx.to_json(),
            "reference": "baseline median (numeric) or most frequent category",
            "baseline_id": baseline.id,
            "requests": requests,
            "features": contributions,
            "skipped": skipped,
        }))
    }
}

/// The method of a local explanation (`?method=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExplainMethod {
    /// One feature at a time replaced by its baseline reference (the default).
    #[default]
    Occlusion,
    /// KernelSHAP values.
    Shap,
    /// Central finite-difference derivatives.
    Sensitivity,
}

/// KernelSHAP values of one explained row.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapRow {
    /// f(x).
    pub prediction: f64,
    /// E\[f\] over the background.
    pub expected_value: f64,
    /// φ per player, in [`ShapRun::players`] order; Σ φ = prediction − expected_value.
    pub phi: Vec<f64>,
}

/// KernelSHAP values of several rows and what they cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapRun {
    /// Features explained (those the background gives a value).
    pub players: Vec<String>,
    /// Features held at the row's value (no background value): φ = 0.
    pub skipped: Vec<String>,
    /// Coalitions evaluated per row (C).
    pub coalitions: usize,
    /// Whether all 2^M − 2 coalitions were evaluated.
    pub exact: bool,
    /// Background rows (K).
    pub background_rows: usize,
    /// Rows sent: rows × (1 + K × (C + 1)).
    pub model_rows: usize,
    /// Requests sent: ⌈model_rows / batch⌉.
    pub requests: usize,
    /// One result per explained row.
    pub rows: Vec<ShapRow>,
}

/// A feature sensitivity differentiates.
#[derive(Debug, Clone, PartialEq)]
struct Differentiable {
    name: String,
    /// Baseline scale (standard deviation, else IQR / 1.349, else 1).
    scale: f64,
    /// Step h = `explain.sensitivity_step` × scale.
    step: f64,
}

/// A numeric feature's scale: its baseline standard deviation, else its interquartile range
/// / 1.349, else 1; `None` without baseline statistics.
fn baseline_scale(b: &crate::baseline::FeatureBaseline) -> Option<f64> {
    if let Some(sd) = b.stats.std.filter(|s| s.is_finite() && *s > 0.0) {
        return Some(sd);
    }
    if let Some(q) = b.stats.quantiles {
        let iqr = (q.p75 - q.p25) / 1.349;
        if iqr.is_finite() && iqr > 0.0 {
            return Some(iqr);
        }
    }
    (b.stats.count > 0).then_some(1.0)
}

/// Whether the template sends `feature` as a real number (integer, boolean and string
/// tensors would round or refuse a step).
fn sends_reals(template: &Template, feature: &str) -> bool {
    let real = |d: &str| d.starts_with("FP");
    match &template.layout {
        Layout::OipInputs { inputs } => inputs
            .iter()
            .find(|i| i.name == feature)
            .is_some_and(|i| real(&i.datatype)),
        Layout::OipTensor { datatype, .. } => real(datatype),
        _ => true,
    }
}
/// The baseline value a feature is occluded with.
pub(super) fn reference_value(f: &crate::baseline::FeatureBaseline) -> Option<FeatureValue> {
    match f.kind {
        FeatureType::Numeric => f
            .stats
            .quantiles
            .map(|q| q.p50)
            .or(f.stats.mean)
            .map(FeatureValue::Number),
        FeatureType::Categorical => f
            .categories
            .as_ref()?
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, _)| FeatureValue::Text(k.to_string())),
    }
}

fn replace(row: &Row, feature: &str, value: FeatureValue) -> Row {
    let mut r = row.clone();
    if let Some(slot) = r.values.iter_mut().find(|(n, _)| n == feature) {
        slot.1 = value;
    }
    r
}

impl ExplainEngine {
    /// Keeps the request as a template candidate (when the template is stale) and the
    /// exchange's rows for permutation importance.
    pub fn observe(&self, exchange: &Exchange<'_>) {
        let model = exchange.model;
        let rows = &exchange.parsed.rows;
        let mut models = self.lock();
        if rows.is_empty() && !models.contains_key(model) {
            return;
        }
        let state = models.entry(model.to_string()).or_default();
        let fresh = state
            .learnt_at
            .is_some_and(|t| t.elapsed() < TEMPLATE_REFRESH);
        // Only a request the model answered understandably is a template.
        if let (false, Some(request), Some(first), false) = (
            fresh,
            exchange.request,
            rows.first(),
            exchange.parsed.predictions.is_empty(),
        ) {
            let learnt = payload::request_format(&self.cfg.payload, request.path, request.body)
                .map_err(|e| e.to_string())
                .and_then(|format| {
                    let body = serde_json::from_slice::<serde_json::Value>(request.body)
                        .map_err(|e| e.to_string())?;
                    Template::learn(request.path, format, &body, first).map_err(|e| e.to_string())
                });
            match learnt {
                Ok(t) => state.template = Some(Arc::new(t)),
                Err(e) => tracing::debug!(model, error = %e, "no explanation template"),
            }
            state.learnt_at = Some(Instant::now());
        }
        let now = exchange.now;
        if state
            .period
            .is_none_or(|start| now.saturating_duration_since(start) >= RING_PERIOD)
        {
            state.period = Some(now);
            state.copied_in_period = 0;
        }
        let budget = RING_ROWS_PER_PERIOD.saturating_sub(state.copied_in_period);
        let take = rows.len().min(budget).min(RING_ROWS);
        for r in rows.iter().rev().take(take).rev() {
            if state.rows.len() == RING_ROWS {
                state.rows.pop_front();
            }
            let same = state.names.as_ref().filter(|names| {
                names.len() == r.values.len()
                    && names.iter().zip(&r.values).all(|(a, (b, _))| a == b)
            });
            let names = match same {
                Some(names) => names.clone(),
                None => {
                    let names: Arc<[String]> = r.values.iter().map(|(n, _)| n.clone()).collect();
                    state.names = Some(names.clone());
                    names
                }
            };
            state.rows.push_back(KeptRow {
                names,
                values: r.values.iter().map(|(_, v)| v.clone()).collect(),
            });
        }
        state.copied_in_period += take;
    }
}

impl Analysis for ExplainEngine {
    fn name(&self) -> &'static str {
        "importance"
    }

    fn observe(&self, exchange: &Exchange<'_>) {
        ExplainEngine::observe(self, exchange);
    }

    /// Importance is computed by its own task every `explain.interval` (it sends requests
    /// to the model server); nothing to do on the drift refresh.
    fn refresh(&self, _baselines: &Registry) {}

    fn report(&self, model: &str) -> Option<serde_json::Value> {
        self.importance(model, None)
            .and_then(|r| serde_json::to_value(&*r).ok())
    }
}
