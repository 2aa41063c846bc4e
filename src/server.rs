//! Runs `mlmon serve`: binds the proxy and admin ports, serves them, starts the
//! application's background work ([`crate::app::spawn_background`]) and drains everything
//! on shutdown. The one module that knows both the application and the admin API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::analysis::Analysis;
pub use crate::app::{load_baselines, AppState};
use crate::config::Config;
use crate::error::StartError;
use crate::proxy::Proxy;
use crate::shutdown::{self, Shutdown, Trigger};

/// A started sidecar.
#[derive(Debug)]
pub struct Running {
    /// Where the proxy listens.
    pub proxy_addr: SocketAddr,
    /// Where the admin server listens.
    pub admin_addr: SocketAddr,
    /// Shared state (for tests and the demo).
    pub state: Arc<AppState>,
    trigger: Trigger,
    tasks: JoinSet<()>,
}

impl Running {
    /// Starts a graceful shutdown.
    pub fn shutdown(&self) {
        self.trigger.fire();
    }

    /// Waits until at least `n` exchanges have been analysed since start.
    pub async fn wait_analysed(&self, n: u64) {
        self.state.wait_analysed(n).await
    }

    /// Waits until every task has stopped.
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { key, addr, source })
}

/// Starts the sidecar; returns once both ports are bound.
pub async fn start(cfg: Config) -> Result<Running, StartError> {
    start_with(cfg, Vec::new()).await
}

/// Starts the sidecar with `extra` analyses fed after the built-in ones (tests, or an
/// embedding program); returns once both ports are bound.
pub async fn start_with(cfg: Config, extra: Vec<Arc<dyn Analysis>>) -> Result<Running, StartError> {
    let cfg = Arc::new(cfg);
    let listen = cfg
        .listen_addr()
        .map_err(|m| StartError::Other(format!("listen: {m}")))?;
    let admin = cfg
        .admin_addr()
        .map_err(|m| StartError::Other(format!("admin_listen: {m}")))?;
    let proxy_listener = bind("listen", listen).await?;
    let admin_listener = bind("admin_listen", admin).await?;
    let proxy_addr = proxy_listener
        .local_addr()
        .map_err(|e| StartError::Other(format!("listen: {e}")))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| StartError::Other(format!("admin_listen: {e}")))?;

    let crate::app::Built {
        state,
        proxy,
        receiver,
    } = crate::app::build(cfg.clone(), extra)?;

    let (trigger, shutdown) = shutdown::channel();
    let mut tasks = JoinSet::new();
    tasks.spawn(serve_proxy(
        proxy_listener,
        proxy,
        shutdown.clone(),
        cfg.proxy.shutdown_grace,
    ));
    let router = crate::api::router(state.clone());
    let mut admin_shutdown = shutdown.clone();
    tasks.spawn(async move {
        let serve = axum::serve(admin_listener, router)
            .with_graceful_shutdown(async move { admin_shutdown.wait().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin server failed");
        }
    });
    crate::app::spawn_background(&state, receiver, &shutdown, &mut tasks);
    tracing::info!(proxy = %proxy_addr, admin = %admin_addr, upstream = %cfg.upstream, "mlmon started");
    Ok(Running {
        proxy_addr,
        admin_addr,
        state,
        trigger,
        tasks,
    })
}

/// Runs the sidecar until SIGTERM/SIGINT, then drains.
pub async fn serve(cfg: Config) -> Result<(), StartError> {
    let running = start(cfg).await?;
    shutdown::os_signal().await;
    running.shutdown();
    running.wait().await;
    tracing::info!("mlmon stopped");
    Ok(())
}

async fn serve_proxy(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    mut shutdown: Shutdown,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 (keep-alive) and HTTP/2 with prior knowledge (h2c) on the same port.
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let proxy = proxy.clone();
                let svc = tower::service_fn(move |req| proxy.clone().handle(req));
                let conn = builder
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "client connection ended with an error");
                    }
                });
            }
            _ = shutdown.wait() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!("proxy connections drained"),
        _ = tokio::time::sleep(grace) => tracing::warn!(?grace, "proxy shutdown grace expired with requests in flight"),
    }
}
