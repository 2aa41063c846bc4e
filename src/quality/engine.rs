//! The quality engine: per model and feature, the checks of every value in time buckets
//! over `drift.window` and the error totals since start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tokio::time::Instant;

use super::check::{Check, Spec};
use super::report::{feature_report, score, Counts, QualityReport};
use crate::analysis::{Analysis, Exchange};
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
    seen: Vec<bool>,
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
            seen: vec![false; features.len()],
            features,
            index,
            hints: PositionHints::default(),
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
            for (position, (name, value)) in row.values.iter().enumerate() {
                let (features, index) = (&m.features, &m.index);
                let known = m.hints.resolve(
                    position,
                    name,
                    |i| features.get(i).map(|f| f.name.as_str()),
                    |n| index.get(n).copied(),
                );
                let i = match known {
                    Some(i) => i,
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
