//! The load generator of `make bench` (`bench/run.py`): HTTP/1.1 keep-alive POSTs of one
//! body, either closed loop (every connection sends its next request when the previous
//! answer is in: maximum throughput) or open loop at a fixed rate (wrk2-style: request `i`
//! is due at `start + i / rate` whatever happened before, and its latency is measured from
//! that due time, so a stalled server is charged for the requests it delayed: no coordinated
//! omission).
//!
//! ```text
//! cargo run --release --example bench_loadgen -- --url http://127.0.0.1:8080/v2/models/m/infer \
//!     --body bench/payloads/oip_8x10.json --connections 32 --duration 10 [--rate 5000]
//! ```
//!
//! Prints one JSON object on stdout: requests completed, non-2xx answers, errors, the
//! achieved rate, latency percentiles (ms) and, in open loop, how many requests started
//! more than 1 ms late (all connections busy). Connects to loopback addresses only.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Command-line arguments.
struct Args {
    /// Connection `i` sends to `urls[i % urls.len()]`.
    urls: Vec<Uri>,
    addr: SocketAddr,
    body: Bytes,
    content_type: String,
    connections: usize,
    duration: Duration,
    /// Requests per second; `None` is closed loop.
    rate: Option<f64>,
}

fn args() -> Result<Args, String> {
    let mut urls: Vec<String> = Vec::new();
    let mut body = None;
    let mut content_type = "application/json".to_string();
    let mut connections = 32usize;
    let mut duration = 10.0f64;
    let mut rate = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--url" => urls.push(val()?),
            "--body" => {
                let p = val()?;
                body = Some(std::fs::read(&p).map_err(|e| format!("--body {p}: {e}"))?);
            }
            "--content-type" => content_type = val()?,
            "--connections" => {
                let v = val()?;
                connections = v.parse().map_err(|e| format!("--connections {v:?}: {e}"))?;
            }
            "--duration" => {
                let v = val()?;
                duration = v.parse().map_err(|e| format!("--duration {v:?}: {e}"))?;
            }
            "--rate" => {
                let v = val()?;
                let r: f64 = v.parse().map_err(|e| format!("--rate {v:?}: {e}"))?;
                rate = (r > 0.0).then_some(r);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if urls.is_empty() {
        return Err("--url is required".into());
    }
    let mut uris = Vec::new();
    let mut addr = None;
    for url in &urls {
        let uri: Uri = url.parse().map_err(|e| format!("--url {url:?}: {e}"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| format!("--url {url:?}: no host:port"))?;
        let a: SocketAddr = authority
            .as_str()
            .parse()
            .map_err(|e| format!("--url {url:?}: host must be an IP:port ({e})"))?;
        if !a.ip().is_loopback() {
            return Err(format!("--url {url:?}: loopback addresses only"));
        }
        if addr.is_some_and(|b| b != a) {
            return Err("every --url must name the same host:port".into());
        }
        addr = Some(a);
        uris.push(uri);
    }
    let addr = addr.ok_or("--url is required")?;
    if !(1..=4096).contains(&connections) {
        return Err(format!("--connections {connections} is outside 1..=4096"));
    }
    if !(duration > 0.0 && duration <= 3600.0) {
        return Err(format!("--duration {duration} is outside (0, 3600]"));
    }
    Ok(Args {
        urls: uris,
        addr,
        body: Bytes::from(body.ok_or("--body is required")?),
        content_type,
        connections,
        duration: Duration::from_secs_f64(duration),
        rate,
    })
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    ok: u64,
    non_2xx: u64,
    errors: u64,
    late: u64,
    /// Latencies in microseconds.
    latencies: Vec<u32>,
}

/// Shared by the connections of an open-loop run: the next request's index.
struct Schedule {
    next: AtomicU64,
    start: Instant,
    interval: Duration,
    total: u64,
}

async fn connect(addr: SocketAddr) -> Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(sender)
}

async fn connection(
    args: Arc<Args>,
    index: usize,
    schedule: Option<Arc<Schedule>>,
    deadline: Instant,
) -> Tally {
    let mut t = Tally::default();
    let url = &args.urls[index % args.urls.len()];
    let host = HeaderValue::from_str(url.authority().map(|a| a.as_str()).unwrap_or(""))
        .unwrap_or(HeaderValue::from_static("localhost"));
    let ct = HeaderValue::from_str(&args.content_type)
        .unwrap_or(HeaderValue::from_static("application/json"));
    let path = url
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut sender = None;
    loop {
        // When is this request due (open loop), or now (closed loop)?
        let due = match &schedule {
            Some(s) => {
                let i = s.next.fetch_add(1, Ordering::Relaxed);
                if i >= s.total {
                    break;
                }
                let due = s.start + s.interval.mul_f64(i as f64);
                let now = Instant::now();
                // A server far behind the schedule: stop rather than run on unbounded.
                if now > deadline + Duration::from_secs(5) {
                    break;
                }
                if due > now {
                    tokio::time::sleep_until(due.into()).await;
                } else if now - due > Duration::from_millis(1) {
                    t.late += 1;
                }
                due
            }
            None => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                now
            }
        };
        if sender.is_none() {
            sender = connect(args.addr).await;
        }
        let Some(s) = sender.as_mut() else {
            t.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut req = Request::new(Full::new(args.body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = path.parse().unwrap_or_else(|_| Uri::from_static("/"));
        req.headers_mut().insert(HOST, host.clone());
        req.headers_mut().insert(CONTENT_TYPE, ct.clone());
        let ok = match s.ready().await {
            Ok(()) => match s.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.into_body().collect().await {
                        Ok(_) => Some(status.is_success()),
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            },
            Err(_) => None,
        };
        match ok {
            Some(true) => {
                t.ok += 1;
                let us = due.elapsed().as_micros().min(u32::MAX as u128) as u32;
                t.latencies.push(us);
            }
            Some(false) => t.non_2xx += 1,
            None => {
                t.errors += 1;
                sender = None;
            }
        }
    }
    t
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn run(args: Args) -> serde_json::Value {
    let args = Arc::new(args);
    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + args.duration;
    let schedule = args.rate.map(|r| {
        Arc::new(Schedule {
            next: AtomicU64::new(0),
            start,
            interval: Duration::from_secs_f64(1.0 / r),
            total: (r * args.duration.as_secs_f64()).round() as u64,
        })
    });
    tokio::time::sleep_until(start.into()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.connections {
        tasks.spawn(connection(args.clone(), i, schedule.clone(), deadline));
    }
    let mut all = Tally::default();
    while let Some(r) = tasks.join_next().await {
        if let Ok(t) = r {
            all.ok += t.ok;
            all.non_2xx += t.non_2xx;
            all.errors += t.errors;
            all.late += t.late;
            all.latencies.extend(t.latencies);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    let l = &all.latencies;
    serde_json::json!({
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "rate": args.rate,
        "connections": args.connections,
        "seconds": elapsed,
        "completed": all.ok,
        "non_2xx": all.non_2xx,
        "errors": all.errors,
        "late": all.late,
        "rps": all.ok as f64 / elapsed,
        "latency_ms": {
            "p50": percentile(l, 0.5),
            "p90": percentile(l, 0.9),
            "p99": percentile(l, 0.99),
            "max": percentile(l, 1.0),
        },
    })
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_loadgen: error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench_loadgen: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let out = rt.block_on(run(args));
    println!("{out}");
    ExitCode::SUCCESS
}
