//! A CSV file read whole into memory and parsed on every CPU, straight into one buffer
//! per column: the fast path of `mlmon baseline build` and `mlmon drift` on plain CSV.
//!
//! The file is split into byte ranges at line ends, each range read (with `read` at its
//! offset), checked and counted on its own, then parsed on its own (a pool of one thread
//! per CPU takes the ranges in turn), and every cell lands in its column's `f64` buffer,
//! with the cells that are no finite number (missing, NaN or an infinity, text) listed
//! beside it; text cells are copied out, and a range's bytes are freed once parsed. Each cell is read exactly as the streaming
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

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::csv::is_na_token;
use super::number::{fast_f64, fast_field};
use super::MAX_COLUMNS;
use crate::baseline::snapshot::{parse_number, ParsedText};

/// Largest file read whole (its bytes stay in memory while the columns are used).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Bytes of input per range at least (smaller files are one range).
const MIN_RANGE_BYTES: usize = 1 << 18;
/// Ranges per CPU (several, so that a CPU slowed by other work does not hold the rest up).
const RANGES_PER_CPU: usize = 4;

/// How the cells of a column are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Not read (the consumer does not want the column).
    #[default]
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

/// A cell that is not a finite number, and where its text is in its range's text arena.
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

/// One column of a file: its cells, range after range.
#[derive(Debug, Default)]
pub struct CellColumn {
    /// How it was read.
    mode: Mode,
    /// One part per range of the file (empty for a skipped column).
    parts: Vec<ColumnPart>,
}

impl CellColumn {
    /// How the column was read.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Its cells in row order, their text in `texts` ([`Columns::texts`]).
    pub fn cells<'a>(&'a self, texts: &'a Texts) -> ColumnCells<'a> {
        ColumnCells {
            parts: &self.parts,
            texts: &texts.0,
            part: 0,
            row: 0,
            odd: 0,
        }
    }
}

/// The text cells of each range of a file, one after the other (what they point into).
#[derive(Debug, Default)]
pub struct Texts(Vec<String>);

/// A CSV file parsed into columns.
#[derive(Debug)]
pub struct Columns {
    /// Header names (trimmed), in order.
    pub names: Vec<String>,
    /// Data rows.
    pub rows: u64,
    /// The text cells of each range.
    texts: Texts,
    /// Rows of each range.
    range_rows: Vec<usize>,
    /// The columns, in header order.
    columns: Vec<CellColumn>,
}

impl Columns {
    /// How column `column` was read.
    pub fn mode(&self, column: usize) -> Mode {
        self.columns.get(column).map_or(Mode::Skip, |c| c.mode)
    }

    /// The text the cells point into.
    pub fn texts(&self) -> &Texts {
        &self.texts
    }

    /// The cells of `column` in row order, one per data row (none for a skipped column).
    pub fn cells(&self, column: usize) -> ColumnCells<'_> {
        match self.columns.get(column) {
            Some(c) => c.cells(&self.texts),
            None => ColumnCells {
                parts: &[],
                texts: &[],
                part: 0,
                row: 0,
                odd: 0,
            },
        }
    }

    /// Takes column `column` out (a skipped, empty column is left in its place), so that
    /// its memory goes when the caller is done with it.
    pub fn take(&mut self, column: usize) -> CellColumn {
        self.columns
            .get_mut(column)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The number in `column` at data row `row` (0-based): `None` when the cell holds no
    /// finite number, past the end, or for a skipped (or taken) column.
    pub fn number(&self, column: usize, row: u64) -> Option<f64> {
        let c = self.columns.get(column)?;
        let mut first = 0u64;
        for (part, &rows) in c.parts.iter().zip(&self.range_rows) {
            let rows = rows as u64;
            if row < first + rows {
                let v = *part.values.get(usize::try_from(row - first).ok()?)?;
                return (!v.is_nan()).then_some(v);
            }
            first += rows;
        }
        None
    }
}

/// The cells of a column in row order ([`Columns::cells`]).
pub struct ColumnCells<'a> {
    parts: &'a [ColumnPart],
    texts: &'a [String],
    part: usize,
    row: usize,
    odd: usize,
}

impl<'a> Iterator for ColumnCells<'a> {
    type Item = Value<'a>;

    #[inline]
    fn next(&mut self) -> Option<Value<'a>> {
        loop {
            let c = self.parts.get(self.part)?;
            if let Some(&v) = c.values.get(self.row) {
                self.row += 1;
                if !v.is_nan() {
                    return Some(Value::Number(v));
                }
                let odd = c.odd.get(self.odd).map_or(Odd::Missing, |(_, o)| *o);
                self.odd += 1;
                return Some(match odd {
                    Odd::Missing => Value::Missing,
                    Odd::NonFinite => Value::NonFinite,
                    Odd::Text(a, b) => Value::Text(
                        self.texts
                            .get(self.part)
                            .and_then(|t| t.get(a as usize..b as usize))
                            .unwrap_or(""),
                    ),
                });
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
/// of data rows (checked before any cell is parsed).
pub fn read_columns(
    path: &Path,
    mode_of: &dyn Fn(&str) -> Mode,
    fits: &dyn Fn(u64) -> bool,
) -> Option<Columns> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    read_columns_with(path, mode_of, fits, threads, MIN_RANGE_BYTES)
}

/// Runs `job(i)` for `i` in `0..n` on up to `threads` threads (this one included), each
/// taking the next index in turn; the results in index order.
fn run_parallel<T: Send>(n: usize, threads: usize, job: &(dyn Fn(usize) -> T + Sync)) -> Vec<T> {
    let slots: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = slots.get(i) else { break };
        let out = job(i);
        if let Ok(mut slot) = slot.lock() {
            *slot = Some(out);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.clamp(1, n.max(1)) {
            scope.spawn(work);
        }
        work();
    });
    slots
        .into_iter()
        .filter_map(|s| s.into_inner().ok().flatten())
        .collect()
}

/// Reads `len` bytes of `file` from `at` (fewer at the end of the file).
fn read_at(file: &mut File, at: u64, len: usize, into: &mut Vec<u8>) -> Option<()> {
    file.seek(SeekFrom::Start(at)).ok()?;
    let before = into.len();
    file.take(len as u64).read_to_end(into).ok()?;
    (into.len() >= before).then_some(())
}

/// The lines whose first byte lies in `from..to` of the file (`from` is a line start
/// when `first`), read from the file, checked (UTF-8, no quote), with their count.
fn read_block(path: &Path, from: u64, to: u64, first: bool, size: u64) -> Option<(String, u64)> {
    let mut file = File::open(path).ok()?;
    // One byte before the block tells whether a line starts at `from`.
    let at = if first { from } else { from.checked_sub(1)? };
    let mut buf = Vec::with_capacity(usize::try_from(to - at).ok()? + 4096);
    read_at(&mut file, at, usize::try_from(to - at).ok()?, &mut buf)?;
    let start = if first {
        0
    } else {
        match buf.iter().position(|&c| c == b'\n') {
            Some(p) => p + 1,
            // No line starts in this block.
            None => return Some((String::new(), 0)),
        }
    };
    if start >= buf.len() {
        return Some((String::new(), 0));
    }
    // The last line that starts in the block ends at the first line break at or after
    // the block's last byte.
    let last = buf.len().saturating_sub(1).max(start);
    let mut end = buf
        .get(last..)
        .and_then(|t| t.iter().position(|&c| c == b'\n'));
    let mut pos = at + buf.len() as u64;
    while end.is_none() && pos < size {
        let from_len = buf.len();
        read_at(&mut file, pos, 1 << 16, &mut buf)?;
        if buf.len() == from_len {
            break;
        }
        pos = at + buf.len() as u64;
        end = buf
            .get(from_len..)
            .and_then(|t| t.iter().position(|&c| c == b'\n'))
            .map(|p| p + from_len - last);
    }
    let stop = end.map_or(buf.len(), |p| last + p + 1);
    if start >= stop {
        return Some((String::new(), 0));
    }
    buf.truncate(stop);
    buf.drain(..start);
    if buf.contains(&b'"') {
        return None;
    }
    let newlines = buf.iter().filter(|&&c| c == b'\n').count() as u64;
    let rows = newlines + u64::from(buf.last() != Some(&b'\n'));
    Some((String::from_utf8(buf).ok()?, rows))
}

/// [`read_columns`] on `threads` threads, ranges of at least `min_range` bytes.
pub(crate) fn read_columns_with(
    path: &Path,
    mode_of: &dyn Fn(&str) -> Mode,
    fits: &dyn Fn(u64) -> bool,
    threads: usize,
    min_range: usize,
) -> Option<Columns> {
    let loaded = load_with(path, threads, min_range)?;
    // Every column's mode first: `fits` may count them.
    let modes: Vec<Mode> = loaded.names.iter().map(|n| mode_of(n)).collect();
    if !fits(loaded.rows) {
        return None;
    }
    loaded.parse_modes(modes)
}

/// A CSV file's lines in memory, checked and counted, not parsed yet ([`load`]).
#[derive(Debug)]
pub struct Loaded {
    /// Header names (trimmed), in order.
    names: Vec<String>,
    /// Data rows.
    rows: u64,
    /// The field delimiter.
    delimiter: u8,
    /// The lines of each range.
    texts: Vec<String>,
    /// Rows of each range.
    counts: Vec<u64>,
    /// Threads to parse on.
    threads: usize,
}

/// Reads a CSV file's lines into memory on every CPU, in ranges that end at line breaks,
/// checking that it suits this path (see the module documentation) and counting its
/// rows; `None` when it does not suit. The file's bytes are bounded by
/// [`MAX_FILE_BYTES`]; [`Loaded::parse`] makes the columns.
pub fn load(path: &Path) -> Option<Loaded> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    load_with(path, threads, MIN_RANGE_BYTES)
}

impl Loaded {
    /// Header names (trimmed), in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Data rows.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Parses the ranges on every CPU, each column as `mode_of(name)` says; `None` when
    /// a line does not suit this path.
    pub fn parse(self, mode_of: &dyn Fn(&str) -> Mode) -> Option<Columns> {
        let modes: Vec<Mode> = self.names.iter().map(|n| mode_of(n)).collect();
        self.parse_modes(modes)
    }

    /// [`Loaded::parse`] with each column's mode given, in header order.
    fn parse_modes(self, modes: Vec<Mode>) -> Option<Columns> {
        let Loaded {
            names,
            rows,
            delimiter,
            texts,
            counts,
            threads,
        } = self;
        if modes.len() != names.len() {
            return None;
        }
        let n = texts.len();
        // Each range's lines are freed once parsed (text cells are copied out).
        let texts: Vec<Mutex<String>> = texts.into_iter().map(Mutex::new).collect();
        let parts = run_parallel(n, threads, &|k| {
            let text = std::mem::take(&mut *texts.get(k)?.lock().ok()?);
            let expect = usize::try_from(*counts.get(k)?).ok()?;
            parse_range(&text, &modes, delimiter, expect)
        });
        if parts.len() != n {
            return None;
        }
        let mut columns: Vec<CellColumn> = modes
            .iter()
            .map(|&mode| CellColumn {
                mode,
                parts: Vec::with_capacity(n),
            })
            .collect();
        let mut range_rows = Vec::with_capacity(n);
        let mut arenas = Vec::with_capacity(n);
        for (part, rows) in parts.into_iter().zip(&counts) {
            let (part, arena) = part?;
            range_rows.push(usize::try_from(*rows).ok()?);
            arenas.push(arena);
            for (c, p) in columns.iter_mut().zip(part) {
                c.parts.push(p);
            }
        }
        Some(Columns {
            names,
            rows,
            texts: Texts(arenas),
            range_rows,
            columns,
        })
    }
}

/// [`load`] on `threads` threads, ranges of at least `min_range` bytes.
fn load_with(path: &Path, threads: usize, min_range: usize) -> Option<Loaded> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".gz") {
        return None;
    }
    let delimiter = if name.ends_with(".tsv") { b'\t' } else { b',' };
    let mut file = File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    if size == 0 || size > MAX_FILE_BYTES {
        return None;
    }
    // The header line.
    let mut head = Vec::new();
    let header_end = loop {
        let from = head.len();
        read_at(&mut file, from as u64, 1 << 16, &mut head)?;
        if let Some(p) = head.get(from..)?.iter().position(|&c| c == b'\n') {
            break from + p;
        }
        if head.len() == from || head.len() as u64 >= size {
            break head.len();
        }
    };
    let header_line = head.get(..header_end)?;
    let header_line = header_line.strip_suffix(b"\r").unwrap_or(header_line);
    if header_line.is_empty()
        || header_line.contains(&b'\r')
        || header_line.contains(&b'"')
        || header_line.starts_with(&[0xEF, 0xBB, 0xBF])
    {
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
    drop(head);
    // The body in blocks read (and checked, and their lines counted) on every CPU.
    let body = (header_end as u64 + 1).min(size);
    let len = size - body;
    let n = (threads.max(1) * RANGES_PER_CPU).clamp(
        1,
        usize::try_from(len / min_range.max(1) as u64)
            .unwrap_or(usize::MAX)
            .max(1),
    );
    let bound = |k: usize| body + len * k as u64 / n as u64;
    let blocks = run_parallel(n, threads, &|k| {
        read_block(path, bound(k), bound(k + 1), k == 0, size)
    });
    let mut texts = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    for b in blocks {
        let (text, rows) = b?;
        texts.push(text);
        counts.push(rows);
    }
    if texts.len() != n {
        return None;
    }
    let rows: u64 = counts.iter().sum();
    Some(Loaded {
        names,
        rows,
        delimiter,
        texts,
        counts,
        threads,
    })
}

/// Parses the lines of `text` (whole lines) into one part per column and the text of its
/// text cells, which the parts point into; `None` when a line does not have the header's
/// fields, is blank, or holds a carriage return before its end.
fn parse_range(
    text: &str,
    modes: &[Mode],
    delimiter: u8,
    expect_rows: usize,
) -> Option<(Vec<ColumnPart>, String)> {
    let mut arena = String::new();
    let mut keep = |s: &str| -> Option<Odd> {
        let a = u32::try_from(arena.len()).ok()?;
        arena.push_str(s);
        Some(Odd::Text(a, u32::try_from(arena.len()).ok()?))
    };
    let b = text.as_bytes();
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
    let mut i = 0usize;
    let mut row = 0u32;
    while i < b.len() {
        let line_start = i;
        for (j, (mode, col)) in modes.iter().zip(columns.iter_mut()).enumerate() {
            let start = i;
            // Most cells are plain decimals: read while the field is scanned.
            let number = match mode {
                Mode::Numbers => fast_field(b, i, delimiter),
                _ => None,
            };
            match number {
                Some((end, _)) => i = end,
                None => {
                    while let Some(&c) = b.get(i) {
                        if c == delimiter || c == b'\n' || c == b'\r' {
                            break;
                        }
                        i += 1;
                    }
                }
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
            if let Some((_, v)) = number {
                col.values.push(v);
                continue;
            }
            let s = text.get(start..end)?;
            let odd = if is_na_token(s) {
                Odd::Missing
            } else if *mode == Mode::Raw {
                keep(s)?
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
                    ParsedText::Text => keep(s)?,
                }
            };
            col.values.push(f64::NAN);
            col.odd.push((row, odd));
        }
        row = row.checked_add(1)?;
    }
    (row as usize == expect_rows).then_some((columns, arena))
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
            for (r, v) in c.cells(i).enumerate() {
                let want = match v {
                    Value::Number(x) => Some(x),
                    _ => None,
                };
                assert_eq!(c.number(i, r as u64), want, "column {i} row {r}");
            }
            assert_eq!(c.number(i, c.rows), None);
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
        // The caller's bound on rows is asked before parsing, after every column's mode.
        let p = write(d, "rows.csv", "a,b\n1,2\n2,3\n3,4");
        assert!(read_columns_with(&p, &|_| Mode::Numbers, &|r| r <= 2, 2, 1).is_none());
        let c = read_columns_with(&p, &|_| Mode::Numbers, &|r| r == 3, 2, 1).unwrap();
        assert_eq!(c.rows, 3);
        let asked = std::cell::Cell::new(0);
        let mode = |_: &str| {
            asked.set(asked.get() + 1);
            Mode::Numbers
        };
        let fits = |_: u64| {
            assert_eq!(asked.get(), 2, "every mode before the bound");
            true
        };
        assert!(read_columns_with(&p, &mode, &fits, 2, 1).is_some());
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
        assert_eq!(c.number(1, 0), None);
        assert_eq!(c.number(2, 1), Some(4.0));
        assert_eq!(
            c.cells(2).collect::<Vec<_>>(),
            [Value::Text("x"), Value::Number(4.0)]
        );
        assert_eq!(c.mode(1), Mode::Skip);
    }

    /// Blocks of any size (down to a byte) own each line exactly once.
    #[test]
    fn blocks_own_each_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let body = "h\n1\n22\n333\n4444\n\n55555\n6";
        let p = write(dir.path(), "b.csv", body);
        let size = body.len() as u64;
        for n in 1..=30u64 {
            let bound = |k: u64| 2 + (size - 2) * k / n;
            let mut all = String::new();
            let mut rows = 0;
            for k in 0..n {
                let (text, r) = read_block(&p, bound(k), bound(k + 1), k == 0, size).unwrap();
                all.push_str(&text);
                rows += r;
            }
            assert_eq!(all, &body[2..], "{n} blocks");
            assert_eq!(rows, 7, "{n} blocks");
        }
    }
}
