//! End to end: a real sidecar on 127.0.0.1:0 in front of a real upstream on 127.0.0.1:0
//! (or the real binary), driven over HTTP and read back from `/metrics` and the API.
//!
//! One module per area; run one with `cargo test --test e2e <area>::`.

#[path = "../common/mod.rs"]
mod common;

mod anomaly;
mod cardinality;
mod demo;
mod drift;
mod events;
mod explain;
mod feedback;
mod hardening;
mod health;
mod proxy;
mod quality;
mod shadow;
mod status;
mod stream;
mod versions;
