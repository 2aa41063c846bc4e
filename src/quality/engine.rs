//! The quality engine: per model and feature, the checks of every value in time buckets
//! over `drift.window` and the error totals since start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tokio::time::Instant;

use super::check::{Check, Spec};
use super::report::{feature_report, score, Counts, QualityReport};
use crate::analysis::{observe_current, Analysis, Exchange};
use crate::baseline::{Current, Registry, Snapshot};
use crate::config::Config;
use crate::metrics::labels::ModelLabels;
use crate::metrics::quality::{
    FeatureReasonLabels, FeatureStatLabels, QualityFeatureLabels, QualityMetrics, REASONS,
};
use crate::record::{FeatureValue, PositionHints};
use crate::window::{Buckets, Moments};

/// The state of one feature of a model.
pub(super) struct FeatureQuality {
    pub(super) name: String,
    pub(super) in_baseline: bool,
    pub(super) spec: Spec,
    pub(super) window: Buckets<Counts>,
    /// Since start, per [`REASONS`] entry.
    pub(super) totals: [u64; 4],
    /// Already added to the counters.
    pub(super) exported: [u64; 4],
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
}

/// Checks one value of a feature and counts it into its bucket `c` and its `totals`.
#[inline]
fn judge(spec: &mut Spec, totals: &mut [u64; 4], c: &mut Counts, value: &FeatureValue) {
    let (check, v) = spec.check(value);
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
        totals[r] += 1;
    }
}

/// Rows of an exchange resolved and checked together (bounds [`ModelQuality::grid`]).
const CHUNK_ROWS: usize = 64;

/// No value: a grid cell whose row lacks the feature, a value whose name is not kept.
const NONE: u32 = u32::MAX;

/// The quality state of one model.
struct ModelQuality {
    baseline_id: Option<String>,
    /// Registry generation the state was built from (`None`: set directly, or none).
    generation: Option<u64>,
    features: Vec<FeatureQuality>,
    index: HashMap<String, usize>,
    /// Which feature each row position resolved to last time (skips hashing names).
    hints: PositionHints,
    rows: Buckets<u64>,
    /// Scratch of [`QualityEngine::observe`]: the feature of each value of a chunk of
    /// rows, in row order ([`NONE`]: not kept).
    slots: Vec<u32>,
    /// Scratch: the row position of each feature's value, `rows × features` row-major
    /// ([`NONE`]: the row lacks it, so it counts as missing).
    grid: Vec<u32>,
    /// Scratch: the row of the chunk each feature first seen in the chunk appeared in, in
    /// feature order (they are the last features).
    born: Vec<usize>,
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
                let spec = Spec::from_baseline(b);
                let reasons = spec.reasons();
                features.push(FeatureQuality::new(name, spec, true, &self.cfg));
                // Zero-initialised, so increase() sees the first error: the reasons normal
                // traffic gives for the feature's type (`Spec::reasons`).
                for reason in reasons.iter().copied() {
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
            features,
            index,
            hints: PositionHints::default(),
            slots: Vec::new(),
            grid: Vec::new(),
            born: Vec::new(),
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
        let model = obs.model;
        let current = obs.baseline.map(|c| &**c);
        // One lookup when the state in force follows the exchange's baseline (what `sync`
        // would find); otherwise `sync` (or the first exchange) sets it up first, as before.
        let registry = self.baselines.is_some();
        let generation = |m: &ModelQuality| m.generation;
        if observe_current(&self.models, model, registry, current, generation, |m| {
            self.observe_locked(m, obs)
        }) {
            return;
        }
        if self.baselines.is_some() {
            self.sync(model, current);
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
        self.observe_locked(&mut guard, obs);
    }

    /// Checks the rows of `obs` into the state `m` of its model.
    fn observe_locked(&self, m: &mut ModelQuality, obs: &Exchange<'_>) {
        let now = obs.now;
        let rows = &obs.parsed.rows;
        if rows.is_empty() {
            return;
        }
        *m.rows.current(now) += rows.len() as u64;
        for chunk in rows.chunks(CHUNK_ROWS) {
            self.observe_rows(m, chunk, now);
        }
    }

    /// Checks `rows` (at most [`CHUNK_ROWS`]), feature by feature: each feature's values go
    /// through its checks in row order exactly as row by row, its window bucket is looked up
    /// once instead of once per value. Unknown names become features (up to
    /// `limits.max_features`) from the row they first appear in; a feature a row lacks gets
    /// a missing value; a name repeated in a row counts once (its first value).
    fn observe_rows(&self, m: &mut ModelQuality, rows: &[crate::record::Row], now: Instant) {
        let max = self.cfg.limits.max_features;
        let ModelQuality {
            features,
            index,
            hints,
            slots,
            grid,
            born,
            ..
        } = m;
        // 1. The feature of every value.
        slots.clear();
        born.clear();
        for (r, row) in rows.iter().enumerate() {
            for (position, (name, _)) in row.values.iter().enumerate() {
                let known = hints.resolve(
                    position,
                    name,
                    |i| features.get(i).map(|f| f.name.as_str()),
                    |n| index.get(n).copied(),
                );
                let i = match known {
                    Some(i) => i,
                    None if features.len() < max => {
                        let i = features.len();
                        features.push(FeatureQuality::new(
                            name,
                            Spec::Unknown { numeric: None },
                            false,
                            &self.cfg,
                        ));
                        index.insert(name.clone(), i);
                        born.push(r);
                        i
                    }
                    None => usize::MAX,
                };
                slots.push(u32::try_from(i).unwrap_or(NONE));
            }
        }
        // 2. Row × feature grid of positions (first occurrence wins).
        let nf = features.len();
        grid.clear();
        grid.resize(rows.len() * nf, NONE);
        let mut slot = slots.iter();
        for (r, row) in rows.iter().enumerate() {
            let cells = grid.get_mut(r * nf..(r + 1) * nf).unwrap_or_default();
            for position in 0..row.values.len() {
                let Some(&i) = slot.next() else { break };
                if let Some(cell) = cells.get_mut(i as usize) {
                    if *cell == NONE {
                        *cell = u32::try_from(position).unwrap_or(NONE);
                    }
                }
            }
        }
        // 3. Each feature's values in row order into its current bucket.
        let first_born = nf - born.len();
        for (i, f) in features.iter_mut().enumerate() {
            let from = i
                .checked_sub(first_born)
                .and_then(|k| born.get(k).copied())
                .unwrap_or(0);
            let FeatureQuality {
                spec,
                window,
                totals,
                ..
            } = f;
            let c = window.current(now);
            for (r, row) in rows.iter().enumerate().skip(from) {
                let cell = grid.get(r * nf + i).copied().unwrap_or(NONE);
                let value = match row.values.get(cell as usize) {
                    Some((_, v)) if cell != NONE => v,
                    _ => &FeatureValue::Missing,
                };
                judge(spec, totals, c, value);
            }
        }
        // Scratch of a large exchange (wide rows, many features) is not kept.
        if grid.capacity() > CHUNK_ROWS * 1024 {
            *grid = Vec::new();
        }
        if slots.capacity() > CHUNK_ROWS * 1024 {
            *slots = Vec::new();
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
        for f in m.features.iter_mut() {
            let mut c = Counts::default();
            for (_, b) in f.window.live(now) {
                c.merge(b);
            }
            features.push(feature_report(f, &c, self.cfg.privacy.log_values));
        }
        let score = score(&features);
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
