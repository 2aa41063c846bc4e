//! End to end through the proxy: a baseline file, live traffic to a real upstream on
//! 127.0.0.1, then data quality and anomalies read back from `/metrics` and the API.

use std::time::Duration;

use crate::common::{
    analysed, config, eventually, records_model as model, scrape, upstream, value,
};
use mlmon::baseline::{BaselineBuilder, BuildOptions};
use mlmon::record::{FeatureValue, Row};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{json, Value};

/// x ~ N(0, 1); y = 5 + 2·(0.9 x + 0.44 z); colour red/green/blue.
fn draw(rng: &mut StdRng) -> (f64, f64, &'static str) {
    let n = Normal::new(0.0, 1.0).unwrap();
    let x: f64 = n.sample(rng);
    let y = 5.0 + 2.0 * (0.9 * x + 0.4359 * n.sample(rng));
    let c = ["red", "green", "blue"][rng.random_range(0..3)];
    (x, y, c)
}

fn baseline_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut rng = StdRng::seed_from_u64(21);
    let mut b = BaselineBuilder::new(BuildOptions::new("toy"), 3000);
    for _ in 0..3000 {
        let (x, y, c) = draw(&mut rng);
        b.push_row(&Row {
            values: vec![
                ("x".into(), FeatureValue::Number(x)),
                ("y".into(), FeatureValue::Number(y)),
                ("colour".into(), FeatureValue::Text(c.into())),
            ],
        });
    }
    let path = dir.join("toy.json");
    b.finish().unwrap().save(&path).unwrap();
    path
}

async fn send(proxy: std::net::SocketAddr, id: &str, batch: Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{proxy}/predict"))
        .header("x-request-id", id)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn api(admin: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://{admin}{path}")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
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
async fn quality_and_anomalies_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(model).await;
    let mut cfg = config(up);
    cfg.model.name = "toy".into();
    cfg.baseline.files = vec![baseline_file(dir.path())];
    cfg.drift.interval = Duration::from_millis(100);
    let running = mlmon::server::start(cfg).await.unwrap();

    // Before traffic: error counters at zero, no score, no rate.
    let m = scrape(running.admin_addr).await;
    let errors = |m: &[crate::common::Sample], f: &str, r: &str| {
        value(
            m,
            "mlmon_feature_errors_total",
            &[("model", "toy"), ("feature", f), ("reason", r)],
        )
    };
    // Zero-initialised: the reasons normal traffic gives; a type mismatch (a schema
    // error) gets its series at the first one.
    assert_eq!(errors(&m, "x", "missing"), Some(0.0));
    assert_eq!(errors(&m, "x", "out_of_range"), Some(0.0));
    assert_eq!(errors(&m, "x", "type_mismatch"), None);
    assert_eq!(errors(&m, "colour", "unseen_category"), Some(0.0));
    assert_eq!(errors(&m, "colour", "out_of_range"), None);
    assert!(value(&m, "mlmon_data_quality_score", &[("model", "toy")]).is_none());
    assert_eq!(
        value(&m, "mlmon_anomalies_total", &[("model", "toy")]),
        Some(0.0)
    );

    let mut rng = StdRng::seed_from_u64(22);
    for i in 0..10 {
        let batch: Vec<Value> = (0..50)
            .map(|_| {
                let (x, y, c) = draw(&mut rng);
                json!({ "x": x, "y": y, "colour": c })
            })
            .collect();
        send(running.proxy_addr, &format!("clean-{i}"), json!(batch)).await;
    }
    // One batch with known problems: row 3 is 6 sigma out on x; row 5 breaks the x–y
    // correlation (x +2 sigma, y −2 sigma).
    let (_, y0, _) = draw(&mut rng);
    let odd = json!([
        { "x": 0.1, "y": y0, "colour": "red" },
        { "x": "abc", "y": 5.0, "colour": "red" },
        { "x": 0.2, "colour": "green" },
        { "x": 6.0, "y": 5.0, "colour": "blue" },
        { "x": -0.3, "y": 4.5, "colour": "purple" },
        { "x": 2.0, "y": 1.0, "colour": "red" },
    ]);
    send(running.proxy_addr, "odd-1", odd).await;
    analysed(&running, 11).await;

    // Quality API.
    let (status, q) = api(running.admin_addr, "/api/v1/models/toy/quality").await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["rows"], 506);
    let x = feature(&q, "x");
    assert_eq!(x["window"]["type_mismatch"], 1);
    assert_eq!(x["window"]["values"], 506);
    assert_eq!(feature(&q, "y")["window"]["missing"], 1);
    assert_eq!(feature(&q, "colour")["window"]["unseen_category"], 1);
    let score = q["score"].as_f64().unwrap();
    assert!(score > 0.99 && score < 1.0, "{score}");

    // Anomalies API: the 6-sigma row is listed, explained by x, without values.
    let (status, a) = api(running.admin_addr, "/api/v1/models/toy/anomalies").await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["scored_total"], 506);
    assert_eq!(a["values_included"], false);
    let list = a["anomalies"].as_array().unwrap();
    let hit = list
        .iter()
        .find(|r| r["request_id"] == "odd-1" && r["row"] == 3)
        .unwrap_or_else(|| panic!("6-sigma row not listed: {a}"));
    assert!(hit["score"].as_f64().unwrap() >= 4.0);
    assert_eq!(hit["explanation"][0]["feature"], "x");
    assert!(hit["explanation"][0].get("value").is_none());
    assert!(hit["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(a["method"], "multivariate", "{a}");
    assert_eq!(a["joint_features"], json!(["x", "y"]));
    let brk = list
        .iter()
        .find(|r| r["request_id"] == "odd-1" && r["row"] == 5)
        .unwrap_or_else(|| panic!("correlation break not listed: {a}"));
    assert!(brk["reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("multivariate")));
    assert!(brk["univariate"].as_f64().unwrap() < 4.0);
    let total = a["anomalies_total"].as_f64().unwrap();
    assert!(
        (2.0..=7.0).contains(&total),
        "{total} anomalies in 506 rows"
    );

    // The same numbers in /metrics, once the periodic refresh has run.
    let m = eventually("the score and rate of the API in /metrics", || async {
        let m = scrape(running.admin_addr).await;
        let ms = value(&m, "mlmon_data_quality_score", &[("model", "toy")]);
        let rate = value(&m, "mlmon_anomaly_rate", &[("model", "toy")]);
        match (ms, rate) {
            (Some(ms), Some(rate))
                if (ms - score).abs() < 1e-9 && (rate - total / 506.0).abs() < 1e-12 =>
            {
                Ok(m)
            }
            seen => Err(format!("score and rate {seen:?}")),
        }
    })
    .await;
    assert_eq!(errors(&m, "x", "type_mismatch"), Some(1.0));
    assert_eq!(errors(&m, "y", "missing"), Some(1.0));
    assert_eq!(errors(&m, "colour", "unseen_category"), Some(1.0));
    let ms = value(&m, "mlmon_data_quality_score", &[("model", "toy")]).unwrap();
    assert!((ms - score).abs() < 1e-9);
    assert_eq!(
        value(&m, "mlmon_anomalies_total", &[("model", "toy")]),
        Some(total)
    );
    assert_eq!(
        value(&m, "mlmon_anomaly_score_count", &[("model", "toy")]),
        Some(506.0)
    );
    let rate = value(&m, "mlmon_anomaly_rate", &[("model", "toy")]).unwrap();
    assert!((rate - total / 506.0).abs() < 1e-12);
    assert_eq!(
        value(&m, "mlmon_anomaly_trend", &[("model", "toy")]),
        Some(0.0)
    );
    // Window extremes are raw values: not exported while privacy.log_values is off.
    assert!(value(
        &m,
        "mlmon_feature_stat",
        &[("model", "toy"), ("feature", "x"), ("stat", "mean")]
    )
    .is_some());
    assert!(value(
        &m,
        "mlmon_feature_stat",
        &[("model", "toy"), ("feature", "x"), ("stat", "max")]
    )
    .is_none());
    assert!(value(
        &m,
        "mlmon_feature_missing_ratio",
        &[("model", "toy"), ("feature", "y")]
    )
    .is_some());

    // Unknown models are JSON 404s.
    let (status, e) = api(running.admin_addr, "/api/v1/models/nope/anomalies").await;
    assert_eq!(status, 404);
    assert!(e["error"].as_str().unwrap().contains("nope"));
    let (status, _) = api(running.admin_addr, "/api/v1/models/nope/quality").await;
    assert_eq!(status, 404);

    running.shutdown();
    running.wait().await;
}

/// Issue 11, findings 6 and 9: one request with 245 names the baseline does not know once
/// dropped the quality score from 0.9998 to 0.04 and turned health critical until restart;
/// and window min/max (raw values) were exported with `privacy.log_values` off.
#[tokio::test]
async fn unknown_input_names_cannot_poison_quality_and_extremes_stay_private() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(model).await;
    let mut cfg = config(up);
    cfg.model.name = "toy".into();
    cfg.baseline.files = vec![baseline_file(dir.path())];
    cfg.drift.interval = Duration::from_millis(100);
    let running = mlmon::server::start(cfg).await.unwrap();
    let mut rng = StdRng::seed_from_u64(23);
    for i in 0..10 {
        let batch: Vec<Value> = (0..50)
            .map(|_| {
                let (x, y, c) = draw(&mut rng);
                json!({ "x": x, "y": y, "colour": c })
            })
            .collect();
        send(running.proxy_addr, &format!("clean-{i}"), json!(batch)).await;
    }
    let (x, y, c) = draw(&mut rng);
    let mut row = serde_json::Map::new();
    row.insert("x".into(), json!(x));
    row.insert("y".into(), json!(y));
    row.insert("colour".into(), json!(c));
    for i in 0..245 {
        row.insert(format!("extra_{i}"), json!(1.0));
    }
    send(running.proxy_addr, "poison", json!([Value::Object(row)])).await;
    analysed(&running, 11).await;
    let m = eventually("a score after the poisoned request", || async {
        let m = scrape(running.admin_addr).await;
        match value(&m, "mlmon_unknown_features_total", &[("model", "toy")]) {
            Some(245.0) => Ok(m),
            seen => Err(format!("unknown features {seen:?}")),
        }
    })
    .await;
    let (_, q) = api(running.admin_addr, "/api/v1/models/toy/quality").await;
    let score = q["score"].as_f64().unwrap();
    assert!(score > 0.9, "quality score {score} after unknown names");
    assert!(
        q["features"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["feature"].as_str().unwrap().starts_with("extra_")),
        "unknown names reached the quality report"
    );
    // Health: the checks unknown names could move (quality, anomalies, drift) stay out of
    // critical. Latency is left out: on a loaded CI runner a debug build's p95 over 11
    // requests can pass 100 ms, which says nothing about unknown names.
    let (_, models) = api(running.admin_addr, "/api/v1/models").await;
    let toy = &models["models"][0];
    assert_eq!(toy["model"], "toy");
    let checks = toy["checks"].as_array().unwrap();
    let quality_check = checks.iter().find(|c| c["check"] == "data_quality");
    assert!(
        quality_check.is_some_and(|c| c["value"].as_f64().is_some_and(|v| v > 0.9)),
        "data_quality check judged on the score: {checks:?}"
    );
    for check in checks {
        if ["data_quality", "anomaly_rate", "drift"].contains(&check["check"].as_str().unwrap()) {
            assert_ne!(
                check["status"], "critical",
                "health turned critical: {check}"
            );
        }
    }
    // privacy.log_values is off: no window extremes anywhere.
    assert!(feature(&q, "x")["min"].is_null() && feature(&q, "x")["max"].is_null());
    assert!(feature(&q, "x")["mean"].is_number());
    for stat in ["min", "max"] {
        assert_eq!(
            value(
                &m,
                "mlmon_feature_stat",
                &[("model", "toy"), ("feature", "x"), ("stat", stat)]
            ),
            None
        );
    }
    running.shutdown();
    running.wait().await;
}
