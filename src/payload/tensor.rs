//! Shape handling for tensor-shaped bodies (OIP `inputs[]`/`outputs[]`, Seldon `tensor`):
//! validated dimensions, bounded flattening, and the `[rows, columns]` view of a shape.

use super::json::Json;
use super::{PayloadError, Side, MAX_VALUES};

/// Reads a `shape` array: every dimension a non-negative integer.
pub(crate) fn dims(side: Side, shape: &Json<'_>, what: &str) -> Result<Vec<usize>, PayloadError> {
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
pub(crate) fn flatten<'j, 'a>(
    side: Side,
    data: &'j Json<'a>,
) -> Result<Vec<&'j Json<'a>>, PayloadError> {
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
        assert_eq!(dims(Side::Request, &json("[2, 4]"), "x").unwrap(), [2, 4]);
        assert_eq!(
            dims(Side::Request, &json("[-1, 4]"), "x")
                .unwrap_err()
                .reason(),
            "shape_mismatch"
        );
        assert_eq!(
            dims(Side::Request, &json("[1.5]"), "x")
                .unwrap_err()
                .reason(),
            "shape_mismatch"
        );
        assert_eq!(
            dims(Side::Request, &json("[\"2\"]"), "x")
                .unwrap_err()
                .reason(),
            "shape_mismatch"
        );
        assert_eq!(
            dims(Side::Request, &json("[1e300]"), "x")
                .unwrap_err()
                .reason(),
            "too_many_values"
        );
        assert_eq!(
            dims(Side::Request, &json("{}"), "x").unwrap_err().reason(),
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

    #[test]
    fn matrix_views() {
        assert_eq!(as_matrix(&[]), Some((1, 1)));
        assert_eq!(as_matrix(&[5]), Some((5, 1)));
        assert_eq!(as_matrix(&[5, 3]), Some((5, 3)));
        assert_eq!(as_matrix(&[5, 3, 1, 1]), Some((5, 3)));
        assert_eq!(as_matrix(&[5, 28, 28]), None);
    }
}
