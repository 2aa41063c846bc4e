//! The joint sample: whole rows kept by a seeded reservoir, so analyses that
//! need the joint distribution (multivariate anomaly scores, calibration)
//! have row-aligned values.

use super::engine::{Engine, Role, State};
use crate::baseline::sampling::SplitMix64;
use crate::baseline::snapshot::JointSample;

/// Columns (by input position) whose cells enter the joint sample at most; later columns
/// are described per feature only (bounds the reservoir at `sample_size × 512` cells).
pub const JOINT_MAX_COLUMNS: usize = 512;

/// A seeded reservoir (algorithm R) of whole rows: the numeric reading of each cell of
/// the first [`JOINT_MAX_COLUMNS`] columns, with the row's position in the input.
#[derive(Debug)]
pub(super) struct JointAcc {
    pub(super) capacity: usize,
    pub(super) seen: u64,
    pub(super) rows: Vec<(u64, Vec<Option<f64>>)>,
    pub(super) rng: SplitMix64,
    /// Slot the row being read goes to, when it is kept.
    pub(super) slot: Option<usize>,
    pub(super) buf: Vec<Option<f64>>,
}

impl JointAcc {
    pub(super) fn new(capacity: usize, seed: u64) -> Self {
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
    pub(super) fn begin(&mut self) {
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
    pub(super) fn record(&mut self, i: usize, v: Option<f64>) {
        if self.slot.is_none() || i >= JOINT_MAX_COLUMNS {
            return;
        }
        if self.buf.len() <= i {
            self.buf.resize(i + 1, None);
        }
        self.buf[i] = v;
    }

    /// The reservoir's choice over `rows` more rows without reading them (it depends on
    /// the row count only): then `cells(row)` gives the cells of each row that stays,
    /// `(column, value)`; the same state as [`JointAcc::begin`], [`JointAcc::record`] and
    /// [`JointAcc::end`] for each of those rows.
    pub(super) fn choose(&mut self, rows: u64, cells: &dyn Fn(u64, &mut Vec<Option<f64>>)) {
        // Row index of each slot, for rows not yet read (an earlier row's slot is replaced).
        let mut chosen: Vec<Option<u64>> = vec![None; self.rows.len()];
        for _ in 0..rows {
            // As `begin`, with the rows kept so far counted in `chosen`.
            let slot = if chosen.len() < self.capacity {
                Some(chosen.len())
            } else if self.capacity > 0 {
                let j = self.rng.below(self.seen + 1) as usize;
                (j < self.capacity).then_some(j)
            } else {
                None
            };
            if let Some(slot) = slot {
                if slot < chosen.len() {
                    chosen[slot] = Some(self.seen);
                } else {
                    chosen.push(Some(self.seen));
                }
            }
            self.seen += 1;
        }
        for (slot, row) in chosen.into_iter().enumerate() {
            let Some(row) = row else { continue };
            let mut buf = Vec::new();
            cells(row, &mut buf);
            if slot < self.rows.len() {
                self.rows[slot] = (row, buf);
            } else {
                self.rows.push((row, buf));
            }
        }
    }

    /// The row was read: keeps it when chosen.
    pub(super) fn end(&mut self) {
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

impl Engine<'_> {
    /// The joint sample of the numeric columns (inputs, prediction, target) in input order,
    /// then the probability columns in `--probability` order; rows in input order.
    /// `extra` adds columns given with one cell per input row (a live build's
    /// `prediction` and score columns).
    pub(super) fn joint_sample(
        &mut self,
        extra: &[(String, Vec<Option<f64>>)],
    ) -> Option<JointSample> {
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
                Role::Probability | Role::Ignored => continue,
            };
            columns.push(name);
            index.push(i);
        }
        for p in &self.options.probability {
            let found = self
                .columns
                .iter()
                .take(JOINT_MAX_COLUMNS)
                .position(|c| c.role == Role::Probability && &c.name == p);
            if let Some(i) = found {
                columns.push(p.clone());
                index.push(i);
            }
        }
        columns.extend(extra.iter().map(|(name, _)| name.clone()));
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
                for (_, cells) in extra {
                    row.push(cells.get(n as usize).copied().flatten());
                }
                row
            })
            .collect();
        Some(JointSample { columns, rows })
    }
}
