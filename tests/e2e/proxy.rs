//! End-to-end proxy behaviour against a real upstream on 127.0.0.1: bytes, streaming,
//! status codes, errors, request ids, capture back-pressure, metrics and shutdown.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{config, scrape, upstream, value, UpBody};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mlmon::analysis::{Analysis, Exchange};
use rand::RngCore;

type ClientBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> UpBody {
    Full::new(b.into()).boxed()
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, ClientBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn post(url: String, body: impl Into<Bytes>) -> Request<ClientBody> {
    Request::post(url)
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

/// An upstream that echoes the request body back, streaming it frame by frame.
async fn echo(req: Request<hyper::body::Incoming>) -> Response<UpBody> {
    let seen_len = req
        .headers()
        .get("content-length")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_else(|| "none".into());
    let rid = req.headers().get("x-request-id").cloned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let chunks: Vec<Result<Frame<Bytes>, Infallible>> = body
        .chunks(64 * 1024)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let mut resp = Response::new(StreamBody::new(futures_util::stream::iter(chunks)).boxed());
    resp.headers_mut()
        .insert("x-upstream-saw-content-length", seen_len.parse().unwrap());
    if let Some(rid) = rid {
        resp.headers_mut().insert("x-upstream-saw-request-id", rid);
    }
    resp
}

#[tokio::test]
async fn five_mib_binary_body_is_byte_identical_both_ways() {
    let up = upstream(echo).await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    let mut payload = vec![0u8; 5 * 1024 * 1024];
    rand::rng().fill_bytes(&mut payload);
    let resp = client()
        .request(post(
            format!("http://{}/v2/models/blob/infer", running.proxy_addr),
            payload.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["x-upstream-saw-content-length"],
        payload.len().to_string().as_str()
    );
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got.len(), payload.len());
    assert!(got[..] == payload[..], "echoed body differs");
    // Over capture.max_body_bytes (1 MiB): proxied in full, not analysed, counted.
    let m = scrape(running.admin_addr).await;
    assert_eq!(
        value(
            &m,
            "mlmon_capture_dropped_total",
            &[("reason", "too_large")]
        ),
        Some(1.0)
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn chunked_bodies_stream_through_unchanged() {
    let up = upstream(echo).await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    let parts: Vec<Bytes> = (0..50)
        .map(|i| Bytes::from(format!("chunk-{i:03}-{}\n", "x".repeat(i * 37))))
        .collect();
    let expected: Vec<u8> = parts.iter().flat_map(|b| b.to_vec()).collect();
    let frames: Vec<Result<Frame<Bytes>, Infallible>> =
        parts.into_iter().map(|b| Ok(Frame::data(b))).collect();
    let req = Request::post(format!("http://{}/invocations", running.proxy_addr))
        .body(StreamBody::new(futures_util::stream::iter(frames)).boxed())
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The request reached the model as a chunked stream, not re-buffered with a length.
    assert_eq!(resp.headers()["x-upstream-saw-content-length"], "none");
    assert!(resp.headers().get("content-length").is_none());
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&got[..], &expected[..]);
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn model_errors_pass_through_with_status_headers_and_body() {
    let up = upstream(|req: Request<hyper::body::Incoming>| async move {
        let (status, body) = if req.uri().path().contains("bad") {
            (422, r#"{"error":"shape mismatch"}"#)
        } else {
            (503, r#"{"error":"model loading"}"#)
        };
        Response::builder()
            .status(status)
            .header("x-model-detail", "from-upstream")
            .header("content-type", "application/json")
            .body(full(body))
            .unwrap()
    })
    .await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    let c = reqwest::Client::new();
    let r = c
        .post(format!("http://{}/v2/models/bad/infer", running.proxy_addr))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert_eq!(r.headers()["x-model-detail"], "from-upstream");
    assert_eq!(r.text().await.unwrap(), r#"{"error":"shape mismatch"}"#);
    let r = c
        .post(format!(
            "http://{}/v2/models/loading/infer",
            running.proxy_addr
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.text().await.unwrap(), r#"{"error":"model loading"}"#);
    let m = scrape(running.admin_addr).await;
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "bad"), ("code", "4xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "loading"), ("code", "5xx")]
        ),
        Some(1.0)
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn first_server_sent_event_arrives_while_upstream_is_still_sending() {
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let up = upstream(move |_req| {
        let mut release = release_rx.clone();
        async move {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
            tokio::spawn(async move {
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"data: first\n\n"))))
                    .await;
                // The second event only comes once the client has seen the first.
                let _ = release.wait_for(|v| *v).await;
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"data: second\n\n"))))
                    .await;
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(StreamBody::new(tokio_stream(rx)).boxed())
                .unwrap()
        }
    })
    .await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    let resp = client()
        .request(post(
            format!("http://{}/v1/chat/completions", running.proxy_addr),
            r#"{"stream":true}"#,
        ))
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first event must arrive before the upstream finishes")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    release_tx.send(true).unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"data: second\n\n");
    running.shutdown();
    running.wait().await;
}

fn tokio_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn dead_upstream_gives_json_502_and_is_counted() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let running = mlmon::server::start(config(dead)).await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}/v2/models/m/infer", running.proxy_addr))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 502);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("x-request-id"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "upstream unreachable");
    let m = scrape(running.admin_addr).await;
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "m"), ("code", "error")]
        ),
        Some(1.0)
    );
    let ready = reqwest::get(format!("http://{}/readyz", running.admin_addr))
        .await
        .unwrap();
    assert_eq!(
        ready.status().as_u16(),
        503,
        "not ready while the model is down"
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn slow_upstream_gives_json_504() {
    // An upstream that never answers.
    let up = upstream(|_req| std::future::pending()).await;
    let mut cfg = config(up);
    cfg.proxy.upstream_timeout = Duration::from_millis(200);
    let running = mlmon::server::start(cfg).await.unwrap();
    let t = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("http://{}/v2/models/m/infer", running.proxy_addr))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 504);
    assert!(t.elapsed() < Duration::from_secs(2));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "upstream timed out");
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn request_id_is_kept_or_generated_and_forwarded() {
    let up = upstream(echo).await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    let c = reqwest::Client::new();
    let url = format!("http://{}/v2/models/m/infer", running.proxy_addr);
    let r = c
        .post(&url)
        .header("x-request-id", "client-id-7")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "client-id-7");
    assert_eq!(r.headers()["x-upstream-saw-request-id"], "client-id-7");
    let r = c.post(&url).body("{}").send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "generated id {id} is a UUID"
    );
    assert_eq!(r.headers()["x-upstream-saw-request-id"], id.as_str());
    running.shutdown();
    running.wait().await;
}

/// An analysis that blocks the analysis side until released, so the capture queue fills up.
struct BlockedSink(Arc<AtomicBool>);

impl Analysis for BlockedSink {
    fn name(&self) -> &'static str {
        "blocked"
    }
    fn observe(&self, _exchange: &Exchange<'_>) {
        while !self.0.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    fn refresh(&self, _baselines: &mlmon::baseline::Registry) {}
    fn report(&self, _model: &str) -> Option<serde_json::Value> {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_capture_queue_drops_and_counts_without_delaying_requests() {
    let up = upstream(|_req| async { Response::new(full(r#"{"predictions":[1]}"#)) }).await;
    let released = Arc::new(AtomicBool::new(false));
    let mut cfg = config(up);
    cfg.capture.queue = 2;
    let running = mlmon::server::start_with(cfg, vec![Arc::new(BlockedSink(released.clone()))])
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let url = format!("http://{}/v1/models/m:predict", running.proxy_addr);
    let mut slowest = Duration::ZERO;
    for _ in 0..40 {
        let t = Instant::now();
        let r = c
            .post(&url)
            .body(r#"{"instances":[[1.0]]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.text().await.unwrap(), r#"{"predictions":[1]}"#);
        slowest = slowest.max(t.elapsed());
    }
    // The analysis is stuck, yet no request waited for it.
    assert!(
        slowest < Duration::from_millis(500),
        "slowest request {slowest:?}"
    );
    let m = scrape(running.admin_addr).await;
    let dropped = value(
        &m,
        "mlmon_capture_dropped_total",
        &[("reason", "queue_full")],
    )
    .unwrap();
    // 40 sent: at most one being processed plus two queued escaped the drop.
    assert!(dropped >= 37.0, "dropped {dropped}");
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "m"), ("code", "2xx")]
        ),
        Some(40.0)
    );
    released.store(true, Ordering::Release);
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn metrics_count_what_was_sent_in_both_formats() {
    let up = upstream(|_req| async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        Response::new(full("{}"))
    })
    .await;
    let mut cfg = config(up);
    cfg.sla.latency = Duration::from_millis(10);
    let running = mlmon::server::start(cfg).await.unwrap();
    let c = reqwest::Client::new();
    for _ in 0..7 {
        c.post(format!(
            "http://{}/v2/models/iris/infer",
            running.proxy_addr
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    }
    for _ in 0..2 {
        c.get(format!("http://{}/v2/health/ready", running.proxy_addr))
            .send()
            .await
            .unwrap();
    }
    c.post(format!("http://{}/invocations", running.proxy_addr))
        .body("{}")
        .send()
        .await
        .unwrap();
    let resp = reqwest::get(format!("http://{}/metrics", running.admin_addr))
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = crate::common::parse_exposition(&resp.text().await.unwrap());
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "iris"), ("code", "2xx")]
        ),
        Some(7.0)
    );
    // Health checks have no model in their path: they count for the default model.
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "default"), ("code", "2xx")]
        ),
        Some(3.0)
    );
    // Only inference requests are timed.
    assert_eq!(
        value(
            &m,
            "mlmon_request_duration_seconds_count",
            &[("model", "iris")]
        ),
        Some(7.0)
    );
    assert_eq!(
        value(
            &m,
            "mlmon_request_duration_seconds_count",
            &[("model", "default")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "mlmon_sla_violations_total", &[("model", "iris")]),
        Some(7.0)
    );
    let p95 = value(
        &m,
        "mlmon_latency_seconds",
        &[("model", "iris"), ("quantile", "0.95")],
    )
    .expect("window quantile exported");
    assert!((0.015..1.0).contains(&p95), "p95 {p95}");
    assert_eq!(
        value(
            &m,
            "mlmon_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(value(&m, "process_resident_memory_bytes", &[]).unwrap() > 0.0);

    let om = reqwest::Client::new()
        .get(format!("http://{}/metrics", running.admin_addr))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(om.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = om.text().await.unwrap();
    assert!(text.trim_end().ends_with("# EOF"));
    let m = crate::common::parse_exposition(&text);
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "iris"), ("code", "2xx")]
        ),
        Some(7.0)
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn h2c_on_both_sides() {
    let up = upstream(|req: Request<hyper::body::Incoming>| async move {
        let v = format!("{:?}", req.version());
        Response::builder()
            .header("x-upstream-version", v)
            .body(full("ok"))
            .unwrap()
    })
    .await;
    let mut cfg = config(up);
    cfg.proxy.upstream_http2 = true;
    let running = mlmon::server::start(cfg).await.unwrap();
    let h2: Client<_, ClientBody> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let resp = h2
        .request(post(
            format!("http://{}/v2/models/m/infer", running.proxy_addr),
            "{}",
        ))
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.headers()["x-upstream-version"], "HTTP/2.0");
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    // The upstream answers once the test has started the shutdown.
    let arrived = Arc::new(tokio::sync::Notify::new());
    let answer = Arc::new(tokio::sync::Notify::new());
    let (a, b) = (arrived.clone(), answer.clone());
    let up = upstream(move |_req| {
        let (arrived, answer) = (a.clone(), b.clone());
        async move {
            arrived.notify_one();
            answer.notified().await;
            Response::new(full("done"))
        }
    })
    .await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    let url = format!("http://{}/v2/models/m/infer", running.proxy_addr);
    let in_flight =
        tokio::spawn(async move { reqwest::Client::new().post(url).body("{}").send().await });
    tokio::time::timeout(crate::common::WAIT, arrived.notified())
        .await
        .expect("the request reaches the upstream");
    let proxy_addr = running.proxy_addr;
    running.shutdown();
    // The listener closes while the request is still at the upstream.
    crate::common::eventually("the proxy listener closed", || async {
        match tokio::net::TcpStream::connect(proxy_addr).await {
            Err(_) => Ok(()),
            Ok(_) => Err("still accepting".to_string()),
        }
    })
    .await;
    assert!(!in_flight.is_finished(), "the request is still in flight");
    answer.notify_one();
    let r = in_flight.await.unwrap().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "done");
    running.wait().await;
    assert!(
        tokio::net::TcpStream::connect(proxy_addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn gzip_responses_pass_unchanged_and_are_analysed() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(br#"{"predictions":[0.5,0.25]}"#).unwrap();
    let gz = Bytes::from(enc.finish().unwrap());
    let served = gz.clone();
    let up = upstream(move |_req| {
        let served = served.clone();
        async move {
            Response::builder()
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(full(served))
                .unwrap()
        }
    })
    .await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    let resp = client()
        .request(post(
            format!("http://{}/v1/models/m:predict", running.proxy_addr),
            r#"{"instances":[[1.0],[2.0]]}"#,
        ))
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got, gz, "compressed bytes reach the client untouched");
    crate::common::analysed(&running, 1).await;
    let m = scrape(running.admin_addr).await;
    assert_eq!(
        value(&m, "mlmon_predictions_total", &[("model", "m")]),
        Some(2.0)
    );
    let errors: f64 = m
        .iter()
        .filter(|s| s.name == "mlmon_payload_errors_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(errors, 0.0, "no payload errors");
    assert_eq!(
        value(
            &m,
            "mlmon_payload_errors_total",
            &[("model", "m"), ("reason", "invalid_json")]
        ),
        Some(0.0),
        "error counters start at zero"
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_queue_is_bounded_in_bytes_too() {
    let up = upstream(|_req| async { Response::new(full(r#"{"predictions":[1]}"#)) }).await;
    let released = Arc::new(AtomicBool::new(false));
    let mut cfg = config(up);
    cfg.capture.queue = 1000;
    // Smaller than a single capture: the count limit (1000) is not what drops them.
    cfg.capture.max_queue_bytes = 100;
    let running = mlmon::server::start_with(cfg, vec![Arc::new(BlockedSink(released.clone()))])
        .await
        .unwrap();
    let c = reqwest::Client::new();
    for _ in 0..10 {
        let r = c
            .post(format!("http://{}/v1/models/m:predict", running.proxy_addr))
            .body(r#"{"instances":[[1.0]]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let m = scrape(running.admin_addr).await;
    let dropped = value(
        &m,
        "mlmon_capture_dropped_total",
        &[("reason", "queue_full")],
    )
    .unwrap();
    assert!(
        dropped >= 7.0,
        "dropped {dropped} of 10 with a 130-byte budget"
    );
    released.store(true, Ordering::Release);
    running.shutdown();
    running.wait().await;
}

/// The signal tests wait on: every proxied exchange is counted once when its analysis is
/// done, failed ones too, and API records once each.
#[tokio::test]
async fn analysed_counts_each_exchange_once() {
    let up = upstream(|req: Request<hyper::body::Incoming>| async move {
        let status = if req.headers().contains_key("x-fail") {
            500
        } else {
            200
        };
        Response::builder()
            .status(status)
            .body(full(r#"{"predictions":[1]}"#))
            .unwrap()
    })
    .await;
    let running = mlmon::server::start(config(up)).await.unwrap();
    assert_eq!(running.state.analysed(), 0);
    let c = reqwest::Client::new();
    for fail in [false, true, false] {
        let mut r = c
            .post(format!("http://{}/v2/models/m/infer", running.proxy_addr))
            .body(r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1.0]}]}"#);
        if fail {
            r = r.header("x-fail", "1");
        }
        r.send().await.unwrap();
    }
    crate::common::analysed(&running, 3).await;
    let r = c
        .post(format!(
            "http://{}/api/v1/predictions/m",
            running.admin_addr
        ))
        .json(&serde_json::json!([
            {"features": {"x": 1.0}, "prediction": 1},
            {"features": {"x": 2.0}, "prediction": 0}
        ]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    crate::common::analysed(&running, 5).await;
    let m = scrape(running.admin_addr).await;
    assert_eq!(
        value(&m, "mlmon_predictions_total", &[("model", "m")]),
        Some(4.0),
        "2 proxied + 2 posted"
    );
    assert_eq!(running.state.analysed(), 5, "nothing counted twice");
    running.shutdown();
    running.wait().await;
}
