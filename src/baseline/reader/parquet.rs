//! Parquet, read row by row through the `parquet` crate's record API.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::baseline::snapshot::bool_text;

use super::{check_duplicates, Cell, ReadError, RowSource, SourcePosition, MAX_COLUMNS};

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
                Field::Bool(b) => Cell::Text(bool_text(*b)),
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
