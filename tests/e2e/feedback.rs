//! End to end through the sidecar: predictions through the proxy (ids from `x-request-id`)
//! and through `POST /api/v1/predictions/{model}`, ground truth through
//! `POST /api/v1/feedback/{model}`, read back from `/metrics` and the API; the bearer token
//! and JSON errors of the mutating endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{
    analysed, config, eventually, records_model as model, scrape, upstream, value,
};
use serde_json::{json, Value};

const TOKEN: &str = "s3cret";

async fn start() -> mlmon::server::Running {
    let up = upstream(model).await;
    let mut cfg = config(up);
    cfg.model.name = "toy".into();
    cfg.drift.interval = Duration::from_millis(50);
    cfg.admin.token = Some(TOKEN.into());
    mlmon::server::start(cfg).await.unwrap()
}

async fn predict(proxy: SocketAddr, id: &str, xs: &[f64]) -> String {
    let rows: Vec<Value> = xs.iter().map(|x| json!({ "x": x })).collect();
    let r = reqwest::Client::new()
        .post(format!("http://{proxy}/predict"))
        .header("x-request-id", id)
        .json(&rows)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["x-request-id"].to_str().unwrap().to_string()
}

async fn post(admin: SocketAddr, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("http://{admin}{path}"))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn get(admin: SocketAddr, path: &str) -> (u16, Value) {
    // With a token configured, reads need it too (SPEC section 9).
    let r = reqwest::Client::new()
        .get(format!("http://{admin}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Polls the performance report until `n` pairs are in the window.
async fn wait_matched(admin: SocketAddr, model: &str, n: u64) -> Value {
    let path = format!("/api/v1/models/{model}/performance");
    eventually(&format!("{model}: {n} pairs matched"), || async {
        match get(admin, &path).await {
            (200, v) if v["feedback"]["matched_in_window"] == n => Ok(v),
            (status, v) => Err(format!("{status} {v}")),
        }
    })
    .await
}

/// Polls `/metrics` until the gauge `name{model, metric}` reads `expected` (gauges follow
/// at the periodic refresh); returns that scrape.
async fn wait_gauge(
    admin: SocketAddr,
    name: &str,
    model: &str,
    metric: &str,
    expected: f64,
) -> Vec<crate::common::Sample> {
    eventually(
        &format!("{name}{{{model}, {metric}}} = {expected}"),
        || async {
            let m = scrape(admin).await;
            match value(&m, name, &[("model", model), ("metric", metric)]) {
                Some(v) if (v - expected).abs() < 1e-12 => Ok(m),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_predictions_join_ground_truth_by_request_id() {
    let running = start().await;
    let (proxy, admin) = (running.proxy_addr, running.admin_addr);
    // Three requests, one of them a batch of three rows: predictions 1 | 0, 1, 1 | 0.
    assert_eq!(predict(proxy, "req-a", &[0.5]).await, "req-a");
    predict(proxy, "req-b", &[-1.0, 2.0, 3.0]).await;
    predict(proxy, "req-c", &[-0.5]).await;

    // Ground truth: a=1 (right), b row0=1 (wrong), b row1="1" (right), b row2=0 (wrong),
    // c=0.0 (right). Labels in mixed spellings are one class.
    let truth = json!([
        {"request_id": "req-a", "actual": 1},
        {"request_id": "req-b", "row": 0, "actual": true},
        {"request_id": "req-b", "row": 1, "actual": "1"},
        {"request_id": "req-b", "row": 2, "actual": 0},
        {"request_id": "req-c", "actual": 0.0}
    ]);
    let (status, body) = post(admin, "/api/v1/feedback/toy", truth, Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["received"], 5);
    let report = wait_matched(admin, "toy", 5).await;
    assert_eq!(report["task"], "classification");
    // 3 of 5 right; positive class 1: tp=2 (a, b1), fp=1 (b2), fn=1 (b0).
    let c = &report["classification"];
    assert_eq!(c["accuracy"], 0.6);
    assert_eq!(c["averaging"], "binary");
    assert!((c["precision"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert!((c["recall"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);

    // A duplicate and a row past the batch are unmatched, the first ground truth stands.
    let (_, body) = post(
        admin,
        "/api/v1/feedback/toy",
        json!([{"request_id": "req-a", "actual": 0}, {"request_id": "req-b", "row": 9, "actual": 0}]),
        Some(TOKEN),
    )
    .await;
    assert_eq!(body["results"][0]["result"], "duplicate");
    assert_eq!(body["results"][1]["result"], "unknown");

    let m = wait_gauge(admin, "mlmon_performance", "toy", "accuracy", 0.6).await;
    let perf = |metric: &str| {
        value(
            &m,
            "mlmon_performance",
            &[("model", "toy"), ("metric", metric)],
        )
    };
    assert_eq!(perf("accuracy"), Some(0.6));
    assert!((perf("f1").unwrap() - 2.0 / 3.0).abs() < 1e-12);
    let fb = |result: &str| {
        value(
            &m,
            "mlmon_feedback_total",
            &[("model", "toy"), ("result", result)],
        )
    };
    assert_eq!(fb("matched"), Some(5.0));
    assert_eq!(fb("unmatched"), Some(2.0));
    assert_eq!(fb("late"), Some(0.0), "nothing late, the series exists");
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_api_feeds_the_analyses_and_estimates() {
    let running = start().await;
    let admin = running.admin_addr;
    let records = json!([
        {"features": {"x": 1.0, "colour": "red"}, "prediction": 1, "probabilities": [0.2, 0.8],
         "request_id": "p1", "timestamp": "2026-01-02T03:04:05Z"},
        {"features": {"x": -1.0, "colour": null}, "prediction": 0, "probabilities": [0.9, 0.1],
         "request_id": "p2"},
        {"features": {"x": 2.0}, "prediction": 1, "probabilities": [0.4, 0.6]}
    ]);
    let (status, body) = post(admin, "/api/v1/predictions/batch", records, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 3);
    analysed(&running, 3).await;
    assert_eq!(body["request_ids"][0], "p1");
    assert!(
        !body["request_ids"][2].as_str().unwrap().is_empty(),
        "generated id"
    );

    let (status, _) = post(
        admin,
        "/api/v1/feedback/batch",
        json!([{"request_id": "p1", "actual": 1}, {"request_id": "p2", "actual": 1}]),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    let report = wait_matched(admin, "batch", 2).await;
    assert_eq!(report["classification"]["accuracy"], 0.5);
    // Expected accuracy from the probabilities alone: (0.8 + 0.9 + 0.6) / 3.
    let est = &report["estimated"];
    assert_eq!(est["calibration"], "assumed");
    assert!(
        (est["accuracy"].as_f64().unwrap() - 2.3 / 3.0).abs() < 1e-12,
        "{est}"
    );

    let m = wait_gauge(
        admin,
        "mlmon_estimated_performance",
        "batch",
        "accuracy",
        2.3 / 3.0,
    )
    .await;
    assert_eq!(
        value(&m, "mlmon_predictions_total", &[("model", "batch")]),
        Some(3.0)
    );
    let (_, models) = get(admin, "/api/v1/models").await;
    let batch = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "batch")
        .expect("batch listed");
    assert!(batch["status"].is_string(), "{batch}");
    assert!(batch["checks"].as_array().unwrap().len() >= 6);
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_endpoints_need_the_token_and_errors_are_json() {
    let running = start().await;
    let (proxy, admin) = (running.proxy_addr, running.admin_addr);
    predict(proxy, "t1", &[1.0]).await;
    let fb = json!({"request_id": "t1", "actual": 1});
    for path in ["/api/v1/feedback/toy", "/api/v1/predictions/toy"] {
        let (status, body) = post(admin, path, fb.clone(), None).await;
        assert_eq!(status, 401, "{path}");
        assert!(body["error"].is_string());
        let (status, _) = post(admin, path, fb.clone(), Some("wrong")).await;
        assert_eq!(status, 401, "{path}");
    }
    let (status, body) = post(
        admin,
        "/api/v1/feedback/nosuchmodel",
        fb.clone(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("nosuchmodel"));
    let (status, body) = post(
        admin,
        "/api/v1/feedback/toy",
        json!([{"request_id": "t1", "actual": 1}, {"request_id": "t1", "actual": [1]}]),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("feedback record 1"),
        "{body}"
    );
    let (status, body) = post(
        admin,
        "/api/v1/feedback/toy",
        json!({"request_id": "t1", "actuall": 1}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("actuall"),
        "{body}"
    );
    let (status, body) = post(
        admin,
        "/api/v1/predictions/toy",
        json!({"features": {"x": 1}, "prediction": 1, "timestamp": "yesterday"}),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("timestamp"),
        "{body}"
    );
    let r = reqwest::Client::new()
        .post(format!("http://{admin}/api/v1/feedback/toy"))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string());
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_after_the_ttl_is_late() {
    let up = upstream(model).await;
    let mut cfg = config(up);
    cfg.model.name = "toy".into();
    cfg.drift.interval = Duration::from_millis(50);
    // Long enough that, on a loaded machine, the feedback below still arrives within the
    // newer prediction's TTL (300 ms was not: CI-like load made "fresh" late).
    cfg.feedback.ttl = Duration::from_millis(1500);
    let running = mlmon::server::start(cfg).await.unwrap();
    let (proxy, admin) = (running.proxy_addr, running.admin_addr);
    predict(proxy, "old", &[1.0]).await;
    predict(proxy, "fresh", &[1.0]).await;
    analysed(&running, 2).await;
    // Both predictions expire after `feedback.ttl`.
    wait_for_pending(admin, "toy", 0).await;
    predict(proxy, "fresh", &[-1.0]).await;
    // The reused id's newer prediction (0) waits; the first one's TTL ran out.
    wait_for_pending(admin, "toy", 1).await;
    let (status, body) = post(
        admin,
        "/api/v1/feedback/toy",
        json!([{"request_id": "old", "actual": 1}, {"request_id": "fresh", "actual": 0}]),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["result"], "late");
    assert_eq!(body["results"][1]["result"], "matched");
    let report = wait_matched(admin, "toy", 1).await;
    assert_eq!(
        report["classification"]["accuracy"], 1.0,
        "matched the newer prediction"
    );
    let m = scrape(admin).await;
    let fb = |result: &str| {
        value(
            &m,
            "mlmon_feedback_total",
            &[("model", "toy"), ("result", result)],
        )
    };
    assert_eq!(fb("late"), Some(1.0));
    assert_eq!(fb("matched"), Some(1.0));
    running.shutdown();
    running.wait().await;
}

/// Polls until `n` prediction rows wait for ground truth (the pipeline runs off the
/// request path).
async fn wait_for_pending(admin: SocketAddr, model: &str, n: u64) {
    let path = format!("/api/v1/models/{model}/performance");
    eventually(&format!("{model}: {n} pending predictions"), || async {
        match get(admin, &path).await {
            (200, v) if v["feedback"]["pending_predictions"] == n => Ok(()),
            (status, v) => Err(format!("{status} {v}")),
        }
    })
    .await
}
