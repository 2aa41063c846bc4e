//! The `sla`, `feedback` and `performance` sections: latency targets and what model
//! performance is measured against.

use std::time::Duration;

use serde::Deserialize;

use super::Invalid;

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

impl SlaConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(Invalid::new(
                "sla.quantile",
                format!("{} is not between 0 and 1", self.quantile),
            ));
        }
        Ok(())
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
    /// Ground truth consumed from a Kafka topic (docs/streaming.md; off when absent).
    pub kafka: Option<super::sink::KafkaSourceConfig>,
    /// Ground truth consumed from a NATS subject (docs/streaming.md; off when absent).
    pub nats: Option<super::sink::NatsSourceConfig>,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            ttl: Duration::from_secs(3600),
            max_pending: 100_000,
            kafka: None,
            nats: None,
        }
    }
}

impl FeedbackConfig {
    /// Checks the feedback sources' keys.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if let Some(k) = &self.kafka {
            k.check()?;
        }
        if let Some(n) = &self.nats {
            n.check()?;
        }
        Ok(())
    }
}

/// The `performance` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceConfig {
    /// Positive label for binary precision/recall/F1.
    pub positive_class: String,
    /// Decision threshold of a binary model on its positive-class score, for rows whose
    /// response carries scores but no label (default: learnt from the baseline, else 0.5).
    pub threshold: Option<f64>,
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        PerformanceConfig {
            positive_class: "1".into(),
            threshold: None,
        }
    }
}

impl PerformanceConfig {
    /// Checks `performance.threshold` (a score between 0 and 1).
    pub(super) fn check(&self) -> Result<(), Invalid> {
        match self.threshold {
            Some(t) if !(0.0..=1.0).contains(&t) => Err(Invalid::new(
                "performance.threshold",
                format!("{t} is not between 0 and 1"),
            )),
            _ => Ok(()),
        }
    }
}
