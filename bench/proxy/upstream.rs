//! A minimal model server for `make bench` (`bench/proxy/run.py`).
//!
//! It answers every `POST`/`PUT` with one fixed Open Inference Protocol v2 response after
//! reading the whole request body, as a real model server would, and answers `GET`
//! (health probes) with `200 ok`. It does no inference work at all, so that what the
//! benchmark measures is the cost of the proxy in front of it, not of a model.
//!
//! HTTP/1.1 with keep-alive, a multi-threaded tokio runtime (one worker per CPU the process
//! may run on, so `taskset -c N` gives it one). It binds loopback addresses only.
//!
//! ```text
//! cargo run --release --example bench_upstream -- --listen 127.0.0.1:0
//! ```
//!
//! The first line on stdout is `listening on ADDR`, with the port actually bound.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The answer to every inference request: 4 rows, a class and class probabilities each,
/// shaped like MLServer's answer for a scikit-learn classifier.
const RESPONSE: &str = r#"{"model_name":"bench","model_version":"1","id":"bench","parameters":{"content_type":"np"},"outputs":[{"name":"predict","shape":[4,1],"datatype":"INT64","parameters":{"content_type":"np"},"data":[0,1,1,0]},{"name":"predict_proba","shape":[4,2],"datatype":"FP64","parameters":{"content_type":"np"},"data":[0.91,0.09,0.22,0.78,0.35,0.65,0.87,0.13]}]}"#;

/// The bodies of `--response [PATH_PREFIX=]FILE`: (prefix, body), longest prefix first; an
/// empty prefix matches every path. Without any, every answer is [`RESPONSE`].
static CUSTOM_RESPONSES: std::sync::OnceLock<Vec<(String, Bytes)>> = std::sync::OnceLock::new();

fn response_for(path: &str) -> Bytes {
    CUSTOM_RESPONSES
        .get()
        .and_then(|all| all.iter().find(|(p, _)| path.starts_with(p.as_str())))
        .map(|(_, b)| b.clone())
        .unwrap_or(Bytes::from_static(RESPONSE.as_bytes()))
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body, json) = match *req.method() {
        Method::POST | Method::PUT => {
            let answer = response_for(req.uri().path());
            // Read the body to its end like a model server must before it can answer.
            match req.into_body().collect().await {
                Ok(_) => (StatusCode::OK, answer, true),
                Err(_) => (
                    StatusCode::BAD_REQUEST,
                    Bytes::from_static(br#"{"error":"unreadable body"}"#),
                    true,
                ),
            }
        }
        Method::GET | Method::HEAD => (StatusCode::OK, Bytes::from_static(b"ok"), false),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(br#"{"error":"method not allowed"}"#),
            true,
        ),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let ct = if json {
        "application/json"
    } else {
        "text/plain"
    };
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}

/// Parses `--listen ADDR` (default `127.0.0.1:0`; only loopback addresses are accepted) and
/// `--response [PATH_PREFIX=]FILE` (repeatable: the body of the inference answers whose path
/// starts with the prefix; default the 4-row answer above).
fn listen_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = String::from("127.0.0.1:0");
    let mut responses: Vec<(String, Bytes)> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                addr = args
                    .next()
                    .ok_or_else(|| "--listen needs an address".to_string())?
            }
            "--response" => {
                let spec = args
                    .next()
                    .ok_or_else(|| "--response needs [PATH_PREFIX=]FILE".to_string())?;
                let (prefix, path) = spec.split_once('=').unwrap_or(("", spec.as_str()));
                let body = std::fs::read(path).map_err(|e| format!("--response {path}: {e}"))?;
                responses.push((prefix.to_string(), Bytes::from(body)));
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: --listen ADDR [--response [PATH_PREFIX=]FILE]...)"
                ))
            }
        }
    }
    responses.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    let _ = CUSTOM_RESPONSES.set(responses);
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|e| format!("--listen {addr:?}: {e}"))?;
    if !parsed.ip().is_loopback() {
        return Err(format!(
            "--listen {addr:?}: the benchmark upstream binds loopback addresses only"
        ));
    }
    Ok(parsed)
}

async fn serve(addr: SocketAddr) -> Result<(), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--listen {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--listen {addr}: {e}"))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {bound}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off and keep serving.
                eprintln!("bench_upstream: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle));
            // A client closing its connection mid-request is normal under load.
            let _ = conn.await;
        });
    }
}

fn main() -> ExitCode {
    let addr = match listen_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_upstream: error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench_upstream: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_upstream: error: {e}");
            ExitCode::from(1)
        }
    }
}
