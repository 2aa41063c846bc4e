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
//! Memory is bounded by `8 bytes × quantile_sample_size` per numeric column
//! (0.8 MB at the default 100 000) plus the category tables.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use super::progress::Progress;
use super::reader::{
    open_source, Cell, InputFormat, MemorySource, ReadError, RowSource, MAX_COLUMNS,
};
use super::sampling::{subsample, Reservoir, SplitMix64};
use super::snapshot::{
    format_number, parse_number, text_category_key, Bins, BuildInfo, FeatureBaseline, FeatureStats,
    FeatureType, JointSample, ModelInfo, NamedMap, ParsedText, Quantiles, Snapshot, SnapshotError,
    FORMAT_VERSION, MAX_BINS, OTHER_CATEGORY,
};
use crate::record::{FeatureValue, Prediction, Row};

/// Options of a build (the flags of `mlmon baseline build`).
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOptions {
    /// Model name written to the snapshot (`--model`).
    pub model: String,
    /// Model version, when known.
    pub model_version: Option<String>,
    /// Free-text source description; by default the input file and format.
    pub source: Option<String>,
    /// Column holding the model's prediction (`--prediction`).
    pub prediction: Option<String>,
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

/// Builds a snapshot from a CSV, JSON Lines or Parquet file (`format`, or
/// the format the file name implies), reporting progress to `progress`.
pub fn build_from_file(
    path: &Path,
    format: Option<InputFormat>,
    options: &BuildOptions,
    progress: &mut dyn Progress,
) -> Result<Snapshot, BuildError> {
    options.check()?;
    let file = path.display().to_string();
    let format = format
        .or_else(|| InputFormat::from_path(path))
        .ok_or_else(|| ReadError::UnknownFormat { file: file.clone() })?;
    let mut skip = options.exclude.clone();
    skip.sort();
    skip.dedup();
    let mut source = open_source(path, Some(format), &skip)?;
    let mut engine = Engine::new(options);
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
    if engine.needs_pass2() {
        let mut again = open_source(path, Some(format), &skip)?;
        engine.pass2(&mut *again, progress)?;
    }
    let description = options
        .source
        .clone()
        .unwrap_or_else(|| format!("{file} ({})", format.as_str()));
    engine.into_snapshot(&file, description, notes, None, None)
}

/// Builds a baseline from live rows: push the first rows (and their
/// predictions) as they arrive, then [`BaselineBuilder::finish`]. Holds at
/// most `max_rows` rows (and as many predictions) in memory.
#[derive(Debug)]
pub struct BaselineBuilder {
    /// Build options (model name, bins, sample size, categorical, exclude).
    options: BuildOptions,
    /// Rows (and predictions) kept at most.
    max_rows: usize,
    /// Feature names in first-seen order.
    columns: Vec<String>,
    /// Name → index into `columns`.
    index: HashMap<String, usize>,
    /// Captured rows as (column index, value).
    rows: Vec<Vec<(usize, FeatureValue)>>,
    /// Captured prediction values, each as a one-column row.
    predictions: Vec<Vec<(usize, FeatureValue)>>,
}

impl BaselineBuilder {
    /// A builder that keeps the first `max_rows` rows and predictions.
    pub fn new(options: BuildOptions, max_rows: usize) -> Self {
        BaselineBuilder {
            options,
            max_rows,
            columns: Vec::new(),
            index: HashMap::new(),
            rows: Vec::new(),
            predictions: Vec::new(),
        }
    }

    /// Adds one input row; returns false (and ignores the row) once
    /// `max_rows` rows are held. Excluded features and features beyond the
    /// first 10 000 names are dropped.
    pub fn push_row(&mut self, row: &Row) -> bool {
        if self.rows.len() >= self.max_rows {
            return false;
        }
        let mut values = Vec::with_capacity(row.values.len());
        for (name, value) in &row.values {
            if self.options.exclude.contains(name) {
                continue;
            }
            let idx = match self.index.get(name) {
                Some(i) => *i,
                None if self.columns.len() < MAX_COLUMNS => {
                    self.columns.push(name.clone());
                    self.index.insert(name.clone(), self.columns.len() - 1);
                    self.columns.len() - 1
                }
                None => continue,
            };
            values.push((idx, value.clone()));
        }
        self.rows.push(values);
        true
    }

    /// Adds one prediction (its value; probabilities are not kept); returns
    /// false (and ignores it) once `max_rows` predictions are held.
    pub fn push_prediction(&mut self, prediction: &Prediction) -> bool {
        if self.predictions.len() >= self.max_rows {
            return false;
        }
        self.predictions.push(vec![(0, prediction.value.clone())]);
        true
    }

    /// Rows held so far.
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// True once `max_rows` rows are held.
    pub fn is_full(&self) -> bool {
        self.rows.len() >= self.max_rows
    }

    /// Builds the snapshot from the rows held.
    pub fn finish(self) -> Result<Snapshot, BuildError> {
        self.options.check()?;
        let origin = format!("first {} live rows", self.rows.len());
        let mut features = Engine::new(&self.options);
        features.roles_from_options = false;
        let mut source = MemorySource {
            origin: &origin,
            columns: &self.columns,
            rows: &self.rows,
            next: 0,
        };
        let mut quiet = super::progress::NoProgress;
        features.pass1(&mut source, &mut quiet)?;
        if features.needs_pass2() {
            source.next = 0;
            features.pass2(&mut source, &mut quiet)?;
        }
        let prediction = if self.predictions.is_empty() {
            None
        } else {
            let names = ["prediction".to_string()];
            let mut engine = Engine::new(&self.options);
            engine.roles_from_options = false;
            let mut source = MemorySource {
                origin: &origin,
                columns: &names,
                rows: &self.predictions,
                next: 0,
            };
            engine.pass1(&mut source, &mut quiet)?;
            if engine.needs_pass2() {
                source.next = 0;
                engine.pass2(&mut source, &mut quiet)?;
            }
            engine
                .finish_columns()
                .into_iter()
                .next()
                .map(|(_, _, f)| f)
        };
        let description = self
            .options
            .source
            .clone()
            .unwrap_or_else(|| origin.clone());
        // Predictions pair with rows by position when every row had one.
        let cells: Option<Vec<Option<f64>>> =
            (self.predictions.len() == self.rows.len()).then(|| {
                self.predictions
                    .iter()
                    .map(|p| p.first().and_then(|(_, v)| cell_number(&value_cell(v))))
                    .collect()
            });
        features.into_snapshot(
            &origin,
            description,
            Vec::new(),
            prediction,
            cells.as_deref(),
        )
    }
}

/// What a column is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Feature,
    Prediction,
    Target,
    Ignored,
}

/// Per-column state through the passes.
#[derive(Debug)]
enum State {
    /// Numeric so far.
    Numeric(Box<NumericAcc>),
    /// Categorical from the start (forced, or a non-number in its first value).
    Categorical(CategoricalAcc),
    /// Turned categorical after pass 1 had counted it as numeric: its
    /// categories are counted in pass 2.
    Deferred {
        /// Categories counted in pass 2.
        acc: CategoricalAcc,
        /// Row (1-based) of the first non-number.
        row: u64,
        /// That value (shortened), for the note.
        value: String,
    },
    /// Not described.
    Ignored,
}

#[derive(Debug)]
struct Column {
    /// Column name in the input.
    name: String,
    /// What it is used for.
    role: Role,
    /// Accumulated statistics.
    state: State,
}

#[derive(Debug)]
struct NumericAcc {
    /// Non-missing values.
    count: u64,
    /// Running mean (Welford).
    mean: f64,
    /// Running sum of squared deviations (Welford).
    m2: f64,
    /// Smallest value.
    min: f64,
    /// Largest value.
    max: f64,
    /// Uniform sample for quantiles, edges and the reference sample.
    reservoir: Reservoir<f64>,
    /// Set after pass 1: the sorted reservoir, its generator, edges.
    summary: Option<NumericSummary>,
}

#[derive(Debug)]
struct NumericSummary {
    /// Sorted reservoir values.
    sorted: Vec<f64>,
    /// Generator for the reference subsample.
    rng: SplitMix64,
    /// Whether the reservoir held every value.
    exact: bool,
    /// Interior bin edges.
    edges: Vec<f64>,
    /// Values per bin (complete after pass 1 when exact, else after pass 2).
    bin_counts: Vec<u64>,
    /// Values counted in pass 2.
    pass2_count: u64,
}

impl NumericAcc {
    fn new(capacity: usize, rng: SplitMix64) -> Self {
        NumericAcc {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            reservoir: Reservoir::new(capacity, rng),
            summary: None,
        }
    }

    #[inline]
    fn push(&mut self, v: f64) {
        self.count += 1;
        let delta = v - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (v - self.mean);
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
        self.reservoir.offer(v);
    }

    /// After pass 1: sort the reservoir, derive edges, count bins when exact.
    fn summarize(&mut self, bins: usize) {
        let exact = self.reservoir.is_exact();
        let placeholder = Reservoir::new(0, SplitMix64::for_stream(0, ""));
        let (mut sorted, rng) = std::mem::replace(&mut self.reservoir, placeholder).into_parts();
        sorted.sort_by(f64::total_cmp);
        let edges = if sorted.is_empty() {
            Vec::new()
        } else {
            crate::stats::quantile_edges(&sorted, bins)
        };
        let mut bin_counts = vec![0u64; edges.len() + 1];
        if exact {
            for v in &sorted {
                let i = crate::stats::bin_index(&edges, *v);
                if let Some(c) = bin_counts.get_mut(i) {
                    *c += 1;
                }
            }
        }
        self.summary = Some(NumericSummary {
            sorted,
            rng,
            exact,
            edges,
            bin_counts,
            pass2_count: 0,
        });
    }
}

#[derive(Debug)]
struct CategoricalAcc {
    /// Exact counts of the first `limit` distinct values.
    counts: HashMap<String, u64>,
    /// Values seen after the table was full, not in it.
    overflow: u64,
    /// Non-missing values.
    count: u64,
    /// Distinct values tracked at most.
    limit: usize,
}

impl CategoricalAcc {
    fn new(limit: usize) -> Self {
        CategoricalAcc {
            counts: HashMap::new(),
            overflow: 0,
            count: 0,
            limit,
        }
    }

    #[inline]
    fn push_key(&mut self, key: &str) {
        self.count += 1;
        if let Some(c) = self.counts.get_mut(key) {
            *c += 1;
        } else if self.counts.len() < self.limit {
            self.counts.insert(key.to_string(), 1);
        } else {
            self.overflow += 1;
        }
    }

    #[inline]
    fn push(&mut self, cell: Cell<'_>) {
        match cell {
            Cell::Missing => {}
            Cell::Number(v) => {
                if v.is_finite() {
                    self.push_key(&format_number(v));
                }
            }
            Cell::Text(s) => {
                if let Some(key) = text_category_key(s) {
                    self.push_key(&key);
                }
            }
        }
    }

    /// Proportions (most frequent first, `__other__` last), distinct count, notes.
    fn finish(self, max_categories: usize) -> (NamedMap<f64>, u64, Vec<String>) {
        let mut notes = Vec::new();
        let distinct = self.counts.len() as u64;
        let mut entries: Vec<(String, u64)> = self.counts.into_iter().collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut other = self.overflow;
        if let Some(pos) = entries.iter().position(|(k, _)| k == OTHER_CATEGORY) {
            other += entries.remove(pos).1;
        }
        let mut pooled_values = 0usize;
        if entries.len() > max_categories {
            pooled_values = entries.len() - max_categories;
            other += entries.drain(max_categories..).map(|(_, c)| c).sum::<u64>();
        }
        if self.overflow > 0 {
            notes.push(format!(
                "more than {} distinct values: values first seen after that were counted as {OTHER_CATEGORY}",
                self.limit
            ));
        }
        if pooled_values > 0 {
            notes.push(format!(
                "{distinct} distinct values: the {pooled_values} least frequent are pooled into {OTHER_CATEGORY}"
            ));
        }
        let total = self.count as f64;
        let mut map: Vec<(String, f64)> = entries
            .into_iter()
            .map(|(k, c)| (k, c as f64 / total))
            .collect();
        if other > 0 {
            map.push((OTHER_CATEGORY.to_string(), other as f64 / total));
        }
        (NamedMap(map), distinct, notes)
    }
}

/// The two-pass build over any [`RowSource`].
struct Engine<'o> {
    /// Build options.
    options: &'o BuildOptions,
    /// Columns by input index.
    columns: Vec<Column>,
    /// Rows read in pass 1.
    rows: u64,
    /// Whether `prediction`/`target` options pick columns (file builds).
    roles_from_options: bool,
    /// Row-aligned reservoir of whole rows (the snapshot's `joint_sample`).
    joint: JointAcc,
}

/// Columns (by input position) whose cells enter the joint sample at most; later columns
/// are described per feature only (bounds the reservoir at `sample_size × 512` cells).
pub const JOINT_MAX_COLUMNS: usize = 512;

/// A seeded reservoir (algorithm R) of whole rows: the numeric reading of each cell of
/// the first [`JOINT_MAX_COLUMNS`] columns, with the row's position in the input.
#[derive(Debug)]
struct JointAcc {
    capacity: usize,
    seen: u64,
    rows: Vec<(u64, Vec<Option<f64>>)>,
    rng: SplitMix64,
    /// Slot the row being read goes to, when it is kept.
    slot: Option<usize>,
    buf: Vec<Option<f64>>,
}

impl JointAcc {
    fn new(capacity: usize, seed: u64) -> Self {
        JointAcc {
            capacity,
            seen: 0,
            rows: Vec::new(),
            rng: SplitMix64::for_stream(seed, "joint_sample"),
            slot: None,
            buf: Vec::new(),
        }
    }

    /// Decides whether the next row is kept (before it is read).
    fn begin(&mut self) {
        let n = self.seen + 1;
        self.slot = if self.rows.len() < self.capacity {
            Some(self.rows.len())
        } else if self.capacity > 0 {
            let j = self.rng.below(n) as usize;
            (j < self.capacity).then_some(j)
        } else {
            None
        };
    }

    #[inline]
    fn record(&mut self, i: usize, v: Option<f64>) {
        if self.slot.is_none() || i >= JOINT_MAX_COLUMNS {
            return;
        }
        if self.buf.len() <= i {
            self.buf.resize(i + 1, None);
        }
        self.buf[i] = v;
    }

    /// The row was read: keeps it when chosen.
    fn end(&mut self) {
        self.seen += 1;
        if let Some(slot) = self.slot.take() {
            let cells = std::mem::take(&mut self.buf);
            let row = (self.seen - 1, cells);
            if slot < self.rows.len() {
                self.rows[slot] = row;
            } else {
                self.rows.push(row);
            }
        }
    }
}

fn cell_number(cell: &Cell<'_>) -> Option<f64> {
    match cell {
        Cell::Missing => None,
        Cell::Number(v) => v.is_finite().then_some(*v),
        Cell::Text(s) => match parse_number(s) {
            ParsedText::Number(v) => Some(v),
            _ => None,
        },
    }
}

impl<'o> Engine<'o> {
    fn new(options: &'o BuildOptions) -> Self {
        Engine {
            options,
            columns: Vec::new(),
            rows: 0,
            roles_from_options: true,
            joint: JointAcc::new(options.sample_size, options.seed),
        }
    }

    fn new_column(&self, name: &str) -> Column {
        let o = self.options;
        let role = if o.exclude.iter().any(|e| e == name) {
            Role::Ignored
        } else if self.roles_from_options && o.prediction.as_deref() == Some(name) {
            Role::Prediction
        } else if self.roles_from_options && o.target.as_deref() == Some(name) {
            Role::Target
        } else {
            Role::Feature
        };
        let state = if role == Role::Ignored {
            State::Ignored
        } else if o.categorical.iter().any(|c| c == name) {
            State::Categorical(CategoricalAcc::new(o.category_tracking_limit()))
        } else {
            State::Numeric(Box::new(NumericAcc::new(
                o.reservoir_capacity(),
                SplitMix64::for_stream(o.seed, name),
            )))
        };
        Column {
            name: name.to_string(),
            role,
            state,
        }
    }

    /// Pass 1: counts, moments, reservoirs, categories; settles each type.
    fn pass1(
        &mut self,
        source: &mut dyn RowSource,
        progress: &mut dyn Progress,
    ) -> Result<(), BuildError> {
        let start = source.position();
        progress.start("reading", start.total, start.bytes);
        for name in source.columns().to_vec() {
            let col = self.new_column(&name);
            self.columns.push(col);
        }
        let limit = self.options.category_tracking_limit();
        let mut pending: Vec<(usize, FeatureValue)> = Vec::new();
        loop {
            let row_no = self.rows + 1;
            let columns = &mut self.columns;
            let joint = &mut self.joint;
            joint.begin();
            let more = source.next_row(&mut |i, cell| match columns.get_mut(i) {
                Some(col) => {
                    joint.record(i, cell_number(&cell));
                    push_pass1(col, cell, row_no, limit)
                }
                None => pending.push((i, cell.to_feature_value())),
            })?;
            if !more {
                break;
            }
            self.rows += 1;
            if !pending.is_empty() {
                let names = source.columns();
                while self.columns.len() < names.len() {
                    let col = self.new_column(&names[self.columns.len()]);
                    self.columns.push(col);
                }
                for (i, v) in pending.drain(..) {
                    if let Some(col) = self.columns.get_mut(i) {
                        let cell = value_cell(&v);
                        self.joint.record(i, cell_number(&cell));
                        push_pass1(col, cell, row_no, limit);
                    }
                }
            }
            self.joint.end();
            if self.rows.is_multiple_of(4096) {
                progress.update(source.position().done);
            }
        }
        progress.finish();
        if self.rows == 0 {
            return Err(BuildError::NoRows {
                file: source.origin().to_string(),
            });
        }
        if !self
            .columns
            .iter()
            .any(|c| matches!(c.role, Role::Feature | Role::Prediction))
        {
            return Err(BuildError::NothingToDescribe {
                file: source.origin().to_string(),
            });
        }
        let bins = self.options.bins;
        for col in &mut self.columns {
            if let State::Numeric(acc) = &mut col.state {
                acc.summarize(bins);
            }
        }
        Ok(())
    }

    /// Checks that every column named in an option exists.
    fn check_named_columns(&self, file: &str, present: &[String]) -> Result<(), BuildError> {
        let o = self.options;
        let mut named: Vec<(&'static str, &String)> = Vec::new();
        named.extend(o.prediction.iter().map(|c| ("--prediction", c)));
        named.extend(o.target.iter().map(|c| ("--target", c)));
        named.extend(o.categorical.iter().map(|c| ("--categorical", c)));
        named.extend(o.exclude.iter().map(|c| ("--exclude", c)));
        // A feature called "prediction" (or "target") next to a prediction
        // (target) entry would export two series with the same labels.
        for (role, option) in [("prediction", &o.prediction), ("target", &o.target)] {
            if let Some(col) = option {
                if col != role
                    && present.iter().any(|c| c == role)
                    && !o.exclude.iter().any(|e| e == role)
                {
                    return Err(BuildError::NameClash {
                        file: file.to_string(),
                        name: role,
                        column: col.clone(),
                    });
                }
            }
        }
        for (flag, column) in named {
            if !present.contains(column) {
                return Err(BuildError::UnknownColumn {
                    file: file.to_string(),
                    flag,
                    column: column.clone(),
                    available: present.join(", "),
                });
            }
        }
        Ok(())
    }

    /// Whether pass 2 is needed (inexact bins or deferred categorical columns).
    fn needs_pass2(&self) -> bool {
        self.columns.iter().any(|c| match &c.state {
            State::Numeric(acc) => acc.summary.as_ref().is_some_and(|s| !s.exact),
            State::Deferred { .. } => true,
            _ => false,
        })
    }

    /// Pass 2: exact bin counts and deferred categories.
    fn pass2(
        &mut self,
        source: &mut dyn RowSource,
        progress: &mut dyn Progress,
    ) -> Result<(), BuildError> {
        let start = source.position();
        progress.start("counting bins", start.total, start.bytes);
        let mut rows = 0u64;
        loop {
            let columns = &mut self.columns;
            let more = source.next_row(&mut |i, cell| {
                if let Some(col) = columns.get_mut(i) {
                    push_pass2(col, cell);
                }
            })?;
            if !more {
                break;
            }
            rows += 1;
            if rows.is_multiple_of(4096) {
                progress.update(source.position().done);
            }
        }
        progress.finish();
        if rows != self.rows {
            return Err(BuildError::InputChanged {
                file: source.origin().to_string(),
                first: self.rows,
                second: rows,
            });
        }
        for col in &self.columns {
            if let State::Numeric(acc) = &col.state {
                if let Some(s) = &acc.summary {
                    if !s.exact && s.pass2_count != acc.count {
                        return Err(BuildError::InputChanged {
                            file: source.origin().to_string(),
                            first: self.rows,
                            second: rows,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Per-column results: (name, role, baseline).
    fn finish_columns(self) -> Vec<(String, Role, FeatureBaseline)> {
        let o = self.options;
        let rows = self.rows;
        let mut out = Vec::new();
        for col in self.columns {
            if col.role == Role::Ignored {
                continue;
            }
            let entry = match col.state {
                State::Ignored => continue,
                State::Numeric(acc) => numeric_baseline(*acc, rows, o),
                State::Categorical(acc) => categorical_baseline(acc, rows, o, None),
                State::Deferred { acc, row, value } => categorical_baseline(
                    acc,
                    rows,
                    o,
                    Some(format!(
                        "treated as categorical: row {row} holds {value:?}, which is not a number"
                    )),
                ),
            };
            out.push((col.name, col.role, entry));
        }
        out
    }

    /// The joint sample of the numeric columns (inputs, prediction, target), rows in input
    /// order; `prediction_cells` (one per input row) adds a `prediction` column.
    fn joint_sample(&mut self, prediction_cells: Option<&[Option<f64>]>) -> Option<JointSample> {
        let mut columns = Vec::new();
        let mut index = Vec::new();
        for (i, col) in self.columns.iter().enumerate().take(JOINT_MAX_COLUMNS) {
            if !matches!(col.state, State::Numeric(_)) {
                continue;
            }
            let name = match col.role {
                Role::Feature => col.name.clone(),
                Role::Prediction => "prediction".to_string(),
                Role::Target => "target".to_string(),
                Role::Ignored => continue,
            };
            columns.push(name);
            index.push(i);
        }
        if prediction_cells.is_some() {
            columns.push("prediction".to_string());
        }
        let mut kept = std::mem::take(&mut self.joint.rows);
        if columns.is_empty() || kept.is_empty() {
            return None;
        }
        kept.sort_by_key(|(n, _)| *n);
        let rows = kept
            .into_iter()
            .map(|(n, cells)| {
                let mut row: Vec<Option<f64>> = index
                    .iter()
                    .map(|&i| cells.get(i).copied().flatten())
                    .collect();
                if let Some(p) = prediction_cells {
                    row.push(p.get(n as usize).copied().flatten());
                }
                row
            })
            .collect();
        Some(JointSample { columns, rows })
    }

    fn into_snapshot(
        mut self,
        file: &str,
        description: String,
        notes: Vec<String>,
        prediction_override: Option<FeatureBaseline>,
        prediction_cells: Option<&[Option<f64>]>,
    ) -> Result<Snapshot, BuildError> {
        let o = self.options;
        let row_count = self.rows;
        let prediction_cells = prediction_cells.filter(|_| {
            prediction_override
                .as_ref()
                .is_some_and(|p| p.kind == FeatureType::Numeric)
        });
        let joint_sample = self.joint_sample(prediction_cells);
        let mut features = Vec::new();
        let mut prediction = prediction_override;
        let mut target = None;
        for (name, role, entry) in self.finish_columns() {
            match role {
                Role::Feature => features.push((name, entry)),
                Role::Prediction => prediction = Some(entry),
                Role::Target => target = Some(entry),
                Role::Ignored => {}
            }
        }
        if features.is_empty() && prediction.is_none() {
            return Err(BuildError::NothingToDescribe {
                file: file.to_string(),
            });
        }
        let mut snapshot = Snapshot {
            format_version: FORMAT_VERSION,
            model: ModelInfo {
                name: o.model.clone(),
                version: o.model_version.clone(),
            },
            id: String::new(),
            created_at: Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
            source: Some(description),
            row_count,
            build: Some(BuildInfo {
                tool: Some(format!("mlmon {}", env!("CARGO_PKG_VERSION"))),
                seed: Some(o.seed),
                bins: Some(o.bins),
                sample_size: Some(o.sample_size),
                quantile_sample_size: Some(o.quantile_sample_size),
                max_categories: Some(o.max_categories),
            }),
            notes,
            features: NamedMap(features),
            prediction,
            target,
            joint_sample,
        };
        snapshot
            .validate()
            .map_err(|(path, message)| SnapshotError::Invalid {
                file: file.to_string(),
                path,
                message: format!("built snapshot failed its own check: {message}"),
            })?;
        snapshot.id = snapshot.content_id()?;
        Ok(snapshot)
    }
}

fn value_cell(v: &FeatureValue) -> Cell<'_> {
    match v {
        FeatureValue::Missing => Cell::Missing,
        FeatureValue::Number(x) => Cell::Number(*x),
        FeatureValue::Text(s) => Cell::Text(s),
    }
}

#[inline]
fn push_pass1(col: &mut Column, cell: Cell<'_>, row: u64, category_limit: usize) {
    match &mut col.state {
        State::Numeric(acc) => match cell {
            Cell::Missing => {}
            Cell::Number(v) => {
                if v.is_finite() {
                    acc.push(v);
                }
            }
            Cell::Text(s) => match parse_number(s) {
                ParsedText::Number(v) => acc.push(v),
                ParsedText::NonFinite => {}
                ParsedText::Text => {
                    let value: String = s.chars().take(40).collect();
                    if acc.count == 0 {
                        // Nothing counted yet: switch now, no second pass needed.
                        let mut cat = CategoricalAcc::new(category_limit);
                        cat.push(cell);
                        col.state = State::Categorical(cat);
                    } else {
                        col.state = State::Deferred {
                            acc: CategoricalAcc::new(category_limit),
                            row,
                            value,
                        };
                    }
                }
            },
        },
        State::Categorical(acc) => acc.push(cell),
        State::Deferred { .. } | State::Ignored => {}
    }
}

#[inline]
fn push_pass2(col: &mut Column, cell: Cell<'_>) {
    match &mut col.state {
        State::Numeric(acc) => {
            let Some(s) = acc.summary.as_mut() else {
                return;
            };
            if s.exact {
                return;
            }
            let v = match cell {
                Cell::Number(v) if v.is_finite() => v,
                Cell::Text(t) => match parse_number(t) {
                    ParsedText::Number(v) => v,
                    _ => return,
                },
                _ => return,
            };
            let i = crate::stats::bin_index(&s.edges, v);
            if let Some(c) = s.bin_counts.get_mut(i) {
                *c += 1;
            }
            s.pass2_count += 1;
        }
        State::Deferred { acc, .. } => acc.push(cell),
        _ => {}
    }
}

fn missing_ratio(count: u64, rows: u64) -> f64 {
    if rows == 0 {
        0.0
    } else {
        (rows.saturating_sub(count)) as f64 / rows as f64
    }
}

fn numeric_baseline(acc: NumericAcc, rows: u64, o: &BuildOptions) -> FeatureBaseline {
    let mut notes = Vec::new();
    let mut stats = FeatureStats {
        count: acc.count,
        missing_ratio: missing_ratio(acc.count, rows),
        ..FeatureStats::default()
    };
    let Some(summary) = acc.summary else {
        // Unreachable in practice (pass 1 summarizes every numeric column).
        return empty_numeric(stats);
    };
    if acc.count == 0 {
        notes.push("no values: every row is missing".to_string());
        let mut entry = empty_numeric(stats);
        entry.notes = notes;
        return entry;
    }
    stats.mean = Some(acc.mean);
    stats.std = (acc.count >= 2).then(|| (acc.m2 / (acc.count - 1) as f64).max(0.0).sqrt());
    stats.min = Some(acc.min);
    stats.max = Some(acc.max);
    let NumericSummary {
        sorted,
        mut rng,
        exact,
        edges,
        bin_counts,
        ..
    } = summary;
    // `sorted` is not empty here (count > 0), so every quantile exists.
    let q =
        Quantiles::LEVELS.map(|l| crate::stats::quantile_sorted(&sorted, l).unwrap_or(f64::NAN));
    if !exact {
        notes.push(format!(
            "quantiles and bin edges estimated from a uniform sample of {} of {} values; bin proportions are exact",
            sorted.len(),
            acc.count
        ));
    }
    stats.quantiles = Some(Quantiles::from_values(q));
    let total: u64 = bin_counts.iter().sum();
    let proportions = bin_counts
        .iter()
        .map(|c| {
            if total == 0 {
                0.0
            } else {
                *c as f64 / total as f64
            }
        })
        .collect();
    let mut sample = subsample(sorted, o.sample_size, &mut rng);
    sample.sort_by(f64::total_cmp);
    FeatureBaseline {
        kind: FeatureType::Numeric,
        stats,
        bins: Some(Bins { edges, proportions }),
        categories: None,
        sample,
        thresholds: None,
        importance: None,
        notes,
    }
}

fn empty_numeric(stats: FeatureStats) -> FeatureBaseline {
    FeatureBaseline {
        kind: FeatureType::Numeric,
        stats,
        bins: Some(Bins {
            edges: Vec::new(),
            proportions: vec![1.0],
        }),
        categories: None,
        sample: Vec::new(),
        thresholds: None,
        importance: None,
        notes: Vec::new(),
    }
}

fn categorical_baseline(
    acc: CategoricalAcc,
    rows: u64,
    o: &BuildOptions,
    note: Option<String>,
) -> FeatureBaseline {
    let count = acc.count;
    let (categories, distinct, mut notes) = acc.finish(o.max_categories);
    if let Some(n) = note {
        notes.insert(0, n);
    }
    if count == 0 {
        notes.push("no values: every row is missing".to_string());
    }
    FeatureBaseline {
        kind: FeatureType::Categorical,
        stats: FeatureStats {
            count,
            missing_ratio: missing_ratio(count, rows),
            distinct: Some(distinct),
            ..FeatureStats::default()
        },
        bins: None,
        categories: Some(categories),
        sample: Vec::new(),
        thresholds: None,
        importance: None,
        notes,
    }
}
