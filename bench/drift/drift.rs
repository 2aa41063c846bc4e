//! Benchmarks of the streaming drift engine (issue 3).
//!
//! - `ingest/*`: pre-parsed rows (1000-row batches) pushed through [`Sink::observe`] of a
//!   [`DriftEngine`] with a baseline installed, on one thread; throughput in feature values
//!   (rows × features). `numeric_20` and `mixed_15n_5c` run in the steady state of high
//!   traffic (bucket samples full); `numeric_20_rotating` moves the paused clock one bucket
//!   every 10 batches, the worst case per value (samples filling, buckets pruned).
//! - `report/*`: [`DriftEngine::report`] and `refresh` (which also updates the gauges) for
//!   100 numeric features whose windows are full: 15 minutes of traffic at twice
//!   `drift.sample_size` values per bucket, so every feature holds a 5000-value sample.
//! - `parts/*`: the pieces of one feature's report, to show where the time goes.
//! - `ingest_cpu/*`: the same measured in the thread's CPU time instead of wall time
//!   ([`CpuTime::THREAD`]), which a busy machine disturbs much less; `report_cpu/*` in the CPU
//!   time of every thread of the process ([`CpuTime::PROCESS`]), as a report spreads its
//!   features over two threads (`one_thread_*`: the same report on one thread).
//! - Memory per feature at a full window, measured once before the timings with a counting
//!   global allocator (live heap bytes) and cross-checked with the resident set size, and
//!   heap allocations per ingested batch: one `MLMON_DRIFT_BENCH {json}` line on stdout.
//!
//! `bench/drift/run.py` runs this (`cargo bench --bench drift`), reads criterion's
//! estimates and writes docs/performance.md. Without `--bench` (`cargo test --all-targets`)
//! everything runs once at a small scale, as a smoke test.

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[path = "../cpu_time.rs"]
mod cpu_time;
use cpu_time::{process_cpu_ns, thread_cpu_ns};

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, SamplingMode, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use mlmon::analysis::Exchange;
use mlmon::baseline::{BaselineBuilder, BuildOptions, NamedMap, Snapshot};
use mlmon::config::Config;
use mlmon::drift::window::{FeatureWindow, Layout};
use mlmon::drift::DriftEngine;
use mlmon::metrics::drift::DriftMetrics;
use mlmon::record::{FeatureValue, ParsedExchange, Row};

#[path = "../counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{CountingAlloc, ALLOCATIONS, LIVE_BYTES};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const MODEL: &str = "bench";
/// Rows per ingested batch (one request carrying 1000 rows).
const BATCH_ROWS: usize = 1000;
/// Numeric features of the report and memory benchmarks.
const REPORT_FEATURES: usize = 100;
/// Length of one window bucket under the default 15-minute window (`BUCKETS` = 10).
const BUCKET: Duration = Duration::from_secs(90);
/// Categories per categorical feature in the baseline.
const CATEGORIES: [&str; 8] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
];

/// Sizes: the real ones under `cargo bench`, small ones for the smoke run under `cargo test`.
#[derive(Debug, Clone, Copy)]
struct Scale {
    /// `drift.sample_size`.
    sample_size: usize,
    /// Rows in the baseline.
    baseline_rows: usize,
    /// Rows per feature per bucket when filling a window (more than `sample_size`).
    rows_per_bucket: usize,
    /// Features of the report/memory benchmarks.
    report_features: usize,
    /// Batches whose allocations are counted.
    counted_batches: usize,
}

impl Scale {
    fn new(bench: bool) -> Scale {
        if bench {
            Scale {
                sample_size: 5000,
                baseline_rows: 20_000,
                rows_per_bucket: 10_000,
                report_features: REPORT_FEATURES,
                counted_batches: 200,
            }
        } else {
            Scale {
                sample_size: 50,
                baseline_rows: 500,
                rows_per_bucket: 100,
                report_features: 10,
                counted_batches: 2,
            }
        }
    }
}

fn config(scale: &Scale) -> Arc<Config> {
    let mut cfg = Config::default();
    cfg.drift.sample_size = scale.sample_size;
    Arc::new(cfg)
}

fn numeric_name(i: usize) -> String {
    format!("num_{i:03}")
}

fn categorical_name(i: usize) -> String {
    format!("cat_{i}")
}

/// One row: `numeric` normal features (mean `i/10`, sd 1; every tenth feature shifted by
/// `shift` and scaled by `scale`, the drifted ones) and `categorical` features drawn from
/// [`CATEGORIES`] (skewed towards the first ones), with `unseen` as the chance of a category
/// the baseline never saw.
fn row(
    rng: &mut SmallRng,
    numeric: usize,
    categorical: usize,
    shift: f64,
    scale: f64,
    unseen: f64,
) -> Row {
    let mut values = Vec::with_capacity(numeric + categorical);
    for i in 0..numeric {
        let z: f64 = StandardNormal.sample(rng);
        let (shift, scale) = if i % 10 == 0 {
            (shift, scale)
        } else {
            (0.0, 1.0)
        };
        let v = shift + i as f64 / 10.0 + scale * z;
        values.push((numeric_name(i), FeatureValue::Number(v)));
    }
    for i in 0..categorical {
        let value = if rng.random::<f64>() < unseen {
            "zulu".to_string()
        } else {
            let u: f64 = rng.random();
            CATEGORIES[((u * u) * CATEGORIES.len() as f64) as usize].to_string()
        };
        values.push((categorical_name(i), FeatureValue::Text(value)));
    }
    Row { values }
}

fn snapshot(scale: &Scale, numeric: usize, categorical: usize) -> Arc<Snapshot> {
    let mut options = BuildOptions::new(MODEL);
    options.sample_size = scale.sample_size;
    let mut builder = BaselineBuilder::new(options, scale.baseline_rows);
    let mut rng = SmallRng::seed_from_u64(1);
    for _ in 0..scale.baseline_rows {
        builder.push_row(&row(&mut rng, numeric, categorical, 0.0, 1.0, 0.0));
    }
    match builder.finish() {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("benchmark baseline: {e}"),
    }
}

/// Live traffic, every tenth numeric feature drifted (mean +0.3, sd x1.2): batches of
/// [`BATCH_ROWS`] rows.
fn batches(count: usize, numeric: usize, categorical: usize, seed: u64) -> Vec<ParsedExchange> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count)
        .map(|_| ParsedExchange {
            rows: (0..BATCH_ROWS)
                .map(|_| row(&mut rng, numeric, categorical, 0.3, 1.2, 0.01))
                .collect(),
            predictions: Vec::new(),
        })
        .collect()
}

fn observe(engine: &DriftEngine, batch: &ParsedExchange) {
    let current = engine.baselines().get(MODEL);
    engine.observe(&Exchange {
        model: MODEL,
        version: None,
        request_id: "bench",
        received_at: SystemTime::UNIX_EPOCH,
        parsed: batch,
        now: tokio::time::Instant::now(),
        request: None,
        baseline: current.as_ref(),
    });
}

fn paused_runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    }
}

/// Fills every window of `engine` with 11 buckets (the 15-minute window plus the bucket in
/// progress) of `rows_per_bucket` rows each, on the paused clock.
fn fill_full_window(
    rt: &tokio::runtime::Runtime,
    engine: &DriftEngine,
    batch: &ParsedExchange,
    scale: &Scale,
) {
    let per_bucket = scale.rows_per_bucket.div_ceil(batch.rows.len().max(1));
    for _ in 0..11 {
        rt.block_on(async {
            for _ in 0..per_bucket {
                observe(engine, batch);
            }
            tokio::time::advance(BUCKET).await;
        });
    }
    // Back into the middle of the newest bucket, with a full bucket in progress.
    rt.block_on(async {
        for _ in 0..per_bucket {
            observe(engine, batch);
        }
    });
}

fn vm_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// A baseline of `features` numeric features that share one built description (built from
/// a single column, so that building it frees little memory: the RSS cross-check of
/// [`memory_figures`] is not skewed by freed pages being reused).
fn replicated_snapshot(scale: &Scale, features: usize) -> Arc<Snapshot> {
    let one = snapshot(scale, 1, 0);
    let mut snap = (*one).clone();
    let Some((_, base)) = one.features.iter().next() else {
        panic!("no feature in the benchmark baseline");
    };
    snap.features = NamedMap(
        (0..features)
            .map(|i| (numeric_name(i), base.clone()))
            .collect(),
    );
    Arc::new(snap)
}

/// Pushes `rows_per_bucket` values into `window` (cycling over `values`).
fn fill_bucket(window: &mut FeatureWindow, values: &[FeatureValue], scale: &Scale) {
    for v in values.iter().cycle().take(scale.rows_per_bucket) {
        window.push(v, tokio::time::Instant::now());
    }
}

/// Memory of the drift state per feature at a full window (see the module doc).
fn memory_figures(scale: &Scale) -> serde_json::Value {
    let features = scale.report_features;
    let rt = paused_runtime();
    let _guard = rt.enter();
    let cfg = config(scale);
    let snap = replicated_snapshot(scale, features);
    let batch = &batches(1, features, 0, 2)[0];
    let reference_bytes = snap
        .features
        .iter()
        .map(|(_, b)| b.sample.len() * 8)
        .sum::<usize>();

    let before_engine = live_bytes();
    let rss_before_engine = vm_rss_bytes();
    let engine = DriftEngine::new(
        cfg.clone(),
        Arc::new(DriftMetrics::default()),
        Arc::new(mlmon::baseline::Registry::new(0, 5000)),
    );
    if let Err(e) = engine.set_baseline(MODEL, snap.clone()) {
        panic!("set_baseline: {e}");
    }
    let installed = live_bytes();
    fill_full_window(&rt, &engine, batch, scale);
    let full = live_bytes();
    let rss_full = vm_rss_bytes();
    let report = engine.report(MODEL);
    let sample_min = report
        .as_ref()
        .and_then(|r| r.features.iter().map(|f| f.window.sample).min())
        .unwrap_or(0);
    let window_count_min = report
        .as_ref()
        .and_then(|r| r.features.iter().map(|f| f.window.count).min())
        .unwrap_or(0);
    // The figures are labelled "at a full window": hold the benchmark to that.
    assert!(
        sample_min >= scale.sample_size,
        "the filled windows should hold a full sample"
    );

    // The same traffic through one standalone window, to count the values it holds at the
    // end of a bucket (the most) and just after a rotation pruned the older buckets (the
    // least), once the window is in its steady state.
    let edges = snap
        .features
        .iter()
        .next()
        .and_then(|(_, b)| b.bins.as_ref().map(|b| b.edges.clone()))
        .unwrap_or_default();
    let values: Vec<FeatureValue> = batch.rows.iter().map(|r| r.values[0].1.clone()).collect();
    let mut window = FeatureWindow::new(
        Layout::Numeric { edges },
        cfg.drift.window,
        mlmon::stats::sketch::DEFAULT_COMPRESSION,
    );
    let (mut held_full, mut held_rotated) = (0, 0);
    let before_window = live_bytes();
    let mut window_bytes_full = 0;
    for _ in 0..13 {
        fill_bucket(&mut window, &values, scale);
        held_full = window.sketch_bytes();
        window_bytes_full = live_bytes().saturating_sub(before_window);
        rt.block_on(tokio::time::advance(BUCKET));
        window.push(&values[0], tokio::time::Instant::now());
        held_rotated = window.sketch_bytes();
    }
    let window_bytes_rotated = live_bytes().saturating_sub(before_window);

    let per = |bytes: usize| bytes as f64 / features as f64;
    serde_json::json!({
        "features": features,
        "sample_size": scale.sample_size,
        "rows_per_bucket": scale.rows_per_bucket,
        "window_seconds": cfg.drift.window.as_secs_f64(),
        "report_sample_min": sample_min,
        "report_window_count_min": window_count_min,
        "engine_installed_bytes_per_feature": per(installed.saturating_sub(before_engine)),
        "engine_full_bytes_per_feature": per(full.saturating_sub(before_engine)),
        "window_fill_bytes_per_feature": per(full.saturating_sub(installed)),
        "rss_engine_full_bytes_per_feature": match (rss_before_engine, rss_full) {
            (Some(a), Some(b)) => serde_json::json!(b.saturating_sub(a) as f64 / features as f64),
            _ => serde_json::Value::Null,
        },
        "reference_sample_bytes_per_feature": per(reference_bytes),
        "one_window_bytes_end_of_bucket": window_bytes_full,
        "one_window_bytes_after_rotation": window_bytes_rotated,
        "one_window_sketch_bytes_end_of_bucket": held_full,
        "one_window_sketch_bytes_after_rotation": held_rotated,
    })
}

/// Heap allocations per ingested batch once the windows are warm; with `rotate`, the
/// paused clock moves one bucket every `rows_per_bucket / 1000` batches (the "buckets
/// filling" workload of [`bench_ingest`]).
fn allocations_per_batch(scale: &Scale, numeric: usize, categorical: usize, rotate: bool) -> f64 {
    let rt = paused_runtime();
    let _guard = rt.enter();
    let engine = DriftEngine::new(
        config(scale),
        Arc::new(DriftMetrics::default()),
        Arc::new(mlmon::baseline::Registry::new(0, 5000)),
    );
    if let Err(e) = engine.set_baseline(MODEL, snapshot(scale, numeric, categorical)) {
        panic!("set_baseline: {e}");
    }
    let data = batches(4, numeric, categorical, 4);
    let per_bucket = scale.rows_per_bucket.div_ceil(BATCH_ROWS);
    let mut pushed = 0;
    let mut step = |engine: &DriftEngine| {
        observe(engine, &data[pushed % data.len()]);
        pushed += 1;
        if rotate && pushed % per_bucket == 0 {
            rt.block_on(tokio::time::advance(BUCKET));
        }
    };
    for _ in 0..12 * per_bucket {
        step(&engine);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..scale.counted_batches {
        step(&engine);
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / scale.counted_batches as f64
}

/// Batches of `numeric` + `categorical` features through an engine with the default window
/// on the real clock: the buckets' samples are full, so most values only update counts,
/// moments and a priority comparison (the steady state at high rates).
fn bench_ingest<M: Measurement>(c: &mut Criterion<M>, group_name: &str, scale: &Scale) {
    let mut group = c.benchmark_group(group_name);
    for (name, numeric, categorical) in [("numeric_20", 20, 0), ("mixed_15n_5c", 15, 5)] {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("tokio runtime: {e}"),
        };
        let _guard = rt.enter();
        let engine = DriftEngine::new(
            config(scale),
            Arc::new(DriftMetrics::default()),
            Arc::new(mlmon::baseline::Registry::new(0, 5000)),
        );
        if let Err(e) = engine.set_baseline(MODEL, snapshot(scale, numeric, categorical)) {
            panic!("set_baseline: {e}");
        }
        let data = batches(8, numeric, categorical, 5);
        // Warm: every bucket sample already holds drift.sample_size values.
        for b in data.iter().cycle().take(10) {
            observe(&engine, b);
        }
        group.throughput(Throughput::Elements(
            (BATCH_ROWS * (numeric + categorical)) as u64,
        ));
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                observe(&engine, &data[next]);
                next = (next + 1) % data.len();
            })
        });
    }

    // The same 20 numeric features with the buckets turning over: the paused clock moves
    // one bucket (90 s) every `rows_per_bucket / 1000` batches, so each bucket receives
    // 2 x drift.sample_size values per feature and its sample is still being filled and
    // replaced (heap work) for much of its life, and closing a bucket prunes the older
    // ones. The worst case per value, met at moderate traffic (~110 rows/s here).
    let rt = paused_runtime();
    let _guard = rt.enter();
    let engine = DriftEngine::new(
        config(scale),
        Arc::new(DriftMetrics::default()),
        Arc::new(mlmon::baseline::Registry::new(0, 5000)),
    );
    if let Err(e) = engine.set_baseline(MODEL, snapshot(scale, 20, 0)) {
        panic!("set_baseline: {e}");
    }
    let data = batches(8, 20, 0, 7);
    let per_bucket = scale.rows_per_bucket.div_ceil(BATCH_ROWS);
    let mut pushed = 0;
    let mut step = |engine: &DriftEngine| {
        observe(engine, &data[pushed % data.len()]);
        pushed += 1;
        if pushed % per_bucket == 0 {
            rt.block_on(tokio::time::advance(BUCKET));
        }
    };
    for _ in 0..12 * per_bucket {
        step(&engine);
    }
    group.throughput(Throughput::Elements((BATCH_ROWS * 20) as u64));
    group.bench_function("numeric_20_rotating", |b| b.iter(|| step(&engine)));
    group.finish();
}

/// An engine with 100 numeric features whose windows are full (see [`fill_full_window`]).
struct FullEngine {
    rt: tokio::runtime::Runtime,
    engine: DriftEngine,
    snapshot: Arc<Snapshot>,
    batch: ParsedExchange,
}

fn full_engine(scale: &Scale, report_threads: usize) -> FullEngine {
    let rt = paused_runtime();
    let features = scale.report_features;
    let snapshot = snapshot(scale, features, 0);
    let engine = DriftEngine::new(
        config(scale),
        Arc::new(DriftMetrics::default()),
        Arc::new(mlmon::baseline::Registry::new(0, 5000)),
    )
    .with_report_threads(report_threads);
    let batch = batches(1, features, 0, 6).remove(0);
    {
        let _guard = rt.enter();
        // A copy of its own, as the sidecar installs a baseline read from a file or the
        // API: `Registry::set` slims only a snapshot nobody else holds (inexact references
        // recompressed to `REFERENCE_COMPRESSION`, ≤ 501 cells); `snapshot` stays whole for
        // `bench_parts` (its sample).
        if let Err(e) = engine.set_baseline(MODEL, Arc::new((*snapshot).clone())) {
            panic!("set_baseline: {e}");
        }
        fill_full_window(&rt, &engine, &batch, scale);
    }
    FullEngine {
        rt,
        engine,
        snapshot,
        batch,
    }
}

/// `report()` as configured (its features spread over two threads on a 2-CPU machine) as
/// `numeric_100_full_window`, and on one thread as `one_thread_numeric_100_full_window`
/// (`single` an engine like `full`'s with one report thread).
fn bench_report<M: Measurement>(
    c: &mut Criterion<M>,
    group_name: &str,
    full: &FullEngine,
    single: &FullEngine,
) {
    let mut group = c.benchmark_group(group_name);
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(8));
    for (name, full) in [
        ("numeric_100_full_window", full),
        ("one_thread_numeric_100_full_window", single),
    ] {
        let _guard = full.rt.enter();
        let engine = &full.engine;
        group.bench_function(name, |b| b.iter(|| black_box(engine.report(MODEL))));
    }
    group.finish();
}

/// `refresh()` and one feature's pieces: its window's view (merge, select, sort) and the
/// two statistics that walk the 5000-value samples.
fn bench_parts(c: &mut Criterion, full: &FullEngine, scale: &Scale) {
    let _guard = full.rt.enter();
    let engine = &full.engine;
    let mut group = c.benchmark_group("report");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("refresh_numeric_100_full_window", |b| {
        b.iter(|| black_box(engine.refresh()))
    });
    group.finish();

    let Some((_, first)) = full.snapshot.features.iter().next() else {
        panic!("no feature in the benchmark baseline");
    };
    let edges = first
        .bins
        .as_ref()
        .map(|b| b.edges.clone())
        .unwrap_or_default();
    let mut window = FeatureWindow::new(
        Layout::Numeric { edges },
        Config::default().drift.window,
        mlmon::stats::sketch::DEFAULT_COMPRESSION,
    );
    let values: Vec<FeatureValue> = full
        .batch
        .rows
        .iter()
        .map(|r| r.values[0].1.clone())
        .collect();
    for _ in 0..11 {
        fill_bucket(&mut window, &values, scale);
        full.rt.block_on(tokio::time::advance(BUCKET));
    }
    fill_bucket(&mut window, &values, scale);
    let now = tokio::time::Instant::now();
    let view = window.view(now);
    // A 5000-value sorted sample of the window (its quantiles) for the exact functions.
    let sample: Vec<f64> = (0..5000)
        .filter_map(|i| view.sketch.quantile((f64::from(i) + 0.5) / 5000.0))
        .collect();
    let reference = mlmon::stats::sorted_finite(&first.sample);
    let reference_sketch = mlmon::stats::QuantileSketch::from_values(
        mlmon::stats::sketch::DEFAULT_COMPRESSION,
        &first.sample,
    );

    let mut group = c.benchmark_group("parts");
    group.bench_function("window_view_one_feature", |b| {
        b.iter(|| black_box(window.view(now)))
    });
    group.bench_function("sketch_compare_one_feature", |b| {
        b.iter(|| {
            black_box(mlmon::stats::compare_sketches(
                &view.sketch,
                &reference_sketch,
            ))
        })
    });
    group.bench_function("ks_2samp_sorted_one_feature", |b| {
        b.iter(|| black_box(mlmon::stats::ks_2samp_sorted(&sample, &reference)))
    });
    group.bench_function("ks_statistic_sorted_one_feature", |b| {
        b.iter(|| black_box(mlmon::stats::ks_statistic_sorted(&sample, &reference)))
    });
    group.bench_function("wasserstein_sorted_one_feature", |b| {
        b.iter(|| black_box(mlmon::stats::wasserstein_sorted(&sample, &reference)))
    });
    group.finish();
}

/// CPU time by one of `cpu_time`'s clocks, so that time spent waiting for a CPU on a busy
/// machine is not counted (criterion measures wall time by default):
/// [`CpuTime::THREAD`], the calling thread's; [`CpuTime::PROCESS`], every thread's, what a
/// report costs on all the threads it uses (its own and the helper that computes half the
/// features). Nothing else runs in this process while a benchmark is measured (the tokio
/// runtime is a paused current-thread one), so the process clock counts the report alone.
struct CpuTime(fn() -> u64);

impl CpuTime {
    const THREAD: CpuTime = CpuTime(thread_cpu_ns);
    const PROCESS: CpuTime = CpuTime(process_cpu_ns);
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        (self.0)()
    }
    fn end(&self, start: u64) -> u64 {
        (self.0)().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NanosFormatter
    }
}

/// Formats nanoseconds (of CPU time) and element throughputs.
struct NanosFormatter;

impl ValueFormatter for NanosFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = match typical {
            t if t < 1e3 => (1.0, "ns (CPU)"),
            t if t < 1e6 => (1e3, "µs (CPU)"),
            t if t < 1e9 => (1e6, "ms (CPU)"),
            _ => (1e9, "s (CPU)"),
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(
        &self,
        typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
            _ => 1.0,
        };
        let rate = per * 1e9 / typical;
        let (div, unit) = match rate {
            r if r < 1e3 => (1.0, "elem/CPU-s"),
            r if r < 1e6 => (1e3, "Kelem/CPU-s"),
            r if r < 1e9 => (1e6, "Melem/CPU-s"),
            _ => (1e9, "Gelem/CPU-s"),
        };
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v / div);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let profiling = args.iter().any(|a| a == "--profile-time");
    let scale = Scale::new(bench);

    if !profiling {
        let figures = serde_json::json!({
            "memory": memory_figures(&scale),
            "allocations_per_batch": {
                "numeric_20": allocations_per_batch(&scale, 20, 0, false),
                "mixed_15n_5c": allocations_per_batch(&scale, 15, 5, false),
                "numeric_20_rotating": allocations_per_batch(&scale, 20, 0, true),
            },
            "batch_rows": BATCH_ROWS,
        });
        println!("MLMON_DRIFT_BENCH {figures}");
    }

    let mut wall = Criterion::default().configure_from_args();
    let mut cpu = Criterion::default()
        .with_measurement(CpuTime::THREAD)
        .configure_from_args();
    bench_ingest(&mut wall, "ingest", &scale);
    bench_ingest(&mut cpu, "ingest_cpu", &scale);
    let mut process_cpu = Criterion::default()
        .with_measurement(CpuTime::PROCESS)
        .configure_from_args();
    let full = full_engine(&scale, 2);
    let single = full_engine(&scale, 1);
    bench_report(&mut wall, "report", &full, &single);
    // CPU of all the report's threads, not only the calling one's.
    bench_report(&mut process_cpu, "report_cpu", &full, &single);
    bench_parts(&mut wall, &full, &scale);
    wall.final_summary();
}
