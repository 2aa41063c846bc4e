//! KServe v2 / Open Inference Protocol (MLServer, Triton, KServe runtimes):
//! `POST /v2/models/{m}[/versions/{v}]/infer`.
//!
//! Every tensor (`inputs[i]`, `outputs[i]`) has `name`, `shape`, `datatype` and `data`; data
//! may be flat (row-major) or nested, and a lone string is one `BYTES` element. The number of
//! elements must equal the product of the shape, except that a `BYTES` tensor may carry its
//! byte length as the last dimension (`shape [2, 11]` for two strings, as MLServer's string
//! codec does). Dimensions must be non-negative integers.
//!
//! Request rows:
//! - **one `[N, F]` tensor** (a lone input of rank ≥ 2, trailing 1s ignored, unless the
//!   request says `"parameters": {"content_type": "pd"}`): N rows of F columns named by
//!   `payload.feature_names`, else the baseline, else — for F = 1 — the input's name, else
//!   `f0…`. Other shapes of rank > 2 (images) are [`PayloadError::NotTabular`].
//! - **one input per feature** (several inputs, a lone input of shape `[N]`, or `pd`): each
//!   input of shape `[N]` or `[N, 1]` is the column named after it. All inputs must share N.
//!   Inputs with more than one value per row (`[N, k]`, k > 1) are not features and are
//!   skipped, as a pandas column of lists would be.
//! - `BYTES` data are text values; `BOOL` are the text `true` / `false`.
//!
//! Response predictions: the prediction output is the first output named `predict`,
//! `prediction(s)`, `output_label`, `label(s)`, `class(es)`, `output-0`, `output_0`, `output0`,
//! `output` or `y`, else the first output. Its first dimension must equal the request's row
//! count (a lone row may get a `[C]` output). Per row, a single element (`[N]`, `[N, 1]`) is
//! the value; `C ≥ 2` numbers are class scores — the value is the index of the highest, and
//! they are the probabilities when they form a distribution (see the `predict` rules). A
//! separate output named `predict_proba`, `probabilities`, `probability`, `probs`, `proba`,
//! `output_probability` or `scores` with `[N, C]` scores supplies the probabilities of a
//! single-valued prediction output (MLServer's scikit-learn runtime with both `predict` and
//! `predict_proba` requested).

use crate::record::{FeatureValue, Prediction, Row};

use super::json::Json;
use super::predict::{is_distribution, scores_prediction};
use super::rows::{cell, check_columns, check_rows, ColumnNames, Table};
use super::tensor::Tensor;
use super::{Context, PayloadError, Side};

pub(crate) const VALUE_OUTPUTS: [&str; 14] = [
    "predict",
    "prediction",
    "predictions",
    "output_label",
    "label",
    "labels",
    "class",
    "classes",
    "output-0",
    "output_0",
    "output0",
    "output",
    "y",
    "y_pred",
];

pub(crate) const PROBABILITY_OUTPUTS: [&str; 7] = [
    "predict_proba",
    "probabilities",
    "probability",
    "probs",
    "proba",
    "output_probability",
    "scores",
];

/// Whether a request body is in this format: `inputs` is a list of tensor objects.
pub(crate) fn looks_like(req: &Json<'_>) -> bool {
    match req.get("inputs") {
        Some(Json::Arr(inputs)) => {
            !inputs.is_empty()
                && inputs.iter().all(|i| {
                    i.get("name").is_some()
                        && (i.get("data").is_some()
                            || i.get("shape").is_some()
                            || i.get("datatype").is_some())
                })
        }
        _ => false,
    }
}

/// One decoded input or output: its name and the shared [`Tensor`].
struct Named<'j, 'a> {
    name: &'j str,
    tensor: Tensor<'j, 'a>,
}

impl<'j, 'a> Named<'j, 'a> {
    /// Decodes `list[index]` (`list` is `inputs` or `outputs`). Error messages are built
    /// only when there is an error.
    fn decode(side: Side, t: &'j Json<'a>, list: &str, index: usize) -> Result<Self, PayloadError> {
        let unrecognized = |detail: String| PayloadError::UnrecognizedFormat { side, detail };
        if t.as_object().is_none() {
            return Err(unrecognized(format!(
                "{list}[{index}] is a {}, not a tensor object",
                t.kind()
            )));
        }
        let name = t
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| unrecognized(format!("{list}[{index}] has no string `name`")))?;
        let what = What { list, index, name };
        let shape = t
            .get("shape")
            .ok_or_else(|| unrecognized(format!("{what} has no `shape`")))?;
        let data = t
            .get("data")
            .ok_or_else(|| unrecognized(format!("{what} has no `data`")))?;
        let bytes = t.get("datatype").and_then(Json::as_str) == Some("BYTES");
        let tensor = Tensor::decode(side, &what, shape, data, "data", bytes)?;
        Ok(Named { name, tensor })
    }
}

/// How messages name a tensor: ``inputs[2] `age` ``.
struct What<'s> {
    list: &'s str,
    index: usize,
    name: &'s str,
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}] `{}`", self.list, self.index, self.name)
    }
}

/// The rows of a request body.
pub(crate) fn request_rows(ctx: &Context<'_>, req: &Json<'_>) -> Result<Vec<Row>, PayloadError> {
    let side = Side::Request;
    let inputs = match req.get("inputs") {
        Some(Json::Arr(inputs)) if !inputs.is_empty() => inputs,
        _ => {
            return Err(PayloadError::UnrecognizedFormat {
                side,
                detail: format!(
                    "oip_v2 expects a non-empty `inputs` list, got {}",
                    req.describe()
                ),
            })
        }
    };
    check_columns(side, inputs.len())?;
    let tensors = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| Named::decode(side, t, "inputs", i))
        .collect::<Result<Vec<_>, _>>()?;
    let pandas = req
        .get("parameters")
        .and_then(|p| p.get("content_type"))
        .and_then(Json::as_str)
        == Some("pd");

    match tensors.as_slice() {
        [only] if !pandas && only.tensor.dims.len() >= 2 => matrix_rows(ctx, only),
        _ => column_rows(&tensors),
    }
}

/// One `[N, F]` tensor: N rows of F positional columns.
fn matrix_rows(ctx: &Context<'_>, t: &Named<'_, '_>) -> Result<Vec<Row>, PayloadError> {
    let side = Side::Request;
    let (n, f) = t.tensor.matrix().ok_or_else(|| PayloadError::NotTabular {
        side,
        detail: format!("input `{}` has shape {:?}", t.name, t.tensor.dims),
    })?;
    let mut names = ctx.fallback_names();
    if f == 1 && names.listed(0).is_none() {
        names = ColumnNames::explicit(vec![t.name]);
    }
    let mut table = Table::with_expected_rows(side, n)?;
    table.check_width(f)?;
    for r in 0..n {
        let mut values = Vec::with_capacity(f);
        for (c, item) in t.tensor.row(r, f).iter().enumerate() {
            let fv = cell(item).ok_or_else(|| PayloadError::NotTabular {
                side,
                detail: format!("input `{}` holds a {} element", t.name, item.kind()),
            })?;
            values.push((names.name(c), fv));
        }
        table.push(Row { values })?;
    }
    Ok(table.into_rows())
}

/// One input per feature.
fn column_rows(tensors: &[Named<'_, '_>]) -> Result<Vec<Row>, PayloadError> {
    let side = Side::Request;
    let n = tensors.first().map_or(0, |t| t.tensor.rows());
    if let Some(other) = tensors.iter().find(|t| t.tensor.rows() != n) {
        return Err(PayloadError::ShapeMismatch {
            side,
            detail: format!(
                "input `{}` has {} rows but input `{}` has {n}",
                other.name,
                other.tensor.rows(),
                tensors[0].name
            ),
        });
    }
    let columns: Vec<&Named<'_, '_>> = tensors.iter().filter(|t| t.tensor.width() == 1).collect();
    let mut table = Table::with_expected_rows(side, n)?;
    table.check_width(columns.len())?;
    for r in 0..n {
        let mut values = Vec::with_capacity(columns.len());
        for t in &columns {
            if let Some(fv) = t.tensor.data.get(r).and_then(|item| cell(item)) {
                values.push((t.name.to_owned(), fv));
            }
        }
        table.push(Row { values })?;
    }
    Ok(table.into_rows())
}

/// The predictions of a response body for `rows` request rows.
pub(crate) fn response_predictions(
    resp: &Json<'_>,
    rows: usize,
) -> Result<Vec<Prediction>, PayloadError> {
    let side = Side::Response;
    let outputs = match resp.get("outputs") {
        Some(Json::Arr(outputs)) if !outputs.is_empty() => outputs,
        _ => {
            return Err(PayloadError::UnrecognizedFormat {
                side,
                detail: format!(
                    "oip_v2 expects a non-empty `outputs` list, got {}",
                    resp.describe()
                ),
            })
        }
    };
    check_rows(side, rows)?;
    let named = |names: &[&str]| {
        names.iter().find_map(|want| {
            outputs
                .iter()
                .position(|o| o.get("name").and_then(Json::as_str) == Some(want))
        })
    };
    let primary_index = named(&VALUE_OUTPUTS).unwrap_or(0);
    let proba_index = named(&PROBABILITY_OUTPUTS).filter(|&i| i != primary_index);

    let primary = Named::decode(side, &outputs[primary_index], "outputs", primary_index)?;
    let (n, width) = primary.tensor.per_row(rows)?;
    let probabilities = match proba_index {
        Some(i) if width == 1 => probability_rows(&outputs[i], i, rows),
        _ => None,
    };

    let mut predictions = Vec::with_capacity(n);
    for r in 0..n {
        let prediction = match primary.tensor.row(r, width) {
            [] => Prediction {
                value: FeatureValue::Missing,
                probabilities: None,
            },
            [one] => Prediction {
                value: cell(one).unwrap_or(FeatureValue::Missing),
                probabilities: probabilities
                    .as_ref()
                    .and_then(|p| p.get(r).cloned())
                    .filter(|p| is_distribution(p)),
            },
            many => {
                let scores = many
                    .iter()
                    .map(|j| j.as_f64())
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(|| PayloadError::UnrecognizedFormat {
                        side,
                        detail: format!(
                            "output `{}` has {width} non-numeric values per row",
                            primary.name
                        ),
                    })?;
                scores_prediction(scores, None)
            }
        };
        predictions.push(prediction);
    }
    Ok(predictions)
}

/// Per-row score vectors of a probability output, when it is well formed; a malformed
/// optional output is ignored rather than failing the predictions.
fn probability_rows(t: &Json<'_>, index: usize, rows: usize) -> Option<Vec<Vec<f64>>> {
    let t = Named::decode(Side::Response, t, "outputs", index)
        .ok()?
        .tensor;
    let width = t.width();
    if t.rows() != rows || width < 2 {
        return None;
    }
    t.data
        .chunks(width)
        .map(|row| row.iter().map(|j| j.as_f64()).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, num, parse_fixture_pair, parse_with, text, NO_RESPONSE};
    use super::super::{PayloadConfig, PayloadFormat};
    use crate::record::FeatureValue;

    fn cfg() -> PayloadConfig {
        PayloadConfig {
            format: PayloadFormat::OipV2,
            ..PayloadConfig::default()
        }
    }

    fn iris() -> Vec<String> {
        ["sepal_length", "sepal_width", "petal_length", "petal_width"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn kserve_sklearn_v2_iris_nested_data_and_null_parameters() {
        // KServe sklearn V2 example: input-0 [2, 4] FP32 nested; response output-0 [2] INT32
        // with `"parameters": null` and `"model_version": null`.
        let parsed = parse_fixture_pair(
            &cfg(),
            "/v2/models/sklearn-v2-iris/infer",
            "oip_v2_kserve_iris",
            &iris(),
        )
        .unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].get("sepal_length"), Some(&num(6.8)));
        assert_eq!(parsed.rows[1].get("petal_length"), Some(&num(4.5)));
        let values: Vec<_> = parsed.predictions.iter().map(|p| p.value.clone()).collect();
        assert_eq!(values, [num(1.0), num(1.0)]);
    }

    #[test]
    fn feature_names_config_beats_baseline_and_positions_fill_the_rest() {
        let mut c = cfg();
        c.feature_names = vec!["a".into(), "b".into()];
        let parsed = parse_with(
            &c,
            "/",
            &fixture("oip_v2_kserve_iris_request.json"),
            NO_RESPONSE,
            &iris(),
        )
        .unwrap();
        let names: Vec<&str> = parsed.rows[0]
            .values
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "f2", "f3"]);
        let parsed = parse_with(
            &cfg(),
            "/",
            &fixture("oip_v2_kserve_iris_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        let names: Vec<&str> = parsed.rows[0]
            .values
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["f0", "f1", "f2", "f3"]);
    }

    #[test]
    fn spec_example_is_rejected_for_its_inconsistent_shapes() {
        // The OIP spec's own example declares input1 with shape [3] but one data value.
        let err = parse_with(
            &cfg(),
            "/v2/models/mymodel/infer",
            &fixture("oip_v2_spec_example_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap_err();
        assert_eq!(err.reason(), "shape_mismatch");
        assert!(err.to_string().contains("input1"), "{err}");
    }

    #[test]
    fn spec_example_response_scores_without_a_distribution() {
        // The spec's response: output0 [3, 2] FP32 [1.0, 1.1, 2.0, 2.1, 3.0, 3.1] for 3 rows.
        let req =
            br#"{"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]}"#;
        let parsed = parse_with(
            &cfg(),
            "/",
            req,
            Some(&fixture("oip_v2_spec_example_response.json")),
            &[],
        )
        .unwrap();
        assert_eq!(parsed.rows[2].values, vec![("x".to_string(), num(3.0))]);
        for p in &parsed.predictions {
            assert_eq!(p.value, num(1.0));
            assert_eq!(p.probabilities, None);
        }
    }

    #[test]
    fn mlserver_mlflow_one_input_per_column() {
        // MLServer MLflow example: eleven [1] FP32 inputs named after the wine columns.
        let parsed = parse_with(
            &cfg(),
            "/v2/models/wine-classifier/infer",
            &fixture("oip_v2_mlserver_wine_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        assert_eq!(parsed.rows.len(), 1);
        let row = &parsed.rows[0];
        assert_eq!(row.values.len(), 11);
        assert_eq!(row.values[0], ("fixed acidity".to_string(), num(7.4)));
        assert_eq!(row.get("citric acid"), Some(&num(0.0)));
        assert_eq!(row.get("alcohol"), Some(&num(9.4)));
    }

    #[test]
    fn mlserver_pandas_request_with_bytes_shape() {
        // MLServer content-type example: `pd` request with a [2, 2] numpy input (a column of
        // lists, skipped) and a [2, 11] BYTES input holding two strings.
        let parsed = parse_with(
            &cfg(),
            "/",
            &fixture("oip_v2_mlserver_pd_request.json"),
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(
            parsed.rows[0].values,
            vec![("parameters-str".to_string(), text("hello world 😁"))]
        );
        assert_eq!(
            parsed.rows[1].values,
            vec![("parameters-str".to_string(), text("bye bye 😁"))]
        );
    }

    #[test]
    fn mlserver_single_string_data() {
        let req = r#"{"inputs": [{"name": "metadata-str", "datatype": "BYTES", "shape": [11], "data": "hello world 😁"}]}"#;
        let parsed = parse_with(&cfg(), "/", req.as_bytes(), NO_RESPONSE, &[]).unwrap();
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(
            parsed.rows[0].values,
            vec![("metadata-str".to_string(), text("hello world 😁"))]
        );
    }

    #[test]
    fn mlserver_sklearn_predict_and_predict_proba() {
        // MLServer scikit-learn runtime: request asks for `predict_proba`; the response
        // carries both outputs.
        let parsed = parse_fixture_pair(
            &cfg(),
            "/v2/models/iris/infer",
            "oip_v2_mlserver_proba",
            &[],
        )
        .unwrap();
        assert_eq!(
            parsed.rows[1].values,
            vec![("f0".to_string(), num(3.0)), ("f1".to_string(), num(4.0))]
        );
        assert_eq!(parsed.predictions[0].value, num(2.0));
        assert_eq!(
            parsed.predictions[0].probabilities,
            Some(vec![0.1, 0.2, 0.7])
        );
        assert_eq!(parsed.predictions[1].value, num(0.0));
        assert_eq!(
            parsed.predictions[1].probabilities,
            Some(vec![0.8, 0.15, 0.05])
        );
    }

    #[test]
    fn predict_proba_alone_gives_argmax_and_probabilities() {
        let req = br#"{"inputs": [{"name": "predict", "shape": [1, 3], "datatype": "FP32", "data": [[1, 2, 3]]}]}"#;
        let resp = br#"{"model_name": "m", "outputs": [{"name": "predict_proba", "shape": [1, 2], "datatype": "FP64", "data": [0.25, 0.75]}]}"#;
        let parsed = parse_with(&cfg(), "/", req, Some(resp), &[]).unwrap();
        assert_eq!(parsed.predictions[0].value, num(1.0));
        assert_eq!(parsed.predictions[0].probabilities, Some(vec![0.25, 0.75]));
    }

    #[test]
    fn bytes_outputs_are_labels_and_single_rows_may_get_a_vector() {
        let req = br#"{"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["good", "bad"]}]}"#;
        let resp = br#"{"outputs": [{"name": "label", "shape": [2, 1], "datatype": "BYTES", "data": ["pos", "neg"]}]}"#;
        let parsed = parse_with(&cfg(), "/", req, Some(resp), &[]).unwrap();
        assert_eq!(
            parsed.rows[1].values,
            vec![("text".to_string(), text("bad"))]
        );
        assert_eq!(parsed.predictions[1].value, text("neg"));
        let req = br#"{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["good"]}]}"#;
        let resp = br#"{"outputs": [{"name": "output0", "shape": [3], "datatype": "FP32", "data": [0.2, 0.5, 0.3]}]}"#;
        let parsed = parse_with(&cfg(), "/", req, Some(resp), &[]).unwrap();
        assert_eq!(parsed.predictions[0].value, num(1.0));
        assert_eq!(
            parsed.predictions[0].probabilities,
            Some(vec![0.2, 0.5, 0.3])
        );
    }

    #[test]
    fn single_column_matrix_takes_the_input_name_without_other_names() {
        let req = br#"{"inputs": [{"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [30, 40], "parameters": {"content_type": "np"}}], "parameters": null}"#;
        let parsed = parse_with(&cfg(), "/", req, NO_RESPONSE, &[]).unwrap();
        assert_eq!(parsed.rows[1].values, vec![("age".to_string(), num(40.0))]);
        let parsed = parse_with(&cfg(), "/", req, NO_RESPONSE, &["years".into()]).unwrap();
        assert_eq!(
            parsed.rows[1].values,
            vec![("years".to_string(), num(40.0))]
        );
    }

    #[test]
    fn bool_inputs_and_missing_values() {
        let req = br#"{"inputs": [{"name": "flag", "shape": [3], "datatype": "BOOL", "data": [true, false, null]}]}"#;
        let parsed = parse_with(&cfg(), "/", req, NO_RESPONSE, &[]).unwrap();
        let flags: Vec<_> = parsed.rows.iter().map(|r| r.values[0].1.clone()).collect();
        assert_eq!(flags, [text("true"), text("false"), FeatureValue::Missing]);
    }

    #[test]
    fn malformed_tensors() {
        let cases: [(&str, &str); 8] = [
            (
                r#"{"inputs": [{"name": "x", "shape": [-1, 2], "datatype": "FP32", "data": [1, 2]}]}"#,
                "shape_mismatch",
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}"#,
                "shape_mismatch",
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [1, 28, 28], "datatype": "FP32", "data": []}]}"#,
                "shape_mismatch",
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}"#,
                "not_tabular",
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [2], "data": [1, 2]}, {"name": "y", "shape": [3], "data": [1, 2, 3]}]}"#,
                "shape_mismatch",
            ),
            (
                r#"{"inputs": [{"name": "x", "shape": [4294967296, 4294967296], "data": [1]}]}"#,
                "too_many_values",
            ),
            (
                r#"{"inputs": [{"name": "x", "data": [1]}]}"#,
                "unrecognized_format",
            ),
            (r#"{"inputs": []}"#, "unrecognized_format"),
        ];
        for (body, reason) in cases {
            let err = parse_with(&cfg(), "/", body.as_bytes(), NO_RESPONSE, &[]).unwrap_err();
            assert_eq!(err.reason(), reason, "{body}: {err}");
        }
        let req =
            br#"{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}]}"#;
        let resp = br#"{"outputs": [{"name": "predict", "shape": [3], "datatype": "INT64", "data": [1, 2, 3]}]}"#;
        let err = parse_with(&cfg(), "/", req, Some(resp), &[]).unwrap_err();
        assert_eq!(err.reason(), "prediction_count_mismatch");
        let err = parse_with(&cfg(), "/", req, Some(br#"{"error": "boom"}"#), &[]).unwrap_err();
        assert_eq!(err.reason(), "unrecognized_format");
    }
}
