//! Data quality per model and input feature over the sliding window (docs/quality.md).
//!
//! Every captured row is checked feature by feature against the model's baseline:
//!
//! - **missing**: `null`, NaN, an empty string, or a baseline feature absent from the row;
//! - **type mismatch**: text that does not read as a number on a numeric feature;
//! - **unseen category**: a categorical value the baseline never saw;
//! - **out of range**: a numeric value outside the baseline `[min, max]`;
//! - **outlier**: a numeric value beyond the baseline's Tukey far-out fences
//!   `[Q1 − 3·IQR, Q3 + 3·IQR]` (robust: the quartiles do not move with the tails).
//!
//! The first four are counted since start in `mlmon_feature_errors_total{reason}`; all five
//! are kept per time bucket (the drift window, `drift.window`), which gives the window
//! ratios, the window mean/std/min/max, and the data quality score:
//!
//! ```text
//! score = 1 − mean over features with values in the window of
//!             min(1, max(0, missing − baseline missing) + type_mismatch + unseen + out_of_range)
//! ```
//!
//! (each term a share of the feature's window values, missing ones included). Features the
//! baseline does not know (or every feature of a model without a baseline) are still
//! tracked for missing values and type mismatches, their type fixed by the first value seen,
//! up to `limits.max_features` features per model.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use serde::Serialize;
use tokio::time::Instant;

use crate::analysis::{Analysis, Exchange};
use crate::baseline::Registry;
use crate::baseline::{
    category_key, Current, FeatureBaseline, FeatureType, Snapshot, OTHER_CATEGORY,
};
use crate::config::Config;
use crate::metrics::labels::ModelLabels;
use crate::metrics::quality::{
    FeatureReasonLabels, FeatureStatLabels, QualityFeatureLabels, QualityMetrics, REASONS,
};
use crate::record::FeatureValue;
use crate::window::Buckets;
use crate::window::Moments;

/// Multiple of the interquartile range beyond the quartiles that makes a value an outlier
/// (Tukey's "far out" fences).
pub const OUTLIER_IQR_FACTOR: f64 = 3.0;

/// How a value was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A usable value (`outlier`/`out_of_range` for numeric values beyond the limits).
    Ok {
        /// Outside the baseline `[min, max]`.
        out_of_range: bool,
        /// Beyond the outlier fences.
        outlier: bool,
    },
    /// Missing.
    Missing,
    /// Text on a numeric feature.
    TypeMismatch,
    /// A category the baseline never saw.
    UnseenCategory,
}

/// What the baseline says a feature should look like.
#[derive(Debug, Clone)]
enum Spec {
    Numeric {
        min: Option<f64>,
        max: Option<f64>,
        fences: Option<(f64, f64)>,
        baseline_missing: f64,
    },
    Categorical {
        known: HashSet<String>,
        /// The baseline pooled rare values into `__other__`: nothing is "unseen".
        pooled: bool,
        baseline_missing: f64,
    },
    /// Not in the baseline: the type is fixed by the first non-missing value.
    Unknown { numeric: Option<bool> },
}

/// Numeric reading of a value, as the drift windows read it.
enum Num {
    Value(f64),
    Missing,
    Text,
}

fn numeric(value: &FeatureValue) -> Num {
    match value {
        FeatureValue::Number(v) if v.is_finite() => Num::Value(*v),
        FeatureValue::Number(_) | FeatureValue::Missing => Num::Missing,
        FeatureValue::Text(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Num::Missing;
            }
            match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Num::Value(v),
                Ok(_) => Num::Missing,
                Err(_) => Num::Text,
            }
        }
    }
}

impl Spec {
    fn from_baseline(b: &FeatureBaseline) -> Spec {
        match b.kind {
            FeatureType::Numeric => {
                let fences = b.stats.quantiles.map(|q| {
                    let iqr = (q.p75 - q.p25).max(0.0);
                    (
                        q.p25 - OUTLIER_IQR_FACTOR * iqr,
                        q.p75 + OUTLIER_IQR_FACTOR * iqr,
                    )
                });
                Spec::Numeric {
                    min: b.stats.min,
                    max: b.stats.max,
                    fences,
                    baseline_missing: b.stats.missing_ratio,
                }
            }
            FeatureType::Categorical => {
                let mut known = HashSet::new();
                let mut pooled = false;
                if let Some(c) = &b.categories {
                    for (name, _) in c.iter() {
                        if name == OTHER_CATEGORY {
                            pooled = true;
                        } else {
                            known.insert(name.to_string());
                        }
                    }
                }
                Spec::Categorical {
                    known,
                    pooled,
                    baseline_missing: b.stats.missing_ratio,
                }
            }
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Spec::Numeric { .. }
            | Spec::Unknown {
                numeric: Some(true),
            } => "numeric",
            Spec::Categorical { .. }
            | Spec::Unknown {
                numeric: Some(false),
            } => "categorical",
            Spec::Unknown { numeric: None } => "unknown",
        }
    }

    fn baseline_missing(&self) -> f64 {
        match self {
            Spec::Numeric {
                baseline_missing, ..
            }
            | Spec::Categorical {
                baseline_missing, ..
            } => *baseline_missing,
            Spec::Unknown { .. } => 0.0,
        }
    }

    /// Judges one value; returns the check and the numeric value when there is one.
    fn check(&mut self, value: &FeatureValue) -> (Check, Option<f64>) {
        match self {
            Spec::Numeric {
                min, max, fences, ..
            } => match numeric(value) {
                Num::Value(v) => {
                    let out_of_range = min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m);
                    let outlier = fences.is_some_and(|(lo, hi)| v < lo || v > hi);
                    (
                        Check::Ok {
                            out_of_range,
                            outlier,
                        },
                        Some(v),
                    )
                }
                Num::Missing => (Check::Missing, None),
                Num::Text => (Check::TypeMismatch, None),
            },
            Spec::Categorical { known, pooled, .. } => match category_key(value) {
                None => (Check::Missing, None),
                Some(k) if *pooled || known.contains(k.as_ref()) => (
                    Check::Ok {
                        out_of_range: false,
                        outlier: false,
                    },
                    None,
                ),
                Some(_) => (Check::UnseenCategory, None),
            },
            Spec::Unknown { numeric: kind } => {
                let n = numeric(value);
                if matches!(n, Num::Missing) {
                    return (Check::Missing, None);
                }
                let is_num = *kind.get_or_insert(matches!(n, Num::Value(_)));
                match (is_num, n) {
                    (true, Num::Value(v)) => (
                        Check::Ok {
                            out_of_range: false,
                            outlier: false,
                        },
                        Some(v),
                    ),
                    (true, _) => (Check::TypeMismatch, None),
                    (false, _) => (
                        Check::Ok {
                            out_of_range: false,
                            outlier: false,
                        },
                        None,
                    ),
                }
            }
        }
    }
}

/// Counts of one feature in one time bucket.
#[derive(Debug, Clone, Default)]
struct Counts {
    values: u64,
    missing: u64,
    type_mismatch: u64,
    unseen: u64,
    out_of_range: u64,
    outlier: u64,
    numeric: u64,
    moments: Moments,
}

impl Counts {
    fn merge(&mut self, o: &Counts) {
        self.values += o.values;
        self.missing += o.missing;
        self.type_mismatch += o.type_mismatch;
        self.unseen += o.unseen;
        self.out_of_range += o.out_of_range;
        self.outlier += o.outlier;
        self.numeric += o.numeric;
        self.moments.merge(&o.moments);
    }
}

struct FeatureQuality {
    name: String,
    in_baseline: bool,
    spec: Spec,
    window: Buckets<Counts>,
    /// Since start, per [`REASONS`] entry.
    totals: [u64; 4],
    /// Already added to the counters.
    exported: [u64; 4],
}

impl FeatureQuality {
    fn new(name: &str, spec: Spec, in_baseline: bool, cfg: &Config) -> Self {
        FeatureQuality {
            name: name.to_string(),
            in_baseline,
            spec,
            window: Buckets::new(cfg.drift.window),
            totals: [0; 4],
            exported: [0; 4],
        }
    }

    fn push(&mut self, value: &FeatureValue, now: Instant) {
        let (check, v) = self.spec.check(value);
        let c = self.window.current(now);
        c.values += 1;
        let reason = match check {
            Check::Ok {
                out_of_range,
                outlier,
            } => {
                if let Some(v) = v {
                    c.numeric += 1;
                    c.moments.merge(&Moments {
                        n: 1,
                        mean: v,
                        m2: 0.0,
                        min: v,
                        max: v,
                    });
                }
                if outlier {
                    c.outlier += 1;
                }
                if out_of_range {
                    c.out_of_range += 1;
                    Some(3)
                } else {
                    None
                }
            }
            Check::Missing => {
                c.missing += 1;
                Some(0)
            }
            Check::TypeMismatch => {
                c.type_mismatch += 1;
                Some(1)
            }
            Check::UnseenCategory => {
                c.unseen += 1;
                Some(2)
            }
        };
        if let Some(r) = reason {
            self.totals[r] += 1;
        }
    }
}

struct ModelQuality {
    baseline_id: Option<String>,
    /// Registry generation the state was built from (`None`: set directly, or none).
    generation: Option<u64>,
    features: Vec<FeatureQuality>,
    index: HashMap<String, usize>,
    rows: Buckets<u64>,
    seen: Vec<bool>,
}

/// Window counts of one feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QualityCounts {
    /// Values in the window, missing ones included.
    pub values: u64,
    /// Missing values.
    pub missing: u64,
    /// Text on a numeric feature.
    pub type_mismatch: u64,
    /// Categories the baseline never saw.
    pub unseen_category: u64,
    /// Numeric values outside the baseline `[min, max]`.
    pub out_of_range: u64,
    /// Numeric values beyond the outlier fences.
    pub outlier: u64,
    /// Usable numeric values (the base of the outlier and out-of-range ratios).
    pub numeric: u64,
}

/// The baseline limits a numeric feature is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QualityLimits {
    /// Baseline minimum.
    pub min: Option<f64>,
    /// Baseline maximum.
    pub max: Option<f64>,
    /// Lower outlier fence, `Q1 − 3·IQR`.
    pub lower_fence: Option<f64>,
    /// Upper outlier fence, `Q3 + 3·IQR`.
    pub upper_fence: Option<f64>,
}

/// Errors since start by reason.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorTotals {
    /// Missing values.
    pub missing: u64,
    /// Type mismatches.
    pub type_mismatch: u64,
    /// Unseen categories.
    pub unseen_category: u64,
    /// Values out of the baseline range.
    pub out_of_range: u64,
}

/// Data quality of one feature over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureQualityReport {
    /// Feature name.
    pub feature: String,
    /// `numeric`, `categorical`, or `unknown` (not in the baseline, no value seen yet).
    #[serde(rename = "type")]
    pub feature_type: &'static str,
    /// Whether the baseline describes the feature.
    pub in_baseline: bool,
    /// Window counts.
    pub window: QualityCounts,
    /// Missing share of the window's values.
    pub missing_ratio: Option<f64>,
    /// Missing share in the baseline.
    pub baseline_missing_ratio: Option<f64>,
    /// Type mismatch share of the window's values.
    pub type_mismatch_ratio: Option<f64>,
    /// Unseen category share of the window's values.
    pub unseen_category_ratio: Option<f64>,
    /// Out-of-range share of the window's numeric values.
    pub out_of_range_ratio: Option<f64>,
    /// Outlier share of the window's numeric values.
    pub outlier_ratio: Option<f64>,
    /// The feature's share of problems used by the score (`None` without values).
    pub problem_ratio: Option<f64>,
    /// Window mean (numeric).
    pub mean: Option<f64>,
    /// Window standard deviation, ddof = 0 (numeric).
    pub std: Option<f64>,
    /// Window minimum (numeric).
    pub min: Option<f64>,
    /// Window maximum (numeric).
    pub max: Option<f64>,
    /// Baseline limits (numeric features of the baseline).
    pub limits: Option<QualityLimits>,
    /// Errors since start.
    pub errors_total: ErrorTotals,
}

/// Data quality of one model over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// Model name.
    pub model: String,
    /// Baseline id, when the model has a baseline.
    pub baseline_id: Option<String>,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Rows seen in the window.
    pub rows: u64,
    /// Data quality score in 0..1; `None` before any value.
    pub score: Option<f64>,
    /// Features in baseline order, then features the baseline does not know.
    pub features: Vec<FeatureQualityReport>,
}

/// Data quality state of every model.
pub struct QualityEngine {
    cfg: Arc<Config>,
    metrics: Arc<QualityMetrics>,
    baselines: Option<Arc<Registry>>,
    models: DashMap<String, Mutex<ModelQuality>>,
}

impl std::fmt::Debug for QualityEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QualityEngine")
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl QualityEngine {
    /// An engine following each model's baseline in `baselines` when given; without it,
    /// baselines come only from [`QualityEngine::set_baseline`].
    pub fn new(
        cfg: Arc<Config>,
        metrics: Arc<QualityMetrics>,
        baselines: Option<Arc<Registry>>,
    ) -> Self {
        QualityEngine {
            cfg,
            metrics,
            baselines,
            models: DashMap::new(),
        }
    }

    fn fresh(&self, model: &str, snapshot: Option<&Snapshot>) -> ModelQuality {
        let mut features = Vec::new();
        let mut index = HashMap::new();
        if let Some(s) = snapshot {
            for (name, b) in s.features.iter().take(self.cfg.limits.max_features) {
                index.insert(name.to_string(), features.len());
                features.push(FeatureQuality::new(
                    name,
                    Spec::from_baseline(b),
                    true,
                    &self.cfg,
                ));
                // Zero-initialised, so increase() sees the first error.
                for reason in REASONS {
                    let _ = self.metrics.errors.get_or_create(&FeatureReasonLabels {
                        model: model.to_string(),
                        feature: name.to_string(),
                        reason,
                    });
                }
            }
        }
        ModelQuality {
            baseline_id: snapshot.map(|s| s.id.clone()),
            generation: None,
            seen: vec![false; features.len()],
            features,
            index,
            rows: Buckets::new(self.cfg.drift.window),
        }
    }

    /// Installs (or replaces) the baseline of `model`: its windows start empty.
    pub fn set_baseline(&self, model: &str, snapshot: &Snapshot) {
        self.install(model, snapshot, None);
    }

    fn install(&self, model: &str, snapshot: &Snapshot, generation: Option<u64>) {
        self.forget_series(model);
        let mut state = self.fresh(model, Some(snapshot));
        state.generation = generation;
        self.models.insert(model.to_string(), Mutex::new(state));
    }

    fn forget_series(&self, model: &str) {
        let Some(entry) = self.models.get(model) else {
            return;
        };
        let Ok(m) = entry.lock() else { return };
        for f in &m.features {
            self.metrics.remove_feature(model, &f.name);
        }
    }

    /// Brings `model`'s state in line with its baseline in the registry (new, replaced or
    /// captured baselines reset the windows).
    fn sync(&self, model: &str, current: Option<&Current>) {
        let known = self
            .models
            .get(model)
            .and_then(|m| m.lock().ok().map(|m| m.generation));
        match (known, current) {
            (Some(known), Some(c)) if known == Some(c.generation) => {}
            (Some(_), None) => {}
            (_, Some(c)) => self.install(model, &c.snapshot, Some(c.generation)),
            (None, None) => {
                if self.models.len() < self.cfg.model.max_models.saturating_add(1) {
                    let state = self.fresh(model, None);
                    self.models
                        .entry(model.to_string())
                        .or_insert_with(|| Mutex::new(state));
                }
            }
        }
    }

    /// Checks every row of one exchange at time `now`.
    pub fn observe(&self, obs: &Exchange<'_>) {
        let (model, now) = (obs.model, obs.now);
        if self.baselines.is_some() {
            self.sync(model, obs.baseline.map(|c| &**c));
        } else if !self.models.contains_key(model) {
            let state = self.fresh(model, None);
            self.models
                .entry(model.to_string())
                .or_insert_with(|| Mutex::new(state));
        }
        let Some(entry) = self.models.get(model) else {
            return;
        };
        let Ok(mut guard) = entry.lock() else { return };
        let m = &mut *guard;
        let max = self.cfg.limits.max_features;
        for row in &obs.parsed.rows {
            *m.rows.current(now) += 1;
            m.seen.iter_mut().for_each(|s| *s = false);
            for (name, value) in &row.values {
                let i = match m.index.get(name.as_str()) {
                    Some(&i) => i,
                    None if m.features.len() < max => {
                        let i = m.features.len();
                        m.features.push(FeatureQuality::new(
                            name,
                            Spec::Unknown { numeric: None },
                            false,
                            &self.cfg,
                        ));
                        m.index.insert(name.clone(), i);
                        m.seen.push(false);
                        i
                    }
                    None => continue,
                };
                if !m.seen[i] {
                    m.seen[i] = true;
                    m.features[i].push(value, now);
                }
            }
            for (i, f) in m.features.iter_mut().enumerate() {
                if !m.seen[i] {
                    f.push(&FeatureValue::Missing, now);
                }
            }
        }
    }

    /// Data quality of `model` now; `None` for a model never seen.
    pub fn report(&self, model: &str) -> Option<QualityReport> {
        self.report_at(model, Instant::now())
    }

    /// [`QualityEngine::report`] as of `now`.
    pub fn report_at(&self, model: &str, now: Instant) -> Option<QualityReport> {
        let entry = self.models.get(model)?;
        let mut m = entry.lock().ok()?;
        let rows = m.rows.live(now).map(|(_, n)| *n).sum();
        let mut features = Vec::with_capacity(m.features.len());
        let mut problems = 0.0;
        let mut scored = 0usize;
        for f in m.features.iter_mut() {
            let mut c = Counts::default();
            for (_, b) in f.window.live(now) {
                c.merge(b);
            }
            let baseline_missing = f.spec.baseline_missing();
            let problem = (c.values > 0).then(|| {
                let n = c.values as f64;
                let excess = (c.missing as f64 / n - baseline_missing).max(0.0);
                (excess + (c.type_mismatch + c.unseen + c.out_of_range) as f64 / n).min(1.0)
            });
            if let Some(p) = problem {
                problems += p;
                scored += 1;
            }
            let numeric = f.spec.type_name() == "numeric" && c.moments.n > 0;
            let limits = match &f.spec {
                Spec::Numeric {
                    min, max, fences, ..
                } => Some(QualityLimits {
                    min: *min,
                    max: *max,
                    lower_fence: fences.map(|f| f.0),
                    upper_fence: fences.map(|f| f.1),
                }),
                _ => None,
            };
            features.push(FeatureQualityReport {
                feature: f.name.clone(),
                feature_type: f.spec.type_name(),
                in_baseline: f.in_baseline,
                window: QualityCounts {
                    values: c.values,
                    missing: c.missing,
                    type_mismatch: c.type_mismatch,
                    unseen_category: c.unseen,
                    out_of_range: c.out_of_range,
                    outlier: c.outlier,
                    numeric: c.numeric,
                },
                missing_ratio: ratio(c.missing, c.values),
                baseline_missing_ratio: f.in_baseline.then_some(baseline_missing),
                type_mismatch_ratio: ratio(c.type_mismatch, c.values),
                unseen_category_ratio: ratio(c.unseen, c.values),
                out_of_range_ratio: ratio(c.out_of_range, c.numeric),
                outlier_ratio: ratio(c.outlier, c.numeric),
                problem_ratio: problem,
                mean: numeric.then_some(c.moments.mean),
                std: if numeric { c.moments.std() } else { None },
                // Window extremes are raw feature values: withheld from the API and
                // `mlmon_feature_stat` unless privacy.log_values (SPEC section 1).
                min: (numeric && self.cfg.privacy.log_values).then_some(c.moments.min),
                max: (numeric && self.cfg.privacy.log_values).then_some(c.moments.max),
                limits,
                errors_total: ErrorTotals {
                    missing: f.totals[0],
                    type_mismatch: f.totals[1],
                    unseen_category: f.totals[2],
                    out_of_range: f.totals[3],
                },
            });
        }
        let score = (scored > 0).then(|| 1.0 - problems / scored as f64);
        Some(QualityReport {
            model: model.to_string(),
            baseline_id: m.baseline_id.clone(),
            window_seconds: self.cfg.drift.window.as_secs_f64(),
            rows,
            score,
            features,
        })
    }

    /// The window's data quality score of `model` (0..1), `None` before any value: read by
    /// the model health status.
    pub fn score(&self, model: &str) -> Option<f64> {
        self.report(model).and_then(|r| r.score)
    }

    /// Models with quality state.
    pub fn models(&self) -> Vec<String> {
        self.models.iter().map(|e| e.key().clone()).collect()
    }

    /// Recomputes every model's window gauges and adds new errors to the counters.
    pub fn refresh(&self) {
        let now = Instant::now();
        if let Some(registry) = &self.baselines {
            for model in registry.models() {
                self.sync(&model, registry.get(&model).as_deref());
            }
        }
        for model in self.models() {
            if let Some(registry) = &self.baselines {
                self.sync(&model, registry.get(&model).as_deref());
            }
            self.export_counters(&model);
            if let Some(r) = self.report_at(&model, now) {
                self.export(&r);
            }
        }
    }

    fn export_counters(&self, model: &str) {
        let Some(entry) = self.models.get(model) else {
            return;
        };
        let Ok(mut m) = entry.lock() else { return };
        for f in m.features.iter_mut() {
            for (i, reason) in REASONS.iter().enumerate() {
                let delta = f.totals[i].saturating_sub(f.exported[i]);
                if delta > 0 {
                    self.metrics
                        .errors
                        .get_or_create(&FeatureReasonLabels {
                            model: model.to_string(),
                            feature: f.name.clone(),
                            reason,
                        })
                        .inc_by(delta);
                    f.exported[i] = f.totals[i];
                }
            }
        }
    }

    fn export(&self, r: &QualityReport) {
        let m = &self.metrics;
        for f in &r.features {
            let labels = QualityFeatureLabels {
                model: r.model.clone(),
                feature: f.feature.clone(),
            };
            let set = |family: &crate::metrics::F64Family<QualityFeatureLabels>, v: Option<f64>| {
                crate::metrics::set_or_remove(family, &labels, v)
            };
            set(&m.missing_ratio, f.missing_ratio);
            set(&m.outlier_ratio, f.outlier_ratio);
            set(&m.out_of_range_ratio, f.out_of_range_ratio);
            for (stat, v) in [
                ("mean", f.mean),
                ("std", f.std),
                ("min", f.min),
                ("max", f.max),
            ] {
                let labels = FeatureStatLabels {
                    model: r.model.clone(),
                    feature: f.feature.clone(),
                    stat,
                };
                crate::metrics::set_or_remove(&m.stat, &labels, v);
            }
        }
        let labels = ModelLabels {
            model: r.model.clone(),
        };
        crate::metrics::set_or_remove(&m.score, &labels, r.score);
    }
}

impl Analysis for QualityEngine {
    fn name(&self) -> &'static str {
        "quality"
    }

    fn observe(&self, exchange: &Exchange<'_>) {
        QualityEngine::observe(self, exchange);
    }

    fn refresh(&self, _baselines: &Registry) {
        QualityEngine::refresh(self);
    }

    fn report(&self, model: &str) -> Option<serde_json::Value> {
        QualityEngine::report(self, model).and_then(|r| serde_json::to_value(r).ok())
    }
}
