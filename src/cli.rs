//! The command line (SPEC section 1). Every failure prints one line naming the file, key or
//! value and exits non-zero; nothing panics on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides};

/// mlmon — ML Model Monitor Pro: a sidecar that proxies a model server and exports
/// latency, drift, data quality and performance metrics to Prometheus.
#[derive(Debug, Parser)]
#[command(name = "mlmon", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar: proxy the model server and serve metrics and the API.
    Serve(ServeArgs),
    /// Validate the configuration (and the baselines it names); exit 0 or print the problem.
    CheckConfig {
        /// Config file (YAML or TOML).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Build or inspect baseline snapshots.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Drift of a data batch against a baseline snapshot (same statistics as the sidecar).
    /// Exit code: 0 ok, 1 warning, 2 critical, 3 error.
    Drift(DriftArgs),
    /// Performance of a data batch, chunk by chunk: realized metrics where the target is
    /// present, label-free estimates (with sampling error) from the scores.
    /// Exit code: 0 ok, 1 warning, 2 critical, 3 error.
    Performance(crate::performance::offline::PerformanceArgs),
    /// Run a built-in example model server, the sidecar in front of it, and synthetic
    /// traffic that drifts after a while. Needs nothing but this binary.
    Demo(DemoArgs),
    /// Receive Alertmanager webhooks and turn chosen alerts into a retraining action (an HTTP
    /// call or a command), with cooldown, deduplication, HMAC signatures and a dry-run mode.
    Trigger(crate::trigger::TriggerArgs),
}

impl Command {
    /// Whether the command runs until it is stopped (`serve`, `demo`, `trigger`), as opposed
    /// to an offline command that reads files and exits.
    pub fn is_long_running(&self) -> bool {
        matches!(
            self,
            Command::Serve(_) | Command::Demo(_) | Command::Trigger(_)
        )
    }
}

/// `mlmon serve` flags; they override `MLMON_*` environment variables, which override the
/// config file.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Config file (YAML or TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Proxy listen address (config `listen`).
    #[arg(long)]
    pub listen: Option<String>,
    /// Model server URL (config `upstream`).
    #[arg(long)]
    pub upstream: Option<String>,
    /// Admin listen address for /metrics and the API (config `admin_listen`).
    #[arg(long)]
    pub admin_listen: Option<String>,
    /// Baseline snapshot to load (repeatable, one per model; config `baseline.files`).
    #[arg(long = "baseline")]
    pub baselines: Vec<PathBuf>,
    /// Model name when the path carries none (config `model.name`).
    #[arg(long)]
    pub model: Option<String>,
}

/// `mlmon baseline …`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Build a snapshot from training or validation data (CSV, JSON Lines, Parquet).
    Build(Box<BuildArgs>),
    /// Print a human summary of a snapshot.
    Show {
        /// The snapshot file.
        file: PathBuf,
    },
}

/// `mlmon baseline build` flags.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Input data file.
    #[arg(
        long,
        required_unless_present = "from_mlflow",
        conflicts_with = "from_mlflow"
    )]
    pub input: Option<PathBuf>,
    /// Take the input from MLflow instead: `runs:/<run_id>/<artifact path>`,
    /// `models:/<name>/<version>[/<artifact path>]` or `models:/<name>@<alias>[/<path>]`
    /// (without a path, the run's one .csv/.jsonl/.parquet artifact).
    #[arg(long, value_name = "URI")]
    pub from_mlflow: Option<String>,
    /// Log the written snapshot back to the MLflow run (the `--from-mlflow` run, or
    /// `--mlflow-run`) as the artifact `mlmon/<output file name>`, with `mlmon.baseline_id` tags.
    #[arg(long)]
    pub log_to_mlflow: bool,
    /// The MLflow run to log to when the input is a local file.
    #[arg(long, value_name = "RUN_ID")]
    pub mlflow_run: Option<String>,
    /// MLflow server.
    #[command(flatten)]
    pub tracking: crate::mlflow::TrackingArgs,
    /// Input format (default: from the file extension).
    #[arg(long)]
    pub format: Option<crate::baseline::InputFormat>,
    /// Where to write the snapshot (JSON).
    #[arg(long)]
    pub output: PathBuf,
    /// Model name recorded in the snapshot.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// Column holding what the model returns as its prediction, a label or a value
    /// (stored as the `prediction` entry).
    #[arg(long)]
    pub prediction: Option<String>,
    /// Score column (repeatable): one column = the positive class's score, several = one
    /// per class in class order. Kept in the joint sample for calibration, not a feature.
    #[arg(long)]
    pub probability: Vec<String>,
    /// Column holding the ground truth.
    #[arg(long)]
    pub target: Option<String>,
    /// Treat these columns as categorical (repeatable, or a comma-separated list).
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Leave this column out (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Bins per numeric feature, at baseline quantiles.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Reference sample kept per numeric feature for KS and Wasserstein.
    #[arg(long, default_value_t = 5000)]
    pub sample_size: usize,
}

/// Output of `mlmon drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftOutput {
    /// An aligned table.
    Table,
    /// The same JSON as `GET /api/v1/models/{model}/drift`.
    Json,
}

/// `mlmon drift` flags.
#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    /// Baseline snapshot.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Data batch to compare.
    #[arg(long)]
    pub input: PathBuf,
    /// Input format (default: from the file extension).
    #[arg(long)]
    pub format: Option<crate::baseline::InputFormat>,
    /// Column holding the model's prediction, compared with the baseline's `prediction`
    /// entry (default: a column named `prediction`).
    #[arg(long)]
    pub prediction: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DriftOutput::Table)]
    pub output: DriftOutput,
    /// Config file for thresholds (`thresholds.*`, `models.<name>.thresholds`, `drift.*`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log the figures to this MLflow run (metrics `mlmon.drift.*`, artifact `mlmon/drift.json`).
    #[arg(long, value_name = "RUN_ID")]
    pub mlflow_run: Option<String>,
    /// MLflow server.
    #[command(flatten)]
    pub tracking: crate::mlflow::TrackingArgs,
}

pub use crate::demo::DemoArgs;

/// Runs a parsed command line; the return value is the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => {
            let overrides = Overrides {
                listen: args.listen,
                upstream: args.upstream,
                admin_listen: args.admin_listen,
                baseline_files: args.baselines,
                model: args.model,
            };
            let cfg = match Config::load(args.config.as_deref(), &overrides) {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            init_logging(&cfg.log.level, cfg.log.format);
            match runtime().and_then(|rt| {
                rt.block_on(crate::server::serve(cfg))
                    .map_err(|e| e.to_string())
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Baseline(BaselineCommand::Build(args)) => baseline_build(*args),
        Command::Baseline(BaselineCommand::Show { file }) => {
            match crate::baseline::Snapshot::load(&file) {
                Ok(s) => {
                    print!(
                        "{}",
                        crate::baseline::render_summary(&s, &file.display().to_string())
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Drift(args) => drift(args),
        Command::Performance(args) => crate::performance::offline::run(args),
        Command::CheckConfig { config } => {
            match Config::load(config.as_deref(), &Overrides::default()).and_then(|cfg| {
                crate::server::load_baselines(&cfg)
                    .map(|_| cfg)
                    .map_err(|e| crate::error::ConfigError::Parse {
                        origin: "baseline".into(),
                        message: e.to_string(),
                    })
            }) {
                Ok(cfg) => {
                    println!(
                        "configuration ok: proxy {} → {}, admin {}, {} baseline file(s)",
                        cfg.listen,
                        cfg.upstream,
                        cfg.admin_listen,
                        cfg.baseline.files.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Trigger(args) => {
            init_logging("info", LogFormat::Text);
            crate::trigger::run(args)
        }
        Command::Demo(args) => {
            init_logging("info,mlmon=info", LogFormat::Text);
            match runtime().and_then(|rt| {
                rt.block_on(crate::demo::run(args))
                    .map_err(|e| e.to_string())
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
    }
}

fn baseline_build(args: BuildArgs) -> ExitCode {
    let mut options = crate::baseline::BuildOptions::new(args.model);
    options.prediction = args.prediction;
    options.probability = args.probability;
    options.target = args.target;
    options.categorical = args.categorical;
    options.exclude = args.exclude;
    options.bins = args.bins;
    options.sample_size = args.sample_size;
    let mut progress = crate::baseline::TerminalProgress::new();
    let started = std::time::Instant::now();
    let uri = args.tracking.mlflow_tracking_uri.as_deref();
    // The downloaded file lives in `_scratch` until the snapshot is built.
    let (_scratch, input, mut log_run) = match (&args.input, &args.from_mlflow) {
        (Some(file), _) => (None, file.clone(), None),
        (None, Some(source)) => match crate::mlflow::fetch(uri, source) {
            Ok((scratch, file, at)) => {
                eprintln!("downloaded {} from MLflow run {}", at.path, at.run_id);
                (Some(scratch), file, Some(at.run_id))
            }
            Err(e) => return fail(&e),
        },
        (None, None) => return fail(&"give --input FILE or --from-mlflow URI"),
    };
    if args.mlflow_run.is_some() {
        log_run = args.mlflow_run.clone();
    }
    if args.log_to_mlflow && log_run.is_none() {
        return fail(&"--log-to-mlflow needs --from-mlflow or --mlflow-run RUN_ID");
    }
    let snapshot =
        match crate::baseline::build_from_file(&input, args.format, &options, &mut progress) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
    if let Err(e) = snapshot.save(&args.output) {
        return fail(&e);
    }
    if let (true, Some(run)) = (args.log_to_mlflow, &log_run) {
        match crate::mlflow::log_baseline(uri, run, &args.output, &snapshot.id, snapshot.row_count)
        {
            Ok(path) => eprintln!("logged {path} to MLflow run {run}"),
            Err(e) => return fail(&e),
        }
    }
    eprintln!(
        "wrote {} ({} rows, {} features{}, id {}) in {:.1}s",
        args.output.display(),
        snapshot.row_count,
        snapshot.features.len(),
        if snapshot.prediction.is_some() {
            " + prediction"
        } else {
            ""
        },
        snapshot.id,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn drift(args: DriftArgs) -> ExitCode {
    let fail3 = |e: &dyn std::fmt::Display| {
        eprintln!("mlmon: error: {e}");
        ExitCode::from(3)
    };
    let cfg = match Config::load(args.config.as_deref(), &Overrides::default()) {
        Ok(c) => c,
        Err(e) => return fail3(&e),
    };
    // The batch file is read into memory (on the other CPU) while the baseline loads.
    let (snapshot, preloaded) = std::thread::scope(|scope| {
        let preloaded = scope.spawn(|| crate::drift::offline::preload(&args.input, args.format));
        let snapshot = crate::baseline::Snapshot::load(&args.baseline);
        (snapshot, preloaded.join().ok())
    });
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e) => return fail3(&e),
    };
    // The engine's windows use tokio's clock.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail3(&e),
    };
    let _guard = rt.enter();
    let report = match preloaded {
        Some(preloaded) => crate::drift::offline::drift_of_preloaded(
            snapshot,
            &args.input,
            args.format,
            args.prediction.as_deref(),
            &cfg,
            preloaded,
        ),
        None => crate::drift::offline::drift_of_file(
            snapshot,
            &args.input,
            args.format,
            args.prediction.as_deref(),
            &cfg,
        ),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => return fail3(&e),
    };
    if let Some(run) = &args.mlflow_run {
        let logged = crate::mlflow::log_report(
            args.tracking.mlflow_tracking_uri.as_deref(),
            run,
            &report,
            crate::mlflow::drift_metrics,
            "drift.json",
        );
        if let Err(e) = logged {
            return fail3(&e);
        }
        eprintln!("logged the drift figures to MLflow run {run}");
    }
    match args.output {
        DriftOutput::Table => print!("{}", crate::drift::offline::render_table(&report)),
        DriftOutput::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail3(&e),
        },
    }
    ExitCode::from(crate::drift::offline::exit_code(&report))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Prints one error line and returns exit code 1.
fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("mlmon: error: {e}");
    ExitCode::from(1)
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only on a terminal: a log file or a collector gets no escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{BaselineCommand, Cli, Command};

    #[test]
    fn build_flags_split_prediction_from_probability_and_take_comma_lists() {
        let cli = Cli::try_parse_from([
            "mlmon",
            "baseline",
            "build",
            "--input",
            "t.csv",
            "--output",
            "b.json",
            "--prediction",
            "yhat",
            "--probability",
            "p_a",
            "--probability",
            "p_b",
            "--categorical",
            "zip,country",
            "--categorical",
            "segment",
        ])
        .unwrap();
        let Command::Baseline(BaselineCommand::Build(b)) = cli.command else {
            panic!("not a build");
        };
        assert_eq!(b.prediction.as_deref(), Some("yhat"));
        assert_eq!(b.probability, ["p_a", "p_b"]);
        assert_eq!(b.categorical, ["zip", "country", "segment"]);
    }

    #[test]
    fn drift_takes_the_prediction_column() {
        let cli = Cli::try_parse_from([
            "mlmon",
            "drift",
            "--baseline",
            "b.json",
            "--input",
            "x.csv",
            "--prediction",
            "yhat",
        ])
        .unwrap();
        let Command::Drift(d) = cli.command else {
            panic!("not drift");
        };
        assert_eq!(d.prediction.as_deref(), Some("yhat"));
    }
}
