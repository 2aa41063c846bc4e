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
//! The common case (every name fine) costs one pass, one string comparison per name and
//! no copy.

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
    // The set of names is built only when a name is not where the baseline or the
    // previous row had it (the common case checks each name with one comparison).
    let known: std::cell::OnceCell<HashSet<&str>> = std::cell::OnceCell::new();
    let in_baseline = |position: usize, name: &str| -> bool {
        let Some(b) = baseline_inputs else {
            return true;
        };
        if b.get(position).is_some_and(|n| n == name) {
            return true;
        }
        known
            .get_or_init(|| b.iter().map(String::as_str).collect())
            .contains(name)
    };
    let verdict = |position: usize, name: &str| -> Result<(), bool> {
        if name.len() > max_name_bytes {
            return Err(true);
        }
        if in_baseline(position, name) {
            Ok(())
        } else {
            Err(false)
        }
    };
    // A name equal to the one at the same position of the previous (admitted) row is
    // admitted too: rows of one body repeat their names.
    let mut previous: Option<&Row> = None;
    let all_fine = parsed.rows.iter().all(|r| {
        let fine = r.values.iter().enumerate().all(|(p, (n, _))| {
            previous
                .and_then(|prev| prev.values.get(p))
                .is_some_and(|(pn, _)| pn == n)
                || verdict(p, n).is_ok()
        });
        previous = Some(r);
        fine
    });
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
                .enumerate()
                .filter(|(p, (n, _))| match verdict(*p, n) {
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
                .map(|(_, v)| v.clone())
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

    #[test]
    fn names_in_any_order_are_judged_by_the_baseline_not_by_position() {
        let order = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        // Baseline names out of baseline order, repeated rows, then a row whose names
        // differ from the previous row's at the same positions.
        let parsed = ParsedExchange {
            rows: vec![
                row(&["c", "a", "b"]),
                row(&["c", "a", "b"]),
                row(&["b", "junk", "c"]),
                row(&["b", "junk", "c"]),
            ],
            predictions: Vec::new(),
        };
        let (out, refused) = admit(&parsed, Some(&order), 128);
        assert_eq!(refused.unknown, 2);
        assert_eq!(out.rows[0], row(&["c", "a", "b"]));
        assert_eq!(out.rows[3], row(&["b", "c"]));
        let clean = ParsedExchange {
            rows: vec![row(&["c", "a"]), row(&["c", "a"]), row(&["a", "b"])],
            predictions: Vec::new(),
        };
        let (out, refused) = admit(&clean, Some(&order), 128);
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(refused, Refused::default());
        // A name that follows a known one at the same position is still checked.
        let sneaky = ParsedExchange {
            rows: vec![row(&["a"]), row(&["junk"])],
            predictions: Vec::new(),
        };
        assert_eq!(admit(&sneaky, Some(&order), 128).1.unknown, 1);
    }
}
