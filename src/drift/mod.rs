//! The streaming drift engine (SPEC section 5).
//!
//! Per model it holds the baseline snapshot and one [`window::FeatureWindow`] per baseline
//! feature (inputs in baseline order, at most `limits.max_features`, then the output
//! `prediction`), following the model's baseline in the [`crate::baseline::Registry`] by
//! generation. The analysis side pushes every parsed row into the windows
//! ([`crate::analysis::Analysis::observe`]); every `drift.interval` (and on demand for the API)
//! [`DriftEngine::report`] computes PSI, JS, KS, Wasserstein and chi-square against the
//! baseline, derives each feature's status from the thresholds, and the gauges are
//! updated. An empty window reports no value (the series are removed), never zero drift.
//!
//! Files: [`engine`] (the per-model state, observe/refresh and the [`Analysis`] impl),
//! [`report`] (the report types and how a feature's drift and status are computed from its
//! window), [`config`] (the keys it reads), [`window`] (the time-sliding window of one
//! feature), [`offline`] (`mlmon drift` over a file).
//!
//! [`Analysis`]: crate::analysis::Analysis

pub mod config;
pub mod engine;
pub mod offline;
pub mod report;
pub mod window;

#[cfg(test)]
mod tests;

pub use crate::record::PREDICTION;
pub use engine::{BaselineError, DriftEngine};
pub use report::{
    FeatureDrift, FeatureSketches, LevelReport, ModelDriftReport, ModelSketches, Status,
    ThresholdsReport, WindowCounts,
};
