//! The explain engine: per model a template of the wire format and a ring of recent rows,
//! and the requests it sends to the model server for importances and explanations.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::encode::{EncodeError, Template};
use super::report::{mean_abs_diff, FeatureImportance, ImportanceReport, Output};
use crate::analysis::{Analysis, Exchange};
use crate::baseline::FeatureType;
use crate::baseline::Registry;
use crate::config::Config;
use crate::metrics::explain::{ExplainMetrics, ImportanceLabels};
use crate::payload;
use crate::record::{FeatureValue, Row};

/// Recent rows kept per model.
pub const RING_ROWS: usize = crate::config::MAX_EXPLAIN_ROWS;
/// How often a model's template is re-learnt from live traffic.
pub const TEMPLATE_REFRESH: Duration = Duration::from_secs(30);
/// Header marking requests mlmon sends to the model server itself.
pub const EXPLAIN_HEADER: &str = "x-mlmon-explain";
/// Largest response body read from the model server.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

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

/// What is kept of one model: its template and recent rows.
#[derive(Debug, Default)]
struct ModelState {
    template: Option<Arc<Template>>,
    learnt_at: Option<Instant>,
    rows: VecDeque<Row>,
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
    results: Mutex<HashMap<String, Arc<ImportanceReport>>>,
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
        })
    }

    /// POSTs one JSON body to the model server through the shared client stack, within
    /// `explain.timeout`, and reads at most [`MAX_RESPONSE_BYTES`] of the answer.
    async fn send(&self, url: &str, body: Vec<u8>) -> Result<bytes::Bytes, ExplainError> {
        use http_body_util::BodyExt;
        let upstream = |detail: String| ExplainError::Upstream {
            url: url.to_string(),
            detail,
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
            .map_err(|_| upstream(format!("no answer within {:?}", self.cfg.explain.timeout)))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ModelState>> {
        self.models.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The model's learnt template, if any.
    pub fn template(&self, model: &str) -> Option<Arc<Template>> {
        self.lock().get(model).and_then(|s| s.template.clone())
    }

    /// Recent rows kept for `model`.
    pub fn recent_rows(&self, model: &str) -> usize {
        self.lock().get(model).map_or(0, |s| s.rows.len())
    }

    /// The last permutation importance of `model`.
    pub fn importance(&self, model: &str) -> Option<Arc<ImportanceReport>> {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
            .cloned()
    }

    fn max_rows(&self) -> usize {
        self.cfg.explain.max_rows.clamp(1, RING_ROWS)
    }

    /// Predicts `rows` through the model server, in the template's format.
    /// Returns the outputs and the number of requests sent.
    pub async fn predict(
        &self,
        template: &Template,
        rows: &[Row],
    ) -> Result<(Vec<Output>, usize), ExplainError> {
        let chunk = if template.batches() {
            self.max_rows()
        } else {
            1
        };
        let url = format!("{}{}", self.upstream, template.path);
        let mut out = Vec::with_capacity(rows.len());
        let mut requests = 0;
        for part in rows.chunks(chunk) {
            let body = template.encode(part)?;
            let body = serde_json::to_vec(&body).map_err(|e| ExplainError::Response {
                url: url.clone(),
                detail: format!("cannot serialise the request: {e}"),
            })?;
            requests += 1;
            let bytes = self.send(&url, body.clone()).await?;
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
            out.extend(
                parsed
                    .exchange
                    .predictions
                    .iter()
                    .map(Output::from_prediction),
            );
        }
        Ok((out, requests))
    }

    /// Computes permutation importance of every model with enough recent rows, updates
    /// the gauges and the API answer. Failures are logged and leave the last result.
    pub async fn refresh(&self) {
        let models: Vec<String> = self.lock().keys().cloned().collect();
        for model in models {
            match self.compute_importance(&model).await {
                Ok(report) => {
                    tracing::debug!(model = %model, rows = report.rows, requests = report.requests, "permutation importance computed")
                }
                Err(ExplainError::NotEnoughRows { .. } | ExplainError::NoTemplate { .. }) => {}
                Err(e) => {
                    tracing::warn!(model = %model, error = %e, "permutation importance failed")
                }
            }
        }
    }

    /// Computes permutation importance of `model` now.
    pub async fn compute_importance(
        &self,
        model: &str,
    ) -> Result<Arc<ImportanceReport>, ExplainError> {
        let (template, rows) = {
            let models = self.lock();
            let state = models.get(model);
            let template =
                state
                    .and_then(|s| s.template.clone())
                    .ok_or_else(|| ExplainError::NoTemplate {
                        model: model.to_string(),
                    })?;
            let rows: Vec<Row> = state
                .map(|s| {
                    s.rows
                        .iter()
                        .rev()
                        .filter(|r| template.features.iter().all(|f| r.get(f).is_some()))
                        .take(self.max_rows())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (template, rows)
        };
        let min = self.cfg.explain.min_rows.max(2);
        if rows.len() < min {
            return Err(ExplainError::NotEnoughRows {
                model: model.to_string(),
                rows: rows.len(),
                min,
            });
        }
        let (base, mut requests) = self.predict(&template, &rows).await?;
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
            let (perm, n) = self.predict(&template, &permuted).await?;
            requests += n;
            let importance = mean_abs_diff(&base, &perm);
            out.push(FeatureImportance {
                feature: (*feature).clone(),
                importance,
            });
        }
        out.sort_by(|a, b| b.importance.total_cmp(&a.importance));
        // Features the model no longer receives stop being exported.
        if let Some(previous) = self.importance(model) {
            for gone in previous
                .features
                .iter()
                .filter(|p| !out.iter().any(|f| f.feature == p.feature))
            {
                self.metrics.importance.remove(&ImportanceLabels {
                    model: model.to_string(),
                    feature: gone.feature.clone(),
                    method: "permutation",
                });
            }
        }
        for f in &out {
            self.metrics
                .importance
                .get_or_create(&ImportanceLabels {
                    model: model.to_string(),
                    feature: f.feature.clone(),
                    method: "permutation",
                })
                .set(f.importance);
        }
        let report = Arc::new(ImportanceReport {
            model: model.to_string(),
            method: "permutation",
            rows: rows.len(),
            requests,
            computed_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            features: out,
        });
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(model.to_string(), report.clone());
        Ok(report)
    }

    /// Occlusion explanation of one row given as `{feature: value}`; see the module docs.
    pub async fn explain(
        &self,
        model: &str,
        features: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, ExplainError> {
        let baseline = self
            .baselines
            .as_ref()
            .and_then(|d| d.snapshot(model))
            .ok_or_else(|| ExplainError::NoBaseline {
                model: model.to_string(),
            })?;
        let template = self
            .template(model)
            .ok_or_else(|| ExplainError::NoTemplate {
                model: model.to_string(),
            })?;
        if let Some(unknown) = features.keys().find(|k| !template.features.contains(k)) {
            return Err(ExplainError::BadRow(format!(
                "features.{unknown}: not a feature of model {model:?} (known: {})",
                template.features.join(", ")
            )));
        }
        let mut row = Row::default();
        for name in &template.features {
            let v = features.get(name).ok_or_else(|| {
                ExplainError::BadRow(format!(
                    "features.{name}: missing (every feature of the model is needed)"
                ))
            })?;
            let v = FeatureValue::from_json(v).ok_or_else(|| {
                ExplainError::BadRow(format!("features.{name}: not a number, string or null"))
            })?;
            row.values.push((name.clone(), v));
        }
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
        let (outputs, requests) = self.predict(&template, &rows).await?;
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

/// The baseline value a feature is occluded with.
fn reference_value(f: &crate::baseline::FeatureBaseline) -> Option<FeatureValue> {
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
        for r in rows.iter().rev().take(RING_ROWS).rev() {
            if state.rows.len() == RING_ROWS {
                state.rows.pop_front();
            }
            state.rows.push_back(r.clone());
        }
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
        self.importance(model)
            .and_then(|r| serde_json::to_value(&*r).ok())
    }
}
