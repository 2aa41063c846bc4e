//! Model performance: ground truth joined to predictions ([`crate::feedback`]), scored over
//! the sliding window (`drift.window`) with scikit-learn's definitions ([`scores`]), and
//! label-free estimates from predicted probabilities ([`cbpe`]).
//!
//! The engine is a [`Sink`]: every analysed prediction waits for its ground truth in the
//! model's [`FeedbackStore`], and predictions carrying class probabilities feed the estimate
//! window. Every `drift.interval` (and on demand for the API) [`PerformanceEngine::refresh`]
//! scores the windows and sets `mlmon_performance` and `mlmon_estimated_performance`; an
//! empty window exports no series rather than a zero.
//!
//! The task (classification or regression) is `model.task`; with `auto` it comes from the
//! baseline's target, else its prediction (categorical, or numeric with at most
//! [`MAX_AUTO_CLASSES`] distinct integral values in its sample → classification), else from
//! what was seen (text labels, probabilities, or only integral values with few distinct ones
//! → classification).

pub mod cbpe;
pub mod classifier;
pub mod joint;
pub mod offline;
pub mod scores;
pub mod window;

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use serde::Serialize;
use tokio::time::Instant;

use crate::analysis::{Analysis, Exchange};
use crate::baseline::Registry;
use crate::baseline::{FeatureType, Snapshot};
use crate::config::{Config, Task};
use crate::feedback::{FeedbackStore, MatchedPair, Outcome};
use crate::metrics::performance::{FeedbackLabels, ModelMetricLabels, PerformanceMetrics};
use crate::record::FeatureValue;
use cbpe::{Calibrator, Estimate, ESTIMATED_METRICS};
use classifier::{Classifier, ThresholdSource};
use scores::{label_of, label_of_str, number_of, ClassificationScores, RegressionScores};

/// Matched pairs kept per model at most (the newest win).
pub const MAX_PAIRS: usize = 100_000;
/// Rows with probabilities kept per model for the estimate at most (the newest win).
pub const MAX_PROBABILITY_ROWS: usize = 100_000;
/// Classes tracked per model at most (probability vectors longer than this are ignored).
pub const MAX_CLASSES: usize = 1_000;
/// `auto` task: at most this many distinct integral values make a classifier.
pub const MAX_AUTO_CLASSES: usize = 20;

/// The metric names of `mlmon_performance{metric}` per task.
pub const REGRESSION_METRICS: [&str; 3] = ["mae", "rmse", "r2"];
/// The classification metric names.
pub const CLASSIFICATION_METRICS: [&str; 6] = ESTIMATED_METRICS;

/// One ground-truth record of `POST /api/v1/feedback/{model}`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackItem {
    /// The request id of the prediction.
    pub request_id: String,
    /// Row within the request's batch (0 for single predictions).
    pub row: usize,
    /// The ground truth.
    pub actual: FeatureValue,
}

/// The fields of one ground-truth record (`POST /api/v1/feedback`, the feedback sources).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackRecord {
    request_id: String,
    actual: serde_json::Value,
    #[serde(default)]
    row: Option<usize>,
}

impl FeedbackItem {
    /// Reads one ground-truth record `{"request_id": …, "actual": …, "row"?: …}`; the error
    /// names the field (without saying which record: the caller knows).
    pub fn from_json(value: serde_json::Value) -> Result<FeedbackItem, String> {
        let r: FeedbackRecord = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if r.request_id.is_empty() {
            return Err("request_id is empty".into());
        }
        let actual = match FeatureValue::from_json(&r.actual) {
            Some(FeatureValue::Missing) | None => {
                return Err(format!(
                    "actual must be a number, string or boolean, not {}",
                    r.actual
                ))
            }
            Some(v) => v,
        };
        Ok(FeedbackItem {
            request_id: r.request_id,
            row: r.row.unwrap_or(0),
            actual,
        })
    }
}

/// Where the task came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSource {
    /// `model.task`.
    Config,
    /// The baseline's prediction entry.
    Baseline,
    /// The predictions and ground truth seen.
    Observed,
}

/// The label-free estimate with how it was calibrated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EstimatedPerformance {
    /// The estimate.
    #[serde(flatten)]
    pub estimate: Estimate,
    /// `baseline` (probabilities recalibrated on the baseline's joint sample) or `assumed`
    /// (the model's probabilities taken as calibrated).
    pub calibration: &'static str,
    /// The positive class of binary estimates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    /// The class order of the score columns.
    pub classes: Vec<String>,
    /// The decision threshold applied to rows without a label (binary estimates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Where that threshold came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_source: Option<ThresholdSource>,
}

/// Feedback bookkeeping of a model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FeedbackState {
    /// Prediction rows waiting for ground truth (matched rows wait until their TTL too).
    pub pending_predictions: usize,
    /// Ground-truth rows waiting for their prediction to be analysed.
    pub early_feedback: usize,
    /// Pairs in the window.
    pub matched_in_window: usize,
    /// Pairs in the window that could not be scored (no label or number).
    pub unusable_in_window: usize,
    /// `feedback.ttl` in seconds.
    pub ttl_seconds: f64,
}

/// Performance of one model now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerformanceReport {
    /// Model name.
    pub model: String,
    /// `classification` or `regression`; `None` until known.
    #[serde(serialize_with = "serialize_task")]
    pub task: Option<Task>,
    /// Where the task came from.
    pub task_source: Option<TaskSource>,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// `performance.positive_class`, normalised.
    pub positive_class: String,
    /// Scores against ground truth (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassificationScores>,
    /// Scores against ground truth (regression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regression: Option<RegressionScores>,
    /// Label-free estimate (classifiers returning probabilities).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated: Option<EstimatedPerformance>,
    /// Feedback bookkeeping.
    pub feedback: FeedbackState,
}

fn serialize_task<S: serde::Serializer>(t: &Option<Task>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(Task::Classification) => s.serialize_some("classification"),
        Some(Task::Regression) => s.serialize_some("regression"),
        _ => s.serialize_none(),
    }
}

impl PerformanceReport {
    /// The exported `(metric, value)` pairs against ground truth.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let mut out = Vec::new();
        if let Some(r) = &self.regression {
            out.push(("mae", r.mae));
            out.push(("rmse", r.rmse));
            if let Some(r2) = r.r2 {
                out.push(("r2", r2));
            }
        }
        if let Some(c) = &self.classification {
            out.push(("accuracy", c.accuracy));
            out.push(("precision", c.precision));
            out.push(("recall", c.recall));
            out.push(("f1", c.f1));
            out.push(("specificity", c.specificity));
            if let Some(v) = c.roc_auc {
                out.push(("roc_auc", v));
            }
        }
        out
    }

    /// The exported estimated `(metric, value)` pairs.
    pub fn estimated_metrics(&self) -> Vec<(&'static str, f64)> {
        self.estimated
            .as_ref()
            .map(|e| e.estimate.metrics())
            .unwrap_or_default()
    }

    /// The exported `(metric, sampling error)` pairs of the estimate.
    pub fn sampling_errors(&self) -> Vec<(&'static str, f64)> {
        self.estimated
            .as_ref()
            .map(|e| {
                e.estimate
                    .sampling_error
                    .iter()
                    .map(|(k, v)| (*k, *v))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Evidence {
    probabilities: bool,
    text: bool,
    non_integral: bool,
    distinct: BTreeSet<String>,
}

impl Evidence {
    fn add(&mut self, v: &FeatureValue) {
        self.add_labelled(v, label_of(v).as_deref());
    }

    /// [`Evidence::add`] with the value's [`label_of`] already computed.
    fn add_labelled(&mut self, v: &FeatureValue, label: Option<&str>) {
        match v {
            FeatureValue::Text(s) if s.trim().parse::<f64>().is_err() => self.text = true,
            FeatureValue::Missing => return,
            _ => {}
        }
        if let Some(x) = number_of(v) {
            if x.fract() != 0.0 {
                self.non_integral = true;
            }
        }
        if self.distinct.len() <= MAX_AUTO_CLASSES {
            if let Some(l) = label {
                if !self.distinct.contains(l) {
                    self.distinct.insert(l.to_string());
                }
            }
        }
    }

    fn task(&self) -> Option<Task> {
        if self.probabilities || self.text {
            return Some(Task::Classification);
        }
        if self.distinct.is_empty() {
            return None;
        }
        if self.non_integral || self.distinct.len() > MAX_AUTO_CLASSES {
            Some(Task::Regression)
        } else {
            Some(Task::Classification)
        }
    }
}

struct CalibrationState {
    /// Baseline id, score columns and labels seen the classifier was built from.
    key: (String, usize, usize),
    classifier: Classifier,
}

/// Labels remembered per model for the class order (sorted, as scikit-learn's `classes_`).
const MAX_SEEN_LABELS: usize = 64;

struct ModelPerformance {
    store: FeedbackStore,
    pairs: VecDeque<(Instant, MatchedPair)>,
    probabilities: window::ProbabilityWindow,
    evidence: Evidence,
    /// Labels seen in predictions with scores and in their ground truth (the class order
    /// without a baseline).
    labels_seen: BTreeSet<String>,
    calibration: Option<CalibrationState>,
    /// The class labels of the last few distinct predicted values ([`LabelCache`]).
    label_cache: LabelCache,
}

/// Distinct predicted values whose [`label_of`] is remembered per model.
const LABEL_CACHE: usize = 8;

/// The labels of the first [`LABEL_CACHE`] distinct predicted values a model returned
/// (a classifier returns few), so that a prediction's label is a comparison of values
/// instead of formatting a number and allocating a string per row. `label_of` is a pure
/// function of the value, so a remembered label is the one it would compute.
#[derive(Debug, Default)]
struct LabelCache(Vec<(FeatureValue, Option<String>)>);

impl LabelCache {
    /// The slot holding `v`'s label, remembering it when there is room; `None` when the
    /// cache is full of other values (the caller computes the label itself).
    fn slot(&mut self, v: &FeatureValue) -> Option<usize> {
        if let Some(k) = self.0.iter().position(|(w, _)| w == v) {
            return Some(k);
        }
        if self.0.len() >= LABEL_CACHE {
            return None;
        }
        self.0.push((v.clone(), label_of(v)));
        Some(self.0.len() - 1)
    }

    /// The label in slot `k`.
    fn label(&self, k: usize) -> Option<&str> {
        self.0.get(k).and_then(|(_, l)| l.as_deref())
    }
}

/// Ground-truth performance and estimates of every model.
pub struct PerformanceEngine {
    cfg: Arc<Config>,
    metrics: Arc<PerformanceMetrics>,
    baselines: Option<Arc<Registry>>,
    models: DashMap<String, Mutex<ModelPerformance>>,
}

impl std::fmt::Debug for PerformanceEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerformanceEngine")
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

/// The task a baseline implies: from its target when it has one (the labels the model
/// learnt), else from its prediction. Categorical, or numeric with at most
/// [`MAX_AUTO_CLASSES`] distinct integral values in its sample, is classification.
pub fn task_from_baseline(snapshot: &Snapshot) -> Option<Task> {
    let entry = snapshot.target.as_ref().or(snapshot.prediction.as_ref())?;
    match entry.kind {
        FeatureType::Categorical => Some(Task::Classification),
        FeatureType::Numeric => {
            if entry.sample.is_empty() {
                return Some(Task::Regression);
            }
            let integral = entry.sample.iter().all(|v| v.fract() == 0.0);
            let mut distinct: Vec<f64> = entry.sample.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            if integral && distinct.len() <= MAX_AUTO_CLASSES {
                Some(Task::Classification)
            } else {
                Some(Task::Regression)
            }
        }
    }
}

impl PerformanceEngine {
    /// An engine reading baselines (task, calibration) from `baselines` when given.
    pub fn new(
        cfg: Arc<Config>,
        metrics: Arc<PerformanceMetrics>,
        baselines: Option<Arc<Registry>>,
    ) -> Self {
        PerformanceEngine {
            cfg,
            metrics,
            baselines,
            models: DashMap::new(),
        }
    }

    fn new_model(&self, model: &str) -> Mutex<ModelPerformance> {
        // Every result starts at zero so that increase() and absent() alerts see the series.
        for result in ["matched", "unmatched", "late"] {
            let _ = self.metrics.feedback.get_or_create(&FeedbackLabels {
                model: model.to_string(),
                result,
            });
        }
        Mutex::new(ModelPerformance {
            store: FeedbackStore::new(self.cfg.feedback.ttl, self.cfg.feedback.max_pending),
            pairs: VecDeque::new(),
            probabilities: window::ProbabilityWindow::new(MAX_PROBABILITY_ROWS),
            evidence: Evidence::default(),
            labels_seen: BTreeSet::new(),
            calibration: None,
            label_cache: LabelCache::default(),
        })
    }

    /// Models with performance state.
    pub fn models(&self) -> Vec<String> {
        self.models.iter().map(|e| e.key().clone()).collect()
    }

    fn count(&self, model: &str, result: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        self.metrics
            .feedback
            .get_or_create(&FeedbackLabels {
                model: model.to_string(),
                result,
            })
            .inc_by(n);
    }

    fn expire(&self, model: &str, m: &mut ModelPerformance, now: Instant) {
        let e = m.store.expire(now);
        self.count(model, "unmatched", e.early_feedback as u64);
        let cutoff = now.checked_sub(self.cfg.drift.window);
        if let Some(cutoff) = cutoff {
            while m.pairs.front().is_some_and(|(t, _)| *t < cutoff) {
                m.pairs.pop_front();
            }
            m.probabilities.expire(cutoff);
        }
    }

    fn push_pair(m: &mut ModelPerformance, now: Instant, pair: MatchedPair) {
        m.evidence.add(&pair.actual);
        // Ground truth names classes too (a class the model never predicts still has a
        // score column).
        if pair.scores.is_some() && m.labels_seen.len() < MAX_SEEN_LABELS {
            if let Some(l) = label_of(&pair.actual) {
                m.labels_seen.insert(l);
            }
        }
        if m.pairs.len() >= MAX_PAIRS {
            m.pairs.pop_front();
        }
        m.pairs.push_back((now, pair));
    }

    /// Joins ground truth of `model`; one outcome per item, in order.
    pub fn feedback(&self, model: &str, items: &[FeedbackItem]) -> Vec<Outcome> {
        let now = Instant::now();
        let entry = self
            .models
            .entry(model.to_string())
            .or_insert_with(|| self.new_model(model));
        let Ok(mut m) = entry.lock() else {
            return Vec::new();
        };
        self.expire(model, &mut m, now);
        let mut out = Vec::with_capacity(items.len());
        let (mut matched, mut unmatched, mut late) = (0u64, 0u64, 0u64);
        for item in items {
            let outcome = m
                .store
                .feedback(&item.request_id, item.row, item.actual.clone(), now);
            match outcome.result() {
                Some("matched") => matched += 1,
                Some("late") => late += 1,
                Some(_) => unmatched += 1,
                None => {}
            }
            if let Outcome::Matched(pair) = &outcome {
                Self::push_pair(&mut m, now, pair.clone());
            }
            out.push(outcome);
        }
        drop(m);
        self.count(model, "matched", matched);
        self.count(model, "unmatched", unmatched);
        self.count(model, "late", late);
        out
    }

    fn task(&self, model: &str, m: &ModelPerformance) -> (Option<Task>, Option<TaskSource>) {
        match self.cfg.model.task {
            Task::Auto => {}
            t => return (Some(t), Some(TaskSource::Config)),
        }
        if let Some(t) = self
            .baselines
            .as_ref()
            .and_then(|d| d.snapshot(model))
            .and_then(|s| task_from_baseline(&s))
        {
            return (Some(t), Some(TaskSource::Baseline));
        }
        match m.evidence.task() {
            Some(t) => (Some(t), Some(TaskSource::Observed)),
            None => (None, None),
        }
    }

    /// The classifier of `model` for rows of `k` score columns: class order, positive
    /// class and decision rule from the baseline and the configuration (rebuilt when the
    /// baseline or the labels seen change).
    fn classifier(
        &self,
        model: &str,
        m: &mut ModelPerformance,
        k: usize,
        positive: &str,
    ) -> Classifier {
        let snapshot = self.baselines.as_ref().and_then(|d| d.snapshot(model));
        let id = snapshot.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        let key = (id, k, m.labels_seen.len());
        if let Some(c) = m.calibration.as_ref().filter(|c| c.key == key) {
            return c.classifier.clone();
        }
        let reference = snapshot.as_deref().and_then(baseline_scores);
        let seen: Vec<String> = m.labels_seen.iter().cloned().collect();
        let classifier = Classifier::new(
            k,
            reference.as_ref(),
            &seen,
            positive,
            self.cfg.performance.threshold,
        );
        m.calibration = Some(CalibrationState {
            key,
            classifier: classifier.clone(),
        });
        classifier
    }

    fn estimate(
        &self,
        model: &str,
        m: &mut ModelPerformance,
        positive: &str,
    ) -> Option<EstimatedPerformance> {
        let k = m.probabilities.last_width()?;
        let c = self.classifier(model, m, k, positive);
        let estimate = c.estimate(m.probabilities.rows())?;
        let binary = c.is_binary();
        Some(EstimatedPerformance {
            estimate,
            calibration: if c.calibrated() {
                "baseline"
            } else {
                "assumed"
            },
            positive_class: binary.then(|| c.classes[c.positive].clone()),
            classes: c.classes.clone(),
            threshold: binary.then_some(c.threshold),
            threshold_source: binary.then_some(c.threshold_source),
        })
    }

    /// Scores `model`'s window now; `None` when the model has no performance state.
    pub fn report(&self, model: &str) -> Option<PerformanceReport> {
        let now = Instant::now();
        let entry = self.models.get(model)?;
        let mut m = entry.lock().ok()?;
        self.expire(model, &mut m, now);
        let positive = label_of_str(&self.cfg.performance.positive_class);
        let (task, task_source) = self.task(model, &m);
        let mut unusable = 0;
        let mut classification = None;
        let mut regression = None;
        match task {
            Some(Task::Regression) => {
                let (mut a, mut p) = (Vec::new(), Vec::new());
                for (_, pair) in &m.pairs {
                    match (number_of(&pair.actual), number_of(&pair.predicted)) {
                        (Some(x), Some(y)) => {
                            a.push(x);
                            p.push(y);
                        }
                        _ => unusable += 1,
                    }
                }
                regression = scores::regression(&a, &p);
            }
            Some(_) => {
                let (mut a, mut p) = (Vec::new(), Vec::new());
                for (_, pair) in &m.pairs {
                    match (label_of(&pair.actual), label_of(&pair.predicted)) {
                        (Some(x), Some(y)) => {
                            a.push(x);
                            p.push(y);
                        }
                        _ => unusable += 1,
                    }
                }
                classification = scores::classification(&a, &p, &positive);
                if let (Some(c), Some(k)) = (
                    classification.as_mut(),
                    m.pairs
                        .iter()
                        .find_map(|(_, p)| p.scores.as_ref().map(Vec::len)),
                ) {
                    let cl = self.classifier(model, &mut m, k, &positive);
                    let (mut a, mut s) = (Vec::new(), Vec::new());
                    for (_, pair) in &m.pairs {
                        if let (Some(x), Some(v)) = (label_of(&pair.actual), pair.scores.as_ref()) {
                            a.push(x);
                            s.push(v.as_slice());
                        }
                    }
                    c.roc_auc = scores::roc_auc_ovr(&a, &s, &cl.classes, cl.positive);
                }
            }
            None => unusable = m.pairs.len(),
        }
        let estimated = if task == Some(Task::Regression) {
            None
        } else {
            self.estimate(model, &mut m, &positive)
        };
        Some(PerformanceReport {
            model: model.to_string(),
            task,
            task_source,
            window_seconds: self.cfg.drift.window.as_secs_f64(),
            positive_class: positive,
            classification,
            regression,
            estimated,
            feedback: FeedbackState {
                pending_predictions: m.store.pending_rows(),
                early_feedback: m.store.early_rows(),
                matched_in_window: m.pairs.len(),
                unusable_in_window: unusable,
                ttl_seconds: self.cfg.feedback.ttl.as_secs_f64(),
            },
        })
    }

    /// Scores every model and updates the gauges.
    pub fn refresh(&self) -> Vec<PerformanceReport> {
        let mut out = Vec::new();
        for model in self.models() {
            let Some(r) = self.report(&model) else {
                continue;
            };
            self.export(&r);
            out.push(r);
        }
        out
    }

    fn export(&self, r: &PerformanceReport) {
        let set = |family: &prometheus_client::metrics::family::Family<
            ModelMetricLabels,
            prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
        >,
                   values: Vec<(&'static str, f64)>| {
            for metric in REGRESSION_METRICS
                .iter()
                .chain(CLASSIFICATION_METRICS.iter())
            {
                let labels = ModelMetricLabels {
                    model: r.model.clone(),
                    metric,
                };
                let value = values
                    .iter()
                    .find(|(n, _)| n == metric)
                    .map(|(_, v)| *v)
                    .filter(|v| v.is_finite());
                crate::metrics::set_or_remove(family, &labels, value);
            }
        };
        set(&self.metrics.performance, r.metrics());
        set(&self.metrics.estimated, r.estimated_metrics());
        set(&self.metrics.sampling_error, r.sampling_errors());
        let cells: Vec<(&str, &str, u64)> = r
            .classification
            .as_ref()
            .map(|c| c.confusion_matrix.cells().collect())
            .unwrap_or_default();
        self.metrics.set_confusion(&r.model, cells);
    }
}

/// Column names and rows (one numeric cell per column) of a joint sample.
type JointView<'a> = (&'a [String], &'a crate::baseline::JointCells);

/// The baseline's row-aligned joint sample (column names, rows), when the snapshot
/// carries one.
fn joint_sample(snapshot: &Snapshot) -> Option<JointView<'_>> {
    snapshot
        .joint_sample
        .as_ref()
        .map(|j| (j.columns.as_slice(), &j.rows))
}

/// Fits the calibration of the positive-class probability on a baseline that holds
/// predicted probabilities and targets jointly; `None` otherwise.
pub fn baseline_calibrator(snapshot: &Snapshot, positive: &str) -> Option<Calibrator> {
    let (columns, rows) = joint_sample(snapshot)?;
    joint::calibrator(columns, rows, positive)
}

/// The baseline's scored rows (scores, predicted label, target) and class order, when it
/// holds scores: the columns of its `probability` entry, else (snapshots built with the
/// score as `--prediction`) a `prediction` column of probabilities.
pub fn baseline_scores(snapshot: &Snapshot) -> Option<classifier::Reference> {
    baseline_scores_for(snapshot, &[])
}

/// [`baseline_scores`], reading the scores from the joint sample's columns named
/// `score_columns` when given and present.
pub fn baseline_scores_for(
    snapshot: &Snapshot,
    score_columns: &[String],
) -> Option<classifier::Reference> {
    let (columns, rows) = joint_sample(snapshot)?;
    // The snapshot's declared score columns (`mlmon baseline build --probability`) and
    // their classes, when the caller names none or the same ones.
    if let Some(p) = snapshot.probability.as_ref() {
        if score_columns.is_empty() || score_columns == p.columns.as_slice() {
            if let Some(mut r) = joint::scored_reference_with(columns, rows, &p.columns) {
                if !p.classes.is_empty() {
                    r.classes = Some(p.classes.iter().map(|c| label_of_str(c)).collect());
                }
                return Some(r);
            }
        }
    }
    joint::scored_reference_with(columns, rows, score_columns)
        .or_else(|| joint::scored_reference(columns, rows))
}

/// The primary metric (accuracy, or R² for regression) of the model on its baseline, when
/// the baseline holds predictions and targets jointly. Scores decide by the model's own
/// decision rule (`threshold` when configured, else learnt from the baseline).
pub fn baseline_reference(
    snapshot: &Snapshot,
    positive: &str,
    threshold: Option<f64>,
    task: Task,
) -> Option<f64> {
    let (columns, rows) = joint_sample(snapshot)?;
    joint::reference(columns, rows, positive, threshold, task)
}

/// A health source giving each model's [`baseline_reference`] (task from `model.task`,
/// else from the baseline).
pub fn reference(baselines: &Registry, cfg: &Config, model: &str) -> Option<f64> {
    {
        let snapshot = baselines.snapshot(model)?;
        let task = match cfg.model.task {
            Task::Auto => task_from_baseline(&snapshot)?,
            t => t,
        };
        let positive = label_of_str(&cfg.performance.positive_class);
        baseline_reference(&snapshot, &positive, cfg.performance.threshold, task)
    }
}

impl Analysis for PerformanceEngine {
    fn name(&self) -> &'static str {
        "performance"
    }

    fn refresh(&self, _baselines: &Registry) {
        PerformanceEngine::refresh(self);
    }

    fn report(&self, model: &str) -> Option<serde_json::Value> {
        PerformanceEngine::report(self, model).and_then(|r| serde_json::to_value(r).ok())
    }

    fn observe(&self, obs: &Exchange<'_>) {
        let (model, now) = (obs.model, obs.now);
        let predictions = &obs.parsed.predictions;
        if predictions.is_empty() {
            return;
        }
        let entry = match self.models.get(model) {
            Some(entry) => entry,
            None => self
                .models
                .entry(model.to_string())
                .or_insert_with(|| self.new_model(model))
                .downgrade(),
        };
        let Ok(mut guard) = entry.lock() else { return };
        let m = &mut *guard;
        self.expire(model, m, now);
        // Per label cache slot, what this exchange already did for it: bit 1, added its
        // value to the task evidence; bit 2, noted its label among the labels seen. Both
        // are idempotent (sets that only grow, flags that only turn on), so a repeated
        // value of the batch skips them: the outcome is that of doing them per row.
        let mut done = [0_u8; LABEL_CACHE];
        for p in predictions {
            let slot = m.label_cache.slot(&p.value);
            let computed;
            let predicted = match slot {
                Some(k) => m.label_cache.label(k),
                None => {
                    computed = label_of(&p.value);
                    computed.as_deref()
                }
            };
            let mut flags = slot.and_then(|k| done.get_mut(k));
            if flags.as_deref().is_none_or(|f| f & 1 == 0) {
                m.evidence.add_labelled(&p.value, predicted);
                if let Some(f) = flags.as_deref_mut() {
                    *f |= 1;
                }
            }
            let Some(probs) = p.probabilities.as_ref() else {
                continue;
            };
            if probs.is_empty() || probs.len() > MAX_CLASSES {
                continue;
            }
            m.evidence.probabilities = true;
            if let Some(l) = predicted {
                if flags.as_deref().is_none_or(|f| f & 2 == 0) {
                    if m.labels_seen.len() < MAX_SEEN_LABELS && !m.labels_seen.contains(l) {
                        m.labels_seen.insert(l.to_string());
                    }
                    if let Some(f) = flags {
                        *f |= 2;
                    }
                }
            }
            m.probabilities.push(now, probs, predicted);
        }
        let matched = m
            .store
            .insert_predictions(obs.request_id, predictions, MAX_CLASSES, now);
        let n = matched.len() as u64;
        for (_, pair) in matched {
            Self::push_pair(m, now, pair);
        }
        drop(guard);
        self.count(model, "matched", n);
    }
}

#[cfg(test)]
mod tests;
