//! The `drift` section: the sliding window the drift statistics are computed over.

use std::time::Duration;

use serde::Deserialize;

use super::{positive_duration, Invalid};

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
    /// Reference sample size of baselines captured from live rows (`baseline.capture_rows`).
    /// The window itself sketches every value for KS and Wasserstein (`stats::sketch`).
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

impl DriftConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        positive_duration("drift.window", self.window, None)?;
        positive_duration("drift.interval", self.interval, None)?;
        if self.sample_size == 0 {
            return Err(Invalid::new(
                "drift.sample_size",
                "0 is not allowed; must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
