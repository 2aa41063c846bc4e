//! Model versions side by side (SPEC section 10, docs/versions.md).
//!
//! The proxy names each request's version (the path, else `model.version_header`, else
//! `model.version`, folded to `model.max_versions` per model by
//! [`crate::proxy::model_id::ModelNames::fold_version`]) and keeps its latency and errors
//! per version ([`crate::latency::LatencyWindows::record_version`]). This analysis keeps
//! the rest per version over `drift.window`: the prediction distribution (a bounded
//! sample), the class scores (for the label-free accuracy estimate) and the ground truth
//! joined to the version that answered (accuracy, absolute errors). [`compare`] answers
//! `GET /api/v1/models/{model}/compare` with the tests of [`significance`]; every refresh
//! exports each version against the model's reference version.

pub mod compare;
pub mod engine;
pub mod report;
pub mod significance;

pub use compare::{CompareParams, Comparison, MetricComparison, Verdict};
pub use engine::VersionsEngine;
pub use report::{Figure, VersionSummary, VersionsReport};

#[cfg(test)]
mod tests;
