//! [`BaselineBuilder`]: a baseline from the first N live rows.

use std::collections::HashMap;

use super::engine::{cell_number, value_cell, Engine};
use super::{BuildError, BuildOptions};
use crate::baseline::reader::{MemorySource, MAX_COLUMNS};
use crate::baseline::snapshot::{FeatureType, Snapshot};
use crate::record::{FeatureValue, Prediction, Row};

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
    /// Captured class probabilities, one entry per prediction.
    scores: Vec<Option<Vec<f64>>>,
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
            scores: Vec::new(),
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

    /// Adds one prediction: its value (the `prediction` entry) and its class
    /// probabilities (the snapshot's `probability` columns, when every prediction paired
    /// with a row has as many); returns false (and ignores it) once `max_rows`
    /// predictions are held.
    pub fn push_prediction(&mut self, prediction: &Prediction) -> bool {
        if self.predictions.len() >= self.max_rows {
            return false;
        }
        self.predictions.push(vec![(0, prediction.value.clone())]);
        self.scores.push(prediction.probabilities.clone());
        true
    }

    /// The score columns of a live build: when every row has a prediction with `k ≥ 2`
    /// probabilities, `probability` (the second class's score) for `k = 2`, else
    /// `probability_0 … probability_{k-1}`; none when a name is a feature's.
    fn score_columns(&self) -> Vec<(String, Vec<Option<f64>>)> {
        let k = match self.scores.first() {
            Some(Some(p)) if p.len() >= 2 => p.len(),
            _ => return Vec::new(),
        };
        let paired = self.predictions.len() == self.rows.len();
        if !paired
            || !self
                .scores
                .iter()
                .all(|s| s.as_ref().is_some_and(|p| p.len() == k))
        {
            return Vec::new();
        }
        let column = |i: usize| -> Vec<Option<f64>> {
            self.scores
                .iter()
                .map(|s| {
                    s.as_ref()
                        .and_then(|p| p.get(i))
                        .copied()
                        .filter(|v| v.is_finite())
                })
                .collect()
        };
        let out: Vec<(String, Vec<Option<f64>>)> = if k == 2 {
            vec![("probability".to_string(), column(1))]
        } else {
            (0..k)
                .map(|i| (format!("probability_{i}"), column(i)))
                .collect()
        };
        if out.iter().any(|(n, _)| self.index.contains_key(n)) {
            return Vec::new();
        }
        out
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
        let mut quiet = crate::baseline::progress::NoProgress;
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
        let mut live = Vec::new();
        let numeric = prediction
            .as_ref()
            .is_some_and(|p| p.kind == FeatureType::Numeric);
        if numeric && self.predictions.len() == self.rows.len() {
            let cells = self
                .predictions
                .iter()
                .map(|p| p.first().and_then(|(_, v)| cell_number(&value_cell(v))))
                .collect();
            live.push(("prediction".to_string(), cells));
        }
        let scores = self.score_columns();
        let score_names: Vec<String> = scores.iter().map(|(n, _)| n.clone()).collect();
        live.extend(scores);
        features.into_snapshot(
            &origin,
            description,
            Vec::new(),
            prediction,
            &live,
            &score_names,
        )
    }
}
