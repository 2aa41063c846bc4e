//! Rows held in memory, replayed as a [`RowSource`].

use super::{Cell, ReadError, RowSource, SourcePosition};
use crate::record::FeatureValue;

/// Rows held in memory (the live capture of the first N rows), replayed as a source.
pub(crate) struct MemorySource<'a> {
    /// Origin for messages.
    pub(crate) origin: &'a str,
    /// Column names.
    pub(crate) columns: &'a [String],
    /// Rows as (column index, value) pairs.
    pub(crate) rows: &'a [Vec<(usize, FeatureValue)>],
    /// Next row to replay.
    pub(crate) next: usize,
}

impl RowSource for MemorySource<'_> {
    fn origin(&self) -> &str {
        self.origin
    }

    fn columns(&self) -> &[String] {
        self.columns
    }

    fn next_row(&mut self, visit: &mut dyn FnMut(usize, Cell<'_>)) -> Result<bool, ReadError> {
        let Some(row) = self.rows.get(self.next) else {
            return Ok(false);
        };
        self.next += 1;
        for (i, v) in row {
            let cell = match v {
                FeatureValue::Missing => Cell::Missing,
                FeatureValue::Number(x) if x.is_finite() => Cell::Number(*x),
                FeatureValue::Number(_) => Cell::Missing,
                FeatureValue::Text(s) => Cell::Text(s),
            };
            visit(*i, cell);
        }
        Ok(true)
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            done: self.next as u64,
            total: Some(self.rows.len() as u64),
            bytes: false,
        }
    }
}
