//! Wiring for `mlmon serve`: binds the proxy and admin listeners, starts the capture
//! pipeline and the periodic refresh, and drains everything on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::baseline::Snapshot;
use crate::config::Config;
use crate::drift::DriftEngine;
use crate::error::StartError;
use crate::latency::LatencyWindows;
use crate::metrics::labels::ModelQuantileLabels;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::proxy::model_id::ModelNames;
use crate::proxy::Proxy;
use crate::record::CapturedExchange;
use crate::shutdown::{self, Shutdown, Trigger};

/// State shared by the admin API, the pipeline and the refresh task.
#[derive(Debug)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Metric groups and their registry.
    pub metrics: Metrics,
    /// Latency windows per model.
    pub latency: Arc<LatencyWindows>,
    /// Model names seen so far (bounded).
    pub names: Arc<ModelNames>,
    /// The capture pipeline (the ingestion API feeds it too).
    pub pipeline: Arc<Pipeline>,
    /// The drift engine.
    pub drift: Arc<DriftEngine>,
    /// Data quality per feature (`score(model)` feeds the model health).
    pub quality: Arc<crate::quality::QualityEngine>,
    /// Anomaly scoring (`rate(model)` feeds the model health).
    pub anomaly: Arc<crate::anomaly::AnomalyEngine>,
    /// Ground truth, performance and label-free estimates.
    pub performance: Arc<crate::performance::PerformanceEngine>,
    /// Model health.
    pub health: Arc<crate::health::HealthEngine>,
    /// Permutation importance and local explanations via the model server.
    pub explain: Arc<crate::explain::ExplainEngine>,
    /// KServe inference-logger events waiting for their other half.
    pub events: Arc<crate::api::events::EventPairing>,
    /// Weak handle on the capture queue, to export its length.
    queue: mpsc::WeakSender<CapturedExchange>,
}

impl AppState {
    /// Recomputes the window gauges (also run every `drift.interval`).
    pub fn refresh(&self) {
        let m = &self.metrics.proxy;
        for model in self.latency.models() {
            let Some(s) = self.latency.summary(&model, self.config.sla.quantile) else {
                continue;
            };
            for (quantile, v) in [("0.5", s.p50), ("0.95", s.p95), ("0.99", s.p99)] {
                m.latency_quantiles
                    .get_or_create(&ModelQuantileLabels {
                        model: model.clone(),
                        quantile,
                    })
                    .set(v);
            }
        }
        if let Some(tx) = self.queue.upgrade() {
            m.queue_length
                .set((tx.max_capacity() - tx.capacity()) as i64);
        }
    }

    /// Whether a TCP connection to the upstream succeeds within `timeout`.
    pub async fn upstream_reachable(&self, timeout: Duration) -> bool {
        let Ok(uri) = self.config.upstream_uri() else {
            return false;
        };
        let Some(auth) = uri.authority() else {
            return false;
        };
        let port = auth.port_u16().unwrap_or(80);
        let addr = format!(
            "{}:{port}",
            auth.host().trim_start_matches('[').trim_end_matches(']')
        );
        matches!(
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        )
    }

    /// Exchanges analysed since start (captured, ingested through the API, paired events).
    pub fn analysed(&self) -> u64 {
        self.pipeline.analysed()
    }

    /// Waits until at least `n` exchanges have been analysed since start (no timeout: the
    /// caller bounds it).
    pub async fn wait_analysed(&self, n: u64) {
        self.pipeline.wait_analysed(n).await
    }

    /// Whether every configured baseline is loaded.
    pub fn baselines_loaded(&self) -> bool {
        true
    }

    /// Models seen in traffic or given a baseline, sorted.
    pub fn model_names(&self) -> Vec<String> {
        let mut names = self.names.names();
        names.extend(self.drift.models());
        names.sort();
        names.dedup();
        names
    }

    /// Recomputes drift for every model and updates the drift gauges.
    pub fn refresh_drift(&self) {
        let drift = self.drift.refresh();
        self.quality.refresh();
        self.anomaly.refresh();
        self.refresh_health(drift);
    }

    /// A JSON summary of one model for the API.
    pub fn model_summary(&self, model: &str) -> serde_json::Value {
        let latency = self.latency.summary(model, self.config.sla.quantile);
        let drift = self.drift.report(model);
        json!({
            "model": model,
            "baseline_id": drift.as_ref().map(|d| d.baseline_id.clone()),
            "baseline_capture_pending": self.drift.capture_pending(model),
            "drift": drift.as_ref().map(|d| json!({
                "score": d.drift_score,
                "status": d.status,
                "drifted_features": d.features.iter()
                    .filter(|f| f.status.is_some_and(|s| s >= crate::drift::Status::Warning))
                    .map(|f| f.feature.clone())
                    .collect::<Vec<_>>(),
            })),
            "latency": latency,
            "sla": {
                "latency_seconds": self.config.sla.latency.as_secs_f64(),
                "quantile": self.config.sla.quantile,
            },
        })
    }
}

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

    /// Waits until at least `n` exchanges have been analysed since start (no timeout: the
    /// caller bounds it); see [`AppState::analysed`].
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

/// Loads the configured baseline snapshots, refusing two for one model.
pub fn load_baselines(cfg: &Config) -> Result<Vec<Snapshot>, StartError> {
    let mut out: Vec<Snapshot> = Vec::new();
    for path in &cfg.baseline.files {
        let snap = Snapshot::load(path).map_err(|e| StartError::Baseline {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if let Some(other) = out.iter().find(|s| s.model.name == snap.model.name) {
            return Err(StartError::Baseline {
                path: path.clone(),
                message: format!(
                    "a second baseline for model {:?} (baseline id {} is already loaded)",
                    snap.model.name, other.id
                ),
            });
        }
        out.push(snap);
    }
    Ok(out)
}

/// Starts the sidecar; returns once both ports are bound.
pub async fn start(cfg: Config) -> Result<Running, StartError> {
    start_with(cfg, None).await
}

/// Starts the sidecar, with `sink` instead of the analyses when given (tests);
/// returns once both ports are bound.
pub async fn start_with(
    cfg: Config,
    sink: Option<Arc<dyn crate::pipeline::Sink>>,
) -> Result<Running, StartError> {
    let baselines = load_baselines(&cfg)?;
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

    let metrics = Metrics::new(env!("CARGO_PKG_VERSION"));
    let latency = Arc::new(LatencyWindows::new(cfg.drift.window));
    let names = Arc::new(ModelNames::new(cfg.model.max_models));
    let (tx, rx) = mpsc::channel(cfg.capture.queue);
    let queued_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let drift = Arc::new(DriftEngine::new(cfg.clone(), metrics.drift.clone()));
    for snap in baselines {
        let model = snap.model.name.clone();
        let path_hint = snap.id.clone();
        names.fold(&model);
        drift.set_baseline(&model, Arc::new(snap)).map_err(|e| {
            StartError::Other(format!("baseline {path_hint} for model {model}: {e}"))
        })?;
    }
    // The analyses, fed in this order for every parsed exchange.
    let quality = Arc::new(crate::quality::QualityEngine::new(
        cfg.clone(),
        metrics.quality.clone(),
        Some(drift.clone()),
    ));
    let anomaly = Arc::new(crate::anomaly::AnomalyEngine::new(
        cfg.clone(),
        metrics.anomaly.clone(),
        Some(drift.clone()),
    ));
    let performance = Arc::new(crate::performance::PerformanceEngine::new(
        cfg.clone(),
        metrics.performance.clone(),
        Some(drift.clone()),
    ));
    let health = {
        let (q, a) = (quality.clone(), anomaly.clone());
        let sources = crate::health::HealthSources {
            anomaly_rate: Some(Arc::new(move |m: &str| a.rate(m))),
            data_quality: Some(Arc::new(move |m: &str| q.score(m))),
            performance_reference: Some(crate::performance::reference_source(
                drift.clone(),
                cfg.clone(),
            )),
        };
        Arc::new(crate::health::HealthEngine::new(
            cfg.clone(),
            metrics.health.clone(),
            metrics.proxy.clone(),
            sources,
        ))
    };
    // Series of the loaded baselines exist from the first scrape.
    quality.refresh();
    anomaly.refresh();
    let explain = Arc::new(
        crate::explain::ExplainEngine::new(
            cfg.clone(),
            metrics.explain.clone(),
            Some(drift.clone()),
        )
        .map_err(StartError::Other)?,
    );
    let analyses: Vec<Arc<dyn crate::pipeline::Sink>> = vec![
        drift.clone(),
        quality.clone(),
        anomaly.clone(),
        performance.clone(),
        explain.clone(),
    ];
    let sink: Arc<dyn crate::pipeline::Sink> = match sink {
        Some(s) => s,
        None => Arc::new(crate::pipeline::FanOut(analyses)),
    };
    let pipeline = Arc::new(Pipeline::new(
        cfg.payload.clone(),
        metrics.proxy.clone(),
        sink,
    ));
    let proxy = Arc::new(
        Proxy::new(
            &cfg,
            names.clone(),
            metrics.proxy.clone(),
            latency.clone(),
            tx.clone(),
            queued_bytes.clone(),
        )
        .map_err(|m| StartError::Other(format!("upstream: {m}")))?,
    );
    let state = Arc::new(AppState {
        config: cfg.clone(),
        metrics,
        latency,
        names,
        pipeline: pipeline.clone(),
        drift,
        quality,
        anomaly,
        performance,
        health,
        explain,
        events: Arc::new(crate::api::events::EventPairing::new()),
        queue: tx.downgrade(),
    });
    drop(tx);

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
    // The pipeline ends by itself when the proxy (the last sender) is gone.
    // Parsing and analysis get a thread of their own, off the proxy's workers.
    let pipeline_bytes = queued_bytes.clone();
    tasks.spawn_blocking(move || {
        // Lowest priority (nice 19 for normal threads): under overload the analysis falls
        // behind and the queue drops captures, instead of taking CPU from the proxy.
        if let Err(e) =
            thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
        {
            tracing::debug!(error = ?e, "could not lower the analysis thread's priority");
        }
        pipeline.run_blocking(rx, pipeline_bytes)
    });
    let refresh_state = state.clone();
    let mut refresh_shutdown = shutdown.clone();
    let interval = cfg.drift.interval;
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    refresh_state.refresh();
                    refresh_state.refresh_drift();
                }
                _ = refresh_shutdown.wait() => break,
            }
        }
    });
    if !cfg.explain.interval.is_zero() {
        // Permutation importance sends extra requests to the model server: opt-in.
        let explain = state.explain.clone();
        let mut explain_shutdown = shutdown.clone();
        let interval = cfg.explain.interval;
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => explain.refresh().await,
                    _ = explain_shutdown.wait() => break,
                }
            }
        });
    }
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
