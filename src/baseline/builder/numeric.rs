//! Numeric columns: moments, a reservoir for quantiles and edges, bin counts, and a
//! quantile sketch of every value (the snapshot's `sketch`, KS/Wasserstein reference).

use super::sort::sort_f64;
use super::BuildOptions;
use crate::baseline::sampling::{subsample, Reservoir, SplitMix64};
use crate::baseline::snapshot::{Bins, FeatureBaseline, FeatureStats, FeatureType, Quantiles};
use crate::stats::sketch::{QuantileSketch, DEFAULT_COMPRESSION};

#[derive(Debug)]
pub(super) struct NumericAcc {
    /// Non-missing values.
    pub(super) count: u64,
    /// Running mean (Welford).
    pub(super) mean: f64,
    /// Running sum of squared deviations (Welford).
    pub(super) m2: f64,
    /// Smallest value.
    pub(super) min: f64,
    /// Largest value.
    pub(super) max: f64,
    /// Uniform sample for quantiles, edges and the reference sample.
    pub(super) reservoir: Reservoir<f64>,
    /// Every value, sketched (bounded memory: [`crate::stats::sketch`]).
    pub(super) sketch: QuantileSketch,
    /// Set after pass 1: the sorted reservoir, its generator, edges.
    pub(super) summary: Option<NumericSummary>,
    /// Every value pushed, in order, when the build keeps them to count the bins
    /// without a second pass (bounded by the engine's `cache_budget`).
    pub(super) cache: Option<Vec<f64>>,
}

#[derive(Debug)]
pub(super) struct NumericSummary {
    /// Sorted reservoir values.
    pub(super) sorted: Vec<f64>,
    /// Generator for the reference subsample.
    pub(super) rng: SplitMix64,
    /// Whether the reservoir held every value.
    pub(super) exact: bool,
    /// Whether `bin_counts` are complete after pass 1 (every value was kept), so no
    /// second pass counts them.
    pub(super) binned: bool,
    /// Interior bin edges.
    pub(super) edges: Vec<f64>,
    /// Values per bin (complete after pass 1 when exact, else after pass 2).
    pub(super) bin_counts: Vec<u64>,
    /// Values counted in pass 2.
    pub(super) pass2_count: u64,
}

impl NumericAcc {
    pub(super) fn new(capacity: usize, rng: SplitMix64) -> Self {
        NumericAcc {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            reservoir: Reservoir::new(capacity, rng),
            sketch: QuantileSketch::new(DEFAULT_COMPRESSION),
            summary: None,
            cache: None,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, v: f64) {
        self.count += 1;
        let delta = v - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (v - self.mean);
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
        self.reservoir.offer(v);
        // While every value is kept, the sketch is built from them at the end (from one
        // sort, [`NumericAcc::summarize`]); else it is fed value by value.
        match &mut self.cache {
            Some(c) => c.push(v),
            None => {
                self.sketch.insert(v);
            }
        }
    }

    /// Stops keeping every value (over the build's memory budget): the values kept so
    /// far go into the sketch, as they would have one by one, and later ones stream.
    pub(super) fn drop_cache(&mut self) {
        if let Some(values) = self.cache.take() {
            for v in values {
                self.sketch.insert(v);
            }
        }
    }

    /// After pass 1: sort the reservoir, derive edges, count bins when exact. When every
    /// value was kept (`cache`), they are sorted once: the bins are counted from them
    /// (no second pass) and the sketch is built from them in one go (the same cells a
    /// sketch of sorted input gets, more accurate than value-by-value flushes).
    pub(super) fn summarize(&mut self, bins: usize) {
        let exact = self.reservoir.is_exact();
        let placeholder = Reservoir::new(0, SplitMix64::for_stream(0, ""));
        let (sorted, rng) = std::mem::replace(&mut self.reservoir, placeholder).into_parts();
        let sorted = sort_f64(sorted);
        let all = match self.cache.take() {
            // The reservoir holds every value: it is the sorted column.
            Some(_) if exact => None,
            Some(values) => Some(sort_f64(values)),
            None => None,
        };
        let kept_all = exact || all.is_some();
        if self.sketch.is_empty() && kept_all {
            let column = all.as_deref().unwrap_or(&sorted);
            self.sketch = sketch_of_sorted(column);
        }
        let edges = if sorted.is_empty() {
            Vec::new()
        } else {
            crate::stats::quantile_edges(&sorted, bins)
        };
        let bin_counts = match (exact, &all) {
            (true, _) => sorted_bin_counts(&edges, &sorted),
            (false, Some(values)) => sorted_bin_counts(&edges, values),
            (false, None) => vec![0u64; edges.len() + 1],
        };
        self.summary = Some(NumericSummary {
            sorted,
            rng,
            exact,
            binned: kept_all,
            edges,
            bin_counts,
            pass2_count: 0,
        });
    }
}

/// The sketch of a column of finite values sorted by [`f64::total_cmp`]: its atoms fused
/// once at the default compression.
fn sketch_of_sorted(sorted: &[f64]) -> QuantileSketch {
    let mut sketch = QuantileSketch::new(DEFAULT_COMPRESSION);
    if !sorted.is_empty() {
        sketch.merge(&QuantileSketch::exact(sorted));
    }
    sketch
}

/// Values per bin (`edges[i-1] < v <= edges[i]`, as [`crate::stats::bin_index`]) of a
/// column sorted by [`f64::total_cmp`], by binary search.
fn sorted_bin_counts(edges: &[f64], sorted: &[f64]) -> Vec<u64> {
    let mut counts = Vec::with_capacity(edges.len() + 1);
    let mut below = 0usize;
    for e in edges {
        let upto = sorted.partition_point(|v| v <= e);
        counts.push(upto.saturating_sub(below) as u64);
        below = below.max(upto);
    }
    counts.push(sorted.len().saturating_sub(below) as u64);
    counts
}

pub(super) fn missing_ratio(count: u64, rows: u64) -> f64 {
    if rows == 0 {
        0.0
    } else {
        (rows.saturating_sub(count)) as f64 / rows as f64
    }
}

pub(super) fn numeric_baseline(acc: NumericAcc, rows: u64, o: &BuildOptions) -> FeatureBaseline {
    let mut notes = Vec::new();
    let mut stats = FeatureStats {
        count: acc.count,
        missing_ratio: missing_ratio(acc.count, rows),
        ..FeatureStats::default()
    };
    let Some(summary) = acc.summary else {
        // Unreachable in practice (pass 1 summarizes every numeric column).
        return empty_numeric(stats);
    };
    if acc.count == 0 {
        notes.push("no values: every row is missing".to_string());
        let mut entry = empty_numeric(stats);
        entry.notes = notes;
        return entry;
    }
    stats.mean = Some(acc.mean);
    stats.std = (acc.count >= 2).then(|| (acc.m2 / (acc.count - 1) as f64).max(0.0).sqrt());
    stats.min = Some(acc.min);
    stats.max = Some(acc.max);
    let NumericSummary {
        sorted,
        mut rng,
        exact,
        edges,
        bin_counts,
        ..
    } = summary;
    // `sorted` is not empty here (count > 0), so every quantile exists.
    let q =
        Quantiles::LEVELS.map(|l| crate::stats::quantile_sorted(&sorted, l).unwrap_or(f64::NAN));
    if !exact {
        notes.push(format!(
            "quantiles and bin edges estimated from a uniform sample of {} of {} values; bin proportions are exact",
            sorted.len(),
            acc.count
        ));
    }
    stats.quantiles = Some(Quantiles::from_values(q));
    let total: u64 = bin_counts.iter().sum();
    let proportions = bin_counts
        .iter()
        .map(|c| {
            if total == 0 {
                0.0
            } else {
                *c as f64 / total as f64
            }
        })
        .collect();
    let mut sample = subsample(sorted, o.sample_size, &mut rng);
    sample.sort_by(f64::total_cmp);
    let mut sketch = acc.sketch;
    sketch.flush();
    FeatureBaseline {
        kind: FeatureType::Numeric,
        stats,
        bins: Some(Bins { edges, proportions }),
        categories: None,
        sample,
        sketch: Some(sketch),
        thresholds: None,
        importance: None,
        notes,
    }
}

pub(super) fn empty_numeric(stats: FeatureStats) -> FeatureBaseline {
    FeatureBaseline {
        kind: FeatureType::Numeric,
        stats,
        bins: Some(Bins {
            edges: Vec::new(),
            proportions: vec![1.0],
        }),
        categories: None,
        sample: Vec::new(),
        sketch: None,
        thresholds: None,
        importance: None,
        notes: Vec::new(),
    }
}
