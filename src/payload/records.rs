//! Plain records: the request is a JSON object (one row) or a list of rows; the response a
//! number, a label, a list (one entry per row), `{"prediction": x}` or `{"predictions": [...]}`.
//!
//! Rows are read as everywhere (see the [`payload`](super) module): object members are named
//! features, nested members are skipped; a list of lists holds positional rows; a flat list of
//! scalars is **one** row of positional features (`[5.1, 3.5, 1.4, 0.2]`), unlike TF Serving's
//! `instances`, where each scalar is a row. This format is the fallback of `auto`.

use crate::record::{Prediction, Row};

use super::json::Json;
use super::predict::predictions_from_value;
use super::rows::{rows_from_value, ScalarList};
use super::{Context, PayloadError, Side};

/// The rows of a request body.
pub(crate) fn request_rows(ctx: &Context<'_>, req: &Json<'_>) -> Result<Vec<Row>, PayloadError> {
    rows_from_value(
        Side::Request,
        req,
        &mut ctx.fallback_names(),
        ScalarList::OneRow,
    )
}

/// The predictions of a response body for `rows` request rows.
pub(crate) fn response_predictions(
    resp: &Json<'_>,
    rows: usize,
) -> Result<Vec<Prediction>, PayloadError> {
    predictions_from_value(resp, rows)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{num, parse_fixture_pair, parse_with, text, NO_RESPONSE};
    use super::super::{PayloadConfig, PayloadFormat};
    use crate::record::FeatureValue;

    fn cfg() -> PayloadConfig {
        PayloadConfig {
            format: PayloadFormat::Records,
            ..PayloadConfig::default()
        }
    }

    #[test]
    fn batch_of_objects_with_predictions_wrapper() {
        let parsed = parse_fixture_pair(&cfg(), "/predict", "records_batch", &[]).unwrap();
        assert_eq!(parsed.rows.len(), 3);
        assert_eq!(
            parsed.rows[0].values,
            vec![
                ("age".to_string(), num(42.0)),
                ("income".to_string(), num(52000.5)),
                ("segment".to_string(), text("gold")),
                ("churned_before".to_string(), text("false"))
            ]
        );
        assert_eq!(parsed.rows[2].get("income"), Some(&FeatureValue::Missing));
        assert_eq!(parsed.predictions[0].value, num(0.0));
        assert_eq!(parsed.predictions[2].value, num(1.0));
        assert_eq!(parsed.predictions[2].probabilities, Some(vec![0.35, 0.65]));
    }

    #[test]
    fn single_object_and_single_outputs() {
        let req = br#"{"age": 42, "segment": "gold"}"#;
        for (resp, value) in [
            (&b"0.7"[..], num(0.7)),
            (br#"{"prediction": "approve"}"#, text("approve")),
            (br#"{"predictions": [3]}"#, num(3.0)),
            (b"[3]", num(3.0)),
            (
                br#"{"result": {"label": "approve", "score": 0.93}}"#,
                text("approve"),
            ),
        ] {
            let parsed = parse_with(&cfg(), "/", req, Some(resp), &[]).unwrap();
            assert_eq!(parsed.rows.len(), 1);
            assert_eq!(parsed.predictions.len(), 1);
            assert_eq!(parsed.predictions[0].value, value);
        }
    }

    #[test]
    fn flat_list_is_one_positional_row() {
        let baseline: Vec<String> = vec!["sl".into(), "sw".into()];
        let parsed = parse_with(
            &cfg(),
            "/",
            b"[5.1, 3.5, 1.4]",
            Some(b"[0.1, 0.2, 0.7]"),
            &baseline,
        )
        .unwrap();
        assert_eq!(
            parsed.rows[0].values,
            vec![
                ("sl".to_string(), num(5.1)),
                ("sw".to_string(), num(3.5)),
                ("f2".to_string(), num(1.4))
            ]
        );
        assert_eq!(parsed.predictions[0].value, num(2.0));
        assert_eq!(
            parsed.predictions[0].probabilities,
            Some(vec![0.1, 0.2, 0.7])
        );
    }

    #[test]
    fn no_response_means_rows_only() {
        let parsed = parse_with(&cfg(), "/", br#"[{"a": 1}, {"a": 2}]"#, NO_RESPONSE, &[]).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert!(parsed.predictions.is_empty());
    }
}
