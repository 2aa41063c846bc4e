//! The two-pass build over any [`RowSource`]: pass 1 settles types and
//! accumulates; pass 2 (only when needed) counts exact bins and late
//! categorical columns.

use std::time::SystemTime;

use super::categorical::{categorical_baseline, CategoricalAcc};
use super::joint::JointAcc;
use super::numeric::{numeric_baseline, NumericAcc};
use super::probability::probability_info;
use super::{BuildError, BuildOptions};
use crate::baseline::progress::Progress;
use crate::baseline::reader::{fast_f64, Cell, RowSource};
use crate::baseline::sampling::SplitMix64;
use crate::baseline::snapshot::{
    parse_number, BuildInfo, FeatureBaseline, ModelInfo, NamedMap, ParsedText, Snapshot,
    SnapshotError, FORMAT_VERSION,
};
use crate::record::FeatureValue;

/// What a column is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Feature,
    Prediction,
    Target,
    /// A score column (`--probability`): kept in the joint sample only.
    Probability,
    Ignored,
}

/// Per-column state through the passes.
#[derive(Debug)]
pub(super) enum State {
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
pub(super) struct Column {
    /// Column name in the input.
    pub(super) name: String,
    /// What it is used for.
    pub(super) role: Role,
    /// Accumulated statistics.
    pub(super) state: State,
}

/// The two-pass build over any [`RowSource`].
pub(super) struct Engine<'o> {
    /// Build options.
    pub(super) options: &'o BuildOptions,
    /// Columns by input index.
    pub(super) columns: Vec<Column>,
    /// Rows read in pass 1.
    pub(super) rows: u64,
    /// Whether `prediction`/`target` options pick columns (file builds).
    pub(super) roles_from_options: bool,
    /// Row-aligned reservoir of whole rows (the snapshot's `joint_sample`).
    pub(super) joint: JointAcc,
    /// Numeric values pass 1 may keep in memory (all columns together) so that pass 2
    /// need not read the input again ([`Engine::count_bins_from_cache`]); 0 keeps none.
    pub(super) cache_budget: usize,
}

pub(super) fn cell_number(cell: &Cell<'_>) -> Option<f64> {
    match cell {
        Cell::Missing => None,
        Cell::Number(v) => v.is_finite().then_some(*v),
        Cell::Text(s) => match fast_f64(s).map_or_else(|| parse_number(s), ParsedText::Number) {
            ParsedText::Number(v) => Some(v),
            _ => None,
        },
    }
}

impl<'o> Engine<'o> {
    pub(super) fn new(options: &'o BuildOptions) -> Self {
        Engine {
            options,
            columns: Vec::new(),
            rows: 0,
            roles_from_options: true,
            joint: JointAcc::new(options.sample_size, options.seed),
            cache_budget: 0,
        }
    }

    pub(super) fn new_column(&self, name: &str) -> Column {
        let o = self.options;
        let role = if o.exclude.iter().any(|e| e == name) {
            Role::Ignored
        } else if self.roles_from_options && o.prediction.as_deref() == Some(name) {
            Role::Prediction
        } else if self.roles_from_options && o.target.as_deref() == Some(name) {
            Role::Target
        } else if self.roles_from_options && o.probability.iter().any(|p| p == name) {
            Role::Probability
        } else {
            Role::Feature
        };
        let state = if matches!(role, Role::Ignored | Role::Probability) {
            // Probability columns are only read into the joint sample.
            State::Ignored
        } else if o.categorical.iter().any(|c| c == name) {
            State::Categorical(CategoricalAcc::new(o.category_tracking_limit()))
        } else {
            let mut acc =
                NumericAcc::new(o.reservoir_capacity(), SplitMix64::for_stream(o.seed, name));
            if self.cache_budget > 0 {
                acc.cache = Some(Vec::new());
            }
            State::Numeric(Box::new(acc))
        };
        Column {
            name: name.to_string(),
            role,
            state,
        }
    }

    /// Pass 1: counts, moments, reservoirs, categories; settles each type.
    ///
    /// Pipelined over two threads ([`pipeline`]): this one reads and parses the cells,
    /// the other one accumulates them, column by column in input order, so the result is
    /// the one a single thread gets.
    pub(super) fn pass1(
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
        let known = self.columns.len();
        let mut caching = self.cache_budget > 0;
        let rows = pipeline(source, progress, known, |chunk| {
            for name in &chunk.new_columns {
                let col = self.new_column(name);
                self.columns.push(col);
            }
            let mut from = 0usize;
            for &end in &chunk.row_ends {
                let row_no = self.rows + 1;
                self.joint.begin();
                for cell in &chunk.cells[from..end as usize] {
                    let i = cell.column as usize;
                    if let Some(col) = self.columns.get_mut(i) {
                        self.joint.record(i, cell.number());
                        push_pass1_parsed(col, cell, &chunk.text, row_no, limit);
                    }
                }
                self.joint.end();
                self.rows += 1;
                from = end as usize;
            }
            if caching {
                let cached: usize = self
                    .columns
                    .iter()
                    .filter_map(|c| match &c.state {
                        State::Numeric(acc) => acc.cache.as_ref().map(Vec::capacity),
                        _ => None,
                    })
                    .sum();
                if cached > self.cache_budget {
                    // Over budget: pass 2 will read the input again.
                    caching = false;
                    for c in &mut self.columns {
                        if let State::Numeric(acc) = &mut c.state {
                            acc.drop_cache();
                        }
                    }
                }
            }
        })?;
        debug_assert_eq!(rows, self.rows);
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
        let accs: Vec<&mut NumericAcc> = self
            .columns
            .iter_mut()
            .filter_map(|col| match &mut col.state {
                State::Numeric(acc) => Some(&mut **acc),
                _ => None,
            })
            .collect();
        summarize_all(accs, bins);
        Ok(())
    }

    /// The names of the columns read (pass 1).
    pub(super) fn columns_present(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Checks that every column named in an option exists.
    pub(super) fn check_named_columns(
        &self,
        file: &str,
        present: &[String],
    ) -> Result<(), BuildError> {
        let o = self.options;
        let mut named: Vec<(&'static str, &String)> = Vec::new();
        named.extend(o.prediction.iter().map(|c| ("--prediction", c)));
        named.extend(o.target.iter().map(|c| ("--target", c)));
        named.extend(o.probability.iter().map(|c| ("--probability", c)));
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
    pub(super) fn needs_pass2(&self) -> bool {
        self.columns.iter().any(|c| match &c.state {
            State::Numeric(acc) => acc.summary.as_ref().is_some_and(|s| !s.binned),
            State::Deferred { .. } => true,
            _ => false,
        })
    }

    /// Counts the bins of the columns whose reservoir did not hold every value from the
    /// values pass 1 kept, instead of a second pass over the input: the same counts,
    /// since pass 2 would bin exactly these values. Returns `false` (nothing changed)
    /// when a column needs the input again (no cache, or a deferred categorical column).
    pub(super) fn count_bins_from_cache(&mut self) -> bool {
        let possible = self.columns.iter().all(|c| match &c.state {
            State::Numeric(acc) => match &acc.summary {
                Some(s) if !s.binned => acc.cache.is_some(),
                _ => true,
            },
            State::Deferred { .. } => false,
            _ => true,
        });
        if !possible {
            return false;
        }
        for c in &mut self.columns {
            if let State::Numeric(acc) = &mut c.state {
                let cache = acc.cache.take();
                if let (Some(s), Some(values)) = (acc.summary.as_mut(), cache) {
                    if s.binned {
                        continue;
                    }
                    for v in &values {
                        let i = crate::stats::bin_index(&s.edges, *v);
                        if let Some(c) = s.bin_counts.get_mut(i) {
                            *c += 1;
                        }
                    }
                    s.pass2_count += values.len() as u64;
                }
            }
        }
        true
    }

    /// Pass 2: exact bin counts and deferred categories (pipelined like pass 1).
    pub(super) fn pass2(
        &mut self,
        source: &mut dyn RowSource,
        progress: &mut dyn Progress,
    ) -> Result<(), BuildError> {
        let start = source.position();
        progress.start("counting bins", start.total, start.bytes);
        let known = source.columns().len();
        let columns = &mut self.columns;
        let rows = pipeline(source, progress, known, |chunk| {
            for cell in &chunk.cells {
                if let Some(col) = columns.get_mut(cell.column as usize) {
                    push_pass2_parsed(col, cell, &chunk.text);
                }
            }
        })?;
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
                    if !s.binned && s.pass2_count != acc.count {
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
    pub(super) fn finish_columns(self) -> Vec<(String, Role, FeatureBaseline)> {
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

    /// The snapshot. A live build passes its `prediction_override` entry and `live`
    /// columns for the joint sample (one cell per row: `prediction`, then its score
    /// columns, named in `live_scores`).
    pub(super) fn into_snapshot(
        mut self,
        file: &str,
        description: String,
        notes: Vec<String>,
        prediction_override: Option<FeatureBaseline>,
        live: &[(String, Vec<Option<f64>>)],
        live_scores: &[String],
    ) -> Result<Snapshot, BuildError> {
        let o = self.options;
        let row_count = self.rows;
        let joint_sample = self.joint_sample(live);
        let mut features = Vec::new();
        let mut prediction = prediction_override;
        let mut target = None;
        for (name, role, entry) in self.finish_columns() {
            match role {
                Role::Feature => features.push((name, entry)),
                Role::Prediction => prediction = Some(entry),
                Role::Target => target = Some(entry),
                Role::Ignored | Role::Probability => {}
            }
        }
        let score_columns = if o.probability.is_empty() {
            live_scores
        } else {
            &o.probability
        };
        let probability = probability_info(score_columns, target.as_ref(), prediction.as_ref());
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
            probability,
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

pub(super) fn value_cell(v: &FeatureValue) -> Cell<'_> {
    match v {
        FeatureValue::Missing => Cell::Missing,
        FeatureValue::Number(x) => Cell::Number(*x),
        FeatureValue::Text(s) => Cell::Text(s),
    }
}

/// A cell as the reading thread parsed it.
#[derive(Debug, Clone, Copy)]
pub(super) struct ParsedCell {
    /// Column index in the input.
    pub(super) column: u32,
    /// What the cell holds.
    pub(super) kind: ParsedKind,
}

/// The reading of a cell: what [`push_pass1`] would derive from it, computed once.
#[derive(Debug, Clone, Copy)]
pub(super) enum ParsedKind {
    /// Missing.
    Missing,
    /// A typed number (JSON, Parquet), finite or not.
    Number(f64),
    /// Text holding a finite number.
    TextNumber(f64),
    /// Text holding NaN or an infinity.
    TextNonFinite,
    /// Other text: bytes `start..end` of the chunk's text buffer.
    Text(u32, u32),
}

impl ParsedCell {
    /// The numeric reading ([`cell_number`]).
    #[inline]
    fn number(&self) -> Option<f64> {
        match self.kind {
            ParsedKind::Number(v) | ParsedKind::TextNumber(v) => v.is_finite().then_some(v),
            _ => None,
        }
    }

    /// The cell to give a categorical accumulator. A text number goes as the number: its
    /// category key is the same (`text_category_key` formats the parsed number), and a
    /// non-finite one as NaN, which is not counted either way.
    #[inline]
    fn as_cell<'t>(&self, text: &'t str) -> Cell<'t> {
        match self.kind {
            ParsedKind::Missing => Cell::Missing,
            ParsedKind::Number(v) | ParsedKind::TextNumber(v) => Cell::Number(v),
            ParsedKind::TextNonFinite => Cell::Number(f64::NAN),
            ParsedKind::Text(a, b) => Cell::Text(text.get(a as usize..b as usize).unwrap_or("")),
        }
    }
}

/// Rows read and parsed by the reading thread, handed to the accumulating one.
#[derive(Debug, Default)]
pub(super) struct Chunk {
    /// Names of the columns that appeared in this chunk (JSON Lines), in index order.
    pub(super) new_columns: Vec<String>,
    /// Every cell, row after row.
    pub(super) cells: Vec<ParsedCell>,
    /// End (exclusive) in `cells` of each row.
    pub(super) row_ends: Vec<u32>,
    /// Text of the cells that are not numbers.
    pub(super) text: String,
}

impl Chunk {
    fn clear(&mut self) {
        self.new_columns.clear();
        self.cells.clear();
        self.row_ends.clear();
        self.text.clear();
    }
}

/// Rows per chunk handed between the threads.
const CHUNK_ROWS: usize = 4096;
/// Text bytes after which a chunk is handed over early (bounds its buffer).
const CHUNK_TEXT: usize = 4 << 20;

/// Reads `source` on this thread (parsing every cell once) and runs `consume` on each
/// chunk, in order, on a second thread; returns the rows read. `known` is how many
/// columns the consumer knows about already.
pub(super) fn pipeline<F>(
    source: &mut dyn RowSource,
    progress: &mut dyn Progress,
    mut known: usize,
    mut consume: F,
) -> Result<u64, BuildError>
where
    F: FnMut(&Chunk) + Send,
{
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Chunk>(1);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Chunk>(3);
    for _ in 0..3 {
        let _ = empty_tx.send(Chunk::default());
    }
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for mut chunk in full_rx {
                consume(&chunk);
                chunk.clear();
                if empty_tx.send(chunk).is_err() {
                    break;
                }
            }
        });
        // Owned by this closure: an early return (read error) ends the consumer's loop.
        let full_tx = full_tx;
        let stopped = || BuildError::InvalidOption {
            option: "build",
            message: "the accumulating thread stopped".into(),
        };
        let mut chunk = empty_rx.recv().map_err(|_| stopped())?;
        let mut rows = 0u64;
        loop {
            let cells = &mut chunk.cells;
            let text = &mut chunk.text;
            let more = source.next_row(&mut |i, cell| {
                let kind = match cell {
                    Cell::Missing => ParsedKind::Missing,
                    Cell::Number(v) => ParsedKind::Number(v),
                    Cell::Text(s) => {
                        match fast_f64(s).map_or_else(|| parse_number(s), ParsedText::Number) {
                            ParsedText::Number(v) => ParsedKind::TextNumber(v),
                            ParsedText::NonFinite => ParsedKind::TextNonFinite,
                            ParsedText::Text => {
                                let a = text.len();
                                text.push_str(s);
                                ParsedKind::Text(a as u32, text.len() as u32)
                            }
                        }
                    }
                };
                cells.push(ParsedCell {
                    column: u32::try_from(i).unwrap_or(u32::MAX),
                    kind,
                });
            })?;
            if !more {
                break;
            }
            rows += 1;
            let columns = source.columns();
            if columns.len() > known {
                chunk.new_columns.extend_from_slice(&columns[known..]);
                known = columns.len();
            }
            chunk
                .row_ends
                .push(u32::try_from(chunk.cells.len()).unwrap_or(u32::MAX));
            if rows.is_multiple_of(4096) {
                progress.update(source.position().done);
            }
            if chunk.row_ends.len() >= CHUNK_ROWS || chunk.text.len() >= CHUNK_TEXT {
                full_tx.send(chunk).map_err(|_| stopped())?;
                chunk = empty_rx.recv().map_err(|_| stopped())?;
            }
        }
        if !chunk.row_ends.is_empty() {
            full_tx.send(chunk).map_err(|_| stopped())?;
        }
        Ok(rows)
    })
}

/// Summarizes the numeric columns (sorts, edges, bins, sketches) on as many threads as
/// there are CPUs, a column at a time; the result does not depend on the threads.
fn summarize_all(accs: Vec<&mut NumericAcc>, bins: usize) {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(accs.len());
    if threads <= 1 {
        accs.into_iter().for_each(|a| a.summarize(bins));
        return;
    }
    let queue: Vec<std::sync::Mutex<&mut NumericAcc>> =
        accs.into_iter().map(std::sync::Mutex::new).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(slot) = queue.get(i) else { break };
        if let Ok(mut acc) = slot.lock() {
            acc.summarize(bins);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
}

/// [`push_pass1`] of a parsed cell.
#[inline]
pub(super) fn push_pass1_parsed(
    col: &mut Column,
    cell: &ParsedCell,
    text: &str,
    row: u64,
    category_limit: usize,
) {
    match &mut col.state {
        State::Numeric(acc) => match cell.kind {
            ParsedKind::Missing | ParsedKind::TextNonFinite => {}
            ParsedKind::Number(v) => {
                if v.is_finite() {
                    acc.push(v);
                }
            }
            ParsedKind::TextNumber(v) => acc.push(v),
            ParsedKind::Text(..) => {
                let s = match cell.as_cell(text) {
                    Cell::Text(s) => s,
                    _ => "",
                };
                let value: String = s.chars().take(40).collect();
                if acc.count == 0 {
                    // Nothing counted yet: switch now, no second pass needed.
                    let mut cat = CategoricalAcc::new(category_limit);
                    cat.push(Cell::Text(s));
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
        State::Categorical(acc) => acc.push(cell.as_cell(text)),
        State::Deferred { .. } | State::Ignored => {}
    }
}

/// [`push_pass2`] of a parsed cell.
#[inline]
pub(super) fn push_pass2_parsed(col: &mut Column, cell: &ParsedCell, text: &str) {
    match &mut col.state {
        State::Numeric(acc) => {
            let Some(s) = acc.summary.as_mut() else {
                return;
            };
            if s.binned {
                return;
            }
            let Some(v) = cell.number() else {
                return;
            };
            let i = crate::stats::bin_index(&s.edges, v);
            if let Some(c) = s.bin_counts.get_mut(i) {
                *c += 1;
            }
            s.pass2_count += 1;
        }
        State::Deferred { acc, .. } => acc.push(cell.as_cell(text)),
        _ => {}
    }
}
