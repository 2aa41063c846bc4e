//! The comparison of the shadow's predictions with the primary's, on the analysis thread.
//!
//! Each [`CompareJob`] parses both answers with the same payload adapters as every captured
//! exchange and compares them row by row. Per model, over `drift.window` ([`Buckets`]):
//!
//! - **agreement** (classifiers): rows whose predicted label is the same, over rows compared;
//!   the label is the predicted class (a string, an integral number, else the argmax of the
//!   probabilities);
//! - **mean absolute difference** (regression): mean of |shadow − primary| over rows where
//!   both are numbers;
//! - **prediction PSI**: the shadow's predictions against the primary's (PSI of SPEC
//!   section 5): over labels for classifiers, over bins at the deciles of the primary's
//!   predictions for regression.
//!
//! Whether a model is a classifier comes from `model.task`, else from what its predictions
//! look like (labels or probabilities, else at most [`MAX_AUTO_CLASSES`] integral values).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::analysis::{Analysis, Exchange};
use crate::baseline::Registry;
use crate::config::{Config, Task};
use crate::ingest::{decode, Job, MAX_DECODED_BYTES};
use crate::metrics::labels::ModelLabels;
use crate::metrics::set_or_remove;
use crate::metrics::shadow::ShadowMetrics;
use crate::payload;
use crate::record::{FeatureValue, ParsedExchange, Prediction};
use crate::stats::bins::{bin_counts, proportions, quantile_edges};
use crate::stats::categorical::{align_categories, OTHER_CATEGORY};
use crate::stats::psi::psi_counts;
use crate::window::{Buckets, BUCKETS};

/// Distinct integral prediction values up to which an `auto` model counts as a classifier.
pub const MAX_AUTO_CLASSES: usize = 20;
/// Distinct labels kept per window bucket and side; more fold into `__other__`.
pub const MAX_LABELS: usize = 64;
/// Bins of the regression prediction PSI (at the deciles of the primary's predictions).
pub const PSI_BINS: usize = 10;

/// One model's answer body as it travelled.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The response body (possibly compressed).
    pub body: Bytes,
    /// Its `content-type`.
    pub content_type: Option<String>,
    /// Its `content-encoding`.
    pub content_encoding: Option<String>,
}

/// One shadow comparison, queued for the analysis thread.
#[derive(Debug)]
pub struct CompareJob {
    /// Where the result goes.
    pub comparison: Arc<Comparison>,
    /// Model.
    pub model: String,
    /// The client's path (the primary's exchange is parsed as sent there).
    pub primary_path: String,
    /// The path the copy was sent to.
    pub shadow_path: String,
    /// The request body both models were sent.
    pub request: Bytes,
    /// Its `content-encoding`.
    pub request_encoding: Option<String>,
    /// The primary's answer.
    pub primary: Answer,
    /// The shadow's answer.
    pub shadow: Answer,
}

impl Job for CompareJob {
    fn queued_bytes(&self) -> usize {
        2 * (self.request.len() + self.primary.body.len() + self.shadow.body.len()) + 256
    }

    fn run(self: Box<Self>) {
        let c = self.comparison.clone();
        c.compare_job(*self, Instant::now());
    }
}

/// Rows compared in one window bucket.
#[derive(Debug, Default)]
struct Bucket {
    /// Rows where both sides had a label.
    labelled: u64,
    /// Of those, rows whose labels are equal.
    agree: u64,
    /// Rows where both predictions are numbers.
    numeric: u64,
    /// Σ |shadow − primary| over those.
    abs_diff: f64,
    /// Label counts of the primary and of the shadow.
    primary_labels: HashMap<String, u64>,
    shadow_labels: HashMap<String, u64>,
    /// A reservoir of (primary, shadow) numeric predictions, for the regression PSI.
    pairs: Vec<(f64, f64)>,
    /// Numeric pairs offered to the reservoir.
    offered: u64,
    /// Exchanges whose shadow (or primary) answer yielded no predictions.
    unparsed: u64,
}

/// Evidence about the kind of model from its predictions (kept for the model's life).
#[derive(Debug, Default)]
struct Evidence {
    labels_or_probabilities: bool,
    non_integral: bool,
    distinct: BTreeSet<u64>,
}

impl Evidence {
    fn add(&mut self, p: &Prediction) {
        match &p.value {
            FeatureValue::Text(_) => self.labels_or_probabilities = true,
            FeatureValue::Number(x) if x.fract() != 0.0 => self.non_integral = true,
            FeatureValue::Number(x) => {
                if self.distinct.len() <= MAX_AUTO_CLASSES {
                    self.distinct.insert(x.to_bits());
                }
            }
            FeatureValue::Missing => {}
        }
        if p.probabilities.is_some() {
            self.labels_or_probabilities = true;
        }
    }

    fn task(&self) -> Option<Task> {
        if self.labels_or_probabilities {
            Some(Task::Classification)
        } else if self.non_integral || self.distinct.len() > MAX_AUTO_CLASSES {
            Some(Task::Regression)
        } else if self.distinct.is_empty() {
            None
        } else {
            Some(Task::Classification)
        }
    }
}

#[derive(Debug)]
struct ModelShadow {
    window: Buckets<Bucket>,
    evidence: Evidence,
}

/// What the comparison of one model shows over the window (`GET
/// /api/v1/models/{model}/shadow`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShadowReport {
    /// Model.
    pub model: String,
    /// `classification` or `regression` (`null` until predictions were seen).
    pub task: Option<&'static str>,
    /// Rows compared by label.
    pub rows: u64,
    /// Share of those whose labels agree (classifiers).
    pub agreement: Option<f64>,
    /// Rows where both predictions are numbers.
    pub numeric_rows: u64,
    /// Mean |shadow − primary| over those (regression).
    pub mean_abs_diff: Option<f64>,
    /// PSI of the shadow's predictions against the primary's.
    pub prediction_psi: Option<f64>,
    /// Exchanges whose answers could not be compared (no predictions understood).
    pub unparsed: u64,
}

/// The comparison state of every model; an [`Analysis`] for its refresh and report (it
/// observes no exchange of its own: [`CompareJob`]s feed it).
pub struct Comparison {
    cfg: Arc<Config>,
    metrics: Arc<ShadowMetrics>,
    baselines: Option<Arc<Registry>>,
    /// Per model (names folded past `model.max_models` upstream of here).
    models: Mutex<HashMap<String, ModelShadow>>,
    /// Reservoir size per bucket.
    per_bucket: usize,
    compared: AtomicU64,
    compared_tx: watch::Sender<u64>,
}

impl std::fmt::Debug for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comparison").finish_non_exhaustive()
    }
}

fn label_of(p: &Prediction) -> Option<String> {
    match &p.value {
        FeatureValue::Text(s) => Some(s.clone()),
        FeatureValue::Number(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 => {
            Some(format!("{}", *x as i64))
        }
        FeatureValue::Number(x) if x.is_finite() => Some(format!("{x}")),
        _ => {
            let probs = p.probabilities.as_ref()?;
            let (i, _) = probs
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .max_by(|a, b| a.1.total_cmp(b.1))?;
            Some(i.to_string())
        }
    }
}

fn count_label(map: &mut HashMap<String, u64>, label: &str) {
    if let Some(c) = map.get_mut(label) {
        *c += 1;
    } else if map.len() < MAX_LABELS {
        map.insert(label.to_string(), 1);
    } else {
        *map.entry(OTHER_CATEGORY.to_string()).or_insert(0) += 1;
    }
}

impl Comparison {
    /// A comparison over `drift.window`; the baseline registry names unnamed columns the
    /// way the primary's analysis does.
    pub fn new(
        cfg: Arc<Config>,
        metrics: Arc<ShadowMetrics>,
        baselines: Option<Arc<Registry>>,
    ) -> Comparison {
        let per_bucket = (cfg.drift.sample_size / BUCKETS as usize).max(16);
        Comparison {
            cfg,
            metrics,
            baselines,
            models: Mutex::new(HashMap::new()),
            per_bucket,
            compared: AtomicU64::new(0),
            compared_tx: watch::channel(0).0,
        }
    }

    /// Shadow answers compared (or found not comparable) since start.
    pub fn compared(&self) -> u64 {
        self.compared.load(Ordering::Acquire)
    }

    /// Waits until at least `n` shadow answers have been compared since start.
    pub async fn wait_compared(&self, n: u64) {
        let mut rx = self.compared_tx.subscribe();
        let _ = rx.wait_for(|&v| v >= n).await;
    }

    fn parse(
        &self,
        model: &str,
        path: &str,
        request: &[u8],
        answer: &Answer,
    ) -> Option<ParsedExchange> {
        let response = decode(
            &answer.body,
            answer.content_encoding.as_deref(),
            MAX_DECODED_BYTES,
        )
        .ok()?;
        let order = self
            .baselines
            .as_ref()
            .map(|b| b.order(model))
            .unwrap_or_default();
        match payload::parse_lenient(&self.cfg.payload, path, request, Some(&response), &order) {
            Ok(l) if l.response_error.is_none() => Some(l.exchange),
            Ok(l) => {
                tracing::debug!(model, path, error = ?l.response_error, "shadow comparison: answer not understood");
                None
            }
            Err(e) => {
                tracing::debug!(model, path, error = %e, "shadow comparison: request not understood");
                None
            }
        }
    }

    /// Parses both answers of `job` and compares them.
    pub fn compare_job(&self, job: CompareJob, now: Instant) {
        let request = decode(
            &job.request,
            job.request_encoding.as_deref(),
            MAX_DECODED_BYTES,
        );
        let parsed = request.ok().and_then(|request| {
            let primary = self.parse(&job.model, &job.primary_path, &request, &job.primary)?;
            let shadow = self.parse(&job.model, &job.shadow_path, &request, &job.shadow)?;
            Some((primary, shadow))
        });
        match parsed {
            Some((p, s)) => self.observe_pair(&job.model, &p.predictions, &s.predictions, now),
            None => self.observe_pair(&job.model, &[], &[], now),
        }
    }

    /// Compares the primary's and the shadow's predictions of one exchange, row by row.
    /// Empty predictions on either side count the exchange as not comparable.
    pub fn observe_pair(
        &self,
        model: &str,
        primary: &[Prediction],
        shadow: &[Prediction],
        now: Instant,
    ) {
        if let Ok(mut models) = self.models.lock() {
            let m = models
                .entry(model.to_string())
                .or_insert_with(|| ModelShadow {
                    window: Buckets::new(self.cfg.drift.window),
                    evidence: Evidence::default(),
                });
            for p in primary.iter().chain(shadow) {
                m.evidence.add(p);
            }
            let per_bucket = self.per_bucket;
            let b = m.window.current(now);
            if primary.is_empty() || shadow.is_empty() {
                b.unparsed += 1;
            }
            for (p, s) in primary.iter().zip(shadow) {
                if let (Some(lp), Some(ls)) = (label_of(p), label_of(s)) {
                    b.labelled += 1;
                    if lp == ls {
                        b.agree += 1;
                    }
                    count_label(&mut b.primary_labels, &lp);
                    count_label(&mut b.shadow_labels, &ls);
                }
                if let (Some(a), Some(c)) = (p.value.as_f64(), s.value.as_f64()) {
                    b.numeric += 1;
                    b.abs_diff += (c - a).abs();
                    // Reservoir sampling (algorithm R) with a deterministic generator.
                    b.offered += 1;
                    if b.pairs.len() < per_bucket {
                        b.pairs.push((a, c));
                    } else {
                        let j = (splitmix(b.offered) % b.offered) as usize;
                        if j < per_bucket {
                            b.pairs[j] = (a, c);
                        }
                    }
                }
            }
        }
        let total = self.compared.fetch_add(1, Ordering::AcqRel) + 1;
        self.compared_tx.send_replace(total);
    }

    fn task(&self, m: &ModelShadow) -> Option<Task> {
        match self.cfg.model.task {
            Task::Auto => m.evidence.task(),
            t => Some(t),
        }
    }

    fn report_of(&self, model: &str, m: &mut ModelShadow, now: Instant) -> ShadowReport {
        let task = self.task(m);
        let (mut labelled, mut agree, mut numeric, mut abs_diff, mut unparsed) = (0, 0, 0, 0.0, 0);
        let mut primary_labels: HashMap<String, u64> = HashMap::new();
        let mut shadow_labels: HashMap<String, u64> = HashMap::new();
        let mut primary_values = Vec::new();
        let mut shadow_values = Vec::new();
        for (_, b) in m.window.live(now) {
            labelled += b.labelled;
            agree += b.agree;
            numeric += b.numeric;
            abs_diff += b.abs_diff;
            unparsed += b.unparsed;
            for (k, v) in &b.primary_labels {
                *primary_labels.entry(k.clone()).or_insert(0) += v;
            }
            for (k, v) in &b.shadow_labels {
                *shadow_labels.entry(k.clone()).or_insert(0) += v;
            }
            for &(a, c) in &b.pairs {
                primary_values.push(a);
                shadow_values.push(c);
            }
        }
        let classification = task == Some(Task::Classification);
        let regression = task == Some(Task::Regression);
        let prediction_psi = if classification {
            label_psi(&primary_labels, &shadow_labels)
        } else if regression {
            numeric_psi(&primary_values, &shadow_values)
        } else {
            None
        };
        ShadowReport {
            model: model.to_string(),
            task: task.map(|t| match t {
                Task::Regression => "regression",
                _ => "classification",
            }),
            rows: labelled,
            agreement: (classification && labelled > 0).then(|| agree as f64 / labelled as f64),
            numeric_rows: numeric,
            mean_abs_diff: (regression && numeric > 0).then(|| abs_diff / numeric as f64),
            prediction_psi,
            unparsed,
        }
    }

    /// Every model's report as of `now`.
    pub fn reports(&self, now: Instant) -> Vec<ShadowReport> {
        let Ok(mut models) = self.models.lock() else {
            return Vec::new();
        };
        let mut out: Vec<ShadowReport> = models
            .iter_mut()
            .map(|(name, m)| self.report_of(name, m, now))
            .collect();
        out.sort_by(|a, b| a.model.cmp(&b.model));
        out
    }

    /// Exports every model's figures (an empty window removes its series).
    pub fn export(&self, now: Instant) {
        for r in self.reports(now) {
            let labels = ModelLabels {
                model: r.model.clone(),
            };
            set_or_remove(&self.metrics.agreement, &labels, r.agreement);
            set_or_remove(&self.metrics.mean_abs_diff, &labels, r.mean_abs_diff);
            set_or_remove(&self.metrics.prediction_psi, &labels, r.prediction_psi);
        }
    }
}

/// PSI of the shadow's label counts against the primary's label proportions.
pub fn label_psi(primary: &HashMap<String, u64>, shadow: &HashMap<String, u64>) -> Option<f64> {
    let total: u64 = primary.values().sum();
    if total == 0 {
        return None;
    }
    let mut labels: Vec<(&String, &u64)> = primary.iter().collect();
    labels.sort();
    let expected = labels
        .into_iter()
        .map(|(k, v)| (k.clone(), *v as f64 / total as f64));
    align_categories(expected, shadow.iter().map(|(k, v)| (k.clone(), *v))).psi()
}

/// PSI of the shadow's values against the primary's, over bins at the primary's deciles.
pub fn numeric_psi(primary: &[f64], shadow: &[f64]) -> Option<f64> {
    let sorted = crate::stats::sorted_finite(primary);
    let edges = quantile_edges(&sorted, PSI_BINS);
    let expected = proportions(&bin_counts(&edges, &sorted))?;
    psi_counts(&expected, &bin_counts(&edges, shadow))
}

/// A 64-bit mix of `x` (SplitMix64's finaliser): the reservoir's index draw.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Analysis for Comparison {
    fn name(&self) -> &'static str {
        "shadow"
    }

    /// The primary's exchanges reach the comparison inside [`CompareJob`]s, paired with the
    /// shadow's answer; nothing to do per exchange.
    fn observe(&self, _exchange: &Exchange<'_>) {}

    fn refresh(&self, _baselines: &Registry) {
        self.export(Instant::now());
    }

    fn report(&self, model: &str) -> Option<serde_json::Value> {
        self.reports(Instant::now())
            .into_iter()
            .find(|r| r.model == model)
            .and_then(|r| serde_json::to_value(r).ok())
    }
}
