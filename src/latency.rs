//! Sliding latency windows per model, for the `mlmon_latency_seconds{quantile}` gauges and
//! the SLA part of model health.
//!
//! Each model keeps the (time, latency) of its recent inference requests, at most
//! [`MAX_SAMPLES`] of them and none older than `drift.window`. Pushing is O(1) under a
//! short lock on the request path; quantiles are computed when the gauges refresh.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

/// Latency samples kept per model at most (the newest win).
pub const MAX_SAMPLES: usize = 65_536;

/// Window quantiles of one model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Requests in the window.
    pub count: usize,
    /// Median, seconds.
    pub p50: f64,
    /// 95th percentile, seconds.
    pub p95: f64,
    /// 99th percentile, seconds.
    pub p99: f64,
    /// The `sla.quantile` quantile, seconds.
    pub sla_quantile: f64,
}

/// Latency windows of all models.
#[derive(Debug)]
pub struct LatencyWindows {
    window: Duration,
    models: DashMap<String, Mutex<VecDeque<(Instant, f64)>>>,
}

impl LatencyWindows {
    /// Windows of `window` length.
    pub fn new(window: Duration) -> Self {
        LatencyWindows {
            window,
            models: DashMap::new(),
        }
    }

    /// Records one request's latency.
    pub fn record(&self, model: &str, latency: Duration) {
        let now = Instant::now();
        let push = |q: &Mutex<VecDeque<(Instant, f64)>>| {
            if let Ok(mut q) = q.lock() {
                if q.len() >= MAX_SAMPLES {
                    q.pop_front();
                }
                q.push_back((now, latency.as_secs_f64()));
            }
        };
        if let Some(q) = self.models.get(model) {
            push(&q);
            return;
        }
        let q = self.models.entry(model.to_string()).or_default();
        push(&q);
    }

    /// Window quantiles of a model, `None` when the window is empty.
    pub fn summary(&self, model: &str, sla_quantile: f64) -> Option<LatencySummary> {
        let q = self.models.get(model)?;
        let mut values: Vec<f64> = {
            let mut q = q.lock().ok()?;
            let cutoff = Instant::now().checked_sub(self.window);
            if let Some(cutoff) = cutoff {
                while q.front().is_some_and(|(t, _)| *t < cutoff) {
                    q.pop_front();
                }
            }
            q.iter().map(|(_, v)| *v).collect()
        };
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(LatencySummary {
            count: values.len(),
            p50: quantile_sorted(&values, 0.5),
            p95: quantile_sorted(&values, 0.95),
            p99: quantile_sorted(&values, 0.99),
            sla_quantile: quantile_sorted(&values, sla_quantile),
        })
    }

    /// Models with a window.
    pub fn models(&self) -> Vec<String> {
        self.models.iter().map(|e| e.key().clone()).collect()
    }
}

/// Quantile of sorted values, linear interpolation (numpy's default).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
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
        tokio::time::advance(Duration::from_secs(61)).await;
        w.record("m", Duration::from_millis(7));
        let s = w.summary("m", 0.95).unwrap();
        assert_eq!(s.count, 1, "old samples leave the window");
        assert_eq!(s.p99, 0.007);
    }

    #[tokio::test]
    async fn bounded() {
        let w = LatencyWindows::new(Duration::from_secs(3600));
        for _ in 0..(MAX_SAMPLES + 10) {
            w.record("m", Duration::from_millis(1));
        }
        assert_eq!(w.summary("m", 0.5).unwrap().count, MAX_SAMPLES);
    }
}
