//! `mlmon performance`: the sidecar's performance figures on a batch file, chunk by chunk,
//! for pipelines, CI and back-testing the estimator.
//!
//! Every chunk gets the realized metrics of its rows that carry a target (scikit-learn's
//! definitions, [`super::scores`]) and, when the rows carry scores, the label-free estimate
//! with its sampling errors ([`super::classifier::Classifier`], the same estimator, class
//! order, decision rule and baseline calibration as the sidecar). Estimates are given for
//! every chunk with scores, targets or not, so that a file with targets measures how good
//! the estimate is. A chunk's status compares its primary metric (realized accuracy, else
//! the estimate; R² for regressors) with the baseline's reference by the relative drop of
//! `thresholds.performance_drop`, as model health does; the exit code is the worst status.
//!
//! Chunks: `--chunk-size N` consecutive rows (default [`DEFAULT_CHUNK_SIZE`]), or
//! `--chunk-period DUR --timestamp COL`: rows grouped by the period their timestamp
//! (RFC 3339, or seconds since the epoch) falls in, periods aligned to the epoch, in time
//! order. The file is held in memory (scores, labels and timestamps only).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::classifier::Classifier;
use super::scores::{self, label_of, number_of};
use super::{baseline_reference, baseline_scores_for, task_from_baseline};
use crate::baseline::{open_source, InputFormat, Snapshot};
use crate::config::{Config, Task};

/// Rows per chunk when neither `--chunk-size` nor `--chunk-period` is given.
pub const DEFAULT_CHUNK_SIZE: usize = 5000;

/// How rows are grouped into chunks.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunking {
    /// Consecutive rows.
    Size(usize),
    /// By timestamp column, periods of this length aligned to the epoch.
    Period {
        /// Period length.
        period: Duration,
        /// The timestamp column.
        column: String,
    },
}

/// What to read from the input.
#[derive(Debug, Clone)]
pub struct Options {
    /// Input format (default: from the file extension).
    pub format: Option<InputFormat>,
    /// The column holding the model's prediction (label or value).
    pub prediction: String,
    /// Score columns: one = the positive class's score, several = one per class in class
    /// order. Empty: the baseline's (`probability.columns`), if it declares them.
    pub probability: Vec<String>,
    /// The ground-truth column.
    pub target: String,
    /// Chunking.
    pub chunking: Chunking,
}

/// Why an offline performance run failed.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The input file could not be read.
    #[error("{0}")]
    Read(String),
    /// A value or option is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// One chunk's figures (the JSON shape of SPEC section 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chunk {
    /// 0-based chunk number.
    pub index: usize,
    /// First row number (size chunks) or period start (RFC 3339).
    pub start: serde_json::Value,
    /// Last row number (inclusive) or period end (RFC 3339, exclusive).
    pub end: serde_json::Value,
    /// Rows in the chunk.
    pub rows: usize,
    /// Rows with a target.
    pub rows_with_target: usize,
    /// Metrics against the targets.
    pub realized: BTreeMap<&'static str, f64>,
    /// Label-free estimates.
    pub estimated: BTreeMap<&'static str, f64>,
    /// Standard error of each estimate.
    pub sampling_error: BTreeMap<&'static str, f64>,
    /// `ok`, `warning` or `critical`.
    pub status: &'static str,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Model name (from the baseline).
    pub model: String,
    /// `classification` or `regression`.
    pub task: &'static str,
    /// Class order of the score columns (classifiers with scores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Positive class (binary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    /// Decision threshold for rows without a label (binary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// How the scores are recalibrated on the baseline (`assumed`: taken as calibrated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
    /// The baseline's primary metric the statuses compare with.
    pub reference: Option<f64>,
    /// The chunks.
    pub chunks: Vec<Chunk>,
}

struct InRow {
    at: Option<f64>,
    scores: Option<Vec<f64>>,
    predicted: Option<String>,
    predicted_number: Option<f64>,
    target: Option<String>,
    target_number: Option<f64>,
}

fn parse_timestamp(v: &crate::record::FeatureValue) -> Option<f64> {
    if let Some(x) = number_of(v) {
        return Some(x);
    }
    let crate::record::FeatureValue::Text(s) = v else {
        return None;
    };
    let t = humantime::parse_rfc3339_weak(s.trim()).ok()?;
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Some(d.as_secs_f64()),
        Err(e) => Some(-e.duration().as_secs_f64()),
    }
}

fn rfc3339(secs: f64) -> serde_json::Value {
    let t = if secs >= 0.0 {
        UNIX_EPOCH.checked_add(Duration::from_secs_f64(secs))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs_f64(-secs))
    };
    t.map_or(serde_json::Value::from(secs), |t: SystemTime| {
        serde_json::Value::from(humantime::format_rfc3339(t).to_string())
    })
}

fn read_rows(input: &Path, opts: &Options) -> Result<Vec<InRow>, OfflineError> {
    let mut source =
        open_source(input, opts.format, &[]).map_err(|e| OfflineError::Read(e.to_string()))?;
    let ts_column = match &opts.chunking {
        Chunking::Period { column, .. } => Some(column.as_str()),
        Chunking::Size(_) => None,
    };
    let mut out = Vec::new();
    let mut line = 0usize;
    while let Some(row) = source
        .next_record_row()
        .map_err(|e| OfflineError::Read(e.to_string()))?
    {
        line += 1;
        let get = |name: &str| row.values.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let at = match ts_column {
            Some(c) => Some(get(c).and_then(parse_timestamp).ok_or_else(|| {
                OfflineError::Invalid(format!(
                    "{}: row {line}: column {c:?} holds no timestamp (RFC 3339 or epoch seconds)",
                    source.origin()
                ))
            })?),
            None => None,
        };
        let scores = if opts.probability.is_empty() {
            None
        } else {
            let s: Option<Vec<f64>> = opts
                .probability
                .iter()
                .map(|c| get(c).and_then(number_of))
                .collect();
            s
        };
        let predicted = get(&opts.prediction);
        let target = get(&opts.target);
        out.push(InRow {
            at,
            scores,
            predicted: predicted.and_then(label_of),
            predicted_number: predicted.and_then(number_of),
            target: target.and_then(label_of),
            target_number: target.and_then(number_of),
        });
    }
    if line == 0 {
        return Err(OfflineError::Invalid(format!(
            "{}: no rows",
            source.origin()
        )));
    }
    let columns = source.columns().to_vec();
    for c in &opts.probability {
        if !columns.contains(c) {
            return Err(OfflineError::Invalid(format!(
                "{}: no column {c:?} (--probability)",
                source.origin()
            )));
        }
    }
    Ok(out)
}

/// Groups row indexes into chunks: (start, end, row indexes).
fn chunk(
    rows: &[InRow],
    chunking: &Chunking,
) -> Result<Vec<(serde_json::Value, serde_json::Value, Vec<usize>)>, OfflineError> {
    match chunking {
        Chunking::Size(n) => {
            if *n == 0 {
                return Err(OfflineError::Invalid(
                    "--chunk-size must be at least 1".into(),
                ));
            }
            Ok((0..rows.len())
                .collect::<Vec<_>>()
                .chunks(*n)
                .map(|c| {
                    let (first, last) = (c[0], c[c.len() - 1]);
                    (first.into(), last.into(), c.to_vec())
                })
                .collect())
        }
        Chunking::Period { period, .. } => {
            let p = period.as_secs_f64();
            if p <= 0.0 {
                return Err(OfflineError::Invalid(
                    "--chunk-period must be positive".into(),
                ));
            }
            let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for (i, r) in rows.iter().enumerate() {
                let at = r.at.unwrap_or(0.0);
                groups.entry((at / p).floor() as i64).or_default().push(i);
            }
            Ok(groups
                .into_iter()
                .map(|(k, v)| {
                    let start = k as f64 * p;
                    (rfc3339(start), rfc3339(start + p), v)
                })
                .collect())
        }
    }
}

/// Computes the performance of `input` chunk by chunk against `snapshot`.
pub fn performance_of_file(
    snapshot: &Snapshot,
    input: &Path,
    opts: &Options,
    cfg: &Config,
) -> Result<Report, OfflineError> {
    // Without --probability, the baseline's declared score columns.
    let declared;
    let opts = if opts.probability.is_empty() {
        let mut o = opts.clone();
        o.probability = snapshot
            .probability
            .as_ref()
            .map(|p| p.columns.clone())
            .unwrap_or_default();
        declared = o;
        &declared
    } else {
        opts
    };
    let rows = read_rows(input, opts)?;
    let positive = scores::label_of_str(&cfg.performance.positive_class);
    let threshold = cfg.performance.threshold;
    let has_scores = rows.iter().any(|r| r.scores.is_some());
    let task = match cfg.model.task {
        Task::Auto if has_scores => Task::Classification,
        Task::Auto => task_from_baseline(snapshot).unwrap_or_else(|| {
            let labelled = rows.iter().filter_map(|r| r.target_number);
            let integral = rows
                .iter()
                .all(|r| r.target.is_none() || r.target_number.is_some_and(|x| x.fract() == 0.0));
            if labelled.count() > 0 && !integral {
                Task::Regression
            } else {
                Task::Classification
            }
        }),
        t => t,
    };
    let k = if opts.probability.len() == 1 {
        1
    } else {
        opts.probability.len()
    };
    let scored = baseline_scores_for(snapshot, &opts.probability);
    let classifier = (task != Task::Regression && has_scores).then(|| {
        let mut seen: Vec<String> = rows
            .iter()
            .flat_map(|r| r.predicted.iter().chain(r.target.iter()))
            .cloned()
            .collect();
        seen.sort();
        seen.dedup();
        Classifier::new(k, scored.as_ref(), &seen, &positive, threshold)
    });
    let reference = match (&classifier, &scored) {
        (Some(c), Some(r)) if r.rows.iter().any(|r| r.target.is_some()) => {
            super::joint::reference_accuracy(r, c)
        }
        _ => baseline_reference(snapshot, &positive, threshold, task),
    };
    let drop = cfg.thresholds.performance_drop;
    let mut chunks = Vec::new();
    for (index, (start, end, idx)) in chunk(&rows, &opts.chunking)?.into_iter().enumerate() {
        let mut realized = BTreeMap::new();
        let mut estimated = BTreeMap::new();
        let mut sampling_error = BTreeMap::new();
        let part: Vec<&InRow> = idx.iter().map(|&i| &rows[i]).collect();
        let with_target = part.iter().filter(|r| r.target.is_some()).count();
        if task == Task::Regression {
            let (a, p): (Vec<f64>, Vec<f64>) = part
                .iter()
                .filter_map(|r| Some((r.target_number?, r.predicted_number?)))
                .unzip();
            if let Some(s) = scores::regression(&a, &p) {
                realized.insert("mae", s.mae);
                realized.insert("rmse", s.rmse);
                if let Some(r2) = s.r2 {
                    realized.insert("r2", r2);
                }
            }
        } else {
            let label = |r: &InRow| match (&classifier, &r.scores) {
                (Some(c), Some(s)) => c.predicted_label(s, r.predicted.as_deref()),
                _ => r.predicted.clone(),
            };
            let (mut a, mut p, mut sa, mut ss) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for r in &part {
                let (Some(t), Some(l)) = (r.target.clone(), label(r)) else {
                    continue;
                };
                if let (Some(c), Some(s)) = (&classifier, &r.scores) {
                    if let Some(s) = c.expand(s) {
                        sa.push(t.clone());
                        ss.push(s);
                    }
                }
                a.push(t);
                p.push(l);
            }
            if let Some(s) = scores::classification(&a, &p, &positive) {
                realized.insert("accuracy", s.accuracy);
                realized.insert("precision", s.precision);
                realized.insert("recall", s.recall);
                realized.insert("f1", s.f1);
                realized.insert("specificity", s.specificity);
            }
            if let Some(c) = &classifier {
                let refs: Vec<&[f64]> = ss.iter().map(Vec::as_slice).collect();
                if let Some(auc) = scores::roc_auc_ovr(&sa, &refs, &c.classes, c.positive) {
                    realized.insert("roc_auc", auc);
                }
                let scored = part
                    .iter()
                    .filter_map(|r| Some((r.scores.as_deref()?, r.predicted.as_deref())));
                if let Some(e) = c.estimate(scored) {
                    estimated.extend(e.metrics());
                    sampling_error.extend(e.sampling_error.iter().map(|(k, v)| (*k, *v)));
                }
            }
        }
        let primary = if task == Task::Regression {
            realized.get("r2").copied()
        } else {
            realized
                .get("accuracy")
                .or_else(|| estimated.get("accuracy"))
                .copied()
        };
        let status = match (primary, reference) {
            (Some(v), Some(r)) if r.abs() > f64::EPSILON => {
                drop.status(((r - v) / r.abs()).max(0.0))
            }
            _ => 0,
        };
        chunks.push(Chunk {
            index,
            start,
            end,
            rows: part.len(),
            rows_with_target: with_target,
            realized,
            estimated,
            sampling_error,
            status: ["ok", "warning", "critical"][usize::from(status.min(2))],
        });
    }
    let binary = classifier.as_ref().is_some_and(Classifier::is_binary);
    Ok(Report {
        model: snapshot.model.name.clone(),
        task: if task == Task::Regression {
            "regression"
        } else {
            "classification"
        },
        classes: classifier.as_ref().map(|c| c.classes.clone()),
        positive_class: classifier
            .as_ref()
            .filter(|_| binary)
            .map(|c| c.classes[c.positive].clone()),
        threshold: classifier.as_ref().filter(|_| binary).map(|c| c.threshold),
        calibration: classifier.as_ref().map(Classifier::calibration_method),
        reference,
        chunks,
    })
}

/// 0 ok, 1 warning, 2 critical: the worst chunk.
pub fn exit_code(r: &Report) -> u8 {
    r.chunks
        .iter()
        .map(|c| match c.status {
            "critical" => 2,
            "warning" => 1,
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// An aligned table: one line per chunk, realized values, then estimates ± sampling error.
pub fn render_table(r: &Report) -> String {
    use std::fmt::Write;
    let metrics: Vec<&str> = if r.task == "regression" {
        vec!["mae", "rmse", "r2"]
    } else {
        super::cbpe::ESTIMATED_METRICS.to_vec()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "model {} ({}){}{}{}",
        r.model,
        r.task,
        r.positive_class
            .as_ref()
            .map(|p| format!(", positive class {p}"))
            .unwrap_or_default(),
        r.threshold
            .map(|t| format!(", threshold {t:.4}"))
            .unwrap_or_default(),
        r.reference
            .map(|v| format!(", baseline reference {v:.4}"))
            .unwrap_or_default(),
    );
    let mut header = format!("{:>5} {:>26} {:>26} {:>7}", "chunk", "start", "end", "rows");
    for m in &metrics {
        let _ = write!(header, " {:>11}", m);
        if r.task != "regression" {
            let _ = write!(header, " {:>17}", format!("est. {m}"));
        }
    }
    header.push_str("  status");
    let _ = writeln!(out, "{header}");
    for c in &r.chunks {
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut line = format!(
            "{:>5} {:>26} {:>26} {:>7}",
            c.index,
            show(&c.start),
            show(&c.end),
            c.rows
        );
        for m in &metrics {
            let real = c
                .realized
                .get(m)
                .map_or("-".to_string(), |v| format!("{v:.4}"));
            let _ = write!(line, " {real:>11}");
            if r.task != "regression" {
                let est = match (c.estimated.get(m), c.sampling_error.get(m)) {
                    (Some(v), Some(se)) => format!("{v:.4} ±{se:.4}"),
                    (Some(v), None) => format!("{v:.4}"),
                    _ => "-".to_string(),
                };
                let _ = write!(line, " {est:>17}");
            }
        }
        let _ = write!(line, "  {}", c.status);
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Output of `mlmon performance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned table.
    Table,
    /// `{"chunks": [...]}` (SPEC section 1) with the model, classes and reference.
    Json,
}

/// `mlmon performance` flags.
#[derive(Debug, clap::Args)]
pub struct PerformanceArgs {
    /// Baseline snapshot (class order, calibration, decision threshold, reference).
    #[arg(long)]
    pub baseline: std::path::PathBuf,
    /// Data batch.
    #[arg(long)]
    pub input: std::path::PathBuf,
    /// Input format (default: from the file extension).
    #[arg(long)]
    pub format: Option<InputFormat>,
    /// Column with the model's prediction (label).
    #[arg(long, default_value = "prediction")]
    pub prediction: String,
    /// Score column(s): one = the positive class's score, several = one per class in class
    /// order (repeat the flag or separate with commas). Default: the baseline's
    /// `probability.columns`.
    #[arg(long, value_delimiter = ',')]
    pub probability: Vec<String>,
    /// Column with the ground truth (rows without it get estimates only).
    #[arg(long, default_value = "target")]
    pub target: String,
    /// Rows per chunk.
    #[arg(long, conflicts_with = "chunk_period")]
    pub chunk_size: Option<usize>,
    /// Chunk by time: period length (`1h`, `1d`), needs --timestamp.
    #[arg(long, requires = "timestamp", value_parser = humantime::parse_duration)]
    pub chunk_period: Option<Duration>,
    /// Timestamp column (RFC 3339 or seconds since the epoch) for --chunk-period.
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Config file (`performance.positive_class`, `performance.threshold`,
    /// `thresholds.performance_drop`, `model.task`).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Log the figures to this MLflow run (metrics `mlmon.performance.*` with the chunk
    /// index as the step, artifact `mlmon/performance.json`).
    #[arg(long, value_name = "RUN_ID")]
    pub mlflow_run: Option<String>,
    /// MLflow server.
    #[command(flatten)]
    pub tracking: crate::mlflow::TrackingArgs,
}

/// Runs `mlmon performance`; the exit code is the worst chunk status, 3 on error.
pub fn run(args: PerformanceArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("mlmon: error: {e}");
        ExitCode::from(3)
    };
    let cfg = match Config::load(args.config.as_deref(), &crate::config::Overrides::default()) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let snapshot = match Snapshot::load(&args.baseline) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let chunking = match (args.chunk_period, args.timestamp, args.chunk_size) {
        (Some(period), Some(column), _) => Chunking::Period { period, column },
        (None, _, n) => Chunking::Size(n.unwrap_or(DEFAULT_CHUNK_SIZE)),
        (Some(_), None, _) => return fail(&"--chunk-period needs --timestamp COL"),
    };
    let opts = Options {
        format: args.format,
        prediction: args.prediction,
        probability: args.probability,
        target: args.target,
        chunking,
    };
    let report = match performance_of_file(&snapshot, &args.input, &opts, &cfg) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if let Some(run) = &args.mlflow_run {
        let logged = crate::mlflow::log_report(
            args.tracking.mlflow_tracking_uri.as_deref(),
            run,
            &report,
            crate::mlflow::performance_metrics,
            "performance.json",
        );
        if let Err(e) = logged {
            return fail(&e);
        }
        eprintln!("logged the performance figures to MLflow run {run}");
    }
    match args.output {
        OutputFormat::Table => print!("{}", render_table(&report)),
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(&e),
        },
    }
    ExitCode::from(exit_code(&report))
}
