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
use crate::baseline::reader::{Cell, RowSource};
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
}

pub(super) fn cell_number(cell: &Cell<'_>) -> Option<f64> {
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
    pub(super) fn new(options: &'o BuildOptions) -> Self {
        Engine {
            options,
            columns: Vec::new(),
            rows: 0,
            roles_from_options: true,
            joint: JointAcc::new(options.sample_size, options.seed),
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
            State::Numeric(acc) => acc.summary.as_ref().is_some_and(|s| !s.exact),
            State::Deferred { .. } => true,
            _ => false,
        })
    }

    /// Pass 2: exact bin counts and deferred categories.
    pub(super) fn pass2(
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

#[inline]
pub(super) fn push_pass1(col: &mut Column, cell: Cell<'_>, row: u64, category_limit: usize) {
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
pub(super) fn push_pass2(col: &mut Column, cell: Cell<'_>) {
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
