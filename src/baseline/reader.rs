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
//!   from a row is missing in that row; booleans are 1/0; nested arrays and
//!   objects are refused (exclude the column).
//! - Parquet: top-level primitive columns; booleans are 1/0, decimals are
//!   numbers, dates and timestamps are text; nested columns (struct, list,
//!   map) are skipped and reported by [`RowSource::skipped_columns`]; dates
//!   are `YYYY-MM-DD` and timestamps RFC 3339 in UTC.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::record::{FeatureValue, Row};

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
    /// A number from a typed source (JSON number or boolean, Parquet numeric).
    Number(f64),
    /// Text, which may still hold a number (every CSV cell is text).
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

/// A reader that counts the bytes taken from the file, for progress.
struct CountingReader<R> {
    /// The wrapped reader.
    inner: R,
    /// Bytes read so far, shared with the source that reports progress.
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened text input.
struct TextInput {
    /// The (decompressed) bytes.
    reader: Box<dyn Read>,
    /// Bytes taken from the file so far.
    bytes_read: Arc<AtomicU64>,
    /// File size in bytes.
    size: u64,
}

/// Opens a text file, decompressing `.gz`.
fn open_text(path: &Path, file: &str) -> Result<TextInput, ReadError> {
    let io = |source| ReadError::Io {
        file: file.to_string(),
        source,
    };
    let f = File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let count = Arc::new(AtomicU64::new(0));
    let counted = CountingReader {
        inner: f,
        count: Arc::clone(&count),
    };
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            counted,
        )))
    } else {
        Box::new(counted)
    };
    Ok(TextInput {
        reader,
        bytes_read: count,
        size,
    })
}

/// pandas' default missing-value tokens for CSV.
const NA_TOKENS: [&str; 19] = [
    "", "NA", "N/A", "n/a", "NULL", "null", "None", "NaN", "nan", "-NaN", "-nan", "#N/A", "#NA",
    "<NA>", "#N/A N/A", "1.#IND", "-1.#IND", "1.#QNAN", "-1.#QNAN",
];

#[inline]
fn is_na_token(s: &str) -> bool {
    s.len() <= 8 && NA_TOKENS.contains(&s)
}

/// CSV with a header line.
pub struct CsvSource {
    /// The file, for messages.
    file: String,
    /// The CSV reader.
    reader: csv::Reader<Box<dyn Read>>,
    /// Header names.
    columns: Vec<String>,
    /// Reused record buffer.
    record: csv::StringRecord,
    /// Bytes read from the file.
    bytes_read: Arc<AtomicU64>,
    /// File size in bytes.
    size: u64,
}

impl CsvSource {
    /// Opens a CSV (or `.tsv`, or `.gz`-compressed) file and reads its header.
    pub fn open(path: &Path) -> Result<CsvSource, ReadError> {
        let file = path.display().to_string();
        let TextInput {
            reader,
            bytes_read,
            size,
        } = open_text(path, &file)?;
        let name = path.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let delimiter = if name.ends_with(".tsv") { b'\t' } else { b',' };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(false)
            .buffer_capacity(1 << 16)
            .from_reader(reader);
        let header = reader.headers().map_err(|e| csv_error(&file, e))?.clone();
        if header.is_empty() {
            return Err(ReadError::Csv {
                file,
                line: 1,
                message: "the file is empty (no header line)".into(),
            });
        }
        let columns: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        if columns.len() > MAX_COLUMNS {
            return Err(ReadError::TooManyColumns {
                file,
                limit: MAX_COLUMNS,
            });
        }
        check_duplicates(&file, &columns)?;
        Ok(CsvSource {
            file,
            reader,
            columns,
            record: csv::StringRecord::new(),
            bytes_read,
            size,
        })
    }
}

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

fn csv_error(file: &str, e: csv::Error) -> ReadError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields (as in the header), found {len}"),
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("field {} is not valid UTF-8", err.field() + 1)
        }
        csv::ErrorKind::Io(err) => {
            return ReadError::Io {
                file: file.to_string(),
                source: std::io::Error::new(err.kind(), err.to_string()),
            }
        }
        _ => e.to_string(),
    };
    ReadError::Csv {
        file: file.to_string(),
        line,
        message,
    }
}

impl RowSource for CsvSource {
    fn origin(&self) -> &str {
        &self.file
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, visit: &mut dyn FnMut(usize, Cell<'_>)) -> Result<bool, ReadError> {
        let more = self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| csv_error(&self.file, e))?;
        if !more {
            return Ok(false);
        }
        for (i, field) in self.record.iter().enumerate() {
            if is_na_token(field) {
                visit(i, Cell::Missing);
            } else {
                visit(i, Cell::Text(field));
            }
        }
        Ok(true)
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            done: self.bytes_read.load(Ordering::Relaxed),
            total: Some(self.size),
            bytes: true,
        }
    }
}

/// JSON Lines: one object per line.
pub struct JsonlSource {
    /// The file, for messages.
    file: String,
    /// Buffered reader.
    reader: BufReader<Box<dyn Read>>,
    /// Reused line buffer.
    line: String,
    /// Current 1-based line number.
    line_no: u64,
    /// Column names in first-seen order.
    columns: Vec<String>,
    /// Name → index into `columns`.
    index: HashMap<String, usize>,
    /// Per column, the last row (1-based) that carried it (duplicate keys).
    last_row: Vec<u64>,
    /// Objects read so far.
    rows_read: u64,
    /// Bytes read from the file.
    bytes_read: Arc<AtomicU64>,
    /// File size in bytes.
    size: u64,
}

impl JsonlSource {
    /// Opens a JSON Lines (or `.gz`-compressed) file.
    pub fn open(path: &Path) -> Result<JsonlSource, ReadError> {
        let file = path.display().to_string();
        let TextInput {
            reader,
            bytes_read,
            size,
        } = open_text(path, &file)?;
        Ok(JsonlSource {
            file,
            reader: BufReader::with_capacity(1 << 16, reader),
            line: String::new(),
            line_no: 0,
            columns: Vec::new(),
            index: HashMap::new(),
            last_row: Vec::new(),
            rows_read: 0,
            bytes_read,
            size,
        })
    }

    fn json_error(&self, message: String) -> ReadError {
        ReadError::Json {
            file: self.file.clone(),
            line: self.line_no,
            message,
        }
    }
}

impl RowSource for JsonlSource {
    fn origin(&self) -> &str {
        &self.file
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, visit: &mut dyn FnMut(usize, Cell<'_>)) -> Result<bool, ReadError> {
        loop {
            self.line.clear();
            let n = self.reader.read_line(&mut self.line).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    ReadError::Json {
                        file: self.file.clone(),
                        line: self.line_no + 1,
                        message: "not valid UTF-8".into(),
                    }
                } else {
                    ReadError::Io {
                        file: self.file.clone(),
                        source: e,
                    }
                }
            })?;
            if n == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            let text = self.line.trim();
            let text = if self.line_no == 1 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            if text.is_empty() {
                continue;
            }
            let kind = match text.as_bytes()[0] {
                b'{' => None,
                b'[' => Some("an array"),
                b'"' => Some("a string"),
                b't' | b'f' => Some("a boolean"),
                b'n' => Some("null"),
                _ => Some("a number"),
            };
            if let Some(kind) = kind {
                return Err(self.json_error(format!("expected a JSON object, found {kind}")));
            }
            // Keys in document order (serde_json's own map would sort them).
            let object: JsonLine = serde_json::from_str(text)
                .map_err(|e| self.json_error(format!("invalid JSON: {e}")))?;
            self.rows_read += 1;
            for (key, value) in &object.0 {
                let idx = match self.index.get(key) {
                    Some(i) => *i,
                    None => {
                        if self.columns.len() >= MAX_COLUMNS {
                            return Err(ReadError::TooManyColumns {
                                file: self.file.clone(),
                                limit: MAX_COLUMNS,
                            });
                        }
                        self.columns.push(key.clone());
                        self.index.insert(key.clone(), self.columns.len() - 1);
                        self.last_row.push(0);
                        self.columns.len() - 1
                    }
                };
                // Rows are numbered from 1, so 0 means "not seen in this row".
                if self.last_row[idx] == self.rows_read {
                    return Err(self.json_error(format!("key {key:?} appears twice")));
                }
                self.last_row[idx] = self.rows_read;
                let cell = match value {
                    JsonScalar::Null => Cell::Missing,
                    JsonScalar::Number(v) if v.is_finite() => Cell::Number(*v),
                    JsonScalar::Number(_) => Cell::Missing,
                    JsonScalar::Text(s) => Cell::Text(s),
                    JsonScalar::Nested(kind) => {
                        return Err(self.json_error(format!(
                            "key {key:?} holds {kind}, not a number, string, boolean or null (exclude the column)"
                        )))
                    }
                };
                visit(idx, cell);
            }
            return Ok(true);
        }
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            done: self.bytes_read.load(Ordering::Relaxed),
            total: Some(self.size),
            bytes: true,
        }
    }
}

/// One JSON Lines object: its members in document order.
struct JsonLine(Vec<(String, JsonScalar)>);

/// A member value of a JSON Lines object.
enum JsonScalar {
    /// `null`.
    Null,
    /// A number, or a boolean as 1/0.
    Number(f64),
    /// A string.
    Text(String),
    /// An array or object (its kind, for the error message).
    Nested(&'static str),
}

impl<'de> serde::Deserialize<'de> for JsonLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonLine;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<JsonLine, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, JsonScalar>()? {
                    out.push(entry);
                }
                Ok(JsonLine(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> serde::Deserialize<'de> for JsonScalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonScalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Null)
            }
            fn visit_none<E>(self) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Number(if b { 1.0 } else { 0.0 }))
            }
            fn visit_i64<E>(self, v: i64) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Number(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<JsonScalar, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(JsonScalar::Nested("an array"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<JsonScalar, A::Error> {
                while m
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(JsonScalar::Nested("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parquet, read row by row through the record API (no Arrow).
pub struct ParquetSource {
    /// The file, for messages.
    file: String,
    /// The row iterator over the projected columns.
    rows: parquet::record::reader::RowIter<'static>,
    /// Projected column names, in file order.
    columns: Vec<String>,
    /// Nested columns left out.
    skipped: Vec<String>,
    /// Columns left out because the caller asked to skip them.
    projected_out: Vec<String>,
    /// Rows read so far.
    rows_read: u64,
    /// Rows in the file.
    total_rows: u64,
}

impl ParquetSource {
    /// Opens a Parquet file, leaving out the top-level columns named in
    /// `skip` and every nested (group, list, map) column.
    pub fn open(path: &Path, skip: &[String]) -> Result<ParquetSource, ReadError> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::schema::types::Type;

        let file = path.display().to_string();
        let perr = |e: parquet::errors::ParquetError| ReadError::Parquet {
            file: file.clone(),
            row: None,
            message: e.to_string(),
        };
        let f = File::open(path).map_err(|source| ReadError::Io {
            file: file.clone(),
            source,
        })?;
        let reader = SerializedFileReader::new(f).map_err(perr)?;
        let metadata = reader.metadata().file_metadata();
        let total_rows = u64::try_from(metadata.num_rows()).unwrap_or(0);
        let root = metadata.schema();
        let mut kept = Vec::new();
        let mut columns = Vec::new();
        let mut skipped = Vec::new();
        let mut projected_out = Vec::new();
        for field in root.get_fields() {
            let name = field.name().to_string();
            if skip.contains(&name) {
                projected_out.push(name);
                continue;
            }
            if field.is_primitive() {
                columns.push(name);
                kept.push(Arc::clone(field));
            } else {
                skipped.push(name);
            }
        }
        if columns.len() > MAX_COLUMNS {
            return Err(ReadError::TooManyColumns {
                file,
                limit: MAX_COLUMNS,
            });
        }
        check_duplicates(&file, &columns)?;
        let projection = Type::group_type_builder(root.name())
            .with_fields(kept)
            .build()
            .map_err(perr)?;
        let boxed: Box<dyn FileReader> = Box::new(reader);
        let rows = parquet::record::reader::RowIter::from_file_into(boxed)
            .project(Some(projection))
            .map_err(perr)?;
        Ok(ParquetSource {
            file,
            rows,
            columns,
            skipped,
            projected_out,
            rows_read: 0,
            total_rows,
        })
    }
}

impl RowSource for ParquetSource {
    fn origin(&self) -> &str {
        &self.file
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, visit: &mut dyn FnMut(usize, Cell<'_>)) -> Result<bool, ReadError> {
        use parquet::record::Field;
        let row = match self.rows.next() {
            None => return Ok(false),
            Some(Ok(row)) => row,
            Some(Err(e)) => {
                return Err(ReadError::Parquet {
                    file: self.file.clone(),
                    row: Some(self.rows_read + 1),
                    message: e.to_string(),
                })
            }
        };
        self.rows_read += 1;
        for (i, (_, field)) in row.get_column_iter().enumerate() {
            let text: String;
            let cell = match field {
                Field::Null => Cell::Missing,
                Field::Bool(b) => Cell::Number(if *b { 1.0 } else { 0.0 }),
                Field::Byte(v) => Cell::Number(f64::from(*v)),
                Field::Short(v) => Cell::Number(f64::from(*v)),
                Field::Int(v) => Cell::Number(f64::from(*v)),
                Field::Long(v) => Cell::Number(*v as f64),
                Field::UByte(v) => Cell::Number(f64::from(*v)),
                Field::UShort(v) => Cell::Number(f64::from(*v)),
                Field::UInt(v) => Cell::Number(f64::from(*v)),
                Field::ULong(v) => Cell::Number(*v as f64),
                Field::Float16(v) => Cell::Number(f64::from(*v)),
                Field::Float(v) => Cell::Number(f64::from(*v)),
                Field::Double(v) => Cell::Number(*v),
                Field::Decimal(_) => {
                    text = field.to_string();
                    match text.parse::<f64>() {
                        Ok(v) => Cell::Number(v),
                        Err(_) => Cell::Text(&text),
                    }
                }
                Field::Str(s) => Cell::Text(s),
                Field::Bytes(b) => match std::str::from_utf8(b.data()) {
                    Ok(s) => Cell::Text(s),
                    Err(_) => Cell::Missing,
                },
                // Formatted here rather than with `Field`'s Display, which
                // panics on dates outside chrono's range.
                Field::Date(days) => {
                    text = format_date(i64::from(*days));
                    Cell::Text(&text)
                }
                Field::TimestampMillis(ms) => {
                    text = format_timestamp(*ms, 1_000);
                    Cell::Text(&text)
                }
                Field::TimestampMicros(us) => {
                    text = format_timestamp(*us, 1_000_000);
                    Cell::Text(&text)
                }
                Field::TimeMillis(ms) => {
                    text = format_time_of_day(i64::from(*ms), 1_000);
                    Cell::Text(&text)
                }
                Field::TimeMicros(us) => {
                    text = format_time_of_day(*us, 1_000_000);
                    Cell::Text(&text)
                }
                // Projection keeps only primitive columns.
                Field::Group(_) | Field::ListInternal(_) | Field::MapInternal(_) => Cell::Missing,
            };
            let cell = match cell {
                Cell::Number(v) if !v.is_finite() => Cell::Missing,
                c => c,
            };
            visit(i, cell);
        }
        Ok(true)
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            done: self.rows_read,
            total: Some(self.total_rows),
            bytes: false,
        }
    }

    fn skipped_columns(&self) -> &[String] {
        &self.skipped
    }

    fn projected_out(&self) -> &[String] {
        &self.projected_out
    }
}

/// Civil date (proleptic Gregorian) of a day count since 1970-01-01
/// (H. Hinnant's `civil_from_days`), valid for every `i64` day count we can get.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` of a day count since the Unix epoch.
pub(crate) fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 (UTC) of a timestamp in `1/per_second` units since the Unix epoch.
pub(crate) fn format_timestamp(value: i64, per_second: i64) -> String {
    let secs = value.div_euclid(per_second);
    let frac = value.rem_euclid(per_second);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let width = if per_second == 1_000 { 3 } else { 6 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:0width$}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// `HH:MM:SS.fff` of a time of day in `1/per_second` units since midnight.
pub(crate) fn format_time_of_day(value: i64, per_second: i64) -> String {
    let secs = value.div_euclid(per_second);
    let frac = value.rem_euclid(per_second);
    let width = if per_second == 1_000 { 3 } else { 6 };
    format!(
        "{:02}:{:02}:{:02}.{frac:0width$}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Rows held in memory (the live capture of the first N rows), replayed as a source.
pub(crate) struct MemorySource<'a> {
    /// Origin for messages.
    pub(crate) origin: &'a str,
    /// Column names.
    pub(crate) columns: &'a [String],
    /// Rows as (column index, value) pairs.
    pub(crate) rows: &'a [Vec<(usize, FeatureValue)>],
    /// Next row to replay.
    pub(crate) next: usize,
}

impl RowSource for MemorySource<'_> {
    fn origin(&self) -> &str {
        self.origin
    }

    fn columns(&self) -> &[String] {
        self.columns
    }

    fn next_row(&mut self, visit: &mut dyn FnMut(usize, Cell<'_>)) -> Result<bool, ReadError> {
        let Some(row) = self.rows.get(self.next) else {
            return Ok(false);
        };
        self.next += 1;
        for (i, v) in row {
            let cell = match v {
                FeatureValue::Missing => Cell::Missing,
                FeatureValue::Number(x) if x.is_finite() => Cell::Number(*x),
                FeatureValue::Number(_) => Cell::Missing,
                FeatureValue::Text(s) => Cell::Text(s),
            };
            visit(*i, cell);
        }
        Ok(true)
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            done: self.next as u64,
            total: Some(self.rows.len() as u64),
            bytes: false,
        }
    }
}
