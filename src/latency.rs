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
    samples: Vec<f64>,
}

#[derive(Debug)]
struct ModelWindow {
    buckets: Buckets<Bucket>,
    /// xorshift state for reservoir sampling.
    rng: u64,
}

impl ModelWindow {
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// Traffic windows of all models.
#[derive(Debug)]
pub struct LatencyWindows {
    window: Duration,
    models: DashMap<String, Mutex<ModelWindow>>,
}

impl LatencyWindows {
    /// Windows of `window` length.
    pub fn new(window: Duration) -> Self {
        LatencyWindows {
            window,
            models: DashMap::new(),
        }
    }

    /// Records one request's latency (not an error).
    pub fn record(&self, model: &str, latency: Duration) {
        self.record_outcome(model, latency, false);
    }

    /// Records one request's latency and whether it failed.
    pub fn record_outcome(&self, model: &str, latency: Duration, error: bool) {
        let now = Instant::now();
        let push = |w: &Mutex<ModelWindow>| {
            let Ok(mut w) = w.lock() else { return };
            let r = w.next();
            let b = w.buckets.current(now);
            b.count += 1;
            b.errors += u64::from(error);
            let v = latency.as_secs_f64();
            b.sum += v;
            if b.samples.len() < BUCKET_SAMPLES {
                b.samples.push(v);
            } else {
                // Algorithm R: the bucket's sample stays uniform over its requests.
                let j = (r % b.count) as usize;
                if let Some(slot) = b.samples.get_mut(j) {
                    *slot = v;
                }
            }
        };
        if let Some(w) = self.models.get(model) {
            push(&w);
            return;
        }
        let w = self.models.entry(model.to_string()).or_insert_with(|| {
            Mutex::new(ModelWindow {
                buckets: Buckets::new(self.window),
                rng: 0x9e37_79b9_7f4a_7c15 ^ (model.len() as u64 + 1),
            })
        });
        push(&w);
    }

    /// Window quantiles of a model, `None` when the window is empty.
    pub fn summary(&self, model: &str, sla_quantile: f64) -> Option<LatencySummary> {
        let w = self.models.get(model)?;
        let mut w = w.lock().ok()?;
        let mut count = 0u64;
        let mut sum = 0.0;
        let mut weighted: Vec<(f64, f64)> = Vec::new();
        let mut exact = true;
        for (_, b) in w.buckets.live(Instant::now()) {
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

    /// Requests and errors of a model over the window.
    pub fn errors(&self, model: &str) -> ErrorRate {
        let Some(w) = self.models.get(model) else {
            return ErrorRate::default();
        };
        let Ok(mut w) = w.lock() else {
            return ErrorRate::default();
        };
        w.buckets
            .live(Instant::now())
            .fold(ErrorRate::default(), |acc, (_, b)| ErrorRate {
                requests: acc.requests + b.count,
                errors: acc.errors + b.errors,
            })
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
    fn write(&self, out: &mut String, _openmetrics: bool) {
        use std::fmt::Write;
        let mut models = self.windows.models();
        models.sort();
        let summaries: Vec<(String, LatencySummary)> = models
            .into_iter()
            .filter_map(|m| self.windows.summary(&m, 0.5).map(|s| (m, s)))
            .collect();
        out.push_str("# HELP mlmon_latency_seconds End-to-end latency of inference requests over the drift window, computed at scrape.\n");
        out.push_str("# TYPE mlmon_latency_seconds summary\n");
        for (model, s) in summaries {
            let model = crate::metrics::escape_label_value(&model);
            for (q, v) in [("0.5", s.p50), ("0.95", s.p95), ("0.99", s.p99)] {
                let _ = writeln!(
                    out,
                    "mlmon_latency_seconds{{model=\"{model}\",quantile=\"{q}\"}} {}",
                    crate::metrics::float(v)
                );
            }
            let _ = writeln!(
                out,
                "mlmon_latency_seconds_sum{{model=\"{model}\"}} {}",
                crate::metrics::float(s.sum)
            );
            let _ = writeln!(
                out,
                "mlmon_latency_seconds_count{{model=\"{model}\"}} {}",
                s.count
            );
        }
    }
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
