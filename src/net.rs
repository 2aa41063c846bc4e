//! Serving HTTP on a listener within the limits of SPEC section 9, for both ports.
//!
//! - **Connection cap** (`server.max_connections`): a connection is accepted only with a
//!   permit; past the cap new connections wait in the kernel's backlog (no file
//!   descriptor, no memory). A port may keep a small `reserve` past the cap: connections
//!   there are served with one-second timeouts and no keep-alive, so that a liveness probe
//!   (`/healthz`) still gets in while slow clients hold every normal slot.
//! - **Header read timeout** (`server.header_timeout`): from accept to the first byte, and
//!   from the start of each request head (HTTP/1) to its end; idle keep-alive connections
//!   are closed after the same time.
//! - **Body idle timeout** (`server.body_timeout`): a request body that sends nothing for
//!   this long while the service waits for it fails with [`BodyTimeout`].
//! - **Shutdown**: stop accepting, let in-flight requests finish for at most `grace`, then
//!   close what is left (endless event streams, stalled uploads) and return.
//!
//! HTTP/1.1 and HTTP/2 with prior knowledge (h2c) are both served on every port.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::Config;
use crate::shutdown::Shutdown;

/// A boxed error, as hyper and axum take them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body every service behind [`serve`] receives.
pub type Body = IdleTimeout<Incoming>;

/// Connections the admin port serves past its cap (short timeouts, no keep-alive).
pub const ADMIN_RESERVE: usize = 64;
/// Header and body timeouts of connections served from the reserve.
const RESERVE_TIMEOUT: Duration = Duration::from_secs(1);

/// The limits one port is served with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Which port, for logs (`proxy`, `admin`).
    pub name: &'static str,
    /// Time allowed from accept to the first byte, and for each request head.
    pub header_timeout: Duration,
    /// Longest silence of a request body the service is waiting for.
    pub body_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Connections accepted past the cap, served with one-second timeouts and no keep-alive.
    pub reserve: usize,
    /// How long in-flight requests may finish after shutdown starts.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// The proxy port's limits from `cfg`.
    pub fn proxy(cfg: &Config) -> Limits {
        Limits {
            name: "proxy",
            header_timeout: cfg.server.header_timeout,
            body_timeout: cfg.server.body_timeout,
            max_connections: cfg.server.max_connections,
            reserve: 0,
            shutdown_grace: cfg.proxy.shutdown_grace,
        }
    }

    /// The admin port's limits from `cfg`.
    pub fn admin(cfg: &Config) -> Limits {
        Limits {
            name: "admin",
            header_timeout: cfg.server.header_timeout,
            body_timeout: cfg.server.body_timeout,
            max_connections: cfg.server.admin_max_connections,
            reserve: ADMIN_RESERVE,
            shutdown_grace: cfg.proxy.shutdown_grace,
        }
    }
}

/// Serves `service` on `listener` within `limits` until `shutdown` fires, then drains for
/// at most `limits.shutdown_grace` and closes the remaining connections. Returns when
/// every connection is closed (and `service`, with whatever it holds, is dropped).
///
/// The service gets request bodies wrapped in [`IdleTimeout`]; an axum `Router` fits
/// as it is, a hyper-style handler through `tower::service_fn`.
pub async fn serve<S, B>(listener: TcpListener, service: S, limits: Limits, mut shutdown: Shutdown)
where
    S: tower::Service<Request<Body>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let normal = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let reserve = Arc::new(Semaphore::new(limits.reserve));
    let graceful = GracefulShutdown::new();
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        // Forget connections that have ended.
        while conns.try_join_next().is_some() {}
        // A slot first: past the cap the next connection waits in the backlog.
        let slot = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            p = normal.clone().acquire_owned() => p.map(|p| (p, false)),
            p = reserve.clone().acquire_owned(), if normal.available_permits() == 0 => {
                p.map(|p| (p, true))
            }
        };
        let Ok((mut permit, mut reserved)) = slot else {
            break;
        };
        let (stream, _peer) = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(port = limits.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if reserved {
            // A normal slot freed while this one waited for the connection.
            if let Ok(p) = normal.clone().try_acquire_owned() {
                permit = p;
                reserved = false;
            }
        }
        let _ = stream.set_nodelay(true);
        let (header_timeout, body_timeout) = if reserved {
            (
                limits.header_timeout.min(RESERVE_TIMEOUT),
                limits.body_timeout.min(RESERVE_TIMEOUT),
            )
        } else {
            (limits.header_timeout, limits.body_timeout)
        };
        let svc = service.clone();
        let hyper_svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            svc.clone()
                .oneshot(req.map(|b| IdleTimeout::new(b, body_timeout)))
        });
        let port = limits.name;
        let builder = builder(header_timeout, !reserved);
        let watcher = graceful.watcher();
        conns.spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(header_timeout, first_bytes(&stream)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) | Ok(Err(_)) => return,
                Err(_) => {
                    tracing::debug!(port, "connection sent nothing within the header timeout");
                    return;
                }
            }
            let conn = builder
                .serve_connection(TokioIo::new(stream), hyper_svc)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(port, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = conns.len();
    let grace = limits.shutdown_grace;
    tokio::select! {
        _ = graceful.shutdown() => {
            tracing::debug!(port = limits.name, "connections drained");
        }
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(port = limits.name, ?grace, open, "shutdown grace expired; closing the connections left");
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// The connection builder: HTTP/1 with the header timeout, and h2c.
fn builder(header_timeout: Duration, keep_alive: bool) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(keep_alive);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    b
}

/// The HTTP/2 client preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits until the connection has sent enough bytes to tell HTTP/1 from HTTP/2 (the
/// version sniffing of hyper-util has no timeout of its own). False when it closed first.
async fn first_bytes(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buf = [0u8; 24];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(false);
        }
        if n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] {
            return Ok(true);
        }
        // A partial preface: peeking again returns at once, so wait a little.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A request body went silent for longer than `server.body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no body bytes for {0:?} (server.body_timeout)")]
pub struct BodyTimeout(pub Duration);

/// Whether a body error (through any wrapping) is a [`BodyTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A request body that fails with [`BodyTimeout`] when its sender stays silent for
/// `timeout` while someone waits for it. Time spent by the reader elsewhere (e.g. waiting
/// for the upstream to accept more) does not count.
#[derive(Debug)]
pub struct IdleTimeout<B> {
    inner: B,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
}

impl<B> IdleTimeout<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, timeout: Duration) -> Self {
        IdleTimeout {
            inner,
            timeout,
            sleep: None,
            waiting: false,
        }
    }
}

impl<B> HttpBody for IdleTimeout<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                if !this.waiting {
                    this.waiting = true;
                    match this.sleep.as_mut() {
                        Some(s) => s.as_mut().reset(deadline),
                        None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                if let Some(s) = this.sleep.as_mut() {
                    if s.as_mut().poll(cx).is_ready() {
                        this.waiting = false;
                        return Poll::Ready(Some(Err(Box::new(BodyTimeout(this.timeout)))));
                    }
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::{self, Trigger};
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::net::SocketAddr;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type TestBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

    fn limits(max: usize, reserve: usize) -> Limits {
        Limits {
            name: "test",
            header_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_millis(300),
            max_connections: max,
            reserve,
            shutdown_grace: Duration::from_millis(400),
        }
    }

    /// `/stream` answers an endless event stream, `/upload` reads the whole body first
    /// (408 when it times out), anything else answers `ok` at once.
    async fn handler(req: Request<Body>) -> Result<Response<TestBody>, Infallible> {
        let full = |status: u16, s: &'static str| {
            let mut r = Response::new(
                Full::new(Bytes::from_static(s.as_bytes()))
                    .map_err(|e| match e {})
                    .boxed(),
            );
            *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
            r
        };
        match req.uri().path() {
            "/stream" => {
                let s = futures_util::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some((
                        Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"data: x\n\n"))),
                        (),
                    ))
                });
                Ok(Response::new(StreamBody::new(s).boxed()))
            }
            "/upload" => match req.into_body().collect().await {
                Ok(_) => Ok(full(200, "read")),
                Err(e) if is_body_timeout(e.as_ref()) => Ok(full(408, "timeout")),
                Err(_) => Ok(full(400, "error")),
            },
            _ => Ok(full(200, "ok")),
        }
    }

    async fn start(l: Limits) -> (SocketAddr, Trigger, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (trigger, shutdown) = shutdown::channel();
        let svc = tower::service_fn(handler);
        let task = tokio::spawn(serve(listener, svc, l, shutdown));
        (addr, trigger, task)
    }

    /// Sends `raw` and reads until the server closes or `within` passes.
    async fn exchange(addr: SocketAddr, raw: &[u8], within: Duration) -> (String, bool) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let closed = loop {
            match tokio::time::timeout(within, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
                Err(_) => break false,
            }
        };
        (String::from_utf8_lossy(&out).into_owned(), closed)
    }

    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn silent_and_slow_connections_are_closed_after_the_header_timeout() {
        let (addr, _t, _task) = start(limits(100, 0)).await;
        let started = Instant::now();
        let (_, closed) = exchange(addr, b"", Duration::from_secs(3)).await;
        assert!(closed, "an idle connection stays open");
        assert!(started.elapsed() < Duration::from_secs(2));
        // Slowloris: half a request head, then nothing.
        let (_, closed) = exchange(
            addr,
            b"GET / HTTP/1.1\r\nhost: x\r\n",
            Duration::from_secs(3),
        )
        .await;
        assert!(closed, "a half-sent request head stays open");
        // A partial HTTP/2 preface is not a way around the timeout.
        let (_, closed) = exchange(addr, b"PRI * HTTP", Duration::from_secs(3)).await;
        assert!(closed);
        let (answer, _) = exchange(addr, GET, Duration::from_secs(3)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn a_stalled_body_fails_with_body_timeout() {
        let (addr, _t, _task) = start(limits(100, 0)).await;
        let started = Instant::now();
        let (answer, _) = exchange(
            addr,
            b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789",
            Duration::from_secs(3),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn past_the_cap_connections_wait_and_the_reserve_answers() {
        let mut l = limits(2, 0);
        l.header_timeout = Duration::from_secs(5);
        let (addr, _t, _task) = start(l.clone()).await;
        // Two slowloris connections hold both slots.
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            held.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (answer, _) = exchange(addr, GET, Duration::from_millis(500)).await;
        assert!(answer.is_empty(), "served past the cap: {answer}");
        // A slot frees: the waiting connection is served.
        held.pop();
        let waiting = tokio::spawn(exchange(addr, GET, Duration::from_secs(3)));
        let (answer, _) = waiting.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        // With a reserve, a probe gets in while the slots are held.
        let (addr, _t, _task) = start(Limits { reserve: 1, ..l }).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            held.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let (answer, _) = exchange(addr, GET, Duration::from_secs(2)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(started.elapsed() < Duration::from_millis(900));
        // A slow client in the reserve is cut after one second, not the port's timeout.
        let started = Instant::now();
        let (_, closed) = exchange(addr, b"GET / HTTP/1.1\r\n", Duration::from_secs(4)).await;
        assert!(closed && started.elapsed() < Duration::from_millis(2500));
    }

    #[tokio::test]
    async fn shutdown_ends_open_streams_and_stalled_uploads_within_the_grace() {
        let (addr, trigger, task) = start(limits(100, 0)).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let mut upload = TcpStream::connect(addr).await.unwrap();
        upload
            .write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\nabc")
            .await
            .unwrap();
        // Keep the upload alive (a byte at a time, under the body timeout).
        let feeder = tokio::spawn(async move {
            for _ in 0..40 {
                if upload.write_all(b"a").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        trigger.fire();
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .expect("serve returns within the grace")
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(350),
            "the grace was not given"
        );
        // The stream is closed.
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(_)) => continue,
                Err(_) => break false,
            }
        };
        assert!(closed);
        feeder.abort();
        // Nothing listens any more.
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn shutdown_without_connections_is_immediate() {
        let (_addr, trigger, task) = start(limits(100, 0)).await;
        let started = Instant::now();
        trigger.fire();
        task.await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(300));
    }
}
