//! mlmon — ML Model Monitor Pro.
//!
//! A sidecar that sits beside an ML model server, transparently proxies its inference
//! traffic and turns what it sees into Prometheus metrics: latency and SLA, data drift,
//! data quality, anomalies, model performance and feature importance.
//!
//! Data flows one way (docs/architecture.md):
//!
//! ```text
//! proxy tee ─┐
//! POST /api/v1/predictions ─┼─ Record ─▶ bounded queue (try_send; full → counted / 503)
//! POST /api/v1/events ─┘          │
//!                                 ▼ one low-priority thread
//!                    worker: payload adapters, baseline capture ─▶ analyses (registry)
//!                                 │                                  │
//!                    baseline registry (generation) ─────────────────┘
//!                                                                    ▼
//!                                         app state ─▶ health, metrics, admin API
//! ```
//!
//! Layout, lowest layer first:
//! - [`record`]: the neutral records (captured bytes, parsed rows and predictions, kinds).
//! - [`stats`]: pure statistics (PSI, JS, KS, Wasserstein, chi-square, quantiles).
//! - [`mlflow`]: the MLflow tracking REST client behind `--from-mlflow` and `--mlflow-run`.
//! - [`trigger`]: `mlmon trigger`, the optional Alertmanager-webhook receiver that starts
//!   retraining actions.
//! - [`window`]: the one time-bucketed sliding window and running moments.
//! - [`payload`]: one adapter per wire protocol, turning bodies into rows and predictions.
//! - [`background`]: the lowest CPU priority for the parser and analysis threads, and the
//!   short pauses in which they and the reports thread hand the CPU over.
//! - [`baseline`]: the snapshot format, its builder, file readers, and the registry of each
//!   model's snapshot.
//! - [`config`]: configuration (flags > `MLMON_` environment > file > defaults), validation.
//! - [`error`]: start-up errors naming the file, key or value.
//! - [`metrics`]: Prometheus registration and exposition.
//! - [`latency`]: the proxy's traffic windows (latency summary at scrape, error rate).
//! - [`proxy`]: the reverse proxy, the body tee, the upstream client and model identity.
//! - [`ingest`]: records, the bounded capture queue, the event pairing store, the parser
//!   thread and the worker that feeds the analyses.
//! - [`analysis`]: the `Analysis` trait every analysis implements, and its context.
//! - [`drift`]: sliding windows per feature and the drift engine (and offline drift).
//! - [`quality`]: per-feature data quality over the window and the data quality score.
//! - [`versions`]: per-version windows of a model and the comparison of two versions.
//! - [`anomaly`]: per-row anomaly scores against the baseline, rate, trend, recent anomalies.
//! - [`feedback`]: ground truth joined to predictions by request id (bounded, with a TTL).
//! - [`performance`]: performance against ground truth and label-free estimates.
//! - [`explain`]: black-box permutation importance and local explanations via the model server.
//! - [`stream`]: the capture stream to Kafka/NATS and ground truth consumed from them.
//! - [`shadow`]: shadow traffic: copies of sampled requests to a candidate model after the
//!   primary has answered, and the comparison of both answers on the analysis thread.
//! - [`health`]: one status per model with reasons and recommendations.
//! - [`app`]: the application state, the wiring of the analyses and the periodic refresh.
//! - [`status`]: the built-in status page and the bounded history behind its charts.
//! - [`api`]: the admin HTTP routes (`/`, `/metrics`, `/healthz`, `/readyz`, `/api/v1/...`).
//! - [`net`]: serving a port within limits (header/body timeouts, connection cap, bounded drain).
//! - [`server`]: binds and serves both ports for `mlmon serve`, drains on shutdown.
//! - [`shutdown`]: signal handling and graceful drain.
//! - [`cli`]: the command line (`serve`, `baseline`, `drift`, `check-config`, `demo`).
//! - [`demo`]: the built-in example model server and traffic generator.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
pub mod anomaly;
pub mod api;
pub mod app;
pub mod background;
pub mod baseline;
pub mod cli;
pub mod config;
pub mod demo;
pub mod drift;
pub mod error;
pub mod explain;
pub mod feedback;
pub mod health;
pub mod ingest;
pub mod latency;
pub mod metrics;
pub mod mlflow;
pub mod net;
pub mod payload;
pub mod performance;
pub mod proxy;
pub mod quality;
pub mod record;
pub mod server;
pub mod shadow;
pub mod shutdown;
pub mod stats;
pub mod status;
pub mod stream;
pub mod trigger;
pub mod versions;
pub mod window;
