//! Turning response values into [`Prediction`]s, shared by the protocols whose responses
//! are free-form JSON (KServe v1 / TF Serving, MLflow, records, pointer, Seldon `jsonData`).
//!
//! One prediction element (one row's output) is read as:
//! - a scalar: the value (a number, a label, `null` = missing);
//! - a list of one element: that element (`[[0.73]]` rows of a sigmoid model);
//! - a list of ≥ 2 numbers: class scores; the value is the index of the highest score, and
//!   the list is kept as `probabilities` only when it looks like a distribution (every
//!   score in `[0, 1]`, summing to 1 within [`PROBABILITY_SUM_TOLERANCE`]) — logits and
//!   multi-output regressions are not probabilities;
//! - a list of `{"label", "score"}` objects (Hugging Face pipelines) or of `[label, score]`
//!   pairs (TF Serving `:classify`): a distribution over those labels, sorted by label so the
//!   class order is stable from row to row; the value is the label with the highest score;
//! - an object: the first of the value keys (`prediction`, `predicted_label`, `label`,
//!   `class`, `classes`, `output`, `value`, …) is the value, the first of the probability
//!   keys (`probabilities`, `probability`, `probs`, `proba`, `predict_proba`, `scores`,
//!   `score`) the probabilities; a scalar `probability` / `proba` `p` next to a value is read
//!   as a binary model's P(positive) and becomes `[1 - p, p]`, while a scalar `score` next to a
//!   label is that label's confidence and gives no probabilities;
//!   `{"classes": [...], "scores": [...]}` (TF estimators) picks the best class; an object of
//!   ≥ 2 numbers with no known key (`{"0": 0.2, "1": 0.8}`, a pandas row of `predict_proba`)
//!   is a distribution keyed by label; any other single-member object is unwrapped.
//!
//! Labels that arrive as text where JSON forces text (object keys, TF class strings) are
//! numbers when they parse as numbers, so they compare equal to numeric ground truth.

use std::borrow::Cow;

use crate::record::{FeatureValue, Prediction};

use super::json::Json;
use super::rows::{label_value, scalar};
use super::{PayloadError, Side};

/// How far from 1 the sum of a score vector may be for it to count as probabilities.
/// Generous enough for FP32 round-off and for servers that round scores to 2 decimals.
pub(crate) const PROBABILITY_SUM_TOLERANCE: f64 = 0.01;

const VALUE_KEYS: [&str; 14] = [
    "prediction",
    "predictions",
    "predicted",
    "predicted_label",
    "predicted_class",
    "label",
    "labels",
    "class",
    "classes",
    "class_ids",
    "output",
    "value",
    "y_pred",
    "result",
];

const PROBABILITY_KEYS: [&str; 7] = [
    "probabilities",
    "probability",
    "probs",
    "proba",
    "predict_proba",
    "scores",
    "score",
];

/// Keys of a response object that hold the per-row predictions.
const CONTAINER_KEYS: [&str; 4] = ["predictions", "outputs", "results", "result"];

fn unrecognized(detail: impl Into<String>) -> PayloadError {
    PayloadError::UnrecognizedFormat {
        side: Side::Response,
        detail: detail.into(),
    }
}

/// Predictions for `rows` input rows from a free-form response value:
/// - an array with one element per row;
/// - for a single row, any other array is that row's output (e.g. its probabilities);
/// - an object with `predictions`, `outputs`, `results` or `result` holding the above
///   (TF Serving's columnar `outputs` object of named tensors is read per row);
/// - an object of equally long arrays (a column-oriented table) is read per row;
/// - for a single row, any other object or scalar is that row's output.
pub(crate) fn predictions_from_value(
    v: &Json<'_>,
    rows: usize,
) -> Result<Vec<Prediction>, PayloadError> {
    match v {
        Json::Arr(items) if items.len() == rows => items.iter().map(prediction).collect(),
        Json::Arr(_) if rows == 1 => Ok(vec![prediction(v)?]),
        Json::Arr(items) => Err(PayloadError::PredictionCountMismatch {
            rows,
            predictions: items.len(),
        }),
        Json::Obj(members) => {
            if let Some(inner) = CONTAINER_KEYS.iter().find_map(|k| v.get(k)) {
                return predictions_from_value(inner, rows);
            }
            if v.get("error").is_some() {
                return Err(unrecognized("the response carries an `error` member"));
            }
            if let Some(per_row) = columns_to_rows(members, rows) {
                return per_row.iter().map(prediction).collect();
            }
            if rows == 1 {
                return Ok(vec![prediction(v)?]);
            }
            Err(unrecognized(format!(
                "a response object without `predictions` cannot hold {rows} predictions"
            )))
        }
        _ if rows == 1 => Ok(vec![prediction(v)?]),
        _ => Err(PayloadError::PredictionCountMismatch {
            rows,
            predictions: 1,
        }),
    }
}

/// `{"a": [a0, a1], "b": [b0, b1]}` → `[{"a": a0, "b": b0}, {"a": a1, "b": b1}]` when every
/// member is an array of `rows` items.
fn columns_to_rows<'a>(members: &[(Cow<'a, str>, Json<'a>)], rows: usize) -> Option<Vec<Json<'a>>> {
    if members.is_empty()
        || !members
            .iter()
            .all(|(_, c)| c.as_array().is_some_and(|a| a.len() == rows))
    {
        return None;
    }
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        let mut row = Vec::with_capacity(members.len());
        for (k, c) in members {
            let item = c
                .as_array()
                .and_then(|a| a.get(i))
                .cloned()
                .unwrap_or(Json::Null);
            row.push((k.clone(), item));
        }
        out.push(Json::Obj(row));
    }
    Some(out)
}

/// One row's output; see the module documentation.
pub(crate) fn prediction(v: &Json<'_>) -> Result<Prediction, PayloadError> {
    match v {
        Json::Arr(items) => list_prediction(items),
        Json::Obj(members) => object_prediction(v, members),
        other => Ok(Prediction {
            value: scalar(other).unwrap_or(FeatureValue::Missing),
            probabilities: None,
        }),
    }
}

fn list_prediction(items: &[Json<'_>]) -> Result<Prediction, PayloadError> {
    match items {
        [] => Err(unrecognized("an empty list is not a prediction")),
        [only] => prediction(only),
        _ if items.iter().all(|i| matches!(i, Json::Num(_))) => {
            let scores: Vec<f64> = items.iter().filter_map(Json::as_f64).collect();
            Ok(scores_prediction(scores, None))
        }
        _ => {
            if let Some(pairs) = label_score_pairs(items) {
                return Ok(pairs_prediction(pairs));
            }
            Err(unrecognized(format!(
                "a list of {} items that are not all numbers is not one prediction",
                items.len()
            )))
        }
    }
}

/// `[{"label": l, "score": s}, ...]` or `[[l, s], ...]`.
fn label_score_pairs<'j>(items: &'j [Json<'_>]) -> Option<Vec<(&'j Json<'j>, f64)>> {
    items
        .iter()
        .map(|item| match item {
            Json::Obj(_) => Some((item.get("label")?, item.get("score")?.as_f64()?)),
            Json::Arr(pair) => match pair.as_slice() {
                [label, score] if label.is_scalar() => Some((label, score.as_f64()?)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn pairs_prediction(mut pairs: Vec<(&Json<'_>, f64)>) -> Prediction {
    // Numbers before text, numbers numerically, text lexicographically.
    pairs.sort_by(|(a, _), (b, _)| match (a, b) {
        (Json::Str(x), Json::Str(y)) => x.cmp(y),
        (Json::Str(_), _) => std::cmp::Ordering::Greater,
        (_, Json::Str(_)) => std::cmp::Ordering::Less,
        (x, y) => x
            .as_f64()
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&y.as_f64().unwrap_or(f64::NEG_INFINITY)),
    });
    let best = argmax(pairs.iter().map(|(_, s)| *s));
    let value = best
        .and_then(|i| pairs.get(i))
        .map_or(FeatureValue::Missing, |(label, _)| label_of(label));
    let scores: Vec<f64> = pairs.iter().map(|(_, s)| *s).collect();
    Prediction {
        value,
        probabilities: is_distribution(&scores).then_some(scores),
    }
}

fn label_of(label: &Json<'_>) -> FeatureValue {
    match label {
        Json::Str(s) => label_value(s),
        other => scalar(other).unwrap_or(FeatureValue::Missing),
    }
}

/// A prediction from a score vector: the value is the best label (or index), the vector is
/// kept as probabilities when it is a distribution.
pub(crate) fn scores_prediction(scores: Vec<f64>, labels: Option<&[FeatureValue]>) -> Prediction {
    let best = argmax(scores.iter().copied());
    let value = match (best, labels) {
        (Some(i), Some(labels)) => labels
            .get(i)
            .cloned()
            .unwrap_or(FeatureValue::Number(i as f64)),
        (Some(i), None) => FeatureValue::Number(i as f64),
        (None, _) => FeatureValue::Missing,
    };
    Prediction {
        value,
        probabilities: is_distribution(&scores).then_some(scores),
    }
}

/// Index of the largest finite value (the first on ties).
pub(crate) fn argmax(values: impl Iterator<Item = f64>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in values.enumerate() {
        if v.is_finite() && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// Whether `scores` look like class probabilities.
pub(crate) fn is_distribution(scores: &[f64]) -> bool {
    scores.len() >= 2
        && scores.iter().all(|p| (0.0..=1.0).contains(p))
        && (scores.iter().sum::<f64>() - 1.0).abs() <= PROBABILITY_SUM_TOLERANCE + 1e-9
}

fn numbers(v: &Json<'_>) -> Option<Vec<f64>> {
    match v {
        Json::Arr(items) if !items.is_empty() => items.iter().map(Json::as_f64).collect(),
        _ => None,
    }
}

fn object_prediction(
    obj: &Json<'_>,
    members: &[(Cow<'_, str>, Json<'_>)],
) -> Result<Prediction, PayloadError> {
    let keyed_value = VALUE_KEYS.iter().find_map(|k| obj.get(k).map(|v| (*k, v)));
    let value = keyed_value.map(|(_, v)| v);
    let probs = PROBABILITY_KEYS.iter().find_map(|k| obj.get(k));
    let probabilities: Option<Vec<f64>> = match probs {
        Some(Json::Num(p)) if (0.0..=1.0).contains(p) && value.is_some() => {
            // A lone score next to a label is the confidence of that label, not P(class 1).
            let is_binary_probability =
                obj.get("probability").is_some() || obj.get("proba").is_some();
            is_binary_probability.then(|| vec![1.0 - p, *p])
        }
        Some(p) => numbers(p),
        None => None,
    };

    match value {
        Some(v) => {
            // TF estimators: {"classes": ["a", "b"], "scores": [0.1, 0.9]}.
            if let (Json::Arr(labels), Some(scores)) = (v, probabilities.as_ref()) {
                if labels.len() == scores.len()
                    && labels.len() >= 2
                    && labels.iter().all(Json::is_scalar)
                {
                    let labels: Vec<FeatureValue> = labels.iter().map(label_of).collect();
                    return Ok(scores_prediction(scores.clone(), Some(&labels)));
                }
            }
            let mut p = prediction(v)?;
            // TF Serving sends class labels as strings (`"classes": ["1"]`).
            if let (Some(("classes", _)), FeatureValue::Text(label)) = (keyed_value, &p.value) {
                p.value = label_value(label);
            }
            if let Some(scores) = probabilities {
                if is_distribution(&scores) {
                    p.probabilities = Some(scores);
                }
            }
            Ok(p)
        }
        None => {
            if let Some(scores) = probabilities {
                return Ok(scores_prediction(scores, None));
            }
            if members.len() >= 2 && members.iter().all(|(_, v)| matches!(v, Json::Num(_))) {
                let labels: Vec<FeatureValue> =
                    members.iter().map(|(k, _)| label_value(k)).collect();
                let scores: Vec<f64> = members.iter().filter_map(|(_, v)| v.as_f64()).collect();
                return Ok(scores_prediction(scores, Some(&labels)));
            }
            if let [(_, only)] = members {
                return prediction(only);
            }
            Err(unrecognized(format!(
                "a prediction object with {} members has none of the keys {}",
                members.len(),
                VALUE_KEYS.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Json<'static> {
        let text: &'static str = Box::leak(text.to_owned().into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    fn num(v: f64) -> FeatureValue {
        FeatureValue::Number(v)
    }

    #[test]
    fn scalars_labels_and_single_element_lists() {
        assert_eq!(prediction(&json("3.5")).unwrap().value, num(3.5));
        assert_eq!(
            prediction(&json("\"cat\"")).unwrap().value,
            FeatureValue::Text("cat".into())
        );
        let p = prediction(&json("[0.73]")).unwrap();
        assert_eq!((p.value, p.probabilities), (num(0.73), None));
    }

    #[test]
    fn score_vectors_are_probabilities_only_when_they_form_a_distribution() {
        let p = prediction(&json("[0.1, 0.7, 0.2]")).unwrap();
        assert_eq!(p.value, num(1.0));
        assert_eq!(p.probabilities, Some(vec![0.1, 0.7, 0.2]));
        // Logits: argmax still names the class, but they are not probabilities.
        let p = prediction(&json("[-1.5, 2.0, 0.3]")).unwrap();
        assert_eq!((p.value, p.probabilities), (num(1.0), None));
        // Rounded to two decimals (sum 0.99) still counts.
        let p = prediction(&json("[0.33, 0.33, 0.33]")).unwrap();
        assert_eq!(p.value, num(0.0));
        assert!(p.probabilities.is_some());
    }

    #[test]
    fn keyed_probabilities_from_a_pandas_row() {
        let p = prediction(&json(r#"{"0": 0.2, "1": 0.8}"#)).unwrap();
        assert_eq!(p.value, num(1.0));
        assert_eq!(p.probabilities, Some(vec![0.2, 0.8]));
        let p = prediction(&json(
            r#"{"setosa": 0.9, "versicolor": 0.06, "virginica": 0.04}"#,
        ))
        .unwrap();
        assert_eq!(p.value, FeatureValue::Text("setosa".into()));
    }

    #[test]
    fn objects_with_known_keys() {
        let p = prediction(&json(r#"{"prediction": 1, "probability": 0.83}"#)).unwrap();
        assert_eq!(p.value, num(1.0));
        let probs = p.probabilities.unwrap();
        assert!((probs[0] - 0.17).abs() < 1e-12 && probs[1] == 0.83);
        // A label's confidence score is not a class distribution.
        let p = prediction(&json(r#"{"label": "POSITIVE", "score": 0.99}"#)).unwrap();
        assert_eq!(
            (p.value, p.probabilities),
            (FeatureValue::Text("POSITIVE".into()), None)
        );
        let p = prediction(&json(
            r#"{"classes": ["0", "1", "2"], "scores": [0.1, 0.2, 0.7]}"#,
        ))
        .unwrap();
        assert_eq!(
            (p.value, p.probabilities),
            (num(2.0), Some(vec![0.1, 0.2, 0.7]))
        );
        // A TF canned classifier's row.
        let tf = r#"{"class_ids": [1], "classes": ["1"], "logistic": [0.7], "probabilities": [0.3, 0.7]}"#;
        let p = prediction(&json(tf)).unwrap();
        assert_eq!((p.value, p.probabilities), (num(1.0), Some(vec![0.3, 0.7])));
        let p = prediction(&json(r#"{"probabilities": [0.6, 0.4]}"#)).unwrap();
        assert_eq!(p.value, num(0.0));
        assert_eq!(
            prediction(&json(r#"{"output_0": 7}"#)).unwrap().value,
            num(7.0)
        );
        assert_eq!(
            prediction(&json(r#"{"a": "x", "b": "y"}"#))
                .unwrap_err()
                .reason(),
            "unrecognized_format"
        );
    }

    #[test]
    fn label_score_lists_sort_by_label() {
        let hf =
            json(r#"[{"label": "POSITIVE", "score": 0.9}, {"label": "NEGATIVE", "score": 0.1}]"#);
        let p = prediction(&hf).unwrap();
        assert_eq!(p.value, FeatureValue::Text("POSITIVE".into()));
        assert_eq!(p.probabilities, Some(vec![0.1, 0.9]));
        let tf = json(r#"[["b", 0.25], ["a", 0.75]]"#);
        let p = prediction(&tf).unwrap();
        assert_eq!(
            (p.value, p.probabilities),
            (FeatureValue::Text("a".into()), Some(vec![0.75, 0.25]))
        );
    }

    #[test]
    fn row_counts() {
        assert_eq!(
            predictions_from_value(&json("[1, 2, 3]"), 3).unwrap().len(),
            3
        );
        let single = predictions_from_value(&json("[0.2, 0.8]"), 1).unwrap();
        assert_eq!(single[0].probabilities, Some(vec![0.2, 0.8]));
        assert_eq!(
            predictions_from_value(&json("[1, 2]"), 3).unwrap_err(),
            PayloadError::PredictionCountMismatch {
                rows: 3,
                predictions: 2
            }
        );
        assert_eq!(
            predictions_from_value(&json("4"), 2).unwrap_err(),
            PayloadError::PredictionCountMismatch {
                rows: 2,
                predictions: 1
            }
        );
        let columns = json(r#"{"label": ["a", "b"], "probability": [0.9, 0.2]}"#);
        let p = predictions_from_value(&columns, 2).unwrap();
        assert_eq!(p[1].value, FeatureValue::Text("b".into()));
        assert_eq!(p[1].probabilities, Some(vec![0.8, 0.2]));
        assert!(predictions_from_value(&json("[]"), 0).unwrap().is_empty());
    }
}
