//! Who the classes are and how the model decides: the class order of the score columns,
//! the positive class, the decision threshold and the calibration, taken from the baseline
//! and the configuration — never from the largest probability of a row.
//!
//! - Class order: the baseline's declared score columns (one per class in class order), else
//!   scikit-learn's `classes_` order of the labels seen (sorted, numerically when they are
//!   numbers), else the column index (`0`, `1`, …).
//! - Positive class (binary): `performance.positive_class` when it is one of the two
//!   classes, else the second column (`predict_proba[:, 1]`).
//! - Decision: the label the model returned, when it is one of the classes; a binary row
//!   without a usable label is positive when its positive-class score reaches the decision
//!   threshold: `performance.threshold` when configured, else the threshold that best
//!   separates the baseline's (score, predicted label) pairs, else 0.5. Multi-class rows
//!   without a label take the highest score (the only rule a score vector implies).
//! - Calibration: isotonic, per class (one against the rest), fitted on the baseline's
//!   (score, target) pairs and kept where it beats the raw scores
//!   ([`Calibrator::fit_if_better`]); multi-class probabilities are renormalised to sum to 1.

use serde::Serialize;

use super::cbpe::{self, BinaryRow, Calibrator, Estimate, MultiRow};
use super::scores::compare_labels;

/// One row of a baseline (or a batch) with scores: the score per class (binary: the
/// positive-class score alone is allowed), the predicted label, and the target.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferenceRow {
    /// Scores in class order (or the positive-class score alone).
    pub scores: Vec<f64>,
    /// The label the model predicted, normalised.
    pub predicted: Option<String>,
    /// The ground truth, normalised.
    pub target: Option<String>,
}

/// A baseline's scored rows with their declared class order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reference {
    /// Class order of the score columns when the baseline declares it.
    pub classes: Option<Vec<String>>,
    /// The rows.
    pub rows: Vec<ReferenceRow>,
}

/// Where the decision threshold came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// `performance.threshold`.
    Configured,
    /// Learnt from the baseline's (score, predicted label) pairs.
    Baseline,
    /// 0.5 (nothing better known).
    Default,
}

/// The class layout and decision rule of a classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    /// Labels of the score columns, in column order.
    pub classes: Vec<String>,
    /// Column of the positive class (binary models).
    pub positive: usize,
    /// Decision threshold on the positive-class score (binary models).
    pub threshold: f64,
    /// Where the threshold came from.
    pub threshold_source: ThresholdSource,
    /// Calibration per column (`None`: the scores are taken as calibrated).
    pub calibrators: Vec<Option<Calibrator>>,
    /// Column a lone score belongs to (binary models): the second declared class when the
    /// baseline declares the classes (`[negative, positive]`), else the positive class.
    pub lone: usize,
}

/// The best threshold separating positive from negative predictions of `(score,
/// predicted_positive)` pairs: the midpoint between adjacent distinct scores where the
/// fewest pairs disagree with "score ≥ threshold". `None` when all predictions agree.
pub fn learn_threshold(pairs: &[(f64, bool)]) -> Option<f64> {
    let mut v: Vec<(f64, bool)> = pairs.iter().filter(|p| p.0.is_finite()).copied().collect();
    if v.iter().all(|p| p.1) || v.iter().all(|p| !p.1) {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Split at i: rows < i negative, rows ≥ i positive. Errors = positives below + negatives at/above.
    let mut errors: usize = v.iter().filter(|p| !p.1).count();
    let (mut best, mut best_at) = (errors, 0usize);
    let mut i = 0;
    while i < v.len() {
        let s = v[i].0;
        while i < v.len() && v[i].0 == s {
            if v[i].1 {
                errors += 1;
            } else {
                errors -= 1;
            }
            i += 1;
        }
        if errors < best {
            best = errors;
            best_at = i;
        }
    }
    Some(match best_at {
        0 => v[0].0,
        i if i >= v.len() => v[v.len() - 1].0 + f64::EPSILON,
        i => (v[i - 1].0 + v[i].0) / 2.0,
    })
}

fn sorted_labels<'a>(labels: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = labels.cloned().collect();
    v.sort_by(|a, b| compare_labels(a, b));
    v.dedup();
    v
}

impl Classifier {
    /// The classifier of a model whose rows carry `k` score columns, from its baseline
    /// `reference` (when it has scored rows), the labels seen so far (`seen`, for the
    /// class order when the baseline declares none), `positive_class` and a configured
    /// `threshold`.
    pub fn new(
        k: usize,
        reference: Option<&Reference>,
        seen: &[String],
        positive_class: &str,
        threshold: Option<f64>,
    ) -> Classifier {
        let k = k.max(1);
        let k_cols = if k == 1 { 2 } else { k };
        let classes = Self::class_order(k_cols, reference, seen, positive_class);
        let positive = if k_cols == 2 {
            classes
                .iter()
                .position(|c| c == positive_class)
                .unwrap_or(1)
        } else {
            0
        };
        let declared = reference
            .and_then(|r| r.classes.as_ref())
            .is_some_and(|c| c.len() == k_cols);
        let lone = if declared { 1 } else { positive };
        let mut c = Classifier {
            lone,
            classes,
            positive,
            threshold: 0.5,
            threshold_source: ThresholdSource::Default,
            calibrators: vec![None; k_cols],
        };
        let rows: Vec<(Vec<f64>, Option<usize>, Option<usize>)> = reference
            .map(|r| {
                r.rows
                    .iter()
                    .filter_map(|row| {
                        let scores = c.expand(&row.scores)?;
                        let pred = row.predicted.as_deref().and_then(|l| c.index(l));
                        let target = row.target.as_deref().and_then(|l| c.index(l));
                        Some((scores, pred, target))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(t) = threshold.filter(|t| t.is_finite()) {
            c.threshold = t;
            c.threshold_source = ThresholdSource::Configured;
        } else if k_cols == 2 {
            let pairs: Vec<(f64, bool)> = rows
                .iter()
                .filter_map(|(s, p, _)| p.map(|p| (s[c.positive], p == c.positive)))
                .collect();
            if let Some(t) = learn_threshold(&pairs) {
                c.threshold = t;
                c.threshold_source = ThresholdSource::Baseline;
            }
        }
        let labelled: Vec<(&Vec<f64>, usize)> = rows
            .iter()
            .filter_map(|(s, _, t)| t.map(|t| (s, t)))
            .collect();
        if !labelled.is_empty() {
            let columns: Vec<usize> = if k_cols == 2 {
                vec![c.positive]
            } else {
                (0..k_cols).collect()
            };
            for col in columns {
                let s: Vec<f64> = labelled.iter().map(|(s, _)| s[col]).collect();
                let y: Vec<bool> = labelled.iter().map(|(_, t)| *t == col).collect();
                c.calibrators[col] = Calibrator::fit_if_better(&s, &y);
            }
        }
        c
    }

    fn class_order(
        k: usize,
        reference: Option<&Reference>,
        seen: &[String],
        positive_class: &str,
    ) -> Vec<String> {
        if let Some(classes) = reference.and_then(|r| r.classes.clone()) {
            if classes.len() == k {
                return classes;
            }
        }
        // Labels from the baseline's targets and predictions, then the ones seen live.
        let mut labels: Vec<String> = reference
            .map(|r| {
                r.rows
                    .iter()
                    .flat_map(|row| row.target.iter().chain(row.predicted.iter()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        labels.extend(seen.iter().cloned());
        let mut sorted = sorted_labels(labels.iter());
        if k == 2 && sorted.len() == 1 {
            // One label known: the other column is "the rest" of a 0/1 model or the
            // positive class.
            let only = sorted[0].clone();
            let other = if only == positive_class {
                if only == "1" {
                    "0".to_string()
                } else {
                    "__negative__".to_string()
                }
            } else {
                positive_class.to_string()
            };
            sorted.push(other);
            sorted.sort_by(|a, b| compare_labels(a, b));
        }
        if sorted.len() == k {
            return sorted;
        }
        (0..k).map(|i| i.to_string()).collect()
    }

    /// Column of class `label`.
    pub fn index(&self, label: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == label)
    }

    /// Whether the model is binary.
    pub fn is_binary(&self) -> bool {
        self.classes.len() == 2
    }

    /// Whether any column is recalibrated.
    pub fn calibrated(&self) -> bool {
        self.calibrators.iter().any(Option::is_some)
    }

    /// How the scores are calibrated: `assumed` (taken as they are), `logistic`,
    /// `isotonic`, or both names when classes differ (`isotonic+logistic`).
    pub fn calibration_method(&self) -> String {
        let mut m: Vec<&str> = self
            .calibrators
            .iter()
            .flatten()
            .map(Calibrator::method)
            .collect();
        m.sort_unstable();
        m.dedup();
        if m.is_empty() {
            "assumed".to_string()
        } else {
            m.join("+")
        }
    }

    /// Scores of one row in column order: a lone score of a binary model is the score of
    /// the class in column [`Classifier::lone`]; `None` when the row does not fit the
    /// layout.
    pub fn expand(&self, scores: &[f64]) -> Option<Vec<f64>> {
        if scores.iter().any(|s| !s.is_finite()) {
            return None;
        }
        if scores.len() == self.classes.len() {
            return Some(scores.to_vec());
        }
        if scores.len() == 1 && self.is_binary() {
            let mut v = vec![1.0 - scores[0]; 2];
            v[self.lone.min(1)] = scores[0];
            return Some(v);
        }
        None
    }

    /// The predicted column of a row: its label when it names a class, else the
    /// threshold rule (binary) or the highest score (multi-class).
    pub fn decide(&self, scores: &[f64], predicted: Option<&str>) -> Option<usize> {
        if let Some(i) = predicted.and_then(|l| self.index(l)) {
            return Some(i);
        }
        if self.is_binary() {
            let s = *scores.get(self.positive)?;
            return Some(if s >= self.threshold {
                self.positive
            } else {
                1 - self.positive
            });
        }
        scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
    }

    /// Calibrated probabilities of one row (column order, summing to 1).
    fn calibrate(&self, scores: &[f64]) -> Vec<f64> {
        if self.is_binary() {
            let p = self.positive_probability(scores[self.positive]);
            let mut v = vec![1.0 - p; 2];
            v[self.positive] = p;
            return v;
        }
        let mut v: Vec<f64> = scores
            .iter()
            .zip(&self.calibrators)
            .map(|(s, c)| c.as_ref().map_or(*s, |c| c.apply(*s)).clamp(0.0, 1.0))
            .collect();
        let sum: f64 = v.iter().sum();
        if sum > 0.0 {
            v.iter_mut().for_each(|x| *x /= sum);
        } else {
            let u = 1.0 / v.len() as f64;
            v.iter_mut().for_each(|x| *x = u);
        }
        v
    }

    /// Estimates the performance of rows of (scores, predicted label); rows that do not
    /// fit the layout are skipped. `None` without usable rows.
    pub fn estimate<'a>(
        &self,
        rows: impl Iterator<Item = (&'a [f64], Option<&'a str>)>,
    ) -> Option<Estimate> {
        if self.is_binary() {
            // Sized once from the window, not doubled as it fills (a bound on the guess:
            // the offline path's rows come from a file).
            let (lower, upper) = rows.size_hint();
            let guess = upper.unwrap_or(lower).min(super::MAX_PROBABILITY_ROWS);
            let mut binary = Vec::with_capacity(guess);
            binary.extend(rows.filter_map(|(s, l)| self.binary_row(s, l)));
            cbpe::estimate_binary(&binary)
        } else {
            let rows: Vec<MultiRow> = rows
                .filter_map(|(s, l)| {
                    let s = self.expand(s)?;
                    let d = self.decide(&s, l)?;
                    Some(MultiRow {
                        p: self.calibrate(&s),
                        scores: s,
                        predicted: d,
                    })
                })
                .collect();
            cbpe::estimate_multiclass(&rows, self.classes.len())
        }
    }

    /// A binary model's row for the estimate: what [`Classifier::expand`],
    /// [`Classifier::decide`] and [`Classifier::calibrate`] give for the positive column,
    /// without their per-row vectors (the estimate reads every row of its window at every
    /// refresh).
    fn binary_row(&self, scores: &[f64], predicted: Option<&str>) -> Option<BinaryRow> {
        if scores.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let score = match scores {
            [_, _] => *scores.get(self.positive)?,
            // A lone score is column `lone`'s; the other column holds its complement.
            [s] if self.lone.min(1) == self.positive => *s,
            [s] => 1.0 - *s,
            _ => return None,
        };
        let predicted_positive = match predicted.and_then(|l| self.index(l)) {
            Some(i) => i == self.positive,
            None => score >= self.threshold,
        };
        Some(BinaryRow {
            score,
            p: self.positive_probability(score),
            predicted_positive,
        })
    }

    /// The calibrated probability of a binary model's positive class, from its score.
    fn positive_probability(&self, score: f64) -> f64 {
        self.calibrators
            .get(self.positive)
            .and_then(Option::as_ref)
            .map_or(score, |c| c.apply(score))
            .clamp(0.0, 1.0)
    }

    /// The predicted label of a row (its own label, or the decision rule's).
    pub fn predicted_label(&self, scores: &[f64], predicted: Option<&str>) -> Option<String> {
        let s = self.expand(scores)?;
        self.decide(&s, predicted)
            .and_then(|i| self.classes.get(i).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    /// The estimate's per-row fast path gives what the general steps give (expand, decide,
    /// calibrate) for every layout of a binary model: both column orders, a lone score of
    /// either column, labels that name a class or not, calibrated or not, thresholds other
    /// than 0.5, rows that do not fit.
    #[test]
    fn binary_rows_match_the_general_steps() {
        let calibrator = Calibrator::fit(
            &[0.1, 0.3, 0.35, 0.6, 0.8],
            &[false, false, true, true, true],
        );
        assert!(calibrator.is_some());
        let labels = [None, Some("yes"), Some("no"), Some("maybe")];
        let score_sets: [&[f64]; 9] = [
            &[0.2, 0.8],
            &[0.7, 0.3],
            &[0.45, 0.55],
            &[0.35],
            &[0.65],
            &[0.0],
            &[1.0],
            &[f64::NAN, 0.5],
            &[0.1, 0.2, 0.7],
        ];
        let mut checked = 0;
        for classes in [[s("no"), s("yes")], [s("yes"), s("no")]] {
            for positive in 0..2 {
                for lone in 0..2 {
                    for threshold in [0.5, 0.3, 0.62] {
                        for cal in [None, calibrator.clone()] {
                            let mut calibrators = vec![None, None];
                            calibrators[positive] = cal.clone();
                            let c = Classifier {
                                classes: classes.to_vec(),
                                positive,
                                threshold,
                                threshold_source: ThresholdSource::Default,
                                calibrators,
                                lone,
                            };
                            for scores in score_sets {
                                for label in labels {
                                    let general = c.expand(scores).and_then(|e| {
                                        let d = c.decide(&e, label)?;
                                        Some(BinaryRow {
                                            score: e[c.positive],
                                            p: c.calibrate(&e)[c.positive],
                                            predicted_positive: d == c.positive,
                                        })
                                    });
                                    assert_eq!(
                                        c.binary_row(scores, label),
                                        general,
                                        "{classes:?} positive {positive} lone {lone} \
                                         threshold {threshold} {scores:?} {label:?}"
                                    );
                                    checked += usize::from(general.is_some());
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 500, "{checked}");
    }

    #[test]
    fn threshold_is_learnt_from_predictions() {
        let pairs: Vec<(f64, bool)> = (0..100)
            .map(|i| {
                let x = i as f64 / 100.0;
                (x, x >= 0.65)
            })
            .collect();
        let t = learn_threshold(&pairs).unwrap();
        assert!((t - 0.645).abs() < 1e-12, "{t}");
        assert_eq!(learn_threshold(&[(0.2, true), (0.9, true)]), None);
    }

    #[test]
    fn class_order_is_sorted_labels_and_positive_from_config() {
        let c = Classifier::new(2, None, &[s("1"), s("0")], "1", None);
        assert_eq!(c.classes, vec![s("0"), s("1")]);
        assert_eq!(c.positive, 1);
        let c = Classifier::new(2, None, &[s("stay"), s("churn")], "churn", None);
        assert_eq!(c.classes, vec![s("churn"), s("stay")]);
        assert_eq!(c.positive, 0);
        // Numbers sort as numbers.
        let c = Classifier::new(3, None, &[s("10"), s("9"), s("2")], "1", None);
        assert_eq!(c.classes, vec![s("2"), s("9"), s("10")]);
        // A declared order wins.
        let r = Reference {
            classes: Some(vec![s("b"), s("a")]),
            rows: Vec::new(),
        };
        let c = Classifier::new(2, Some(&r), &[s("a"), s("b")], "a", None);
        assert_eq!(c.classes, vec![s("b"), s("a")]);
        assert_eq!(c.positive, 1);
        // A lone score is the second declared class's, whatever the positive class.
        let c = Classifier::new(1, Some(&r), &[], "b", None);
        assert_eq!(c.positive, 0);
        assert_eq!(c.expand(&[0.75]), Some(vec![0.25, 0.75]));
    }

    #[test]
    fn rows_without_labels_use_the_baseline_threshold() {
        let rows: Vec<ReferenceRow> = (0..200)
            .map(|i| {
                let p = i as f64 / 200.0;
                ReferenceRow {
                    scores: vec![p],
                    predicted: Some(if p >= 0.65 { s("1") } else { s("0") }),
                    target: None,
                }
            })
            .collect();
        let r = Reference {
            classes: None,
            rows,
        };
        let c = Classifier::new(2, Some(&r), &[], "1", None);
        assert_eq!(c.threshold_source, ThresholdSource::Baseline);
        assert!((c.threshold - 0.6475).abs() < 1e-12, "{}", c.threshold);
        assert_eq!(c.decide(&[0.4, 0.6], None), Some(0));
        assert_eq!(c.decide(&[0.3, 0.7], None), Some(1));
        // A returned label always wins.
        assert_eq!(c.decide(&[0.4, 0.6], Some("1")), Some(1));
        let c = Classifier::new(2, Some(&r), &[], "1", Some(0.9));
        assert_eq!(c.threshold_source, ThresholdSource::Configured);
        assert_eq!(c.decide(&[0.3, 0.7], None), Some(0));
    }
}
