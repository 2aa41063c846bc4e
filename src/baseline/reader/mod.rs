//! Tabular input files (CSV, JSON Lines, Parquet) read one row at a time, so
//! files larger than memory can be processed.
//!
//! A [`RowSource`] hands each row's cells to a visitor as borrowed [`Cell`]s
//! (no per-row allocation of names), which is what the baseline builder and
//! the offline `mlmon drift` command consume. [`RowSource::next_record_row`]
//! gives an owned [`Row`] for code that prefers the neutral record type.
//!
//! Conventions shared by all formats:
//! - CSV: the first line is the header; the cells `""`, `NA`, `N/A`, `n/a`,
//!   `NULL`, `null`, `None`, `NaN`, `nan`, `-NaN`, `-nan`, `#N/A`, `#NA`,
//!   `<NA>`, `#N/A N/A`, `1.#IND`, `-1.#IND`, `1.#QNAN`, `-1.#QNAN` are
//!   missing (pandas' defaults); `.tsv` files are tab-separated; a `.gz`
//!   suffix is decompressed on the fly (`train.csv.gz`).
//! - JSON Lines: one object per line; blank lines are skipped; a key absent
//!   from a row is missing in that row; booleans are the text `true`/`false`
//!   (so are CSV's `True`, `TRUE`, ... as category keys); nested arrays and
//!   objects are refused (exclude the column).
//! - Parquet: top-level primitive columns; booleans are `true`/`false`, decimals are
//!   numbers, dates and timestamps are text; nested columns (struct, list,
//!   map) are skipped and reported by [`RowSource::skipped_columns`]; dates
//!   are `YYYY-MM-DD` and timestamps RFC 3339 in UTC.
//!
//! Layout: this file holds the shared types ([`RowSource`], [`Cell`],
//! [`ReadError`], [`InputFormat`]) and [`open_source`]; one file per format
//! (`csv`, `jsonl`, `parquet`), `text` for the byte-counting (and gzip)
//! input of the text formats, `memory` for rows replayed from memory.

pub mod columnar;
mod csv;
mod jsonl;
mod memory;
mod number;
mod parquet;
mod text;

#[cfg(test)]
mod tests;

use std::path::Path;

use crate::record::{FeatureValue, Row};

pub use self::csv::CsvSource;
pub use self::jsonl::JsonlSource;
pub(crate) use self::memory::MemorySource;
pub(crate) use self::number::fast_f64;
pub use self::parquet::ParquetSource;
#[cfg(test)]
pub(crate) use self::parquet::{format_date, format_time_of_day, format_timestamp};

/// The input file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Comma-separated values with a header line (tab-separated for `.tsv`).
    Csv,
    /// JSON Lines: one JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl InputFormat {
    /// `csv`, `jsonl` or `parquet`.
    pub fn as_str(self) -> &'static str {
        match self {
            InputFormat::Csv => "csv",
            InputFormat::Jsonl => "jsonl",
            InputFormat::Parquet => "parquet",
        }
    }

    /// The format named on the command line (`csv`, `jsonl`/`ndjson`, `parquet`).
    pub fn parse(name: &str) -> Option<InputFormat> {
        match name.to_ascii_lowercase().as_str() {
            "csv" | "tsv" => Some(InputFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(InputFormat::Jsonl),
            "parquet" | "pq" => Some(InputFormat::Parquet),
            _ => None,
        }
    }

    /// The format implied by a file name (`.csv`, `.tsv`, `.jsonl`, `.ndjson`,
    /// `.json`, `.parquet`, `.pq`, each optionally followed by `.gz` for the
    /// text formats).
    pub fn from_path(path: &Path) -> Option<InputFormat> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let ext = name.rsplit_once('.')?.1;
        InputFormat::parse(ext)
    }
}

impl std::str::FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InputFormat::parse(s)
            .ok_or_else(|| format!("unknown format {s:?} (expected csv, jsonl or parquet)"))
    }
}

/// Why an input file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Neither `--format` nor the file extension says what the file is.
    #[error(
        "{file}: cannot tell the format from the file name; pass --format csv, jsonl or parquet"
    )]
    UnknownFormat {
        /// The file.
        file: String,
    },
    /// A CSV line could not be read.
    #[error("{file}: line {line}: {message}")]
    Csv {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A JSON line could not be read.
    #[error("{file}: line {line}: {message}")]
    Json {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The Parquet file or one of its rows could not be read.
    #[error("{file}: {}{message}", row.map(|r| format!("row {r}: ")).unwrap_or_default())]
    Parquet {
        /// The file.
        file: String,
        /// 1-based row number, when the error is about a row.
        row: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// The header names the same column twice.
    #[error("{file}: column {column:?} appears more than once in the header")]
    DuplicateColumn {
        /// The file.
        file: String,
        /// The repeated name.
        column: String,
    },
    /// More columns than the reader accepts.
    #[error("{file}: more than {limit} columns")]
    TooManyColumns {
        /// The file.
        file: String,
        /// The limit.
        limit: usize,
    },
}

/// Most columns a source accepts (bounds memory on adversarial JSON Lines).
pub const MAX_COLUMNS: usize = 10_000;

/// One cell of a row, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// Null, empty, a missing-value token, or absent.
    Missing,
    /// A number from a typed source (JSON number, Parquet numeric).
    Number(f64),
    /// Text, which may still hold a number (every CSV cell is text); booleans are
    /// `true` / `false`.
    Text(&'a str),
}

impl Cell<'_> {
    /// The neutral record value of this cell (text is kept as text).
    pub fn to_feature_value(&self) -> FeatureValue {
        match self {
            Cell::Missing => FeatureValue::Missing,
            Cell::Number(v) if v.is_finite() => FeatureValue::Number(*v),
            Cell::Number(_) => FeatureValue::Missing,
            Cell::Text(s) => FeatureValue::Text((*s).to_string()),
        }
    }
}

/// Where a source is in its input, for progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePosition {
    /// Bytes (text formats, compressed bytes for `.gz`) or rows (Parquet) done.
    pub done: u64,
    /// The total in the same unit, when known.
    pub total: Option<u64>,
    /// Whether the unit is bytes (else rows).
    pub bytes: bool,
}

/// A tabular input read one row at a time.
pub trait RowSource {
    /// The file (or other origin) this source reads, for messages.
    fn origin(&self) -> &str;

    /// Column names known so far, in first-seen order. For CSV and Parquet
    /// this is the header; for JSON Lines it grows as new keys appear.
    fn columns(&self) -> &[String];

    /// Reads the next row and calls `visit(column_index, cell)` for each
    /// value it carries (absent keys are not visited). Returns `Ok(false)` at
    /// the end of the input.
    fn next_row(&mut self, visit: &mut dyn FnMut(usize, Cell<'_>)) -> Result<bool, ReadError>;

    /// Progress through the input.
    fn position(&self) -> SourcePosition;

    /// Columns present in the input but not read because their type is not
    /// supported (nested Parquet types).
    fn skipped_columns(&self) -> &[String] {
        &[]
    }

    /// Columns present in the input but not decoded because the caller asked
    /// to skip them (Parquet projection); other formats still visit them.
    fn projected_out(&self) -> &[String] {
        &[]
    }

    /// Reads the next row as an owned [`Row`] (`None` at the end).
    fn next_record_row(&mut self) -> Result<Option<Row>, ReadError> {
        let mut cells: Vec<(usize, FeatureValue)> = Vec::new();
        let more = self.next_row(&mut |i, c| cells.push((i, c.to_feature_value())))?;
        if !more {
            return Ok(None);
        }
        let columns = self.columns();
        let values = cells
            .into_iter()
            .filter_map(|(i, v)| columns.get(i).map(|n| (n.clone(), v)))
            .collect();
        Ok(Some(Row { values }))
    }
}

/// Opens `path` as `format` (or the format its name implies). Columns named
/// in `skip` are not decoded where the format allows it (Parquet projection);
/// other formats still visit them and the caller ignores them.
pub fn open_source(
    path: &Path,
    format: Option<InputFormat>,
    skip: &[String],
) -> Result<Box<dyn RowSource>, ReadError> {
    let file = path.display().to_string();
    let format = match format.or_else(|| InputFormat::from_path(path)) {
        Some(f) => f,
        None => return Err(ReadError::UnknownFormat { file }),
    };
    match format {
        InputFormat::Csv => Ok(Box::new(CsvSource::open(path)?)),
        InputFormat::Jsonl => Ok(Box::new(JsonlSource::open(path)?)),
        InputFormat::Parquet => Ok(Box::new(ParquetSource::open(path, skip)?)),
    }
}

/// Refuses a header that names a column twice.
fn check_duplicates(file: &str, columns: &[String]) -> Result<(), ReadError> {
    let mut seen = std::collections::HashSet::new();
    for c in columns {
        if !seen.insert(c.as_str()) {
            return Err(ReadError::DuplicateColumn {
                file: file.to_string(),
                column: c.clone(),
            });
        }
    }
    Ok(())
}
