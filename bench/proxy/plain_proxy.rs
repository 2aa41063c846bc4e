//! The baseline of `make bench` (`bench/proxy/run.py`): a plain hyper reverse proxy with no
//! monitoring at all.
//!
//! It does what any production HTTP proxy does and nothing more, so that the difference
//! between it and `mlmon serve` is the cost of monitoring: the same server stack as mlmon
//! (hyper-util's `auto` builder, HTTP/1.1 keep-alive and h2c, `TCP_NODELAY`), the same pooled
//! hyper-util client with the same settings as `mlmon::proxy::upstream_client` under the
//! default configuration, hop-by-hop headers removed both ways (mlmon's own function),
//! an upstream timeout, and JSON 502/504 answers. It does not tee bodies, time requests,
//! generate request ids or update any metric.
//!
//! Same runtime settings as mlmon: a multi-threaded tokio runtime with one worker per CPU
//! the process may run on. It binds loopback addresses only.
//!
//! ```text
//! cargo run --release --example plain_proxy -- --listen 127.0.0.1:0 --upstream http://127.0.0.1:8080
//! ```
//!
//! The first line on stdout is `listening on ADDR`, with the port actually bound.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::uri::{Authority, Scheme};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mlmon::proxy::remove_hop_by_hop;
use tokio::net::TcpListener;

/// The upstream request timeout (mlmon's `proxy.upstream_timeout` default).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// What the proxy answers with: the upstream's body, or a small JSON error.
type Body = Either<Incoming, Full<Bytes>>;

/// Shared by all connections.
struct Proxy {
    /// Pooled upstream client.
    client: Client<HttpConnector, Incoming>,
    /// Scheme of the upstream (`http`).
    scheme: Scheme,
    /// Host and port of the upstream.
    authority: Authority,
}

impl Proxy {
    fn new(upstream: &Uri) -> Result<Proxy, String> {
        let scheme = upstream
            .scheme()
            .cloned()
            .ok_or_else(|| format!("--upstream {upstream}: no scheme"))?;
        if scheme != Scheme::HTTP {
            return Err(format!("--upstream {upstream}: only http:// is supported"));
        }
        let authority = upstream
            .authority()
            .cloned()
            .ok_or_else(|| format!("--upstream {upstream}: no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "--upstream {upstream}: the benchmark proxy forwards to loopback addresses only"
            ));
        }
        // The same settings as `mlmon::proxy::upstream_client` with the default config.
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .build(connector);
        Ok(Proxy {
            client,
            scheme,
            authority,
        })
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let (mut parts, body) = req.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        let pq = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/")
            .to_string();
        parts.uri = match Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
        {
            Ok(uri) => uri,
            Err(_) => return Ok(error(StatusCode::BAD_REQUEST, "bad request URI")),
        };
        parts.version = Version::HTTP_11;
        let forwarded = Request::from_parts(parts, body);
        match tokio::time::timeout(UPSTREAM_TIMEOUT, self.client.request(forwarded)).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                Ok(Response::from_parts(parts, Either::Left(body)))
            }
            Ok(Err(_)) => Ok(error(StatusCode::BAD_GATEWAY, "upstream unreachable")),
            Err(_) => Ok(error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out")),
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = format!(r#"{{"error":"{message}","status":{}}}"#, status.as_u16());
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `--listen ADDR` (default `127.0.0.1:0`) and `--upstream URL` (required).
struct Args {
    listen: SocketAddr,
    upstream: Uri,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut listen = String::from("127.0.0.1:0");
    let mut upstream = None;
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--listen" => listen = value("--listen")?,
            "--upstream" => upstream = Some(value("--upstream")?),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: --listen ADDR --upstream URL)"
                ))
            }
        }
    }
    let listen: SocketAddr = listen
        .parse()
        .map_err(|e| format!("--listen {listen:?}: {e}"))?;
    if !listen.ip().is_loopback() {
        return Err(format!(
            "--listen {listen}: the benchmark proxy binds loopback addresses only"
        ));
    }
    let upstream = upstream.ok_or_else(|| "--upstream URL is required".to_string())?;
    let upstream: Uri = upstream
        .parse()
        .map_err(|e| format!("--upstream {upstream:?}: {e}"))?;
    Ok(Args { listen, upstream })
}

async fn serve(args: Args) -> Result<(), String> {
    let proxy = Arc::new(Proxy::new(&args.upstream)?);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {bound}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
    }
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off and keep serving.
                eprintln!("plain_proxy: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        let svc = hyper::service::service_fn(move |req| proxy.clone().handle(req));
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        tokio::spawn(async move {
            // A client closing its connection mid-request is normal under load.
            let _ = conn.await;
        });
    }
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("plain_proxy: error: {e}");
            return ExitCode::from(2);
        }
    };
    // The same runtime as `mlmon serve` (see `mlmon::cli`).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("plain_proxy: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plain_proxy: error: {e}");
            ExitCode::from(1)
        }
    }
}
