//! The configuration the drift engine reads. The types live in [`crate::config`]; this is
//! where to look for which keys change what the engine does.
//!
//! | key | effect |
//! |---|---|
//! | `drift.window` | length of every feature's sliding window (values older than that, up to one bucket more, leave it) |
//! | `drift.sample_size` | not read here: the reference sample size of baselines captured from live rows ([`crate::baseline::Registry`]); KS and Wasserstein use the windows' sketches |
//! | `drift.adaptive` | widens the PSI levels by the sampling noise of small windows |
//! | `drift.interval` | how often [`super::DriftEngine::refresh`] runs (driven by [`crate::app`]) |
//! | `limits.max_features` | input features followed per model (baseline order) |
//! | `thresholds.psi`, `thresholds.js`, `thresholds.ks_statistic` (and `models.<m>.thresholds.*`) | the feature status levels, unless the baseline sets its own |
//!
//! A baseline's per-feature `thresholds` (`psi`, `js_divergence`, `ks_statistic`,
//! `wasserstein`; `ks_pvalue` and `chi2_pvalue` where lower is worse) override the
//! configured levels for that feature.

pub use crate::config::{DriftConfig, LimitsConfig, Thresholds};
