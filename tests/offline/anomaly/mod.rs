//! Anomaly detection: configuration, scoring against sklearn/scipy fixtures, detection
//! quality on injected rows, the baseline's joint sample.

mod config;
mod detection;
mod fixtures;
mod joint;
