//! Black-box explainability, computed by re-sending rows to the model server: permutation
//! importance, KernelSHAP and finite-difference sensitivity over recent rows (global, every
//! `explain.interval`), and occlusion, KernelSHAP or sensitivity explanations of single rows.
//!
//! The engine is an [`Analysis`](crate::analysis::Analysis): from proxied traffic it keeps, per model, a bounded ring of the
//! most recent rows ([`RING_ROWS`]) and a [`Template`] of the model's wire format (learnt
//! from one accepted request at most every [`TEMPLATE_REFRESH`]). Requests mlmon sends
//! itself go straight to `upstream`, never through the proxy, so they are not counted as
//! traffic; they carry `x-mlmon-explain: 1` and a fresh `x-request-id`.
//!
//! - **Permutation importance** ("model reliance", label-free): predict the recent rows,
//!   then, per feature, predict them again with that feature's column shuffled (seeded);
//!   importance = mean |f(x) − f(x_perm)|. One request per feature (rows batched).
//! - **Occlusion** (one row): replace each feature by the baseline's median (numeric) or most
//!   frequent category, predict the F + 1 rows in one request; contribution = f(x) − f(x').
//!
//! - **KernelSHAP** ([`shap`]): Shapley values of f against a background ([`background`]: a
//!   k-means summary of the baseline's joint sample), all coalitions when they fit in
//!   `explain.shap_coalitions`, else sampled as `shap.KernelExplainer` does; weighted least
//!   squares with Σ φ = f(x) − E\[f\]. Global importance = mean |φ|, also fed to the drift score
//!   ([`live`]).
//! - **Sensitivity**: central finite differences per numeric feature, step =
//!   `explain.sensitivity_step` × the baseline's standard deviation.
//!
//! f is picked by [`OutputPicker`]: the positive class's score (`performance.positive_class`
//! in the baseline's class order), else the numeric prediction; for class labels without
//! probabilities occlusion and permutation count 1 when the label changes, KernelSHAP and
//! sensitivity use 1 when the label is the positive class.
//!
//! Files: [`encode`] (rows written back in the model's wire format), [`engine`] (per-model
//! state, the requests to the model server and the [`Analysis`](crate::analysis::Analysis)
//! impl), [`report`] (the compared output and importance reports), [`shap`], [`background`],
//! [`live`], [`config`] (the keys it reads).

pub mod background;
pub mod config;
pub mod encode;
pub mod engine;
pub mod report;
pub mod shap;

#[cfg(test)]
mod shap_tests;
#[cfg(test)]
mod tests;

pub use crate::analysis::LiveImportance;
pub use encode::{EncodeError, Layout, Template};
pub use engine::{
    ExplainEngine, ExplainError, ExplainMethod, ShapRow, ShapRun, EXPLAIN_HEADER, RING_PERIOD,
    RING_ROWS, RING_ROWS_PER_PERIOD, TEMPLATE_REFRESH,
};
pub use report::{FeatureImportance, ImportanceReport, Output, OutputPicker};
