//! Seldon Core v1 (`POST /api/v1.0/predictions`, also `/api/v0.1/predictions` and the
//! ingress form `/seldon/{namespace}/{deployment}/api/v1.0/predictions`).
//!
//! Request (a `SeldonMessage`):
//! - `{"data": {"names": [...], "ndarray": [[...], ...]}}`: one row per inner list, columns
//!   named by `names` (positional names when absent or short); a flat `ndarray` of scalars
//!   (`["a text", "another"]`) is one row per scalar; objects in `ndarray` are named rows;
//! - `{"data": {"names": [...], "tensor": {"shape": [N, F], "values": [...]}}}`: the same
//!   table, flat row-major; `[N]` is N rows of one column; other ranks > 2 are not tabular;
//! - `{"jsonData": ...}` read like the `records` format, `{"strData": "..."}` one text row.
//!   `binData` and `tftensor` are not tabular.
//!
//! Response: the same message shape. A response column per class (`names` such as
//! `["t:0", "t:1", "t:2"]` from the scikit-learn server, or class labels) makes each row's
//! values class scores: the value is the best class — its index for the generic `t:i` names,
//! else its label (numeric labels as numbers) — and the scores are the probabilities when they
//! form a distribution. A single column (or a flat list) holds one value per row.
//! `jsonData` is read with the shared prediction rules; `strData` is one text prediction.

use crate::record::{FeatureValue, Prediction, Row};

use super::json::Json;
use super::predict::{prediction, predictions_from_value, scores_prediction};
use super::rows::{
    label_value, positional_row, rows_from_value, scalar, single_value_row, ColumnNames,
    ScalarList, Table,
};
use super::tensor::Tensor;
use super::{Context, PayloadError, Side};

/// Whether a request body is in this format.
pub(crate) fn looks_like(req: &Json<'_>) -> bool {
    let data_message = req.get("data").is_some_and(|d| {
        ["ndarray", "tensor", "tftensor", "names"]
            .iter()
            .any(|k| d.get(k).is_some())
    });
    data_message
        || req.get("jsonData").is_some()
        || req.get("strData").is_some()
        || req.get("binData").is_some()
}

/// The rows of a request body.
pub(crate) fn request_rows(ctx: &Context<'_>, req: &Json<'_>) -> Result<Vec<Row>, PayloadError> {
    let side = Side::Request;
    if let Some(data) = req.get("data") {
        let body_names = names(data);
        let mut names = if body_names.is_empty() {
            ctx.fallback_names()
        } else {
            ColumnNames::explicit(body_names)
        };
        if let Some(nd) = data.get("ndarray") {
            return match nd {
                Json::Arr(items) if items.iter().all(Json::is_scalar) => {
                    let mut table = Table::with_expected_rows(side, items.len())?;
                    for item in items {
                        let fv = scalar(item).unwrap_or(FeatureValue::Missing);
                        table.push(single_value_row(fv, &mut names))?;
                    }
                    Ok(table.into_rows())
                }
                other => rows_from_value(side, other, &mut names, ScalarList::RowEach),
            };
        }
        if let Some(tensor) = data.get("tensor") {
            return tensor_rows(tensor, &mut names);
        }
        if data.get("tftensor").is_some() {
            return Err(not_tabular(side, "`tftensor` payloads are not supported"));
        }
        return Err(PayloadError::UnrecognizedFormat {
            side,
            detail: "Seldon `data` has neither `ndarray` nor `tensor`".into(),
        });
    }
    if let Some(json) = req.get("jsonData") {
        return rows_from_value(side, json, &mut ctx.fallback_names(), ScalarList::OneRow);
    }
    if let Some(text) = req.get("strData") {
        let fv = scalar(text).unwrap_or(FeatureValue::Missing);
        return Ok(vec![single_value_row(fv, &mut ctx.fallback_names())]);
    }
    if req.get("binData").is_some() {
        return Err(not_tabular(side, "`binData` payloads are not tabular"));
    }
    Err(PayloadError::UnrecognizedFormat {
        side,
        detail: format!(
            "seldon expects `data`, `jsonData` or `strData`, got {}",
            req.describe()
        ),
    })
}

fn not_tabular(side: Side, detail: &str) -> PayloadError {
    PayloadError::NotTabular {
        side,
        detail: detail.into(),
    }
}

/// `data.names` as text (non-text names are skipped: they cannot name anything).
fn names<'j>(data: &'j Json<'_>) -> Vec<&'j str> {
    data.get("names")
        .and_then(Json::as_array)
        .map(|names| names.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default()
}

/// A Seldon `tensor` (`shape` and flat or nested `values`) as a `rows × cols` matrix.
fn tensor_matrix<'j, 'a>(
    side: Side,
    tensor: &'j Json<'a>,
) -> Result<(Tensor<'j, 'a>, usize, usize), PayloadError> {
    let shape = tensor
        .get("shape")
        .ok_or_else(|| PayloadError::UnrecognizedFormat {
            side,
            detail: "Seldon `tensor` has no `shape`".into(),
        })?;
    let values = match tensor.get("values") {
        Some(v @ Json::Arr(_)) => v,
        _ => {
            return Err(PayloadError::UnrecognizedFormat {
                side,
                detail: "Seldon `tensor` has no `values` list".into(),
            })
        }
    };
    let t = Tensor::decode(side, &"tensor", shape, values, "values", false)?;
    let (rows, cols) = t
        .matrix()
        .ok_or_else(|| not_tabular(side, &format!("tensor shape {:?} has rank > 2", t.dims)))?;
    Ok((t, rows, cols))
}

fn tensor_rows(tensor: &Json<'_>, names: &mut ColumnNames<'_>) -> Result<Vec<Row>, PayloadError> {
    let side = Side::Request;
    let (t, rows, cols) = tensor_matrix(side, tensor)?;
    let mut table = Table::with_expected_rows(side, rows)?;
    table.check_width(cols)?;
    if cols == 0 {
        for _ in 0..rows {
            table.push(Row::default())?;
        }
        return Ok(table.into_rows());
    }
    for chunk in t.data.chunks(cols) {
        let row = positional_row(&table, chunk.iter().copied(), names)?;
        table.push(row)?;
    }
    Ok(table.into_rows())
}

/// The predictions of a response body for `rows` request rows.
pub(crate) fn response_predictions(
    resp: &Json<'_>,
    rows: usize,
) -> Result<Vec<Prediction>, PayloadError> {
    let side = Side::Response;
    if let Some(data) = resp.get("data") {
        let labels = class_labels(&names(data));
        if let Some(nd) = data.get("ndarray") {
            return ndarray_predictions(nd, rows, labels.as_deref());
        }
        if let Some(tensor) = data.get("tensor") {
            let (t, _, _) = tensor_matrix(side, tensor)?;
            let (n, width) = t.per_row(rows)?;
            let mut out = Vec::with_capacity(n);
            for r in 0..n {
                out.push(row_prediction(
                    t.row(r, width).iter().copied(),
                    labels.as_deref(),
                )?);
            }
            return Ok(out);
        }
        return Err(PayloadError::UnrecognizedFormat {
            side,
            detail: "Seldon response `data` has neither `ndarray` nor `tensor`".into(),
        });
    }
    if let Some(json) = resp.get("jsonData") {
        return predictions_from_value(json, rows);
    }
    if let Some(text) = resp.get("strData") {
        if rows != 1 {
            return Err(PayloadError::PredictionCountMismatch {
                rows,
                predictions: 1,
            });
        }
        return Ok(vec![prediction(text)?]);
    }
    Err(PayloadError::UnrecognizedFormat {
        side,
        detail: format!(
            "seldon expects `data`, `jsonData` or `strData` in the response, got {}",
            resp.describe()
        ),
    })
}

/// Class labels from response column names; `None` for the generic `t:0, t:1, …` names
/// (the class index is the better value then) and for no names.
fn class_labels(names: &[&str]) -> Option<Vec<FeatureValue>> {
    let generic = names
        .iter()
        .enumerate()
        .all(|(i, n)| n.strip_prefix("t:").and_then(|k| k.parse::<usize>().ok()) == Some(i));
    if names.is_empty() || generic {
        return None;
    }
    Some(names.iter().map(|n| label_value(n)).collect())
}

fn ndarray_predictions(
    nd: &Json<'_>,
    rows: usize,
    labels: Option<&[FeatureValue]>,
) -> Result<Vec<Prediction>, PayloadError> {
    let items = match nd {
        Json::Arr(items) => items,
        other if rows == 1 => return Ok(vec![prediction(other)?]),
        _ => {
            return Err(PayloadError::PredictionCountMismatch {
                rows,
                predictions: 1,
            })
        }
    };
    if items.len() != rows {
        // A single row's class scores may come back as a flat list.
        if rows == 1 && items.iter().all(Json::is_scalar) {
            return Ok(vec![row_prediction(items.iter(), labels)?]);
        }
        return Err(PayloadError::PredictionCountMismatch {
            rows,
            predictions: items.len(),
        });
    }
    items
        .iter()
        .map(|item| match item {
            Json::Arr(cells) => row_prediction(cells.iter(), labels),
            other => prediction(other),
        })
        .collect()
}

/// One response row: a single value, or class scores over the response columns.
fn row_prediction<'j, 'a: 'j>(
    row: impl ExactSizeIterator<Item = &'j Json<'a>> + Clone,
    labels: Option<&[FeatureValue]>,
) -> Result<Prediction, PayloadError> {
    if row.len() >= 2 {
        if let Some(scores) = row.clone().map(Json::as_f64).collect::<Option<Vec<f64>>>() {
            let labels = labels.filter(|l| l.len() == scores.len());
            return Ok(scores_prediction(scores, labels));
        }
    }
    let cells: Vec<Json<'a>> = row.cloned().collect();
    prediction(&Json::Arr(cells))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, num, parse_fixture_pair, parse_with, text, NO_RESPONSE};
    use super::super::{PayloadConfig, PayloadFormat};

    fn cfg() -> PayloadConfig {
        PayloadConfig {
            format: PayloadFormat::Seldon,
            ..PayloadConfig::default()
        }
    }

    #[test]
    fn sklearn_iris_ndarray_probabilities() {
        // Seldon docs: {"data": {"ndarray": [[1,2,3,4]]}} → t:0..t:2 probabilities.
        let parsed = parse_fixture_pair(
            &cfg(),
            "/seldon/default/iris-model/api/v1.0/predictions",
            "seldon_iris_ndarray",
            &[],
        )
        .unwrap();
        assert_eq!(parsed.rows[0].values.len(), 4);
        assert_eq!(parsed.rows[0].get("f3"), Some(&num(4.0)));
        let p = &parsed.predictions[0];
        assert_eq!(p.value, num(2.0));
        assert_eq!(
            p.probabilities,
            Some(vec![
                0.0006985194531162841,
                0.003668039039435755,
                0.9956334415074478
            ])
        );
    }

    #[test]
    fn sklearn_iris_tensor_with_baseline_names() {
        // Seldon sklearn server docs: tensor [1, 4] → tensor [1, 3] probabilities.
        let baseline: Vec<String> = ["sl", "sw", "pl", "pw"].map(String::from).to_vec();
        let parsed = parse_fixture_pair(
            &cfg(),
            "/api/v1.0/predictions",
            "seldon_iris_tensor",
            &baseline,
        )
        .unwrap();
        assert_eq!(parsed.rows[0].get("sl"), Some(&num(5.3)));
        assert_eq!(parsed.rows[0].get("pw"), Some(&num(0.2)));
        assert_eq!(parsed.predictions[0].value, num(0.0));
        assert_eq!(
            parsed.predictions[0].probabilities,
            Some(vec![
                0.8700986370655746,
                0.1298937698872714,
                7.593047154034911e-06
            ])
        );
    }

    #[test]
    fn names_in_the_body_win_and_class_names_become_labels() {
        let req = br#"{"data": {"names": ["a", "b"], "ndarray": [[1, 2], [3, 4]]}}"#;
        let resp = br#"{"data": {"names": ["cat", "dog"], "ndarray": [[0.9, 0.1], [0.2, 0.8]]}, "meta": {}}"#;
        let parsed = parse_with(
            &cfg(),
            "/api/v1.0/predictions",
            req,
            Some(resp),
            &["x".into(), "y".into()],
        )
        .unwrap();
        assert_eq!(
            parsed.rows[1].values,
            vec![("a".to_string(), num(3.0)), ("b".to_string(), num(4.0))]
        );
        assert_eq!(parsed.predictions[0].value, text("cat"));
        assert_eq!(parsed.predictions[1].value, text("dog"));
        assert_eq!(parsed.predictions[1].probabilities, Some(vec![0.2, 0.8]));
    }

    #[test]
    fn regression_and_text_models() {
        let req = br#"{"data": {"names": ["x"], "tensor": {"shape": [3], "values": [1, 2, 3]}}}"#;
        let resp = br#"{"data": {"names": ["t:0"], "tensor": {"shape": [3, 1], "values": [0.5, 1.5, 2.5]}}}"#;
        let parsed = parse_with(&cfg(), "/", req, Some(resp), &[]).unwrap();
        assert_eq!(parsed.rows[2].values, vec![("x".to_string(), num(3.0))]);
        let ys: Vec<_> = parsed.predictions.iter().map(|p| p.value.clone()).collect();
        assert_eq!(ys, [num(0.5), num(1.5), num(2.5)]);
        let req = br#"{"data": {"ndarray": ["This is a text", "another"]}}"#;
        let resp = br#"{"data": {"ndarray": ["positive", "negative"]}}"#;
        let parsed = parse_with(&cfg(), "/", req, Some(resp), &[]).unwrap();
        assert_eq!(
            parsed.rows[0].values,
            vec![("f0".to_string(), text("This is a text"))]
        );
        assert_eq!(parsed.predictions[1].value, text("negative"));
    }

    #[test]
    fn json_and_str_data() {
        let req = br#"{"jsonData": {"age": 40, "city": "Oslo"}}"#;
        let resp = br#"{"jsonData": {"prediction": 1, "probability": 0.9}, "meta": {}}"#;
        let parsed = parse_with(&cfg(), "/", req, Some(resp), &[]).unwrap();
        assert_eq!(parsed.rows[0].get("city"), Some(&text("Oslo")));
        assert_eq!(parsed.predictions[0].value, num(1.0));
        let parsed = parse_with(
            &cfg(),
            "/",
            br#"{"strData": "hello"}"#,
            Some(br#"{"strData": "greeting"}"#),
            &[],
        )
        .unwrap();
        assert_eq!(
            parsed.rows[0].values,
            vec![("f0".to_string(), text("hello"))]
        );
        assert_eq!(parsed.predictions[0].value, text("greeting"));
    }

    #[test]
    fn failures() {
        let err = parse_with(
            &cfg(),
            "/",
            br#"{"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3]}}}"#,
            NO_RESPONSE,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "shape_mismatch");
        let err = parse_with(&cfg(), "/", br#"{"binData": "AAEC"}"#, NO_RESPONSE, &[]).unwrap_err();
        assert_eq!(err.reason(), "not_tabular");
        let err = parse_with(
            &cfg(),
            "/",
            br#"{"data": {"ndarray": [[1], [2]]}}"#,
            Some(&fixture("seldon_failure_response.json")),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "unrecognized_format");
        let err = parse_with(
            &cfg(),
            "/",
            br#"{"data": {"ndarray": [[1], [2]]}}"#,
            Some(br#"{"data": {"ndarray": [[0.1, 0.9]]}}"#),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "prediction_count_mismatch");
    }
}
