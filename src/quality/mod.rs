//! Data quality per model and input feature over the sliding window (docs/quality.md).
//!
//! Every captured row is checked feature by feature against the model's baseline:
//!
//! - **missing**: `null`, NaN, an empty string, or a baseline feature absent from the row;
//! - **type mismatch**: text that does not read as a number on a numeric feature;
//! - **unseen category**: a categorical value the baseline never saw;
//! - **out of range**: a numeric value outside the baseline `[min, max]`;
//! - **outlier**: a numeric value beyond the baseline's Tukey far-out fences
//!   `[Q1 − 3·IQR, Q3 + 3·IQR]` (robust: the quartiles do not move with the tails).
//!
//! The first four are counted since start in `mlmon_feature_errors_total{reason}`; all five
//! are kept per time bucket (the drift window, `drift.window`), which gives the window
//! ratios, the window mean/std/min/max, and the data quality score:
//!
//! ```text
//! score = 1 − mean over features with values in the window of
//!             min(1, max(0, missing − baseline missing) + type_mismatch + unseen + out_of_range)
//! ```
//!
//! (each term a share of the feature's window values, missing ones included). Features the
//! baseline does not know (or every feature of a model without a baseline) are still
//! tracked for missing values and type mismatches, their type fixed by the first value seen,
//! up to `limits.max_features` features per model.
//!
//! Files: [`check`] (how one value is judged), [`engine`] (per-model state,
//! observe/refresh and the [`Analysis`](crate::analysis::Analysis) impl), [`report`] (the
//! report types, ratios and score), [`config`] (the keys it reads).

pub mod check;
pub mod config;
pub mod engine;
pub mod report;

#[cfg(test)]
mod tests;

pub use check::{Check, OUTLIER_IQR_FACTOR};
pub use engine::QualityEngine;
pub use report::{ErrorTotals, FeatureQualityReport, QualityCounts, QualityLimits, QualityReport};
