//! Shadow traffic end to end (SPEC section 10): a real primary and a real shadow upstream on
//! 127.0.0.1. The client's answers stay the primary's, byte for byte, however slow or
//! broken the shadow is; the shadow's outcomes are counted; agreement and prediction PSI
//! equal an independent computation from the rows sent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

use crate::common::{analysed, config, eventually, scrape, upstream, value, UpBody};

/// A records-format classifier: `1` when `x > cut`, else `0`, after `delay`; `status` for
/// its answer.
async fn classifier(
    req: Request<Incoming>,
    cut: f64,
    delay: Duration,
    status: u16,
) -> Response<UpBody> {
    let body = req.into_body().collect().await.unwrap().to_bytes();
    tokio::time::sleep(delay).await;
    answer(&body, cut, status)
}

/// The classifier's answer to `body`.
fn answer(body: &[u8], cut: f64, status: u16) -> Response<UpBody> {
    let rows: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let preds: Vec<i64> = rows
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| i64::from(r["x"].as_f64().unwrap_or(0.0) > cut))
                .collect()
        })
        .unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json!({ "predictions": preds }).to_string())).boxed())
        .unwrap()
}

async fn primary() -> SocketAddr {
    upstream(|r| classifier(r, 0.0, Duration::ZERO, 200)).await
}

/// `n` batches of rows `x` spread over [-1, 1].
fn batches(n: usize, rows: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|b| {
            (0..rows)
                .map(|i| -1.0 + 2.0 * ((b * rows + i) % 97) as f64 / 96.0)
                .collect()
        })
        .collect()
}

fn body(xs: &[f64]) -> Vec<u8> {
    serde_json::to_vec(&xs.iter().map(|x| json!({ "x": x })).collect::<Vec<_>>()).unwrap()
}

/// Posts `body` to `addr` and returns the answer's status, bytes and how long it took.
async fn post(addr: SocketAddr, body: Vec<u8>) -> (u16, Bytes, Duration) {
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/predict"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    (status, bytes, started.elapsed())
}

fn shadow_counts(m: &[crate::common::Sample], model: &str) -> BTreeMap<&'static str, f64> {
    ["ok", "error", "timeout", "skipped"]
        .into_iter()
        .map(|r| {
            (
                r,
                value(
                    m,
                    "mlmon_shadow_requests_total",
                    &[("model", model), ("result", r)],
                )
                .unwrap_or(0.0),
            )
        })
        .collect()
}

/// PSI of SPEC section 5 written out here, apart from the crate: shadow label shares
/// against primary label shares, each share floored at 1e-4.
fn psi(primary: &[i64], shadow: &[i64]) -> f64 {
    let share = |v: &[i64], l: i64| v.iter().filter(|p| **p == l).count() as f64 / v.len() as f64;
    [0, 1]
        .into_iter()
        .map(|l| {
            let (e, a) = (share(primary, l).max(1e-4), share(shadow, l).max(1e-4));
            (a - e) * (a / e).ln()
        })
        .sum()
}

#[tokio::test]
async fn a_slow_shadow_never_delays_the_client_and_its_answers_are_compared() {
    let up = primary().await;
    // The candidate: a different cut (0.3), and 1.5 s per answer.
    let shadow = upstream(|r| classifier(r, 0.3, Duration::from_millis(1500), 200)).await;
    let mut cfg = config(up);
    cfg.shadow.upstream = Some(format!("http://{shadow}"));
    cfg.shadow.concurrency = 32;
    let running = mlmon::server::start(cfg).await.unwrap();

    let sent = batches(30, 10);
    let started = Instant::now();
    for xs in &sent {
        let (status, got, took) = post(running.proxy_addr, body(xs)).await;
        let (_, direct, _) = post(up, body(xs)).await;
        assert_eq!(status, 200);
        assert_eq!(
            got, direct,
            "the client gets the primary's answer, byte for byte"
        );
        assert!(
            took < Duration::from_millis(1000),
            "one request took {took:?}"
        );
    }
    // 30 requests one after the other (and 30 straight to the primary): had any waited for
    // the shadow, 45 s.
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    analysed(&running, 30).await;
    if tokio::time::timeout(crate::common::WAIT, running.state.shadow.wait_compared(30))
        .await
        .is_err()
    {
        panic!(
            "{} of 30 shadow answers compared",
            running.state.shadow.compared()
        );
    }
    running.state.refresh_analyses();
    let m = scrape(running.admin_addr).await;
    let counts = shadow_counts(&m, "default");
    assert_eq!(counts["ok"], 30.0, "{counts:?}");
    assert_eq!(counts["error"] + counts["timeout"] + counts["skipped"], 0.0);
    let n = value(
        &m,
        "mlmon_shadow_duration_seconds_count",
        &[("model", "default")],
    );
    assert_eq!(n, Some(30.0));
    let sum = value(
        &m,
        "mlmon_shadow_duration_seconds_sum",
        &[("model", "default")],
    )
    .unwrap();
    assert!(
        sum >= 30.0 * 1.5,
        "the shadow's own slowness is what is measured: {sum}"
    );
    // The proxy's own latency histogram saw none of it.
    let proxied = value(
        &m,
        "mlmon_request_duration_seconds_sum",
        &[("model", "default")],
    )
    .unwrap();
    assert!(proxied < 30.0 * 0.5, "{proxied}");

    // Independent figures from the rows sent.
    let xs: Vec<f64> = sent.concat();
    let p: Vec<i64> = xs.iter().map(|x| i64::from(*x > 0.0)).collect();
    let s: Vec<i64> = xs.iter().map(|x| i64::from(*x > 0.3)).collect();
    let agree = p.iter().zip(&s).filter(|(a, b)| a == b).count() as f64 / xs.len() as f64;
    assert!(agree < 1.0 && agree > 0.5, "{agree}");
    let got = value(&m, "mlmon_shadow_agreement", &[("model", "default")]).unwrap();
    assert!((got - agree).abs() < 1e-12, "agreement {got} vs {agree}");
    let got = value(&m, "mlmon_shadow_prediction_psi", &[("model", "default")]).unwrap();
    let want = psi(&p, &s);
    assert!((got - want).abs() < 1e-9, "psi {got} vs {want}");
    assert_eq!(
        value(&m, "mlmon_shadow_mean_abs_diff", &[("model", "default")]),
        None
    );
    // The same figures in the API.
    let r: Value = reqwest::get(format!(
        "http://{}/api/v1/models/default/shadow",
        running.admin_addr
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(r["rows"], 300, "{r}");
    assert_eq!(r["task"], "classification");
    running.shutdown();
}

#[tokio::test]
async fn a_failing_or_unreachable_shadow_is_counted_never_seen() {
    let up = primary().await;
    let failing = upstream(|r| classifier(r, 0.0, Duration::ZERO, 500)).await;
    // A port nothing listens on.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    for shadow in [failing, closed] {
        let mut cfg = config(up);
        cfg.shadow.upstream = Some(format!("http://{shadow}"));
        let running = mlmon::server::start(cfg).await.unwrap();
        for xs in batches(10, 5) {
            let (status, got, _) = post(running.proxy_addr, body(&xs)).await;
            let (_, direct, _) = post(up, body(&xs)).await;
            assert_eq!((status, &got), (200, &direct));
        }
        analysed(&running, 10).await;
        let counts = eventually("10 shadow errors", || async {
            let c = shadow_counts(&scrape(running.admin_addr).await, "default");
            if c["error"] == 10.0 {
                Ok(c)
            } else {
                Err(format!("{c:?}"))
            }
        })
        .await;
        assert_eq!(counts["ok"] + counts["timeout"] + counts["skipped"], 0.0);
        // Nothing compared: the shadow never answered 2xx.
        running.state.refresh_analyses();
        let m = scrape(running.admin_addr).await;
        assert_eq!(
            value(&m, "mlmon_shadow_agreement", &[("model", "default")]),
            None
        );
        assert_eq!(
            value(
                &m,
                "mlmon_requests_total",
                &[("model", "default"), ("code", "2xx")]
            ),
            Some(10.0)
        );
        running.shutdown();
    }
}

#[tokio::test]
async fn a_hanging_shadow_times_out_and_the_queue_bound_skips_the_rest() {
    let up = primary().await;
    let hanging = upstream(|r| classifier(r, 0.0, Duration::from_secs(60), 200)).await;
    let mut cfg = config(up);
    cfg.shadow.upstream = Some(format!("http://{hanging}"));
    cfg.shadow.timeout = Duration::from_secs(3);
    cfg.shadow.concurrency = 2;
    cfg.shadow.queue = 3;
    let running = mlmon::server::start(cfg).await.unwrap();
    // One client, 20 requests at once.
    let client = reqwest::Client::new();
    let started = Instant::now();
    let answers = futures_util::future::join_all(batches(20, 2).iter().map(|xs| {
        let req = client
            .post(format!("http://{}/predict", running.proxy_addr))
            .header("content-type", "application/json")
            .body(body(xs));
        async move {
            let sent = Instant::now();
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let got = r.bytes().await.unwrap();
            (status, got, sent.elapsed())
        }
    }))
    .await;
    let sending = started.elapsed();
    for (status, got, took) in answers {
        assert_eq!(status, 200);
        assert!(!got.is_empty());
        // Waiting for the shadow would take its timeout (3 s) at least.
        assert!(took < Duration::from_secs(3), "a client waited {took:?}");
    }
    // Every sampled request ends as a timeout or a skip; none hangs, none is an error.
    let counts = eventually("20 copies timed out or skipped", || async {
        let c = shadow_counts(&scrape(running.admin_addr).await, "default");
        if c["timeout"] + c["skipped"] == 20.0 {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    assert_eq!(counts["ok"] + counts["error"], 0.0);
    if sending < Duration::from_secs(3) {
        // All sent before the first copies timed out: the 3 queued copies, and up to 2 the
        // sender had already taken into flight, were kept; the rest skipped at once.
        assert!(
            (3.0..=5.0).contains(&counts["timeout"]) && counts["skipped"] >= 15.0,
            "{counts:?}"
        );
    } else {
        // A slow machine: slots freed while sending took more copies, but never all.
        assert!(
            counts["skipped"] >= 1.0 && counts["timeout"] >= 2.0,
            "{counts:?}"
        );
    }
    running.shutdown();
}

#[tokio::test]
async fn sample_copies_that_share_and_probes_are_never_copied() {
    let up = primary().await;
    let shadow = upstream(|r| classifier(r, 0.0, Duration::ZERO, 200)).await;
    let mut cfg = config(up);
    cfg.shadow.upstream = Some(format!("http://{shadow}"));
    cfg.shadow.sample = 0.25;
    let running = mlmon::server::start(cfg).await.unwrap();
    for xs in batches(40, 3) {
        post(running.proxy_addr, body(&xs)).await;
    }
    for _ in 0..5 {
        reqwest::get(format!("http://{}/v2/health/ready", running.proxy_addr))
            .await
            .unwrap();
    }
    analysed(&running, 40).await;
    let counts = eventually("10 copies", || async {
        let c = shadow_counts(&scrape(running.admin_addr).await, "default");
        if c["ok"] == 10.0 && running.state.shadow.compared() == 10 {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    assert_eq!(counts["skipped"] + counts["error"] + counts["timeout"], 0.0);
    // Same model, same answers: full agreement, no shift.
    running.state.refresh_analyses();
    let m = scrape(running.admin_addr).await;
    assert_eq!(
        value(&m, "mlmon_shadow_agreement", &[("model", "default")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "mlmon_shadow_prediction_psi", &[("model", "default")]),
        Some(0.0)
    );
    running.shutdown();
}

#[tokio::test]
async fn the_copy_is_the_clients_request_at_shadow_path_and_large_bodies_are_skipped() {
    use std::sync::{Arc, Mutex};
    let up = primary().await;
    let seen: Arc<Mutex<Vec<(String, http::HeaderMap, Bytes)>>> = Arc::default();
    let record = seen.clone();
    let shadow = upstream(move |r: Request<Incoming>| {
        let record = record.clone();
        async move {
            let (parts, body) = r.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let pq = parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            record
                .lock()
                .unwrap()
                .push((pq, parts.headers, body.clone()));
            answer(&body, 0.0, 200)
        }
    })
    .await;
    let mut cfg = config(up);
    cfg.shadow.upstream = Some(format!("http://{shadow}/prefix"));
    cfg.shadow.path = Some("/v2/models/m/versions/2/infer".into());
    cfg.capture.max_body_bytes = 4096;
    let running = mlmon::server::start(cfg).await.unwrap();
    let small = body(&[0.5, -0.5]);
    let r = reqwest::Client::new()
        .post(format!("http://{}/predict?trace=1", running.proxy_addr))
        .header("content-type", "application/json")
        .header("x-request-id", "req-42")
        .header("authorization", "Bearer t")
        .body(small.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Over capture.max_body_bytes: proxied in full, not copied.
    let large = body(&vec![0.25; 1000]);
    assert!(large.len() > 4096);
    let (status, got, _) = post(running.proxy_addr, large.clone()).await;
    let (_, direct, _) = post(up, large).await;
    assert_eq!((status, got), (200, direct));
    // The large exchange is not analysed either (capture_dropped{reason="too_large"}).
    analysed(&running, 1).await;
    let counts = eventually("one copy ok, one skipped", || async {
        let c = shadow_counts(&scrape(running.admin_addr).await, "default");
        if c["ok"] == 1.0 && c["skipped"] == 1.0 {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    assert_eq!(counts["error"] + counts["timeout"], 0.0);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (pq, headers, got) = &seen[0];
    assert_eq!(pq, "/prefix/v2/models/m/versions/2/infer?trace=1");
    assert_eq!(got, &Bytes::from(small));
    assert_eq!(headers["x-request-id"], "req-42");
    assert_eq!(headers["authorization"], "Bearer t");
    assert_eq!(headers["x-mlmon-shadow"], "1");
    assert_eq!(headers["host"], shadow.to_string().as_str());
    running.shutdown();
}
