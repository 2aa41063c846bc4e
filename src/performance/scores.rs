//! Performance metrics with scikit-learn's definitions (tests compare with sklearn).
//!
//! - Regression: `mean_absolute_error`, `root_mean_squared_error` (√MSE) and `r2_score`
//!   (with `force_finite=True`: a constant truth gives 1.0 when predicted perfectly, else
//!   0.0; fewer than two pairs give no R²).
//! - Classification: `accuracy_score`; `precision_score`, `recall_score`, `f1_score` with
//!   `average="binary"` and `pos_label = performance.positive_class` when the window holds
//!   at most two labels and the positive class is one of them (or only one label is seen),
//!   else `average="macro"` over the labels seen in truth and predictions. Undefined ratios
//!   (0/0) are 0, sklearn's `zero_division="warn"` value. Specificity is the recall of the
//!   negative side: binary `TN / (TN + FP)` of the positive class, macro the mean over the
//!   classes of each class's `TN / (TN + FP)` (from `multilabel_confusion_matrix`).
//! - ROC AUC: `roc_auc_score` of the positive class's score (binary), and
//!   `roc_auc_score(multi_class="ovr", average="macro")` for multi-class models, over the
//!   classes that have both positive and negative rows in the window (sklearn refuses a
//!   window where a class is absent; mlmon averages the classes it can score).
//! - Confusion matrix: counts per (actual, predicted), at most [`MAX_MATRIX_CLASSES`] labels
//!   (the most frequent; the rest pooled into `__other__`).
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

pub use crate::record::{label_of_str, number_label};

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
    /// Specificity (binary or macro).
    pub specificity: f64,
    /// ROC AUC, when the window's pairs carry scores ([`roc_auc_ovr`]).
    pub roc_auc: Option<f64>,
    /// Counts per (actual, predicted).
    pub confusion_matrix: ConfusionMatrix,
    /// Binary (positive class) or macro.
    pub averaging: Averaging,
    /// Classes seen in truth or predictions, sorted.
    pub classes: Vec<String>,
}

/// Labels kept in a confusion matrix at most; the rest are pooled into `__other__`.
pub const MAX_MATRIX_CLASSES: usize = 16;

/// Window counts per (actual, predicted) label.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ConfusionMatrix {
    /// Row and column labels (the most frequent first, then `__other__` when pooled).
    pub labels: Vec<String>,
    /// `counts[actual][predicted]`.
    pub counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    /// The matrix of `actual` vs `predicted` labels.
    pub fn of(actual: &[String], predicted: &[String]) -> ConfusionMatrix {
        let mut freq: BTreeMap<&str, u64> = BTreeMap::new();
        for l in actual.iter().chain(predicted) {
            *freq.entry(l.as_str()).or_default() += 1;
        }
        let mut by_freq: Vec<(&str, u64)> = freq.into_iter().collect();
        // Most frequent first; ties by label (stable: BTreeMap order).
        by_freq.sort_by_key(|e| std::cmp::Reverse(e.1));
        let pooled = by_freq.len() > MAX_MATRIX_CLASSES;
        let keep = if pooled {
            MAX_MATRIX_CLASSES
        } else {
            by_freq.len()
        };
        let mut labels: Vec<String> = by_freq[..keep].iter().map(|(l, _)| l.to_string()).collect();
        labels.sort_by(|a, b| compare_labels(a, b));
        if pooled {
            labels.push(crate::baseline::OTHER_CATEGORY.to_string());
        }
        let index = |l: &str| labels.iter().position(|x| x == l).unwrap_or(keep);
        let mut counts = vec![vec![0u64; labels.len()]; labels.len()];
        for (a, p) in actual.iter().zip(predicted) {
            let (i, j) = (index(a), index(p));
            if let Some(c) = counts.get_mut(i).and_then(|r| r.get_mut(j)) {
                *c += 1;
            }
        }
        ConfusionMatrix { labels, counts }
    }

    /// `(actual, predicted, count)` of every cell.
    pub fn cells(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.counts.iter().enumerate().flat_map(move |(i, row)| {
            row.iter()
                .enumerate()
                .map(move |(j, c)| (self.labels[i].as_str(), self.labels[j].as_str(), *c))
        })
    }
}

/// Orders labels as scikit-learn orders `classes_`: numerically when both are numbers,
/// else as text.
pub fn compare_labels(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

/// `roc_auc_score(labels, scores)`: the probability that a positive row scores above a
/// negative one (ties count half); `None` without both positives and negatives.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    let mut rows: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .filter(|(s, _)| s.is_finite())
        .map(|(s, l)| (*s, *l))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = rows.iter().filter(|r| r.1).count() as f64;
    let neg = rows.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    // Mann–Whitney U with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        while j < rows.len() && rows[j].0 == rows[i].0 {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg_rank * rows[i..j].iter().filter(|r| r.1).count() as f64;
        i = j;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// ROC AUC of labels `actual` against score vectors whose columns are `classes`: the
/// positive class's column for two classes, else one class against the rest,
/// macro-averaged over the classes with positive and negative rows. `None` when no class
/// can be scored.
pub fn roc_auc_ovr(
    actual: &[String],
    scores: &[&[f64]],
    classes: &[String],
    positive: usize,
) -> Option<f64> {
    let k = classes.len();
    let rows: Vec<(&String, &[f64])> = actual
        .iter()
        .zip(scores)
        .filter(|(_, s)| s.len() == k)
        .map(|(a, s)| (a, *s))
        .collect();
    let of_class = |c: usize| {
        let labels: Vec<bool> = rows.iter().map(|(a, _)| **a == classes[c]).collect();
        let s: Vec<f64> = rows.iter().map(|(_, s)| s[c]).collect();
        roc_auc(&labels, &s)
    };
    if k == 2 {
        return of_class(positive.min(1));
    }
    let aucs: Vec<f64> = (0..k).filter_map(of_class).collect();
    (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64)
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
    fn specificity(&self, n: u64) -> f64 {
        let tn = n - self.tp - self.fp - self.fn_;
        ratio(tn, tn + self.fp)
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
    let n64 = n as u64;
    let (precision, recall, f1, specificity, averaging) = if binary {
        let c = per.get(positive).copied().unwrap_or_default();
        (
            c.precision(),
            c.recall(),
            c.f1(),
            c.specificity(n64),
            Averaging::Binary,
        )
    } else {
        let k = per.len() as f64;
        let (mut p, mut r, mut f, mut s) = (0.0, 0.0, 0.0, 0.0);
        for c in per.values() {
            p += c.precision();
            r += c.recall();
            f += c.f1();
            s += c.specificity(n64);
        }
        (p / k, r / k, f / k, s / k, Averaging::Macro)
    };
    Some(ClassificationScores {
        count: n,
        accuracy: correct as f64 / n as f64,
        precision,
        recall,
        f1,
        specificity,
        roc_auc: None,
        confusion_matrix: ConfusionMatrix::of(actual, predicted),
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

    #[test]
    fn roc_auc_counts_ties_half() {
        // sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75
        let auc = roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
        // roc_auc_score([0, 1], [0.5, 0.5]) = 0.5
        assert_eq!(roc_auc(&[false, true], &[0.5, 0.5]), Some(0.5));
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
    }

    #[test]
    fn confusion_matrix_pools_past_sixteen_labels() {
        let actual: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let mut predicted = actual.clone();
        predicted[19] = "0".into();
        let m = ConfusionMatrix::of(&actual, &predicted);
        assert_eq!(m.labels.len(), MAX_MATRIX_CLASSES + 1);
        assert_eq!(m.labels[0], "0");
        assert_eq!(m.labels.last().map(String::as_str), Some("__other__"));
        let total: u64 = m.cells().map(|(_, _, c)| c).sum();
        assert_eq!(total, 20);
        // "0" is the most frequent (3 times) and keeps its own row and column.
        let cell = |a: &str, p: &str| m.cells().find(|c| c.0 == a && c.1 == p).map(|c| c.2);
        assert_eq!(cell("0", "0"), Some(1));
        assert_eq!(cell("__other__", "0"), Some(1));
    }
}
