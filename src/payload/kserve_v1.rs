//! KServe v1 / TensorFlow Serving REST (`POST /v1/models/{m}:predict`, also TF Serving's
//! `:classify` and `:regress`).
//!
//! Request:
//! - `{"instances": [...]}` (row format): each instance is a row — an object (named
//!   features), a list (positional features; `[[1, 2]]` counts as `[1, 2]`), or a scalar (a row
//!   of one feature, as in `{"instances": [1.0, 2.0, 5.0]}`);
//! - `{"inputs": {...}}` (columnar format): each member is a column of N values; `"inputs"`
//!   holding a list is read like `instances`, a scalar as one row;
//! - `{"examples": [...], "context": {...}}` (`:classify` / `:regress`): each example is a row,
//!   and the context's features are added to every row.
//!
//! Response: `{"predictions": [...]}` (row format), `{"outputs": ...}` (columnar; an object of
//! named output tensors is read row by row), `{"results": [...]}` / `{"result": [...]}`
//! (`:classify` lists of `[label, score]`, `:regress` numbers). Each row's output is read as
//! described in the `predict` rules of the [`payload`](super) module: numbers, labels, score
//! lists, objects with named outputs.

use crate::record::{Prediction, Row};

use super::json::Json;
use super::predict::predictions_from_value;
use super::rows::{cell, object_row, rows_from_columns, rows_from_value, ScalarList, Table};
use super::{oip_v2, Context, PayloadError, Side};

/// Whether a request body is in this format.
pub(crate) fn looks_like(req: &Json<'_>) -> bool {
    (req.get("instances").is_some() || req.get("inputs").is_some() || req.get("examples").is_some())
        && !oip_v2::looks_like(req)
}

/// The rows of a request body.
pub(crate) fn request_rows(ctx: &Context<'_>, req: &Json<'_>) -> Result<Vec<Row>, PayloadError> {
    if let Some(instances) = req.get("instances") {
        return instances_rows(ctx, instances);
    }
    if let Some(inputs) = req.get("inputs") {
        return inputs_rows(ctx, inputs);
    }
    if let Some(examples) = req.get("examples") {
        return examples_rows(examples, req.get("context"));
    }
    Err(PayloadError::UnrecognizedFormat {
        side: Side::Request,
        detail: format!(
            "kserve_v1 expects an object with `instances`, `inputs` or `examples`, got {}",
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

/// `instances`: a list of rows (objects, lists, scalars).
pub(crate) fn instances_rows(ctx: &Context<'_>, v: &Json<'_>) -> Result<Vec<Row>, PayloadError> {
    rows_from_value(
        Side::Request,
        v,
        &mut ctx.fallback_names(),
        ScalarList::RowEach,
    )
}

/// `inputs`: columns by name, or a list of rows.
pub(crate) fn inputs_rows(ctx: &Context<'_>, v: &Json<'_>) -> Result<Vec<Row>, PayloadError> {
    match v {
        Json::Obj(members) => rows_from_columns(Side::Request, members),
        other => instances_rows(ctx, other),
    }
}

fn examples_rows(
    examples: &Json<'_>,
    context: Option<&Json<'_>>,
) -> Result<Vec<Row>, PayloadError> {
    let items = examples
        .as_array()
        .ok_or_else(|| PayloadError::UnrecognizedFormat {
            side: Side::Request,
            detail: format!("`examples` is a {}, not a list of objects", examples.kind()),
        })?;
    let shared: Vec<(String, crate::record::FeatureValue)> = context
        .and_then(Json::as_object)
        .map(|members| {
            members
                .iter()
                .filter_map(|(k, v)| cell(v).map(|fv| (k.to_string(), fv)))
                .collect()
        })
        .unwrap_or_default();
    let mut table = Table::with_expected_rows(Side::Request, items.len())?;
    for (i, example) in items.iter().enumerate() {
        let members = example
            .as_object()
            .ok_or_else(|| PayloadError::UnrecognizedFormat {
                side: Side::Request,
                detail: format!("examples[{i}] is a {}, not an object", example.kind()),
            })?;
        table.check_width(members.len() + shared.len())?;
        let mut row = object_row(&table, members)?;
        row.values.extend(shared.iter().cloned());
        table.push(row)?;
    }
    Ok(table.into_rows())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, num, parse_fixture_pair, parse_with, text, NO_RESPONSE};
    use super::super::{PayloadConfig, PayloadFormat};
    use crate::record::FeatureValue;

    fn cfg() -> PayloadConfig {
        PayloadConfig {
            format: PayloadFormat::KserveV1,
            ..PayloadConfig::default()
        }
    }

    #[test]
    fn kserve_sklearn_iris_rows_and_class_predictions() {
        // KServe "first InferenceService" example: two iris rows, predicted class 1 for both.
        let baseline: Vec<String> = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
            .map(String::from)
            .to_vec();
        let parsed = parse_fixture_pair(
            &cfg(),
            "/v1/models/sklearn-iris:predict",
            "kserve_v1_iris",
            &baseline,
        )
        .unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].get("sepal_length"), Some(&num(6.8)));
        assert_eq!(parsed.rows[1].get("petal_width"), Some(&num(1.6)));
        let values: Vec<_> = parsed.predictions.iter().map(|p| p.value.clone()).collect();
        assert_eq!(values, [num(1.0), num(1.0)]);
        assert!(parsed.predictions.iter().all(|p| p.probabilities.is_none()));
    }

    #[test]
    fn tf_half_plus_three_scalar_instances() {
        // TF Serving REST example: {"instances": [1.0, 2.0, 5.0]} → [3.5, 4.0, 5.5].
        let parsed = parse_fixture_pair(
            &cfg(),
            "/v1/models/half_plus_three:predict",
            "tf_half_plus_three",
            &[],
        )
        .unwrap();
        let xs: Vec<_> = parsed.rows.iter().map(|r| r.values.clone()).collect();
        assert_eq!(
            xs,
            [
                vec![("f0".to_string(), num(1.0))],
                vec![("f0".to_string(), num(2.0))],
                vec![("f0".to_string(), num(5.0))]
            ]
        );
        let ys: Vec<_> = parsed.predictions.iter().map(|p| p.value.clone()).collect();
        assert_eq!(ys, [num(3.5), num(4.0), num(5.5)]);
    }

    #[test]
    fn tf_row_format_keeps_scalars_and_skips_tensors() {
        // TF Serving docs, row format with named inputs (the docs' stray `]` removed).
        let parsed = parse_with(
            &cfg(),
            "/v1/models/m:predict",
            &fixture("tf_row_format_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(
            parsed.rows[0].values,
            vec![("tag".to_string(), text("foo"))]
        );
        assert_eq!(
            parsed.rows[1].values,
            vec![("tag".to_string(), text("bar"))]
        );
    }

    #[test]
    fn tf_columnar_format_matches_row_format() {
        let row = parse_with(
            &cfg(),
            "/v1/models/m:predict",
            &fixture("tf_row_format_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        let col = parse_with(
            &cfg(),
            "/v1/models/m:predict",
            &fixture("tf_columnar_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        assert_eq!(row.rows, col.rows);
    }

    #[test]
    fn tf_columnar_response_of_named_outputs() {
        let req = br#"{"inputs": {"x": [1, 2]}}"#;
        let resp = br#"{"outputs": {"classes": [["a", "b"], ["a", "b"]], "scores": [[0.9, 0.1], [0.3, 0.7]]}}"#;
        let parsed = parse_with(&cfg(), "/v1/models/m:predict", req, Some(resp), &[]).unwrap();
        assert_eq!(parsed.predictions[0].value, text("a"));
        assert_eq!(parsed.predictions[1].value, text("b"));
        assert_eq!(parsed.predictions[1].probabilities, Some(vec![0.3, 0.7]));
    }

    #[test]
    fn tf_regress_and_classify() {
        // TF Serving docs: :regress with examples → {"results": [3.5, 4.0]}.
        let parsed = parse_fixture_pair(
            &cfg(),
            "/v1/models/half_plus_three:regress",
            "tf_regress",
            &[],
        )
        .unwrap();
        assert_eq!(parsed.rows[1].get("x"), Some(&num(2.0)));
        let ys: Vec<_> = parsed.predictions.iter().map(|p| p.value.clone()).collect();
        assert_eq!(ys, [num(3.5), num(4.0)]);
        // :classify: per example a list of [label, score]; context features join every row.
        let parsed =
            parse_fixture_pair(&cfg(), "/v1/models/m:classify", "tf_classify", &[]).unwrap();
        assert_eq!(parsed.rows[0].get("caption"), Some(&text("seaside")));
        assert_eq!(parsed.rows[0].get("region"), Some(&text("eu")));
        assert_eq!(parsed.rows[1].get("region"), Some(&text("eu")));
        assert_eq!(
            parsed.rows[0].get("image"),
            None,
            "binary {{\"b64\"}} values are not features"
        );
        assert_eq!(parsed.predictions[0].value, text("beach"));
        assert_eq!(parsed.predictions[0].probabilities, Some(vec![0.8, 0.2]));
        assert_eq!(parsed.predictions[1].value, text("mountain"));
    }

    #[test]
    fn probabilities_per_instance() {
        let req = br#"{"instances": [[1, 2], [3, 4]]}"#;
        let resp = br#"{"predictions": [[0.1, 0.9], [0.6, 0.4]]}"#;
        let parsed = parse_with(&cfg(), "/", req, Some(resp), &["a".into(), "b".into()]).unwrap();
        assert_eq!(parsed.rows[1].get("b"), Some(&num(4.0)));
        assert_eq!(parsed.predictions[0].value, num(1.0));
        assert_eq!(parsed.predictions[0].probabilities, Some(vec![0.1, 0.9]));
        assert_eq!(parsed.predictions[1].value, num(0.0));
    }

    #[test]
    fn instances_as_objects_and_missing_values() {
        let req = br#"{"instances": [{"age": 31, "city": "Oslo", "vip": true}, {"age": null, "city": "Rome", "vip": false}]}"#;
        let parsed = parse_with(
            &cfg(),
            "/",
            req,
            Some(br#"{"predictions": ["yes", "no"]}"#),
            &[],
        )
        .unwrap();
        assert_eq!(
            parsed.rows[1].values,
            vec![
                ("age".to_string(), FeatureValue::Missing),
                ("city".to_string(), text("Rome")),
                ("vip".to_string(), text("false"))
            ]
        );
        assert_eq!(parsed.predictions[1].value, text("no"));
    }

    #[test]
    fn error_bodies_and_wrong_shapes() {
        let err =
            parse_with(&cfg(), "/", br#"{"signature_name": "x"}"#, NO_RESPONSE, &[]).unwrap_err();
        assert_eq!(err.reason(), "unrecognized_format");
        assert!(err.to_string().contains("signature_name"), "{err}");
        let err = parse_with(
            &cfg(),
            "/",
            br#"{"instances": [[1], [2]]}"#,
            Some(br#"{"error": "Servable not found"}"#),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "unrecognized_format");
        let err = parse_with(
            &cfg(),
            "/",
            br#"{"instances": [[1], [2]]}"#,
            Some(br#"{"predictions": [1]}"#),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "prediction_count_mismatch");
        let err = parse_with(
            &cfg(),
            "/",
            br#"{"instances": [[[1, 2], [3, 4]]]}"#,
            NO_RESPONSE,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "not_tabular");
        let err = parse_with(
            &cfg(),
            "/",
            br#"{"inputs": {"a": [1, 2], "b": [1]}}"#,
            NO_RESPONSE,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "shape_mismatch");
    }
}
