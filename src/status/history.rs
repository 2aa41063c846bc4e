//! The bounded in-memory history behind the status page's charts.
//!
//! Every refresh (`drift.interval`) offers each model's health inputs; a point is kept at
//! most every [`History::spacing`] (whole `drift.interval`s, at least [`MIN_SPACING`]) and for
//! [`RETENTION`], so a model holds at most [`History::capacity`] points of fixed size
//! (no per-point allocation): the model-level series (health, drift score, latency
//! quantiles, requests and errors, anomaly rate, data quality, realized and estimated
//! performance) and the PSI of the [`TOP_FEATURES`] worst features at that refresh.
//! Models are bounded by `model.max_models` (+ `__other__`), feature names per model by
//! `limits.max_features` (+ the prediction). docs/performance.md states the memory cost.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::health::{HealthInputs, ModelHealth};

/// How far back the history goes.
pub const RETENTION: Duration = Duration::from_secs(3600);

/// The shortest time between two points of one model.
pub const MIN_SPACING: Duration = Duration::from_secs(5);

/// Features whose PSI a point keeps: the worst ones at that refresh.
pub const TOP_FEATURES: usize = 8;

/// No feature in this slot of [`Point::top`].
const EMPTY: u16 = u16::MAX;

/// One refresh of one model. `NaN` stands for "no value" (serialized as `null`).
#[derive(Debug, Clone, Copy)]
struct Point {
    /// Unix time, seconds.
    t: f64,
    /// 0 healthy, 1 warning, 2 critical.
    health: u8,
    drift_score: f32,
    p50: f32,
    p95: f32,
    p99: f32,
    requests: u32,
    errors: u32,
    anomaly_rate: f32,
    quality: f32,
    /// Primary metric against ground truth.
    realized: f32,
    /// The same metric estimated without ground truth.
    estimated: f32,
    /// Standard error of `estimated`.
    estimated_error: f32,
    /// (index into [`ModelHistory::features`], PSI), worst first; `EMPTY` past the end.
    top: [(u16, f32); TOP_FEATURES],
}

/// The points of one model.
#[derive(Debug, Default)]
struct ModelHistory {
    /// Oldest first, at most [`History::capacity`].
    points: VecDeque<Point>,
    /// Feature names the points refer to by index (bounded by `max_features`).
    features: Vec<String>,
    /// The performance metric of `realized` / `estimated` (`accuracy` or `r2`).
    metric: Option<&'static str>,
}

impl ModelHistory {
    fn feature_index(&mut self, name: &str, max: usize) -> Option<u16> {
        if let Some(i) = self.features.iter().position(|f| f == name) {
            return u16::try_from(i).ok();
        }
        if self.features.len() >= max {
            return None;
        }
        let i = u16::try_from(self.features.len())
            .ok()
            .filter(|i| *i != EMPTY)?;
        self.features.push(name.to_string());
        Some(i)
    }
}

/// The history of every model.
#[derive(Debug)]
pub struct History {
    interval: Duration,
    spacing: Duration,
    capacity: usize,
    max_models: usize,
    max_features: usize,
    models: Mutex<HashMap<String, ModelHistory>>,
}

/// What `GET /api/v1/models/{model}/history` answers: one array per series, index `i` of
/// every array belonging to the refresh at `t[i]`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistoryReport {
    /// Model name.
    pub model: String,
    /// Seconds between points (at least).
    pub interval_seconds: f64,
    /// How far back points are kept, seconds.
    pub retention_seconds: f64,
    /// Points kept at most.
    pub capacity: usize,
    /// Metric of `realized` and `estimated`: `accuracy` (classifiers) or `r2`.
    pub metric: Option<&'static str>,
    /// Unix time of each point, seconds.
    pub t: Vec<f64>,
    /// `healthy`, `warning` or `critical`.
    pub health: Vec<&'static str>,
    /// Model drift score (0..1).
    pub drift_score: Vec<Option<f32>>,
    /// Window latency quantiles, seconds.
    pub p50: Vec<Option<f32>>,
    /// See `p50`.
    pub p95: Vec<Option<f32>>,
    /// See `p50`.
    pub p99: Vec<Option<f32>>,
    /// Requests in the window.
    pub requests: Vec<u32>,
    /// Of which errors (5xx, or mlmon's own 502/504).
    pub errors: Vec<u32>,
    /// Share of anomalous rows in the window.
    pub anomaly_rate: Vec<Option<f32>>,
    /// Data quality score (0..1).
    pub quality: Vec<Option<f32>>,
    /// `metric` against ground truth.
    pub realized: Vec<Option<f32>>,
    /// `metric` estimated without ground truth.
    pub estimated: Vec<Option<f32>>,
    /// Standard error of `estimated`.
    pub estimated_error: Vec<Option<f32>>,
    /// PSI per feature at each point; `null` where the feature was not among the
    /// [`TOP_FEATURES`] worst at that refresh.
    pub psi: BTreeMap<String, Vec<Option<f32>>>,
}

fn f(v: Option<f64>) -> f32 {
    v.filter(|x| x.is_finite()).map_or(f32::NAN, |x| x as f32)
}

fn opt(v: f32) -> Option<f32> {
    (!v.is_nan()).then_some(v)
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl History {
    /// A history for refreshes every `interval`, at most `max_models` models of at most
    /// `max_features` features each.
    pub fn new(interval: Duration, max_models: usize, max_features: usize) -> Self {
        // A whole number of refreshes, at least MIN_SPACING.
        let interval = interval.max(Duration::from_millis(100));
        let every = MIN_SPACING.as_secs_f64() / interval.as_secs_f64();
        let spacing = interval.mul_f64(every.ceil().max(1.0));
        let capacity = (RETENTION.as_secs_f64() / spacing.as_secs_f64()).ceil() as usize + 1;
        History {
            interval,
            spacing,
            capacity,
            max_models,
            max_features,
            models: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds between two points of a model, at least.
    pub fn spacing(&self) -> Duration {
        self.spacing
    }

    /// Points kept per model, at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records one refresh of `model` now.
    pub fn record(&self, model: &str, inputs: &HealthInputs, health: &ModelHealth) {
        self.record_at(model, unix_now(), inputs, health);
    }

    /// Records one refresh of `model` at Unix time `t` (seconds); skipped when the last
    /// point is closer than the spacing (half a refresh of slack).
    pub fn record_at(&self, model: &str, t: f64, inputs: &HealthInputs, health: &ModelHealth) {
        let Ok(mut models) = self.models.lock() else {
            return;
        };
        if !models.contains_key(model) && models.len() >= self.max_models {
            return;
        }
        let h = models.entry(model.to_string()).or_default();
        // Refreshes come late by up to their own duration: half an interval of slack.
        let slack = 0.5 * self.interval.as_secs_f64();
        if h.points
            .back()
            .is_some_and(|last| t - last.t < self.spacing.as_secs_f64() - slack)
        {
            return;
        }
        let mut top = [(EMPTY, f32::NAN); TOP_FEATURES];
        if let Some(d) = &inputs.drift {
            let mut worst: Vec<(&str, f64)> = d
                .features
                .iter()
                .filter_map(|x| Some((x.feature.as_str(), x.psi.filter(|p| p.is_finite())?)))
                .collect();
            worst.sort_by(|a, b| b.1.total_cmp(&a.1));
            let mut slot = 0;
            for (name, psi) in worst {
                if slot == TOP_FEATURES {
                    break;
                }
                if let Some(i) = h.feature_index(name, self.max_features) {
                    top[slot] = (i, psi as f32);
                    slot += 1;
                }
            }
        }
        let (metric, realized, estimated, estimated_error) = performance(inputs);
        if metric.is_some() {
            h.metric = metric;
        }
        let errors = inputs.errors.unwrap_or_default();
        let point = Point {
            t,
            health: health.status.code() as u8,
            drift_score: f(inputs.drift.as_ref().and_then(|d| d.drift_score)),
            p50: f(inputs.latency.as_ref().map(|l| l.p50)),
            p95: f(inputs.latency.as_ref().map(|l| l.p95)),
            p99: f(inputs.latency.as_ref().map(|l| l.p99)),
            requests: u32::try_from(errors.requests).unwrap_or(u32::MAX),
            errors: u32::try_from(errors.errors).unwrap_or(u32::MAX),
            anomaly_rate: f(inputs.anomaly_rate),
            quality: f(inputs.data_quality),
            realized: f(realized),
            estimated: f(estimated),
            estimated_error: f(estimated_error),
            top,
        };
        while h
            .points
            .front()
            .is_some_and(|p| t - p.t > RETENTION.as_secs_f64())
            || h.points.len() >= self.capacity
        {
            h.points.pop_front();
        }
        if h.points.capacity() < self.capacity {
            // Allocated once, to its bound: the cost is known from the first point.
            h.points.reserve_exact(self.capacity - h.points.len());
        }
        h.points.push_back(point);
    }

    /// The points of `model` after Unix time `since` (all without), or `None` for a model
    /// never recorded.
    pub fn report(&self, model: &str, since: Option<f64>) -> Option<HistoryReport> {
        let models = self.models.lock().ok()?;
        let h = models.get(model)?;
        let points: Vec<&Point> = h
            .points
            .iter()
            .filter(|p| since.is_none_or(|s| p.t > s))
            .collect();
        let col = |g: fn(&Point) -> f32| points.iter().map(|p| opt(g(p))).collect::<Vec<_>>();
        let mut psi: BTreeMap<String, Vec<Option<f32>>> = BTreeMap::new();
        for (i, p) in points.iter().enumerate() {
            for (idx, v) in p.top.iter().filter(|(idx, _)| *idx != EMPTY) {
                let Some(name) = h.features.get(usize::from(*idx)) else {
                    continue;
                };
                let series = psi
                    .entry(name.clone())
                    .or_insert_with(|| vec![None; points.len()]);
                if let Some(cell) = series.get_mut(i) {
                    *cell = opt(*v);
                }
            }
        }
        Some(HistoryReport {
            model: model.to_string(),
            interval_seconds: self.spacing.as_secs_f64(),
            retention_seconds: RETENTION.as_secs_f64(),
            capacity: self.capacity,
            metric: h.metric,
            t: points.iter().map(|p| p.t).collect(),
            health: points
                .iter()
                .map(|p| match p.health {
                    0 => "healthy",
                    1 => "warning",
                    _ => "critical",
                })
                .collect(),
            drift_score: col(|p| p.drift_score),
            p50: col(|p| p.p50),
            p95: col(|p| p.p95),
            p99: col(|p| p.p99),
            requests: points.iter().map(|p| p.requests).collect(),
            errors: points.iter().map(|p| p.errors).collect(),
            anomaly_rate: col(|p| p.anomaly_rate),
            quality: col(|p| p.quality),
            realized: col(|p| p.realized),
            estimated: col(|p| p.estimated),
            estimated_error: col(|p| p.estimated_error),
            psi,
        })
    }

    /// Bytes the history holds on the heap now (points, feature names, map entries).
    pub fn heap_bytes(&self) -> usize {
        let Ok(models) = self.models.lock() else {
            return 0;
        };
        models
            .iter()
            .map(|(name, h)| {
                name.capacity()
                    + std::mem::size_of::<(String, ModelHistory)>()
                    + h.points.capacity() * std::mem::size_of::<Point>()
                    + h.features.capacity() * std::mem::size_of::<String>()
                    + h.features.iter().map(String::capacity).sum::<usize>()
            })
            .sum()
    }

    /// The most the history can hold on the heap: every model full, with
    /// `max_features` names of `name_bytes` bytes (model names of `name_bytes` too).
    pub fn bound_bytes(&self, name_bytes: usize) -> usize {
        self.max_models
            * (name_bytes
                + std::mem::size_of::<(String, ModelHistory)>()
                + self.capacity * std::mem::size_of::<Point>()
                + self.max_features.next_power_of_two() * std::mem::size_of::<String>()
                + self.max_features * name_bytes)
    }
}

/// (metric, realized, estimated, standard error of the estimate).
fn performance(
    inputs: &HealthInputs,
) -> (Option<&'static str>, Option<f64>, Option<f64>, Option<f64>) {
    let Some(r) = &inputs.performance else {
        return (None, None, None, None);
    };
    let estimated = r.estimated.as_ref();
    let est = estimated.map(|e| e.estimate.accuracy);
    let err = estimated.and_then(|e| e.estimate.sampling_error.get("accuracy").copied());
    if let Some(c) = &r.classification {
        return (Some("accuracy"), Some(c.accuracy), est, err);
    }
    if let Some(g) = &r.regression {
        return (Some("r2"), g.r2, None, None);
    }
    if est.is_some() {
        return (Some("accuracy"), None, est, err);
    }
    (None, None, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{FeatureDrift, ModelDriftReport};
    use crate::health::HealthStatus;
    use crate::latency::{ErrorRate, LatencySummary};
    use crate::record::Kind;

    fn feature(name: &str, psi: Option<f64>) -> FeatureDrift {
        FeatureDrift {
            feature: name.into(),
            kind: Kind::Input,
            feature_type: "numeric",
            window: crate::drift::WindowCounts {
                count: 10,
                missing: 0,
                invalid: 0,
                sample: 10,
            },
            psi,
            js_divergence: None,
            ks_statistic: None,
            ks_pvalue: None,
            wasserstein: None,
            ks_error_bound: None,
            wasserstein_error_bound: None,
            chi2_pvalue: None,
            status: None,
            thresholds: Default::default(),
            mean: None,
            std: None,
            min: None,
            max: None,
        }
    }

    fn inputs(psi: &[(&str, f64)], requests: u64, errors: u64) -> HealthInputs {
        HealthInputs {
            drift: Some(ModelDriftReport {
                model: "m".into(),
                baseline_id: "b".into(),
                window_seconds: 60.0,
                drift_score: Some(0.25),
                status: None,
                features: psi.iter().map(|(n, p)| feature(n, Some(*p))).collect(),
            }),
            latency: Some(LatencySummary {
                count: 3,
                sum: 0.03,
                p50: 0.01,
                p95: 0.02,
                p99: 0.03,
                sla_quantile: 0.02,
            }),
            errors: Some(ErrorRate { requests, errors }),
            anomaly_rate: Some(0.004),
            data_quality: None,
            performance: None,
            performance_reference: None,
        }
    }

    fn health(status: HealthStatus) -> ModelHealth {
        ModelHealth {
            model: "m".into(),
            status,
            reasons: vec![],
            checks: vec![],
        }
    }

    #[test]
    fn keeps_one_point_per_spacing_for_the_retention_and_no_more() {
        let h = History::new(Duration::from_secs(2), 4, 16);
        assert_eq!(
            h.spacing(),
            Duration::from_secs(6),
            "refreshes every 2 s keep every third"
        );
        assert_eq!(h.capacity(), 601);
        let ok = health(HealthStatus::Healthy);
        // Two hours of refreshes every 2 s.
        let mut t = 1_000_000.0;
        for _ in 0..3600 {
            h.record_at("m", t, &inputs(&[("a", 0.1)], 10, 0), &ok);
            t += 2.0;
        }
        let r = h.report("m", None).unwrap();
        assert!(r.t.len() <= h.capacity(), "{} points", r.t.len());
        let span = r.t[r.t.len() - 1] - r.t[0];
        assert!(span <= RETENTION.as_secs_f64(), "span {span}");
        assert!(span >= RETENTION.as_secs_f64() - 10.0, "span {span}");
        for w in r.t.windows(2) {
            assert_eq!(w[1] - w[0], 6.0);
        }
        // Fixed size: the ring was allocated once, to its bound.
        let before = h.heap_bytes();
        h.record_at("m", t + 10.0, &inputs(&[("a", 0.1)], 10, 0), &ok);
        assert_eq!(h.heap_bytes(), before);
    }

    #[test]
    fn series_and_the_worst_features_psi() {
        let h = History::new(Duration::from_secs(10), 4, 16);
        let names: Vec<String> = (0..12).map(|i| format!("f{i}")).collect();
        // f0 .. f11 with PSI 0.00 .. 0.11: the 8 worst are f4 .. f11.
        let psi: Vec<(&str, f64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as f64 / 100.0))
            .collect();
        h.record_at(
            "m",
            100.0,
            &inputs(&psi, 200, 3),
            &health(HealthStatus::Warning),
        );
        // Later f0 becomes the worst.
        let mut later = psi.clone();
        later[0].1 = 0.9;
        h.record_at(
            "m",
            110.0,
            &inputs(&later, 400, 4),
            &health(HealthStatus::Critical),
        );
        let r = h.report("m", None).unwrap();
        assert_eq!(r.t, vec![100.0, 110.0]);
        assert_eq!(r.health, vec!["warning", "critical"]);
        assert_eq!(r.requests, vec![200, 400]);
        assert_eq!(r.errors, vec![3, 4]);
        assert_eq!(r.p95, vec![Some(0.02), Some(0.02)]);
        assert_eq!(r.drift_score, vec![Some(0.25), Some(0.25)]);
        assert_eq!(r.quality, vec![None, None], "no value is null, not 0");
        assert_eq!(r.psi["f11"], vec![Some(0.11), Some(0.11)]);
        assert_eq!(
            r.psi["f0"],
            vec![None, Some(0.9)],
            "f0 joins the top at the second point"
        );
        assert_eq!(r.psi["f4"], vec![Some(0.04), None], "f4 leaves it");
        assert!(!r.psi.contains_key("f3"), "never among the 8 worst");
        // Only the new points.
        let new = h.report("m", Some(100.0)).unwrap();
        assert_eq!(new.t, vec![110.0]);
        assert_eq!(new.psi["f0"], vec![Some(0.9)]);
        assert!(h.report("other", None).is_none());
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["quality"][0].is_null());
    }

    #[test]
    fn models_and_feature_names_are_bounded() {
        let h = History::new(Duration::from_secs(10), 2, 3);
        let ok = health(HealthStatus::Healthy);
        for m in ["a", "b", "c"] {
            h.record_at(m, 1.0, &inputs(&[("x", 0.1)], 1, 0), &ok);
        }
        assert!(h.report("a", None).is_some() && h.report("b", None).is_some());
        assert!(h.report("c", None).is_none(), "past max_models");
        let psi: Vec<(String, f64)> = (0..10).map(|i| (format!("g{i}"), 1.0 + i as f64)).collect();
        let psi: Vec<(&str, f64)> = psi.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        h.record_at("a", 20.0, &inputs(&psi, 1, 0), &ok);
        let r = h.report("a", None).unwrap();
        assert_eq!(r.psi.len(), 3, "x plus two names before the bound of 3");
    }

    /// The memory cost stated in docs/performance.md: every model full, every feature name
    /// interned, at the default limits (32 models + `__other__`, 256 features + prediction,
    /// refresh every 10 s: a point every 10 s for an hour).
    #[test]
    fn memory_at_the_default_limits() {
        let h = History::new(Duration::from_secs(10), 33, 257);
        let ok = health(HealthStatus::Healthy);
        let names: Vec<String> = (0..257).map(|i| format!("feature_{i:03}")).collect();
        for m in 0..33 {
            let model = format!("model-{m:02}");
            for k in 0..h.capacity() {
                // Rotate the top so every name gets interned.
                let psi: Vec<(&str, f64)> = (0..TOP_FEATURES)
                    .map(|j| {
                        let i = (k * TOP_FEATURES + j) % names.len();
                        (names[i].as_str(), 0.01 * j as f64)
                    })
                    .collect();
                h.record_at(&model, k as f64 * 10.0, &inputs(&psi, 1, 0), &ok);
            }
        }
        let used = h.heap_bytes();
        let bound = h.bound_bytes(11);
        assert_eq!(std::mem::size_of::<Point>(), 120);
        assert_eq!(h.capacity(), 361);
        assert!(used <= bound, "{used} > {bound}");
        assert!(used < 2 * 1024 * 1024, "{used} bytes");
        eprintln!(
            "status history at the default limits: {used} bytes ({} per model, point {} bytes)",
            used / 33,
            std::mem::size_of::<Point>()
        );
    }
}
