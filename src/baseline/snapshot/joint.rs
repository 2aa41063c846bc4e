//! The rows of a snapshot's joint sample, in one row-major allocation.
//!
//! A joint sample of 2 000 rows × 101 columns held as `Vec<Vec<Option<f64>>>` took 16 bytes
//! a cell plus one heap allocation per row (3.2–4 MB per model once read, its rows grown by
//! doubling while parsing); [`JointCells`] takes 8 bytes a cell (1.6 MB) in one allocation,
//! read from the file cell by cell without an intermediate row (docs/performance.md,
//! "Memory v2").

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Rows of a joint sample: one cell per column per row, row-major, NaN for a missing cell
/// (`null` in the file; JSON has no NaN, and validation refuses other non-finite cells).
#[derive(Debug, Clone, Default)]
pub struct JointCells {
    /// Cells per row (the first row's length).
    width: usize,
    /// Rows.
    len: usize,
    cells: Vec<f64>,
    /// The first row whose length differs from the first row's, with its length: the
    /// snapshot is refused by validation (its cells are padded or cut to `width` here).
    ragged: Option<(usize, usize)>,
}

/// One row of a [`JointCells`].
#[derive(Debug, Clone, Copy)]
pub struct JointRow<'a>(&'a [f64]);

impl<'a> JointRow<'a> {
    /// Cell `i`: `None` when missing or past the row's end.
    pub fn get(&self, i: usize) -> Option<f64> {
        self.0.get(i).copied().filter(|v| !v.is_nan())
    }

    /// Cells in the row.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a row of no cells.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The cells in column order.
    pub fn iter(&self) -> impl Iterator<Item = Option<f64>> + 'a {
        self.0.iter().map(|v| (!v.is_nan()).then_some(*v))
    }

    /// The cells as a vector.
    pub fn to_vec(&self) -> Vec<Option<f64>> {
        self.iter().collect()
    }
}

impl JointCells {
    /// Rows given as vectors of cells (a `None` or NaN cell is missing).
    pub fn from_rows(rows: Vec<Vec<Option<f64>>>) -> Self {
        let mut out = JointCells::default();
        let width = rows.first().map_or(0, Vec::len);
        out.cells.reserve_exact(width.saturating_mul(rows.len()));
        for r in rows {
            out.push_row(r.into_iter());
        }
        out
    }

    /// Appends one row (the first row sets the width).
    fn push_row(&mut self, cells: impl Iterator<Item = Option<f64>>) {
        let start = self.cells.len();
        self.cells
            .extend(cells.map(|v| v.filter(|v| !v.is_nan()).unwrap_or(f64::NAN)));
        self.end_row(start);
    }

    /// Closes the row whose cells start at `start`: sets the width from the first row,
    /// records (and evens out) a row of another length.
    fn end_row(&mut self, start: usize) {
        let n = self.cells.len() - start;
        if self.len == 0 {
            self.width = n;
        } else if n != self.width {
            if self.ragged.is_none() {
                self.ragged = Some((self.len, n));
            }
            self.cells.resize(start + self.width, f64::NAN);
        }
        self.len += 1;
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Cells per row (0 without rows).
    pub fn width(&self) -> usize {
        self.width
    }

    /// The first row whose length differs from the first row's: `(row, its length)`.
    pub fn ragged(&self) -> Option<(usize, usize)> {
        self.ragged
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> Option<JointRow<'_>> {
        if i >= self.len {
            return None;
        }
        let at = i * self.width;
        self.cells.get(at..at + self.width).map(JointRow)
    }

    /// The rows in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = JointRow<'_>> + Clone {
        (0..self.len).map(move |i| {
            let at = i * self.width;
            JointRow(self.cells.get(at..at + self.width).unwrap_or(&[]))
        })
    }

    /// The rows as vectors of cells.
    pub fn to_rows(&self) -> Vec<Vec<Option<f64>>> {
        self.iter().map(|r| r.to_vec()).collect()
    }

    /// Sets cell `j` of row `i` (`None`: missing); `false` when out of range.
    pub fn set(&mut self, i: usize, j: usize, v: Option<f64>) -> bool {
        if i >= self.len || j >= self.width {
            return false;
        }
        self.cells[i * self.width + j] = v.filter(|v| !v.is_nan()).unwrap_or(f64::NAN);
        true
    }

    /// Heap bytes held (capacity).
    pub fn heap_bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<f64>()
    }
}

impl From<Vec<Vec<Option<f64>>>> for JointCells {
    fn from(rows: Vec<Vec<Option<f64>>>) -> Self {
        JointCells::from_rows(rows)
    }
}

impl FromIterator<Vec<Option<f64>>> for JointCells {
    fn from_iter<I: IntoIterator<Item = Vec<Option<f64>>>>(rows: I) -> Self {
        let mut out = JointCells::default();
        for r in rows {
            out.push_row(r.into_iter());
        }
        out.cells.shrink_to_fit();
        out
    }
}

impl<'a> IntoIterator for &'a JointCells {
    type Item = JointRow<'a>;
    type IntoIter = Box<dyn Iterator<Item = JointRow<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl PartialEq for JointCells {
    /// Equal rows, a missing cell equal to a missing cell.
    fn eq(&self, o: &Self) -> bool {
        self.width == o.width
            && self.len == o.len
            && self.ragged == o.ragged
            && self
                .cells
                .iter()
                .zip(&o.cells)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
    }
}

impl Serialize for JointCells {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len))?;
        for r in self.iter() {
            seq.serialize_element(&r)?;
        }
        seq.end()
    }
}

impl Serialize for JointRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Reads one row's cells onto the end of `cells`.
struct RowSeed<'a>(&'a mut Vec<f64>);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a row: a list of numbers or nulls")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Option<f64>>()? {
            self.0.push(v.filter(|v| !v.is_nan()).unwrap_or(f64::NAN));
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for JointCells {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JointCells;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of rows")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JointCells, A::Error> {
                let mut out = JointCells::default();
                loop {
                    let start = out.cells.len();
                    if seq.next_element_seed(RowSeed(&mut out.cells))?.is_none() {
                        break;
                    }
                    out.end_row(start);
                    if out.len == 1 {
                        // Room for the rows to come at the first row's width, without the
                        // doubling's slack (reserve_exact past that).
                        let rows = seq.size_hint().unwrap_or(0).min(1 << 16);
                        out.cells.reserve_exact(out.width.saturating_mul(rows));
                    }
                }
                out.cells.shrink_to_fit();
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_json_with_missing_cells() {
        let rows = vec![
            vec![Some(1.5), None, Some(-2.0)],
            vec![None, Some(0.0), Some(3.25)],
        ];
        let j = JointCells::from_rows(rows.clone());
        assert_eq!((j.len(), j.width()), (2, 3));
        assert_eq!(j.to_rows(), rows);
        assert_eq!(j.row(1).and_then(|r| r.get(2)), Some(3.25));
        assert_eq!(j.row(0).and_then(|r| r.get(1)), None);
        assert!(j.row(2).is_none());
        let text = serde_json::to_string(&j).expect("serialize");
        assert_eq!(text, "[[1.5,null,-2.0],[null,0.0,3.25]]");
        let back: JointCells = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, j);
        assert_eq!(back.heap_bytes(), 6 * 8, "one allocation, no slack");
    }

    #[test]
    fn a_row_of_another_length_is_recorded() {
        let j: JointCells = serde_json::from_str("[[1, 2], [3], [4, 5, 6]]").expect("parse");
        assert_eq!(j.ragged(), Some((1, 1)));
        assert_eq!(j.len(), 3);
        let empty: JointCells = serde_json::from_str("[]").expect("parse");
        assert!(empty.is_empty());
        assert!(serde_json::from_str::<JointCells>("[[\"a\"]]").is_err());
    }
}
