//! `POST /api/v1/events` with what KServe's inference logger sends: binary-mode CloudEvents
//! (cloudevents sdk-go, `pkg/logger/worker.go`): `Ce-Id`, `Ce-Specversion: 1.0`,
//! `Ce-Source` (the agent, `http://localhost:9081/`), `Ce-Type`
//! `org.kubeflow.serving.inference.request` / `.response`, `Ce-Time`, the extensions
//! `Ce-Inferenceservicename`, `Ce-Namespace`, `Ce-Component`, `Ce-Endpoint`, `Ce-Metadata`,
//! and the request's `Content-Type`; the body is the request or response as the model
//! server saw it. Halves are paired by `Ce-Id`, in either order, and feed the analyses;
//! ground truth then joins by that id.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{analysed, config, eventually, scrape, value};
use serde_json::{json, Value};

const REQUEST: &str = "org.kubeflow.serving.inference.request";
const RESPONSE: &str = "org.kubeflow.serving.inference.response";

async fn start(token: Option<&str>) -> mlmon::server::Running {
    // No upstream is needed: events bypass the proxy.
    let mut cfg = config("127.0.0.1:9".parse().unwrap());
    cfg.drift.interval = Duration::from_millis(50);
    cfg.admin.token = token.map(String::from);
    mlmon::server::start(cfg).await.unwrap()
}

async fn event(
    admin: SocketAddr,
    query: &str,
    id: &str,
    ty: &str,
    isvc: &str,
    body: &Value,
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{admin}/api/v1/events{query}"))
        .header("Ce-Id", id)
        .header("Ce-Specversion", "1.0")
        .header("Ce-Source", "http://localhost:9081/")
        .header("Ce-Type", ty)
        .header("Ce-Time", "2026-11-29T10:00:00.123456789Z")
        .header("Ce-Inferenceservicename", isvc)
        .header("Ce-Namespace", "default")
        .header("Ce-Component", "predictor")
        .header("Ce-Endpoint", "default")
        .header("Ce-Metadata", "{}")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_logger_events_feed_the_analyses() {
    let running = start(None).await;
    let admin = running.admin_addr;
    // KServe's sklearn-iris example, V1 protocol: request first, then response.
    let v1_request = json!({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]});
    let v1_response = json!({"predictions": [1, 1]});
    let (status, body) = event(admin, "", "id-1", REQUEST, "sklearn-iris", &v1_request).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["paired"], false);
    let (status, body) = event(admin, "", "id-1", RESPONSE, "sklearn-iris", &v1_response).await;
    assert_eq!(status, 202);
    assert_eq!(body["paired"], true);
    // Open Inference Protocol (V2), response before request.
    let v2_request = json!({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                                        "data": [[6.8, 2.8, 4.8, 1.4]]}]});
    let v2_response = json!({"model_name": "sklearn-iris", "id": "id-2",
        "outputs": [{"name": "output-0", "shape": [1], "datatype": "INT32", "data": [2]}]});
    let (_, body) = event(admin, "", "id-2", RESPONSE, "sklearn-iris", &v2_response).await;
    assert_eq!(body["paired"], false);
    let (_, body) = event(admin, "", "id-2", REQUEST, "sklearn-iris", &v2_request).await;
    assert_eq!(body["paired"], true);
    // Two pairs were queued for the analysis side.
    running.wait_analysed(2).await;

    analysed(&running, 2).await;
    let m = scrape(admin).await;
    assert_eq!(
        value(&m, "mlmon_predictions_total", &[("model", "sklearn-iris")]),
        Some(3.0),
        "2 + 1 rows"
    );
    // Events go through the same analysis side as proxied traffic: every payload error
    // reason of the model exists, at zero.
    let errors: Vec<f64> = m
        .iter()
        .filter(|s| {
            s.name == "mlmon_payload_errors_total"
                && s.labels.get("model").map(String::as_str) == Some("sklearn-iris")
        })
        .map(|s| s.value)
        .collect();
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|v| *v == 0.0), "{errors:?}");
    // Ce-Time of the request is the prediction time.
    let ts = value(
        &m,
        "mlmon_last_prediction_timestamp_seconds",
        &[("model", "sklearn-iris")],
    )
    .unwrap();
    assert!((ts - 1_795_946_400.123_456).abs() < 1e-3, "{ts}");

    // Ground truth by Ce-Id (and row): id-1 rows 1, 0; id-2 row 2.
    let r = reqwest::Client::new()
        .post(format!("http://{admin}/api/v1/feedback/sklearn-iris"))
        .json(&json!([
            {"request_id": "id-1", "row": 0, "actual": 1},
            {"request_id": "id-1", "row": 1, "actual": 0},
            {"request_id": "id-2", "actual": "2"}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    for i in 0..3 {
        assert_eq!(body["results"][i]["result"], "matched", "{body}");
    }
    // The gauge follows at the next periodic refresh.
    let acc = eventually("accuracy of the 3 matched rows in /metrics", || async {
        let m = scrape(admin).await;
        value(
            &m,
            "mlmon_performance",
            &[("model", "sklearn-iris"), ("metric", "accuracy")],
        )
        .ok_or_else(|| "no accuracy".to_string())
    })
    .await;
    assert!((acc - 2.0 / 3.0).abs() < 1e-12, "{acc}");
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_json_errors_and_the_token_can_ride_the_url() {
    let running = start(Some("tok")).await;
    let admin = running.admin_addr;
    let body = json!({"instances": [[1.0]]});
    let (status, err) = event(admin, "", "x", REQUEST, "m", &body).await;
    assert_eq!(status, 401, "{err}");
    let (status, _) = event(admin, "?token=tok", "x", REQUEST, "m", &body).await;
    assert_eq!(status, 202);
    let (status, err) = event(admin, "?token=tok", "x", "com.example.other", "m", &body).await;
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("com.example.other"));
    let r = reqwest::Client::new()
        .post(format!("http://{admin}/api/v1/events"))
        .bearer_auth("tok")
        .header("Ce-Specversion", "1.0")
        .header("Ce-Type", REQUEST)
        .header("Ce-Source", "http://localhost:9081/")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("ce-id"), "{err}");
    let r = reqwest::Client::new()
        .post(format!("http://{admin}/api/v1/events"))
        .bearer_auth("tok")
        .header("Content-Type", "application/cloudevents+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    running.shutdown();
    running.wait().await;
}
