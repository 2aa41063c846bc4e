//! Shared building blocks: column naming, bounded row building, and the "records"
//! interpretation of a JSON value that every protocol reuses for its row-shaped parts.

use std::borrow::Cow;

use crate::record::{FeatureValue, Row};

use super::json::Json;
use super::{PayloadError, Side, MAX_COLUMNS, MAX_ROWS, MAX_VALUES};

/// Names of positional columns: an explicit list, then `f{index}` for columns past its end.
pub(crate) struct ColumnNames<'n> {
    base: Vec<&'n str>,
    /// Generated names for indices `base.len()..`, filled on demand.
    generated: Vec<String>,
}

impl<'n> ColumnNames<'n> {
    /// Names taken from the body itself (Seldon `names`, a DataFrame's `columns`).
    pub(crate) fn explicit(base: Vec<&'n str>) -> Self {
        ColumnNames {
            base,
            generated: Vec::new(),
        }
    }

    /// `payload.feature_names` when set, else the baseline's feature order.
    pub(crate) fn fallback(configured: &'n [String], baseline: &'n [String]) -> Self {
        let source = if configured.is_empty() {
            baseline
        } else {
            configured
        };
        Self::explicit(source.iter().map(String::as_str).collect())
    }

    /// The name of column `index`. Callers bound `index` by [`MAX_COLUMNS`].
    pub(crate) fn name(&mut self, index: usize) -> String {
        if let Some(n) = self.base.get(index) {
            return (*n).to_owned();
        }
        let offset = index - self.base.len();
        while self.generated.len() <= offset {
            let i = self.base.len() + self.generated.len();
            self.generated.push(format!("f{i}"));
        }
        self.generated[offset].clone()
    }

    /// The name of column `index` when the list has one (no generated fallback).
    pub(crate) fn listed(&self, index: usize) -> Option<&'n str> {
        self.base.get(index).copied()
    }
}

/// Collects rows while enforcing [`MAX_ROWS`], [`MAX_COLUMNS`] and [`MAX_VALUES`].
pub(crate) struct Table {
    pub(crate) side: Side,
    rows: Vec<Row>,
    values: usize,
}

impl Table {
    /// A table expecting about `rows` rows; fails fast when that is over the limit.
    pub(crate) fn with_expected_rows(side: Side, rows: usize) -> Result<Self, PayloadError> {
        check_rows(side, rows)?;
        Ok(Table {
            side,
            rows: Vec::with_capacity(rows),
            values: 0,
        })
    }

    /// Fails when a row of `width` columns is over the limits, before it is built.
    pub(crate) fn check_width(&self, width: usize) -> Result<(), PayloadError> {
        check_columns(self.side, width)?;
        check_values(self.side, self.values.saturating_add(width))
    }

    /// Appends a row.
    pub(crate) fn push(&mut self, row: Row) -> Result<(), PayloadError> {
        check_rows(self.side, self.rows.len() + 1)?;
        self.check_width(row.values.len())?;
        self.values += row.values.len();
        self.rows.push(row);
        Ok(())
    }

    /// The rows collected.
    pub(crate) fn into_rows(self) -> Vec<Row> {
        self.rows
    }
}

pub(crate) fn check_rows(side: Side, rows: usize) -> Result<(), PayloadError> {
    if rows > MAX_ROWS {
        return Err(PayloadError::TooManyRows {
            side,
            rows,
            limit: MAX_ROWS,
        });
    }
    Ok(())
}

pub(crate) fn check_columns(side: Side, columns: usize) -> Result<(), PayloadError> {
    if columns > MAX_COLUMNS {
        return Err(PayloadError::TooManyColumns {
            side,
            columns,
            limit: MAX_COLUMNS,
        });
    }
    Ok(())
}

pub(crate) fn check_values(side: Side, values: usize) -> Result<(), PayloadError> {
    if values > MAX_VALUES {
        return Err(PayloadError::TooManyValues {
            side,
            values,
            limit: MAX_VALUES,
        });
    }
    Ok(())
}

/// A JSON scalar as a feature value; `None` for arrays and objects.
pub(crate) fn scalar(v: &Json<'_>) -> Option<FeatureValue> {
    Some(match v {
        Json::Null => FeatureValue::Missing,
        Json::Bool(b) => FeatureValue::Text(b.to_string()),
        Json::Num(n) if n.is_finite() => FeatureValue::Number(*n),
        Json::Num(_) => FeatureValue::Missing,
        Json::Str(s) => FeatureValue::Text(s.to_string()),
        Json::Arr(_) | Json::Obj(_) => return None,
    })
}

/// A cell value: a scalar, or a scalar wrapped in single-element arrays (`[850.0]`,
/// `[["FEB"]]`), as Vertex AI / MLflow `instances` and `[N, 1]` tensors carry them.
pub(crate) fn cell(mut v: &Json<'_>) -> Option<FeatureValue> {
    loop {
        match v {
            Json::Arr(items) if items.len() == 1 => v = &items[0],
            _ => return scalar(v),
        }
    }
}

/// Strips leading single-element array wrappers around an array: `[[1, 2]]` → `[1, 2]`
/// (TF Serving's "list of tensors each of [1, 2] shape").
pub(crate) fn squeeze<'j, 'a>(mut items: &'j [Json<'a>]) -> &'j [Json<'a>] {
    while let [Json::Arr(inner)] = items {
        items = inner;
    }
    items
}

/// One row from an object: members with a scalar (or single-element) value become
/// features in wire order; nested members (tensors, `{"b64": ...}` blobs) are skipped.
pub(crate) fn object_row(
    table: &Table,
    members: &[(Cow<'_, str>, Json<'_>)],
) -> Result<Row, PayloadError> {
    table.check_width(members.len())?;
    let mut values = Vec::with_capacity(members.len());
    for (k, v) in members {
        if let Some(fv) = cell(v) {
            values.push((k.to_string(), fv));
        }
    }
    Ok(Row { values })
}

/// One row from cells named by position.
pub(crate) fn positional_row<'j, 'a: 'j, I>(
    table: &Table,
    items: I,
    names: &mut ColumnNames<'_>,
) -> Result<Row, PayloadError>
where
    I: IntoIterator<Item = &'j Json<'a>>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    table.check_width(items.len())?;
    let mut values = Vec::with_capacity(items.len());
    for (i, item) in items.enumerate() {
        let fv = cell(item).ok_or_else(|| PayloadError::NotTabular {
            side: table.side,
            detail: format!(
                "column {i} of a row holds a nested {} (a tensor of rank > 2?)",
                item.kind()
            ),
        })?;
        values.push((names.name(i), fv));
    }
    Ok(Row { values })
}

/// One row with a single feature named like column 0.
pub(crate) fn single_value_row(v: FeatureValue, names: &mut ColumnNames<'_>) -> Row {
    Row {
        values: vec![(names.name(0), v)],
    }
}

/// How a flat array of scalars is read by [`rows_from_value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarList {
    /// Each scalar is one row of one feature (TF Serving `{"instances": [1.0, 2.0]}`).
    RowEach,
    /// The whole list is one row of positional features (`{"features": [5.1, 3.5]}`).
    OneRow,
}

/// The "records" reading of a value: an object is one row; an array holds rows (objects,
/// positional arrays, or scalars per `scalars`); a scalar is one row of one feature.
pub(crate) fn rows_from_value(
    side: Side,
    v: &Json<'_>,
    names: &mut ColumnNames<'_>,
    scalars: ScalarList,
) -> Result<Vec<Row>, PayloadError> {
    match v {
        Json::Obj(members) => {
            let mut table = Table::with_expected_rows(side, 1)?;
            let row = object_row(&table, members)?;
            table.push(row)?;
            Ok(table.into_rows())
        }
        Json::Arr(items) => {
            if scalars == ScalarList::OneRow
                && !items.is_empty()
                && items.iter().all(Json::is_scalar)
            {
                let mut table = Table::with_expected_rows(side, 1)?;
                let row = positional_row(&table, items, names)?;
                table.push(row)?;
                return Ok(table.into_rows());
            }
            let mut table = Table::with_expected_rows(side, items.len())?;
            for item in items {
                let row = match item {
                    Json::Obj(members) => object_row(&table, members)?,
                    Json::Arr(cells) => positional_row(&table, squeeze(cells), names)?,
                    other => match scalar(other) {
                        Some(fv) => single_value_row(fv, names),
                        None => unreachable_scalar(side)?,
                    },
                };
                table.push(row)?;
            }
            Ok(table.into_rows())
        }
        other => match scalar(other) {
            Some(fv) => Ok(vec![single_value_row(fv, names)]),
            None => unreachable_scalar(side),
        },
    }
}

/// `scalar` only returns `None` for arrays and objects, which callers matched before; this
/// keeps that invariant panic-free.
fn unreachable_scalar<T>(side: Side) -> Result<T, PayloadError> {
    Err(PayloadError::NotTabular {
        side,
        detail: "unexpected nested value".into(),
    })
}

/// Columnar input (TF Serving / MLflow `"inputs": {"a": [..], "b": [..]}`): every member
/// is one column of the same length (a scalar counts as a column of one). Cells that are
/// not scalars (vectors, images) are skipped, as in [`object_row`].
pub(crate) fn rows_from_columns(
    side: Side,
    members: &[(Cow<'_, str>, Json<'_>)],
) -> Result<Vec<Row>, PayloadError> {
    check_columns(side, members.len())?;
    let mut n: Option<(usize, &str)> = None;
    for (name, column) in members {
        let len = column.as_array().map_or(1, <[Json<'_>]>::len);
        match n {
            None => n = Some((len, name)),
            Some((expected, first)) if expected != len => {
                return Err(PayloadError::ShapeMismatch {
                    side,
                    detail: format!(
                        "column `{name}` has {len} values but column `{first}` has {expected}"
                    ),
                })
            }
            Some(_) => {}
        }
    }
    let rows = n.map_or(0, |(len, _)| len);
    let mut table = Table::with_expected_rows(side, rows)?;
    check_values(side, rows.saturating_mul(members.len()))?;
    for i in 0..rows {
        let mut values = Vec::with_capacity(members.len());
        for (name, column) in members {
            let item = match column {
                Json::Arr(items) => items.get(i),
                scalar_column => Some(scalar_column),
            };
            if let Some(fv) = item.and_then(cell) {
                values.push((name.to_string(), fv));
            }
        }
        table.push(Row { values })?;
    }
    Ok(table.into_rows())
}

/// Converts a label given as text (an object key, a Seldon column name, a TF class string)
/// to a value: numeric text becomes a number, so `"1"` compares equal to ground truth `1`.
pub(crate) fn label_value(label: &str) -> FeatureValue {
    match label.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => FeatureValue::Number(v),
        _ => FeatureValue::Text(label.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn names_fall_back_from_config_to_baseline_to_positions() {
        let configured = names();
        let baseline = vec!["x".to_string()];
        let mut n = ColumnNames::fallback(&configured, &baseline);
        assert_eq!(
            [n.name(0), n.name(1), n.name(2), n.name(5)],
            ["a", "b", "f2", "f5"]
        );
        let mut n = ColumnNames::fallback(&[], &baseline);
        assert_eq!([n.name(0), n.name(1)], ["x", "f1"]);
        let mut n = ColumnNames::fallback(&[], &[]);
        assert_eq!([n.name(3), n.name(0)], ["f3", "f0"]);
    }

    #[test]
    fn cells_unwrap_single_element_arrays_only() {
        let one = Json::Arr(vec![Json::Arr(vec![Json::Str("FEB".into())])]);
        assert_eq!(cell(&one), Some(FeatureValue::Text("FEB".into())));
        let two = Json::Arr(vec![Json::Num(1.0), Json::Num(2.0)]);
        assert_eq!(cell(&two), None);
        assert_eq!(
            cell(&Json::Bool(true)),
            Some(FeatureValue::Text("true".into()))
        );
        assert_eq!(cell(&Json::Null), Some(FeatureValue::Missing));
    }

    #[test]
    fn label_text_that_is_numeric_becomes_a_number() {
        assert_eq!(label_value("1"), FeatureValue::Number(1.0));
        assert_eq!(label_value("t:1"), FeatureValue::Text("t:1".into()));
        assert_eq!(label_value("NaN"), FeatureValue::Text("NaN".into()));
    }
}
