//! A time-sliding window of one feature's live values, in bounded memory.
//!
//! The window is cut into [`BUCKETS`] time buckets of `drift.window / BUCKETS`; a bucket
//! leaves the window once it has fully aged out, so the values in force span between
//! `window` and `window + window / BUCKETS`. Each bucket keeps:
//!
//! - exact counts per baseline bin (numeric) or per baseline category (categorical, with
//!   unseen values pooled in `__other__`) — PSI, JS and chi-square are exact at any rate;
//! - missing and type-mismatch counts, and Welford moments plus min/max of the values;
//! - for numeric features, a *bottom-k* sample: every value draws a uniform priority and
//!   a bucket keeps its `drift.sample_size` lowest-priority values. The lowest `k`
//!   priorities across the live buckets are a uniform sample without replacement of all
//!   the window's values, and *all* of them while the window holds `k` or fewer: KS and
//!   Wasserstein are exact then. When a bucket is closed, values of older buckets that
//!   can no longer make the window's bottom-k (their priority exceeds the k-th lowest of
//!   the newer buckets, which outlive them) are pruned, which keeps the memory near
//!   `k · (2 + H(BUCKETS − 1)) ≈ 4.8 k` values per feature at high rates instead of
//!   `k · BUCKETS`.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::record::FeatureValue;
use crate::window::Buckets;
pub use crate::window::{Moments, BUCKETS};

/// How values are counted: numeric bins or categories.
#[derive(Debug, Clone)]
pub enum Layout {
    /// Numeric: `edges` of the baseline bins (bin i holds `edges[i-1] < v <= edges[i]`).
    Numeric {
        /// Interior bin edges.
        edges: Vec<f64>,
    },
    /// Categorical: baseline categories in order; index `len` is `__other__`.
    Categorical {
        /// Category → index.
        index: HashMap<String, usize>,
        /// Number of baseline categories.
        len: usize,
    },
}

impl Layout {
    /// Number of counting cells (bins, or categories plus `__other__`).
    pub fn cells(&self) -> usize {
        match self {
            Layout::Numeric { edges } => edges.len() + 1,
            Layout::Categorical { len, .. } => len + 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Keyed {
    priority: f64,
    value: f64,
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.priority == other.priority
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.total_cmp(&other.priority)
    }
}

/// One time bucket's aggregates (`counts` sized on first use).
#[derive(Debug, Default)]
struct Bucket {
    counts: Vec<u64>,
    missing: u64,
    invalid: u64,
    moments: Moments,
    sample: BinaryHeap<Keyed>,
}

/// What a value turned out to be when pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Counted in cell `i`.
    Counted(usize),
    /// Missing (`null`, NaN, absent).
    Missing,
    /// Wrong type for the feature (text on a numeric feature).
    Invalid,
}

/// The aggregate of the live buckets.
#[derive(Debug, Clone, Default)]
pub struct WindowView {
    /// Counts per cell.
    pub counts: Vec<u64>,
    /// Missing values.
    pub missing: u64,
    /// Type mismatches.
    pub invalid: u64,
    /// Moments of the numeric values.
    pub moments: Moments,
    /// Sorted sample of the numeric values (all of them when few).
    pub sample: Vec<f64>,
}

impl WindowView {
    /// Values counted in cells.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// One feature's window.
#[derive(Debug)]
pub struct FeatureWindow {
    layout: Layout,
    sample_size: usize,
    buckets: Buckets<Bucket>,
    /// Counts per cell since start (for `mlmon_feature_bin_observations_total`).
    pub cumulative: Vec<u64>,
}

impl FeatureWindow {
    /// A window of `window` length keeping `sample_size` values for KS/Wasserstein.
    pub fn new(layout: Layout, window: Duration, sample_size: usize) -> Self {
        let cells = layout.cells();
        FeatureWindow {
            layout,
            sample_size: sample_size.max(1),
            buckets: Buckets::new(window),
            cumulative: vec![0; cells],
        }
    }

    /// The counting layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn current(&mut self, now: Instant) -> &mut Bucket {
        if self.buckets.opens_bucket(now) {
            self.buckets.expire(now);
            self.prune();
        }
        let cells = self.layout.cells();
        let b = self.buckets.current(now);
        if b.counts.len() != cells {
            b.counts.resize(cells, 0);
        }
        b
    }

    /// Drops sampled values of older buckets that can no longer be among the window's
    /// `k` lowest priorities.
    fn prune(&mut self) {
        let k = self.sample_size;
        let mut newer: BinaryHeap<Keyed> = BinaryHeap::new(); // k lowest of newer buckets
        for b in self.buckets.newest_first_mut() {
            if newer.len() >= k {
                if let Some(threshold) = newer.peek().map(|t| t.priority) {
                    let kept: Vec<Keyed> = b
                        .sample
                        .drain()
                        .filter(|x| x.priority < threshold)
                        .collect();
                    b.sample = kept.into_iter().collect();
                }
            }
            for x in b.sample.iter() {
                if newer.len() < k {
                    newer.push(*x);
                } else if newer.peek().is_some_and(|t| x.priority < t.priority) {
                    newer.pop();
                    newer.push(*x);
                }
            }
        }
    }

    /// Adds one value observed at `now`.
    pub fn push(&mut self, value: &FeatureValue, now: Instant, rng: &mut impl Rng) -> Pushed {
        let cell = match &self.layout {
            Layout::Numeric { edges } => match numeric(value) {
                Numeric::Value(v) => Ok((crate::stats::bin_index(edges, v), Some(v))),
                Numeric::Missing => Err(Pushed::Missing),
                Numeric::Invalid => Err(Pushed::Invalid),
            },
            Layout::Categorical { index, len } => match crate::baseline::category_key(value) {
                Some(key) => Ok((index.get(key.as_ref()).copied().unwrap_or(*len), None)),
                None => Err(Pushed::Missing),
            },
        };
        let k = self.sample_size;
        let (i, numeric_value) = match cell {
            Ok(c) => c,
            Err(p) => {
                let b = self.current(now);
                match p {
                    Pushed::Missing => b.missing += 1,
                    _ => b.invalid += 1,
                }
                return p;
            }
        };
        let priority: f64 = if numeric_value.is_some() {
            rng.random()
        } else {
            0.0
        };
        let b = self.current(now);
        b.counts[i] += 1;
        if let Some(v) = numeric_value {
            b.moments.push(v);
            let x = Keyed { priority, value: v };
            if b.sample.len() < k {
                b.sample.push(x);
            } else if b.sample.peek().is_some_and(|top| priority < top.priority) {
                b.sample.pop();
                b.sample.push(x);
            }
        }
        self.cumulative[i] += 1;
        Pushed::Counted(i)
    }

    /// The window as of `now`.
    pub fn view(&mut self, now: Instant) -> WindowView {
        let mut v = WindowView {
            counts: vec![0; self.layout.cells()],
            ..Default::default()
        };
        let mut all: Vec<Keyed> = Vec::new();
        for (_, b) in self.buckets.live(now) {
            for (c, n) in v.counts.iter_mut().zip(&b.counts) {
                *c += n;
            }
            v.missing += b.missing;
            v.invalid += b.invalid;
            v.moments.merge(&b.moments);
            all.extend(b.sample.iter().copied());
        }
        let k = self.sample_size;
        if all.len() > k {
            all.select_nth_unstable(k - 1);
            all.truncate(k);
        }
        v.sample = all.into_iter().map(|x| x.value).collect();
        v.sample.sort_by(f64::total_cmp);
        v
    }

    /// Sampled values held (memory accounting).
    pub fn held_values(&self) -> usize {
        self.buckets.held().map(|b| b.sample.len()).sum()
    }
}

enum Numeric {
    Value(f64),
    Missing,
    Invalid,
}

fn numeric(value: &FeatureValue) -> Numeric {
    match value {
        FeatureValue::Number(v) if v.is_finite() => Numeric::Value(*v),
        FeatureValue::Number(_) | FeatureValue::Missing => Numeric::Missing,
        FeatureValue::Text(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Numeric::Missing;
            }
            match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Numeric::Value(v),
                Ok(_) => Numeric::Missing,
                Err(_) => Numeric::Invalid,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn numeric_window(k: usize) -> FeatureWindow {
        FeatureWindow::new(
            Layout::Numeric {
                edges: vec![0.0, 10.0],
            },
            Duration::from_secs(100),
            k,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn exact_when_the_window_holds_fewer_than_k() {
        let mut w = numeric_window(1000);
        let mut rng = SmallRng::seed_from_u64(1);
        for i in 0..500 {
            w.push(&FeatureValue::Number(i as f64), Instant::now(), &mut rng);
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        w.push(&FeatureValue::Missing, Instant::now(), &mut rng);
        w.push(&FeatureValue::Text("abc".into()), Instant::now(), &mut rng);
        w.push(&FeatureValue::Text("3".into()), Instant::now(), &mut rng);
        let v = w.view(Instant::now());
        assert_eq!(v.sample.len(), 501);
        // 0 | 1..=10 and the text "3" | 11..=499
        assert_eq!(v.counts, vec![1, 11, 489]);
        assert_eq!(v.missing, 1);
        assert_eq!(v.invalid, 1);
        assert_eq!(v.moments.n, 501);
        assert_eq!(v.sample.len(), 501);
        assert_eq!(v.moments.min, 0.0);
        assert_eq!(v.moments.max, 499.0);
    }

    #[tokio::test(start_paused = true)]
    async fn values_leave_after_the_window() {
        let mut w = numeric_window(1000);
        let mut rng = SmallRng::seed_from_u64(1);
        w.push(&FeatureValue::Number(-5.0), Instant::now(), &mut rng);
        tokio::time::advance(Duration::from_secs(50)).await;
        w.push(&FeatureValue::Number(5.0), Instant::now(), &mut rng);
        tokio::time::advance(Duration::from_secs(65)).await;
        let v = w.view(Instant::now());
        assert_eq!(v.counts, vec![0, 1, 0], "the first value aged out");
        assert_eq!(
            w.cumulative,
            vec![1, 1, 0],
            "cumulative counts keep everything"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        let v = w.view(Instant::now());
        assert_eq!(v.count(), 0);
        assert!(v.sample.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn sample_is_bounded_and_uniform_over_the_window() {
        let k = 2000;
        let mut w = numeric_window(k);
        let mut rng = SmallRng::seed_from_u64(7);
        // 100 s of traffic at 1000 values/s, value = second of arrival.
        for s in 0..100 {
            for _ in 0..1000 {
                w.push(&FeatureValue::Number(s as f64), Instant::now(), &mut rng);
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let v = w.view(Instant::now());
        assert_eq!(v.sample.len(), k);
        // Pruning keeps about k·(2 + H_9) ≈ 4.8k, not k·BUCKETS = 10k.
        assert!(w.held_values() <= k * 5, "held {}", w.held_values());
        // Uniform over time: the sample mean is near the window mean (≈ 49.5 … 54.5,
        // depending on how much of the oldest bucket is still in force).
        let mean = v.sample.iter().sum::<f64>() / k as f64;
        assert!(
            (v.moments.mean - mean).abs() < 2.5,
            "sample mean {mean} vs {}",
            v.moments.mean
        );
    }

    #[test]
    fn moments_merge_matches_a_single_pass() {
        let xs: Vec<f64> = (0..100).map(|i| (i as f64 * 0.37).sin() * 10.0).collect();
        let mut all = Moments::default();
        xs.iter().for_each(|x| all.push(*x));
        let (mut a, mut b) = (Moments::default(), Moments::default());
        xs[..37].iter().for_each(|x| a.push(*x));
        xs[37..].iter().for_each(|x| b.push(*x));
        a.merge(&b);
        assert!((a.mean - all.mean).abs() < 1e-12);
        assert!((a.m2 - all.m2).abs() < 1e-9);
        assert_eq!(a.n, 100);
    }
}
