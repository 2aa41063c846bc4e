//! Which input names an exchange may bring into the analyses (SPEC section 6, issue 11
//! findings 6 and 7).
//!
//! - With a baseline, only its input features are analysed: any other name is counted in
//!   `mlmon_unknown_features_total{model}` and never reaches quality, anomaly or health
//!   (one request with 245 extra names once dropped a model's quality score from 0.9998 to
//!   0.04 until restart).
//! - Names longer than `limits.max_name_bytes` are refused (counted as
//!   `mlmon_payload_errors_total{reason="name_too_long"}`): label values stay small.
//!
//! The common case (every name fine) costs one pass and no copy.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::record::{ParsedExchange, Row};

/// What [`admit`] left out of one exchange.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Values whose name is not among the baseline's inputs.
    pub unknown: u64,
    /// Values whose name is longer than the limit.
    pub too_long: u64,
}

/// The exchange with only admissible names, borrowed when nothing is left out.
/// `baseline_inputs` is the baseline's input feature order, when the model has one.
pub fn admit<'p>(
    parsed: &'p ParsedExchange,
    baseline_inputs: Option<&[String]>,
    max_name_bytes: usize,
) -> (Cow<'p, ParsedExchange>, Refused) {
    let known: Option<HashSet<&str>> =
        baseline_inputs.map(|b| b.iter().map(String::as_str).collect());
    let verdict = |name: &str| -> Result<(), bool> {
        if name.len() > max_name_bytes {
            return Err(true);
        }
        match &known {
            Some(k) if !k.contains(name) => Err(false),
            _ => Ok(()),
        }
    };
    let all_fine = parsed
        .rows
        .iter()
        .all(|r| r.values.iter().all(|(n, _)| verdict(n).is_ok()));
    if all_fine {
        return (Cow::Borrowed(parsed), Refused::default());
    }
    let mut refused = Refused::default();
    let rows = parsed
        .rows
        .iter()
        .map(|r| Row {
            values: r
                .values
                .iter()
                .filter(|(n, _)| match verdict(n) {
                    Ok(()) => true,
                    Err(true) => {
                        refused.too_long += 1;
                        false
                    }
                    Err(false) => {
                        refused.unknown += 1;
                        false
                    }
                })
                .cloned()
                .collect(),
        })
        .collect();
    (
        Cow::Owned(ParsedExchange {
            rows,
            predictions: parsed.predictions.clone(),
        }),
        refused,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::FeatureValue;

    fn row(names: &[&str]) -> Row {
        Row {
            values: names
                .iter()
                .map(|n| (n.to_string(), FeatureValue::Number(1.0)))
                .collect(),
        }
    }

    #[test]
    fn unknown_and_long_names_are_left_out_and_counted() {
        let parsed = ParsedExchange {
            rows: vec![row(&["a", "b", "junk1", "junk2"]), row(&["a", "junk1"])],
            predictions: Vec::new(),
        };
        let order = vec!["a".to_string(), "b".to_string()];
        let (out, refused) = admit(&parsed, Some(&order), 128);
        assert_eq!(
            refused,
            Refused {
                unknown: 3,
                too_long: 0
            }
        );
        assert_eq!(out.rows[0], row(&["a", "b"]));
        assert_eq!(out.rows[1], row(&["a"]));
        // Without a baseline every short name passes, borrowed.
        let (out, refused) = admit(&parsed, None, 128);
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(refused, Refused::default());
        // Long names are refused with or without a baseline.
        let long = "x".repeat(129);
        let parsed = ParsedExchange {
            rows: vec![row(&["a", &long])],
            predictions: Vec::new(),
        };
        let (out, refused) = admit(&parsed, None, 128);
        assert_eq!(refused.too_long, 1);
        assert_eq!(out.rows[0], row(&["a"]));
    }
}
