//! Model health end to end: 5xx answers through the proxy make the model critical in
//! `mlmon_model_health` and `GET /api/v1/models`, with the reason and what to check first.
//! The rules themselves: `tests/offline/health.rs`.

use std::time::Duration;

use crate::common::{analysed, config, eventually, scrape, upstream, value, UpBody};
use http::Response;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

async fn flaky(req: http::Request<hyper::body::Incoming>) -> Response<UpBody> {
    let fail = req.headers().contains_key("x-fail");
    Response::builder()
        .status(if fail { 500 } else { 200 })
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from_static(b"{\"predictions\":[1]}")).boxed())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_make_the_model_critical() {
    let up = upstream(flaky).await;
    let mut cfg = config(up);
    cfg.model.name = "svc".into();
    cfg.drift.interval = Duration::from_millis(50);
    cfg.sla.latency = Duration::from_secs(5);
    cfg.thresholds.latency_p95.warning = Duration::from_secs(4);
    cfg.thresholds.latency_p95.critical = Duration::from_secs(5);
    let running = mlmon::server::start(cfg).await.unwrap();
    let client = reqwest::Client::new();
    for i in 0..50 {
        let mut r = client
            .post(format!("http://{}/predict", running.proxy_addr))
            .body("[{\"x\": 1}]");
        if i % 10 == 0 {
            r = r.header("x-fail", "1");
        }
        r.send().await.unwrap();
    }
    analysed(&running, 50).await;
    // Health follows at the periodic refresh.
    eventually("svc critical in /metrics", || async {
        let m = scrape(running.admin_addr).await;
        match value(&m, "mlmon_model_health", &[("model", "svc")]) {
            Some(2.0) => Ok(()),
            other => Err(format!("mlmon_model_health {other:?}")),
        }
    })
    .await;
    let models: Value = reqwest::get(format!("http://{}/api/v1/models", running.admin_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let svc = &models["models"][0];
    assert_eq!(svc["model"], "svc");
    assert_eq!(svc["status"], "critical");
    let reason = &svc["reasons"][0];
    assert_eq!(reason["check"], "error_rate");
    assert_eq!(reason["value"], 0.1, "5 of 50");
    assert!(reason["message"].as_str().unwrap().contains("5 of 50"));
    assert!(reason["recommendation"]
        .as_str()
        .unwrap()
        .contains("model server"));
    running.shutdown();
    running.wait().await;
}
