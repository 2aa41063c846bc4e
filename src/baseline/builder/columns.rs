//! The build of a plain CSV file held in memory: the file parsed into column buffers on
//! every CPU ([`read_columns`]), then each column accumulated and summarized on its own,
//! the columns spread over the CPUs. A column sees its cells in input order, as in the
//! two-thread pipeline of [`Engine::pass1`], and every step after the reading is the
//! pipeline's own code (the accumulators, the joint sample's reservoir, the snapshot), so
//! the snapshot is the one the streaming build writes (test
//! `builder::tests::columnar_build_equals_the_streaming_build`).
//!
//! Taken only when the streaming build would have kept every value in its pass-1 cache
//! (so it sorts each column once and needs no second pass): the cache's budget bounds the
//! memory here too, besides the file's bytes ([`MAX_FILE_BYTES`](crate::baseline::reader::columnar::MAX_FILE_BYTES)).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::engine::{
    push_pass1_parsed, push_pass2_parsed, Column, Engine, ParsedCell, ParsedKind, Role, State,
};
use super::joint::JOINT_MAX_COLUMNS;
use super::BuildError;
use crate::baseline::progress::Progress;
use crate::baseline::reader::columnar::{read_columns, CellColumn, Mode, Texts, Value};

/// Capacity of a `Vec<f64>` after `n` pushes (Rust's amortized growth: 4, then doubling).
fn grown_capacity(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        n.next_power_of_two().max(4)
    }
}

/// Pass 1 of a CSV file from memory, in place of [`Engine::pass1`] and a pass 2;
/// `Ok(false)` (nothing done) when the file does not suit the path.
pub(super) fn pass_from_memory(
    engine: &mut Engine<'_>,
    path: &Path,
    size: u64,
    progress: &mut dyn Progress,
) -> Result<bool, BuildError> {
    if engine.cache_budget == 0 {
        return Ok(false);
    }
    // The columns the pipeline would cache (numeric from the start), each growing to at
    // most the capacity of `rows` values: within the budget, it keeps every value.
    let cached_columns = std::cell::Cell::new(0u64);
    let mode_of = |name: &str| {
        let col = engine.new_column(name);
        if matches!(col.state, State::Numeric(_)) {
            cached_columns.set(cached_columns.get() + 1);
        }
        if col.role == Role::Ignored {
            Mode::Skip
        } else {
            Mode::Numbers
        }
    };
    let budget = engine.cache_budget as u64;
    let fits = |rows: u64| grown_capacity(rows).saturating_mul(cached_columns.get()) <= budget;
    let Some(data) = read_columns(path, &mode_of, &fits) else {
        return Ok(false);
    };
    progress.start("reading", Some(size), true);
    progress.update(size);
    progress.finish();
    let file = path.display().to_string();
    if data.rows == 0 {
        return Err(BuildError::NoRows { file });
    }
    for name in &data.names {
        let col = engine.new_column(name);
        engine.columns.push(col);
    }
    engine.rows = data.rows;
    if !engine
        .columns
        .iter()
        .any(|c| matches!(c.role, Role::Feature | Role::Prediction))
    {
        return Err(BuildError::NothingToDescribe { file });
    }
    let limit = engine.options.category_tracking_limit();
    let bins = engine.options.bins;
    let mut data = data;
    // The joint sample: the reservoir's choice depends on the row count only; the kept
    // rows' cells are read from the columns.
    let width = data.names.len().min(JOINT_MAX_COLUMNS);
    engine.joint.choose(data.rows, &|row, cells| {
        cells.extend((0..width).map(|i| data.number(i, row)));
    });
    // Each column is handed over whole, and its cells freed once it is summarized.
    let queue: Vec<Mutex<(&mut Column, CellColumn)>> = engine
        .columns
        .iter_mut()
        .enumerate()
        .map(|(i, col)| Mutex::new((col, data.take(i))))
        .collect();
    let texts = data.texts();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = queue.get(i) else { break };
        if let Ok(mut guard) = slot.lock() {
            let (col, cells) = &mut *guard;
            column_from_memory(col, std::mem::take(cells), texts, limit, bins);
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, queue.len().max(1));
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    Ok(true)
}

/// The parsed cell the pipeline's reading thread makes of a value, and the text its
/// span points into (the cell's own text).
#[inline]
fn parsed(v: Value<'_>) -> (ParsedCell, &str) {
    let (kind, text) = match v {
        Value::Number(v) => (ParsedKind::TextNumber(v), ""),
        Value::Missing => (ParsedKind::Missing, ""),
        Value::NonFinite => (ParsedKind::TextNonFinite, ""),
        Value::Text(s) => (
            ParsedKind::Text(0, u32::try_from(s.len()).unwrap_or(u32::MAX)),
            s,
        ),
    };
    // The column index is not read by the accumulators.
    (ParsedCell { column: 0, kind }, text)
}

/// One column's pass 1 (in input order), its summary, and the categories of a column that
/// turned categorical late (the pipeline's pass 2).
fn column_from_memory(
    col: &mut Column,
    cells: CellColumn,
    texts: &Texts,
    limit: usize,
    bins: usize,
) {
    if cells.mode() == Mode::Skip {
        return;
    }
    for (row, v) in cells.cells(texts).enumerate() {
        let (cell, text) = parsed(v);
        push_pass1_parsed(col, &cell, text, row as u64 + 1, limit);
    }
    if matches!(col.state, State::Deferred { .. }) {
        for v in cells.cells(texts) {
            let (cell, text) = parsed(v);
            push_pass2_parsed(col, &cell, text);
        }
    }
    drop(cells);
    if let State::Numeric(acc) = &mut col.state {
        acc.summarize(bins);
    }
}
