//! Black-box explainability: permutation importance over recent rows and occlusion
//! explanations of single rows, both computed by re-sending rows to the model server.
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
//! f is the positive-class probability when the model returns probabilities (index 1 of a
//! binary distribution, else index 1 of the scores, else the only score), else the numeric
//! prediction; for class labels without probabilities the change is 1 when the label
//! changes, else 0.
//!
//! Files: [`encode`] (rows written back in the model's wire format), [`engine`] (per-model
//! state, the requests to the model server and the [`Analysis`](crate::analysis::Analysis)
//! impl), [`report`] (the compared output and importance reports), [`config`] (the keys it
//! reads).

pub mod config;
pub mod encode;
pub mod engine;
pub mod report;

#[cfg(test)]
mod tests;

pub use encode::{EncodeError, Layout, Template};
pub use engine::{ExplainEngine, ExplainError, EXPLAIN_HEADER, RING_ROWS, TEMPLATE_REFRESH};
pub use report::{FeatureImportance, ImportanceReport, Output};
