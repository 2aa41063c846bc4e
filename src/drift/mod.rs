//! The streaming drift engine (SPEC section 5).
//!
//! Per model it holds the baseline snapshot and one [`window::FeatureWindow`] per baseline
//! feature (inputs in baseline order, at most `limits.max_features`, then the output
//! `prediction`), following the model's baseline in the [`crate::baseline::Registry`] by
//! generation. The analysis side pushes every parsed row into the windows
//! ([`crate::analysis::Analysis::observe`]); every `drift.interval` (and on demand for the API)
//! [`DriftEngine::report`] computes PSI, JS, KS, Wasserstein and chi-square against the
//! baseline, derives each feature's status from the thresholds, and the gauges are
//! updated. An empty window reports no value (the series are removed), never zero drift.

pub mod offline;
pub mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use serde::Serialize;
use tokio::time::Instant;

use crate::analysis::{Analysis, Exchange};
use crate::baseline::{
    Current, FeatureBaseline, FeatureType, Registry, Snapshot, ThresholdPair, OTHER_CATEGORY,
};
use crate::config::{Config, Level};
use crate::metrics::drift::{BaselineLabels, BinLabels, DriftMetrics, FeatureLabels};
use crate::metrics::labels::ModelLabels;
use crate::record::{FeatureValue, Kind};
use crate::stats;
use crate::stats::sketch::{QuantileSketch, DEFAULT_COMPRESSION, MAX_COMPRESSION};
use window::{FeatureWindow, Layout, WindowView};

pub use crate::record::PREDICTION;

/// Drift status of a feature or model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Within the warning threshold.
    Ok,
    /// At or past the warning threshold.
    Warning,
    /// At or past the critical threshold.
    Critical,
}

impl Status {
    /// 0, 1 or 2 as exported.
    pub fn code(self) -> i64 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
        }
    }

    fn from_code(c: u8) -> Status {
        match c {
            0 => Status::Ok,
            1 => Status::Warning,
            _ => Status::Critical,
        }
    }
}

/// Warning/critical pair in a report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LevelReport {
    /// Warning level.
    pub warning: f64,
    /// Critical level.
    pub critical: f64,
}

impl From<Level> for LevelReport {
    fn from(l: Level) -> Self {
        LevelReport {
            warning: l.warning,
            critical: l.critical,
        }
    }
}

impl From<ThresholdPair> for LevelReport {
    fn from(l: ThresholdPair) -> Self {
        LevelReport {
            warning: l.warning,
            critical: l.critical,
        }
    }
}

/// The thresholds applied to a feature.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThresholdsReport {
    /// PSI levels (always applied).
    pub psi: Option<LevelReport>,
    /// JS levels, when configured.
    pub js_divergence: Option<LevelReport>,
    /// KS statistic levels, when configured.
    pub ks_statistic: Option<LevelReport>,
    /// KS p-value levels (lower is worse), when the baseline sets them.
    pub ks_pvalue: Option<LevelReport>,
    /// Wasserstein levels, when the baseline sets them.
    pub wasserstein: Option<LevelReport>,
    /// Chi-square p-value levels (lower is worse), when the baseline sets them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2_pvalue: Option<LevelReport>,
    /// Whether the PSI levels were widened by `drift.adaptive`.
    pub adaptive: bool,
}

/// Window counts of a feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowCounts {
    /// Values counted (not missing, right type).
    pub count: u64,
    /// Missing values.
    pub missing: u64,
    /// Values of the wrong type.
    pub invalid: u64,
    /// Values behind KS/Wasserstein (all numeric values in the window, sketched).
    pub sample: usize,
}

/// Drift of one feature over the current window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub feature: String,
    /// `input` or `output`.
    pub kind: Kind,
    /// `numeric` or `categorical`.
    #[serde(rename = "type")]
    pub feature_type: &'static str,
    /// Window counts.
    pub window: WindowCounts,
    /// PSI over the baseline bins/categories.
    pub psi: Option<f64>,
    /// JS divergence, base 2.
    pub js_divergence: Option<f64>,
    /// KS statistic (numeric).
    pub ks_statistic: Option<f64>,
    /// KS asymptotic p-value (numeric).
    pub ks_pvalue: Option<f64>,
    /// Wasserstein-1 (numeric).
    pub wasserstein: Option<f64>,
    /// `ks_statistic` is within this of scipy's value on all the window's and the baseline
    /// column's values (computed from the sketches; 0 when both are exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_error_bound: Option<f64>,
    /// `wasserstein` is within this of scipy's value on all values (as `ks_error_bound`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein_error_bound: Option<f64>,
    /// Chi-square p-value (categorical).
    pub chi2_pvalue: Option<f64>,
    /// Status; `None` when the window is empty.
    pub status: Option<Status>,
    /// Thresholds applied.
    pub thresholds: ThresholdsReport,
    /// Window mean (numeric).
    pub mean: Option<f64>,
    /// Window standard deviation, ddof = 0 (numeric).
    pub std: Option<f64>,
    /// Window minimum (numeric).
    pub min: Option<f64>,
    /// Window maximum (numeric).
    pub max: Option<f64>,
}

/// The sketches behind one numeric feature's KS and Wasserstein.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSketches {
    /// Feature name.
    pub feature: String,
    /// `input` or `output`.
    pub kind: Kind,
    /// The window's values (the union of its live time buckets).
    pub window: QuantileSketch,
    /// The baseline column's values.
    pub baseline: QuantileSketch,
}

/// The window and baseline sketches of a model's numeric features
/// (`GET /api/v1/models/{model}/sketch`): what a fleet view merges across replicas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSketches {
    /// Model name.
    pub model: String,
    /// Baseline id.
    pub baseline_id: String,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Numeric features (inputs, then the output), in baseline order.
    pub features: Vec<FeatureSketches>,
}

/// Drift of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDriftReport {
    /// Model name.
    pub model: String,
    /// Baseline id.
    pub baseline_id: String,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Share of input features drifted; `None` before any data.
    pub drift_score: Option<f64>,
    /// Worst input feature status; `None` before any data.
    pub status: Option<Status>,
    /// Input features then the output.
    pub features: Vec<FeatureDrift>,
}

struct FeatureState {
    name: String,
    kind: Kind,
    baseline: FeatureBaseline,
    /// Expected proportions per window cell.
    expected: Vec<f64>,
    /// Bin labels per cell.
    cells: Vec<String>,
    /// The baseline column's sketch (KS / Wasserstein reference).
    reference: QuantileSketch,
    window: FeatureWindow,
    exported: Vec<u64>,
}

struct ModelDrift {
    /// Registry generation the windows were built for.
    generation: u64,
    baseline: Arc<Snapshot>,
    features: Vec<FeatureState>,
    index: HashMap<String, usize>,
    output: Option<usize>,
    seen: Vec<bool>,
}

/// Why a baseline cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The snapshot is inconsistent for drift (e.g. a numeric feature without bins).
    #[error("{0}")]
    Unusable(String),
}

/// Drift state of every model.
pub struct DriftEngine {
    cfg: Arc<Config>,
    metrics: Arc<DriftMetrics>,
    baselines: Arc<Registry>,
    models: DashMap<String, Mutex<ModelDrift>>,
    /// Compression of the windows' sketches.
    compression: u32,
}

impl std::fmt::Debug for DriftEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftEngine")
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

fn cells_of(b: &FeatureBaseline) -> Result<(Layout, Vec<f64>, Vec<String>), String> {
    match b.kind {
        FeatureType::Numeric => {
            let bins = b
                .bins
                .as_ref()
                .ok_or_else(|| "numeric feature has no bins".to_string())?;
            let labels = (0..bins.proportions.len()).map(|i| i.to_string()).collect();
            Ok((
                Layout::Numeric {
                    edges: bins.edges.clone(),
                },
                bins.proportions.clone(),
                labels,
            ))
        }
        FeatureType::Categorical => {
            let cats = b
                .categories
                .as_ref()
                .ok_or_else(|| "categorical feature has no categories".to_string())?;
            let mut index = HashMap::new();
            let mut expected = Vec::new();
            let mut labels = Vec::new();
            let mut other = 0.0;
            for (name, p) in cats.iter() {
                if name == OTHER_CATEGORY {
                    other += p;
                    continue;
                }
                index.insert(name.to_string(), labels.len());
                labels.push(name.to_string());
                expected.push(*p);
            }
            let len = labels.len();
            labels.push(OTHER_CATEGORY.to_string());
            expected.push(other);
            Ok((Layout::Categorical { index, len }, expected, labels))
        }
    }
}

impl DriftEngine {
    /// An engine following the baselines of `baselines`.
    pub fn new(cfg: Arc<Config>, metrics: Arc<DriftMetrics>, baselines: Arc<Registry>) -> Self {
        DriftEngine {
            cfg,
            metrics,
            baselines,
            models: DashMap::new(),
            compression: DEFAULT_COMPRESSION,
        }
    }

    /// The same engine sketching window values at `compression` (see
    /// [`crate::stats::sketch`]); [`MAX_COMPRESSION`](crate::stats::sketch::MAX_COMPRESSION)
    /// keeps every distinct value up to 100 000 per feature (offline `mlmon drift`).
    pub fn with_window_compression(mut self, compression: u32) -> Self {
        self.compression = compression;
        self
    }

    /// Installs (or replaces) the baseline of `model` in the registry and starts its
    /// windows empty (the offline `mlmon drift` and tests; the sidecar installs through the
    /// registry and the engine follows).
    pub fn set_baseline(&self, model: &str, snapshot: Arc<Snapshot>) -> Result<(), BaselineError> {
        let current = self
            .baselines
            .set(model, snapshot)
            .map_err(|e| BaselineError::Unusable(e.to_string()))?;
        self.install(model, &current)
    }

    /// Rebuilds `model`'s windows when the registry holds a newer baseline.
    fn sync(&self, model: &str, current: &Current) {
        let same = self
            .models
            .get(model)
            .and_then(|m| m.lock().ok().map(|m| m.generation == current.generation))
            .unwrap_or(false);
        if !same {
            if let Err(e) = self.install(model, current) {
                tracing::warn!(model, error = %e, "baseline unusable for drift");
            }
        }
    }

    fn install(&self, model: &str, current: &Current) -> Result<(), BaselineError> {
        let snapshot = current.snapshot.clone();
        let max = self.cfg.limits.max_features;
        let mut features = Vec::new();
        let inputs = snapshot
            .features
            .iter()
            .take(max)
            .map(|(n, b)| (n, Kind::Input, b));
        let output = snapshot
            .prediction
            .as_ref()
            .map(|b| (PREDICTION, Kind::Output, b));
        for (name, kind, b) in inputs.chain(output) {
            let (layout, expected, cells) =
                cells_of(b).map_err(|m| BaselineError::Unusable(format!("{name}: {m}")))?;
            let exported = vec![0; cells.len()];
            features.push(FeatureState {
                name: name.to_string(),
                kind,
                baseline: b.clone(),
                expected,
                cells,
                reference: reference_sketch(b),
                window: FeatureWindow::new(layout, self.cfg.drift.window, self.compression),
                exported,
            });
        }
        let mut index = HashMap::new();
        let mut output = None;
        for (i, f) in features.iter().enumerate() {
            if f.kind == Kind::Output {
                output = Some(i);
            } else {
                index.insert(f.name.clone(), i);
            }
        }
        let old = self.models.get(model).and_then(|m| {
            m.lock().ok().map(|m| {
                (
                    Some(m.baseline.id.clone()),
                    m.features
                        .iter()
                        .map(|f| (f.name.clone(), f.kind, f.cells.clone()))
                        .collect::<Vec<_>>(),
                )
            })
        });
        if let Some((old_id, old_features)) = old {
            if let Some(id) = old_id {
                self.metrics.baseline_info.remove(&BaselineLabels {
                    model: model.to_string(),
                    id,
                });
            }
            for (feature, kind, cells) in old_features {
                let labels = FeatureLabels {
                    model: model.to_string(),
                    feature: feature.clone(),
                    kind: kind.as_str(),
                };
                self.metrics.remove_feature_values(&labels);
                for bin in cells {
                    let labels = BinLabels {
                        model: model.to_string(),
                        feature: feature.clone(),
                        kind: kind.as_str(),
                        bin,
                    };
                    self.metrics.baseline_bin_ratio.remove(&labels);
                    // The old bins' live counts go too: they count against bins that no
                    // longer exist (issue 11, finding 12: 20k -> 60k series after 3 PUTs).
                    self.metrics.bin_observations.remove(&labels);
                }
            }
        }
        for f in &features {
            for (bin, p) in f.cells.iter().zip(&f.expected) {
                let labels = BinLabels {
                    model: model.to_string(),
                    feature: f.name.clone(),
                    kind: f.kind.as_str(),
                    bin: bin.clone(),
                };
                self.metrics
                    .baseline_bin_ratio
                    .get_or_create(&labels)
                    .set(*p);
                // Zero-initialised, so rate() and increase() see every bin from the start.
                let _ = self.metrics.bin_observations.get_or_create(&labels);
            }
        }
        self.metrics
            .baseline_info
            .get_or_create(&BaselineLabels {
                model: model.to_string(),
                id: snapshot.id.clone(),
            })
            .set(1);
        let seen = vec![false; features.len()];
        let state = ModelDrift {
            generation: current.generation,
            baseline: snapshot,
            features,
            index,
            output,
            seen,
        };
        self.models.insert(model.to_string(), Mutex::new(state));
        Ok(())
    }

    /// The registry this engine follows.
    pub fn baselines(&self) -> &Arc<Registry> {
        &self.baselines
    }

    /// Models with drift state.
    pub fn models(&self) -> Vec<String> {
        self.models.iter().map(|e| e.key().clone()).collect()
    }

    /// Pushes the rows and predictions of one exchange into the windows of its model.
    pub fn observe(&self, ex: &Exchange<'_>) {
        let (model, now) = (ex.model, ex.now);
        // The baseline in force when the exchange was taken, not a newer one: the rows
        // that complete a live capture are not compared with themselves.
        let Some(current) = ex.baseline else {
            return;
        };
        self.sync(model, current);
        let Some(entry) = self.models.get(model) else {
            return;
        };
        let Ok(mut m) = entry.lock() else { return };
        let m = &mut *m;
        for row in &ex.parsed.rows {
            m.seen.iter_mut().for_each(|s| *s = false);
            for (name, value) in &row.values {
                if let Some(&i) = m.index.get(name.as_str()) {
                    if !m.seen[i] {
                        m.seen[i] = true;
                        m.features[i].window.push(value, now);
                    }
                }
            }
            for (i, f) in m.features.iter_mut().enumerate() {
                if f.kind == Kind::Input && !m.seen[i] {
                    f.window.push(&FeatureValue::Missing, now);
                }
            }
        }
        if let Some(o) = m.output {
            for p in &ex.parsed.predictions {
                m.features[o].window.push(&p.value, now);
            }
        }
    }

    /// The window and baseline sketches of `model`'s numeric features now; `None` when
    /// it has no baseline.
    pub fn sketches(&self, model: &str) -> Option<ModelSketches> {
        let now = Instant::now();
        if let Some(current) = self.baselines.get(model) {
            self.sync(model, &current);
        }
        let entry = self.models.get(model)?;
        let mut m = entry.lock().ok()?;
        let baseline_id = m.baseline.id.clone();
        let features = m
            .features
            .iter_mut()
            .filter(|f| matches!(f.window.layout(), Layout::Numeric { .. }))
            .map(|f| FeatureSketches {
                feature: f.name.clone(),
                kind: f.kind,
                window: f.window.view(now).sketch,
                baseline: f.reference.clone(),
            })
            .collect();
        Some(ModelSketches {
            model: model.to_string(),
            baseline_id,
            window_seconds: self.cfg.drift.window.as_secs_f64(),
            features,
        })
    }

    /// Computes the drift of `model` now; `None` when it has no baseline.
    pub fn report(&self, model: &str) -> Option<ModelDriftReport> {
        let now = Instant::now();
        if let Some(current) = self.baselines.get(model) {
            self.sync(model, &current);
        }
        let entry = self.models.get(model)?;
        let mut m = entry.lock().ok()?;
        let baseline = m.baseline.clone();
        let thresholds = self.cfg.thresholds_for(model).clone();
        let adaptive = self.cfg.drift.adaptive;
        let mut features = Vec::with_capacity(m.features.len());
        for f in m.features.iter_mut() {
            let view = f.window.view(now);
            features.push(feature_drift(
                f,
                &view,
                &thresholds,
                adaptive,
                baseline.row_count,
            ));
        }
        let mut weight = 0.0;
        let mut drifted = 0.0;
        let mut worst: Option<Status> = None;
        let has_importance = m
            .features
            .iter()
            .any(|f| f.kind == Kind::Input && f.baseline.importance.is_some());
        for (fd, f) in features.iter().zip(&m.features) {
            if fd.kind != Kind::Input {
                continue;
            }
            let Some(status) = fd.status else { continue };
            let w = if has_importance {
                f.baseline.importance.unwrap_or(0.0).max(0.0)
            } else {
                1.0
            };
            weight += w;
            if status >= Status::Warning {
                drifted += w;
            }
            worst = worst.max(Some(status));
        }
        let drift_score = (weight > 0.0).then(|| drifted / weight);
        Some(ModelDriftReport {
            model: model.to_string(),
            baseline_id: baseline.id.clone(),
            window_seconds: self.cfg.drift.window.as_secs_f64(),
            drift_score,
            status: worst,
            features,
        })
    }

    /// Recomputes every model's drift and updates the gauges and bin counters.
    pub fn refresh(&self) -> Vec<ModelDriftReport> {
        let mut reports = Vec::new();
        for model in self.baselines.models() {
            if let Some(current) = self.baselines.get(&model) {
                self.sync(&model, &current);
            }
        }
        for model in self.models() {
            self.export_bin_counts(&model);
            let Some(report) = self.report(&model) else {
                continue;
            };
            self.export(&report);
            reports.push(report);
        }
        reports
    }

    fn export_bin_counts(&self, model: &str) {
        let Some(entry) = self.models.get(model) else {
            return;
        };
        let Ok(mut m) = entry.lock() else { return };
        for f in m.features.iter_mut() {
            for (i, bin) in f.cells.iter().enumerate() {
                let now = f.window.cumulative[i];
                let delta = now.saturating_sub(f.exported[i]);
                if delta > 0 {
                    self.metrics
                        .bin_observations
                        .get_or_create(&BinLabels {
                            model: model.to_string(),
                            feature: f.name.clone(),
                            kind: f.kind.as_str(),
                            bin: bin.clone(),
                        })
                        .inc_by(delta);
                    f.exported[i] = now;
                }
            }
        }
    }

    fn export(&self, r: &ModelDriftReport) {
        let m = &self.metrics;
        for f in &r.features {
            let labels = FeatureLabels {
                model: r.model.clone(),
                feature: f.feature.clone(),
                kind: f.kind.as_str(),
            };
            let set = |family: &crate::metrics::F64Family<FeatureLabels>, v: Option<f64>| {
                crate::metrics::set_or_remove(family, &labels, v)
            };
            set(&m.psi, f.psi);
            set(&m.js, f.js_divergence);
            set(&m.ks_statistic, f.ks_statistic);
            set(&m.ks_pvalue, f.ks_pvalue);
            set(&m.wasserstein, f.wasserstein);
            set(&m.chi2_pvalue, f.chi2_pvalue);
            match f.status {
                Some(s) => {
                    m.status.get_or_create(&labels).set(s.code());
                }
                None => {
                    m.status.remove(&labels);
                }
            }
        }
        let labels = ModelLabels {
            model: r.model.clone(),
        };
        crate::metrics::set_or_remove(&m.drift_score, &labels, r.drift_score);
    }
}

/// The KS / Wasserstein reference of a numeric baseline entry: the reference sample kept
/// exactly when it holds the whole column (baselines of at most `--sample-size` rows), else
/// the full-column sketch (snapshot format 2), else a sketch of the sample (format 1).
fn reference_sketch(b: &FeatureBaseline) -> QuantileSketch {
    let whole_column = b.sample.len() as u64 == b.stats.count;
    match &b.sketch {
        Some(s) if !whole_column || s.rank_error_bound() == 0.0 => s.clone(),
        _ if whole_column => QuantileSketch::from_values(MAX_COMPRESSION, &b.sample),
        _ => QuantileSketch::from_values(DEFAULT_COMPRESSION, &b.sample),
    }
}

fn level(p: ThresholdPair) -> Level {
    Level::higher(p.warning, p.critical)
}

fn feature_drift(
    f: &FeatureState,
    view: &WindowView,
    cfg: &crate::config::Thresholds,
    adaptive: bool,
    baseline_rows: u64,
) -> FeatureDrift {
    let n = view.count();
    let numeric = matches!(f.window.layout(), Layout::Numeric { .. });
    let (mut psi, mut js, mut ks_statistic, mut ks_pvalue, mut wasserstein, mut chi2_pvalue) =
        (None, None, None, None, None, None);
    let mut bounds = None;
    if n > 0 {
        psi = stats::psi_counts(&f.expected, &view.counts);
        js = stats::js_divergence_counts(&f.expected, &view.counts);
        if numeric {
            // Both full columns, sketched; the p-value from the true counts.
            if let Some(c) = stats::compare_sketches(&view.sketch, &f.reference) {
                ks_statistic = Some(c.ks_statistic);
                ks_pvalue = c.ks_pvalue();
                wasserstein = Some(c.wasserstein);
                bounds = Some((c.ks_error_bound, c.wasserstein_error_bound));
            }
        } else {
            let aligned = stats::align_categories(
                f.cells
                    .iter()
                    .zip(&f.expected)
                    .map(|(c, p)| (c.as_str(), *p)),
                f.cells
                    .iter()
                    .zip(&view.counts)
                    .map(|(c, k)| (c.as_str(), *k)),
            );
            chi2_pvalue = stats::chi2_gof(&aligned.observed, &aligned.expected).map(|c| c.pvalue);
        }
    }
    let own = f.baseline.thresholds.as_ref();
    let mut psi_level = own.and_then(|t| t.psi).map(level).unwrap_or(cfg.psi);
    let mut widened = false;
    if adaptive && n > 0 {
        if let Some(t) = stats::adaptive_psi_thresholds(
            &f.expected,
            n,
            Some(baseline_rows),
            stats::adaptive::Thresholds {
                warning: psi_level.warning,
                critical: psi_level.critical,
            },
        ) {
            psi_level = Level::higher(t.warning, t.critical);
            widened = true;
        }
    }
    let js_level = own.and_then(|t| t.js_divergence).map(level).or(cfg.js);
    let ks_level = own
        .and_then(|t| t.ks_statistic)
        .map(level)
        .or(cfg.ks_statistic);
    let ks_p_level = own.and_then(|t| t.ks_pvalue).map(level);
    let chi2_level = own.and_then(|t| t.chi2_pvalue).map(level);
    let w_level = own.and_then(|t| t.wasserstein).map(level);

    let status = (n > 0).then(|| {
        let mut code = psi.map(|v| psi_level.status(v)).unwrap_or(0);
        let mut worse = |l: Option<Level>, v: Option<f64>| {
            if let (Some(l), Some(v)) = (l, v) {
                code = code.max(l.status(v));
            }
        };
        worse(js_level, js);
        worse(ks_level, ks_statistic);
        worse(w_level, wasserstein);
        // Lower p-values are worse.
        let mut lower_is_worse = |l: Option<Level>, p: Option<f64>| {
            if let (Some(l), Some(p)) = (l, p) {
                let c = if p <= l.critical {
                    2
                } else if p <= l.warning {
                    1
                } else {
                    0
                };
                code = code.max(c);
            }
        };
        lower_is_worse(ks_p_level, ks_pvalue);
        lower_is_worse(chi2_level, chi2_pvalue);
        Status::from_code(code)
    });
    let numeric_stat = |v: f64| (numeric && view.moments.n > 0).then_some(v);
    FeatureDrift {
        feature: f.name.clone(),
        kind: f.kind,
        feature_type: if numeric { "numeric" } else { "categorical" },
        window: WindowCounts {
            count: n,
            missing: view.missing,
            invalid: view.invalid,
            sample: usize::try_from(view.sketch.count()).unwrap_or(usize::MAX),
        },
        psi,
        js_divergence: js,
        ks_statistic,
        ks_pvalue,
        wasserstein,
        ks_error_bound: bounds.map(|b| b.0),
        wasserstein_error_bound: bounds.map(|b| b.1),
        chi2_pvalue,
        status,
        thresholds: ThresholdsReport {
            psi: Some(psi_level.into()),
            js_divergence: js_level.map(Into::into),
            ks_statistic: ks_level.map(Into::into),
            ks_pvalue: ks_p_level.map(Into::into),
            chi2_pvalue: chi2_level.map(Into::into),
            wasserstein: w_level.map(Into::into),
            adaptive: widened,
        },
        mean: numeric_stat(view.moments.mean),
        std: if numeric { view.moments.std() } else { None },
        min: numeric_stat(view.moments.min),
        max: numeric_stat(view.moments.max),
    }
}

impl Analysis for DriftEngine {
    fn name(&self) -> &'static str {
        "drift"
    }

    fn observe(&self, exchange: &Exchange<'_>) {
        DriftEngine::observe(self, exchange);
    }

    fn refresh(&self, _baselines: &Registry) {
        DriftEngine::refresh(self);
    }

    fn report(&self, model: &str) -> Option<serde_json::Value> {
        DriftEngine::report(self, model).and_then(|r| serde_json::to_value(r).ok())
    }
}

#[cfg(test)]
mod reference_tests {
    use super::*;

    #[test]
    fn a_sample_holding_the_whole_column_is_the_exact_reference() {
        let values: Vec<f64> = (0..4000)
            .map(|i| (f64::from(i) * 0.618).sin() * 10.0)
            .collect();
        let mut b = FeatureBaseline {
            kind: crate::baseline::FeatureType::Numeric,
            stats: crate::baseline::FeatureStats {
                count: 4000,
                ..Default::default()
            },
            bins: None,
            categories: None,
            sample: values.clone(),
            sketch: Some(QuantileSketch::from_values(DEFAULT_COMPRESSION, &values)),
            thresholds: None,
            importance: None,
            notes: Vec::new(),
        };
        assert!(
            b.sketch.as_ref().unwrap().rank_error_bound() > 0.0,
            "4000 distinct values"
        );
        let r = reference_sketch(&b);
        assert_eq!((r.count(), r.rank_error_bound()), (4000, 0.0), "exact");
        // A sample of part of the column: the full-column sketch is the reference.
        b.stats.count = 1_000_000;
        b.sketch = Some(QuantileSketch::from_values(DEFAULT_COMPRESSION, &values));
        assert!(reference_sketch(&b).rank_error_bound() > 0.0);
        // Format 1 (no sketch): the sample, sketched.
        b.sketch = None;
        assert_eq!(reference_sketch(&b).count(), 4000);
    }
}
