//! The tensor decoder shared by the tensor-shaped formats (OIP `inputs[]`/`outputs[]`, Seldon
//! `tensor`): [`Tensor::decode`] validates the dimensions, flattens the data (bounded) and
//! checks that both agree; [`Tensor::per_row`] matches a response tensor to the request rows.

use super::json::Json;
use super::{PayloadError, Side, MAX_VALUES};

/// A decoded tensor: its dimensions and its elements in row-major order.
#[derive(Debug)]
pub(crate) struct Tensor<'j, 'a> {
    /// Dimensions (with a `BYTES` byte-length dimension removed, see [`Tensor::decode`]).
    pub(crate) dims: Vec<usize>,
    /// The elements, row-major.
    pub(crate) data: Vec<&'j Json<'a>>,
}

impl<'j, 'a> Tensor<'j, 'a> {
    /// Reads `shape` and the (flat or nested) `data`, whose element count must equal the
    /// product of the shape. With `bytes_length_dim`, data one dimension short is accepted
    /// and the last dimension dropped (a `BYTES` tensor may carry its byte length as the last
    /// dimension, as MLServer's string codec does). `what` names the tensor and `data_field`
    /// its data member in messages.
    pub(crate) fn decode(
        side: Side,
        what: &dyn std::fmt::Display,
        shape: &Json<'_>,
        data: &'j Json<'a>,
        data_field: &str,
        bytes_length_dim: bool,
    ) -> Result<Self, PayloadError> {
        let mut dims = dims(side, shape, what)?;
        let expected = element_count(side, &dims)?;
        let data = flatten(side, data)?;
        if data.len() != expected {
            match dims.split_last().map(|(_, rest)| rest) {
                Some(rest) if bytes_length_dim && element_count(side, rest)? == data.len() => {
                    dims.pop();
                }
                _ => {
                    return Err(PayloadError::ShapeMismatch {
                        side,
                        detail: format!(
                        "{what}: shape {dims:?} holds {expected} values but `{data_field}` has {}",
                        data.len()
                    ),
                    })
                }
            }
        }
        Ok(Tensor { dims, data })
    }

    /// Leading dimension (rows); a scalar tensor is one row.
    pub(crate) fn rows(&self) -> usize {
        rows(&self.dims)
    }

    /// Values per row.
    pub(crate) fn width(&self) -> usize {
        width(&self.dims)
    }

    /// The `rows × columns` view of the shape ([`as_matrix`]).
    pub(crate) fn matrix(&self) -> Option<(usize, usize)> {
        as_matrix(&self.dims)
    }

    /// The elements of row `r` when rows hold `width` values (empty past the end).
    pub(crate) fn row(&self, r: usize, width: usize) -> &[&'j Json<'a>] {
        row(&self.data, r, width)
    }

    /// A response tensor against `rows` request rows ([`per_row`]).
    pub(crate) fn per_row(&self, rows: usize) -> Result<(usize, usize), PayloadError> {
        per_row(&self.dims, rows)
    }
}

// Shape rules shared with the typed OIP path (`payload::oip_fast`), whose tensors hold
// their data as numbers.

/// Leading dimension (rows) of `dims`; a scalar tensor is one row.
pub(crate) fn rows(dims: &[usize]) -> usize {
    dims.first().copied().unwrap_or(1)
}

/// Values per row of `dims`.
pub(crate) fn width(dims: &[usize]) -> usize {
    dims.iter().skip(1).product()
}

/// Row `r` of row-major `data` when rows hold `width` values (empty past the end).
pub(crate) fn row<T>(data: &[T], r: usize, width: usize) -> &[T] {
    let start = r.saturating_mul(width);
    data.get(start..start.saturating_add(width))
        .unwrap_or_default()
}

/// A response tensor of shape `dims` against `rows` request rows: `(rows, values per
/// row)`. Its first dimension must equal `rows`, except that a lone row may come back as
/// a rank-1 vector (one row of that many values, e.g. class scores).
pub(crate) fn per_row(dims: &[usize], rows: usize) -> Result<(usize, usize), PayloadError> {
    match (self::rows(dims), dims.len()) {
        (n, _) if n == rows => Ok((n, width(dims))),
        (c, 1) if rows == 1 => Ok((1, c)),
        (n, _) => Err(PayloadError::PredictionCountMismatch {
            rows,
            predictions: n,
        }),
    }
}

/// Reads a `shape` array: every dimension a non-negative integer.
fn dims(
    side: Side,
    shape: &Json<'_>,
    what: &dyn std::fmt::Display,
) -> Result<Vec<usize>, PayloadError> {
    let items = shape
        .as_array()
        .ok_or_else(|| PayloadError::UnrecognizedFormat {
            side,
            detail: format!(
                "{what}: `shape` is a {}, not a list of dimensions",
                shape.kind()
            ),
        })?;
    if items.len() > 32 {
        return Err(PayloadError::NotTabular {
            side,
            detail: format!("{what}: a tensor of rank {}", items.len()),
        });
    }
    items
        .iter()
        .map(|d| match d.as_f64() {
            Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= MAX_VALUES as f64 => Ok(v as usize),
            Some(v) if v >= 0.0 && v.fract() == 0.0 => Err(PayloadError::TooManyValues {
                side,
                values: usize::MAX,
                limit: MAX_VALUES,
            }),
            Some(v) => Err(PayloadError::ShapeMismatch {
                side,
                detail: format!("{what}: dimension {v} is not a non-negative integer"),
            }),
            None => Err(PayloadError::ShapeMismatch {
                side,
                detail: format!("{what}: a dimension is a {}, not a number", d.kind()),
            }),
        })
        .collect()
}

/// The number of elements of a shape, bounded by [`MAX_VALUES`] (no overflow).
pub(crate) fn element_count(side: Side, dims: &[usize]) -> Result<usize, PayloadError> {
    let mut n: usize = 1;
    for &d in dims {
        n = n.checked_mul(d).ok_or(PayloadError::TooManyValues {
            side,
            values: usize::MAX,
            limit: MAX_VALUES,
        })?;
        if n > MAX_VALUES {
            return Err(PayloadError::TooManyValues {
                side,
                values: n,
                limit: MAX_VALUES,
            });
        }
    }
    Ok(n)
}

/// The leaves of a (possibly nested) `data` value in row-major order; a scalar is one leaf.
/// Fails past [`MAX_VALUES`] leaves.
fn flatten<'j, 'a>(side: Side, data: &'j Json<'a>) -> Result<Vec<&'j Json<'a>>, PayloadError> {
    let mut out = Vec::new();
    match data {
        Json::Arr(items) => {
            out.reserve(items.len().min(MAX_VALUES));
            push_leaves(side, items, &mut out)?;
        }
        other => out.push(other),
    }
    Ok(out)
}

fn push_leaves<'j, 'a>(
    side: Side,
    items: &'j [Json<'a>],
    out: &mut Vec<&'j Json<'a>>,
) -> Result<(), PayloadError> {
    for item in items {
        match item {
            // Recursion depth is bounded by the JSON parser's nesting limit.
            Json::Arr(inner) => push_leaves(side, inner, out)?,
            leaf => {
                if out.len() == MAX_VALUES {
                    return Err(PayloadError::TooManyValues {
                        side,
                        values: MAX_VALUES + 1,
                        limit: MAX_VALUES,
                    });
                }
                out.push(leaf);
            }
        }
    }
    Ok(())
}

/// A shape seen as `rows × columns`: `[]` is 1×1, `[n]` is n×1, `[n, f]` is n×f, and
/// `[n, f, 1, …]` is n×f. `None` for other shapes of rank > 2.
pub(crate) fn as_matrix(dims: &[usize]) -> Option<(usize, usize)> {
    match dims {
        [] => Some((1, 1)),
        [n] => Some((*n, 1)),
        [n, f, rest @ ..] if rest.iter().all(|&d| d == 1) => Some((*n, *f)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Json<'static> {
        let text: &'static str = Box::leak(text.to_owned().into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn dims_reject_negative_fractional_and_huge_dimensions() {
        assert_eq!(dims(Side::Request, &json("[2, 4]"), &"x").unwrap(), [2, 4]);
        assert_eq!(
            dims(Side::Request, &json("[-1, 4]"), &"x")
                .unwrap_err()
                .reason(),
            "shape_mismatch"
        );
        assert_eq!(
            dims(Side::Request, &json("[1.5]"), &"x")
                .unwrap_err()
                .reason(),
            "shape_mismatch"
        );
        assert_eq!(
            dims(Side::Request, &json("[\"2\"]"), &"x")
                .unwrap_err()
                .reason(),
            "shape_mismatch"
        );
        assert_eq!(
            dims(Side::Request, &json("[1e300]"), &"x")
                .unwrap_err()
                .reason(),
            "too_many_values"
        );
        assert_eq!(
            dims(Side::Request, &json("{}"), &"x").unwrap_err().reason(),
            "unrecognized_format"
        );
    }

    #[test]
    fn element_count_never_overflows() {
        let big = [1_000_000usize, 1_000_000, 1_000_000, 1_000_000];
        assert_eq!(
            element_count(Side::Request, &big).unwrap_err().reason(),
            "too_many_values"
        );
        assert_eq!(
            element_count(Side::Request, &[usize::MAX, 2])
                .unwrap_err()
                .reason(),
            "too_many_values"
        );
        assert_eq!(
            element_count(Side::Request, &[3, 0, usize::MAX]).unwrap(),
            0
        );
        assert_eq!(element_count(Side::Request, &[0, 5]).unwrap(), 0);
        assert_eq!(element_count(Side::Request, &[]).unwrap(), 1);
    }

    #[test]
    fn flatten_is_row_major() {
        let v = json("[[1, 2], [3, [4, 5]]]");
        let leaves: Vec<f64> = flatten(Side::Request, &v)
            .unwrap()
            .iter()
            .filter_map(|j| j.as_f64())
            .collect();
        assert_eq!(leaves, [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(flatten(Side::Request, &json("\"hi\"")).unwrap().len(), 1);
    }

    fn decode<'j>(
        shape: &str,
        data: &'j Json<'static>,
        bytes: bool,
    ) -> Result<Tensor<'j, 'static>, PayloadError> {
        Tensor::decode(Side::Request, &"t", &json(shape), data, "data", bytes)
    }

    #[test]
    fn decode_checks_shape_against_data_and_drops_a_bytes_length() {
        let data = json("[[1, 2, 3], [4, 5, 6]]");
        let t = decode("[2, 3]", &data, false).unwrap();
        assert_eq!((t.rows(), t.width(), t.matrix()), (2, 3, Some((2, 3))));
        assert_eq!(t.row(1, 3).len(), 3);
        assert_eq!(t.row(1, 3)[0].as_f64(), Some(4.0));
        assert!(t.row(2, 3).is_empty());
        let err = decode("[3, 3]", &data, false).unwrap_err();
        assert_eq!(err.reason(), "shape_mismatch");
        assert!(
            err.to_string()
                .contains("t: shape [3, 3] holds 9 values but `data` has 6"),
            "{err}"
        );
        // Two strings of shape [2, 11]: the byte length is dropped only for BYTES.
        let words = json("[\"hello world\", \"hello again\"]");
        assert_eq!(decode("[2, 11]", &words, true).unwrap().dims, [2]);
        assert!(decode("[2, 11]", &words, false).is_err());
        // A scalar is one element of shape [].
        let one = json("7");
        assert_eq!(decode("[]", &one, false).unwrap().rows(), 1);
    }

    #[test]
    fn per_row_matches_the_request_rows_or_one_row_vector() {
        let data = json("[0.1, 0.7, 0.2]");
        let t = decode("[3]", &data, false).unwrap();
        assert_eq!(t.per_row(3).unwrap(), (3, 1));
        assert_eq!(t.per_row(1).unwrap(), (1, 3), "a lone row's class scores");
        assert_eq!(
            t.per_row(2).unwrap_err().reason(),
            "prediction_count_mismatch"
        );
        let data = json("[[0.1, 0.9], [0.8, 0.2]]");
        let t = decode("[2, 2]", &data, false).unwrap();
        assert_eq!(t.per_row(2).unwrap(), (2, 2));
        assert!(t.per_row(1).is_err());
    }

    #[test]
    fn matrix_views() {
        assert_eq!(as_matrix(&[]), Some((1, 1)));
        assert_eq!(as_matrix(&[5]), Some((5, 1)));
        assert_eq!(as_matrix(&[5, 3]), Some((5, 3)));
        assert_eq!(as_matrix(&[5, 3, 1, 1]), Some((5, 3)));
        assert_eq!(as_matrix(&[5, 28, 28]), None);
    }
}
