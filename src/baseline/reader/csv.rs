//! CSV (and tab-separated) files with a header line.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::text::{open_text, TextInput};
use super::{check_duplicates, Cell, ReadError, RowSource, SourcePosition, MAX_COLUMNS};

/// pandas' default missing-value tokens for CSV.
const NA_TOKENS: [&str; 19] = [
    "", "NA", "N/A", "n/a", "NULL", "null", "None", "NaN", "nan", "-NaN", "-nan", "#N/A", "#NA",
    "<NA>", "#N/A N/A", "1.#IND", "-1.#IND", "1.#QNAN", "-1.#QNAN",
];

#[inline]
pub(super) fn is_na_token(s: &str) -> bool {
    match s.as_bytes() {
        [] => true,
        // Most cells are numbers: of the tokens only `1.#IND` and `1.#QNAN` start with a
        // digit, so a number is told apart by its first three bytes.
        [b'0'..=b'9', rest @ ..] => rest.starts_with(b".#") && NA_TOKENS.contains(&s),
        _ => s.len() <= 8 && NA_TOKENS.contains(&s),
    }
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
