//! Configuration: defaults ← `MLMON_` environment ← config file ← command-line flags
//! (each overrides the one before, SPEC section 1).
//!
//! Every section is a struct with `deny_unknown_fields`, so a misspelt key is refused at
//! start-up with its name. Durations are written the humantime way (`15m`, `100ms`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::payload::PayloadConfig;

/// Environment variable prefix: `MLMON_DRIFT__WINDOW=15m` sets `drift.window`.
pub const ENV_PREFIX: &str = "MLMON";

/// The whole configuration.
/// Most rows `explain.max_rows` may ask for (the explain ring holds this many per model).
pub const MAX_EXPLAIN_ROWS: usize = 256;

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
    /// What may appear in logs and API answers.
    pub privacy: PrivacyConfig,
    /// Cardinality limits.
    pub limits: LimitsConfig,
    /// Anomaly scoring sensitivity (docs/anomaly.md).
    pub anomaly: AnomalyConfig,
    /// Black-box explanations through the model server (docs/explainability.md).
    pub explain: ExplainConfig,
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
            privacy: PrivacyConfig::default(),
            limits: LimitsConfig::default(),
            anomaly: AnomalyConfig::default(),
            explain: ExplainConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// The `proxy` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// How long to wait for the upstream's response headers before answering 504.
    #[serde(with = "humantime_serde")]
    pub upstream_timeout: Duration,
    /// How long to wait for a TCP connection to the upstream before answering 502.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Speak HTTP/2 with prior knowledge (h2c) to the upstream instead of HTTP/1.1.
    pub upstream_http2: bool,
    /// Idle upstream connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// How long in-flight requests may take to finish on SIGTERM/SIGINT.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            upstream_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            upstream_http2: false,
            pool_max_idle_per_host: 64,
            shutdown_grace: Duration::from_secs(25),
        }
    }
}

/// Whether the model is a classifier or a regressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Decide from the baseline's prediction type.
    #[default]
    Auto,
    /// Class labels (and probabilities).
    Classification,
    /// Numeric outputs.
    Regression,
}

/// The `model` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Model name when the path carries none.
    pub name: String,
    /// Model version when the path carries none.
    pub version: Option<String>,
    /// Distinct model names tracked; the rest fold into `__other__`.
    pub max_models: usize,
    /// Classification or regression.
    pub task: Task,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: "default".into(),
            version: None,
            max_models: 32,
            task: Task::Auto,
        }
    }
}

/// The `capture` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Bytes copied per body for analysis; larger bodies are proxied in full, not analysed.
    pub max_body_bytes: usize,
    /// Length of the bounded queue between the proxy and the analyses.
    pub queue: usize,
    /// Captured body bytes waiting for analysis at most; past it captures are dropped
    /// (`queue_full`), so a burst of large bodies cannot hold `queue × 2 × max_body_bytes`.
    pub max_queue_bytes: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            max_body_bytes: 1024 * 1024,
            queue: 10_000,
            max_queue_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The `baseline` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Snapshot files to load at start (one per model).
    pub files: Vec<PathBuf>,
    /// Capture the first N live rows as the baseline instead (0: off).
    pub capture_rows: usize,
}

/// The `drift` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// Sliding window length.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How often the drift gauges are recomputed.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Reservoir size per feature within the window.
    pub sample_size: usize,
    /// Derive per-feature thresholds from the baseline's own sampling noise.
    pub adaptive: bool,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            window: Duration::from_secs(15 * 60),
            interval: Duration::from_secs(10),
            sample_size: 5000,
            adaptive: false,
        }
    }
}

/// A warning/critical pair where larger is worse.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Value at or above which the status is `warning`.
    pub warning: f64,
    /// Value at or above which the status is `critical`.
    pub critical: f64,
}

impl Level {
    /// 0 ok, 1 warning, 2 critical.
    pub fn status(&self, value: f64) -> u8 {
        if value >= self.critical {
            2
        } else if value >= self.warning {
            1
        } else {
            0
        }
    }
}

/// A warning/critical pair of durations where longer is worse.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationLevel {
    /// Latency at or above which the status is `warning`.
    #[serde(with = "humantime_serde")]
    pub warning: Duration,
    /// Latency at or above which the status is `critical`.
    #[serde(with = "humantime_serde")]
    pub critical: Duration,
}

/// The `thresholds` section (SPEC section 5 defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Population stability index.
    pub psi: Level,
    /// Jensen–Shannon divergence (base 2); unset: not used for status.
    pub js: Option<Level>,
    /// KS statistic D; unset: not used for status.
    pub ks_statistic: Option<Level>,
    /// Window p95 latency.
    pub latency_p95: DurationLevel,
    /// Share of anomalous rows.
    pub anomaly_rate: Level,
    /// Share of 5xx and failed requests.
    pub error_rate: Level,
    /// Share of features drifted (model drift score).
    pub drift_score: Level,
    /// Data quality score (lower is worse; `warning`/`critical` are the levels at or below
    /// which the status applies).
    pub data_quality: Level,
    /// Relative drop of the primary performance metric (accuracy, or R²) from the
    /// baseline's reference, for model health.
    pub performance_drop: Level,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            psi: Level {
                warning: 0.1,
                critical: 0.2,
            },
            js: None,
            ks_statistic: None,
            latency_p95: DurationLevel {
                warning: Duration::from_millis(50),
                critical: Duration::from_millis(100),
            },
            anomaly_rate: Level {
                warning: 0.005,
                critical: 0.01,
            },
            error_rate: Level {
                warning: 0.001,
                critical: 0.01,
            },
            drift_score: Level {
                warning: 0.2,
                critical: 0.5,
            },
            data_quality: Level {
                warning: 0.9,
                critical: 0.75,
            },
            performance_drop: Level {
                warning: 0.05,
                critical: 0.1,
            },
        }
    }
}

/// Per-model settings under `models.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelOverrides {
    /// Thresholds for this model (replace the global ones as a whole section).
    pub thresholds: Option<Thresholds>,
}

/// The `sla` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    /// Latency a request must stay under.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// Quantile of the window that must stay under `latency`.
    pub quantile: f64,
}

impl Default for SlaConfig {
    fn default() -> Self {
        SlaConfig {
            latency: Duration::from_millis(100),
            quantile: 0.95,
        }
    }
}

/// The `feedback` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackConfig {
    /// How long predictions wait for ground truth.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Predictions kept waiting at most.
    pub max_pending: usize,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            ttl: Duration::from_secs(3600),
            max_pending: 100_000,
        }
    }
}

/// The `performance` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceConfig {
    /// Positive label for binary precision/recall/F1.
    pub positive_class: String,
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        PerformanceConfig {
            positive_class: "1".into(),
        }
    }
}

/// The `admin` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token required by mutating API calls (unset: no token needed).
    pub token: Option<String>,
}

/// The `privacy` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Whether raw feature values may appear in logs and API answers.
    pub log_values: bool,
}

/// The `limits` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Features exported per model.
    pub max_features: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { max_features: 256 }
    }
}

/// The `anomaly` section: how sensitive per-row anomaly scoring is (docs/anomaly.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Score (in standard-normal sigmas, two-sided) at or above which a row is anomalous.
    pub threshold: f64,
    /// Recent anomalous rows kept for `GET /api/v1/models/{model}/anomalies`.
    pub ring_size: usize,
    /// Classifier outputs whose largest class probability is below this are anomalous
    /// (`low_confidence`); 0 turns the check off.
    pub min_confidence: f64,
    /// Numeric features (in baseline order) entering the multivariate Mahalanobis score.
    pub max_joint_features: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            threshold: 4.0,
            ring_size: 100,
            min_confidence: 0.0,
            max_joint_features: 64,
        }
    }
}

/// The `explain` section: permutation importance and local explanations, computed by
/// re-sending recent rows to the model server (docs/explainability.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplainConfig {
    /// How often permutation importance is recomputed; `0s` (the default) turns it off,
    /// since every refresh sends `1 + features` extra requests per model to the model server.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Recent rows a model needs before its importance is computed.
    pub min_rows: usize,
    /// Most recent rows used per refresh, and most rows per request to the model server.
    pub max_rows: usize,
    /// Time limit of one request to the model server.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ExplainConfig {
    fn default() -> Self {
        ExplainConfig {
            interval: Duration::ZERO,
            min_rows: 32,
            max_rows: 64,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `log` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `mlmon=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Values given on the command line; they override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--upstream`.
    pub upstream: Option<String>,
    /// `--admin-listen`.
    pub admin_listen: Option<String>,
    /// `--baseline` (repeatable); replaces `baseline.files` when non-empty.
    pub baseline_files: Vec<PathBuf>,
    /// `--model`.
    pub model: Option<String>,
}

/// Top-level keys. Environment variables whose first segment is not one of these are
/// ignored rather than refused: Kubernetes injects `MLMON_SERVICE_HOST`, `MLMON_PORT`, …
/// for a Service called `mlmon`, and those must not stop the sidecar.
const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "upstream",
    "admin_listen",
    "proxy",
    "model",
    "payload",
    "capture",
    "baseline",
    "drift",
    "thresholds",
    "models",
    "sla",
    "feedback",
    "performance",
    "admin",
    "privacy",
    "limits",
    "log",
    "anomaly",
    "explain",
];

/// The `MLMON_*` variables that configure mlmon, keyed as the `config` crate expects.
fn env_source(vars: impl Iterator<Item = (String, String)>) -> HashMap<String, String> {
    let prefix = format!("{ENV_PREFIX}_");
    vars.filter(|(k, _)| {
        k.strip_prefix(&prefix).is_some_and(|rest| {
            let first = rest.split("__").next().unwrap_or("").to_ascii_lowercase();
            TOP_LEVEL_KEYS.contains(&first.as_str())
        })
    })
    .collect()
}

impl Config {
    /// Loads the configuration from the process environment, an optional file and flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load_from(file, overrides, std::env::vars())
    }

    /// As [`Config::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        overrides: &Overrides,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let origin = match file {
            Some(p) => p.display().to_string(),
            None => "configuration".to_string(),
        };
        let env = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("baseline.files")
            .with_list_parse_key("payload.feature_names")
            .source(Some(env_source(env)));
        let mut builder = config::Config::builder().add_source(env);
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::FileMissing(path.to_path_buf()));
            }
            let format = match path.extension().and_then(|e| e.to_str()) {
                Some("toml") => config::FileFormat::Toml,
                Some("yaml" | "yml") => config::FileFormat::Yaml,
                other => {
                    return Err(ConfigError::Invalid {
                        origin,
                        key: "(file extension)".into(),
                        message: format!(
                            "unsupported extension {:?}; use .yaml, .yml or .toml",
                            other.unwrap_or("")
                        ),
                    })
                }
            };
            builder = builder.add_source(config::File::from(path).format(format).required(true));
        }
        let set = |b: config::ConfigBuilder<config::builder::DefaultState>,
                   key: &str,
                   v: &Option<String>| match v {
            Some(v) => b.set_override(key, v.clone()),
            None => Ok(b),
        };
        let mut builder = set(builder, "listen", &overrides.listen)
            .and_then(|b| set(b, "upstream", &overrides.upstream))
            .and_then(|b| set(b, "admin_listen", &overrides.admin_listen))
            .and_then(|b| set(b, "model.name", &overrides.model))
            .map_err(|e| ConfigError::from_config(&origin, e))?;
        if !overrides.baseline_files.is_empty() {
            let files: Vec<String> = overrides
                .baseline_files
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            builder = builder
                .set_override("baseline.files", files)
                .map_err(|e| ConfigError::from_config(&origin, e))?;
        }
        let cfg: Config = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::from_config(&origin, e))?;
        cfg.validate(&origin)?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            message,
        };
        self.listen_addr()
            .map_err(|m| bad("listen", m))
            .and_then(|_| self.admin_addr().map_err(|m| bad("admin_listen", m)))
            .and_then(|_| self.upstream_uri().map_err(|m| bad("upstream", m)))?;
        if self.model.max_models == 0 {
            return Err(bad("model.max_models", "must be at least 1".into()));
        }
        if self.model.name.trim().is_empty() {
            return Err(bad("model.name", "must not be empty".into()));
        }
        if self.capture.queue == 0 {
            return Err(bad("capture.queue", "must be at least 1".into()));
        }
        if self.drift.window.is_zero() {
            return Err(bad("drift.window", "must be longer than 0s".into()));
        }
        if self.drift.interval.is_zero() {
            return Err(bad("drift.interval", "must be longer than 0s".into()));
        }
        if self.drift.sample_size == 0 {
            return Err(bad("drift.sample_size", "must be at least 1".into()));
        }
        if self.explain.timeout.is_zero() {
            return Err(bad("explain.timeout", "must be longer than 0s".into()));
        }
        if self.explain.max_rows == 0 || self.explain.max_rows > MAX_EXPLAIN_ROWS {
            return Err(bad(
                "explain.max_rows",
                format!("must be between 1 and {}", MAX_EXPLAIN_ROWS),
            ));
        }
        if !(self.sla.quantile > 0.0 && self.sla.quantile < 1.0) {
            return Err(bad(
                "sla.quantile",
                format!("{} is not between 0 and 1", self.sla.quantile),
            ));
        }
        if self.proxy.upstream_timeout.is_zero() {
            return Err(bad(
                "proxy.upstream_timeout",
                "must be longer than 0s".into(),
            ));
        }
        if !(self.anomaly.threshold.is_finite() && self.anomaly.threshold > 0.0) {
            return Err(bad(
                "anomaly.threshold",
                format!("{} is not a positive number", self.anomaly.threshold),
            ));
        }
        if !(0.0..=1.0).contains(&self.anomaly.min_confidence) {
            return Err(bad(
                "anomaly.min_confidence",
                format!("{} is not between 0 and 1", self.anomaly.min_confidence),
            ));
        }
        if self.admin.token.as_deref().is_some_and(str::is_empty) {
            return Err(bad("admin.token", "is set but empty".into()));
        }
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(bad(
                "log.level",
                format!("{:?} is not a valid log filter", self.log.level),
            ));
        }
        for (name, o) in &self.models {
            if let Some(t) = &o.thresholds {
                check_levels(t).map_err(|m| {
                    bad(
                        &format!("models.{name}.thresholds.{m}"),
                        "warning must not be worse than critical".into(),
                    )
                })?;
            }
        }
        check_levels(&self.thresholds).map_err(|m| {
            bad(
                &format!("thresholds.{m}"),
                "warning must not be worse than critical".into(),
            )
        })?;
        Ok(())
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

fn check_levels(t: &Thresholds) -> Result<(), &'static str> {
    let larger_worse = [
        ("psi", Some(t.psi)),
        ("js", t.js),
        ("ks_statistic", t.ks_statistic),
        ("anomaly_rate", Some(t.anomaly_rate)),
        ("error_rate", Some(t.error_rate)),
        ("drift_score", Some(t.drift_score)),
        ("performance_drop", Some(t.performance_drop)),
    ];
    for (name, level) in larger_worse {
        if let Some(l) = level {
            if l.warning > l.critical {
                return Err(name);
            }
        }
    }
    if t.latency_p95.warning > t.latency_p95.critical {
        return Err("latency_p95");
    }
    if t.data_quality.warning < t.data_quality.critical {
        return Err("data_quality");
    }
    Ok(())
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("{s:?} is not an address like 0.0.0.0:8000"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(ext: &str, text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(ext)
            .tempfile()
            .expect("tempfile");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = Config::load_from(None, &Overrides::default(), std::iter::empty()).unwrap();
        assert_eq!(c.listen, "0.0.0.0:8000");
        assert_eq!(c.upstream, "http://127.0.0.1:8080");
        assert_eq!(c.admin_listen, "0.0.0.0:9464");
        assert_eq!(c.model.name, "default");
        assert_eq!(c.model.max_models, 32);
        assert_eq!(c.capture.max_body_bytes, 1 << 20);
        assert_eq!(c.capture.queue, 10_000);
        assert_eq!(c.drift.window, Duration::from_secs(900));
        assert_eq!(c.drift.interval, Duration::from_secs(10));
        assert_eq!(c.drift.sample_size, 5000);
        assert_eq!(c.sla.latency, Duration::from_millis(100));
        assert_eq!(c.sla.quantile, 0.95);
        assert_eq!(c.feedback.ttl, Duration::from_secs(3600));
        assert_eq!(c.feedback.max_pending, 100_000);
        assert_eq!(c.performance.positive_class, "1");
        assert_eq!(c.limits.max_features, 256);
        assert_eq!(c.thresholds.psi.warning, 0.1);
        assert_eq!(c.thresholds.psi.critical, 0.2);
        assert_eq!(c.thresholds.error_rate.warning, 0.001);
    }

    #[test]
    fn flags_override_file_which_overrides_env() {
        let f = write(
            ".yaml",
            "upstream: http://127.0.0.1:9000\ndrift:\n  window: 5m\nmodel:\n  name: filemodel\n",
        );
        let e = env(&[
            ("MLMON_UPSTREAM", "http://127.0.0.1:7000"),
            ("MLMON_DRIFT__WINDOW", "1m"),
            ("MLMON_DRIFT__INTERVAL", "3s"),
            ("MLMON_ADMIN__TOKEN", "s3cret"),
        ]);
        let o = Overrides {
            model: Some("flagmodel".into()),
            ..Default::default()
        };
        let c = Config::load_from(Some(f.path()), &o, e.into_iter()).unwrap();
        assert_eq!(c.upstream, "http://127.0.0.1:9000", "file beats env");
        assert_eq!(c.drift.window, Duration::from_secs(300), "file beats env");
        assert_eq!(
            c.drift.interval,
            Duration::from_secs(3),
            "env beats default"
        );
        assert_eq!(c.admin.token.as_deref(), Some("s3cret"));
        assert_eq!(c.model.name, "flagmodel", "flag beats file");
    }

    #[test]
    fn unknown_key_is_named() {
        let f = write(".yaml", "drift:\n  windw: 5m\n");
        let err = Config::load_from(Some(f.path()), &Overrides::default(), std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(err.contains("windw"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }

    #[test]
    fn unknown_env_key_under_a_section_is_refused_but_service_links_are_ignored() {
        let e = env(&[
            ("MLMON_PORT", "tcp://10.0.0.1:8000"),
            ("MLMON_SERVICE_HOST", "10.0.0.1"),
        ]);
        Config::load_from(None, &Overrides::default(), e.into_iter()).unwrap();
        let e = env(&[("MLMON_DRIFT__WINDW", "5m")]);
        let err = Config::load_from(None, &Overrides::default(), e.into_iter())
            .unwrap_err()
            .to_string();
        assert!(err.contains("windw"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        for (yaml, needle) in [
            ("listen: nowhere\n", "listen"),
            ("upstream: ftp://x\n", "upstream"),
            ("upstream: \"::\"\n", "upstream"),
            ("sla:\n  quantile: 2\n", "sla.quantile"),
            ("drift:\n  window: forever\n", "window"),
            (
                "thresholds:\n  psi: {warning: 0.3, critical: 0.2}\n",
                "thresholds.psi",
            ),
            ("capture:\n  queue: 0\n", "capture.queue"),
        ] {
            let f = write(".yaml", yaml);
            let err = Config::load_from(Some(f.path()), &Overrides::default(), std::iter::empty())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{yaml:?} gave {err}");
        }
    }

    #[test]
    fn toml_and_env_lists() {
        let f = write(".toml", "[payload]\nformat = \"oip_v2\"\n");
        let e = env(&[("MLMON_PAYLOAD__FEATURE_NAMES", "a,b,c")]);
        let c = Config::load_from(Some(f.path()), &Overrides::default(), e.into_iter()).unwrap();
        assert_eq!(c.payload.format, crate::payload::PayloadFormat::OipV2);
        assert_eq!(c.payload.feature_names, vec!["a", "b", "c"]);
    }

    #[test]
    fn per_model_thresholds() {
        let f = write(
            ".yaml",
            "models:\n  fraud:\n    thresholds:\n      psi: {warning: 0.05, critical: 0.1}\n",
        );
        let c =
            Config::load_from(Some(f.path()), &Overrides::default(), std::iter::empty()).unwrap();
        assert_eq!(c.thresholds_for("fraud").psi.warning, 0.05);
        assert_eq!(c.thresholds_for("other").psi.warning, 0.1);
    }

    #[test]
    fn missing_file_is_named() {
        let err = Config::load_from(
            Some(Path::new("/nonexistent/mlmon.yaml")),
            &Overrides::default(),
            std::iter::empty(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/mlmon.yaml"), "{err}");
    }
}
