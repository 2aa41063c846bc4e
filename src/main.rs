//! The `mlmon` binary: parse the command line, set up logging, run.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mlmon::cli::Cli::parse();
    mlmon::cli::run(cli)
}
