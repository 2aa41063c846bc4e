//! Baseline snapshots: what a model's inputs and outputs looked like when it
//! was trained or validated, the reference every drift statistic compares
//! live traffic against.
//!
//! Layout:
//! - [`snapshot`]: the JSON format (`format_version: 2`, 1 still read; documented in
//!   `docs/baseline.md` and `docs/baseline.schema.json`): the types in
//!   `snapshot/mod.rs`, loading and writing (`io`), the checks (`validate`),
//!   category keys (`key`).
//! - [`builder`]: building a snapshot from a file in two bounded-memory
//!   passes ([`build_from_file`], `builder/engine.rs`) or from the first N
//!   live rows ([`BaselineBuilder`], `builder/live.rs`); the per-column
//!   accumulators in `numeric`, `categorical` and `joint`.
//! - [`reader`]: CSV, JSON Lines and Parquet read one row at a time (also
//!   used by the offline `mlmon drift`), one file per format.
//! - [`show`]: the human summary printed by `mlmon baseline show`.
//! - [`progress`]: the progress-bar hook.
//! - `sampling`: the seeded generator and reservoir behind reproducible samples.

pub mod builder;
pub mod progress;
pub mod reader;
pub mod registry;
mod sampling;
pub mod show;
pub mod snapshot;

#[cfg(test)]
mod test_support;

pub use builder::{build_from_file, BaselineBuilder, BuildError, BuildOptions};
pub use progress::{NoProgress, Progress, TerminalProgress};
pub use reader::{open_source, Cell, InputFormat, ReadError, RowSource};
pub use registry::{Current, Registry, RegistryError};
pub use show::render as render_summary;
pub use snapshot::{
    category_key, Bins, BuildInfo, EntryRole, FeatureBaseline, FeatureStats, FeatureType,
    JointCells, JointRow, JointSample, ModelInfo, NamedMap, ProbabilityInfo, Quantiles, Snapshot,
    SnapshotError, ThresholdPair, Thresholds, FORMAT_VERSION, MIN_FORMAT_VERSION, OTHER_CATEGORY,
};
