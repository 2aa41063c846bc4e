//! MLflow scoring server (`POST /invocations`, also MLServer's MLflow runtime).
//!
//! Request (JSON content type):
//! - `{"dataframe_split": {"columns": [...], "data": [[...]], "index": [...]}}`: one row per
//!   `data` entry, named by `columns` (every row must have exactly one value per column; without
//!   `columns`, positional names apply);
//! - `{"dataframe_records": [{...}, ...]}`: one row per object;
//! - `{"instances": ...}` and `{"inputs": ...}`: TF Serving's row and columnar forms, read as in
//!   [`kserve_v1`](super::kserve_v1);
//! - MLflow 1.x bodies: a bare split-oriented frame `{"columns": [...], "data": [...]}` or a bare
//!   list of records.
//!
//! `params` is ignored. Response: `{"predictions": ...}` (MLflow ≥ 2) or the bare value (1.x):
//! a list of values, of score lists, or of records (a DataFrame output such as
//! `[{"0": 0.2, "1": 0.8}]`), read with the shared prediction rules of the
//! [`payload`](super) module.

use crate::record::{Prediction, Row};

use super::json::Json;
use super::kserve_v1::{inputs_rows, instances_rows};
use super::predict::predictions_from_value;
use super::rows::{positional_row, rows_from_value, ColumnNames, ScalarList, Table};
use super::{Context, PayloadError, Side};

/// Whether a request body is in this format.
pub(crate) fn looks_like(req: &Json<'_>) -> bool {
    match req {
        Json::Obj(_) => {
            [
                "dataframe_split",
                "dataframe_records",
                "instances",
                "inputs",
            ]
            .iter()
            .any(|k| req.get(k).is_some())
                || (req.get("columns").is_some() && req.get("data").is_some())
        }
        Json::Arr(_) => true,
        _ => false,
    }
}

/// The rows of a request body.
pub(crate) fn request_rows(ctx: &Context<'_>, req: &Json<'_>) -> Result<Vec<Row>, PayloadError> {
    if let Some(split) = req.get("dataframe_split") {
        return split_rows(ctx, split);
    }
    if let Some(records) = req.get("dataframe_records") {
        return rows_from_value(
            Side::Request,
            records,
            &mut ctx.fallback_names(),
            ScalarList::RowEach,
        );
    }
    if let Some(instances) = req.get("instances") {
        return instances_rows(ctx, instances);
    }
    if let Some(inputs) = req.get("inputs") {
        return inputs_rows(ctx, inputs);
    }
    if req.get("columns").is_some() && req.get("data").is_some() {
        return split_rows(ctx, req);
    }
    if let Json::Arr(_) = req {
        return rows_from_value(
            Side::Request,
            req,
            &mut ctx.fallback_names(),
            ScalarList::RowEach,
        );
    }
    Err(PayloadError::UnrecognizedFormat {
        side: Side::Request,
        detail: format!(
            "mlflow expects `dataframe_split`, `dataframe_records`, `instances` or `inputs`, got {}",
            req.describe()
        ),
    })
}

/// The predictions of a response body for `rows` request rows.
pub(crate) fn response_predictions(
    resp: &Json<'_>,
    rows: usize,
) -> Result<Vec<Prediction>, PayloadError> {
    predictions_from_value(resp, rows)
}

/// A split-oriented DataFrame.
fn split_rows(ctx: &Context<'_>, split: &Json<'_>) -> Result<Vec<Row>, PayloadError> {
    let side = Side::Request;
    let data = match split.get("data") {
        Some(Json::Arr(data)) => data,
        _ => {
            return Err(PayloadError::UnrecognizedFormat {
                side,
                detail: "the split-oriented DataFrame has no `data` list".into(),
            })
        }
    };
    let columns: Option<Vec<String>> = match split.get("columns") {
        None | Some(Json::Null) => None,
        Some(Json::Arr(cols)) => Some(
            cols.iter()
                .enumerate()
                .map(|(i, c)| column_name(c).unwrap_or_else(|| format!("f{i}")))
                .collect(),
        ),
        Some(other) => {
            return Err(PayloadError::UnrecognizedFormat {
                side,
                detail: format!("DataFrame `columns` is a {}, not a list", other.kind()),
            })
        }
    };
    let mut names = match &columns {
        Some(cols) => ColumnNames::explicit(cols.iter().map(String::as_str).collect()),
        None => ctx.fallback_names(),
    };
    let mut table = Table::with_expected_rows(side, data.len())?;
    for (i, item) in data.iter().enumerate() {
        let single;
        let cells: &[Json<'_>] = match item {
            Json::Arr(cells) => cells,
            other => {
                single = [other.clone()];
                &single
            }
        };
        if let Some(cols) = &columns {
            if cells.len() != cols.len() {
                return Err(PayloadError::ShapeMismatch {
                    side,
                    detail: format!(
                        "DataFrame row {i} has {} values for {} columns",
                        cells.len(),
                        cols.len()
                    ),
                });
            }
        }
        let row = positional_row(&table, cells, &mut names)?;
        table.push(row)?;
    }
    Ok(table.into_rows())
}

/// A DataFrame column label as text (pandas allows numbers).
fn column_name(label: &Json<'_>) -> Option<String> {
    match label {
        Json::Str(s) => Some(s.to_string()),
        Json::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", *n as i64)),
        Json::Num(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, num, parse_fixture_pair, parse_with, text, NO_RESPONSE};
    use super::super::{PayloadConfig, PayloadFormat};
    use crate::record::FeatureValue;

    fn cfg() -> PayloadConfig {
        PayloadConfig {
            format: PayloadFormat::Mlflow,
            ..PayloadConfig::default()
        }
    }

    #[test]
    fn dataframe_split_docs_example() {
        // MLflow docs: columns a, b, c; data [[1, 2, 3], [4, 5, 6]].
        let parsed = parse_fixture_pair(&cfg(), "/invocations", "mlflow_split", &[]).unwrap();
        assert_eq!(
            parsed.rows[1].values,
            vec![
                ("a".to_string(), num(4.0)),
                ("b".to_string(), num(5.0)),
                ("c".to_string(), num(6.0))
            ]
        );
        let ys: Vec<_> = parsed.predictions.iter().map(|p| p.value.clone()).collect();
        assert_eq!(ys, [num(0.0), num(1.0)]);
    }

    #[test]
    fn dataframe_records_and_split_give_the_same_rows() {
        let split = parse_with(
            &cfg(),
            "/invocations",
            &fixture("mlflow_split_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        let records = parse_with(
            &cfg(),
            "/invocations",
            &fixture("mlflow_records_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        assert_eq!(split.rows, records.rows);
    }

    #[test]
    fn instances_with_list_wrapped_scalars_and_vectors() {
        // MLflow docs "instances": {"a": "s1", "b": 1, "c": [1, 2, 3]}; the vector `c` is not a
        // feature. Vertex AI style `[850.0]` single-element lists are unwrapped.
        let parsed = parse_with(
            &cfg(),
            "/invocations",
            &fixture("mlflow_instances_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        assert_eq!(parsed.rows.len(), 3);
        assert_eq!(
            parsed.rows[2].values,
            vec![("a".to_string(), text("s3")), ("b".to_string(), num(3.0))]
        );
        let req = br#"{"instances": [{"weight_kg": [850.0], "ade_month": ["FEB"]}]}"#;
        let parsed = parse_with(&cfg(), "/invocations", req, NO_RESPONSE, &[]).unwrap();
        assert_eq!(
            parsed.rows[0].values,
            vec![
                ("weight_kg".to_string(), num(850.0)),
                ("ade_month".to_string(), text("FEB"))
            ]
        );
    }

    #[test]
    fn inputs_columnar_matches_instances() {
        let instances = parse_with(
            &cfg(),
            "/invocations",
            &fixture("mlflow_instances_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        let inputs = parse_with(
            &cfg(),
            "/invocations",
            &fixture("mlflow_inputs_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        assert_eq!(instances.rows, inputs.rows);
    }

    #[test]
    fn inputs_as_a_list_of_rows_with_configured_names() {
        // MLflow docs: curl ... --data '{"inputs": [[1, 2], [3, 4], [5, 6]]}'.
        let mut c = cfg();
        c.feature_names = vec!["x".into(), "y".into()];
        let parsed = parse_with(
            &c,
            "/invocations",
            br#"{"inputs": [[1, 2], [3, 4], [5, 6]]}"#,
            Some(b"[7, 8, 9]"),
            &[],
        )
        .unwrap();
        assert_eq!(
            parsed.rows[2].values,
            vec![("x".to_string(), num(5.0)), ("y".to_string(), num(6.0))]
        );
        assert_eq!(parsed.predictions[2].value, num(9.0));
    }

    #[test]
    fn mlserver_wine_example_split() {
        // MLServer's MLflow example posts a split frame to /invocations; prediction 5.57.
        let parsed = parse_with(
            &cfg(),
            "/invocations",
            &fixture("mlflow_wine_split_request.json"),
            Some(br#"{"predictions": [5.576883936610762]}"#),
            &[],
        )
        .unwrap();
        assert_eq!(parsed.rows[0].values.len(), 11);
        assert_eq!(parsed.rows[0].get("alcohol"), Some(&num(7.4)));
        assert_eq!(parsed.rows[0].get("volatile acidity"), Some(&num(9.4)));
        assert_eq!(parsed.predictions[0].value, num(5.576883936610762));
    }

    #[test]
    fn dataframe_outputs_and_legacy_bodies() {
        // A pyfunc returning predict_proba as a DataFrame: records keyed by class.
        let resp = br#"{"predictions": [{"0": 0.9, "1": 0.1}, {"0": 0.25, "1": 0.75}]}"#;
        let parsed = parse_with(
            &cfg(),
            "/invocations",
            &fixture("mlflow_split_request.json"),
            Some(resp),
            &[],
        )
        .unwrap();
        assert_eq!(parsed.predictions[0].value, num(0.0));
        assert_eq!(parsed.predictions[1].value, num(1.0));
        assert_eq!(parsed.predictions[1].probabilities, Some(vec![0.25, 0.75]));
        // MLflow 1.x: bare split frame in, bare list out.
        let req = br#"{"columns": ["a", "b"], "data": [[1, null], [3, 4]]}"#;
        let parsed = parse_with(&cfg(), "/invocations", req, Some(b"[0.5, 0.25]"), &[]).unwrap();
        assert_eq!(parsed.rows[0].get("b"), Some(&FeatureValue::Missing));
        assert_eq!(parsed.predictions[1].value, num(0.25));
        // MLflow docs "Encoding complex data": a bare list of records.
        let req =
            br#"[{"a": 0, "b": "2020-01-01T00:00:00Z"}, {"a": 1, "b": "2020-02-01T12:34:56Z"}]"#;
        let parsed = parse_with(&cfg(), "/invocations", req, NO_RESPONSE, &[]).unwrap();
        assert_eq!(parsed.rows[1].get("b"), Some(&text("2020-02-01T12:34:56Z")));
    }

    #[test]
    fn numeric_column_labels_and_strict_row_width() {
        let req =
            br#"{"dataframe_split": {"columns": [0, 1], "index": [7], "data": [[1.5, 2.5]]}}"#;
        let parsed = parse_with(&cfg(), "/invocations", req, NO_RESPONSE, &[]).unwrap();
        assert_eq!(
            parsed.rows[0].values,
            vec![("0".to_string(), num(1.5)), ("1".to_string(), num(2.5))]
        );
        let req = br#"{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2, 3]]}}"#;
        let err = parse_with(&cfg(), "/invocations", req, NO_RESPONSE, &[]).unwrap_err();
        assert_eq!(err.reason(), "shape_mismatch");
        let err = parse_with(
            &cfg(),
            "/invocations",
            br#"{"messages": []}"#,
            NO_RESPONSE,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "unrecognized_format");
    }
}
