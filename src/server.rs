//! Runs `mlmon serve`: binds the proxy and admin ports, serves them, starts the
//! application's background work ([`crate::app::spawn_background`]) and drains everything
//! on shutdown. The one module that knows both the application and the admin API.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::analysis::Analysis;
pub use crate::app::{load_baselines, AppState};
use crate::config::Config;
use crate::error::StartError;
use crate::shutdown::{self, Trigger};

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
    // Both ports within the limits of SPEC section 9 (timeouts, connection caps, a
    // shutdown bounded by proxy.shutdown_grace): see crate::net.
    let proxy_service = tower::service_fn(move |req| proxy.clone().handle(req));
    tasks.spawn(crate::net::serve(
        proxy_listener,
        proxy_service,
        crate::net::Limits::proxy(&cfg),
        shutdown.clone(),
    ));
    tasks.spawn(crate::net::serve(
        admin_listener,
        crate::api::router(state.clone()),
        crate::net::Limits::admin(&cfg),
        shutdown.clone(),
    ));
    crate::app::spawn_background(&state, receiver, &shutdown, &mut tasks);
    // KServe logger halves whose other half never came leave the store on a timer.
    let (expired_state, dropped_state) = (state.clone(), state.clone());
    tasks.spawn(crate::ingest::events::expire_every(
        state.events.clone(),
        crate::ingest::events::EXPIRY_TICK,
        move |p| {
            // A full queue is counted by enqueue (capture_dropped{reason="queue_full"}).
            let record = crate::ingest::Record::Captured(Box::new(crate::api::events::captured(
                &expired_state,
                p,
            )));
            let _ = expired_state.enqueue(record);
        },
        move |n| {
            dropped_state
                .metrics
                .proxy
                .capture_dropped
                .get_or_create(&crate::metrics::labels::ReasonLabels {
                    reason: "event_unpaired",
                })
                .inc_by(n);
        },
        shutdown.clone(),
    ));
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
