//! Analysis state memory, drift report and scrape cost at full windows (issue 13).
//!
//! Measured once, before the timings, with a counting global allocator (live heap bytes)
//! and printed as one `MLMON_STATE_BENCH {json}` line on stdout:
//!
//! - `drift_numeric_bytes_per_feature` / `drift_categorical_bytes_per_feature`: the drift
//!   engine's state (windows, counts, labels) per feature of a 100-feature model whose 11
//!   time buckets (the 15-minute window and the bucket in progress) each received
//!   `rows_per_bucket` rows, every value distinct (numeric sketches saturated); the shared
//!   baseline snapshot is counted apart (`baseline_bytes_per_feature`).
//! - `sidecar`: the whole analysis side built by `app::build` (drift, quality, anomalies,
//!   performance, explain, metrics) with 32 models × 100 numeric features, every window
//!   full the same way: live heap, resident set size, and the same per feature.
//! - `scrape_ms`: `/metrics` encoded for that sidecar (Prometheus text and OpenMetrics),
//!   median and worst of 20, idle and while another thread keeps feeding the analyses;
//!   `scrape_text_cpu_ms` (thread CPU, median) with the drift families copied from the text
//!   the last refresh encoded, `scrape_text_cpu_ms_drift_encoded_at_scrape` with them encoded
//!   by the scrape (as before issue 13's cache).
//!
//! - `file_baseline`: a baseline as `bench/run.py --only d` loads 32 of (100 numeric
//!   columns of 2 000 rows, a prediction, the joint sample) read from its JSON and installed
//!   (slimmed): live heap read and installed, the largest live heap while reading, the joint
//!   sample's and the reference's bytes.
//!
//! Then criterion times `report/numeric_100_full_window` (one model's drift report),
//! `refresh/sidecar_32x100` (every analysis' refresh) and `scrape/{text,openmetrics}_32x100`.
//!
//! `cargo bench --bench state` (release). Without `--bench` (`cargo test --all-targets`)
//! everything runs once at a small scale, as a smoke test.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant, SystemTime};

#[path = "cpu_time.rs"]
mod cpu_time;
use cpu_time::thread_cpu_ns;

use criterion::Criterion;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use mlmon::analysis::Exchange;
use mlmon::baseline::{BaselineBuilder, BuildOptions, NamedMap, Registry, Snapshot};
use mlmon::config::Config;
use mlmon::drift::DriftEngine;
use mlmon::metrics::drift::DriftMetrics;
use mlmon::record::{FeatureValue, ParsedExchange, Row};

#[path = "counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{CountingAlloc, LIVE_BYTES, PEAK_BYTES};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// One bucket of the default 15-minute window.
const BUCKET: Duration = Duration::from_secs(90);
/// Rows per exchange.
const BATCH_ROWS: usize = 500;
const CATEGORIES: [&str; 8] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
];

#[derive(Debug, Clone, Copy)]
struct Scale {
    models: usize,
    features: usize,
    baseline_rows: usize,
    rows_per_bucket: usize,
    samples: usize,
}

impl Scale {
    /// The bench or smoke scale; `MLMON_STATE_BENCH_{MODELS,FEATURES,ROWS,BASELINE_ROWS}`
    /// override the models, features per model, rows per bucket and baseline rows (e.g. memory figures from a debug
    /// build at full scale but fewer rows).
    fn new(bench: bool) -> Scale {
        let mut s = Scale::preset(bench);
        let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
        if let Some(m) = var("MLMON_STATE_BENCH_MODELS") {
            s.models = m.max(1);
        }
        if let Some(f) = var("MLMON_STATE_BENCH_FEATURES") {
            s.features = f.max(1);
        }
        if let Some(r) = var("MLMON_STATE_BENCH_ROWS") {
            s.rows_per_bucket = r.max(1);
        }
        if let Some(r) = var("MLMON_STATE_BENCH_BASELINE_ROWS") {
            s.baseline_rows = r.max(1);
        }
        s
    }

    fn preset(bench: bool) -> Scale {
        if bench {
            Scale {
                models: 32,
                features: 100,
                baseline_rows: 20_000,
                rows_per_bucket: 2_000,
                samples: 20,
            }
        } else {
            Scale {
                models: 2,
                features: 10,
                baseline_rows: 500,
                rows_per_bucket: 500,
                samples: 2,
            }
        }
    }
}

fn live() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn name(i: usize) -> String {
    format!("num_{i:03}")
}

fn numeric_row(rng: &mut SmallRng, features: usize) -> Row {
    Row {
        values: (0..features)
            .map(|i| {
                let z: f64 = StandardNormal.sample(rng);
                (name(i), FeatureValue::Number(i as f64 / 10.0 + z))
            })
            .collect(),
    }
}

fn categorical_row(rng: &mut SmallRng, features: usize) -> Row {
    Row {
        values: (0..features)
            .map(|i| {
                let u: f64 = rng.random();
                let c = CATEGORIES[((u * u) * CATEGORIES.len() as f64) as usize];
                (format!("cat_{i:03}"), FeatureValue::Text(c.to_string()))
            })
            .collect(),
    }
}

/// A baseline of `features` columns built from one column (then replicated, as a snapshot
/// loaded from a file holds one copy per feature).
fn snapshot(model: &str, scale: &Scale, categorical: bool) -> Snapshot {
    let mut b = BaselineBuilder::new(BuildOptions::new(model), scale.baseline_rows);
    let mut rng = SmallRng::seed_from_u64(1);
    for _ in 0..scale.baseline_rows {
        let row = if categorical {
            categorical_row(&mut rng, 1)
        } else {
            numeric_row(&mut rng, 1)
        };
        b.push_row(&row);
    }
    let one = match b.finish() {
        Ok(s) => s,
        Err(e) => panic!("baseline: {e}"),
    };
    let mut snap = one.clone();
    let Some((_, entry)) = one.features.iter().next() else {
        panic!("no feature in the baseline");
    };
    snap.features = NamedMap(
        (0..scale.features)
            .map(|i| {
                let n = if categorical {
                    format!("cat_{i:03}")
                } else {
                    name(i)
                };
                (n, entry.clone())
            })
            .collect(),
    );
    snap
}

/// The bench's phase d baseline (`bench/run.py --only d`): `features` numeric columns of
/// `rows` rows (four decimals, nearly every value distinct) and a prediction, with its
/// joint sample, as a file would hold it (JSON). Returns the live heap of the snapshot
/// read and installed (slimmed) and the largest live heap while reading it, per model.
fn file_baseline(features: usize, rows: usize) -> serde_json::Value {
    let mut b = BaselineBuilder::new(BuildOptions::new("wide"), rows);
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..rows {
        let row = Row {
            values: (0..features)
                .map(|i| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    let v = ((i % 10) as f64 + z * (1.0 + (i % 10) as f64 / 10.0)) * 1e4;
                    (name(i), FeatureValue::Number(v.round() / 1e4))
                })
                .collect(),
        };
        b.push_row(&row);
        b.push_prediction(&mlmon::record::Prediction {
            value: FeatureValue::Number(f64::from(rng.random_range(0..2_u8))),
            probabilities: None,
        });
    }
    let built = match b.finish() {
        Ok(s) => s,
        Err(e) => panic!("baseline: {e}"),
    };
    let json = match built.to_json() {
        Ok(j) => j,
        Err(e) => panic!("baseline json: {e}"),
    };
    drop(built);
    let before = live();
    PEAK_BYTES.store(before, Ordering::Relaxed);
    let mut snap = match Snapshot::from_json_bytes(json.as_bytes(), "bench") {
        Ok(s) => s,
        Err(e) => panic!("baseline read: {e}"),
    };
    let read = live().saturating_sub(before);
    mlmon::baseline::registry::slim(&mut snap);
    let installed = live().saturating_sub(before);
    let peak = PEAK_BYTES.load(Ordering::Relaxed).saturating_sub(before);
    let joint = snap
        .joint_sample
        .as_ref()
        .map_or(0, |j| j.rows.heap_bytes());
    let reference: usize = snap
        .features
        .iter()
        .map(|(_, f)| f.sample.capacity() * 8 + f.sketch.as_ref().map_or(0, |s| s.memory_bytes()))
        .sum();
    drop(snap);
    serde_json::json!({
        "features": features,
        "rows": rows,
        "file_bytes": json.len(),
        "read_bytes": read,
        "installed_bytes": installed,
        "peak_bytes_while_reading": peak,
        "joint_sample_bytes": joint,
        "reference_bytes_per_feature": reference / features.max(1),
    })
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

fn exchange<'a>(
    model: &'a str,
    parsed: &'a ParsedExchange,
    baseline: Option<&'a Arc<mlmon::baseline::Current>>,
) -> Exchange<'a> {
    Exchange {
        model,
        version: None,
        request_id: "bench",
        received_at: SystemTime::UNIX_EPOCH,
        parsed,
        now: tokio::time::Instant::now(),
        request: None,
        baseline,
    }
}

/// Batches of distinct values (a fresh draw for every row of every bucket would take long:
/// `distinct` batches cycle, each value shifted per bucket so buckets never repeat values).
fn batches(scale: &Scale, categorical: bool, seed: u64) -> Vec<ParsedExchange> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let n = scale.rows_per_bucket.div_ceil(BATCH_ROWS);
    (0..n)
        .map(|_| ParsedExchange {
            rows: (0..BATCH_ROWS)
                .map(|_| {
                    if categorical {
                        categorical_row(&mut rng, scale.features)
                    } else {
                        numeric_row(&mut rng, scale.features)
                    }
                })
                .collect(),
            predictions: Vec::new(),
        })
        .collect()
}

/// Shifts every numeric value of `b` by `by` (so the next bucket holds other values).
fn shift(b: &mut [ParsedExchange], by: f64) {
    for ex in b {
        for row in &mut ex.rows {
            for (_, v) in &mut row.values {
                if let FeatureValue::Number(x) = v {
                    *x += by;
                }
            }
        }
    }
}

/// Feeds 11 buckets of `rows_per_bucket` rows per model through `observe`.
fn fill(
    rt: &tokio::runtime::Runtime,
    models: &[String],
    data: &mut [ParsedExchange],
    registry: &Registry,
    observe: &dyn Fn(&Exchange<'_>),
) {
    for bucket in 0..11 {
        for model in models {
            let current = registry.get(model);
            for b in data.iter() {
                observe(&exchange(model, b, current.as_ref()));
            }
        }
        shift(data, 1e-6 * f64::from(bucket + 1));
        if bucket < 10 {
            rt.block_on(tokio::time::advance(BUCKET));
        }
    }
}

/// Drift engine state per feature, numeric or categorical, and the snapshot per feature.
fn drift_memory(rt: &tokio::runtime::Runtime, scale: &Scale, categorical: bool) -> (f64, f64) {
    let cfg = Arc::new(Config::default());
    let registry = Arc::new(Registry::new(0, 5000));
    let before_snapshot = live();
    let snap = Arc::new(snapshot("m", scale, categorical));
    let snapshot_bytes = live().saturating_sub(before_snapshot);
    let before = live();
    let engine = DriftEngine::new(cfg, Arc::new(DriftMetrics::default()), registry.clone());
    if let Err(e) = engine.set_baseline("m", snap) {
        panic!("set_baseline: {e}");
    }
    let mut data = batches(scale, categorical, 2);
    let data_bytes = live().saturating_sub(before);
    let models = vec!["m".to_string()];
    fill(rt, &models, &mut data, &registry, &|ex| engine.observe(ex));
    let full = live().saturating_sub(before).saturating_sub(data_bytes);
    let f = scale.features as f64;
    // The reference of each feature is part of the snapshot, not of the engine.
    drop(data);
    (full as f64 / f, snapshot_bytes as f64 / f)
}

struct Sidecar {
    state: Arc<mlmon::app::AppState>,
    models: Vec<String>,
    data: Vec<ParsedExchange>,
    heap_bytes: usize,
    baseline_bytes: usize,
    rss_bytes: Option<u64>,
}

fn sidecar(rt: &tokio::runtime::Runtime, scale: &Scale) -> Sidecar {
    let before = live();
    let rss_before = rss();
    let mut cfg = Config::default();
    cfg.model.max_models = scale.models + 1;
    let built = match mlmon::app::build(Arc::new(cfg), Vec::new()) {
        Ok(b) => b,
        Err(e) => panic!("app::build: {e}"),
    };
    let state = built.state.clone();
    let models: Vec<String> = (0..scale.models).map(|m| format!("model_{m:02}")).collect();
    let before_baselines = live();
    for m in &models {
        if let Err(e) = state.baselines.set(m, Arc::new(snapshot(m, scale, false))) {
            panic!("baseline of {m}: {e}");
        }
    }
    let baseline_bytes = live().saturating_sub(before_baselines);
    let data_before = live();
    let mut data = batches(scale, false, 3);
    let data_bytes = live().saturating_sub(data_before);
    let analyses = state.analyses.clone();
    fill(rt, &models, &mut data, &state.baselines, &|ex| {
        analyses.observe(ex)
    });
    state.analyses.refresh(&state.baselines);
    let heap_bytes = live().saturating_sub(before).saturating_sub(data_bytes);
    let rss_bytes = match (rss_before, rss()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    // `built` holds the proxy and the receiver; the state outlives them here.
    std::mem::forget(built);
    Sidecar {
        state,
        models,
        data,
        heap_bytes,
        baseline_bytes,
        rss_bytes,
    }
}

/// Median and worst encode time (ms) of `samples` scrapes.
fn scrape_times(s: &Sidecar, samples: usize, openmetrics: bool) -> (f64, f64, usize) {
    let accept = openmetrics.then_some("application/openmetrics-text; version=1.0.0");
    let mut times = Vec::with_capacity(samples);
    let mut bytes = 0;
    for _ in 0..samples {
        let t = StdInstant::now();
        let (page, _) = s.state.metrics.encode(accept);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        bytes = page.len();
        black_box(page);
    }
    times.sort_unstable_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1], bytes)
}

/// Median CPU milliseconds of `samples` calls of `f` on this thread.
fn cpu_ms(samples: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..samples.max(1))
        .map(|_| {
            let start = thread_cpu_ns();
            f();
            thread_cpu_ns().saturating_sub(start) as f64 / 1e6
        })
        .collect();
    t.sort_unstable_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let scale = Scale::new(bench);
    let rt = paused_runtime();
    let _guard = rt.enter();

    // Phase d's baselines at the bench scale; the smoke run's scale otherwise (e.g.
    // MLMON_STATE_BENCH_FEATURES=100 MLMON_STATE_BENCH_BASELINE_ROWS=2000 for phase d's
    // figures from a debug build).
    let file_baseline = if bench {
        file_baseline(100, 2_000)
    } else {
        file_baseline(scale.features, scale.baseline_rows)
    };
    let (numeric, baseline_numeric) = drift_memory(&rt, &scale, false);
    let (categorical, baseline_categorical) = drift_memory(&rt, &scale, true);
    let s = sidecar(&rt, &scale);
    let features = (scale.models * scale.features) as f64;
    let (text_median, text_worst, text_bytes) = scrape_times(&s, scale.samples, false);
    let (om_median, om_worst, _) = scrape_times(&s, scale.samples, true);
    // Under load: another thread feeds the analyses (as the worker does) during the scrapes.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (stop, analyses, registry) = (
            stop.clone(),
            s.state.analyses.clone(),
            s.state.baselines.clone(),
        );
        let (models, data) = (s.models.clone(), s.data.clone());
        let handle = rt.handle().clone();
        std::thread::spawn(move || {
            let _guard = handle.enter();
            let mut fed = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                for m in &models {
                    let current = registry.get(m);
                    analyses.observe(&exchange(m, &data[0], current.as_ref()));
                    fed += 1;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            }
            fed
        })
    };
    let (load_median, load_worst, _) = scrape_times(&s, scale.samples, false);
    stop.store(true, Ordering::Relaxed);
    let fed = feeder.join().unwrap_or(0);

    let report_cpu = cpu_ms(scale.samples, || {
        black_box(s.state.drift.report(&s.models[0]));
    });
    let scrape_cpu = cpu_ms(scale.samples, || {
        black_box(s.state.metrics.encode(None));
    });
    // The same with the drift families encoded at the scrape (as before they were cached,
    // and as the first scrape after each refresh would without the refresh's `prepare`).
    let scrape_cpu_uncached = cpu_ms(scale.samples, || {
        s.state.metrics.drift.cache.changed();
        black_box(s.state.metrics.encode(None));
    });
    let figures = serde_json::json!({
        "report_cpu_ms_100_features": report_cpu,
        "scrape_text_cpu_ms": scrape_cpu,
        "scrape_text_cpu_ms_drift_encoded_at_scrape": scrape_cpu_uncached,
        "features": scale.features,
        "rows_per_bucket": scale.rows_per_bucket,
        "drift_numeric_bytes_per_feature": numeric,
        "drift_categorical_bytes_per_feature": categorical,
        "baseline_bytes_per_feature": {"numeric": baseline_numeric, "categorical": baseline_categorical},
        "file_baseline": file_baseline,
        "sidecar": {
            "models": scale.models,
            "features_per_model": scale.features,
            "heap_bytes": s.heap_bytes,
            "baseline_bytes": s.baseline_bytes,
            "heap_bytes_per_feature": s.heap_bytes as f64 / features,
            "rss_growth_bytes": s.rss_bytes,
        },
        "scrape_ms": {
            "page_bytes": text_bytes,
            "text_median": text_median, "text_worst": text_worst,
            "openmetrics_median": om_median, "openmetrics_worst": om_worst,
            "text_under_load_median": load_median, "text_under_load_worst": load_worst,
            "exchanges_fed_during_load": fed,
        },
    });
    println!("MLMON_STATE_BENCH {figures}");

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("report");
    group.sample_size(20);
    let model = s.models[0].clone();
    group.bench_function("numeric_100_full_window", |b| {
        b.iter(|| black_box(s.state.drift.report(&model)))
    });
    group.finish();
    let mut group = c.benchmark_group("refresh");
    group.sample_size(10);
    group.bench_function("sidecar_32x100", |b| {
        b.iter(|| s.state.analyses.refresh(&s.state.baselines))
    });
    group.finish();
    let mut group = c.benchmark_group("scrape");
    group.sample_size(20);
    group.bench_function("text_32x100", |b| {
        b.iter(|| black_box(s.state.metrics.encode(None)))
    });
    group.bench_function("openmetrics_32x100", |b| {
        b.iter(|| black_box(s.state.metrics.encode(Some("application/openmetrics-text"))))
    });
    group.finish();
    c.final_summary();
}
