//! End to end: a baseline built with the `mlmon baseline build` CLI from a CSV, live
//! traffic through the proxy to a real upstream, drift read back from `/metrics` and the
//! API; the baseline replaced through the API; a captured baseline.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use crate::common::{
    analysed, config, eventually, records_model as model, scrape, upstream, value,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{json, Value};

fn rows(rng: &mut StdRng, n: usize, shift: f64) -> Vec<Value> {
    let normal = Normal::new(shift, 1.0).unwrap();
    let colours = ["red", "green", "blue"];
    (0..n)
        .map(|_| {
            let c = if shift > 0.0 {
                "blue"
            } else {
                colours[rng.random_range(0..3)]
            };
            json!({ "x": normal.sample(rng), "y": rng.random::<f64>() * 10.0, "colour": c })
        })
        .collect()
}

fn build_baseline(dir: &std::path::Path) -> std::path::PathBuf {
    let mut rng = StdRng::seed_from_u64(11);
    let csv = dir.join("train.csv");
    let mut f = std::fs::File::create(&csv).unwrap();
    writeln!(f, "x,y,colour,label").unwrap();
    for r in rows(&mut rng, 3000, 0.0) {
        let x = r["x"].as_f64().unwrap();
        writeln!(
            f,
            "{x},{},{},{}",
            r["y"],
            r["colour"].as_str().unwrap(),
            i64::from(x > 0.0)
        )
        .unwrap();
    }
    drop(f);
    let out = dir.join("baseline.json");
    let status = Command::new(env!("CARGO_BIN_EXE_mlmon"))
        .args([
            "baseline",
            "build",
            "--model",
            "toy",
            "--prediction",
            "label",
            "--input",
        ])
        .arg(&csv)
        .arg("--output")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out
}

async fn send(proxy: std::net::SocketAddr, batch: Vec<Value>) {
    let r = reqwest::Client::new()
        .post(format!("http://{proxy}/predict"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn drift_api(admin: std::net::SocketAddr, model: &str) -> Value {
    reqwest::get(format!("http://{admin}/api/v1/models/{model}/drift"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn feature<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == name)
        .unwrap_or_else(|| panic!("no feature {name} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_from_a_cli_built_baseline_shows_in_metrics_and_api() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = build_baseline(dir.path());
    let up = upstream(model).await;
    let mut cfg = config(up);
    cfg.model.name = "toy".into();
    cfg.baseline.files = vec![baseline];
    cfg.drift.interval = Duration::from_millis(100);
    cfg.drift.fleet_bins = mlmon::config::FleetBins::Full;
    let running = mlmon::server::start(cfg).await.unwrap();

    // Before traffic: baseline ratios exported, counters at zero, no drift values.
    let m = scrape(running.admin_addr).await;
    let ratio_sum: f64 = m
        .iter()
        .filter(|s| s.name == "mlmon_baseline_bin_ratio" && s.labels["feature"] == "x")
        .map(|s| s.value)
        .sum();
    assert!(
        (ratio_sum - 1.0).abs() < 1e-9,
        "baseline ratios sum to {ratio_sum}"
    );
    assert_eq!(
        value(
            &m,
            "mlmon_feature_bin_observations_total",
            &[("feature", "x"), ("bin", "0")]
        ),
        Some(0.0)
    );
    assert!(
        value(&m, "mlmon_feature_psi", &[("feature", "x")]).is_none(),
        "empty window: no value"
    );

    // Traffic like the training data.
    let mut rng = StdRng::seed_from_u64(99);
    for _ in 0..20 {
        send(running.proxy_addr, rows(&mut rng, 50, 0.0)).await;
    }
    analysed(&running, 20).await;
    let r = drift_api(running.admin_addr, "toy").await;
    let x = feature(&r, "x");
    assert_eq!(x["window"]["count"], 1000);
    assert!(x["psi"].as_f64().unwrap() < 0.1, "no drift yet: {x}");
    assert_eq!(x["status"], "ok");
    let out = r["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "output")
        .expect("output drift");
    assert_eq!(out["window"]["count"], 1000, "one prediction per row");

    // The inputs shift: x by +2 sigma, every colour becomes blue.
    for _ in 0..40 {
        send(running.proxy_addr, rows(&mut rng, 50, 2.0)).await;
    }
    analysed(&running, 60).await;
    let r = drift_api(running.admin_addr, "toy").await;
    let x = feature(&r, "x");
    assert_eq!(x["window"]["count"], 3000);
    assert!(x["psi"].as_f64().unwrap() > 0.2, "{x}");
    assert_eq!(x["status"], "critical");
    assert!(x["ks_pvalue"].as_f64().unwrap() < 1e-6);
    assert!(x["wasserstein"].as_f64().unwrap() > 0.8);
    let colour = feature(&r, "colour");
    assert_eq!(colour["type"], "categorical");
    assert!(colour["chi2_pvalue"].as_f64().unwrap() < 1e-6);
    assert_eq!(colour["status"], "critical");
    let y = feature(&r, "y");
    assert_eq!(y["status"], "ok", "y did not move: {y}");

    // The sketches behind KS and Wasserstein, as a fleet view would fetch and merge them:
    // they parse back, hold every window value, and give the reported statistics.
    let s: Value = reqwest::get(format!(
        "http://{}/api/v1/models/toy/sketch",
        running.admin_addr
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let sx = s["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "x")
        .unwrap();
    let window: mlmon::stats::QuantileSketch =
        serde_json::from_value(sx["window"].clone()).unwrap();
    let base: mlmon::stats::QuantileSketch =
        serde_json::from_value(sx["baseline"].clone()).unwrap();
    assert_eq!(window.count(), 3000);
    let c = mlmon::stats::compare_sketches(&window, &base).unwrap();
    assert!((c.ks_statistic - x["ks_statistic"].as_f64().unwrap()).abs() < 1e-12);
    assert!((c.wasserstein - x["wasserstein"].as_f64().unwrap()).abs() < 1e-12);
    let mut merged = window.clone();
    merged.merge(&window);
    assert_eq!(merged.count(), 6000, "replica sketches merge");
    assert!(
        s["features"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["feature"] != "colour"),
        "numeric features only"
    );
    let score = r["drift_score"].as_f64().unwrap();
    assert!(
        (score - 2.0 / 3.0).abs() < 1e-9,
        "2 of 3 inputs drifted: {score}"
    );

    // The gauges follow at the next periodic refresh (`drift.interval`).
    let m = eventually(
        "x critical in /metrics with all 3000 values counted",
        || async {
            let m = scrape(running.admin_addr).await;
            let observed: f64 = m
                .iter()
                .filter(|s| {
                    s.name == "mlmon_feature_bin_observations_total" && s.labels["feature"] == "x"
                })
                .map(|s| s.value)
                .sum();
            let status = value(
                &m,
                "mlmon_feature_drift_status",
                &[("model", "toy"), ("feature", "x"), ("kind", "input")],
            );
            let score = value(&m, "mlmon_model_drift_score", &[("model", "toy")]);
            // A scrape can land in the middle of a refresh (new counters, previous gauges):
            // wait for the refresh that exported the full window's PSI too.
            let psi = value(
                &m,
                "mlmon_feature_psi",
                &[("model", "toy"), ("feature", "x"), ("kind", "input")],
            );
            let api_psi = x["psi"].as_f64().unwrap_or(f64::NAN);
            let psi_follows = psi.is_some_and(|p| (p - api_psi).abs() < 0.05);
            if observed == 3000.0
                && status == Some(2.0)
                && score.is_some_and(|s| s > 0.6)
                && psi_follows
            {
                Ok(m)
            } else {
                Err(format!(
                    "{observed} values, status {status:?}, score {score:?}, psi {psi:?} (api {api_psi})"
                ))
            }
        },
    )
    .await;
    let psi = value(
        &m,
        "mlmon_feature_psi",
        &[("model", "toy"), ("feature", "x"), ("kind", "input")],
    )
    .unwrap();
    assert!(
        (psi - x["psi"].as_f64().unwrap()).abs() < 0.05,
        "metrics {psi} vs api {}",
        x["psi"]
    );
    assert_eq!(
        value(
            &m,
            "mlmon_feature_drift_status",
            &[("model", "toy"), ("feature", "x"), ("kind", "input")]
        ),
        Some(2.0)
    );
    assert!(value(&m, "mlmon_model_drift_score", &[("model", "toy")]).unwrap() > 0.6);
    let observed: f64 = m
        .iter()
        .filter(|s| s.name == "mlmon_feature_bin_observations_total" && s.labels["feature"] == "x")
        .map(|s| s.value)
        .sum();
    assert_eq!(observed, 3000.0, "every value counted in one bin");
    assert_eq!(
        value(&m, "mlmon_predictions_total", &[("model", "toy")]),
        Some(3000.0)
    );
    assert!(m
        .iter()
        .any(|s| s.name == "mlmon_baseline_info" && s.labels["model"] == "toy"));

    // Replacing the baseline through the API resets the windows.
    let snapshot = std::fs::read(dir.path().join("baseline.json")).unwrap();
    let c = reqwest::Client::new();
    let bad = c
        .put(format!(
            "http://{}/api/v1/models/toy/baseline",
            running.admin_addr
        ))
        .body(r#"{"format_version": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let err: Value = bad.json().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("request body"),
        "{err}"
    );
    let ok = c
        .put(format!(
            "http://{}/api/v1/models/toy/baseline",
            running.admin_addr
        ))
        .body(snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let r = drift_api(running.admin_addr, "toy").await;
    assert_eq!(feature(&r, "x")["window"]["count"], 0);
    assert!(
        feature(&r, "x")["psi"].is_null(),
        "empty window reports no value"
    );

    let missing = reqwest::get(format!(
        "http://{}/api/v1/models/nope/drift",
        running.admin_addr
    ))
    .await
    .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn baseline_api_requires_the_token_when_configured() {
    let up = upstream(model).await;
    let mut cfg = config(up);
    cfg.admin.token = Some("s3cret".into());
    let running = mlmon::server::start(cfg).await.unwrap();
    let url = format!("http://{}/api/v1/models/toy/baseline", running.admin_addr);
    let r = reqwest::Client::new()
        .put(&url)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string());
    let r = reqwest::Client::new()
        .put(&url)
        .bearer_auth("s3cret")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422, "authorised, but not a snapshot");
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_captured_from_the_first_live_rows() {
    let up = upstream(model).await;
    let mut cfg = config(up);
    cfg.model.name = "toy".into();
    cfg.baseline.capture_rows = 500;
    cfg.drift.interval = Duration::from_millis(100);
    let running = mlmon::server::start(cfg).await.unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..10 {
        send(running.proxy_addr, rows(&mut rng, 50, 0.0)).await;
    }
    analysed(&running, 10).await;
    // 500 rows captured: the baseline exists; later traffic is measured against it.
    for _ in 0..10 {
        send(running.proxy_addr, rows(&mut rng, 50, 3.0)).await;
    }
    analysed(&running, 20).await;
    let r = drift_api(running.admin_addr, "toy").await;
    let x = feature(&r, "x");
    assert_eq!(x["window"]["count"], 500);
    assert_eq!(x["status"], "critical", "{x}");
    running.shutdown();
    running.wait().await;
}

#[test]
fn offline_drift_gates_a_pipeline_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = build_baseline(dir.path());
    let write = |name: &str, shift: f64| {
        let mut rng = StdRng::seed_from_u64(3);
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "x,y,colour,prediction").unwrap();
        for r in rows(&mut rng, 2000, shift) {
            let x = r["x"].as_f64().unwrap();
            writeln!(
                f,
                "{x},{},{},{}",
                r["y"],
                r["colour"].as_str().unwrap(),
                i64::from(x > 0.0)
            )
            .unwrap();
        }
        path
    };
    let same = write("same.csv", 0.0);
    let shifted = write("shifted.csv", 2.0);
    let run = |input: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_mlmon"))
            .args(["drift", "--output", "json", "--baseline"])
            .arg(&baseline)
            .arg("--input")
            .arg(input)
            .output()
            .unwrap()
    };
    let ok = run(&same);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let shifted_out = run(&shifted);
    assert_eq!(shifted_out.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&shifted_out.stdout).unwrap();
    assert_eq!(feature(&report, "x")["status"], "critical");
    assert_eq!(feature(&report, "prediction")["kind"], "output");
    let missing = Command::new(env!("CARGO_BIN_EXE_mlmon"))
        .args(["drift", "--baseline", "/nonexistent.json", "--input"])
        .arg(&same)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(3));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nonexistent.json"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
