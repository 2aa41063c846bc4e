//! Configuration: defaults ← config file ← `MLMON_` environment ← command-line flags (each
//! overrides the one before, SPEC section 1 revision 2: a Kubernetes env entry wins over a
//! baked-in file).
//!
//! Every section is a struct with `deny_unknown_fields`, so a misspelt key is refused at
//! start-up with its name; every field has a doc line. Durations are written the humantime
//! way (`15m`, `100ms`). One file per group of sections:
//!
//! - [`load`](self::load): the sources and their precedence, and which source a bad value
//!   came from (file, environment variable or flag);
//! - [`keys`]: the key tree read from the types (which `MLMON_*` variables are ours);
//! - `proxy`, `server`, `model`, `drift`, `thresholds`, `performance`, `anomaly`, `explain`,
//!   `limits`, `sink`, `shadow`, `log`: the sections, each with its defaults and its checks.

mod anomaly;
mod drift;
mod explain;
pub mod keys;
mod limits;
mod load;
mod log;
mod model;
mod performance;
mod proxy;
mod server;
mod shadow;
mod sink;
mod thresholds;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

pub use self::anomaly::AnomalyConfig;
pub use self::drift::{DriftConfig, FleetBins, DEFAULT_SKETCH_COMPRESSION};
pub use self::explain::{
    ExplainConfig, ImportanceMethod, MAX_BACKGROUND, MAX_BATCH_ROWS, MAX_COALITIONS,
    MAX_EXPLAIN_ROWS,
};
pub use self::limits::{LimitsConfig, PrivacyConfig};
pub use self::load::{Overrides, ENV_PREFIX};
pub use self::log::{LogConfig, LogFormat};
pub use self::model::{BaselineConfig, ModelConfig, ModelOverrides, Task};
pub use self::performance::{FeedbackConfig, PerformanceConfig, SlaConfig};
pub use self::proxy::{CaptureConfig, ProxyConfig};
pub use self::server::{AdminConfig, EventsConfig, ServerConfig};
pub use self::shadow::ShadowConfig;
pub use self::sink::{
    KafkaSinkConfig, KafkaSourceConfig, NatsSinkConfig, NatsSourceConfig, SinkConfig,
};
pub use self::thresholds::{DurationLevel, Level, Status, Thresholds, Worse};
pub use crate::payload::PayloadConfig;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Proxy listen address (clients and the Service talk to this).
    pub listen: String,
    /// Model server base URL (plain HTTP, normally in the same pod).
    pub upstream: String,
    /// Admin listen address: `/metrics`, `/healthz`, `/readyz`, `/api/v1/...`.
    pub admin_listen: String,
    /// Proxy tuning.
    pub proxy: ProxyConfig,
    /// Limits of both listening ports (timeouts, connection caps).
    pub server: ServerConfig,
    /// Model identity when the request path carries none.
    pub model: ModelConfig,
    /// How request and response bodies are read.
    pub payload: PayloadConfig,
    /// Body capture limits.
    pub capture: CaptureConfig,
    /// Baseline snapshots.
    pub baseline: BaselineConfig,
    /// Drift windows.
    pub drift: DriftConfig,
    /// Warning/critical levels (defaults for every model).
    pub thresholds: Thresholds,
    /// Per-model overrides, keyed by model name.
    pub models: BTreeMap<String, ModelOverrides>,
    /// Latency SLA.
    pub sla: SlaConfig,
    /// Ground-truth feedback.
    pub feedback: FeedbackConfig,
    /// Performance metric options.
    pub performance: PerformanceConfig,
    /// Admin API access.
    pub admin: AdminConfig,
    /// The CloudEvents pairing store of `POST /api/v1/events`.
    pub events: EventsConfig,
    /// What may appear in logs and API answers.
    pub privacy: PrivacyConfig,
    /// Cardinality limits.
    pub limits: LimitsConfig,
    /// Anomaly scoring sensitivity (docs/anomaly.md).
    pub anomaly: AnomalyConfig,
    /// Black-box explanations through the model server (docs/explainability.md).
    pub explain: ExplainConfig,
    /// The capture stream to Kafka / NATS (docs/streaming.md).
    pub sink: SinkConfig,
    /// Shadow traffic to a candidate model (docs/shadow.md).
    pub shadow: ShadowConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:8000".into(),
            upstream: "http://127.0.0.1:8080".into(),
            admin_listen: "0.0.0.0:9464".into(),
            proxy: ProxyConfig::default(),
            server: ServerConfig::default(),
            model: ModelConfig::default(),
            payload: PayloadConfig::default(),
            capture: CaptureConfig::default(),
            baseline: BaselineConfig::default(),
            drift: DriftConfig::default(),
            thresholds: Thresholds::default(),
            models: BTreeMap::new(),
            sla: SlaConfig::default(),
            feedback: FeedbackConfig::default(),
            performance: PerformanceConfig::default(),
            admin: AdminConfig::default(),
            events: EventsConfig::default(),
            privacy: PrivacyConfig::default(),
            limits: LimitsConfig::default(),
            anomaly: AnomalyConfig::default(),
            explain: ExplainConfig::default(),
            sink: SinkConfig::default(),
            shadow: ShadowConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// A key whose value parses but cannot be used; the loader adds where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted key path, e.g. `drift.window`.
    pub key: String,
    /// What is wrong, naming the value.
    pub message: String,
}

impl Invalid {
    fn new(key: &str, message: String) -> Invalid {
        Invalid {
            key: key.to_string(),
            message,
        }
    }
}

/// A duration that must be longer than zero (and at most `max`, when given).
fn positive_duration(key: &str, value: Duration, max: Option<Duration>) -> Result<(), Invalid> {
    let shown = humantime::format_duration(value);
    if value.is_zero() {
        return Err(Invalid::new(
            key,
            format!("{shown} is not allowed; must be longer than 0s"),
        ));
    }
    match max {
        Some(max) if value > max => Err(Invalid::new(
            key,
            format!(
                "{shown} is too long; at most {}",
                humantime::format_duration(max)
            ),
        )),
        _ => Ok(()),
    }
}

/// A count or size that must lie in `min..=max`.
fn count_between(key: &str, value: usize, min: usize, max: usize) -> Result<(), Invalid> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!("{value} is not between {min} and {max}"),
        ))
    }
}

impl Config {
    /// Checks values that parse but make no sense; `origin` names where they came from.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.check().map_err(|i| ConfigError::Invalid {
            origin: origin.to_string(),
            key: i.key,
            message: i.message,
        })
    }

    /// As [`Config::validate`], without an origin: the first key with an unusable value.
    pub fn check(&self) -> Result<(), Invalid> {
        parse_addr(&self.listen).map_err(|m| Invalid::new("listen", m))?;
        parse_addr(&self.admin_listen).map_err(|m| Invalid::new("admin_listen", m))?;
        self.upstream_uri()
            .map_err(|m| Invalid::new("upstream", m))?;
        self.proxy.check()?;
        self.server.check()?;
        self.model.check()?;
        self.payload.validate().map_err(|e| {
            let (key, message) = payload_problem(&e);
            Invalid::new(&key, message)
        })?;
        self.capture.check()?;
        self.drift.check()?;
        self.sla.check()?;
        self.performance.check()?;
        self.explain.check()?;
        self.shadow.check()?;
        self.anomaly.check()?;
        self.admin.check()?;
        self.events.check()?;
        self.limits.check()?;
        self.feedback.check()?;
        self.sink.check()?;
        self.log.check()?;
        for (name, o) in &self.models {
            if let Some(t) = &o.thresholds {
                t.check(&format!("models.{name}.thresholds"))?;
            }
        }
        self.thresholds.check("thresholds")
    }

    /// The proxy listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        parse_addr(&self.listen)
    }

    /// The admin listen address.
    pub fn admin_addr(&self) -> Result<SocketAddr, String> {
        parse_addr(&self.admin_listen)
    }

    /// The upstream base URL as scheme + authority (+ optional path prefix).
    pub fn upstream_uri(&self) -> Result<http::Uri, String> {
        let uri: http::Uri = self
            .upstream
            .parse()
            .map_err(|e| format!("{:?} is not a URL: {e}", self.upstream))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "{:?}: scheme {other:?} is not supported; the model server is reached over plain http (h2c with proxy.upstream_http2)",
                    self.upstream
                ))
            }
            None => return Err(format!("{:?} has no scheme; write http://host:port", self.upstream)),
        }
        if uri.authority().is_none() {
            return Err(format!("{:?} has no host", self.upstream));
        }
        Ok(uri)
    }

    /// Thresholds in force for a model.
    pub fn thresholds_for(&self, model: &str) -> &Thresholds {
        self.models
            .get(model)
            .and_then(|o| o.thresholds.as_ref())
            .unwrap_or(&self.thresholds)
    }
}

/// The key a `payload` problem is about, and the message without the key in front.
fn payload_problem(e: &crate::payload::PayloadConfigError) -> (String, String) {
    use crate::payload::PayloadConfigError as E;
    let key = match e {
        E::InvalidPointer { key, .. } => format!("payload.{key}"),
        _ => "payload.feature_names".to_string(),
    };
    let text = e.to_string();
    let message = match text.strip_prefix(&key) {
        Some(rest) => rest.trim_start_matches(": ").trim_start().to_string(),
        None => text,
    };
    (key, message)
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("{s:?} is not an address like 0.0.0.0:8000"))
}
