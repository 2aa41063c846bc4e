//! The ingestion API never slows the proxy: `POST /api/v1/predictions` bodies are parsed on a
//! low-priority thread and analysed on the analysis side, through the same bounded queue as
//! proxied traffic (issue "One way in": v1 ran them inside the handler and four parallel
//! 10 000-record posts raised the proxied p99 from 6.5 ms to 1.1 s).
//!
//! Priority alone did not do it on the 2-core Linux 6.18 VMs CI runs on: with the parser and
//! analysis threads at nice 19 or `SCHED_IDLE`, the loaded p99 was 3 ms over idle in every
//! round; the background threads' `background::pause()` (a yield every 50 µs of work) brings
//! it back within 2 ms.
//!
//! A crate of its own: cargo runs test binaries one after another, so no other test loads
//! the CPU while this one measures latency.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{config, records_model, upstream};
use serde_json::{json, Value};

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64) * 0.99).ceil() as usize;
    v[i.saturating_sub(1).min(v.len() - 1)]
}

/// Sequential proxied requests until `stop` says so; latencies in milliseconds.
async fn proxied(
    client: &reqwest::Client,
    proxy: SocketAddr,
    mut stop: impl FnMut(usize) -> bool,
) -> Vec<f64> {
    let mut out = Vec::new();
    let body = json!([{"x": 1.0, "colour": "red"}]).to_string();
    while !stop(out.len()) {
        let t = Instant::now();
        let r = client
            .post(format!("http://{proxy}/predict"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("proxied request");
        assert!(r.status().is_success());
        let _ = r.bytes().await;
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_parallel_10k_record_posts_leave_proxied_p99_within_2ms() {
    let up = upstream(records_model).await;
    let mut cfg = config(up);
    cfg.model.name = "toy".into();
    cfg.admin.token = Some("t".into());
    cfg.capture.queue = 100_000;
    cfg.capture.max_queue_bytes = 512 * 1024 * 1024;
    let running = mlmon::server::start(cfg).await.unwrap();
    let (proxy, admin) = (running.proxy_addr, running.admin_addr);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // Warm up.
    proxied(&client, proxy, |n| n >= 200).await;
    let records: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({"features": {"x": (i % 100) as f64 / 10.0, "colour": "blue", "n": i},
                   "prediction": i % 2, "probabilities": [0.3, 0.7]})
        })
        .collect();
    let body = Value::Array(records).to_string();
    // A latency bound on a shared machine: the best of three rounds (idle p99, then p99
    // while 4 x 10 000 records are posted and analysed) must meet it. A regression to
    // analysing in the handler adds hundreds of milliseconds to every round.
    let mut rounds = Vec::new();
    for round in 0..3 {
        let idle_p99 = p99(proxied(&client, proxy, |n| n >= 1500).await);
        let before = running.state.analysed();
        // The posting client runs on a thread and runtime of its own, as another process
        // would: its JSON work must not land on the workers that time proxied requests.
        let posting = {
            let body = body.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("client runtime");
                rt.block_on(async move {
                    let c = reqwest::Client::builder()
                        .no_proxy()
                        .build()
                        .expect("client");
                    let posts = (0..4).map(|_| {
                        let c = c.clone();
                        let body = body.clone();
                        async move {
                            let r = c
                                .post(format!("http://{admin}/api/v1/predictions/batch"))
                                .bearer_auth("t")
                                .header("content-type", "application/json")
                                .body(body)
                                .send()
                                .await
                                .expect("post");
                            let status = r.status().as_u16();
                            let v: Value = r.json().await.expect("json answer");
                            (status, v)
                        }
                    });
                    futures_util::future::join_all(posts).await
                })
            })
        };
        // Proxied traffic while the posts are parsed and their 40 000 rows analysed (at
        // least 1 500 requests, at most 30 s).
        let started = Instant::now();
        let state = running.state.clone();
        let loaded = proxied(&client, proxy, |n| {
            let busy = state.analysed() < before + 40_000;
            let go_on = started.elapsed() < Duration::from_secs(30) && (n < 1500 || busy);
            !go_on
        })
        .await;
        let answers = tokio::task::spawn_blocking(move || posting.join())
            .await
            .expect("join")
            .expect("posting thread");
        for (status, v) in answers {
            assert_eq!(status, 202, "{v}");
            assert_eq!(v["accepted"], 10_000);
        }
        // Everything accepted is analysed.
        tokio::time::timeout(
            Duration::from_secs(120),
            running.wait_analysed(before + 40_000),
        )
        .await
        .expect("the 40 000 posted rows are analysed");
        let loaded_p99 = p99(loaded.clone());
        eprintln!(
            "round {round}: proxied p99 idle {idle_p99:.3} ms, during 4 x 10 000-record posts {loaded_p99:.3} ms ({} requests)",
            loaded.len()
        );
        rounds.push((idle_p99, loaded_p99));
        if loaded_p99 <= idle_p99 + 2.0 {
            break;
        }
    }
    assert!(
        rounds.iter().any(|(idle, loaded)| *loaded <= idle + 2.0),
        "proxied p99 during ingestion more than 2 ms over idle in every round (idle, loaded ms): {rounds:?}"
    );
    running.shutdown();
    running.wait().await;
}
