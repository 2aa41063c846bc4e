//! mlmon — ML Model Monitor Pro.
//!
//! A sidecar that sits beside an ML model server, transparently proxies its inference
//! traffic and turns what it sees into Prometheus metrics: latency and SLA, data drift,
//! data quality, anomalies and model performance.
//!
//! Data flows one way:
//!
//! ```text
//! client ─▶ proxy (tee bodies) ─▶ model server
//!              │ CapturedExchange, try_send (never blocks; drops are counted)
//!              ▼
//!          bounded queue ─▶ pipeline (parse payloads, per-model analyses) ─▶ metrics / API
//! ```
//!
//! Layout:
//! - [`cli`]: the command line (`serve`, `baseline`, `drift`, `check-config`, `demo`).
//! - [`config`]: configuration (file, `MLMON_` environment, flags) and its validation.
//! - [`record`]: the neutral records passed from the proxy to the analyses.
//! - [`proxy`]: the reverse proxy, the body tee and the upstream client.
//! - [`payload`]: one adapter per wire protocol, turning bodies into rows and predictions.
//! - [`stats`]: pure statistics (PSI, JS, KS, Wasserstein, chi-square, quantiles).
//! - [`baseline`]: the baseline snapshot format, its builder and file readers.
//! - [`drift`]: sliding windows per feature and the drift engine.
//! - [`feedback`]: ground truth joined to predictions by request id (bounded, with a TTL).
//! - [`performance`]: performance against ground truth and label-free estimates.
//! - [`health`]: one status per model with reasons and recommendations.
//! - [`quality`]: per-feature data quality over the window and the data quality score.
//! - [`anomaly`]: per-row anomaly scores against the baseline, rate, trend and recent anomalies.
//! - [`explain`]: black-box permutation importance and local explanations via the model server.
//! - [`pipeline`]: the consumer of the capture queue, feeding the analyses.
//! - [`latency`]: sliding latency windows for the quantile gauges and the SLA.
//! - [`metrics`]: Prometheus registration and exposition.
//! - [`api`]: the admin HTTP server (`/metrics`, `/healthz`, `/readyz`, `/api/v1/...`).
//! - [`server`]: wiring of all of the above for `mlmon serve`.
//! - [`demo`]: the built-in example model server and traffic generator.
//! - [`shutdown`]: signal handling and graceful drain.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod anomaly;
pub mod api;
pub mod app;
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
pub mod payload;
pub mod performance;
pub mod proxy;
pub mod quality;
pub mod record;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod window;
