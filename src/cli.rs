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
    /// Run a built-in example model server, the sidecar in front of it, and synthetic
    /// traffic that drifts after a while. Needs nothing but this binary.
    Demo(DemoArgs),
}

/// `mlmon serve` flags; they override the config file.
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

/// `mlmon demo` flags.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Proxy listen address.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Admin listen address (/metrics, API).
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub admin_listen: String,
    /// Seconds of normal traffic before the inputs start to drift.
    #[arg(long, default_value_t = 60)]
    pub drift_after: u64,
    /// Requests per second sent by the synthetic client.
    #[arg(long, default_value_t = 20.0)]
    pub rps: f64,
}

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
        Command::CheckConfig { config } => {
            match Config::load(config.as_deref(), &Overrides::default()) {
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
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
