//! A CSV file read whole into memory and parsed on every CPU, straight into one buffer
//! per column: the fast path of `mlmon baseline build` and `mlmon drift` on plain CSV.
//!
//! The file is split into byte ranges at line ends, each range is parsed on its own
//! (a pool of one thread per CPU takes the ranges in turn), and every cell lands in its
//! column's `f64` buffer, with the cells that are no finite number (missing, NaN or an
//! infinity, text) listed beside it. Each cell is read exactly as the streaming
//! [`CsvSource`](super::CsvSource) and the build's reading thread read it (pandas'
//! missing-value tokens, the exact decimal fast path, then `str::parse`), so a consumer
//! gets the values it would have got row by row.
//!
//! Only files where a line is a record take this path: [`read_columns`] answers `None`
//! (and the caller streams the file as before, with the same results and the same
//! error messages naming the line) for a compressed file, a file larger than
//! [`MAX_FILE_BYTES`] or with more cells than the caller allows, a file holding a quote
//! character anywhere (a quoted field may hold a delimiter or a line break), a byte-order
//! mark, a carriage return that does not end a line, a blank line, a line with more or
//! fewer fields than the header, text that is not UTF-8, an empty or duplicate-named
//! header. Lines may end in `\n` or `\r\n`; the last one may lack its line break.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::csv::is_na_token;
use super::number::fast_f64;
use super::MAX_COLUMNS;
use crate::baseline::snapshot::{parse_number, ParsedText};

/// Largest file read whole (its bytes stay in memory while the columns are used).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Bytes of input per range at least (smaller files are one range).
const MIN_RANGE_BYTES: usize = 1 << 18;
/// Ranges per CPU (several, so that a CPU slowed by other work does not hold the rest up).
const RANGES_PER_CPU: usize = 4;

/// How the cells of a column are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not read (the consumer does not want the column).
    Skip,
    /// Numbers where the cell is one, as the build reads every cell.
    Numbers,
    /// Every cell kept as its text (missing-value tokens are still missing).
    Raw,
}

/// One cell of a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A finite number (read from its text).
    Number(f64),
    /// Empty or a missing-value token.
    Missing,
    /// Text holding NaN or an infinity.
    NonFinite,
    /// Other text (every non-missing cell of a [`Mode::Raw`] column).
    Text(&'a str),
}

/// A cell that is not a finite number, and where its text is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Odd {
    Missing,
    NonFinite,
    Text(u32, u32),
}

/// A column's cells of one range: the numbers, NaN where the cell is no finite number,
/// and those cells, by row within the range, in order.
#[derive(Debug, Default)]
struct ColumnPart {
    values: Vec<f64>,
    odd: Vec<(u32, Odd)>,
}

/// The rows of one range.
#[derive(Debug, Default)]
struct Part {
    rows: usize,
    columns: Vec<ColumnPart>,
}

/// A CSV file parsed into columns.
#[derive(Debug)]
pub struct Columns {
    /// Header names (trimmed), in order.
    pub names: Vec<String>,
    /// Data rows.
    pub rows: u64,
    /// The file's bytes (the text cells point into them).
    text: String,
    /// The ranges, in file order.
    parts: Vec<Part>,
    /// How each column was read.
    modes: Vec<Mode>,
}

impl Columns {
    /// How column `column` was read.
    pub fn mode(&self, column: usize) -> Mode {
        self.modes.get(column).copied().unwrap_or(Mode::Skip)
    }

    /// The cells of `column` in row order, one per data row (none for a skipped column).
    pub fn cells(&self, column: usize) -> ColumnCells<'_> {
        ColumnCells {
            columns: self,
            column: if self.mode(column) == Mode::Skip {
                usize::MAX
            } else {
                column
            },
            part: 0,
            row: 0,
            odd: 0,
        }
    }

    /// The cell of `column` in data row `row` (0-based); `Missing` past the end or for a
    /// skipped column.
    pub fn cell(&self, column: usize, row: u64) -> Value<'_> {
        let mut first = 0u64;
        for part in &self.parts {
            let rows = part.rows as u64;
            if row < first + rows {
                let r = (row - first) as usize;
                let Some(c) = part.columns.get(column) else {
                    return Value::Missing;
                };
                return match c.values.get(r) {
                    Some(v) if !v.is_nan() => Value::Number(*v),
                    Some(_) => {
                        let at = c.odd.partition_point(|(i, _)| (*i as usize) < r);
                        match c.odd.get(at) {
                            Some((_, odd)) => self.odd_value(*odd),
                            None => Value::Missing,
                        }
                    }
                    None => Value::Missing,
                };
            }
            first += rows;
        }
        Value::Missing
    }

    fn odd_value(&self, odd: Odd) -> Value<'_> {
        match odd {
            Odd::Missing => Value::Missing,
            Odd::NonFinite => Value::NonFinite,
            Odd::Text(a, b) => Value::Text(self.text.get(a as usize..b as usize).unwrap_or("")),
        }
    }
}

/// The cells of a column in row order ([`Columns::cells`]).
pub struct ColumnCells<'a> {
    columns: &'a Columns,
    column: usize,
    part: usize,
    row: usize,
    odd: usize,
}

impl<'a> Iterator for ColumnCells<'a> {
    type Item = Value<'a>;

    #[inline]
    fn next(&mut self) -> Option<Value<'a>> {
        loop {
            let part = self.columns.parts.get(self.part)?;
            let c = part.columns.get(self.column)?;
            if let Some(&v) = c.values.get(self.row) {
                self.row += 1;
                if !v.is_nan() {
                    return Some(Value::Number(v));
                }
                let odd = c.odd.get(self.odd).map_or(Odd::Missing, |(_, o)| *o);
                self.odd += 1;
                return Some(self.columns.odd_value(odd));
            }
            self.part += 1;
            self.row = 0;
            self.odd = 0;
        }
    }
}

/// Reads the CSV file at `path` into columns, each read as `mode_of(name)` says, on
/// every CPU; `None` when the file does not suit this path (see the module
/// documentation: the caller streams it instead) or when `fits(rows)` refuses its number
/// of data rows (checked before any column is parsed).
pub fn read_columns(
    path: &Path,
    mode_of: &dyn Fn(&str) -> Mode,
    fits: &dyn Fn(u64) -> bool,
) -> Option<Columns> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    read_columns_with(path, mode_of, fits, threads, MIN_RANGE_BYTES)
}

/// [`read_columns`] on `threads` threads, ranges of at least `min_range` bytes.
pub(crate) fn read_columns_with(
    path: &Path,
    mode_of: &dyn Fn(&str) -> Mode,
    fits: &dyn Fn(u64) -> bool,
    threads: usize,
    min_range: usize,
) -> Option<Columns> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".gz") {
        return None;
    }
    let delimiter = if name.ends_with(".tsv") { b'\t' } else { b',' };
    let size = std::fs::metadata(path).ok()?.len();
    if size == 0 || size > MAX_FILE_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    // Offsets into the text are u32 (MAX_FILE_BYTES is far below 4 GiB).
    if bytes.len() as u64 > MAX_FILE_BYTES || bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return None;
    }
    if bytes.contains(&b'"') {
        return None;
    }
    let text = String::from_utf8(bytes).ok()?;
    let b = text.as_bytes();
    let header_end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let header_line = b.get(..header_end)?;
    let header_line = header_line.strip_suffix(b"\r").unwrap_or(header_line);
    if header_line.is_empty() || header_line.contains(&b'\r') {
        return None;
    }
    let names: Vec<String> = std::str::from_utf8(header_line)
        .ok()?
        .split(char::from(delimiter))
        .map(|h| h.trim().to_string())
        .collect();
    if names.len() > MAX_COLUMNS {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    if !names.iter().all(|n| seen.insert(n.as_str())) {
        return None;
    }
    let modes: Vec<Mode> = names.iter().map(|n| mode_of(n)).collect();
    let body = (header_end + 1).min(b.len());
    let newlines = b.get(body..)?.iter().filter(|&&c| c == b'\n').count();
    let rows = newlines as u64 + u64::from(b.len() > body && b.last() != Some(&b'\n'));
    if !fits(rows) {
        return None;
    }
    let ranges = split_ranges(b, body, threads.max(1) * RANGES_PER_CPU, min_range);
    let body_len = b.len().saturating_sub(body).max(1);
    let results: Vec<Mutex<Option<Part>>> = ranges.iter().map(|_| Mutex::new(None)).collect();
    let failed = std::sync::atomic::AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(&(from, to)) = ranges.get(i) else {
            break;
        };
        if failed.load(Ordering::Relaxed) {
            break;
        }
        let expect = (rows as usize).saturating_mul(to - from) / body_len + 16;
        match parse_range(&text, from, to, &modes, delimiter, expect) {
            Some(part) => {
                if let Some(slot) = results.get(i) {
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some(part);
                    }
                }
            }
            None => failed.store(true, Ordering::Relaxed),
        }
    };
    let threads = threads.clamp(1, ranges.len().max(1));
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    if failed.load(Ordering::Relaxed) {
        return None;
    }
    let mut parts = Vec::with_capacity(results.len());
    for r in results {
        parts.push(r.into_inner().ok()??);
    }
    if parts.iter().map(|p| p.rows as u64).sum::<u64>() != rows {
        return None;
    }
    Some(Columns {
        names,
        rows,
        text,
        parts,
        modes,
    })
}

/// Splits `b[body..]` into at most `n` ranges of at least `min_len` bytes, each ending
/// just after a line break (or at the end).
fn split_ranges(b: &[u8], body: usize, n: usize, min_len: usize) -> Vec<(usize, usize)> {
    let len = b.len().saturating_sub(body);
    let n = n.clamp(1, (len / min_len.max(1)).max(1));
    let mut ranges = Vec::with_capacity(n);
    let mut from = body;
    for k in 1..=n {
        if from >= b.len() {
            break;
        }
        let mut to = if k == n {
            b.len()
        } else {
            (body + len * k / n).max(from)
        };
        if to < b.len() {
            // Just past the next line break at or after `to - 1`.
            to = match b.get(to.saturating_sub(1).max(from)..) {
                Some(rest) => rest
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| to.saturating_sub(1).max(from) + p + 1),
                None => b.len(),
            };
        }
        if to > from {
            ranges.push((from, to));
        }
        from = to;
    }
    ranges
}

/// Parses the lines in `text[from..to]` (whole lines) into one part; `None` when a line
/// does not have the header's fields, is blank, or holds a carriage return before its end.
fn parse_range(
    text: &str,
    from: usize,
    to: usize,
    modes: &[Mode],
    delimiter: u8,
    expect_rows: usize,
) -> Option<Part> {
    let b = text.as_bytes().get(..to)?;
    let mut columns: Vec<ColumnPart> = modes
        .iter()
        .map(|m| match m {
            Mode::Skip => ColumnPart::default(),
            _ => ColumnPart {
                values: Vec::with_capacity(expect_rows),
                odd: Vec::new(),
            },
        })
        .collect();
    let last = modes.len().checked_sub(1)?;
    let mut i = from;
    let mut row = 0u32;
    while i < to {
        let line_start = i;
        for (j, (mode, col)) in modes.iter().zip(columns.iter_mut()).enumerate() {
            let start = i;
            while let Some(&c) = b.get(i) {
                if c == delimiter || c == b'\n' || c == b'\r' {
                    break;
                }
                i += 1;
            }
            let end = i;
            // What ends the field: the delimiter (not after the last field) or the line.
            match b.get(i) {
                Some(&c) if c == delimiter && j < last => i += 1,
                Some(b'\r') if j == last && b.get(i + 1) == Some(&b'\n') => i += 2,
                Some(b'\n') if j == last => i += 1,
                None if j == last => {}
                _ => return None,
            }
            if end == line_start && j == last {
                // A blank line (one-column file): the CSV reader skips it; leave it to it.
                return None;
            }
            if *mode == Mode::Skip {
                continue;
            }
            let s = text.get(start..end)?;
            let odd = if is_na_token(s) {
                Odd::Missing
            } else if *mode == Mode::Raw {
                Odd::Text(start as u32, end as u32)
            } else if let Some(v) = fast_f64(s) {
                col.values.push(v);
                continue;
            } else {
                match parse_number(s) {
                    ParsedText::Number(v) => {
                        col.values.push(v);
                        continue;
                    }
                    ParsedText::NonFinite => Odd::NonFinite,
                    ParsedText::Text => Odd::Text(start as u32, end as u32),
                }
            };
            col.values.push(f64::NAN);
            col.odd.push((row, odd));
        }
        row = row.checked_add(1)?;
    }
    Some(Part {
        rows: row as usize,
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::reader::{Cell, CsvSource, RowSource};

    /// Every cell of every column as the streaming CSV reader and the build's reading
    /// thread see it (`None` when the streaming reader refuses the file).
    fn streamed(path: &Path) -> Option<Vec<Vec<String>>> {
        let mut src = CsvSource::open(path).ok()?;
        let n = src.columns().len();
        let mut cols = vec![Vec::new(); n];
        loop {
            let mut row = vec![String::new(); n];
            let more = src
                .next_row(&mut |i, c| {
                    row[i] = match c {
                        Cell::Missing => "missing".into(),
                        Cell::Number(v) => format!("number {}", v.to_bits()),
                        Cell::Text(s) => {
                            match fast_f64(s).map_or_else(|| parse_number(s), ParsedText::Number) {
                                ParsedText::Number(v) => format!("number {}", v.to_bits()),
                                ParsedText::NonFinite => "nonfinite".into(),
                                ParsedText::Text => format!("text {s}"),
                            }
                        }
                    }
                })
                .ok()?;
            if !more {
                break;
            }
            for (c, v) in cols.iter_mut().zip(row) {
                c.push(v);
            }
        }
        Some(cols)
    }

    fn show(v: Value<'_>) -> String {
        match v {
            Value::Missing => "missing".into(),
            Value::Number(v) => format!("number {}", v.to_bits()),
            Value::NonFinite => "nonfinite".into(),
            Value::Text(s) => format!("text {s}"),
        }
    }

    fn columnar(path: &Path, threads: usize, min_range: usize) -> Option<Vec<Vec<String>>> {
        let c = read_columns_with(path, &|_| Mode::Numbers, &|_| true, threads, min_range)?;
        let by_iter: Vec<Vec<String>> = (0..c.names.len())
            .map(|i| c.cells(i).map(show).collect())
            .collect();
        // Random access agrees with the iteration.
        for (i, col) in by_iter.iter().enumerate() {
            assert_eq!(col.len() as u64, c.rows);
            for (r, v) in col.iter().enumerate() {
                assert_eq!(&show(c.cell(i, r as u64)), v, "column {i} row {r}");
            }
        }
        Some(by_iter)
    }

    fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    /// Split into many tiny ranges or read as one, a file gives the cells the streaming
    /// reader gives: numbers bit for bit, missing tokens, NaN and infinities, text, CRLF
    /// line ends, a last line without its line break, a file smaller than one range.
    #[test]
    fn ranges_on_several_threads_give_the_streaming_cells() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = String::from("a, b ,c,d\r\n");
        let mut rng = crate::baseline::sampling::SplitMix64::for_stream(1, "columnar");
        for r in 0..3000u64 {
            let x = rng.next_u64();
            let a = match x % 9 {
                0 => String::new(),
                1 => "NA".into(),
                2 => "nan".into(),
                3 => "-inf".into(),
                4 => "1.#IND".into(),
                5 => " 7.5 ".into(),
                6 => "12345678901234567890".into(),
                7 => "word".into(),
                _ => format!("{}", (x >> 12) as f64 / 1e5 - 1e3),
            };
            let crlf = if r % 3 == 0 { "\r\n" } else { "\n" };
            body.push_str(&format!("{a},{},cat_{},{}{crlf}", r, x % 5, (x >> 7) % 100));
        }
        body.push_str("1e5,2,x,3");
        let p = write(dir.path(), "t.csv", &body);
        let want = streamed(&p).unwrap();
        assert_eq!(want[0].len(), 3001);
        for (threads, min_range) in [(1, 1 << 20), (2, 64), (3, 1), (8, 7)] {
            assert_eq!(
                columnar(&p, threads, min_range).as_ref(),
                Some(&want),
                "{threads} threads, ranges of {min_range} bytes"
            );
        }
        let tsv = write(dir.path(), "t.tsv", "a\tb\n1\tx y\n-2.5\t\n");
        assert_eq!(columnar(&tsv, 2, 1), streamed(&tsv));
        let tiny = write(dir.path(), "tiny.csv", "a,b\n1,2\n");
        assert_eq!(columnar(&tiny, 4, 1 << 18), streamed(&tiny));
        // A header and no rows: no rows, every column empty.
        let header = write(dir.path(), "header.csv", "a,b\n");
        assert_eq!(columnar(&header, 2, 1), Some(vec![vec![], vec![]]));
    }

    /// Files this path does not read exactly as the streaming reader are left to it.
    #[test]
    fn unusual_files_are_left_to_the_streaming_reader() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, body) in [
            ("empty.csv", ""),
            ("quoted.csv", "a,b\n1,\"x\ny\"\n2,3\n"),
            ("quoted_header.csv", "\"a\",b\n1,2\n"),
            ("ragged.csv", "a,b\n1,2\n3\n"),
            ("long.csv", "a,b\n1,2,3\n"),
            ("blank.csv", "a,b\n1,2\n\n3,4\n"),
            ("blank_one.csv", "a\n1\n\n2\n"),
            ("blank_crlf.csv", "a,b\r\n1,2\r\n\r\n3,4\r\n"),
            ("cr.csv", "a,b\r1,2\r3,4\r"),
            ("cr_inside.csv", "a,b\n1,2\r3\n"),
            ("bom.csv", "\u{feff}a,b\n1,2\n"),
            ("duplicate.csv", "a,a\n1,2\n"),
            ("blank_header.csv", "\na,b\n1,2\n"),
        ] {
            let p = write(d, name, body);
            assert!(
                read_columns_with(&p, &|_| Mode::Numbers, &|_| true, 2, 1).is_none(),
                "{name}"
            );
        }
        let p = d.join("latin1.csv");
        std::fs::write(&p, b"a,b\n1,caf\xe9\n").unwrap();
        assert!(read_columns_with(&p, &|_| Mode::Numbers, &|_| true, 2, 1).is_none());
        let gz = write(d, "x.csv.gz", "a\n1\n");
        assert!(read_columns(&gz, &|_| Mode::Numbers, &|_| true).is_none());
        // The caller's bound on rows is asked before parsing.
        let p = write(d, "rows.csv", "a\n1\n2\n3");
        assert!(read_columns_with(&p, &|_| Mode::Numbers, &|r| r <= 2, 2, 1).is_none());
        let c = read_columns_with(&p, &|_| Mode::Numbers, &|r| r == 3, 2, 1).unwrap();
        assert_eq!(c.rows, 3);
    }

    /// Skipped columns are not parsed; raw columns keep the text of number-like cells.
    #[test]
    fn skipped_and_raw_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "m.csv", "a,b,c\n1,2,x\n3.0,,4\n");
        let mode = |n: &str| match n {
            "a" => Mode::Raw,
            "b" => Mode::Skip,
            _ => Mode::Numbers,
        };
        let c = read_columns_with(&p, &mode, &|_| true, 2, 1).unwrap();
        assert_eq!(
            c.cells(0).collect::<Vec<_>>(),
            [Value::Text("1"), Value::Text("3.0")]
        );
        assert_eq!(c.cells(1).count(), 0);
        assert_eq!(c.cell(1, 0), Value::Missing);
        assert_eq!(
            c.cells(2).collect::<Vec<_>>(),
            [Value::Text("x"), Value::Number(4.0)]
        );
        assert_eq!(c.mode(1), Mode::Skip);
    }

    #[test]
    fn ranges_end_at_line_breaks_and_cover_the_body() {
        let b = b"h\n1\n22\n333\n4444\n55555";
        for n in 1..12 {
            for min in [1, 3, 100] {
                let r = split_ranges(b, 2, n, min);
                assert_eq!(r.first().map(|x| x.0), Some(2));
                assert_eq!(r.last().map(|x| x.1), Some(b.len()));
                for w in r.windows(2) {
                    assert_eq!(w[0].1, w[1].0);
                    assert_eq!(b[w[0].1 - 1], b'\n');
                }
            }
        }
        assert!(split_ranges(b"h\n", 2, 4, 1).is_empty());
    }
}
