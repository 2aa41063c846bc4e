//! The configuration the explain engine reads. The types live in [`crate::config`].
//!
//! | key | effect |
//! |---|---|
//! | `explain.interval` | how often permutation importance is recomputed (`0s`: never; its own task in [`crate::app`]) |
//! | `explain.min_rows` | recent rows a model needs before its importance is computed (at least 2) |
//! | `explain.max_rows` | rows used per computation and per request (at most [`MAX_EXPLAIN_ROWS`]) |
//! | `explain.timeout` | time limit of one request to the model server |
//! | `upstream`, `proxy.connect_timeout` | where requests go, through the proxy's client stack |
//! | `payload` | how the model's answers are read back |
//! | `limits.max_features` | features permuted or occluded at most |

pub use crate::config::{ExplainConfig, MAX_EXPLAIN_ROWS};
