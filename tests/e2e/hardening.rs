//! Issue 11 findings, end to end against a real upstream on 127.0.0.1: outcomes of
//! clients that go away, aborted uploads, h2c authority, model-slot floods, long names,
//! authentication before the body, JSON errors, and logs without colour codes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{config, scrape, upstream, value, UpBody};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn ok(body: &'static str) -> Response<UpBody> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())).boxed())
        .unwrap()
}

/// An upstream that reads the whole body, waits `?sleep_ms` (from the `x-sleep-ms`
/// header), and answers with the `Host` it saw.
async fn slow_echo_host(req: Request<hyper::body::Incoming>) -> Response<UpBody> {
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let sleep = req
        .headers()
        .get("x-sleep-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u64);
    let _ = req.into_body().collect().await;
    tokio::time::sleep(Duration::from_millis(sleep)).await;
    Response::builder()
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(
                serde_json::json!({ "predictions": [1], "host": host }).to_string(),
            ))
            .boxed(),
        )
        .unwrap()
}

/// Polls `/metrics` until `name{labels}` has a value, or 5 s pass.
async fn wait_value(admin: SocketAddr, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let m = scrape(admin).await;
        if let Some(v) = value(&m, name, labels) {
            return Some(v);
        }
        if Instant::now() > until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_that_goes_away_is_counted_as_canceled() {
    let up = upstream(slow_echo_host).await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    // Gone before the answer: the upstream takes 1.5 s, the client leaves after 200 ms.
    let mut s = TcpStream::connect(running.proxy_addr).await.unwrap();
    s.write_all(
        b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\nx-sleep-ms: 1500\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(s);
    let canceled = wait_value(
        running.admin_addr,
        "mlmon_requests_total",
        &[("model", "m"), ("code", "canceled")],
    )
    .await;
    assert_eq!(canceled, Some(1.0), "the abandoned request vanished");
    let m = scrape(running.admin_addr).await;
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "m"), ("code", "error")]
        ),
        None
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn an_aborted_upload_is_not_blamed_on_the_upstream() {
    let up = upstream(slow_echo_host).await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    let mut s = TcpStream::connect(running.proxy_addr).await.unwrap();
    s.write_all(
        b"POST /v2/models/up/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n{\"inputs\": [",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(s);
    let canceled = wait_value(
        running.admin_addr,
        "mlmon_requests_total",
        &[("model", "up"), ("code", "canceled")],
    )
    .await;
    assert_eq!(canceled, Some(1.0));
    let m = scrape(running.admin_addr).await;
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "up"), ("code", "error")]
        ),
        None,
        "an aborted upload counted as an upstream error"
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn an_h2c_client_authority_reaches_the_upstream_as_host() {
    let up = upstream(slow_echo_host).await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let port = running.proxy_addr.port();
    let req = Request::post(format!("http://localhost:{port}/v2/models/h/infer"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["host"], format!("localhost:{port}"), "{v}");
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn junk_model_names_cannot_take_the_configured_models_slot() {
    let up = upstream(|_req| async { ok(r#"{"predictions": [1]}"#) }).await;
    let mut cfg = config(up);
    cfg.model.name = "real".into();
    cfg.model.max_models = 4;
    let running = mlmon::server::start(cfg).await.unwrap();
    let client = reqwest::Client::new();
    for i in 0..40 {
        client
            .post(format!(
                "http://{}/v2/models/junk{i}/infer",
                running.proxy_addr
            ))
            .body("{}")
            .send()
            .await
            .unwrap();
    }
    // A name over limits.max_name_bytes is not a label of its own.
    let long = "n".repeat(300);
    client
        .post(format!(
            "http://{}/v2/models/{long}/infer",
            running.proxy_addr
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    // The real model's traffic (no name in the path) keeps its label.
    let r = client
        .post(format!("http://{}/invocations", running.proxy_addr))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let real = wait_value(
        running.admin_addr,
        "mlmon_requests_total",
        &[("model", "real"), ("code", "2xx")],
    )
    .await;
    assert_eq!(real, Some(1.0));
    let m = scrape(running.admin_addr).await;
    let models: std::collections::BTreeSet<_> = m
        .iter()
        .filter(|s| s.name == "mlmon_requests_total")
        .filter_map(|s| s.labels.get("model").cloned())
        .collect();
    assert!(models.len() <= 5, "{models:?}");
    assert!(models.contains("__other__"));
    assert!(!models.iter().any(|n| n.len() > 128));
    running.shutdown();
    running.wait().await;
}

/// Sends a request head with a large announced body and nothing else; returns the status
/// line if an answer comes within 2 s.
async fn head_only(admin: SocketAddr, head: &str) -> Option<String> {
    let mut s = TcpStream::connect(admin).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().map(str::to_string)
}

#[tokio::test]
async fn authentication_is_decided_before_the_body() {
    let up = upstream(slow_echo_host).await;
    let mut cfg = config(up);
    cfg.admin.token = Some("t0k".into());
    let running = mlmon::server::start(cfg).await.unwrap();
    let admin = running.admin_addr;
    // A 64 MiB upload announced, not one byte sent: refused at once.
    let status = head_only(
        admin,
        "PUT /api/v1/models/m/baseline HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 67108864\r\n\r\n",
    )
    .await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 401 Unauthorized"));
    let status = head_only(
        admin,
        "POST /api/v1/events?token=wrong HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n",
    )
    .await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 401 Unauthorized"));

    let client = reqwest::Client::new();
    let get = |path: &str, auth: Option<&str>| {
        let mut r = client.get(format!("http://{admin}{path}"));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    // Reads need the token too; the scheme is case-insensitive.
    assert_eq!(get("/api/v1/models", None).await.unwrap().status(), 401);
    assert_eq!(
        get("/api/v1/models", Some("BEARER t0k"))
            .await
            .unwrap()
            .status(),
        200
    );
    // ?token= belongs to /api/v1/events only, and the answer says so.
    let r = get("/api/v1/models/m/anomalies?token=t0k", None)
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("/api/v1/events"),
        "{v}"
    );
    // /metrics and /healthz stay open.
    assert_eq!(get("/metrics", None).await.unwrap().status(), 200);
    assert_eq!(get("/healthz", None).await.unwrap().status(), 200);
    // The events endpoint takes ?token=.
    let r = client
        .post(format!("http://{admin}/api/v1/events?token=t0k"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "e1")
        .header("ce-source", "test")
        .header("ce-type", "org.kubeflow.serving.inference.request")
        .body(r#"{"instances": [[1, 2]]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // 405 and 413 are JSON.
    let r = client
        .delete(format!("http://{admin}/api/v1/models"))
        .header("authorization", "Bearer t0k")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let r = client
        .post(format!("http://{admin}/api/v1/feedback/m"))
        .header("authorization", "Bearer t0k")
        .body(vec![b' '; 3 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    running.shutdown();
    running.wait().await;
}

/// `mlmon serve` on ephemeral 127.0.0.1 ports, its log (stderr) written to `path`.
fn serve_logging_to(path: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mlmon"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ])
    .stderr(std::fs::File::create(path).unwrap())
    .stdout(std::process::Stdio::null());
    cmd
}

/// The log file of a `mlmon serve` once it says it has started (or after `within`).
fn log_once_started(path: &std::path::Path, within: Duration) -> String {
    let until = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains("mlmon started") || Instant::now() > until {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.log");
    let mut child = serve_logging_to(&path).spawn().unwrap();
    let text = log_once_started(&path, Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("mlmon started"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI codes in a log file: {text:?}"
    );
}

/// Starts `mlmon serve` with `purge_delay` as `MIMALLOC_PURGE_DELAY` (or without the
/// variable), waits until it has started and returns the variable as the running server
/// process (same PID) has it in its environment.
fn purge_delay_of_a_started_server(purge_delay: Option<&str>) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.log");
    let mut cmd = serve_logging_to(&path);
    cmd.env_remove("MIMALLOC_PURGE_DELAY");
    if let Some(v) = purge_delay {
        cmd.env("MIMALLOC_PURGE_DELAY", v);
    }
    let mut child = cmd.spawn().unwrap();
    let text = log_once_started(&path, Duration::from_secs(20));
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("mlmon started"), "{text}");
    assert!(!text.contains("could not restart"), "{text}");
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("MIMALLOC_PURGE_DELAY="))
        .map(str::to_string)
}

/// Freed memory goes back to the OS at once in the sidecar (docs/reliability.md, "Memory
/// after bursts"): `serve` runs with mimalloc's purge delay at 0 unless the user chose one.
#[test]
#[cfg(target_os = "linux")]
fn the_sidecar_returns_freed_memory_at_once_unless_told_otherwise() {
    assert_eq!(purge_delay_of_a_started_server(None).as_deref(), Some("0"));
    assert_eq!(
        purge_delay_of_a_started_server(Some("250")).as_deref(),
        Some("250")
    );
}

/// A baseline over 100 categories `{prefix}0..{prefix}99` of feature `f` for model `cat`.
fn categorical_baseline(prefix: &str) -> Vec<u8> {
    use mlmon::baseline::{BaselineBuilder, BuildOptions};
    use mlmon::record::{FeatureValue, Row};
    let mut b = BaselineBuilder::new(BuildOptions::new("cat"), 1000);
    for i in 0..1000 {
        b.push_row(&Row {
            values: vec![(
                "f".into(),
                FeatureValue::Text(format!("{prefix}{}", i % 100)),
            )],
        });
    }
    serde_json::to_vec(&b.finish().unwrap()).unwrap()
}

#[tokio::test]
async fn replacing_a_baseline_drops_the_old_bins_series() {
    let up = upstream(crate::common::records_model).await;
    let mut cfg = config(up);
    cfg.drift.fleet_bins = mlmon::config::FleetBins::Full;
    cfg.model.name = "cat".into();
    let running = mlmon::server::start(cfg).await.unwrap();
    let client = reqwest::Client::new();
    let mut sent = 0;
    let mut series = Vec::new();
    for prefix in ["a", "b", "c"] {
        let r = client
            .put(format!(
                "http://{}/api/v1/models/cat/baseline",
                running.admin_addr
            ))
            .body(categorical_baseline(prefix))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let rows: Vec<serde_json::Value> = (0..100)
            .map(|i| serde_json::json!({ "f": format!("{prefix}{i}") }))
            .collect();
        let r = client
            .post(format!("http://{}/predict", running.proxy_addr))
            .json(&rows)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        sent += 1;
        crate::common::analysed(&running, sent).await;
        let m = scrape(running.admin_addr).await;
        let n = m
            .iter()
            .filter(|s| s.name == "mlmon_feature_bin_observations_total")
            .count();
        let stale = m.iter().any(|s| {
            s.name == "mlmon_feature_bin_observations_total"
                && s.labels
                    .get("bin")
                    .is_some_and(|b| !b.starts_with(prefix) && b != "__other__")
        });
        assert!(!stale, "bins of a replaced baseline are still exported");
        series.push(n);
    }
    // One baseline's worth of bins (100 categories, __other__), not three.
    assert!(series.iter().all(|&n| n <= 101), "{series:?}");
    running.shutdown();
    running.wait().await;
}

/// Finding 12, cost: a baseline with 100 000 categories (hand-made or from another tool)
/// used to cost a quadratic anomaly fit on the first refresh: 24 s of CPU in release,
/// `/metrics` blocked past Prometheus' 10 s scrape timeout (about 2 minutes in a debug
/// build). Now the refresh after the PUT and the next scrape finish well within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_category_baseline_is_scraped_within_the_scrape_timeout() {
    let up = upstream(crate::common::records_model).await;
    let mut cfg = config(up);
    cfg.drift.fleet_bins = mlmon::config::FleetBins::Full;
    cfg.model.name = "cat".into();
    cfg.drift.interval = Duration::from_millis(200);
    let running = mlmon::server::start(cfg).await.unwrap();
    let mut snap: serde_json::Value = serde_json::from_slice(&categorical_baseline("a")).unwrap();
    let n = 100_000;
    let cats: serde_json::Map<String, serde_json::Value> = (0..n)
        .map(|i| (format!("c{i}"), serde_json::json!(1.0 / f64::from(n))))
        .collect();
    snap["features"]["f"]["categories"] = serde_json::Value::Object(cats);
    let client = reqwest::Client::new();
    let began = Instant::now();
    let r = client
        .put(format!(
            "http://{}/api/v1/models/cat/baseline",
            running.admin_addr
        ))
        .body(serde_json::to_vec(&snap).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Let at least one refresh pick the new baseline up, then scrape within 10 s.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let scraped = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = scrape(running.admin_addr).await;
            let ratios = m
                .iter()
                .filter(|s| s.name == "mlmon_baseline_bin_ratio" && s.labels["model"] == "cat")
                .count();
            if ratios >= 100_000 {
                break ratios;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        scraped.is_ok(),
        "the 100 000 categories' series were not scraped within 10 s"
    );
    let healthz = tokio::time::timeout(
        Duration::from_secs(2),
        client
            .get(format!("http://{}/healthz", running.admin_addr))
            .send(),
    )
    .await;
    assert!(healthz.is_ok_and(|r| r.is_ok()), "/healthz answers");
    // The anomaly scorer is fitted on that baseline (the part that was quadratic).
    let anomalies = tokio::time::timeout(
        Duration::from_secs(10),
        client
            .get(format!(
                "http://{}/api/v1/models/cat/anomalies",
                running.admin_addr
            ))
            .send(),
    )
    .await;
    assert!(
        anomalies.is_ok_and(|r| r.is_ok_and(|r| r.status() == 200)),
        "the anomaly report of a 100 000-category baseline within 10 s"
    );
    eprintln!(
        "scraped and reported in {:?}, {:?} after the PUT began",
        started.elapsed(),
        began.elapsed()
    );
    // Installing, refreshing, scraping and reporting together stay within one scrape
    // timeout and a half (the PUT used to wait for the quadratic fit: about 2 minutes).
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "a 100 000-category baseline took {:?} from PUT to report",
        began.elapsed()
    );
    // Nothing is left running for minutes: shutdown completes within its grace.
    running.shutdown();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), running.wait())
            .await
            .is_ok(),
        "shutdown within 10 s"
    );
}
