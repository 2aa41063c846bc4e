//! The `mlmon` binary: parse the command line, set up logging, run.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the analysis thread allocates per value (rows,
/// sketch buffers, JSON trees), and mimalloc's thread-local free lists cut the analysis
/// path's instructions by about 14 % (docs/performance.md, "Analysis path").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = mlmon::cli::Cli::parse();
    mlmon::cli::run(cli)
}
