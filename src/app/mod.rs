//! The application: [`AppState`] (what the admin API serves), the wiring of `mlmon serve`
//! ([`start`]), the periodic refresh, and the drain on shutdown. Everything above the
//! analyses meets here: `api` depends on this module, and this module depends on nothing
//! above it.
//!
//! ```text
//! proxy ─┐                          ┌─ drift ─┐
//! /predictions ─┼─▶ ingest::Queue ─▶ Worker ─┼─ quality ├─▶ metrics / API / health
//! /events ┘   (bounded, try_send)    │  anomalies │
//!                                   ├─ performance
//!                                   └─ importance ┘
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::analysis::{Analyses, Analysis};
use crate::anomaly::AnomalyEngine;
use crate::baseline::{Registry, Snapshot};
use crate::config::Config;
use crate::drift::{DriftEngine, ModelDriftReport};
use crate::error::StartError;
use crate::explain::ExplainEngine;
use crate::health::{HealthEngine, HealthInputs, ModelHealth};
use crate::ingest::{self, Record, Rejected, WeakQueue, Worker};
use crate::latency::{LatencyCollector, LatencyWindows};
use crate::metrics::Metrics;
use crate::performance::PerformanceEngine;
use crate::proxy::model_id::ModelNames;
use crate::proxy::Proxy;
use crate::quality::QualityEngine;
use crate::shutdown::{self, Shutdown, Trigger};

/// State shared by the admin API and the refresh task.
#[derive(Debug)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Metric groups and their registry.
    pub metrics: Metrics,
    /// Latency and error windows per model (recorded by the proxy).
    pub latency: Arc<LatencyWindows>,
    /// Model names seen so far (bounded).
    pub names: Arc<ModelNames>,
    /// The capture queue every ingress offers records to (the proxy holds the handle
    /// that keeps it open).
    pub queue: WeakQueue,
    /// The analysis side of the queue (counts what it analysed).
    pub worker: Arc<Worker>,
    /// Which baseline each model uses.
    pub baselines: Arc<Registry>,
    /// Every analysis, in feeding order.
    pub analyses: Analyses,
    /// The drift engine.
    pub drift: Arc<DriftEngine>,
    /// Data quality per feature.
    pub quality: Arc<QualityEngine>,
    /// Anomaly scoring.
    pub anomaly: Arc<AnomalyEngine>,
    /// Ground truth, performance and label-free estimates.
    pub performance: Arc<PerformanceEngine>,
    /// Model health.
    pub health: Arc<HealthEngine>,
    /// Permutation importance and local explanations via the model server.
    pub explain: Arc<ExplainEngine>,
    /// KServe inference-logger events waiting for their other half.
    pub events: Arc<crate::api::events::EventPairing>,
}

impl AppState {
    /// Offers a record to the analysis side; counts a refusal in
    /// `mlmon_capture_dropped_total{reason="queue_full"}`.
    pub fn enqueue(&self, record: Record) -> Result<(), Rejected> {
        let r = self.queue.try_send(record);
        if r.is_err() {
            self.metrics
                .proxy
                .capture_dropped
                .get_or_create(&crate::metrics::labels::ReasonLabels {
                    reason: "queue_full",
                })
                .inc();
        }
        r
    }

    /// Exchanges analysed since start.
    pub fn analysed(&self) -> u64 {
        self.worker.analysed()
    }

    /// Waits until at least `n` exchanges have been analysed since start.
    pub async fn wait_analysed(&self, n: u64) {
        self.worker.wait_analysed(n).await
    }

    /// Updates the values read at scrape time (the capture queue's length).
    pub fn refresh(&self) {
        self.metrics.proxy.queue_length.set(self.queue.len() as i64);
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

    /// Whether every configured baseline is loaded.
    pub fn baselines_loaded(&self) -> bool {
        true
    }

    /// Models seen in traffic or given a baseline, sorted.
    pub fn model_names(&self) -> Vec<String> {
        let mut names = self.names.names();
        names.extend(self.baselines.models());
        names.sort();
        names.dedup();
        names
    }

    /// Refreshes every analysis (gauges), then health, for every model.
    pub fn refresh_analyses(&self) {
        // Drift first: its reports feed health below without being computed twice.
        let drift = self.drift.refresh();
        for a in self.analyses.names() {
            if a != "drift" {
                if let Some(a) = self.analyses.get(a) {
                    a.refresh(&self.baselines);
                }
            }
        }
        let mut drift: std::collections::HashMap<String, ModelDriftReport> =
            drift.into_iter().map(|r| (r.model.clone(), r)).collect();
        for model in self.model_names() {
            let inputs = self.health_inputs(&model, drift.remove(&model));
            let h = self.health.evaluate(&model, &inputs);
            self.health.export(&h);
        }
    }

    /// What health is computed from for `model`, with `drift` when already computed.
    pub fn health_inputs(&self, model: &str, drift: Option<ModelDriftReport>) -> HealthInputs {
        let requests = self.latency.errors(model);
        HealthInputs {
            drift: drift.or_else(|| self.drift.report(model)),
            latency: self.latency.summary(model, self.config.sla.quantile),
            errors: Some(requests),
            anomaly_rate: self.anomaly.rate(model),
            data_quality: self.quality.score(model),
            performance: self.performance.report(model),
            performance_reference: crate::performance::reference(
                &self.baselines,
                &self.config,
                model,
            ),
        }
    }

    /// Health of `model` now (drift and performance computed on demand).
    pub fn model_health(&self, model: &str) -> ModelHealth {
        let inputs = self.health_inputs(model, None);
        self.health.evaluate(model, &inputs)
    }

    /// A JSON summary of one model for the API.
    pub fn model_summary(&self, model: &str) -> serde_json::Value {
        let latency = self.latency.summary(model, self.config.sla.quantile);
        let drift = self.drift.report(model);
        json!({
            "model": model,
            "baseline_id": drift.as_ref().map(|d| d.baseline_id.clone()),
            "baseline_capture_pending": self.baselines.capture_pending(model),
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
    start_with(cfg, Vec::new()).await
}

/// Starts the sidecar with `extra` analyses fed after the built-in ones (tests, or an
/// embedding program); returns once both ports are bound.
pub async fn start_with(cfg: Config, extra: Vec<Arc<dyn Analysis>>) -> Result<Running, StartError> {
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
    metrics.add_scrape_writer(Arc::new(LatencyCollector {
        windows: latency.clone(),
    }));
    let names = Arc::new(ModelNames::new(cfg.model.max_models));
    let (queue, rx) = ingest::queue(cfg.capture.queue, cfg.capture.max_queue_bytes);
    let registry = Arc::new(Registry::new(
        cfg.baseline.capture_rows,
        cfg.drift.sample_size,
    ));
    for snap in baselines {
        let model = snap.model.name.clone();
        let path_hint = snap.id.clone();
        names.fold(&model);
        registry.set(&model, Arc::new(snap)).map_err(|e| {
            StartError::Other(format!("baseline {path_hint} for model {model}: {e}"))
        })?;
    }
    // The analyses, each following the registry; fed in this order for every exchange.
    let drift = Arc::new(DriftEngine::new(
        cfg.clone(),
        metrics.drift.clone(),
        registry.clone(),
    ));
    let quality = Arc::new(QualityEngine::new(
        cfg.clone(),
        metrics.quality.clone(),
        Some(registry.clone()),
    ));
    let anomaly = Arc::new(AnomalyEngine::new(
        cfg.clone(),
        metrics.anomaly.clone(),
        Some(registry.clone()),
    ));
    let performance = Arc::new(PerformanceEngine::new(
        cfg.clone(),
        metrics.performance.clone(),
        Some(registry.clone()),
    ));
    let explain = Arc::new(
        ExplainEngine::new(cfg.clone(), metrics.explain.clone(), Some(registry.clone()))
            .map_err(StartError::Other)?,
    );
    let health = Arc::new(HealthEngine::new(cfg.clone(), metrics.health.clone()));
    let mut list: Vec<Arc<dyn Analysis>> = vec![
        drift.clone(),
        quality.clone(),
        anomaly.clone(),
        performance.clone(),
        explain.clone(),
    ];
    list.extend(extra);
    let analyses = Analyses::new(list);
    // Series of the loaded baselines exist from the first scrape.
    analyses.refresh(&registry);
    let worker = Arc::new(Worker::new(
        cfg.payload.clone(),
        metrics.proxy.clone(),
        registry.clone(),
        analyses.clone(),
    ));
    let proxy = Arc::new(
        Proxy::new(
            &cfg,
            names.clone(),
            metrics.proxy.clone(),
            latency.clone(),
            queue.clone(),
        )
        .map_err(|m| StartError::Other(format!("upstream: {m}")))?,
    );
    let state = Arc::new(AppState {
        config: cfg.clone(),
        metrics,
        latency,
        names,
        queue: queue.downgrade(),
        worker: worker.clone(),
        baselines: registry,
        analyses,
        drift,
        quality,
        anomaly,
        performance,
        health,
        explain,
        events: Arc::new(crate::api::events::EventPairing::new()),
    });
    // From here on only the proxy keeps the queue open.
    drop(queue);

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
    // The worker ends by itself when every sender (proxy, state) is gone.
    // Parsing and analysis get a thread of their own, off the runtime's workers.
    tasks.spawn_blocking(move || {
        // Lowest priority (nice 19 for normal threads): under overload the analysis falls
        // behind and the queue drops captures, instead of taking CPU from the proxy.
        if let Err(e) =
            thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
        {
            tracing::debug!(error = ?e, "could not lower the analysis thread's priority");
        }
        worker.run_blocking(rx)
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
                    refresh_state.refresh_analyses();
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
