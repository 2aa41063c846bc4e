//! An open-loop load generator for the shadow benchmark (`bench/shadow/run.py`), for when
//! `oha` is not installed: POSTs one body at a fixed rate over a fixed number of
//! keep-alive HTTP/1.1 connections and prints latency percentiles as JSON.
//!
//! Latency is measured from each request's *scheduled* send time (not from when a
//! connection became free), so a stall is charged to every request it delays: the
//! coordinated-omission correction `oha --latency-correction` applies. Only the timer's own
//! lateness (up to 2 ms: tokio's timer has millisecond resolution) is not charged.
//!
//! ```text
//! cargo run --release --example shadow_load -- --url http://127.0.0.1:8000/v2/models/bench/infer \
//!     --body bench/proxy/infer_request.json --rate 1000 --duration 15 --connections 16
//! ```
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// Timer lateness not charged to the server (tokio's timer has millisecond resolution).
const TIMER_SLACK: Duration = Duration::from_millis(2);

struct Args {
    url: String,
    body: Bytes,
    rate: u64,
    duration: Duration,
    connections: usize,
}

fn parse() -> Result<Args, String> {
    let mut url = None;
    let mut body = None;
    let mut rate = 1000;
    let mut duration = Duration::from_secs(15);
    let mut connections = 16;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--body" => {
                let p = value()?;
                body = Some(Bytes::from(
                    std::fs::read(&p).map_err(|e| format!("--body {p}: {e}"))?,
                ));
            }
            "--rate" => rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--duration" => {
                let s: f64 = value()?.parse().map_err(|e| format!("--duration: {e}"))?;
                duration = Duration::from_secs_f64(s);
            }
            "--connections" => {
                connections = value()?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(Args {
        url: url.ok_or("--url is required")?,
        body: body.ok_or("--body is required")?,
        rate: rate.max(1),
        duration,
        connections: connections.max(1),
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("shadow_load: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_max_idle_per_host(args.connections);
    let client: Client<_, Full<Bytes>> = builder.build_http();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let total = (args.duration.as_secs_f64() * args.rate as f64) as u64;
    let start = Instant::now() + Duration::from_millis(50);
    // The schedule: request i is due at start + i·interval; each connection worker takes
    // the next due request.
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let client = client.clone();
        let next = next.clone();
        let url = args.url.clone();
        let body = args.body.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = start + interval.mul_f64(i as f64);
                tokio::time::sleep_until(due).await;
                // tokio's timer fires up to a millisecond late: lateness within that slack is
                // the generator's, not the server's; a later start (every connection busy,
                // a stall) is charged to the request.
                let woke = Instant::now();
                let from = if woke.saturating_duration_since(due) <= TIMER_SLACK {
                    woke
                } else {
                    due
                };
                let req = match hyper::Request::post(url.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))
                {
                    Ok(r) => r,
                    Err(_) => {
                        errors += 1;
                        continue;
                    }
                };
                match client.request(req).await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        let read = resp.into_body().collect().await.is_ok();
                        if ok && read {
                            lat.push(from.elapsed().as_secs_f64());
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for w in workers {
        if let Ok((l, e)) = w.await {
            lat.extend(l);
            errors += e;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let out = serde_json::json!({
        "completed": lat.len(),
        "errors": errors,
        "rps": lat.len() as f64 / wall.max(1e-9),
        "p50_ms": percentile(&lat, 0.5) * 1000.0,
        "p90_ms": percentile(&lat, 0.9) * 1000.0,
        "p99_ms": percentile(&lat, 0.99) * 1000.0,
        "p999_ms": percentile(&lat, 0.999) * 1000.0,
        "max_ms": lat.last().copied().unwrap_or(f64::NAN) * 1000.0,
    });
    println!("{out}");
    ExitCode::SUCCESS
}
