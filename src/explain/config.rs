//! The configuration the explain engine reads. The types live in [`crate::config`].
//!
//! | key | effect |
//! |---|---|
//! | `explain.interval` | how often the global importances are recomputed (`0s`: never; its own task in [`crate::app`]) |
//! | `explain.methods` | which global importances: `permutation`, `shap`, `sensitivity` |
//! | `explain.min_rows` | recent rows a model needs before its importances are computed (at least 2) |
//! | `explain.max_rows` | rows per refresh of permutation and sensitivity (at most [`MAX_EXPLAIN_ROWS`]) |
//! | `explain.batch_rows` | rows per request to the model server (at most [`MAX_BATCH_ROWS`]) |
//! | `explain.shap_rows` | rows explained per refresh for SHAP importance |
//! | `explain.background` | KernelSHAP background rows (at most [`MAX_BACKGROUND`]) |
//! | `explain.shap_coalitions` | coalitions per KernelSHAP explanation (at most [`MAX_COALITIONS`]) |
//! | `explain.sensitivity_step` | finite-difference step, as a fraction of the baseline std |
//! | `explain.timeout` | time limit of one request to the model server |
//! | `performance.positive_class` | the class whose score is explained |
//! | `upstream`, `proxy.connect_timeout` | where requests go, through the proxy's client stack |
//! | `payload` | how the model's answers are read back |
//! | `limits.max_features` | features permuted, occluded, explained or differentiated at most |

pub use crate::config::{
    ExplainConfig, ImportanceMethod, MAX_BACKGROUND, MAX_BATCH_ROWS, MAX_COALITIONS,
    MAX_EXPLAIN_ROWS,
};
