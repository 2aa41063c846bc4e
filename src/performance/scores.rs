//! Performance metrics with scikit-learn's definitions (tests compare with sklearn).
//!
//! - Regression: `mean_absolute_error`, `root_mean_squared_error` (√MSE) and `r2_score`
//!   (with `force_finite=True`: a constant truth gives 1.0 when predicted perfectly, else
//!   0.0; fewer than two pairs give no R²).
//! - Classification: `accuracy_score`; `precision_score`, `recall_score`, `f1_score` with
//!   `average="binary"` and `pos_label = performance.positive_class` when the window holds
//!   at most two labels and the positive class is one of them (or only one label is seen),
//!   else `average="macro"` over the labels seen in truth and predictions. Undefined ratios
//!   (0/0) are 0, sklearn's `zero_division="warn"` value.
//!
//! Labels are normalised ([`label_of`]) so that `"1"`, `1` and `1.0` are the same class.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::FeatureValue;

/// The class label of a value: integral numbers (and numeric strings) as integers
/// (`1`, `"1"`, `1.0`, `"1.0"` → `"1"`), other numbers in Rust's shortest round-trip form,
/// other strings trimmed. Missing values have no label.
pub fn label_of(v: &FeatureValue) -> Option<String> {
    match v {
        FeatureValue::Number(x) => number_label(*x),
        FeatureValue::Text(s) => Some(label_of_str(s)),
        FeatureValue::Missing => None,
    }
}

/// [`label_of`] for a string (e.g. `performance.positive_class`).
pub fn label_of_str(s: &str) -> String {
    let t = s.trim();
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => number_label(x).unwrap_or_else(|| t.to_string()),
        _ => match t {
            "true" | "True" => "1".into(),
            "false" | "False" => "0".into(),
            _ => t.to_string(),
        },
    }
}

fn number_label(x: f64) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        // `-0.0` and `0.0` are the same class.
        Some(format!("{}", x as i64))
    } else {
        Some(format!("{x}"))
    }
}

/// A value as a number for regression: numbers, and strings that parse as one.
pub fn number_of(v: &FeatureValue) -> Option<f64> {
    match v {
        FeatureValue::Number(x) if x.is_finite() => Some(*x),
        FeatureValue::Text(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

/// Regression scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegressionScores {
    /// Pairs scored.
    pub count: usize,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Coefficient of determination; `None` with fewer than two pairs.
    pub r2: Option<f64>,
}

/// Scores `predicted` against `actual`; `None` when empty or of unequal length.
pub fn regression(actual: &[f64], predicted: &[f64]) -> Option<RegressionScores> {
    let n = actual.len();
    if n == 0 || n != predicted.len() {
        return None;
    }
    let nf = n as f64;
    let mut abs = 0.0;
    let mut sq = 0.0;
    for (a, p) in actual.iter().zip(predicted) {
        let e = a - p;
        abs += e.abs();
        sq += e * e;
    }
    let mean = actual.iter().sum::<f64>() / nf;
    let tot: f64 = actual.iter().map(|a| (a - mean) * (a - mean)).sum();
    let r2 = if n < 2 {
        None
    } else if tot == 0.0 {
        Some(if sq == 0.0 { 1.0 } else { 0.0 })
    } else {
        Some(1.0 - sq / tot)
    };
    Some(RegressionScores {
        count: n,
        mae: abs / nf,
        rmse: (sq / nf).sqrt(),
        r2,
    })
}

/// How precision, recall and F1 were averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Averaging {
    /// Of the positive class alone.
    Binary,
    /// Unweighted mean over the classes seen.
    Macro,
}

/// Classification scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassificationScores {
    /// Pairs scored.
    pub count: usize,
    /// Share of correct predictions.
    pub accuracy: f64,
    /// Precision (binary or macro).
    pub precision: f64,
    /// Recall (binary or macro).
    pub recall: f64,
    /// F1 (binary or macro).
    pub f1: f64,
    /// Binary (positive class) or macro.
    pub averaging: Averaging,
    /// Classes seen in truth or predictions, sorted.
    pub classes: Vec<String>,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl Counts {
    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

/// Scores normalised labels; `None` when empty or of unequal length.
pub fn classification(
    actual: &[String],
    predicted: &[String],
    positive: &str,
) -> Option<ClassificationScores> {
    let n = actual.len();
    if n == 0 || n != predicted.len() {
        return None;
    }
    let mut per: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut correct = 0u64;
    for (a, p) in actual.iter().zip(predicted) {
        per.entry(a.as_str()).or_default();
        per.entry(p.as_str()).or_default();
        if a == p {
            correct += 1;
            if let Some(c) = per.get_mut(a.as_str()) {
                c.tp += 1;
            }
        } else {
            if let Some(c) = per.get_mut(p.as_str()) {
                c.fp += 1;
            }
            if let Some(c) = per.get_mut(a.as_str()) {
                c.fn_ += 1;
            }
        }
    }
    let classes: Vec<String> = per.keys().map(|k| k.to_string()).collect();
    let binary = per.len() < 2 || (per.len() == 2 && per.contains_key(positive));
    let (precision, recall, f1, averaging) = if binary {
        let c = per.get(positive).copied().unwrap_or_default();
        (c.precision(), c.recall(), c.f1(), Averaging::Binary)
    } else {
        let k = per.len() as f64;
        let (mut p, mut r, mut f) = (0.0, 0.0, 0.0);
        for c in per.values() {
            p += c.precision();
            r += c.recall();
            f += c.f1();
        }
        (p / k, r / k, f / k, Averaging::Macro)
    };
    Some(ClassificationScores {
        count: n,
        accuracy: correct as f64 / n as f64,
        precision,
        recall,
        f1,
        averaging,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_normalise() {
        let one = [
            FeatureValue::Number(1.0),
            FeatureValue::Text("1".into()),
            FeatureValue::Text(" 1.0 ".into()),
            FeatureValue::Text("true".into()),
        ];
        for v in &one {
            assert_eq!(label_of(v).as_deref(), Some("1"), "{v:?}");
        }
        assert_eq!(label_of(&FeatureValue::Number(-0.0)).as_deref(), Some("0"));
        assert_eq!(label_of(&FeatureValue::Number(2.5)).as_deref(), Some("2.5"));
        assert_eq!(
            label_of(&FeatureValue::Text("cat".into())).as_deref(),
            Some("cat")
        );
        assert_eq!(label_of(&FeatureValue::Missing), None);
        assert_eq!(label_of_str("1.0"), "1");
    }
}
