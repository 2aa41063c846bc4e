//! The `drift` section: the sliding window the drift statistics are computed over.

use std::time::Duration;

use serde::Deserialize;

use super::{positive_duration, Invalid};
use crate::stats::sketch::{MAX_COMPRESSION, MIN_COMPRESSION};

/// Default `drift.sketch_compression`: ≤ 64 KiB of sketches per numeric feature at a full
/// window, KS and Wasserstein within the SPEC section 5 targets (docs/drift.md).
pub const DEFAULT_SKETCH_COMPRESSION: u32 = 200;

/// Which per-bin series the drift engine exports for fleet-wide PSI/JS in PromQL
/// (`mlmon_feature_bin_observations_total`, `mlmon_baseline_bin_ratio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetBins {
    /// No per-bin series (the fleet recording rules then have no input).
    #[default]
    Off,
    /// The live bin counters only; the baseline ratios come from a replica set to `full`.
    Counts,
    /// The live bin counters and the baseline ratios.
    Full,
}

impl FleetBins {
    /// Whether `mlmon_feature_bin_observations_total` is exported.
    pub fn counts(self) -> bool {
        matches!(self, FleetBins::Counts | FleetBins::Full)
    }

    /// Whether `mlmon_baseline_bin_ratio` is exported.
    pub fn ratios(self) -> bool {
        self == FleetBins::Full
    }
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
    /// Reference sample size of baselines captured from live rows (`baseline.capture_rows`).
    /// The window itself sketches every value for KS and Wasserstein (`stats::sketch`).
    pub sample_size: usize,
    /// Derive per-feature thresholds from the baseline's own sampling noise.
    pub adaptive: bool,
    /// Compression δ of the window's quantile sketches (KS, Wasserstein): at most
    /// `24·(δ+1)` bytes per closed time bucket; higher is more accurate and larger.
    pub sketch_compression: u32,
    /// Per-bin series for fleet-wide drift in PromQL: `off`, `counts` or `full`.
    pub fleet_bins: FleetBins,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            window: Duration::from_secs(15 * 60),
            interval: Duration::from_secs(10),
            sample_size: 5000,
            adaptive: false,
            sketch_compression: DEFAULT_SKETCH_COMPRESSION,
            fleet_bins: FleetBins::Off,
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
        if !(MIN_COMPRESSION..=MAX_COMPRESSION).contains(&self.sketch_compression) {
            return Err(Invalid::new(
                "drift.sketch_compression",
                format!(
                    "{} is not allowed; must be between {MIN_COMPRESSION} and {MAX_COMPRESSION}",
                    self.sketch_compression
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::config::{Config, Overrides};

    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let mut f = tempfile::Builder::new()
            .suffix(".yaml")
            .tempfile()
            .map_err(|e| e.to_string())?;
        f.write_all(yaml.as_bytes()).map_err(|e| e.to_string())?;
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load_from(Some(f.path()), &Overrides::default(), env).map_err(|e| e.to_string())
    }

    #[test]
    fn fleet_bins_and_sketch_compression_from_file_and_environment() {
        let d = load("{}", &[]).map(|c| c.drift).unwrap_or_default();
        assert_eq!(d.fleet_bins, FleetBins::Off, "off by default");
        assert_eq!(d.sketch_compression, DEFAULT_SKETCH_COMPRESSION);
        // `off` unquoted is a string in YAML 1.2, not a boolean.
        for (text, want) in [
            ("off", FleetBins::Off),
            ("counts", FleetBins::Counts),
            ("full", FleetBins::Full),
        ] {
            let c = load(&format!("drift:\n  fleet_bins: {text}\n"), &[]);
            assert_eq!(c.map(|c| c.drift.fleet_bins), Ok(want), "{text}");
        }
        let c = load(
            "drift: {fleet_bins: counts, sketch_compression: 500}\n",
            &[("MLMON_DRIFT__FLEET_BINS", "full")],
        );
        let d = c.map(|c| c.drift);
        assert_eq!(
            d.as_ref().map(|d| (d.fleet_bins, d.sketch_compression)),
            Ok((FleetBins::Full, 500)),
            "the environment beats the file"
        );
        assert!(FleetBins::Full.ratios() && FleetBins::Full.counts());
        assert!(FleetBins::Counts.counts() && !FleetBins::Counts.ratios());
        assert!(!FleetBins::Off.counts() && !FleetBins::Off.ratios());
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = load("drift: {fleet_bins: maybe}\n", &[]).unwrap_err();
        assert!(
            err.contains("drift.fleet_bins") || err.contains("fleet_bins"),
            "{err}"
        );
        assert!(err.contains("maybe"), "{err}");
        let err = load("drift: {sketch_compression: 5}\n", &[]).unwrap_err();
        assert!(err.contains("drift.sketch_compression"), "{err}");
        assert!(err.contains("between 20 and 100000"), "{err}");
    }
}
