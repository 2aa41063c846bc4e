//! Shared helpers of the integration tests: a real upstream server on 127.0.0.1:0, a
//! started sidecar, waits bounded in time on the sidecar's own signals, and a parser for
//! the Prometheus text exposition.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use mlmon::config::{Config, Overrides};

/// The body type test upstreams answer with.
pub type UpBody = BoxBody<Bytes, Infallible>;

/// Starts an upstream HTTP/1.1 + h2c server on 127.0.0.1:0 with `handler`.
pub async fn upstream<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<UpBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A config for a sidecar on ephemeral ports in front of `upstream`.
pub fn config(upstream: SocketAddr) -> Config {
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        admin_listen: Some("127.0.0.1:0".into()),
        upstream: Some(format!("http://{upstream}")),
        ..Default::default()
    };
    let mut cfg = Config::load_from(None, &overrides, std::iter::empty()).unwrap();
    // Most tests post predictions, feedback and baselines without a token; the auth tests
    // set admin.token (or unset this) themselves.
    cfg.admin.allow_unauthenticated = true;
    cfg
}

/// The longest any test waits for the sidecar before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// Waits until `running` has analysed at least `n` exchanges since it started (every
/// request through the proxy counts, whatever its status; every record posted to the
/// ingestion API; every paired event); fails after [`WAIT`].
pub async fn analysed(running: &mlmon::server::Running, n: u64) {
    if tokio::time::timeout(WAIT, running.wait_analysed(n))
        .await
        .is_err()
    {
        panic!(
            "{} of {n} exchanges analysed after {WAIT:?}",
            running.state.analysed()
        );
    }
}

/// Polls `probe` until it returns `Ok`, and returns that value; fails after [`WAIT`] with
/// `what` and the last `Err` (what the probe saw instead). For conditions the sidecar has no
/// signal for: a periodic refresh, a TTL, a background computation.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("{what}: not after {WAIT:?}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// One sample of the exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sample name, e.g. `mlmon_requests_total`.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses the Prometheus text format (and OpenMetrics samples) into samples.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.find('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some(i) => {
                let body = series[i + 1..].strip_suffix('}').expect("closing brace");
                (series[..i].to_string(), parse_labels(body))
            }
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let eq = rest.find('=').expect("label =");
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        assert!(after.starts_with('"'), "label value quoted: {body}");
        let mut value = String::new();
        let mut chars = after[1..].char_indices();
        let mut end = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(match n {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 2;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        rest = after[end..].trim_start_matches(',');
    }
    labels
}

/// The value of the one sample named `name` whose labels include `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?} matches {} samples",
        matching.len()
    );
    matching.first().map(|s| s.value)
}

/// Fetches and parses `/metrics`.
pub async fn scrape(admin: SocketAddr) -> Vec<Sample> {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    parse_exposition(&text)
}

/// A records-format classifier upstream: one prediction per row, `1` when `x > 0`.
pub async fn records_model(req: hyper::Request<Incoming>) -> Response<UpBody> {
    use http_body_util::BodyExt;
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let rows: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let preds: Vec<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| i64::from(r["x"].as_f64().unwrap_or(0.0) > 0.0))
        .collect();
    Response::builder()
        .header("content-type", "application/json")
        .body(
            http_body_util::Full::new(Bytes::from(
                serde_json::json!({ "predictions": preds }).to_string(),
            ))
            .boxed(),
        )
        .unwrap()
}

/// Starts `mlmon demo` from the binary on ephemeral ports with `args` added, and returns
/// the child and the metrics URL it printed.
pub fn spawn_demo(args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlmon"))
        .arg("demo")
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let metrics_url = loop {
        let line = lines.next().expect("demo printed its URLs").unwrap();
        if let Some(rest) = line.trim().strip_prefix("metrics:") {
            break rest.trim().to_string();
        }
    };
    // Keep reading: a closed pipe would fail the demo's last line ("stopped").
    std::thread::spawn(move || lines.for_each(drop));
    (child, metrics_url)
}

/// The body of a plain blocking HTTP/1.0 GET of `http://host:port/path`.
pub fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(hostport).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok()?;
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}
