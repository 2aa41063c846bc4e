//! The `proxy` and `capture` sections: the data path in front of the model server.

use std::time::Duration;

use serde::Deserialize;

use super::{positive_duration, Invalid};

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

impl ProxyConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        positive_duration("proxy.upstream_timeout", self.upstream_timeout, None)?;
        positive_duration("proxy.connect_timeout", self.connect_timeout, None)
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

impl CaptureConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if self.queue == 0 {
            return Err(Invalid::new(
                "capture.queue",
                "0 is not allowed; must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
