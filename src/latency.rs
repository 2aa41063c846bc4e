//! Sliding traffic windows per model over `drift.window`: latency quantiles (the
//! `mlmon_latency_seconds` summary, computed at scrape by [`LatencyCollector`]), the SLA
//! part of model health, and the error rate health reads (no metric value is read back).
//!
//! The proxy records every inference request it answers (O(1) under a short per-model lock).
//! The window is the shared [`Buckets`] type: each time bucket holds the request and error
//! counts, the latency sum, and a uniform sample (reservoir) of at most
//! [`MAX_SAMPLES`]` / BUCKETS` latencies. While no bucket overflows, the quantiles are exact
//! (numpy's linear interpolation on every request of the window); past that each sampled
//! value stands for `count / sampled` requests of its bucket, so a burst in one bucket cannot
//! crowd the rest of the window out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

use crate::window::{Buckets, BUCKETS};

/// Latency samples kept per model at most, over the whole window.
pub const MAX_SAMPLES: usize = 65_536;

/// Samples kept per time bucket.
const BUCKET_SAMPLES: usize = MAX_SAMPLES / BUCKETS as usize;

/// Window figures of one model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Requests in the window.
    pub count: usize,
    /// Sum of their latencies, seconds.
    pub sum: f64,
    /// Median, seconds.
    pub p50: f64,
    /// 95th percentile, seconds.
    pub p95: f64,
    /// 99th percentile, seconds.
    pub p99: f64,
    /// The `sla.quantile` quantile, seconds.
    pub sla_quantile: f64,
}

/// Requests and server errors (5xx, or mlmon's own 502/504) over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErrorRate {
    /// Requests in the window.
    pub requests: u64,
    /// Of which errors.
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Bucket {
    count: u64,
    errors: u64,
    sum: f64,
    /// Sum of squared latencies (the window's variance, for Welch's t-test between versions).
    sum_sq: f64,
    samples: Vec<f64>,
}

/// Latency moments of a window: what Welch's t-test needs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Moments {
    /// Requests.
    pub n: u64,
    /// Mean latency, seconds.
    pub mean: f64,
    /// Sample variance (ddof 1), seconds²; 0 for one request.
    pub variance: f64,
}

/// Cumulative requests and errors of one version since start (the counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Inference requests answered.
    pub requests: u64,
    /// Of which server errors.
    pub errors: u64,
}

#[derive(Debug)]
struct ModelWindow {
    buckets: Buckets<Bucket>,
    /// xorshift state for reservoir sampling.
    rng: u64,
}

impl ModelWindow {
    fn new(window: Duration, seed: usize) -> Self {
        ModelWindow {
            buckets: Buckets::new(window),
            rng: 0x9e37_79b9_7f4a_7c15 ^ (seed as u64 + 1),
        }
    }

    fn push(&mut self, now: Instant, latency: Duration, error: bool) {
        let r = self.next();
        let b = self.buckets.current(now);
        b.count += 1;
        b.errors += u64::from(error);
        let v = latency.as_secs_f64();
        b.sum += v;
        b.sum_sq += v * v;
        if b.samples.len() < BUCKET_SAMPLES {
            b.samples.push(v);
        } else {
            // Algorithm R: the bucket's sample stays uniform over its requests.
            let j = (r % b.count) as usize;
            if let Some(slot) = b.samples.get_mut(j) {
                *slot = v;
            }
        }
    }

    fn summary(&mut self, sla_quantile: f64) -> Option<LatencySummary> {
        let mut count = 0u64;
        let mut sum = 0.0;
        let mut weighted: Vec<(f64, f64)> = Vec::new();
        let mut exact = true;
        for (_, b) in self.buckets.live(Instant::now()) {
            count += b.count;
            sum += b.sum;
            if b.samples.is_empty() {
                continue;
            }
            let weight = b.count as f64 / b.samples.len() as f64;
            exact &= b.samples.len() as u64 == b.count;
            weighted.extend(b.samples.iter().map(|v| (*v, weight)));
        }
        if weighted.is_empty() {
            return None;
        }
        weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Exact windows use numpy's interpolation on the values themselves.
        let values: Vec<f64> = if exact {
            weighted.iter().map(|(v, _)| *v).collect()
        } else {
            Vec::new()
        };
        let q = |p: f64| -> f64 {
            if exact {
                crate::stats::quantile_sorted(&values, p).unwrap_or(f64::NAN)
            } else {
                weighted_quantile(&weighted, p)
            }
        };
        Some(LatencySummary {
            count: count as usize,
            sum,
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            sla_quantile: q(sla_quantile),
        })
    }

    fn errors(&mut self) -> ErrorRate {
        self.buckets
            .live(Instant::now())
            .fold(ErrorRate::default(), |acc, (_, b)| ErrorRate {
                requests: acc.requests + b.count,
                errors: acc.errors + b.errors,
            })
    }

    fn moments(&mut self) -> Option<Moments> {
        let (n, sum, sum_sq) = self
            .buckets
            .live(Instant::now())
            .fold((0u64, 0.0, 0.0), |(n, s, q), (_, b)| {
                (n + b.count, s + b.sum, q + b.sum_sq)
            });
        if n == 0 {
            return None;
        }
        let nf = n as f64;
        let mean = sum / nf;
        let variance = if n > 1 {
            ((sum_sq - sum * mean) / (nf - 1.0)).max(0.0)
        } else {
            0.0
        };
        Some(Moments { n, mean, variance })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[derive(Debug)]
struct VersionWindow {
    window: ModelWindow,
    totals: Totals,
}

/// Traffic windows of all models, and of each version of a model (SPEC 10).
#[derive(Debug)]
pub struct LatencyWindows {
    window: Duration,
    models: DashMap<String, Mutex<ModelWindow>>,
    /// Model → version → window, keyed by label values: bounded by `model.max_models` ×
    /// `model.max_versions` because the proxy folds both. Looked up by `&str` at both
    /// levels, so recording allocates only for a new version.
    versions: DashMap<String, Mutex<HashMap<String, VersionWindow>>>,
}

impl LatencyWindows {
    /// Windows of `window` length.
    pub fn new(window: Duration) -> Self {
        LatencyWindows {
            window,
            models: DashMap::new(),
            versions: DashMap::new(),
        }
    }

    /// Records one request's latency (not an error).
    pub fn record(&self, model: &str, latency: Duration) {
        self.record_outcome(model, latency, false);
    }

    /// Records one request's latency and whether it failed.
    pub fn record_outcome(&self, model: &str, latency: Duration, error: bool) {
        let now = Instant::now();
        if let Some(w) = self.models.get(model) {
            if let Ok(mut w) = w.lock() {
                w.push(now, latency, error);
            }
            return;
        }
        let w = self
            .models
            .entry(model.to_string())
            .or_insert_with(|| Mutex::new(ModelWindow::new(self.window, model.len())));
        if let Ok(mut w) = w.lock() {
            w.push(now, latency, error);
        };
    }

    /// Records one request of `version` of `model` (both label values, already folded to
    /// at most `model.max_versions` per model by the caller).
    pub fn record_version(&self, model: &str, version: &str, latency: Duration, error: bool) {
        let now = Instant::now();
        let push = |m: &Mutex<HashMap<String, VersionWindow>>| {
            let Ok(mut m) = m.lock() else { return };
            let w = match m.get_mut(version) {
                Some(w) => w,
                None => m
                    .entry(version.to_string())
                    .or_insert_with(|| VersionWindow {
                        window: ModelWindow::new(self.window, model.len() + version.len()),
                        totals: Totals::default(),
                    }),
            };
            w.window.push(now, latency, error);
            w.totals.requests += 1;
            w.totals.errors += u64::from(error);
        };
        if let Some(m) = self.versions.get(model) {
            push(&m);
            return;
        }
        let m = self.versions.entry(model.to_string()).or_default();
        push(&m);
    }

    fn with_version<T>(
        &self,
        model: &str,
        version: &str,
        f: impl FnOnce(&mut VersionWindow) -> T,
    ) -> Option<T> {
        let m = self.versions.get(model)?;
        let mut m = m.lock().ok()?;
        m.get_mut(version).map(f)
    }

    /// Window quantiles of a model, `None` when the window is empty.
    pub fn summary(&self, model: &str, sla_quantile: f64) -> Option<LatencySummary> {
        let w = self.models.get(model)?;
        let mut w = w.lock().ok()?;
        w.summary(sla_quantile)
    }

    /// Requests and errors of a model over the window.
    pub fn errors(&self, model: &str) -> ErrorRate {
        let Some(w) = self.models.get(model) else {
            return ErrorRate::default();
        };
        let Ok(mut w) = w.lock() else {
            return ErrorRate::default();
        };
        w.errors()
    }

    /// Window quantiles of one version of a model.
    pub fn version_summary(&self, model: &str, version: &str) -> Option<LatencySummary> {
        self.with_version(model, version, |w| w.window.summary(0.5))
            .flatten()
    }

    /// Requests and errors of one version over the window.
    pub fn version_errors(&self, model: &str, version: &str) -> ErrorRate {
        self.with_version(model, version, |w| w.window.errors())
            .unwrap_or_default()
    }

    /// Latency mean and variance of one version over the window.
    pub fn version_moments(&self, model: &str, version: &str) -> Option<Moments> {
        self.with_version(model, version, |w| w.window.moments())
            .flatten()
    }

    /// (model, version) pairs with a window, sorted.
    pub fn versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for e in self.versions.iter() {
            if let Ok(m) = e.value().lock() {
                out.extend(m.keys().map(|v| (e.key().clone(), v.clone())));
            }
        }
        out.sort();
        out
    }

    fn version_totals(&self, model: &str, version: &str) -> Totals {
        self.with_version(model, version, |w| w.totals)
            .unwrap_or_default()
    }

    /// Models with a window.
    pub fn models(&self) -> Vec<String> {
        self.models.iter().map(|e| e.key().clone()).collect()
    }
}

/// Quantile of weighted sorted values: the smallest value whose cumulative weight reaches
/// `p` of the total (the inverted CDF).
fn weighted_quantile(sorted: &[(f64, f64)], p: f64) -> f64 {
    let total: f64 = sorted.iter().map(|(_, w)| w).sum();
    let target = p.clamp(0.0, 1.0) * total;
    let mut acc = 0.0;
    for (v, w) in sorted {
        acc += w;
        if acc >= target {
            return *v;
        }
    }
    sorted.last().map_or(f64::NAN, |(v, _)| *v)
}

/// Exposes `mlmon_latency_seconds` as a summary computed at scrape time from the windows
/// (no timer pushes gauges). prometheus-client 0.26 cannot encode the summary type, so this
/// writes its own lines, escaping label values by the rules both text formats share.
#[derive(Debug)]
pub struct LatencyCollector {
    /// The windows read at each scrape.
    pub windows: Arc<LatencyWindows>,
}

impl crate::metrics::ScrapeWriter for LatencyCollector {
    fn write(&self, out: &mut String, openmetrics: bool) {
        let mut models = self.windows.models();
        models.sort();
        let summaries: Vec<(String, LatencySummary)> = models
            .into_iter()
            .filter_map(|m| self.windows.summary(&m, 0.5).map(|s| (m, s)))
            .collect();
        out.push_str("# HELP mlmon_latency_seconds End-to-end latency of inference requests over the drift window, computed at scrape.\n");
        out.push_str("# TYPE mlmon_latency_seconds summary\n");
        for (model, s) in summaries {
            let labels = format!("model=\"{}\"", crate::metrics::escape_label_value(&model));
            write_summary(out, "mlmon_latency_seconds", &labels, &s);
        }
        self.write_versions(out, openmetrics);
    }
}

impl LatencyCollector {
    /// The per-version families (SPEC 10, docs/versions.md): request and error counters
    /// since start, and the window latency summary. Written only once a version is known.
    fn write_versions(&self, out: &mut String, openmetrics: bool) {
        use std::fmt::Write;
        let versions = self.windows.versions();
        if versions.is_empty() {
            return;
        }
        let esc = crate::metrics::escape_label_value;
        for (name, help, errors) in [
            (
                "mlmon_version_requests",
                "Inference requests answered, per model version.",
                false,
            ),
            (
                "mlmon_version_errors",
                "Inference requests that failed (5xx, or mlmon's own 502/504), per model version.",
                true,
            ),
        ] {
            let family = if openmetrics {
                name.to_string()
            } else {
                format!("{name}_total")
            };
            let _ = writeln!(out, "# HELP {family} {help}");
            let _ = writeln!(out, "# TYPE {family} counter");
            for (m, v) in &versions {
                let t = self.windows.version_totals(m, v);
                let n = if errors { t.errors } else { t.requests };
                let _ = writeln!(
                    out,
                    "{name}_total{{model=\"{}\",version=\"{}\"}} {n}",
                    esc(m),
                    esc(v)
                );
            }
        }
        out.push_str("# HELP mlmon_version_latency_seconds End-to-end latency of inference requests per model version over the drift window, computed at scrape.\n");
        out.push_str("# TYPE mlmon_version_latency_seconds summary\n");
        for (m, v) in &versions {
            let Some(s) = self.windows.version_summary(m, v) else {
                continue;
            };
            let labels = format!("model=\"{}\",version=\"{}\"", esc(m), esc(v));
            write_summary(out, "mlmon_version_latency_seconds", &labels, &s);
        }
    }
}

/// The series of one summary: p50, p95 and p99 as `quantile` series, then `_sum` and
/// `_count`, each with `labels` (already escaped, without braces).
fn write_summary(out: &mut String, family: &str, labels: &str, s: &LatencySummary) {
    use std::fmt::Write;
    for (q, x) in [("0.5", s.p50), ("0.95", s.p95), ("0.99", s.p99)] {
        let _ = writeln!(
            out,
            "{family}{{{labels},quantile=\"{q}\"}} {}",
            crate::metrics::float(x)
        );
    }
    let _ = writeln!(
        out,
        "{family}_sum{{{labels}}} {}",
        crate::metrics::float(s.sum)
    );
    let _ = writeln!(out, "{family}_count{{{labels}}} {}", s.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quantiles_and_expiry() {
        let w = LatencyWindows::new(Duration::from_secs(60));
        assert!(w.summary("m", 0.95).is_none());
        for ms in 1..=100 {
            w.record("m", Duration::from_millis(ms));
        }
        let s = w.summary("m", 0.95).unwrap();
        assert_eq!(s.count, 100);
        // numpy.quantile(np.arange(1, 101) / 1000, [0.5, 0.95, 0.99])
        assert!((s.p50 - 0.0505).abs() < 1e-12);
        assert!((s.p95 - 0.09505).abs() < 1e-12);
        assert!((s.p99 - 0.09901).abs() < 1e-12);
        assert!((s.sum - 5.05).abs() < 1e-9);
        // The window is 60 s plus one 6 s bucket.
        tokio::time::advance(Duration::from_secs(67)).await;
        w.record("m", Duration::from_millis(7));
        let s = w.summary("m", 0.95).unwrap();
        assert_eq!(s.count, 1, "old samples leave the window");
        assert_eq!(s.p99, 0.007);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_does_not_hide_the_rest_of_the_window() {
        let w = LatencyWindows::new(Duration::from_secs(3600));
        // 1 000 slow requests, then (in a later bucket) a burst of fast ones bigger than
        // the whole sample budget: the window still counts both.
        for _ in 0..1000 {
            w.record("m", Duration::from_millis(500));
        }
        tokio::time::advance(Duration::from_secs(400)).await;
        for _ in 0..(MAX_SAMPLES + 10) {
            w.record("m", Duration::from_millis(1));
        }
        let s = w.summary("m", 0.5).unwrap();
        assert_eq!(s.count, MAX_SAMPLES + 1010);
        assert_eq!(s.p50, 0.001);
        // 1000 of 66 546 requests are slow (1.5 %): p99 is slow.
        assert_eq!(s.p99, 0.5);
    }

    #[tokio::test(start_paused = true)]
    async fn error_rate_over_the_window() {
        let w = LatencyWindows::new(Duration::from_secs(60));
        for i in 0..10 {
            w.record_outcome("m", Duration::from_millis(1), i < 3);
        }
        assert_eq!(
            w.errors("m"),
            ErrorRate {
                requests: 10,
                errors: 3
            }
        );
        tokio::time::advance(Duration::from_secs(70)).await;
        assert_eq!(w.errors("m"), ErrorRate::default());
        assert_eq!(w.errors("other"), ErrorRate::default());
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;
    use crate::metrics::ScrapeWriter;

    #[tokio::test(start_paused = true)]
    async fn versions_have_their_own_windows_and_counters() {
        let w = Arc::new(LatencyWindows::new(Duration::from_secs(60)));
        for ms in [10, 20, 30] {
            w.record_version("m", "v1", Duration::from_millis(ms), false);
        }
        w.record_version("m", "v2", Duration::from_millis(100), true);
        w.record_version("m", "v2", Duration::from_millis(300), false);
        // numpy: mean([.01,.02,.03]) = .02, var(ddof=1) = 1e-4
        let m1 = w.version_moments("m", "v1").unwrap();
        assert_eq!(m1.n, 3);
        assert!((m1.mean - 0.02).abs() < 1e-12);
        assert!((m1.variance - 1e-4).abs() < 1e-12);
        assert_eq!(
            w.version_errors("m", "v2"),
            ErrorRate {
                requests: 2,
                errors: 1
            }
        );
        assert_eq!(w.version_summary("m", "v2").unwrap().p50, 0.2);
        assert!(
            w.summary("m", 0.5).is_none(),
            "the model window is the proxy's"
        );
        let mut out = String::new();
        LatencyCollector { windows: w.clone() }.write(&mut out, false);
        assert!(out.contains("# TYPE mlmon_version_requests_total counter\n"));
        assert!(out.contains("mlmon_version_requests_total{model=\"m\",version=\"v2\"} 2\n"));
        assert!(out.contains("mlmon_version_errors_total{model=\"m\",version=\"v2\"} 1\n"));
        assert!(out.contains(
            "mlmon_version_latency_seconds{model=\"m\",version=\"v1\",quantile=\"0.5\"} 0.02\n"
        ));
        // The window empties; the counters stay.
        tokio::time::advance(Duration::from_secs(70)).await;
        assert!(w.version_moments("m", "v1").is_none());
        let mut out = String::new();
        LatencyCollector { windows: w }.write(&mut out, true);
        assert!(out.contains("# TYPE mlmon_version_requests counter\n"));
        assert!(out.contains("mlmon_version_requests_total{model=\"m\",version=\"v1\"} 3\n"));
        assert!(!out.contains("mlmon_version_latency_seconds{"));
    }
}

#[cfg(test)]
mod exposition_tests {
    use super::*;
    use crate::metrics::ScrapeWriter;

    #[tokio::test]
    async fn summary_lines_with_escaped_model_names() {
        let w = Arc::new(LatencyWindows::new(Duration::from_secs(60)));
        w.record("a\"b\\c\nd", Duration::from_millis(10));
        w.record("a\"b\\c\nd", Duration::from_millis(30));
        let mut out = String::new();
        LatencyCollector { windows: w }.write(&mut out, false);
        assert!(out.contains("# TYPE mlmon_latency_seconds summary\n"));
        assert!(out
            .contains("mlmon_latency_seconds{model=\"a\\\"b\\\\c\\nd\",quantile=\"0.5\"} 0.02\n"));
        assert!(out.contains("mlmon_latency_seconds_count{model=\"a\\\"b\\\\c\\nd\"} 2\n"));
        assert_eq!(out.lines().count(), 2 + 5);
    }
}
