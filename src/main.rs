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
    if cli.command.is_long_running() {
        purge::return_freed_memory_at_once();
    }
    mlmon::cli::run(cli)
}

/// How the long-running commands (`serve`, `demo`, `trigger`) get their freed memory
/// returned to the OS at once (docs/reliability.md, "Memory after bursts").
///
/// mimalloc returns freed pages to the OS only after its purge delay (1 s) and only when
/// the thread that owns them allocates again, so a burst of large bodies (captures, events)
/// stayed resident long after it was freed: 30 lone 15 MiB events left the sidecar 160-170
/// MB larger, against the 64 MiB the events buffer may hold. With `MIMALLOC_PURGE_DELAY=0`
/// the same burst leaves about 67 MB, and the analysis path costs the same instructions.
/// mimalloc reads its options from the environment before `main` runs, and setting them
/// from Rust needs `unsafe` FFI (`mi_option_set`), which this crate forbids; so the process
/// replaces itself (same PID, arguments and open files) with a copy of itself started with
/// the variable set. A value the user set is kept; the offline commands keep mimalloc's
/// default (it makes them about 25 % slower: they free large buffers they soon reuse).
#[cfg(unix)]
mod purge {
    use std::os::unix::process::CommandExt;

    /// The mimalloc option, read from the environment at process start.
    const VARIABLE: &str = "MIMALLOC_PURGE_DELAY";

    /// Re-executes this binary with [`VARIABLE`]` = 0` unless it is set; returns only when
    /// it is set already or the re-execution failed (then mimalloc's default stays, with a
    /// note on stderr).
    pub(super) fn return_freed_memory_at_once() {
        if std::env::var_os(VARIABLE).is_some() {
            return;
        }
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => return note(&e),
        };
        let mut args = std::env::args_os();
        let mut cmd = std::process::Command::new(exe);
        if let Some(argv0) = args.next() {
            cmd.arg0(argv0);
        }
        let e = cmd.args(args).env(VARIABLE, "0").exec();
        note(&e);
    }

    fn note(e: &std::io::Error) {
        eprintln!(
            "mlmon: could not restart with {VARIABLE}=0 ({e}); freed memory returns to the OS \
             after mimalloc's default delay"
        );
    }
}

#[cfg(not(unix))]
mod purge {
    pub(super) fn return_freed_memory_at_once() {}
}
