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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
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
use crate::performance::{PerformanceEngine, PerformanceReport};
use crate::proxy::model_id::ModelNames;
use crate::proxy::Proxy;
use crate::quality::QualityEngine;
use crate::shutdown::Shutdown;

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
    /// The low-priority thread that parses API ingestion bodies.
    pub parser: ingest::parser::Parser,
    /// The thread that computes the admin API's reports (drift, quality, anomalies,
    /// performance, health, history) and the periodic refresh, off the runtime workers the
    /// proxy shares.
    pub reports: ingest::parser::Parser,
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
    /// Per-version windows and comparisons (SPEC 10).
    pub versions: Arc<crate::versions::VersionsEngine>,
    /// KServe inference-logger events waiting for their other half.
    pub events: Arc<crate::ingest::events::EventPairing>,
    /// The capture stream's sinks (also on the analyses list).
    pub sinks: Arc<crate::stream::Sinks>,
    /// Ground truth consumed from brokers.
    pub sources: crate::stream::Sources,
    /// The last hour of refreshes per model, for the status page's charts (bounded).
    pub history: Arc<crate::status::History>,
    /// The comparison of shadow answers with the primary's (empty without `shadow.upstream`).
    pub shadow: Arc<crate::shadow::Comparison>,
    /// The shadow sender, until [`spawn_background`] starts it.
    pub shadow_runner: std::sync::Mutex<Option<crate::shadow::Runner>>,
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

    /// Applies ground truth for `model` (the one path of `POST /api/v1/feedback` and the
    /// feedback sources) to performance and to the versions' windows: `None` when the model
    /// has not been seen, else what became of each record (counted in
    /// `mlmon_feedback_total`).
    pub fn apply_feedback(
        &self,
        model: &str,
        items: &[crate::performance::FeedbackItem],
    ) -> Option<Vec<crate::feedback::Outcome>> {
        if !self.model_names().iter().any(|m| m == model) {
            return None;
        }
        let outcomes = self.performance.feedback(model, items);
        self.versions.feedback(model, items);
        Some(outcomes)
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
        // Drift and performance first, by hand: their reports feed health below without
        // being computed twice.
        let mut drift: HashMap<String, ModelDriftReport> = self
            .drift
            .refresh()
            .into_iter()
            .map(|r| (r.model.clone(), r))
            .collect();
        let mut performance: HashMap<String, PerformanceReport> = self
            .performance
            .refresh()
            .into_iter()
            .map(|r| (r.model.clone(), r))
            .collect();
        for name in self.analyses.names() {
            if name == self.drift.name() || name == self.performance.name() {
                continue;
            }
            if let Some(a) = self.analyses.get(name) {
                a.refresh(&self.baselines);
                crate::background::pause();
            }
        }
        for model in self.model_names() {
            let inputs =
                self.health_inputs(&model, drift.remove(&model), performance.remove(&model));
            let h = self.health.evaluate(&model, &inputs);
            self.health.export(&h);
            self.history.record(&model, &inputs, &h);
        }
    }

    /// What health is computed from for `model`; `drift` and `performance` when already
    /// computed, else computed now.
    pub fn health_inputs(
        &self,
        model: &str,
        drift: Option<ModelDriftReport>,
        performance: Option<PerformanceReport>,
    ) -> HealthInputs {
        let requests = self.latency.errors(model);
        HealthInputs {
            drift: drift.or_else(|| self.drift.report(model)),
            latency: self.latency.summary(model, self.config.sla.quantile),
            errors: Some(requests),
            anomaly_rate: self.anomaly.rate(model),
            data_quality: self.quality.score(model),
            performance: performance.or_else(|| self.performance.report(model)),
            performance_reference: crate::performance::reference(
                &self.baselines,
                &self.config,
                model,
            ),
        }
    }

    /// Health of `model` now (drift and performance computed on demand).
    pub fn model_health(&self, model: &str) -> ModelHealth {
        let inputs = self.health_inputs(model, None, None);
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

/// Loads the configured baseline snapshots, refusing two for one model.
pub fn load_baselines(cfg: &Config) -> Result<Vec<Snapshot>, StartError> {
    let mut out: Vec<Snapshot> = Vec::new();
    for path in &cfg.baseline.files {
        let mut snap = Snapshot::load(path).map_err(|e| StartError::Baseline {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // Slimmed as it is read, not once all are: the peak is one whole snapshot, and the
        // memory it frees is reused by the next file instead of staying in the heap.
        crate::baseline::registry::slim(&mut snap);
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

/// What [`build`] makes: the state, the proxy (which holds the queue open) and the
/// analysis side of the queue.
#[derive(Debug)]
pub struct Built {
    /// The shared state.
    pub state: Arc<AppState>,
    /// The reverse proxy, to serve on the proxy port.
    pub proxy: Arc<Proxy>,
    /// The analysis side of the capture queue, for [`spawn_background`].
    pub receiver: ingest::Receiver,
}

/// Builds the application from `cfg`: baselines, analyses (with `extra` ones fed after the
/// built-in ones), the capture queue, the worker and the proxy.
pub fn build(cfg: Arc<Config>, extra: Vec<Arc<dyn Analysis>>) -> Result<Built, StartError> {
    let baselines = load_baselines(&cfg)?;
    let metrics = Metrics::new(env!("CARGO_PKG_VERSION"));
    let latency = Arc::new(LatencyWindows::new(cfg.drift.window));
    metrics.add_scrape_writer(Arc::new(LatencyCollector {
        windows: latency.clone(),
    }));
    let names = Arc::new(
        ModelNames::with_name_limit(cfg.model.max_models, cfg.limits.max_name_bytes)
            .with_max_versions(cfg.model.max_versions),
    );
    // Slots go first to the configured model and the models with a baseline (SPEC 6).
    let default_model = names.reserve(&cfg.model.name);
    if let Some(v) = &cfg.model.version {
        names.reserve_version(&default_model, v);
    }
    let (queue, rx) = ingest::queue(cfg.capture.queue, cfg.capture.max_queue_bytes);
    let registry = Arc::new(Registry::new(
        cfg.baseline.capture_rows,
        cfg.drift.sample_size,
    ));
    for snap in baselines {
        let model = snap.model.name.clone();
        let path_hint = snap.id.clone();
        names.reserve(&model);
        registry.set(&model, Arc::new(snap)).map_err(|e| {
            StartError::Other(format!("baseline {path_hint} for model {model}: {e}"))
        })?;
    }
    // The analyses, each following the registry; fed in this order for every exchange.
    // Live SHAP importance (explain) weights the drift score.
    let live_importance = Arc::new(crate::analysis::LiveImportance::default());
    let drift = Arc::new(
        DriftEngine::new(cfg.clone(), metrics.drift.clone(), registry.clone())
            .with_live_importance(live_importance.clone()),
    );
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
            .map_err(StartError::Other)?
            .with_live_importance(live_importance),
    );
    let health = Arc::new(HealthEngine::new(cfg.clone(), metrics.health.clone()));
    let versions = Arc::new(crate::versions::VersionsEngine::new(
        cfg.clone(),
        names.clone(),
        latency.clone(),
        registry.clone(),
        metrics.versions.clone(),
    ));
    let shadow = Arc::new(crate::shadow::Comparison::new(
        cfg.clone(),
        metrics.shadow.clone(),
        Some(registry.clone()),
    ));
    let mut list: Vec<Arc<dyn Analysis>> = vec![
        drift.clone(),
        quality.clone(),
        anomaly.clone(),
        performance.clone(),
        explain.clone(),
        versions.clone(),
        shadow.clone(),
    ];
    list.extend(extra);
    // The capture stream goes last: it sees each exchange after every analysis.
    let sinks =
        Arc::new(crate::stream::Sinks::new(&cfg, metrics.sink.clone()).map_err(StartError::Other)?);
    if !sinks.is_empty() {
        list.push(sinks.clone());
    }
    let sources =
        crate::stream::Sources::new(&cfg, metrics.sink.clone()).map_err(StartError::Other)?;
    let analyses = Analyses::new(list);
    // Series of the loaded baselines exist from the first scrape.
    analyses.refresh(&registry);
    let worker = Arc::new(
        Worker::new(
            cfg.payload.clone(),
            metrics.proxy.clone(),
            registry.clone(),
            analyses.clone(),
        )
        .with_max_name_bytes(cfg.limits.max_name_bytes),
    );
    let (shadow_handle, shadow_runner) = match crate::shadow::build(
        &cfg,
        metrics.shadow.clone(),
        metrics.proxy.clone(),
        shadow.clone(),
        queue.downgrade(),
    )
    .map_err(|m| StartError::Other(format!("shadow.upstream: {m}")))?
    {
        Some((h, r)) => (Some(h), Some(r)),
        None => (None, None),
    };
    let proxy = Arc::new(
        Proxy::new(
            &cfg,
            names.clone(),
            metrics.proxy.clone(),
            latency.clone(),
            queue.clone(),
        )
        .map_err(|m| StartError::Other(format!("upstream: {m}")))?
        .with_shadow(shadow_handle),
    );
    let state = Arc::new(AppState {
        config: cfg.clone(),
        metrics,
        latency,
        names,
        queue: queue.downgrade(),
        worker: worker.clone(),
        parser: ingest::parser::Parser::start()
            .map_err(|e| StartError::Other(format!("cannot start the ingestion parser: {e}")))?,
        reports: ingest::parser::Parser::start_thread("mlmon-reports", false, 64)
            .map_err(|e| StartError::Other(format!("cannot start the reports thread: {e}")))?,
        baselines: registry,
        analyses,
        drift,
        quality,
        anomaly,
        performance,
        health,
        explain,
        versions,
        events: Arc::new(crate::ingest::events::EventPairing::with_limits(
            cfg.events.max_bytes,
            cfg.events.ttl,
        )),
        sinks,
        sources,
        history: Arc::new(crate::status::History::new(
            cfg.drift.interval,
            // Every name the model slots allow, plus `__other__`.
            cfg.model.max_models.saturating_add(1),
            // Every exported feature, plus the prediction.
            cfg.limits.max_features.saturating_add(1),
        )),
        shadow,
        shadow_runner: std::sync::Mutex::new(shadow_runner),
    });

    Ok(Built {
        state,
        proxy,
        receiver: rx,
    })
}

/// Starts the analysis thread and the periodic tasks (refresh every `drift.interval`,
/// permutation importance every `explain.interval`) on `tasks`; they stop on `shutdown`
/// (the analysis thread once the proxy, the queue's last sender, is gone).
pub fn spawn_background(
    state: &Arc<AppState>,
    rx: ingest::Receiver,
    shutdown: &Shutdown,
    tasks: &mut JoinSet<()>,
) {
    let cfg = state.config.clone();
    let worker = state.worker.clone();
    // The worker ends by itself when every sender (proxy, state) is gone.
    // Parsing and analysis get a thread of their own, off the runtime's workers.
    tasks.spawn_blocking(move || {
        // Lowest priority (nice 19): under overload the analysis falls behind and the
        // queue drops captures, instead of taking CPU from the proxy.
        crate::background::lower_current_thread_priority("analysis");
        worker.run_blocking(rx)
    });
    state.sinks.spawn(shutdown, tasks);
    let feedback_state = Arc::downgrade(state);
    state.sources.spawn(
        Arc::new(
            move |model: &str, items: &[crate::performance::FeedbackItem]| {
                feedback_state.upgrade()?.apply_feedback(model, items)
            },
        ),
        shutdown,
        tasks,
    );
    // Shadow traffic: at most shadow.concurrency copies in flight, until shutdown.
    if let Some(runner) = state.shadow_runner.lock().ok().and_then(|mut r| r.take()) {
        tasks.spawn(runner.run(shutdown.clone()));
    }
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
                    // Refreshing (drift reports: 100 features take about 9 ms of two CPUs;
                    // gauges; health) runs on the reports thread, never on a runtime worker
                    // the proxy shares: at the normal priority, so the gauges stay current
                    // when the CPU is contended, with the background threads' pauses. The
                    // next tick waits for it; when 64 report requests already wait for that
                    // thread, this tick's refresh is skipped.
                    let s = refresh_state.clone();
                    let _ = refresh_state.reports.run(move || s.refresh_analyses()).await;
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
}
