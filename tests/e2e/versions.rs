//! Version identity through the real proxy (SPEC 10): the path, else `model.version_header`,
//! else `model.version`; at most `model.max_versions` per model; per-version counters and
//! the versions report.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::common::{analysed, config, records_model, scrape, upstream, value};

type ClientBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn send(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, ClientBody>,
    url: String,
    header: Option<&str>,
) {
    let mut req = Request::post(url).header("content-type", "application/json");
    if let Some(h) = header {
        req = req.header("x-model-version", h);
    }
    let body = Full::new(Bytes::from_static(br#"[{"x": 1.0}, {"x": -2.0}]"#)).boxed();
    let resp = client.request(req.body(body).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &got[..],
        br#"{"predictions":[1,0]}"#,
        "the upstream's answer, unchanged"
    );
}

#[tokio::test]
async fn path_then_header_then_config_and_bounded() {
    let up = upstream(records_model).await;
    let mut cfg = config(up);
    cfg.model.version = Some("stable".into());
    cfg.model.version_header = Some("x-model-version".into());
    cfg.model.max_versions = 3;
    let running = mlmon::server::start(cfg).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{}", running.proxy_addr);
    // The path wins over the header.
    send(
        &client,
        format!("{base}/v2/models/m/versions/p1/infer"),
        Some("h"),
    )
    .await;
    // The header when the path names none.
    send(&client, format!("{base}/v2/models/m/infer"), Some("canary")).await;
    send(&client, format!("{base}/v2/models/m/infer"), Some("canary")).await;
    // `model.version` last.
    send(&client, format!("{base}/v2/models/m/infer"), None).await;
    send(&client, format!("{base}/v2/models/m/infer"), Some("  ")).await;
    // `m` has stable, p1 and canary: a fourth version folds into __other__.
    send(
        &client,
        format!("{base}/v2/models/m/versions/p9/infer"),
        None,
    )
    .await;
    send(&client, format!("{base}/v2/models/m/infer"), Some("h2")).await;
    analysed(&running, 7).await;

    let m = scrape(running.admin_addr).await;
    let count = |v: &str| {
        value(
            &m,
            "mlmon_version_requests_total",
            &[("model", "m"), ("version", v)],
        )
    };
    assert_eq!(count("p1"), Some(1.0));
    assert_eq!(count("canary"), Some(2.0));
    assert_eq!(count("stable"), Some(2.0));
    assert_eq!(count("__other__"), Some(2.0));
    assert_eq!(count("h"), None);
    assert_eq!(count("p9"), None);
    // Per-model families stay without a version label.
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "m"), ("code", "2xx")]
        ),
        Some(7.0)
    );

    let url = format!("http://{}/api/v1/models/m/versions", running.admin_addr);
    let resp = client
        .request(
            Request::get(url)
                .body(Full::new(Bytes::new()).boxed())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        report["reference"], "stable",
        "model.version is the reference"
    );
    let versions: Vec<&str> = report["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["__other__", "canary", "p1", "stable"]);
    let canary = &report["versions"][1];
    assert_eq!(canary["requests"], 2);
    assert_eq!(canary["prediction_rows"], 4);

    // The comparison: too few requests for a verdict; bad parameters are JSON 400s.
    let get = |path: String| {
        let client = client.clone();
        let url = format!("http://{}{path}", running.admin_addr);
        async move {
            let resp = client
                .request(
                    Request::get(url)
                        .body(Full::new(Bytes::new()).boxed())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            )
        }
    };
    let (status, c) = get("/api/v1/models/m/compare?a=stable&b=canary".into()).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let metrics: Vec<(&str, &str)> = c["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["metric"].as_str().unwrap(),
                m["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        metrics.contains(&("latency_mean", "not_enough_data")),
        "{c}"
    );
    assert!(metrics.contains(&("error_rate", "not_enough_data")), "{c}");
    for bad in [
        "a=stable",
        "a=stable&b=stable",
        "a=stable&b=canary&alpha=2",
        "a=stable&b=canary&power=x",
        "a=stable&b=canary&nonsense=1",
    ] {
        let (status, body) = get(format!("/api/v1/models/m/compare?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    let (status, _) = get("/api/v1/models/m/compare?a=stable&b=zzz".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get("/api/v1/models/nobody/compare?a=x&b=y".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    running.shutdown();
}
