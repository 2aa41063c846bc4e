//! Anomaly and out-of-distribution detection per captured row (docs/anomaly.md).
//!
//! The engine fits a [`scorer::Scorer`] on each model's baseline (refitted whenever the
//! drift engine's baseline changes: loaded, replaced through the API or captured), scores
//! every row the pipeline hands it (off the request path), and keeps:
//!
//! - `mlmon_anomalies_total` and the `mlmon_anomaly_score` histogram, updated per row;
//! - time buckets of (rows, anomalies) over `drift.window`, giving `mlmon_anomaly_rate`
//!   and `mlmon_anomaly_trend`: a two-sided two-proportion z-test of the anomaly share in
//!   the newer half of the window against the older half at the 5 % level
//!   (|z| ≥ 1.96 ⇒ ±1, else 0; 0 while either half has no rows);
//! - a ring of the last `anomaly.ring_size` anomalous rows with their score and
//!   explanation, feature values only when `privacy.log_values` is on.

pub mod mahalanobis;
pub mod scorer;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use serde::Serialize;
use tokio::time::Instant;

use crate::analysis::{Analysis, Exchange};
use crate::baseline::Snapshot;
use crate::baseline::{Current, Registry};
use crate::config::Config;
use crate::metrics::anomaly::AnomalyMetrics;
use crate::metrics::labels::ModelLabels;
use crate::window::Buckets;
use scorer::{JointRows, Method, RowScore, Scorer, Settings};

/// Critical value of the trend test (two-sided 5 %).
pub const TREND_Z: f64 = 1.959_963_984_540_054;

/// One anomalous row as listed by the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyRecord {
    /// When the request arrived (RFC 3339).
    pub timestamp: String,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// Row index within the request's batch.
    pub row: usize,
    /// Model version, when known.
    pub version: Option<String>,
    /// The score and its explanation.
    #[serde(flatten)]
    pub score: RowScore,
}

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    rows: u64,
    anomalies: u64,
}

struct ModelAnomaly {
    baseline_id: String,
    /// Registry generation the scorer was fitted from (`None`: set directly).
    generation: Option<u64>,
    scorer: Arc<Scorer>,
    window: Buckets<Tally>,
    ring: VecDeque<AnomalyRecord>,
    total: u64,
    scored: u64,
}

/// Window anomaly counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowTally {
    /// Rows scored in the window.
    pub rows: u64,
    /// Anomalous rows in the window.
    pub anomalies: u64,
    /// `anomalies / rows`; `None` without rows.
    pub rate: Option<f64>,
}

/// The trend test's result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trend {
    /// −1 decreasing, 0 stable, 1 increasing.
    pub direction: i64,
    /// The z statistic (newer half minus older half); `None` when not computable.
    pub z: Option<f64>,
    /// Rows and anomalies in the older half.
    pub older: WindowTally,
    /// Rows and anomalies in the newer half.
    pub newer: WindowTally,
}

/// Anomaly state of one model, for the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyReport {
    /// Model name.
    pub model: String,
    /// Baseline the scorer was fitted on.
    pub baseline_id: String,
    /// `multivariate` or `univariate`.
    pub method: Method,
    /// Why the multivariate score is off, when it is.
    pub fallback_reason: Option<String>,
    /// Numeric features in the Mahalanobis distance.
    pub joint_features: Vec<String>,
    /// Ledoit–Wolf shrinkage of the fitted covariance.
    pub shrinkage: Option<f64>,
    /// `anomaly.threshold` (sigma-equivalents).
    pub threshold: f64,
    /// `anomaly.min_confidence`.
    pub min_confidence: f64,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Window counts and rate.
    pub window: WindowTally,
    /// Trend of the rate over the window.
    pub trend: Trend,
    /// Rows scored since the baseline was installed.
    pub scored_total: u64,
    /// Anomalous rows since the baseline was installed.
    pub anomalies_total: u64,
    /// Whether feature values are included (`privacy.log_values`).
    pub values_included: bool,
    /// The most recent anomalous rows, newest first.
    pub anomalies: Vec<AnomalyRecord>,
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

fn tally(t: Tally) -> WindowTally {
    WindowTally {
        rows: t.rows,
        anomalies: t.anomalies,
        rate: (t.rows > 0).then(|| t.anomalies as f64 / t.rows as f64),
    }
}

/// Two-sided two-proportion z-test of `newer` against `older` at [`TREND_Z`].
pub fn trend_test(older: (u64, u64), newer: (u64, u64)) -> (i64, Option<f64>) {
    let ((n1, a1), (n2, a2)) = (older, newer);
    if n1 == 0 || n2 == 0 {
        return (0, None);
    }
    let (p1, p2) = (a1 as f64 / n1 as f64, a2 as f64 / n2 as f64);
    let p = (a1 + a2) as f64 / (n1 + n2) as f64;
    let se = (p * (1.0 - p) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se <= 0.0 {
        return (0, Some(0.0));
    }
    let z = (p2 - p1) / se;
    let dir = if z >= TREND_Z {
        1
    } else if z <= -TREND_Z {
        -1
    } else {
        0
    };
    (dir, Some(z))
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
        self.models.insert(
            model.to_string(),
            Mutex::new(ModelAnomaly {
                baseline_id: snapshot.id.clone(),
                generation,
                scorer: Arc::new(scorer),
                window: Buckets::new(self.cfg.drift.window),
                ring: VecDeque::new(),
                total: 0,
                scored: 0,
            }),
        );
        let _ = self.metrics.anomalies.get_or_create(&ModelLabels {
            model: model.to_string(),
        });
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
        let (model, now) = (obs.model, obs.now);
        if self.baselines.is_some() {
            self.sync(model, obs.baseline.map(|c| &**c));
        }
        let Some(entry) = self.models.get(model) else {
            return;
        };
        let Ok(mut guard) = entry.lock() else { return };
        let m = &mut *guard;
        let scorer = m.scorer.clone();
        let parsed = obs.parsed;
        let paired = parsed.rows.len() == parsed.predictions.len();
        let labels = ModelLabels {
            model: model.to_string(),
        };
        let histogram = self.metrics.score.get_or_create(&labels);
        let mut anomalies = 0u64;
        let with_values = self.cfg.privacy.log_values;
        for (i, row) in parsed.rows.iter().enumerate() {
            let prediction = if paired {
                parsed.predictions.get(i)
            } else {
                None
            };
            let s = scorer.score(row, prediction, with_values);
            histogram.observe(s.score);
            let t = m.window.current(now);
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
        drop(histogram);
        if anomalies > 0 {
            self.metrics
                .anomalies
                .get_or_create(&labels)
                .inc_by(anomalies);
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
