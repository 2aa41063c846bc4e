//! Custom JSON located by RFC 6901 pointers: `payload.request_pointer` selects the rows in the
//! request and `payload.response_pointer` the predictions in the response (an absent pointer
//! selects the whole body). The selected values are read as in the
//! [`records`](super::records) format: an object is one row, a list of objects or lists holds
//! rows, a flat list of scalars is one positional row; predictions are a list with one entry
//! per row, a single value for a single row, or `{"predictions": [...]}`.

use crate::record::{Prediction, Row};

use super::json::Json;
use super::predict::predictions_from_value;
use super::rows::{rows_from_value, ScalarList};
use super::{Context, PayloadError, Side};

fn resolve<'j, 'a>(
    side: Side,
    body: &'j Json<'a>,
    pointer: Option<&str>,
) -> Result<&'j Json<'a>, PayloadError> {
    let pointer = pointer.unwrap_or("");
    body.pointer(pointer)
        .ok_or_else(|| PayloadError::PointerNotFound {
            side,
            pointer: pointer.to_owned(),
        })
}

/// The rows of a request body.
pub(crate) fn request_rows(ctx: &Context<'_>, req: &Json<'_>) -> Result<Vec<Row>, PayloadError> {
    let target = resolve(Side::Request, req, ctx.cfg.request_pointer.as_deref())?;
    rows_from_value(
        Side::Request,
        target,
        &mut ctx.fallback_names(),
        ScalarList::OneRow,
    )
}

/// The predictions of a response body for `rows` request rows.
pub(crate) fn response_predictions(
    ctx: &Context<'_>,
    resp: &Json<'_>,
    rows: usize,
) -> Result<Vec<Prediction>, PayloadError> {
    let target = resolve(Side::Response, resp, ctx.cfg.response_pointer.as_deref())?;
    predictions_from_value(target, rows)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{num, parse_fixture_pair, parse_with, text, NO_RESPONSE};
    use super::super::{PayloadConfig, PayloadError, PayloadFormat, Side};

    fn cfg(request: &str, response: &str) -> PayloadConfig {
        PayloadConfig {
            format: PayloadFormat::Pointer,
            request_pointer: Some(request.into()),
            response_pointer: Some(response.into()),
            ..PayloadConfig::default()
        }
    }

    #[test]
    fn nested_custom_envelope() {
        let c = cfg("/payload/customers", "/result/scores");
        let parsed = parse_fixture_pair(&c, "/score", "pointer_custom", &[]).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(
            parsed.rows[1].values,
            vec![
                ("tenure".to_string(), num(3.0)),
                ("plan".to_string(), text("basic"))
            ]
        );
        assert_eq!(parsed.predictions[0].value, num(0.12));
        assert_eq!(parsed.predictions[1].value, num(0.87));
    }

    #[test]
    fn positional_features_and_escaped_tokens() {
        let c = PayloadConfig {
            feature_names: vec!["x".into(), "y".into()],
            ..cfg("/in~1put/features", "/out/0")
        };
        let parsed = parse_with(
            &c,
            "/",
            br#"{"in/put": {"features": [1.5, 2.5]}}"#,
            Some(br#"{"out": [{"label": "a"}]}"#),
            &[],
        )
        .unwrap();
        assert_eq!(
            parsed.rows[0].values,
            vec![("x".to_string(), num(1.5)), ("y".to_string(), num(2.5))]
        );
        assert_eq!(parsed.predictions[0].value, text("a"));
    }

    #[test]
    fn unresolved_pointers_name_the_pointer() {
        let c = cfg("/missing", "/out");
        let err = parse_with(&c, "/", br#"{"a": 1}"#, NO_RESPONSE, &[]).unwrap_err();
        assert_eq!(
            err,
            PayloadError::PointerNotFound {
                side: Side::Request,
                pointer: "/missing".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "payload.request_pointer \"/missing\" does not resolve in the request body"
        );
        let c = cfg("", "/out");
        let err = parse_with(&c, "/", br#"{"a": 1}"#, Some(br#"{"pred": 1}"#), &[]).unwrap_err();
        assert_eq!(err.reason(), "pointer_not_found");
        assert_eq!(err.side(), Side::Response);
    }

    #[test]
    fn auto_with_a_pointer_uses_pointers() {
        let c = PayloadConfig {
            format: PayloadFormat::Auto,
            request_pointer: Some("/x".into()),
            ..PayloadConfig::default()
        };
        let parsed = parse_with(
            &c,
            "/v1/models/m:predict",
            br#"{"x": {"a": 1}, "instances": [[9]]}"#,
            NO_RESPONSE,
            &[],
        )
        .unwrap();
        assert_eq!(parsed.rows[0].values, vec![("a".to_string(), num(1.0))]);
    }
}
