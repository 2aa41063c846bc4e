//! The anomaly engine: per model a scorer fitted on the baseline, window tallies over
//! `drift.window` and a ring of recent anomalous rows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tokio::time::Instant;

use super::report::{tally, trend_test, AnomalyRecord, AnomalyReport, Tally, Trend};
use super::scorer::{JointRows, ScoreScratch, Scorer, Settings};
use crate::analysis::{observe_current, Analysis, Exchange};
use crate::baseline::{Current, Registry, Snapshot};
use crate::config::Config;
use crate::metrics::anomaly::AnomalyMetrics;
use crate::metrics::labels::ModelLabels;
use crate::window::Buckets;

/// The anomaly state of one model, fitted on one baseline.
struct ModelAnomaly {
    baseline_id: String,
    /// Registry generation the scorer was fitted from (`None`: set directly).
    generation: Option<u64>,
    scorer: Arc<Scorer>,
    window: Buckets<Tally>,
    ring: VecDeque<AnomalyRecord>,
    total: u64,
    scored: u64,
    /// Which feature each row position resolved to last time (skips hashing names), and
    /// the scorer's per-row vectors.
    scratch: ScoreScratch,
    /// The model's `mlmon_anomaly_score` histogram (from its first exchange, when the
    /// series appeared before too) and `mlmon_anomalies_total` counter: handles sharing
    /// the families' series (never removed), looked up once instead of a label allocation
    /// and two family lookups per exchange.
    histogram: Option<Histogram>,
    counter: Counter,
}

/// Anomaly state of every model.
pub struct AnomalyEngine {
    cfg: Arc<Config>,
    metrics: Arc<AnomalyMetrics>,
    baselines: Option<Arc<Registry>>,
    models: DashMap<String, Mutex<ModelAnomaly>>,
}

impl std::fmt::Debug for AnomalyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnomalyEngine")
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

/// The row-aligned sample of a snapshot, when it has one.
pub fn joint_rows(snapshot: &Snapshot) -> Option<JointRows<'_>> {
    snapshot.joint_sample.as_ref().map(|j| JointRows {
        columns: &j.columns,
        rows: &j.rows,
    })
}

impl AnomalyEngine {
    /// An engine following each model's baseline in `baselines` when given; without it,
    /// baselines come only from [`AnomalyEngine::set_baseline`].
    pub fn new(
        cfg: Arc<Config>,
        metrics: Arc<AnomalyMetrics>,
        baselines: Option<Arc<Registry>>,
    ) -> Self {
        AnomalyEngine {
            cfg,
            metrics,
            baselines,
            models: DashMap::new(),
        }
    }

    fn settings(&self) -> Settings {
        Settings {
            threshold: self.cfg.anomaly.threshold,
            min_confidence: self.cfg.anomaly.min_confidence,
            max_joint_features: self.cfg.anomaly.max_joint_features,
            max_features: self.cfg.limits.max_features,
        }
    }

    /// Fits the scorer of `model` on `snapshot`; the window and the ring start empty.
    pub fn set_baseline(&self, model: &str, snapshot: &Snapshot) {
        self.install(model, snapshot, None);
    }

    fn install(&self, model: &str, snapshot: &Snapshot, generation: Option<u64>) {
        let scorer = Scorer::fit(snapshot, joint_rows(snapshot), self.settings());
        if let Some(why) = &scorer.fallback {
            tracing::info!(model, baseline = %snapshot.id, reason = %why, "anomaly scoring without the multivariate distance");
        }
        let labels = ModelLabels {
            model: model.to_string(),
        };
        let counter = self.metrics.anomalies.get_or_create(&labels).clone();
        self.models.insert(
            model.to_string(),
            Mutex::new(ModelAnomaly {
                baseline_id: snapshot.id.clone(),
                generation,
                scorer: Arc::new(scorer),
                window: Buckets::new(self.cfg.drift.window),
                ring: VecDeque::new(),
                scratch: ScoreScratch::default(),
                histogram: None,
                counter,
                total: 0,
                scored: 0,
            }),
        );
    }

    /// Refits the scorer when the registry holds a newer baseline than the one in use.
    fn sync(&self, model: &str, current: Option<&Current>) {
        let Some(c) = current else {
            return;
        };
        let same = self
            .models
            .get(model)
            .and_then(|m| m.lock().ok().map(|m| m.generation == Some(c.generation)))
            .unwrap_or(false);
        if !same {
            self.install(model, &c.snapshot, Some(c.generation));
        }
    }

    fn sync_from_registry(&self, model: &str) {
        if let Some(registry) = &self.baselines {
            self.sync(model, registry.get(model).as_deref());
        }
    }

    /// Scores every row of one exchange at time `now`.
    pub fn observe(&self, obs: &Exchange<'_>) {
        let model = obs.model;
        let current = obs.baseline.map(|c| &**c);
        // One lookup when the scorer in force is fitted on the exchange's baseline (what
        // `sync` would find); otherwise `sync` refits it first, as before.
        let registry = self.baselines.is_some();
        let generation = |m: &ModelAnomaly| m.generation;
        if observe_current(&self.models, model, registry, current, generation, |m| {
            self.observe_locked(m, obs)
        }) {
            return;
        }
        if self.baselines.is_some() {
            self.sync(model, current);
        }
        let Some(entry) = self.models.get(model) else {
            return;
        };
        let Ok(mut guard) = entry.lock() else { return };
        self.observe_locked(&mut guard, obs);
    }

    /// Scores the rows of `obs` into the state `m` of its model.
    fn observe_locked(&self, m: &mut ModelAnomaly, obs: &Exchange<'_>) {
        let (model, now) = (obs.model, obs.now);
        let scorer = m.scorer.clone();
        let parsed = obs.parsed;
        let histogram = m.histogram.get_or_insert_with(|| {
            self.metrics
                .score
                .get_or_create(&ModelLabels {
                    model: model.to_string(),
                })
                .clone()
        });
        if parsed.rows.is_empty() {
            return;
        }
        let paired = parsed.rows.len() == parsed.predictions.len();
        let mut anomalies = 0u64;
        let with_values = self.cfg.privacy.log_values;
        // Every row of the exchange falls in the same bucket (one `now`).
        let t = m.window.current(now);
        for (i, row) in parsed.rows.iter().enumerate() {
            let prediction = if paired {
                parsed.predictions.get(i)
            } else {
                None
            };
            let s = scorer.score_hinted(row, prediction, with_values, &mut m.scratch);
            histogram.observe(s.score);
            t.rows += 1;
            m.scored += 1;
            if s.is_anomaly() {
                t.anomalies += 1;
                anomalies += 1;
                m.total += 1;
                if self.cfg.anomaly.ring_size > 0 {
                    if m.ring.len() >= self.cfg.anomaly.ring_size {
                        m.ring.pop_front();
                    }
                    m.ring.push_back(AnomalyRecord {
                        timestamp: humantime::format_rfc3339_millis(obs.received_at).to_string(),
                        request_id: obs.request_id.to_string(),
                        row: i,
                        version: obs.version.map(str::to_string),
                        score: s,
                    });
                }
            }
        }
        if anomalies > 0 {
            m.counter.inc_by(anomalies);
        }
    }

    /// Anomaly state of `model` now; `None` without a baseline.
    pub fn report(&self, model: &str) -> Option<AnomalyReport> {
        self.report_at(model, Instant::now())
    }

    /// [`AnomalyEngine::report`] as of `now`.
    pub fn report_at(&self, model: &str, now: Instant) -> Option<AnomalyReport> {
        self.sync_from_registry(model);
        let entry = self.models.get(model)?;
        let mut m = entry.lock().ok()?;
        let window = self.cfg.drift.window;
        let half = now.checked_sub(window / 2);
        let (mut all, mut older, mut newer) =
            (Tally::default(), Tally::default(), Tally::default());
        for (start, t) in m.window.live(now) {
            all.rows += t.rows;
            all.anomalies += t.anomalies;
            let side = match half {
                Some(h) if start < h => &mut older,
                _ => &mut newer,
            };
            side.rows += t.rows;
            side.anomalies += t.anomalies;
        }
        let (direction, z) =
            trend_test((older.rows, older.anomalies), (newer.rows, newer.anomalies));
        let scorer = m.scorer.clone();
        Some(AnomalyReport {
            model: model.to_string(),
            baseline_id: m.baseline_id.clone(),
            method: scorer.method(),
            fallback_reason: scorer.fallback.clone(),
            joint_features: scorer.joint_features(),
            shrinkage: scorer.shrinkage(),
            threshold: self.cfg.anomaly.threshold,
            min_confidence: self.cfg.anomaly.min_confidence,
            window_seconds: window.as_secs_f64(),
            window: tally(all),
            trend: Trend {
                direction,
                z,
                older: tally(older),
                newer: tally(newer),
            },
            scored_total: m.scored,
            anomalies_total: m.total,
            values_included: self.cfg.privacy.log_values,
            anomalies: m.ring.iter().rev().cloned().collect(),
        })
    }

    /// The window's anomaly rate of `model` (0..1), `None` without a baseline or rows:
    /// read by the model health status.
    pub fn rate(&self, model: &str) -> Option<f64> {
        let now = Instant::now();
        let entry = self.models.get(model)?;
        let mut m = entry.lock().ok()?;
        let t = m.window.live(now).fold(Tally::default(), |mut a, (_, t)| {
            a.rows += t.rows;
            a.anomalies += t.anomalies;
            a
        });
        tally(t).rate
    }

    /// Models with a fitted scorer.
    pub fn models(&self) -> Vec<String> {
        self.models.iter().map(|e| e.key().clone()).collect()
    }

    /// Recomputes the rate and trend gauges of every model.
    pub fn refresh(&self) {
        if let Some(registry) = &self.baselines {
            for model in registry.models() {
                self.sync_from_registry(&model);
            }
        }
        for model in self.models() {
            let Some(r) = self.report(&model) else {
                continue;
            };
            let labels = ModelLabels { model };
            crate::metrics::set_or_remove(&self.metrics.rate, &labels, r.window.rate);
            self.metrics
                .trend
                .get_or_create(&labels)
                .set(r.trend.direction);
        }
    }
}

impl Analysis for AnomalyEngine {
    fn name(&self) -> &'static str {
        "anomalies"
    }

    fn observe(&self, exchange: &Exchange<'_>) {
        AnomalyEngine::observe(self, exchange);
    }

    fn refresh(&self, _baselines: &Registry) {
        AnomalyEngine::refresh(self);
    }

    fn report(&self, model: &str) -> Option<serde_json::Value> {
        AnomalyEngine::report(self, model).and_then(|r| serde_json::to_value(r).ok())
    }
}
