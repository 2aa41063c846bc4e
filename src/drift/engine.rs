//! The drift engine: per model the baseline's cells and one window per feature, following
//! the model's baseline in the registry by generation.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tokio::time::Instant;

use super::report::{
    feature_drift, summarise, FeatureDrift, FeatureSketches, ModelDriftReport, ModelSketches,
};
use super::window::{FeatureWindow, Layout};
use super::PREDICTION;
use crate::analysis::{Analysis, Exchange};
use crate::baseline::{Current, FeatureBaseline, FeatureType, Registry, Snapshot, OTHER_CATEGORY};
use crate::config::Config;
use crate::metrics::drift::{BaselineLabels, BinLabels, DriftMetrics, FeatureLabels};
use crate::metrics::labels::ModelLabels;
use crate::record::{FeatureValue, Kind, PositionHints};
use crate::stats::sketch::{QuantileSketch, DEFAULT_COMPRESSION};

/// One followed feature: its baseline cells and live window. The baseline entry itself
/// (reference sketch, sample, thresholds) stays in the model's shared snapshot and is read
/// through [`FeatureState::entry`]: nothing of it is copied per feature.
pub(super) struct FeatureState {
    pub(super) name: String,
    pub(super) kind: Kind,
    /// Where the baseline entry is in the snapshot.
    pub(super) entry: Entry,
    /// Expected proportions per window cell.
    pub(super) expected: Vec<f64>,
    /// Bin labels per cell.
    pub(super) cells: Vec<String>,
    pub(super) window: FeatureWindow,
    pub(super) exported: Vec<u64>,
    /// The reference sketch's error bounds (`stats::sketch::bounds`), computed once.
    pub(super) reference_bounds: (f64, f64),
}

/// The position of a feature's entry in its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    /// `snapshot.features[i]`.
    Input(usize),
    /// `snapshot.prediction`.
    Output,
}

impl FeatureState {
    /// The baseline entry of this feature in `snapshot` (the one it was built from).
    pub(super) fn entry<'a>(&self, snapshot: &'a Snapshot) -> Option<&'a FeatureBaseline> {
        match self.entry {
            Entry::Input(i) => snapshot.features.0.get(i).map(|(_, b)| b),
            Entry::Output => snapshot.prediction.as_ref(),
        }
    }
}

/// The drift state of one model, built for one baseline generation.
struct ModelDrift {
    /// Registry generation the windows were built for.
    generation: u64,
    baseline: Arc<Snapshot>,
    features: Vec<FeatureState>,
    index: HashMap<String, usize>,
    /// Which feature each row position resolved to last time (skips hashing names).
    hints: PositionHints,
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
    /// Live SHAP importances weighting the drift score (explain's global SHAP).
    live: Option<Arc<crate::analysis::LiveImportance>>,
    /// Threads a report spreads its features over (1 or 2, see [`Self::with_report_threads`]).
    report_threads: usize,
}

/// A report spreads its features over two threads from this many features on (below, the
/// thread's start costs more than it saves).
const PARALLEL_REPORT_MIN_FEATURES: usize = 8;

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
            metrics,
            baselines,
            models: DashMap::new(),
            compression: cfg.drift.sketch_compression,
            live: None,
            report_threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(2),
            cfg,
        }
    }

    /// The same engine computing a report's features on at most `threads` threads (1 or 2;
    /// default 2 when the machine has two CPUs): e.g. 1 where the caller already runs
    /// several engines side by side.
    pub fn with_report_threads(mut self, threads: usize) -> Self {
        self.report_threads = threads.clamp(1, 2);
        self
    }

    /// The same engine weighting its drift score by the live SHAP importances of `live`
    /// when a model has them (docs/explainability.md).
    pub fn with_live_importance(mut self, live: Arc<crate::analysis::LiveImportance>) -> Self {
        self.live = Some(live);
        self
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
            .enumerate()
            .map(|(i, (n, b))| (n, Kind::Input, Entry::Input(i), b));
        let output = snapshot
            .prediction
            .as_ref()
            .map(|b| (PREDICTION, Kind::Output, Entry::Output, b));
        for (name, kind, entry, b) in inputs.chain(output) {
            let (layout, expected, cells) =
                cells_of(b).map_err(|m| BaselineError::Unusable(format!("{name}: {m}")))?;
            let exported = vec![0; cells.len()];
            let reference_bounds = match b.kind {
                FeatureType::Numeric => crate::stats::sketch::bounds(&reference_sketch(b)),
                FeatureType::Categorical => (0.0, 0.0),
            };
            features.push(FeatureState {
                name: name.to_string(),
                kind,
                entry,
                expected,
                cells,
                window: FeatureWindow::new(layout, self.cfg.drift.window, self.compression),
                exported,
                reference_bounds,
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
        // Per-bin series only when fleet-wide drift is on (`drift.fleet_bins`): they are
        // most of a model's series (two per bin and feature).
        let fleet = self.cfg.drift.fleet_bins;
        for f in features.iter().filter(|_| fleet.counts()) {
            for (bin, p) in f.cells.iter().zip(&f.expected) {
                let labels = BinLabels {
                    model: model.to_string(),
                    feature: f.name.clone(),
                    kind: f.kind.as_str(),
                    bin: bin.clone(),
                };
                if fleet.ratios() {
                    self.metrics
                        .baseline_bin_ratio
                        .get_or_create(&labels)
                        .set(*p);
                }
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
            hints: PositionHints::default(),
            output,
            seen,
        };
        self.models.insert(model.to_string(), Mutex::new(state));
        self.metrics.cache.changed();
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
            for (position, (name, value)) in row.values.iter().enumerate() {
                let (features, index) = (&m.features, &m.index);
                let known = m.hints.resolve(
                    position,
                    name,
                    |i| features.get(i).map(|f| f.name.as_str()),
                    |n| index.get(n).copied(),
                );
                if let Some(i) = known {
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
        let m = &mut *m;
        let baseline_id = m.baseline.id.clone();
        let snapshot = &m.baseline;
        let features = m
            .features
            .iter_mut()
            .filter(|f| matches!(f.window.layout(), Layout::Numeric { .. }))
            .map(|f| FeatureSketches {
                feature: f.name.clone(),
                kind: f.kind,
                window: f.window.view(now).sketch,
                baseline: f
                    .entry(snapshot)
                    .map(|b| reference_sketch(b).into_owned())
                    .unwrap_or_default(),
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
        let m = &mut *m;
        let baseline = &m.baseline;
        let thresholds = self.cfg.thresholds_for(model);
        let adaptive = self.cfg.drift.adaptive;
        for f in m.features.iter_mut() {
            f.window.expire(now);
        }
        let states = &m.features;
        let drift = |f: &FeatureState| {
            let (view, sketches) = f.window.parts();
            let d = feature_drift(f, baseline, &view, &sketches, thresholds, adaptive);
            crate::background::pause();
            d
        };
        let features: Vec<FeatureDrift> =
            if self.report_threads > 1 && states.len() >= PARALLEL_REPORT_MIN_FEATURES {
                // Each feature's drift depends on that feature alone. Both threads take the next
                // feature not taken yet (features differ in work, a fixed split leaves one thread
                // idle), and the report lists them in the model's order, as one thread does.
                let next = std::sync::atomic::AtomicUsize::new(0);
                let take = || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = states.get(i) else {
                            return done;
                        };
                        done.push((i, drift(f)));
                    }
                };
                // The helper inherits the calling thread's scheduling policy; its pauses too.
                let pauses = crate::background::enabled();
                let mut done = std::thread::scope(|scope| {
                    let helper = std::thread::Builder::new()
                        .name("mlmon-drift-report".into())
                        .spawn_scoped(scope, || {
                            if pauses {
                                crate::background::enable();
                            }
                            take()
                        });
                    let mut done = take();
                    match helper.map(|h| h.join()) {
                        Ok(Ok(theirs)) => done.extend(theirs),
                        // A panic in the helper: what it took is done here again.
                        Ok(Err(_)) => done = states.iter().map(drift).enumerate().collect(),
                        // No thread: this one took every feature.
                        Err(_) => {}
                    }
                    done
                });
                done.sort_unstable_by_key(|(i, _)| *i);
                done.into_iter().map(|(_, d)| d).collect()
            } else {
                states.iter().map(drift).collect()
            };
        let live = self.live.as_ref().and_then(|l| l.get(model));
        let (drift_score, worst) = summarise(&features, &m.features, live.as_deref(), baseline);
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
        // The gauges and counters moved: encode them once here, on the analysis thread,
        // rather than at every scrape.
        self.metrics.cache.changed();
        self.metrics.cache.prepare();
        reports
    }

    fn export_bin_counts(&self, model: &str) {
        if !self.cfg.drift.fleet_bins.counts() {
            return;
        }
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
                    m.status.get_or_create(&labels).set(i64::from(s.code()));
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
///
/// The snapshot's sketch is borrowed; a sketch of the sample is built for the call (the
/// snapshot is shared, the engine keeps no copy of it per feature).
pub(super) fn reference_sketch(b: &FeatureBaseline) -> Cow<'_, QuantileSketch> {
    let whole_column = b.sample.len() as u64 == b.stats.count;
    match &b.sketch {
        Some(s) if !whole_column || s.rank_error_bound() == 0.0 => Cow::Borrowed(s),
        _ if whole_column => Cow::Owned(QuantileSketch::exact(&b.sample)),
        _ => Cow::Owned(QuantileSketch::from_values(DEFAULT_COMPRESSION, &b.sample)),
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
            b.sketch
                .as_ref()
                .is_some_and(|s| s.rank_error_bound() > 0.0),
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
