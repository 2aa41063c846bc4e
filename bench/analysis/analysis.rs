//! End-to-end analysis throughput: captured bytes → payload adapter → rows → every
//! analysis (drift, quality, anomaly, performance, explain), as the analysis thread runs it.
//!
//! ```text
//! cargo run --release --example analysis_throughput -- [--rows 8] [--features 10]
//!     [--shape columns|matrix] [--seconds 3] [--large 100000] [--exchanges N]
//! ```
//!
//! Builds the application as `mlmon serve` does (`app::build`, default configuration),
//! installs a live-built baseline of `--features` numeric features plus a classifier's
//! prediction and probabilities, then feeds the worker captured OIP v2 exchanges of
//! `--rows` rows (`--shape columns`: one `[rows]` FP64 input per feature, as MLServer's
//! pandas codec sends them; `matrix`: one `[rows, features]` FP64 tensor) whose responses
//! carry `predict` `[rows]` and `predict_proba` `[rows, 2]`. Prints exchanges, rows and
//! feature values per second of the one analysis thread. With `--large N` it also times
//! single bodies of N rows (median of 5). With `--exchanges N` it processes exactly N
//! exchanges (for `valgrind --tool=callgrind`, which counts instructions repeatably).
//! With `--pending N` it only measures the feedback store's bytes per pending prediction.
//! Like the analysis thread, it yields the CPU every `background::SLICE` of work;
//! `--no-pauses` measures without those pauses.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[path = "../cpu_time.rs"]
mod cpu_time;
use cpu_time::thread_cpu_ns;

use bytes::Bytes;
use mlmon::baseline::{BaselineBuilder, BuildOptions};
use mlmon::config::Config;
use mlmon::ingest::Record;
use mlmon::record::{CapturedExchange, FeatureValue, Prediction, Row};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// The binary's allocator (src/main.rs), so the figures are the sidecar's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MODEL: &str = "bench";

struct Args {
    rows: usize,
    features: usize,
    matrix: bool,
    seconds: f64,
    large: usize,
    exchanges: Option<u64>,
    pending: usize,
    pauses: bool,
}

fn args() -> Args {
    let mut a = Args {
        rows: 8,
        features: 10,
        matrix: false,
        seconds: 3.0,
        large: 0,
        exchanges: None,
        pending: 0,
        pauses: true,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--rows" => a.rows = value.parse().expect("--rows N"),
            "--features" => a.features = value.parse().expect("--features N"),
            "--shape" => a.matrix = value == "matrix",
            "--seconds" => a.seconds = value.parse().expect("--seconds S"),
            "--large" => a.large = value.parse().expect("--large N"),
            "--exchanges" => a.exchanges = Some(value.parse().expect("--exchanges N")),
            "--pending" => a.pending = value.parse().expect("--pending N"),
            "--no-pauses" => {
                a.pauses = false;
                i += 1;
                continue;
            }
            "--bench" => {
                i += 1;
                continue;
            }
            "--help" | "-h" => {
                println!(
                    "usage: analysis_throughput [--rows 8] [--features 10] [--shape columns|matrix] \
                     [--seconds 3] [--large N] [--exchanges N] [--pending N] [--no-pauses]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other} (--help lists them)"),
        }
        i += 2;
    }
    a
}

fn feature(j: usize) -> String {
    format!("feature_{j:02}")
}

/// One row of correlated normal features (feature j centred on 10 j).
fn values(rng: &mut StdRng, p: usize) -> Vec<f64> {
    let common: f64 = rng.sample(StandardNormal);
    (0..p)
        .map(|j| {
            let e: f64 = rng.sample(StandardNormal);
            10.0 * j as f64 + 0.6 * common + 0.8 * e
        })
        .collect()
}

fn score(v: &[f64]) -> f64 {
    let s: f64 = v.iter().enumerate().map(|(j, x)| x - 10.0 * j as f64).sum();
    1.0 / (1.0 + (-s / (v.len() as f64).sqrt()).exp())
}

fn baseline(p: usize) -> mlmon::baseline::Snapshot {
    let mut rng = StdRng::seed_from_u64(1);
    let mut b = BaselineBuilder::new(BuildOptions::new(MODEL), 20_000);
    for _ in 0..20_000 {
        let v = values(&mut rng, p);
        let s = score(&v);
        b.push_row(&Row {
            values: v
                .iter()
                .enumerate()
                .map(|(j, x)| (feature(j), FeatureValue::Number(*x)))
                .collect(),
        });
        b.push_prediction(&Prediction {
            value: FeatureValue::Number(if s > 0.5 { 1.0 } else { 0.0 }),
            probabilities: Some(vec![1.0 - s, s]),
        });
    }
    b.finish().expect("baseline")
}

fn num(x: f64) -> String {
    format!("{x:.6}")
}

/// An OIP v2 request and response of `n` rows.
fn bodies(rng: &mut StdRng, n: usize, p: usize, matrix: bool) -> (Bytes, Bytes) {
    let rows: Vec<Vec<f64>> = (0..n).map(|_| values(rng, p)).collect();
    let inputs = if matrix {
        let data: Vec<String> = rows.iter().flatten().map(|x| num(*x)).collect();
        format!(
            r#"{{"name":"input-0","shape":[{n},{p}],"datatype":"FP64","data":[{}]}}"#,
            data.join(",")
        )
    } else {
        (0..p)
            .map(|j| {
                let data: Vec<String> = rows.iter().map(|r| num(r[j])).collect();
                format!(
                    r#"{{"name":"{}","shape":[{n}],"datatype":"FP64","data":[{}]}}"#,
                    feature(j),
                    data.join(",")
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let params = if matrix {
        ""
    } else {
        r#""parameters":{"content_type":"pd"},"#
    };
    let request = format!(r#"{{"id":"bench",{params}"inputs":[{inputs}]}}"#);
    let scores: Vec<f64> = rows.iter().map(|r| score(r)).collect();
    let labels: Vec<String> = scores
        .iter()
        .map(|s| if *s > 0.5 { "1" } else { "0" }.to_string())
        .collect();
    let proba: Vec<String> = scores
        .iter()
        .flat_map(|s| [num(1.0 - s), num(*s)])
        .collect();
    let response = format!(
        r#"{{"model_name":"{MODEL}","id":"bench","outputs":[{{"name":"predict","shape":[{n}],"datatype":"INT64","data":[{}]}},{{"name":"predict_proba","shape":[{n},2],"datatype":"FP64","data":[{}]}}]}}"#,
        labels.join(","),
        proba.join(",")
    );
    (Bytes::from(request), Bytes::from(response))
}

fn captured(request: &Bytes, response: &Bytes, i: u64) -> CapturedExchange {
    CapturedExchange {
        model: MODEL.into(),
        version: None,
        request_id: format!("req-{i}"),
        method: http::Method::POST,
        path: format!("/v2/models/{MODEL}/infer"),
        status: Some(200),
        received_at: SystemTime::now(),
        duration: Duration::from_millis(2),
        upstream_duration: Some(Duration::from_millis(1)),
        request_body: Some(request.clone()),
        response_body: Some(response.clone()),
        response_content_type: Some("application/json".into()),
        request_content_encoding: None,
        response_content_encoding: None,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes per prediction waiting for ground truth: RSS growth of a feedback store holding
/// `n` single-row requests (a 36-character request id, a class label and two class
/// scores, as the proxy's predictions carry them).
fn pending_cost(n: usize) {
    let mut store = mlmon::feedback::FeedbackStore::new(Duration::from_secs(3600), n);
    let now = tokio::time::Instant::now();
    let ids: Vec<String> = (0..n)
        .map(|i| format!("{:08x}-0000-4000-8000-{:012x}", i, i))
        .collect();
    let before = rss_kib();
    for id in &ids {
        store.insert_scored(
            id,
            vec![(FeatureValue::Number(1.0), Some(vec![0.3, 0.7]))],
            now,
        );
    }
    let after = rss_kib();
    println!(
        "feedback store: {n} pending predictions: {} KiB, {:.0} bytes per pending prediction (RSS growth)",
        after.saturating_sub(before),
        (after.saturating_sub(before) * 1024) as f64 / n as f64
    );
    drop(store);
}

fn main() {
    let a = args();
    if a.pending > 0 {
        pending_cost(a.pending);
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    if a.pauses {
        mlmon::background::enable();
    }
    let mut cfg = Config::default();
    cfg.model.name = MODEL.into();
    let built = mlmon::app::build(Arc::new(cfg), Vec::new()).expect("build");
    let state = built.state;
    state
        .baselines
        .set(MODEL, Arc::new(baseline(a.features)))
        .expect("baseline");
    let worker = state.worker.clone();

    let mut rng = StdRng::seed_from_u64(7);
    let variants: Vec<(Bytes, Bytes)> = (0..64)
        .map(|_| bodies(&mut rng, a.rows, a.features, a.matrix))
        .collect();
    let values_per_exchange = (a.rows * a.features) as f64;
    println!(
        "workload: OIP v2 {} rows x {} FP64 features ({}), predict + predict_proba; request {} B, response {} B",
        a.rows,
        a.features,
        if a.matrix { "one [N, F] tensor" } else { "one input per feature" },
        variants[0].0.len(),
        variants[0].1.len()
    );

    // Warm-up: the analyses build their per-model state from the baseline.
    for i in 0..200u64 {
        let (q, r) = &variants[i as usize % variants.len()];
        worker.process(Record::Captured(Box::new(captured(q, r, i))));
    }

    let mut done = 0u64;
    let start = Instant::now();
    let cpu_start = thread_cpu_ns();
    let mut busy = Duration::ZERO;
    loop {
        let (q, r) = &variants[done as usize % variants.len()];
        let record = Record::Captured(Box::new(captured(q, r, 1_000 + done)));
        let t = Instant::now();
        worker.process(record);
        busy += t.elapsed();
        done += 1;
        match a.exchanges {
            Some(n) if done >= n => break,
            Some(_) => {}
            None if done.is_multiple_of(256) && start.elapsed().as_secs_f64() >= a.seconds => break,
            None => {}
        }
    }
    let secs = busy.as_secs_f64();
    let cpu = thread_cpu_ns().saturating_sub(cpu_start) as f64 / 1e9;
    println!(
        "analysis CPU: {cpu:.3} s of thread CPU time: {:.2} M feature values per CPU-second, {:.2} us CPU/exchange",
        done as f64 * values_per_exchange / cpu / 1e6,
        cpu / done as f64 * 1e6
    );
    println!(
        "analysis: {done} exchanges in {secs:.3} s: {:.0} exchanges/s, {:.0} rows/s, {:.2} M feature values/s, {:.2} us/exchange",
        done as f64 / secs,
        done as f64 * a.rows as f64 / secs,
        done as f64 * values_per_exchange / secs / 1e6,
        secs / done as f64 * 1e6
    );
    let t = Instant::now();
    state.analyses.refresh(&state.baselines);
    println!(
        "refresh after the run: {:.1} ms; RSS {} KiB",
        t.elapsed().as_secs_f64() * 1e3,
        rss_kib()
    );

    if a.large > 0 {
        let (q, r) = bodies(&mut rng, a.large, a.features, a.matrix);
        let mut times = Vec::new();
        for i in 0..5u64 {
            let t = Instant::now();
            worker.process(Record::Captured(Box::new(captured(&q, &r, 10_000_000 + i))));
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        println!(
            "large body: {} rows x {} features ({} KB request): {:.1} ms median of 5 (min {:.1} ms)",
            a.large,
            a.features,
            q.len() / 1000,
            times[2] * 1e3,
            times[0] * 1e3
        );
    }
}
