//! `mlmon drift`: the sidecar's drift statistics on a batch file, for pipelines and CI.
//!
//! The rows are pushed through the same [`DriftEngine`] the sidecar runs, with one window
//! holding the whole batch whose sketches keep every distinct value (up to 100 001 per
//! feature, 24 bytes each): KS and Wasserstein are computed on every row of the batch
//! against the baseline's reference sample when it holds the whole column, else its
//! full-column sketch (see `docs/drift.md`), equal to scipy's `ks_2samp` and
//! `wasserstein_distance` when both are exact. The prediction column
//! (`--prediction COL`, default a column named `prediction`) is compared with the
//! baseline's output entry.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::analysis::Exchange;
use crate::baseline::reader::columnar::{self, ColumnCells, Loaded, Mode, Value};
use crate::baseline::reader::{fast_f64, Cell};
use crate::baseline::{
    open_source, Current, FeatureType, InputFormat, NamedMap, Registry, Snapshot,
};
use crate::config::Config;
use crate::metrics::drift::DriftMetrics;
use crate::record::{FeatureValue, Kind, ParsedExchange, Prediction, Row};

use super::{DriftEngine, ModelDriftReport, Status, PREDICTION};

/// Rows pushed per batch into the engine.
const CHUNK: usize = 4096;

/// Why an offline drift run failed.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The input file could not be read.
    #[error("{0}")]
    Read(String),
    /// The baseline cannot be used.
    #[error("{0}")]
    Baseline(String),
}

/// How a cell of a baseline column is handed to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conversion {
    /// Numeric in the baseline: text is read as a number here, exactly as the window
    /// would (`trim`, then `f64` parsing; non-finite is missing); text that is no number
    /// stays text, so the window counts it invalid.
    Numeric,
    /// Categorical: the cell as it is (the window derives the category key).
    AsIs,
}

/// Where a column of the input goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Not in the baseline: the engine would ignore it.
    Skip,
    /// A feature: its slot in each row, and how its cells are converted.
    Feature(usize, Conversion),
    /// The prediction column.
    Output(Conversion),
}

/// Writes `cell` into `slot`, converted; text buffers are reused, so a batch allocates
/// nothing once its rows exist.
fn store(slot: &mut FeatureValue, cell: Cell<'_>, conversion: Conversion) {
    match cell {
        Cell::Missing => *slot = FeatureValue::Missing,
        Cell::Number(v) if v.is_finite() => *slot = FeatureValue::Number(v),
        Cell::Number(_) => *slot = FeatureValue::Missing,
        Cell::Text(s) => {
            if conversion == Conversion::Numeric {
                // Plain decimals (most cells) without the general parser: the same value.
                if let Some(v) = fast_f64(s) {
                    *slot = FeatureValue::Number(v);
                    return;
                }
                let t = s.trim();
                if t.is_empty() {
                    *slot = FeatureValue::Missing;
                    return;
                }
                if let Ok(v) = t.parse::<f64>() {
                    *slot = if v.is_finite() {
                        FeatureValue::Number(v)
                    } else {
                        FeatureValue::Missing
                    };
                    return;
                }
            }
            match slot {
                FeatureValue::Text(buf) => {
                    buf.clear();
                    buf.push_str(s);
                }
                _ => *slot = FeatureValue::Text(s.to_string()),
            }
        }
    }
}

/// One batch of rows, reused: row `r`'s slot `k` always holds feature `names[k]`.
struct Batch {
    parsed: ParsedExchange,
    /// Rows filled so far.
    len: usize,
}

impl Batch {
    fn new(names: &[String]) -> Batch {
        let row = Row {
            values: names
                .iter()
                .map(|n| (n.clone(), FeatureValue::Missing))
                .collect(),
        };
        Batch {
            parsed: ParsedExchange {
                rows: vec![row; CHUNK],
                predictions: Vec::with_capacity(CHUNK),
            },
            len: 0,
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.parsed.predictions.clear();
    }
}

/// Computes the drift of the rows in `input` against `snapshot`; the column named
/// `prediction_column` (default `prediction`) holds the model's output.
///
/// This thread reads and converts the rows into reused batches (no allocation per cell);
/// the features are split into groups of about equal work, one [`DriftEngine`] and one
/// thread per group (as many as there are CPUs, at most [`MAX_GROUPS`]), each pushing its
/// part of every batch, in input order, while the next one is read. The groups' reports
/// are put together in the snapshot's feature order, with the drift score and status
/// over all of them: the same report one engine gives. A plain CSV file that fits in
/// memory is parsed into columns on every CPU first, and each group's thread fills its
/// batches from them (no reading thread).
pub fn drift_of_file(
    snapshot: Snapshot,
    input: &Path,
    format: Option<InputFormat>,
    prediction_column: Option<&str>,
    cfg: &Config,
) -> Result<ModelDriftReport, OfflineError> {
    drift_of_file_in(
        snapshot,
        input,
        format,
        prediction_column,
        cfg,
        default_groups(),
        Columnar::Load,
    )
}

/// Most feature groups (engine threads) of [`drift_of_file`].
const MAX_GROUPS: usize = 2;

/// The feature groups [`drift_of_file`] uses: one per CPU, at most [`MAX_GROUPS`].
fn default_groups() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(MAX_GROUPS)
}

/// One group of features: its engine and the baseline it holds (the snapshot restricted
/// to the group's features, the prediction in the last group).
struct Group {
    engine: DriftEngine,
    current: Arc<Current>,
    names: Vec<String>,
}

/// Splits `features` (numeric ones weigh twice a categorical one; the prediction goes
/// with the last group) into at most `groups` contiguous ranges of about equal weight.
fn split(features: &[(String, Conversion)], output: bool, groups: usize) -> Vec<Range<usize>> {
    let n = features.len();
    let weight = |c: Conversion| match c {
        Conversion::Numeric => 2usize,
        Conversion::AsIs => 1,
    };
    let total: usize =
        features.iter().map(|(_, c)| weight(*c)).sum::<usize>() + 2 * usize::from(output);
    let groups = groups.clamp(1, n.max(1));
    let mut ranges = Vec::with_capacity(groups);
    let (mut from, mut acc) = (0usize, 0usize);
    for (k, (_, c)) in features.iter().enumerate() {
        acc += weight(*c);
        let g = ranges.len() + 1;
        if g < groups && acc * groups >= total * g && k + 1 < n {
            ranges.push(from..k + 1);
            from = k + 1;
        }
    }
    ranges.push(from..n);
    ranges
}

/// A batch file read into memory ahead of [`drift_of_preloaded`] (while the baseline
/// loads): a plain CSV file's lines, or nothing when the file does not suit the in-memory
/// reader (it is then streamed).
#[derive(Debug)]
pub struct Preloaded(Option<Loaded>);

/// Reads `input` into memory when it is a plain CSV file ([`columnar::load`], on every
/// CPU, at most [`columnar::MAX_FILE_BYTES`]).
pub fn preload(input: &Path, format: Option<InputFormat>) -> Preloaded {
    let csv = format.or_else(|| InputFormat::from_path(input)) == Some(InputFormat::Csv);
    Preloaded(if csv { columnar::load(input) } else { None })
}

/// [`drift_of_file`] of a file [`preload`]ed from `input`.
pub fn drift_of_preloaded(
    snapshot: Snapshot,
    input: &Path,
    format: Option<InputFormat>,
    prediction_column: Option<&str>,
    cfg: &Config,
    preloaded: Preloaded,
) -> Result<ModelDriftReport, OfflineError> {
    drift_of_file_in(
        snapshot,
        input,
        format,
        prediction_column,
        cfg,
        default_groups(),
        Columnar::Preloaded(preloaded),
    )
}

/// Whether [`drift_of_file_in`] reads a plain CSV file into memory.
#[derive(Debug)]
enum Columnar {
    /// Always stream.
    #[cfg_attr(not(test), allow(dead_code))]
    No,
    /// Read it into memory when it suits.
    Load,
    /// Read already.
    Preloaded(Preloaded),
}

/// [`drift_of_file`] over at most `groups` engines. A plain CSV file that fits in memory
/// ([`columnar::load`], at most [`MAX_CELLS_IN_MEMORY`] cells read) is parsed on every
/// CPU first, then each group's thread fills its batches from the columns: the same
/// batches, in the same order, as the streaming reader's.
fn drift_of_file_in(
    snapshot: Snapshot,
    input: &Path,
    format: Option<InputFormat>,
    prediction_column: Option<&str>,
    cfg: &Config,
    groups: usize,
    columnar: Columnar,
) -> Result<ModelDriftReport, OfflineError> {
    let prediction_column = prediction_column.unwrap_or(PREDICTION);
    let mut cfg = cfg.clone();
    // One window that holds the whole batch.
    cfg.drift.window = Duration::from_secs(100 * 365 * 24 * 3600);
    let model = snapshot.model.name.clone();
    let output = snapshot.prediction.as_ref().map(|p| conversion_of(p.kind));
    let features: Vec<(String, Conversion)> = snapshot
        .features
        .iter()
        .map(|(name, f)| (name.to_string(), conversion_of(f.kind)))
        .collect();
    // One engine keeps the first `limits.max_features` inputs; the groups would not.
    let groups = if features.len() > cfg.limits.max_features {
        1
    } else {
        groups
    };
    let ranges = split(&features, output.is_some(), groups);
    let cfg = Arc::new(cfg);
    let last = ranges.len() - 1;
    let mut parts = Vec::with_capacity(ranges.len());
    for (g, range) in ranges.iter().enumerate() {
        let part = if ranges.len() == 1 {
            snapshot.clone()
        } else {
            let mut s = snapshot.clone();
            s.features = NamedMap(snapshot.features.0[range.clone()].to_vec());
            s.joint_sample = None;
            if g != last {
                s.prediction = None;
            }
            s
        };
        let registry = Arc::new(Registry::new(0, cfg.drift.sample_size));
        let current = registry
            .set(&model, Arc::new(part))
            .map_err(|e| OfflineError::Baseline(e.to_string()))?;
        // Window sketches that keep every distinct value (up to 100 000 per feature): KS
        // and Wasserstein on all rows of the batch.
        let engine = DriftEngine::new(
            Arc::clone(&cfg),
            Arc::new(DriftMetrics::default()),
            registry,
        )
        .with_window_compression(crate::stats::sketch::MAX_COMPRESSION);
        parts.push(Group {
            engine,
            current,
            names: features[range.clone()]
                .iter()
                .map(|(n, _)| n.clone())
                .collect(),
        });
    }
    // Feature k goes to slot `place[k].1` of group `place[k].0`'s rows.
    let mut place = vec![(0usize, 0usize); features.len()];
    for (g, range) in ranges.iter().enumerate() {
        for (j, k) in range.clone().enumerate() {
            if let Some(p) = place.get_mut(k) {
                *p = (g, j);
            }
        }
    }
    let now = tokio::time::Instant::now();
    let target_of = |column: &str| -> Target {
        if let (Some(c), true) = (output, column == prediction_column) {
            return Target::Output(c);
        }
        match features.iter().position(|(n, _)| n == column) {
            Some(k) => Target::Feature(k, features[k].1),
            None => Target::Skip,
        }
    };
    let loaded = match columnar {
        Columnar::No => None,
        Columnar::Load => preload(input, format).0,
        Columnar::Preloaded(p) => p.0,
    };
    if let Some(loaded) = loaded {
        let mode_of = |name: &str| match target_of(name) {
            Target::Skip => Mode::Skip,
            Target::Feature(_, Conversion::Numeric) | Target::Output(Conversion::Numeric) => {
                Mode::Numbers
            }
            Target::Feature(_, Conversion::AsIs) | Target::Output(Conversion::AsIs) => Mode::Raw,
        };
        let wanted = loaded
            .names()
            .iter()
            .filter(|n| mode_of(n) != Mode::Skip)
            .count() as u64;
        let parsed = if loaded.rows().saturating_mul(wanted) <= MAX_CELLS_IN_MEMORY {
            loaded.parse(&mode_of)
        } else {
            None
        };
        if let Some(data) = parsed {
            let column_of = |name: &str| data.names.iter().position(|n| n == name);
            std::thread::scope(|scope| {
                for (g, part) in parts.iter().enumerate() {
                    let model = &model;
                    let data = &data;
                    let cells: Vec<(Option<ColumnCells<'_>>, Conversion)> = ranges[g]
                        .clone()
                        .map(|k| {
                            let (name, conversion) = &features[k];
                            (column_of(name).map(|i| data.cells(i)), *conversion)
                        })
                        .collect();
                    let prediction = match (output, g == last) {
                        (Some(c), true) => column_of(prediction_column).map(|i| (data.cells(i), c)),
                        _ => None,
                    };
                    scope.spawn(move || {
                        observe_columns(part, model, now, data.rows, cells, prediction)
                    });
                }
            });
            return finish(&parts, &model, &snapshot);
        }
    }
    let mut source =
        open_source(input, format, &[]).map_err(|e| OfflineError::Read(e.to_string()))?;
    let stopped = || OfflineError::Read("the analysis thread stopped".into());
    let mut full_txs = Vec::with_capacity(parts.len());
    let mut empty_rxs = Vec::with_capacity(parts.len());
    let mut channels = Vec::with_capacity(parts.len());
    for part in &parts {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Batch>(1);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Batch>(2);
        for _ in 0..2 {
            let _ = empty_tx.send(Batch::new(&part.names));
        }
        full_txs.push(full_tx);
        empty_rxs.push(empty_rx);
        channels.push((full_rx, empty_tx));
    }
    std::thread::scope(|scope| {
        let model = &model;
        for (part, (full_rx, empty_tx)) in parts.iter().zip(channels) {
            scope.spawn(move || {
                for mut batch in full_rx {
                    batch.parsed.rows.truncate(batch.len);
                    part.engine.observe(&Exchange {
                        model,
                        version: None,
                        request_id: "",
                        received_at: SystemTime::now(),
                        now,
                        parsed: &batch.parsed,
                        request: None,
                        baseline: Some(&part.current),
                    });
                    batch.clear();
                    if empty_tx.send(batch).is_err() {
                        break;
                    }
                }
            });
        }
        let mut targets: Vec<Target> = source.columns().iter().map(|c| target_of(c)).collect();
        let mut pending: Vec<(usize, FeatureValue)> = Vec::new();
        let mut filled = vec![false; features.len()];
        // Owned here, so that an early return ends the analysis threads' loops.
        let full_txs = full_txs;
        let mut batches = Vec::with_capacity(empty_rxs.len());
        for rx in &empty_rxs {
            batches.push(rx.recv().map_err(|_| stopped())?);
        }
        let mut len = 0usize;
        loop {
            let mut prediction: Option<FeatureValue> = None;
            // Slots this row fills; the others are missing (absent keys in JSON Lines).
            filled.iter_mut().for_each(|f| *f = false);
            let mut put = |k: usize, cell: Cell<'_>, c: Conversion, batches: &mut [Batch]| {
                let Some(&(g, j)) = place.get(k) else { return };
                let slot = batches
                    .get_mut(g)
                    .and_then(|b| b.parsed.rows.get_mut(len))
                    .and_then(|row| row.values.get_mut(j));
                if let (Some((_, slot)), Some(f)) = (slot, filled.get_mut(k)) {
                    store(slot, cell, c);
                    *f = true;
                }
            };
            let more = source
                .next_row(&mut |i, cell| match targets.get(i) {
                    Some(Target::Skip) => {}
                    Some(Target::Feature(k, c)) => put(*k, cell, *c, &mut batches),
                    Some(Target::Output(c)) => {
                        let mut v = FeatureValue::Missing;
                        store(&mut v, cell, *c);
                        prediction = Some(v);
                    }
                    None => pending.push((i, cell.to_feature_value())),
                })
                .map_err(|e| OfflineError::Read(e.to_string()))?;
            if !more {
                break;
            }
            if !pending.is_empty() {
                // New columns (JSON Lines): map them, then place their cells.
                let columns = source.columns();
                while targets.len() < columns.len() {
                    targets.push(target_of(&columns[targets.len()]));
                }
                for (i, v) in pending.drain(..) {
                    match targets.get(i) {
                        Some(Target::Feature(k, c)) => put(*k, value_cell(&v), *c, &mut batches),
                        Some(Target::Output(c)) => {
                            let mut p = FeatureValue::Missing;
                            store(&mut p, value_cell(&v), *c);
                            prediction = Some(p);
                        }
                        _ => {}
                    }
                }
            }
            for (k, f) in filled.iter().enumerate() {
                if !f {
                    let Some(&(g, j)) = place.get(k) else {
                        continue;
                    };
                    let slot = batches
                        .get_mut(g)
                        .and_then(|b| b.parsed.rows.get_mut(len))
                        .and_then(|row| row.values.get_mut(j));
                    if let Some((_, v)) = slot {
                        *v = FeatureValue::Missing;
                    }
                }
            }
            if let (Some(value), Some(batch)) = (prediction, batches.get_mut(last)) {
                batch.parsed.predictions.push(Prediction {
                    value,
                    probabilities: None,
                });
            }
            len += 1;
            if len == CHUNK {
                for ((batch, tx), rx) in batches.iter_mut().zip(&full_txs).zip(&empty_rxs) {
                    let fresh = rx.recv().map_err(|_| stopped())?;
                    let mut full = std::mem::replace(batch, fresh);
                    full.len = len;
                    tx.send(full).map_err(|_| stopped())?;
                }
                len = 0;
            }
        }
        if len > 0 {
            for (mut batch, tx) in batches.into_iter().zip(&full_txs) {
                batch.len = len;
                tx.send(batch).map_err(|_| stopped())?;
            }
        }
        drop(full_txs);
        Ok::<(), OfflineError>(())
    })?;
    finish(&parts, &model, &snapshot)
}

/// Most cells (rows × columns read) of a CSV file read into memory and parsed on every
/// CPU (8 bytes each, as the build's pass-1 cache); larger files stream.
const MAX_CELLS_IN_MEMORY: u64 = 8 << 20;

/// One group's engine fed from the columns in memory: batches of [`CHUNK`] rows in input
/// order, the cells converted as [`store`] converts them.
fn observe_columns(
    part: &Group,
    model: &str,
    now: tokio::time::Instant,
    rows: u64,
    mut cells: Vec<(Option<ColumnCells<'_>>, Conversion)>,
    mut prediction: Option<(ColumnCells<'_>, Conversion)>,
) {
    let mut batch = Batch::new(&part.names);
    let mut left = usize::try_from(rows).unwrap_or(usize::MAX);
    while left > 0 {
        let n = left.min(CHUNK);
        for row in batch.parsed.rows.iter_mut().take(n) {
            for ((column, conversion), (_, slot)) in cells.iter_mut().zip(row.values.iter_mut()) {
                let v = column
                    .as_mut()
                    .and_then(Iterator::next)
                    .unwrap_or(Value::Missing);
                store_value(slot, v, *conversion);
            }
            if let Some((column, conversion)) = prediction.as_mut() {
                let mut value = FeatureValue::Missing;
                store_value(
                    &mut value,
                    column.next().unwrap_or(Value::Missing),
                    *conversion,
                );
                batch.parsed.predictions.push(Prediction {
                    value,
                    probabilities: None,
                });
            }
        }
        batch.parsed.rows.truncate(n);
        part.engine.observe(&Exchange {
            model,
            version: None,
            request_id: "",
            received_at: SystemTime::now(),
            now,
            parsed: &batch.parsed,
            request: None,
            baseline: Some(&part.current),
        });
        batch.clear();
        left -= n;
    }
}

/// Writes a cell read by the in-memory reader into `slot`, as [`store`] writes the cell
/// the streaming reader gives: a numeric feature's number, NaN or infinity (missing),
/// blank text (missing), other text; a categorical feature's text as it is.
fn store_value(slot: &mut FeatureValue, v: Value<'_>, conversion: Conversion) {
    match v {
        Value::Number(x) => *slot = FeatureValue::Number(x),
        Value::Missing | Value::NonFinite => *slot = FeatureValue::Missing,
        Value::Text(s) => {
            if conversion == Conversion::Numeric && s.trim().is_empty() {
                *slot = FeatureValue::Missing;
                return;
            }
            match slot {
                FeatureValue::Text(buf) => {
                    buf.clear();
                    buf.push_str(s);
                }
                _ => *slot = FeatureValue::Text(s.to_string()),
            }
        }
    }
}

/// The groups' reports, each computed on its own thread, put together.
fn finish(
    parts: &[Group],
    model: &str,
    snapshot: &Snapshot,
) -> Result<ModelDriftReport, OfflineError> {
    let reports: Vec<Option<ModelDriftReport>> = std::thread::scope(|scope| {
        let others: Vec<_> = parts
            .iter()
            .skip(1)
            .map(|part| scope.spawn(move || part.engine.report(model)))
            .collect();
        let first = parts.first().and_then(|part| part.engine.report(model));
        std::iter::once(first)
            .chain(others.into_iter().map(|h| h.join().ok().flatten()))
            .collect()
    });
    let reports = reports
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| OfflineError::Baseline("the baseline was not installed".into()))?;
    Ok(combine(reports, snapshot))
}

/// The report of all the groups' features, in order: the drift score and status over
/// all input features as one engine computes them (weighted by the baseline's
/// importances when it has any, else equally; see `report::summarise`).
fn combine(mut reports: Vec<ModelDriftReport>, snapshot: &Snapshot) -> ModelDriftReport {
    if reports.len() == 1 {
        if let Some(one) = reports.pop() {
            return one;
        }
    }
    let mut parts = reports.into_iter();
    let Some(mut out) = parts.next() else {
        return ModelDriftReport {
            model: snapshot.model.name.clone(),
            baseline_id: snapshot.id.clone(),
            window_seconds: 0.0,
            drift_score: None,
            status: None,
            features: Vec::new(),
        };
    };
    for p in parts {
        out.features.extend(p.features);
    }
    let importance = |name: &str| snapshot.features.get(name).and_then(|b| b.importance);
    let inputs = || out.features.iter().filter(|f| f.kind == Kind::Input);
    let has_importance = inputs().any(|f| importance(&f.feature).is_some());
    let (score, worst) = super::report::weighted_score(inputs().filter_map(|f| {
        let w = if has_importance {
            importance(&f.feature).unwrap_or(0.0).max(0.0)
        } else {
            1.0
        };
        f.status.map(|status| (status, w))
    }));
    out.drift_score = score;
    out.status = worst;
    out
}

fn conversion_of(kind: FeatureType) -> Conversion {
    match kind {
        FeatureType::Numeric => Conversion::Numeric,
        FeatureType::Categorical => Conversion::AsIs,
    }
}

fn value_cell(v: &FeatureValue) -> Cell<'_> {
    match v {
        FeatureValue::Missing => Cell::Missing,
        FeatureValue::Number(x) => Cell::Number(*x),
        FeatureValue::Text(s) => Cell::Text(s),
    }
}

/// Exit code for a report: 0 ok (or no data), 1 warning, 2 critical — over inputs and output.
pub fn exit_code(report: &ModelDriftReport) -> u8 {
    let worst = report.features.iter().filter_map(|f| f.status).max();
    match worst {
        Some(Status::Critical) => 2,
        Some(Status::Warning) => 1,
        _ => 0,
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
        None => "-".into(),
    }
}

/// A human table of a report.
pub fn render_table(r: &ModelDriftReport) -> String {
    let mut rows: Vec<[String; 11]> = vec![[
        "feature".into(),
        "kind".into(),
        "type".into(),
        "n".into(),
        "missing".into(),
        "psi".into(),
        "js".into(),
        "ks_d".into(),
        "ks_p".into(),
        "wasserstein".into(),
        "status".into(),
    ]];
    for f in &r.features {
        rows.push([
            f.feature.clone(),
            f.kind.as_str().into(),
            f.feature_type.into(),
            f.window.count.to_string(),
            f.window.missing.to_string(),
            num(f.psi),
            num(f.js_divergence),
            num(f.ks_statistic),
            num(f.ks_pvalue.or(f.chi2_pvalue)),
            num(f.wasserstein),
            match f.status {
                Some(Status::Ok) => "ok".into(),
                Some(Status::Warning) => "WARNING".into(),
                Some(Status::Critical) => "CRITICAL".into(),
                None => "no data".into(),
            },
        ]);
    }
    let mut widths = [0usize; 11];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!(
        "model {}  baseline {}  drift score {}\n",
        r.model,
        r.baseline_id,
        num(r.drift_score)
    );
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str("(ks_p is the chi-square p-value for categorical features)\n");
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::baseline::{build_from_file, BuildOptions, NoProgress};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/stats")
            .join(name)
    }

    /// The features split over several engines (one per CPU) give the report one engine
    /// gives: every feature's figures, the order, the drift score and status, with and
    /// without importances, from CSV and from JSON Lines (columns appearing row by row).
    #[test]
    fn feature_groups_give_the_one_engine_report() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/baseline");
        let options = BuildOptions {
            prediction: Some("pred".into()),
            target: Some("label".into()),
            exclude: vec!["dropme".into()],
            ..BuildOptions::new("m")
        };
        let built =
            build_from_file(&dir.join("data.csv"), None, &options, &mut NoProgress).unwrap();
        let mut weighted = built.clone();
        for (i, (_, f)) in weighted.features.0.iter_mut().enumerate() {
            f.importance = (i % 3 != 0).then_some(i as f64);
        }
        let cfg = Config::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = rt.enter();
        for snapshot in [built, weighted] {
            for input in ["data.csv", "data.jsonl"] {
                let run = |groups: usize, columnar: bool| {
                    let r = drift_of_file_in(
                        snapshot.clone(),
                        &dir.join(input),
                        None,
                        Some("pred"),
                        &cfg,
                        groups,
                        if columnar {
                            Columnar::Load
                        } else {
                            Columnar::No
                        },
                    )
                    .unwrap();
                    serde_json::to_value(&r).unwrap()
                };
                let one = run(1, false);
                assert!(one["features"].as_array().unwrap().len() >= 8);
                assert!(one["drift_score"].as_f64().is_some());
                for groups in [1, 2, 3, 40] {
                    assert_eq!(run(groups, false), one, "{input}, {groups} groups");
                    assert_eq!(
                        run(groups, true),
                        one,
                        "{input}, {groups} groups, in memory"
                    );
                }
            }
        }
    }

    /// A CSV batch read into memory on every CPU gives the streaming reader's report,
    /// with the cells that differ between the two readers' paths: blank and
    /// whitespace-only cells, missing-value tokens, NaN and infinities, text in a numeric
    /// feature, number-like categories (`7`, `7.0`), CRLF line ends, a feature absent from
    /// the batch and a column the baseline does not know; split over several ranges.
    #[test]
    fn in_memory_csv_gives_the_streaming_report() {
        let dir = tempfile::tempdir().unwrap();
        // A small xorshift: any fixed sequence will do.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut reference = String::from("x,y,gone,code,colour,prediction\n");
        for _ in 0..20_000 {
            let a = next();
            reference.push_str(&format!(
                "{:.3},{},{},{},c{},{}\n",
                (a % 10_000) as f64 / 100.0,
                (a >> 20) % 50,
                (a >> 30) % 9,
                (a >> 40) % 11,
                (a >> 45) % 4,
                (a >> 50) % 2
            ));
        }
        let mut current = String::from("y,x,extra,code,colour,prediction\r\n");
        for r in 0..60_000u64 {
            let a = next();
            let x = match a % 40 {
                0 => String::new(),
                1 => "  ".into(),
                2 => "NaN".into(),
                3 => "-inf".into(),
                4 => "abc".into(),
                5 => " 12.5".into(),
                _ => format!("{:.3}", (a % 10_000) as f64 / 90.0),
            };
            let code = match (a >> 8) % 5 {
                0 => "7".to_string(),
                1 => "7.0".into(),
                2 => "NA".into(),
                _ => format!("{}", (a >> 40) % 12),
            };
            let eol = if r % 3 == 0 { "\r\n" } else { "\n" };
            current.push_str(&format!(
                "{},{x},{},{code},c{},{}{eol}",
                (a >> 20) % 60,
                a % 1000,
                (a >> 45) % 5,
                (a >> 50) % 2
            ));
        }
        let ref_path = dir.path().join("reference.csv");
        let cur_path = dir.path().join("current.csv");
        std::fs::write(&ref_path, reference).unwrap();
        std::fs::write(&cur_path, current).unwrap();
        let options = BuildOptions {
            prediction: Some("prediction".into()),
            categorical: vec!["code".into()],
            ..BuildOptions::new("m")
        };
        let snapshot = build_from_file(&ref_path, None, &options, &mut NoProgress).unwrap();
        let cfg = Config::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = rt.enter();
        assert!(
            columnar::read_columns(&cur_path, &|_| Mode::Numbers, &|_| true).is_some(),
            "the batch suits the in-memory reader"
        );
        let run = |groups: usize, columnar: u8| {
            let r = drift_of_file_in(
                snapshot.clone(),
                &cur_path,
                None,
                None,
                &cfg,
                groups,
                match columnar {
                    0 => Columnar::No,
                    1 => Columnar::Load,
                    _ => Columnar::Preloaded(preload(&cur_path, None)),
                },
            )
            .unwrap();
            serde_json::to_value(&r).unwrap()
        };
        let streamed = run(2, 0);
        let features = streamed["features"].as_array().unwrap();
        assert_eq!(features.len(), 6, "{streamed}");
        for groups in [1, 2, 3] {
            assert_eq!(run(groups, 1), streamed, "{groups} groups");
            assert_eq!(run(groups, 2), streamed, "{groups} groups, preloaded");
        }
    }

    #[test]
    fn groups_split_the_work_evenly_in_order() {
        let f = |kinds: &str| -> Vec<(String, Conversion)> {
            kinds
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    let conv = if c == 'n' {
                        Conversion::Numeric
                    } else {
                        Conversion::AsIs
                    };
                    (format!("f{i}"), conv)
                })
                .collect()
        };
        // 16 numeric + 3 categorical + a numeric prediction: 40 units, 20 each.
        assert_eq!(split(&f("nnnnnnnnnnnnnnnnccc"), true, 2), [0..10, 10..19]);
        assert_eq!(split(&f("nnnn"), false, 2), [0..2, 2..4]);
        assert_eq!(split(&f("n"), true, 2), vec![Range { start: 0, end: 1 }]);
        assert_eq!(split(&f(""), true, 2), vec![Range { start: 0, end: 0 }]);
        assert_eq!(
            split(&f("nnnnnn"), false, 1),
            vec![Range { start: 0, end: 6 }]
        );
        assert_eq!(split(&f("nc"), false, 5), [0..1, 1..2]);
    }

    /// `mlmon drift` computes on all rows: KS and Wasserstein of a 12 000-row batch (more
    /// than the live 5 000-value reservoir) against a baseline whose reference sample holds
    /// every value equal scipy's (scripts/gen/stats.py, `offline_drift.json`).
    #[test]
    fn offline_ks_and_wasserstein_use_every_row_and_equal_scipy() {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("offline_drift.json")).unwrap())
                .unwrap();
        let snapshot = build_from_file(
            &fixture("offline_baseline.csv"),
            None,
            &BuildOptions::new("m"),
            &mut NoProgress,
        )
        .unwrap();
        let cfg = Config::default();
        assert!(
            cfg.drift.sample_size < 12_000,
            "the batch must exceed the reservoir"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let report =
            drift_of_file(snapshot, &fixture("offline_batch.csv"), None, None, &cfg).unwrap();
        for case in doc["cases"].as_array().unwrap() {
            let name = case["feature"].as_str().unwrap();
            let f = report.features.iter().find(|f| f.feature == name).unwrap();
            assert_eq!(f.window.count, case["window_count"].as_u64().unwrap());
            assert_eq!(f.window.sample as u64, f.window.count, "{name}: every row");
            let close = |got: Option<f64>, key: &str, tol: f64| {
                let want = case[key].as_f64().unwrap();
                let got = got.unwrap();
                assert!(
                    (got - want).abs() <= tol * want.abs().max(1.0),
                    "{name} {key}: mlmon {got}, scipy {want}"
                );
            };
            close(f.ks_statistic, "ks_statistic", 1e-12);
            close(f.wasserstein, "wasserstein", 1e-9);
            // The asymptotic p-value agrees with scipy's to 1e-3 (tests/offline/stats.rs).
            close(f.ks_pvalue, "ks_pvalue", 1e-3);
        }
    }
}
