//! The per-version state of every model and its [`Analysis`] implementation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tokio::time::Instant;

use super::compare::{self, CompareParams, Comparison, Verdict, VersionData};
use super::report::{Figure, VersionSummary, VersionsReport};
use super::significance::Moments;
use crate::analysis::{Analysis, Exchange};
use crate::baseline::{FeatureBaseline, FeatureType, Registry};
use crate::config::{Config, Task};
use crate::feedback::{FeedbackStore, MatchedPair, Outcome};
use crate::latency::LatencyWindows;
use crate::metrics::versions::{
    ComparisonLabels, Exported, VersionMetricLabels, VersionMetrics, VersionPsiLabels,
};
use crate::performance::classifier::Classifier;
use crate::performance::scores::{label_of, label_of_str, number_of};
use crate::performance::{baseline_scores, task_from_baseline, FeedbackItem, MAX_AUTO_CLASSES};
use crate::proxy::model_id::ModelNames;
use crate::record::FeatureValue;
use crate::window::{Buckets, BUCKETS};

/// Numeric predictions kept per version over the window at most (a uniform sample per
/// time bucket past that): the KS test and the PSI use the sample.
pub const MAX_PREDICTIONS: usize = 20_000;
/// Rows with class scores kept per version over the window at most (for the estimate).
pub const MAX_SCORE_ROWS: usize = 20_000;
/// Distinct predicted labels counted per version and time bucket; the rest count as
/// [`crate::proxy::model_id::OTHER`].
pub const MAX_LABELS: usize = 64;
/// Class score vectors longer than this are ignored.
const MAX_CLASSES: usize = crate::performance::MAX_CLASSES;
/// Bins of the PSI between two versions (quantile bins of the reference version).
const PSI_BINS: usize = 10;

const BUCKET_PREDICTIONS: usize = MAX_PREDICTIONS / BUCKETS as usize;
const BUCKET_SCORES: usize = MAX_SCORE_ROWS / BUCKETS as usize;

#[derive(Debug, Default)]
struct PredictionBucket {
    rows: u64,
    numbers_seen: u64,
    numbers: Vec<f64>,
    labels: HashMap<String, u64>,
    scores_seen: u64,
    scores: Vec<(Vec<f64>, Option<String>)>,
}

#[derive(Debug, Default)]
struct OutcomeBucket {
    labelled: u64,
    correct: u64,
    abs_n: u64,
    abs_sum: f64,
    abs_sum_sq: f64,
}

#[derive(Debug)]
struct VersionState {
    predictions: Buckets<PredictionBucket>,
    outcomes: Buckets<OutcomeBucket>,
}

/// Everything of one model.
struct ModelState {
    versions: HashMap<Arc<str>, VersionState>,
    /// Predictions of versioned exchanges waiting for ground truth.
    store: FeedbackStore,
    /// Request id → the version that answered it (bounded like the store).
    ids: HashMap<String, Arc<str>>,
    id_order: VecDeque<(Instant, String)>,
    rng: u64,
}

impl ModelState {
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// One version's window, read out for a report or a comparison.
#[derive(Debug, Clone, Default)]
pub struct VersionWindow {
    /// Prediction rows in the window.
    pub rows: u64,
    /// Sample of the numeric predictions.
    pub numbers: Vec<f64>,
    /// Counts of predicted labels (text predictions).
    pub labels: BTreeMap<String, u64>,
    /// Rows with class scores, with their predicted label.
    pub scores: Vec<(Vec<f64>, Option<String>)>,
    /// Rows joined to a ground-truth label.
    pub labelled: u64,
    /// Of which predicted right.
    pub correct: u64,
    /// Absolute errors of rows joined to a numeric ground truth.
    pub abs_errors: Option<Moments>,
}

/// Why a comparison has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareError {
    /// The model has no version data.
    UnknownModel,
    /// The named version has no data in the window.
    UnknownVersion(String),
}

/// Per-version analysis of every model.
pub struct VersionsEngine {
    cfg: Arc<Config>,
    names: Arc<ModelNames>,
    latency: Arc<LatencyWindows>,
    baselines: Arc<Registry>,
    metrics: Arc<VersionMetrics>,
    models: DashMap<String, Mutex<ModelState>>,
}

impl std::fmt::Debug for VersionsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionsEngine")
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

impl VersionsEngine {
    /// An engine folding versions with `names`, reading proxy traffic from `latency`.
    pub fn new(
        cfg: Arc<Config>,
        names: Arc<ModelNames>,
        latency: Arc<LatencyWindows>,
        baselines: Arc<Registry>,
        metrics: Arc<VersionMetrics>,
    ) -> Self {
        VersionsEngine {
            cfg,
            names,
            latency,
            baselines,
            metrics,
            models: DashMap::new(),
        }
    }

    fn new_model(&self, model: &str) -> Mutex<ModelState> {
        Mutex::new(ModelState {
            versions: HashMap::new(),
            store: FeedbackStore::new(self.cfg.feedback.ttl, self.cfg.feedback.max_pending),
            ids: HashMap::new(),
            id_order: VecDeque::new(),
            rng: 0x2545_f491_4f6c_dd1d ^ (model.len() as u64 + 1),
        })
    }

    fn version_state(&self) -> VersionState {
        VersionState {
            predictions: Buckets::new(self.cfg.drift.window),
            outcomes: Buckets::new(self.cfg.drift.window),
        }
    }

    /// Drops request ids past `feedback.ttl`, and the oldest past the requests the store
    /// still holds: it evicts the oldest first, and ground truth joins only what it holds.
    /// (Capped at `feedback.max_pending` ids before, which counts rows: with 8-row
    /// batches the map kept 8 times more ids, each two `String`s, than could still join.)
    fn expire_ids(&self, m: &mut ModelState, now: Instant) {
        m.store.expire(now);
        let cap = self
            .cfg
            .feedback
            .max_pending
            .max(1)
            .min(m.store.pending_requests());
        while let Some((at, _)) = m.id_order.front() {
            let old = now.saturating_duration_since(*at) >= self.cfg.feedback.ttl;
            if !old && m.id_order.len() <= cap {
                break;
            }
            if let Some((_, id)) = m.id_order.pop_front() {
                m.ids.remove(&id);
            }
        }
    }

    /// Request ids kept for joining ground truth to its version (tests).
    #[cfg(test)]
    pub(super) fn pending_ids(&self, model: &str) -> usize {
        self.models
            .get(model)
            .and_then(|m| m.lock().ok().map(|m| m.ids.len()))
            .unwrap_or(0)
    }

    fn push_pair(&self, m: &mut ModelState, version: &Arc<str>, pair: &MatchedPair, now: Instant) {
        let state = self.version_state();
        let v = m.versions.entry(version.clone()).or_insert(state);
        let b = v.outcomes.current(now);
        if let (Some(p), Some(a)) = (label_of(&pair.predicted), label_of(&pair.actual)) {
            b.labelled += 1;
            b.correct += u64::from(p == a);
        }
        if let (Some(p), Some(a)) = (number_of(&pair.predicted), number_of(&pair.actual)) {
            let e = (p - a).abs();
            b.abs_n += 1;
            b.abs_sum += e;
            b.abs_sum_sq += e * e;
        }
    }

    /// Joins ground truth of `model` to the versions that made the predictions. Called
    /// beside the performance engine's join with the same items; returns how many rows
    /// were attributed to a version.
    pub fn feedback(&self, model: &str, items: &[FeedbackItem]) -> usize {
        // The caller checked that the model is known (its label is bounded).
        let entry = self
            .models
            .entry(model.to_string())
            .or_insert_with(|| self.new_model(model));
        let Ok(mut m) = entry.lock() else { return 0 };
        let now = Instant::now();
        self.expire_ids(&mut m, now);
        let mut joined = 0;
        for item in items {
            // Ground truth ahead of its prediction waits in the store's early buffer and
            // is joined when the exchange is observed.
            let outcome = m
                .store
                .feedback(&item.request_id, item.row, item.actual.clone(), now);
            let Outcome::Matched(pair) = outcome else {
                continue;
            };
            if let Some(version) = m.ids.get(&item.request_id).cloned() {
                self.push_pair(&mut m, &version, &pair, now);
                joined += 1;
            }
        }
        joined
    }

    fn window_of(v: &mut VersionState, now: Instant) -> VersionWindow {
        let mut w = VersionWindow::default();
        for (_, b) in v.predictions.live(now) {
            w.rows += b.rows;
            w.numbers.extend_from_slice(&b.numbers);
            for (l, n) in &b.labels {
                *w.labels.entry(l.clone()).or_default() += n;
            }
            w.scores.extend(b.scores.iter().cloned());
        }
        let (mut n, mut sum, mut sq) = (0u64, 0.0, 0.0);
        for (_, b) in v.outcomes.live(now) {
            w.labelled += b.labelled;
            w.correct += b.correct;
            n += b.abs_n;
            sum += b.abs_sum;
            sq += b.abs_sum_sq;
        }
        if n > 0 {
            let nf = n as f64;
            let mean = sum / nf;
            let variance = if n > 1 {
                ((sq - sum * mean) / (nf - 1.0)).max(0.0)
            } else {
                0.0
            };
            w.abs_errors = Some(Moments { n, mean, variance });
        }
        w
    }

    /// The versions of `model` with data (analysed or proxied) and their windows.
    fn windows(&self, model: &str) -> BTreeMap<String, VersionWindow> {
        let now = Instant::now();
        let mut out: BTreeMap<String, VersionWindow> = BTreeMap::new();
        if let Some(entry) = self.models.get(model) {
            if let Ok(mut m) = entry.lock() {
                for (name, v) in m.versions.iter_mut() {
                    let w = Self::window_of(v, now);
                    if w.rows > 0 || w.labelled > 0 || w.abs_errors.is_some() {
                        out.insert(name.to_string(), w);
                    }
                }
            }
        }
        for (m, v) in self.latency.versions() {
            if m == model && self.latency.version_errors(&m, &v).requests > 0 {
                out.entry(v).or_default();
            }
        }
        out
    }

    /// The task of `model`: `model.task`, else its baseline's, else what its versions
    /// predicted (labels or class scores, or few distinct integral numbers: classification).
    fn task(&self, model: &str, windows: &BTreeMap<String, VersionWindow>) -> Option<Task> {
        match self.cfg.model.task {
            Task::Auto => {}
            t => return Some(t),
        }
        if let Some(t) = self
            .baselines
            .snapshot(model)
            .and_then(|s| task_from_baseline(&s))
        {
            return Some(t);
        }
        if windows
            .values()
            .any(|w| !w.labels.is_empty() || !w.scores.is_empty())
        {
            return Some(Task::Classification);
        }
        let mut distinct = BTreeSet::new();
        let mut integral = true;
        let mut any = false;
        for x in windows.values().flat_map(|w| w.numbers.iter()) {
            any = true;
            integral &= x.fract() == 0.0;
            if distinct.len() <= MAX_AUTO_CLASSES {
                distinct.insert(x.to_bits());
            }
        }
        if !any {
            return None;
        }
        Some(if integral && distinct.len() <= MAX_AUTO_CLASSES {
            Task::Classification
        } else {
            Task::Regression
        })
    }

    /// The reference version of `model`: `model.version` when it has data, else the one
    /// with most requests (then most prediction rows) in the window.
    fn reference(&self, model: &str, windows: &BTreeMap<String, VersionWindow>) -> Option<String> {
        if let Some(v) = self.cfg.model.version.as_ref() {
            if windows.contains_key(v) {
                return Some(v.clone());
            }
        }
        windows
            .iter()
            .max_by(|(va, a), (vb, b)| {
                let ra = self.latency.version_errors(model, va).requests;
                let rb = self.latency.version_errors(model, vb).requests;
                // Ties go to the first version in name order.
                (ra, a.rows).cmp(&(rb, b.rows)).then_with(|| vb.cmp(va))
            })
            .map(|(v, _)| v.clone())
    }

    fn data(&self, model: &str, version: &str, window: VersionWindow) -> VersionData {
        VersionData {
            errors: self.latency.version_errors(model, version),
            latency: self
                .latency
                .version_moments(model, version)
                .map(|m| Moments {
                    n: m.n,
                    mean: m.mean,
                    variance: m.variance,
                }),
            window,
        }
    }

    fn estimate(&self, model: &str, w: &VersionWindow) -> Option<Figure> {
        let k = w.scores.last()?.0.len();
        let snapshot = self.baselines.snapshot(model);
        let reference = snapshot.as_deref().and_then(baseline_scores);
        let seen: Vec<String> = w
            .scores
            .iter()
            .filter_map(|(_, l)| l.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let positive = label_of_str(&self.cfg.performance.positive_class);
        let c = Classifier::new(
            k,
            reference.as_ref(),
            &seen,
            &positive,
            self.cfg.performance.threshold,
        );
        let e = c.estimate(
            w.scores
                .iter()
                .filter(|(s, _)| s.len() == k)
                .map(|(s, l)| (s.as_slice(), l.as_deref())),
        )?;
        Some(Figure {
            value: e.accuracy,
            n: e.rows as u64,
        })
    }

    /// Compares version `b` of `model` with version `a`.
    pub fn compare(
        &self,
        model: &str,
        a: &str,
        b: &str,
        params: &CompareParams,
    ) -> Result<Comparison, CompareError> {
        let mut windows = self.windows(model);
        if windows.is_empty() {
            return Err(CompareError::UnknownModel);
        }
        let task = self.task(model, &windows);
        let wa = windows
            .remove(a)
            .ok_or_else(|| CompareError::UnknownVersion(a.to_string()))?;
        let wb = windows
            .remove(b)
            .ok_or_else(|| CompareError::UnknownVersion(b.to_string()))?;
        let (da, db) = (self.data(model, a, wa), self.data(model, b, wb));
        Ok(compare::compare(model, a, b, task, &da, &db, params))
    }

    /// The per-version report of `model`; `None` without version data.
    pub fn versions_report(&self, model: &str) -> Option<VersionsReport> {
        let windows = self.windows(model);
        if windows.is_empty() {
            return None;
        }
        let task = self.task(model, &windows);
        let reference = self.reference(model, &windows);
        let baseline = self.baselines.snapshot(model);
        let base_pred = baseline.as_ref().and_then(|s| s.prediction.as_ref());
        let ref_window = reference.as_ref().and_then(|r| windows.get(r));
        let mut versions = Vec::new();
        for (v, w) in &windows {
            let errors = self.latency.version_errors(model, v);
            let lat = self.latency.version_summary(model, v);
            let moments = self.latency.version_moments(model, v);
            let classification = task == Some(Task::Classification);
            versions.push(VersionSummary {
                version: v.clone(),
                requests: errors.requests,
                errors: errors.errors,
                error_rate: (errors.requests > 0)
                    .then(|| errors.errors as f64 / errors.requests as f64),
                latency_mean: moments.map(|m| m.mean),
                latency_p50: lat.map(|l| l.p50),
                latency_p95: lat.map(|l| l.p95),
                latency_p99: lat.map(|l| l.p99),
                prediction_rows: w.rows,
                accuracy: (classification && w.labelled > 0).then(|| Figure {
                    value: w.correct as f64 / w.labelled as f64,
                    n: w.labelled,
                }),
                mae: if task == Some(Task::Regression) {
                    w.abs_errors.map(|m| Figure {
                        value: m.mean,
                        n: m.n,
                    })
                } else {
                    None
                },
                estimated_accuracy: self.estimate(model, w),
                prediction_psi_baseline: base_pred.and_then(|b| psi_against_baseline(b, w)),
                prediction_psi_reference: match (reference.as_deref(), ref_window) {
                    (Some(r), Some(rw)) if r != v => psi_between(rw, w),
                    _ => None,
                },
            });
        }
        let params = CompareParams::default();
        let comparisons = match reference.as_deref() {
            Some(r) => windows
                .keys()
                .filter(|v| v.as_str() != r)
                .filter_map(|v| self.compare(model, r, v, &params).ok())
                .collect(),
            None => Vec::new(),
        };
        Some(VersionsReport {
            model: model.to_string(),
            task: task.map(|t| match t {
                Task::Regression => "regression",
                _ => "classification",
            }),
            reference,
            window_seconds: self.cfg.drift.window.as_secs_f64(),
            versions,
            comparisons,
        })
    }

    fn models_with_versions(&self) -> Vec<String> {
        let mut models: BTreeSet<String> = self.models.iter().map(|e| e.key().clone()).collect();
        models.extend(self.latency.versions().into_iter().map(|(m, _)| m));
        models.into_iter().collect()
    }

    /// Exports every model's per-version gauges.
    pub fn export(&self) {
        let mut now = Exported::default();
        for model in self.models_with_versions() {
            let Some(r) = self.versions_report(&model) else {
                continue;
            };
            for s in &r.versions {
                let labels = |metric| VersionMetricLabels {
                    model: model.clone(),
                    version: s.version.clone(),
                    metric,
                };
                for (metric, fig) in [("accuracy", s.accuracy), ("mae", s.mae)] {
                    if let Some(f) = fig {
                        let l = labels(metric);
                        self.metrics.performance.get_or_create(&l).set(f.value);
                        now.performance.insert(l);
                    }
                }
                if let Some(f) = s.estimated_accuracy {
                    let l = labels("accuracy");
                    self.metrics.estimated.get_or_create(&l).set(f.value);
                    now.estimated.insert(l);
                }
                for (against, psi) in [
                    ("baseline", s.prediction_psi_baseline),
                    ("reference", s.prediction_psi_reference),
                ] {
                    if let Some(p) = psi {
                        let l = VersionPsiLabels {
                            model: model.clone(),
                            version: s.version.clone(),
                            against,
                        };
                        self.metrics.prediction_psi.get_or_create(&l).set(p);
                        now.prediction_psi.insert(l);
                    }
                }
            }
            for c in &r.comparisons {
                for m in &c.metrics {
                    let l = ComparisonLabels {
                        model: model.clone(),
                        version: c.b.clone(),
                        reference: c.a.clone(),
                        metric: m.metric,
                    };
                    if let (Some(d), Some(p)) = (m.difference, m.p_value) {
                        self.metrics.difference.get_or_create(&l).set(d);
                        self.metrics.p_value.get_or_create(&l).set(p);
                        now.comparison.insert(l.clone());
                    }
                    let verdict = match m.verdict {
                        Verdict::BBetter => Some(1.0),
                        Verdict::NoDifference => Some(0.0),
                        Verdict::BWorse => Some(-1.0),
                        Verdict::Different | Verdict::NotEnoughData => None,
                    };
                    if let Some(v) = verdict {
                        self.metrics.verdict.get_or_create(&l).set(v);
                        now.verdict.insert(l);
                    }
                }
            }
        }
        self.metrics.retain(now);
    }
}

/// PSI of a version's predictions against the baseline's prediction entry.
fn psi_against_baseline(base: &FeatureBaseline, w: &VersionWindow) -> Option<f64> {
    match base.kind {
        FeatureType::Numeric => {
            let bins = base.bins.as_ref()?;
            if w.numbers.is_empty() {
                return None;
            }
            let counts = crate::stats::bin_counts(&bins.edges, &w.numbers);
            crate::stats::psi_counts(&bins.proportions, &counts)
        }
        FeatureType::Categorical => {
            let cats = base.categories.as_ref()?;
            let labels = labels_of(w);
            if labels.is_empty() {
                return None;
            }
            let mut expected = Vec::new();
            let mut counts = Vec::new();
            let mut seen = HashSet::new();
            for (c, p) in cats.iter() {
                expected.push(*p);
                counts.push(labels.get(c).copied().unwrap_or(0));
                seen.insert(c.to_string());
            }
            let other: u64 = labels
                .iter()
                .filter(|(l, _)| !seen.contains(l.as_str()))
                .map(|(_, n)| n)
                .sum();
            if other > 0 {
                expected.push(0.0);
                counts.push(other);
            }
            crate::stats::psi_counts(&expected, &counts)
        }
    }
}

/// The label counts of a window: its text labels, or its numeric predictions as labels
/// (a classifier that answers class indices).
pub(crate) fn labels_of(w: &VersionWindow) -> BTreeMap<String, u64> {
    if !w.labels.is_empty() {
        return w.labels.clone();
    }
    let mut out = BTreeMap::new();
    for x in &w.numbers {
        if let Some(l) = label_of(&FeatureValue::Number(*x)) {
            *out.entry(l).or_default() += 1;
        }
    }
    out
}

/// PSI of version `b`'s predictions against version `a`'s: quantile bins of `a` for
/// numbers, the union of labels for labels.
fn psi_between(a: &VersionWindow, b: &VersionWindow) -> Option<f64> {
    if !a.labels.is_empty() || !b.labels.is_empty() {
        let (la, lb) = (&a.labels, &b.labels);
        let keys: BTreeSet<&String> = la.keys().chain(lb.keys()).collect();
        let na: u64 = la.values().sum();
        if na == 0 || lb.is_empty() {
            return None;
        }
        let expected: Vec<f64> = keys
            .iter()
            .map(|k| la.get(*k).copied().unwrap_or(0) as f64 / na as f64)
            .collect();
        let counts: Vec<u64> = keys
            .iter()
            .map(|k| lb.get(*k).copied().unwrap_or(0))
            .collect();
        return crate::stats::psi_counts(&expected, &counts);
    }
    if a.numbers.is_empty() || b.numbers.is_empty() {
        return None;
    }
    let sorted = crate::stats::sorted_finite(&a.numbers);
    let edges = crate::stats::quantile_edges(&sorted, PSI_BINS);
    let ca = crate::stats::bin_counts(&edges, &sorted);
    let n: u64 = ca.iter().sum();
    if n == 0 {
        return None;
    }
    let expected: Vec<f64> = ca.iter().map(|c| *c as f64 / n as f64).collect();
    let counts = crate::stats::bin_counts(&edges, &b.numbers);
    crate::stats::psi_counts(&expected, &counts)
}

impl Analysis for VersionsEngine {
    fn name(&self) -> &'static str {
        "versions"
    }

    fn observe(&self, ex: &Exchange<'_>) {
        let Some(version) = ex.version else { return };
        let predictions = &ex.parsed.predictions;
        if predictions.is_empty() {
            return;
        }
        // Records of the ingestion API were not folded by the proxy; folding is idempotent.
        let version = self.names.fold_version(ex.model, version);
        let now = ex.now;
        let entry = self
            .models
            .entry(ex.model.to_string())
            .or_insert_with(|| self.new_model(ex.model));
        let Ok(mut m) = entry.lock() else { return };
        self.expire_ids(&mut m, now);
        let mut randoms: Vec<u64> = Vec::with_capacity(predictions.len());
        for _ in predictions {
            randoms.push(m.next());
        }
        {
            let state = self.version_state();
            let v = m.versions.entry(version.clone()).or_insert(state);
            let b = v.predictions.current(now);
            for (p, r) in predictions.iter().zip(randoms) {
                b.rows += 1;
                match &p.value {
                    FeatureValue::Number(x) if x.is_finite() => {
                        b.numbers_seen += 1;
                        reservoir(&mut b.numbers, b.numbers_seen, BUCKET_PREDICTIONS, *x, r);
                    }
                    FeatureValue::Text(s) => {
                        let key = if b.labels.len() < MAX_LABELS || b.labels.contains_key(s) {
                            s.clone()
                        } else {
                            crate::proxy::model_id::OTHER.to_string()
                        };
                        *b.labels.entry(key).or_default() += 1;
                    }
                    _ => {}
                }
                if let Some(s) = p
                    .probabilities
                    .as_ref()
                    .filter(|s| !s.is_empty() && s.len() <= MAX_CLASSES)
                {
                    b.scores_seen += 1;
                    let row = (s.clone(), label_of(&p.value));
                    reservoir(&mut b.scores, b.scores_seen, BUCKET_SCORES, row, r >> 7);
                }
            }
        }
        // Wait for ground truth under this request id.
        let values: Vec<FeatureValue> = predictions.iter().map(|p| p.value.clone()).collect();
        let early = m.store.insert(ex.request_id, values, now);
        if m.ids
            .insert(ex.request_id.to_string(), version.clone())
            .is_none()
        {
            m.id_order.push_back((now, ex.request_id.to_string()));
        }
        for (_, pair) in early {
            self.push_pair(&mut m, &version, &pair, now);
        }
    }

    fn refresh(&self, _baselines: &Registry) {
        self.export();
    }

    fn report(&self, model: &str) -> Option<serde_json::Value> {
        self.versions_report(model)
            .and_then(|r| serde_json::to_value(r).ok())
    }
}

/// Algorithm R: keeps `sample` a uniform sample of at most `cap` of the `seen` values.
fn reservoir<T>(sample: &mut Vec<T>, seen: u64, cap: usize, value: T, random: u64) {
    if sample.len() < cap {
        sample.push(value);
        return;
    }
    let j = (random % seen.max(1)) as usize;
    if let Some(slot) = sample.get_mut(j) {
        *slot = value;
    }
}
