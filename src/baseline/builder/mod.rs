//! Building a snapshot from data: from a file ([`build_from_file`]) or from
//! live rows ([`BaselineBuilder`]).
//!
//! The build streams, so memory does not grow with the input:
//!
//! - **Pass 1** reads every row once and keeps, per column: count, mean and
//!   M2 (Welford), min, max, and a seeded reservoir of up to
//!   `quantile_sample_size` values (numeric); or exact counts of up to
//!   `10 × max_categories` distinct values (categorical). A column is numeric
//!   while every non-missing value is a number; the first non-number makes it
//!   categorical.
//! - Quantiles and bin edges come from the reservoir: exact when the column
//!   has at most `quantile_sample_size` values, otherwise estimated from a
//!   uniform sample of that size. The reference sample is a seeded uniform
//!   subset of the reservoir.
//! - **Pass 2** runs only when needed: it counts every value into the bins of
//!   columns whose reservoir did not hold all values (so bin proportions are
//!   always exact), and counts the categories of columns that turned out
//!   categorical after pass 1 had started treating them as numbers. Small
//!   inputs (every column within the reservoir, types settled from the first
//!   value) take a single pass.
//!
//! - Both passes run on two threads: one reads and parses each cell once, the
//!   other accumulates, column by column in input order (the same result as one
//!   thread). A file build keeps up to [`PASS2_CACHE_VALUES`] numeric values from
//!   pass 1; when it kept every value, each column is sorted once (radix sort) after
//!   pass 1, and its exact bin counts and its sketch (the atoms of the sorted column
//!   fused once, instead of value by value) come from that sort, the columns spread
//!   over the CPUs: no second pass, no streaming sketch. When the input outgrows the
//!   budget, the values kept so far go into the sketches, which then stream, and pass
//!   2 reads the file again for the bins.
//!
//! Memory is bounded by `8 bytes × quantile_sample_size` per numeric column
//! (0.8 MB at the default 100 000) plus the category tables, plus the pass-1 cache
//! of a file build (at most 64 MiB of values, dropped when the input is larger) and,
//! while a column is sorted, one more copy of it per CPU (the radix sort's scratch).
//!
//! Layout: this file holds the options, the errors and [`build_from_file`];
//! `live` the [`BaselineBuilder`] of live rows; `engine` the two passes over a
//! [`RowSource`](super::RowSource); `numeric`, `categorical` and `joint` the
//! per-column accumulators and the row-aligned sample.

mod categorical;
mod columns;
mod engine;
mod joint;
mod live;
mod numeric;
mod probability;
mod sort;

#[cfg(test)]
mod tests;

use std::path::Path;

use super::progress::Progress;
use super::reader::{open_source, InputFormat, ReadError};
use super::snapshot::{Snapshot, SnapshotError, MAX_BINS};
use engine::Engine;

pub use joint::JOINT_MAX_COLUMNS;
pub use live::BaselineBuilder;

/// Options of a build (the flags of `mlmon baseline build`).
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOptions {
    /// Model name written to the snapshot (`--model`).
    pub model: String,
    /// Model version, when known.
    pub model_version: Option<String>,
    /// Free-text source description; by default the input file and format.
    pub source: Option<String>,
    /// Column holding what the model returns as its prediction, a label or a value
    /// (`--prediction`).
    pub prediction: Option<String>,
    /// Score columns (`--probability`, repeatable): one column is the positive class's
    /// score, several are one per class in class order. Kept in the joint sample (for
    /// calibration), not described as features.
    pub probability: Vec<String>,
    /// Column holding the ground truth (`--target`).
    pub target: Option<String>,
    /// Columns treated as categorical even when they hold numbers (`--categorical`).
    pub categorical: Vec<String>,
    /// Columns left out (`--exclude`).
    pub exclude: Vec<String>,
    /// Bins per numeric feature (`--bins`, default 10).
    pub bins: usize,
    /// Reference sample size per numeric feature (`--sample-size`, default 5000).
    pub sample_size: usize,
    /// Values per numeric column kept for quantiles and bin edges (default 100 000).
    pub quantile_sample_size: usize,
    /// Categories kept per categorical feature; the rest pool into `__other__` (default 1000).
    pub max_categories: usize,
    /// Seed of every random choice, so a build is reproducible (default 0).
    pub seed: u64,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            model: "default".to_string(),
            model_version: None,
            source: None,
            prediction: None,
            probability: Vec::new(),
            target: None,
            categorical: Vec::new(),
            exclude: Vec::new(),
            bins: 10,
            sample_size: 5000,
            quantile_sample_size: 100_000,
            max_categories: 1000,
            seed: 0,
        }
    }
}

impl BuildOptions {
    /// Default options for a model name.
    pub fn new(model: impl Into<String>) -> Self {
        BuildOptions {
            model: model.into(),
            ..BuildOptions::default()
        }
    }

    fn check(&self) -> Result<(), BuildError> {
        let bad = |option: &'static str, message: String| {
            Err(BuildError::InvalidOption { option, message })
        };
        if self.model.trim().is_empty() {
            return bad("--model", "the model name must not be empty".into());
        }
        if self.bins < 2 || self.bins > MAX_BINS {
            return bad("--bins", format!("{} is outside 2..={MAX_BINS}", self.bins));
        }
        if self.sample_size == 0 {
            return bad("--sample-size", "must be at least 1".into());
        }
        if self.max_categories == 0 {
            return bad("max_categories", "must be at least 1".into());
        }
        if self.quantile_sample_size == 0 {
            return bad("quantile_sample_size", "must be at least 1".into());
        }
        if let (Some(p), Some(t)) = (&self.prediction, &self.target) {
            if p == t {
                return bad(
                    "--target",
                    format!("column {p:?} cannot be both the prediction and the target"),
                );
            }
        }
        for (flag, col) in [
            ("--prediction", &self.prediction),
            ("--target", &self.target),
        ] {
            if let Some(c) = col {
                if self.exclude.contains(c) {
                    return bad(flag, format!("column {c:?} is also given with --exclude"));
                }
            }
        }
        for (i, c) in self.probability.iter().enumerate() {
            if self.prediction.as_ref() == Some(c) || self.target.as_ref() == Some(c) {
                return bad(
                    "--probability",
                    format!("column {c:?} is also the --prediction or --target column"),
                );
            }
            if self.exclude.contains(c) {
                return bad(
                    "--probability",
                    format!("column {c:?} is also given with --exclude"),
                );
            }
            if self.probability[..i].contains(c) {
                return bad("--probability", format!("column {c:?} is given twice"));
            }
        }
        Ok(())
    }

    /// Values kept per numeric column: enough for the reference sample too.
    fn reservoir_capacity(&self) -> usize {
        self.quantile_sample_size.max(self.sample_size)
    }

    /// Distinct categories counted exactly before new values pool into `__other__`.
    fn category_tracking_limit(&self) -> usize {
        self.max_categories.saturating_mul(10).max(1000)
    }
}

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The input could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A column named in an option is not in the input.
    #[error(
        "{file}: no column named {column:?} (given with {flag}); the columns are: {available}"
    )]
    UnknownColumn {
        /// The input.
        file: String,
        /// The option that named it.
        flag: &'static str,
        /// The name given.
        column: String,
        /// The columns the input has.
        available: String,
    },
    /// A feature has the name reserved for the prediction or target entry.
    #[error("{file}: a feature column is named {name:?} while --{name} is {column:?}; rename it or add --exclude {name}")]
    NameClash {
        /// The input.
        file: String,
        /// `prediction` or `target`.
        name: &'static str,
        /// The column given with --prediction / --target.
        column: String,
    },
    /// The input has no data rows.
    #[error("{file}: no data rows")]
    NoRows {
        /// The input.
        file: String,
    },
    /// Every column was excluded or used as prediction/target.
    #[error("{file}: no feature and no prediction column left to describe")]
    NothingToDescribe {
        /// The input.
        file: String,
    },
    /// The file changed between the two passes.
    #[error("{file}: the input changed during the build ({first} rows in the first pass, {second} in the second)")]
    InputChanged {
        /// The input.
        file: String,
        /// Rows in pass 1.
        first: u64,
        /// Rows in pass 2.
        second: u64,
    },
    /// An option has an unusable value.
    #[error("{option}: {message}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The built snapshot failed its own checks (a bug; reported rather than written).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Numeric values (8 bytes each, all columns together: 64 MiB) a file build keeps from
/// pass 1 to count exact bin proportions without reading the file a second time; larger
/// inputs take the second pass.
pub const PASS2_CACHE_VALUES: usize = 8 << 20;

/// Builds a snapshot from a CSV, JSON Lines or Parquet file (`format`, or
/// the format the file name implies), reporting progress to `progress`.
pub fn build_from_file(
    path: &Path,
    format: Option<InputFormat>,
    options: &BuildOptions,
    progress: &mut dyn Progress,
) -> Result<Snapshot, BuildError> {
    build_from_file_with(path, format, options, progress, PASS2_CACHE_VALUES)
}

/// [`build_from_file`] keeping at most `cache_budget` values for pass 2 (0: always read
/// the file a second time when pass 2 is needed).
pub(crate) fn build_from_file_with(
    path: &Path,
    format: Option<InputFormat>,
    options: &BuildOptions,
    progress: &mut dyn Progress,
    cache_budget: usize,
) -> Result<Snapshot, BuildError> {
    build_file(path, format, options, progress, cache_budget, true)
}

/// [`build_from_file_with`], reading a plain CSV file into memory first when `columnar`
/// and it fits (else always streaming).
pub(crate) fn build_file(
    path: &Path,
    format: Option<InputFormat>,
    options: &BuildOptions,
    progress: &mut dyn Progress,
    cache_budget: usize,
    columnar: bool,
) -> Result<Snapshot, BuildError> {
    options.check()?;
    let file = path.display().to_string();
    let format = format
        .or_else(|| InputFormat::from_path(path))
        .ok_or_else(|| ReadError::UnknownFormat { file: file.clone() })?;
    let mut skip = options.exclude.clone();
    skip.sort();
    skip.dedup();
    let description = options
        .source
        .clone()
        .unwrap_or_else(|| format!("{file} ({})", format.as_str()));
    let mut engine = Engine::new(options);
    engine.cache_budget = cache_budget;
    if columnar && format == InputFormat::Csv {
        // A plain CSV file that fits in memory: parsed on every CPU into columns.
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        if columns::pass_from_memory(&mut engine, path, size, progress)? {
            engine.check_named_columns(&file, &engine.columns_present())?;
            return engine.into_snapshot(&file, description, Vec::new(), None, &[], &[]);
        }
    }
    let mut source = open_source(path, Some(format), &skip)?;
    engine.pass1(&mut *source, progress)?;
    let mut notes = Vec::new();
    let skipped = source.skipped_columns();
    if !skipped.is_empty() {
        notes.push(format!(
            "nested columns not described: {}",
            skipped.join(", ")
        ));
    }
    let present: Vec<String> = source
        .columns()
        .iter()
        .chain(source.projected_out())
        .cloned()
        .collect();
    engine.check_named_columns(&file, &present)?;
    drop(source);
    if engine.needs_pass2() && !engine.count_bins_from_cache() {
        let mut again = open_source(path, Some(format), &skip)?;
        engine.pass2(&mut *again, progress)?;
    }
    engine.into_snapshot(&file, description, notes, None, &[], &[])
}
