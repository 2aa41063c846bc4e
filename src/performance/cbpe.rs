//! Label-free performance estimation from predicted probabilities, as NannyML's
//! confidence-based performance estimation (CBPE).
//!
//! For a calibrated binary classifier the probability `p` of the positive class is the
//! chance that the row's truth is positive. A row predicted positive is then a true positive
//! with probability `p` and a false positive with `1 − p`; a row predicted negative is a
//! false negative with `p` and a true negative with `1 − p`. Summing these expectations over
//! the window gives an expected confusion matrix, and from it accuracy, precision, recall
//! and F1 — without any ground truth. For multi-class models the expected accuracy is the
//! mean probability of the predicted class.
//!
//! The estimate is only as good as the calibration. When the baseline holds predicted
//! probabilities and targets jointly, [`Calibrator::fit`] learns the map from `p` to the
//! observed positive rate (isotonic regression, pool-adjacent-violators) and the estimate
//! uses calibrated probabilities; otherwise the model is assumed calibrated.

use serde::Serialize;

/// A monotone map from predicted probability to observed positive rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrator {
    /// Block centres (mean score) in increasing order.
    x: Vec<f64>,
    /// Observed rate of each block (non-decreasing).
    y: Vec<f64>,
}

impl Calibrator {
    /// Fits isotonic regression of `outcome` on `score`; `None` with fewer than two
    /// distinct usable pairs.
    pub fn fit(score: &[f64], outcome: &[bool]) -> Option<Calibrator> {
        let mut pairs: Vec<(f64, f64)> = score
            .iter()
            .zip(outcome)
            .filter(|(s, _)| s.is_finite())
            .map(|(s, o)| (*s, if *o { 1.0 } else { 0.0 }))
            .collect();
        if pairs.len() < 2 {
            return None;
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks: (sum of x, sum of y, weight).
        let mut blocks: Vec<(f64, f64, f64)> = Vec::with_capacity(pairs.len());
        for (s, o) in pairs {
            blocks.push((s, o, 1.0));
            while blocks.len() >= 2 {
                let (x1, y1, w1) = blocks[blocks.len() - 1];
                let (x0, y0, w0) = blocks[blocks.len() - 2];
                if y0 / w0 <= y1 / w1 {
                    break;
                }
                blocks.pop();
                let last = blocks.len() - 1;
                blocks[last] = (x0 + x1, y0 + y1, w0 + w1);
            }
        }
        if blocks.len() < 2 {
            return None;
        }
        Some(Calibrator {
            x: blocks.iter().map(|(x, _, w)| x / w).collect(),
            y: blocks.iter().map(|(_, y, w)| y / w).collect(),
        })
    }

    /// The calibrated probability of `p` (linear between block centres, flat beyond).
    pub fn apply(&self, p: f64) -> f64 {
        let n = self.x.len();
        if p <= self.x[0] {
            return self.y[0];
        }
        if p >= self.x[n - 1] {
            return self.y[n - 1];
        }
        let i = self.x.partition_point(|x| *x <= p);
        let (x0, x1, y0, y1) = (self.x[i - 1], self.x[i], self.y[i - 1], self.y[i]);
        if x1 == x0 {
            return y1;
        }
        y0 + (y1 - y0) * (p - x0) / (x1 - x0)
    }
}

/// Expected performance of a window of predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Rows the estimate is based on.
    pub rows: usize,
    /// Expected accuracy.
    pub accuracy: f64,
    /// Expected precision of the positive class (binary models).
    pub precision: Option<f64>,
    /// Expected recall of the positive class (binary models).
    pub recall: Option<f64>,
    /// Expected F1 of the positive class (binary models).
    pub f1: Option<f64>,
}

/// Estimates a binary classifier from `(p, predicted_positive)` rows, where `p` is the
/// (already calibrated) probability of the positive class.
pub fn estimate_binary(rows: &[(f64, bool)]) -> Option<Estimate> {
    if rows.is_empty() {
        return None;
    }
    let (mut tp, mut fp, mut fn_, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for &(p, positive) in rows {
        let p = p.clamp(0.0, 1.0);
        if positive {
            tp += p;
            fp += 1.0 - p;
        } else {
            fn_ += p;
            tn += 1.0 - p;
        }
    }
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Some(Estimate {
        rows: rows.len(),
        accuracy: (tp + tn) / rows.len() as f64,
        precision: Some(div(tp, tp + fp)),
        recall: Some(div(tp, tp + fn_)),
        f1: Some(div(2.0 * tp, 2.0 * tp + fp + fn_)),
    })
}

/// Estimates the accuracy of a multi-class classifier from the probability of each row's
/// predicted class.
pub fn estimate_multiclass(predicted_class_probability: &[f64]) -> Option<Estimate> {
    if predicted_class_probability.is_empty() {
        return None;
    }
    let sum: f64 = predicted_class_probability
        .iter()
        .map(|p| p.clamp(0.0, 1.0))
        .sum();
    Some(Estimate {
        rows: predicted_class_probability.len(),
        accuracy: sum / predicted_class_probability.len() as f64,
        precision: None,
        recall: None,
        f1: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_pools_violators() {
        // Outcomes 0,1,0,1 at scores .1,.2,.3,.4: the middle pair pools to 0.5.
        let c = Calibrator::fit(&[0.1, 0.2, 0.3, 0.4], &[false, true, false, true]).unwrap();
        assert_eq!(c.y, vec![0.0, 0.5, 1.0]);
        assert!((c.x[1] - 0.25).abs() < 1e-12);
        assert_eq!(c.apply(0.0), 0.0);
        assert_eq!(c.apply(0.25), 0.5);
        assert_eq!(c.apply(0.9), 1.0);
        assert!((c.apply(0.175) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn expected_confusion_matrix() {
        // Two positives at p=.9 and .6, one negative at p=.2.
        let e = estimate_binary(&[(0.9, true), (0.6, true), (0.2, false)]).unwrap();
        let (tp, fp, fn_, tn) = (1.5, 0.5, 0.2, 0.8);
        assert!((e.accuracy - (tp + tn) / 3.0).abs() < 1e-12);
        assert!((e.precision.unwrap() - tp / (tp + fp)).abs() < 1e-12);
        assert!((e.recall.unwrap() - tp / (tp + fn_)).abs() < 1e-12);
        assert!((e.f1.unwrap() - 2.0 * tp / (2.0 * tp + fp + fn_)).abs() < 1e-12);
    }
}
