//! Progress reporting for long builds, kept behind a trait so library code
//! and tests run without a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Receives progress of a pass over an input.
pub trait Progress {
    /// A pass starts; `total` is in bytes when `bytes`, else in rows.
    fn start(&mut self, label: &str, total: Option<u64>, bytes: bool);
    /// Work done so far in the pass, in the unit given to `start`.
    fn update(&mut self, done: u64);
    /// The pass is over.
    fn finish(&mut self);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _label: &str, _total: Option<u64>, _bytes: bool) {}
    fn update(&mut self, _done: u64) {}
    fn finish(&mut self) {}
}

/// A progress bar on standard error, drawn only when standard error is a
/// terminal and the input is large enough to be worth it.
#[derive(Debug)]
pub struct TerminalProgress {
    /// The bar of the current pass, when one is shown.
    bar: Option<ProgressBar>,
    /// Whether standard error is a terminal.
    enabled: bool,
    /// Smallest input (bytes) that gets a bar.
    min_bytes: u64,
    /// Smallest input (rows) that gets a bar.
    min_rows: u64,
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl TerminalProgress {
    /// A bar for inputs of at least 16 MiB or 200 000 rows, shown only when
    /// standard error is a terminal.
    pub fn new() -> Self {
        TerminalProgress {
            bar: None,
            enabled: std::io::stderr().is_terminal(),
            min_bytes: 16 << 20,
            min_rows: 200_000,
        }
    }
}

impl Progress for TerminalProgress {
    fn start(&mut self, label: &str, total: Option<u64>, bytes: bool) {
        self.finish();
        let Some(total) = total else { return };
        let large = if bytes {
            total >= self.min_bytes
        } else {
            total >= self.min_rows
        };
        if !self.enabled || !large {
            return;
        }
        let template = if bytes {
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
        } else {
            "{msg} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, {eta})"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_message(label.to_string());
        self.bar = Some(bar);
    }

    fn update(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::test_support::*;
    use crate::baseline::{build_from_file, BuildOptions};

    #[derive(Default)]
    struct Recorder {
        events: Vec<String>,
    }

    impl Progress for Recorder {
        fn start(&mut self, label: &str, total: Option<u64>, bytes: bool) {
            self.events.push(format!("start {label} {total:?} {bytes}"));
        }
        fn update(&mut self, done: u64) {
            self.events.push(format!("update {done}"));
        }
        fn finish(&mut self) {
            self.events.push("finish".into());
        }
    }

    #[test]
    fn progress_is_reported_per_pass() {
        let size = std::fs::metadata(fixture("data.csv")).unwrap().len();
        // One pass when every column fits the quantile sample and no column
        // turns categorical late ("mixed" does).
        let mut rec = Recorder::default();
        let opts = BuildOptions {
            exclude: vec!["dropme".into(), "mixed".into()],
            ..fixture_options()
        };
        build_from_file(&fixture("data.csv"), None, &opts, &mut rec).unwrap();
        assert_eq!(
            rec.events,
            vec![format!("start reading Some({size}) true"), "finish".into()]
        );

        // A second pass shows as a second bar; Parquet counts rows.
        let mut rec = Recorder::default();
        let opts = BuildOptions {
            quantile_sample_size: 100,
            sample_size: 10,
            ..fixture_options()
        };
        build_from_file(&fixture("data.parquet"), None, &opts, &mut rec).unwrap();
        assert_eq!(
            rec.events,
            vec![
                "start reading Some(2000) false".to_string(),
                "finish".into(),
                "start counting bins Some(2000) false".into(),
                "finish".into()
            ]
        );
    }
}
