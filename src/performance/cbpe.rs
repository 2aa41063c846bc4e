//! Label-free performance estimation from predicted probabilities, as NannyML's
//! confidence-based performance estimation (CBPE).
//!
//! For a calibrated classifier the probability `p` of a class is the chance that the row's
//! truth is that class. A row predicted positive is then a true positive with probability
//! `p` and a false positive with `1 − p`; a row predicted negative is a false negative with
//! `p` and a true negative with `1 − p`. Summing these expectations over the window gives an
//! expected confusion matrix, and from it accuracy, precision, recall, F1 and specificity —
//! without any ground truth. The expected ROC AUC ranks the rows by the model's own scores
//! and accumulates the expected true and false positives down the ranking (NannyML's
//! estimator, with tied scores taken as one step). Multi-class models are estimated one
//! class against the rest and macro-averaged; the expected accuracy is the mean probability
//! of the predicted class.
//!
//! Which row counts as predicted positive is the model's own decision (its returned label,
//! or its decision threshold on the score), never the largest probability: see
//! [`super::classifier`].
//!
//! The estimate is only as good as the calibration. When the baseline holds scores and
//! targets jointly, [`Calibrator::fit_if_better`] learns the map from score to observed
//! rate (isotonic regression, pool-adjacent-violators) and keeps it when it predicts held-out
//! baseline rows better than the raw scores (cross-validated Brier score); otherwise the
//! model is taken as calibrated.
//!
//! Sampling error: for each metric, the standard deviation of the realized value around the
//! estimate when every row's truth is drawn from its calibrated probability (independent
//! Bernoulli draws; first-order delta method for the ratios; Hanley–McNeil for ROC AUC with
//! the expected class counts; multi-class: per-class errors combined as for a mean of
//! independent terms). It shrinks as `1/√n` with the window's size.

use std::collections::BTreeMap;

use serde::Serialize;

/// A monotone map from predicted probability to observed positive rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrator {
    map: Map,
}

#[derive(Debug, Clone, PartialEq)]
enum Map {
    /// Isotonic regression as scikit-learn's `IsotonicRegression(out_of_bounds="clip")`:
    /// each block's lowest and highest score with the block's observed rate (flat within
    /// a block, linear between blocks, flat beyond the ends).
    Isotonic { x: Vec<f64>, y: Vec<f64> },
    /// Logistic on the score's logit (Platt scaling): `σ(a·logit(s) + b)`.
    Logistic { a: f64, b: f64 },
}

/// Scores are clamped this far from 0 and 1 before taking their logit.
const LOGIT_EPS: f64 = 1e-7;

fn logit(s: f64) -> f64 {
    let s = s.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
    (s / (1.0 - s)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// A block of pooled adjacent violators: (lowest score, highest score, sum of outcomes,
/// rows).
type Block = (f64, f64, f64, f64);

/// Folds of the cross-validation that decides whether calibration helps.
const CALIBRATION_FOLDS: usize = 5;

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
        // Blocks: (sum of x, sum of y, weight); equal scores start as one block.
        let mut blocks: Vec<Block> = Vec::with_capacity(pairs.len());
        let mut i = 0;
        while i < pairs.len() {
            let s = pairs[i].0;
            let (mut ys, mut w) = (0.0, 0.0);
            while i < pairs.len() && pairs[i].0 == s {
                ys += pairs[i].1;
                w += 1.0;
                i += 1;
            }
            blocks.push((s, s, ys, w));
            Self::pool(&mut blocks);
        }
        if blocks.len() < 2 {
            return None;
        }
        Some(Calibrator {
            map: Map::Isotonic {
                x: blocks
                    .iter()
                    .flat_map(|b| if b.0 < b.1 { vec![b.0, b.1] } else { vec![b.0] })
                    .collect(),
                y: blocks
                    .iter()
                    .flat_map(|b| {
                        let y = b.2 / b.3;
                        if b.0 < b.1 {
                            vec![y, y]
                        } else {
                            vec![y]
                        }
                    })
                    .collect(),
            },
        })
    }

    /// Fits `σ(a·logit(score) + b)` by maximum likelihood (Newton's method, a little
    /// ridge for separable data); `None` with fewer than two usable pairs or both
    /// outcomes absent.
    pub fn fit_logistic(score: &[f64], outcome: &[bool]) -> Option<Calibrator> {
        let pairs: Vec<(f64, f64)> = score
            .iter()
            .zip(outcome)
            .filter(|(s, _)| s.is_finite())
            .map(|(s, o)| (logit(*s), if *o { 1.0 } else { 0.0 }))
            .collect();
        let positives = pairs.iter().filter(|p| p.1 > 0.5).count();
        if pairs.len() < 2 || positives == 0 || positives == pairs.len() {
            return None;
        }
        let ridge = 1e-6;
        // Penalised log-likelihood of (a, b).
        let loglik = |a: f64, b: f64| -> f64 {
            let mut l = -0.5 * ridge * (a * a + b * b);
            for (z, y) in &pairs {
                let t = a * z + b;
                // log σ(t) = −log(1 + e^(−t)), stably.
                let log_p = -softplus(-t);
                let log_q = -softplus(t);
                l += y * log_p + (1.0 - y) * log_q;
            }
            l
        };
        // Newton's method from the flat model (well conditioned), halving steps that do not
        // raise the likelihood.
        let (mut a, mut b) = (0.0, 0.0);
        let mut current = loglik(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) =
                (-ridge * a, -ridge * b, ridge, 0.0, ridge);
            for (z, y) in &pairs {
                let p = sigmoid(a * z + b);
                let w = p * (1.0 - p);
                ga += (y - p) * z;
                gb += y - p;
                haa += w * z * z;
                hab += w * z;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if !det.is_finite() || det <= 0.0 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            let mut step = 1.0;
            let mut improved = false;
            for _ in 0..30 {
                let (na, nb) = (a + step * da, b + step * db);
                let l = loglik(na, nb);
                if l.is_finite() && l >= current {
                    a = na;
                    b = nb;
                    improved = l > current;
                    current = l;
                    break;
                }
                step /= 2.0;
            }
            if !improved || (step * da).abs().max((step * db).abs()) < 1e-10 {
                break;
            }
        }
        (a > 0.0).then_some(Calibrator {
            map: Map::Logistic { a, b },
        })
    }

    /// `isotonic` or `logistic`.
    pub fn method(&self) -> &'static str {
        match self.map {
            Map::Isotonic { .. } => "isotonic",
            Map::Logistic { .. } => "logistic",
        }
    }

    fn pool(blocks: &mut Vec<Block>) {
        while blocks.len() >= 2 {
            let (_, x1, y1, w1) = blocks[blocks.len() - 1];
            let (x0, _, y0, w0) = blocks[blocks.len() - 2];
            if y0 / w0 <= y1 / w1 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (x0, x1, y0 + y1, w0 + w1);
        }
    }

    /// Chooses the calibration that predicts held-out outcomes best (lowest Brier score,
    /// cross-validated on these pairs in [`CALIBRATION_FOLDS`] interleaved folds) among
    /// the raw scores, logistic scaling of their logit ([`Calibrator::fit_logistic`]) and
    /// isotonic regression ([`Calibrator::fit`]), and fits it on all pairs. `None`: the
    /// raw scores are best (taken as calibrated).
    pub fn fit_if_better(score: &[f64], outcome: &[bool]) -> Option<Calibrator> {
        let n = score.len().min(outcome.len());
        if n < 2 * CALIBRATION_FOLDS {
            return Self::fit(score, outcome);
        }
        // Interleave by score rank so that each fold covers the whole score range.
        let mut order: Vec<usize> = (0..n).filter(|&i| score[i].is_finite()).collect();
        order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
        // Held-out squared errors per row of the three candidates.
        let (mut raw, mut isotonic, mut logistic) = (Vec::new(), Vec::new(), Vec::new());
        for fold in 0..CALIBRATION_FOLDS {
            let (mut s, mut o) = (Vec::new(), Vec::new());
            for (r, &i) in order.iter().enumerate() {
                if r % CALIBRATION_FOLDS != fold {
                    s.push(score[i]);
                    o.push(outcome[i]);
                }
            }
            let c = Self::fit(&s, &o);
            let l = Self::fit_logistic(&s, &o);
            for (r, &i) in order.iter().enumerate() {
                if r % CALIBRATION_FOLDS == fold {
                    let y = if outcome[i] { 1.0 } else { 0.0 };
                    let p = score[i].clamp(0.0, 1.0);
                    let q = c.as_ref().map_or(p, |c| c.apply(score[i]));
                    let g = l.as_ref().map_or(p, |c| c.apply(score[i]));
                    raw.push((p - y) * (p - y));
                    isotonic.push((q - y) * (q - y));
                    logistic.push((g - y) * (g - y));
                }
            }
        }
        // From the simplest candidate up, a more flexible one is taken only when it is
        // better by more than two standard errors of the paired difference: noise does not
        // buy flexibility (and isotonic's flat ends extrapolate worst under covariate shift).
        let better = |simple: &[f64], flexible: &[f64]| {
            let d: Vec<f64> = simple.iter().zip(flexible).map(|(a, b)| a - b).collect();
            let n = d.len() as f64;
            let mean = d.iter().sum::<f64>() / n;
            let var = d.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0).max(1.0);
            mean > 2.0 * (var / n).sqrt()
        };
        let mut choice = &raw;
        let mut pick = 0;
        if better(choice, &logistic) {
            choice = &logistic;
            pick = 1;
        }
        if better(choice, &isotonic) {
            pick = 2;
        }
        match pick {
            0 => None,
            1 => Self::fit_logistic(score, outcome),
            _ => Self::fit(score, outcome),
        }
    }

    /// The calibrated probability of `p`.
    pub fn apply(&self, p: f64) -> f64 {
        let (x, y) = match &self.map {
            Map::Isotonic { x, y } => (x, y),
            Map::Logistic { a, b } => {
                return if p.is_finite() {
                    sigmoid(a * logit(p) + b)
                } else {
                    p
                }
            }
        };
        let n = x.len();
        if n == 0 || !p.is_finite() {
            return p;
        }
        if p <= x[0] {
            return y[0];
        }
        if p >= x[n - 1] {
            return y[n - 1];
        }
        let i = x.partition_point(|v| *v <= p);
        let (x0, x1, y0, y1) = (x[i - 1], x[i], y[i - 1], y[i]);
        if x1 == x0 {
            return y1;
        }
        y0 + (y1 - y0) * (p - x0) / (x1 - x0)
    }
}

/// The estimated metrics, in export order.
pub const ESTIMATED_METRICS: [&str; 6] = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "specificity",
    "roc_auc",
];

/// Expected performance of a window of predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Rows the estimate is based on.
    pub rows: usize,
    /// Expected accuracy.
    pub accuracy: f64,
    /// Expected precision (of the positive class; macro over classes for multi-class).
    pub precision: Option<f64>,
    /// Expected recall.
    pub recall: Option<f64>,
    /// Expected F1.
    pub f1: Option<f64>,
    /// Expected specificity (true negative rate).
    pub specificity: Option<f64>,
    /// Expected ROC AUC.
    pub roc_auc: Option<f64>,
    /// Standard error of each estimate for this window's size, by metric.
    pub sampling_error: BTreeMap<&'static str, f64>,
}

impl Estimate {
    /// The `(metric, value)` pairs that are defined.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let values = [
            Some(self.accuracy),
            self.precision,
            self.recall,
            self.f1,
            self.specificity,
            self.roc_auc,
        ];
        ESTIMATED_METRICS
            .iter()
            .zip(values)
            .filter_map(|(n, v)| v.filter(|v| v.is_finite()).map(|v| (*n, v)))
            .collect()
    }
}

/// One row of a binary model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinaryRow {
    /// The model's score for the positive class (ranks the rows for ROC AUC).
    pub score: f64,
    /// The calibrated probability that the row is positive.
    pub p: f64,
    /// Whether the model predicted the positive class.
    pub predicted_positive: bool,
}

/// Expected one-vs-rest counts and metrics of one class, with standard errors.
#[derive(Debug, Clone, Copy, Default)]
struct ClassEstimate {
    precision: Option<f64>,
    recall: Option<f64>,
    f1: Option<f64>,
    specificity: Option<f64>,
    roc_auc: Option<f64>,
    se_precision: Option<f64>,
    se_recall: Option<f64>,
    se_f1: Option<f64>,
    se_specificity: Option<f64>,
    se_roc_auc: Option<f64>,
}

/// `a / b`, and 0 when `b` is 0 (scikit-learn's `zero_division` value, so that estimates
/// and realized values agree on what an undefined ratio is).
fn ratio(a: f64, b: f64) -> Option<f64> {
    Some(if b > 0.0 { a / b } else { 0.0 })
}

/// Σ p(1−p)·g² over the rows, for a gradient `g(row)`: the delta-method variance of a
/// statistic of independent Bernoulli truths.
fn delta_se(rows: &[BinaryRow], g: impl Fn(&BinaryRow) -> f64) -> f64 {
    rows.iter()
        .map(|r| {
            let p = r.p.clamp(0.0, 1.0);
            let d = g(r);
            p * (1.0 - p) * d * d
        })
        .sum::<f64>()
        .sqrt()
}

/// Expected ROC AUC: rows ranked by `score` (ties as one step), expected true and false
/// positives accumulated down the ranking, trapezoids under the curve.
fn expected_auc(rows: &[BinaryRow]) -> Option<f64> {
    // (score, clamped p) pairs, sorted by value rather than through references (the same
    // stable order, so the same sums; the window holds up to 100 000 rows).
    let mut order: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.score.is_finite())
        .map(|r| (r.score, r.p.clamp(0.0, 1.0)))
        .collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos: f64 = order.iter().map(|r| r.1).sum();
    let neg = order.len() as f64 - pos;
    if pos <= 0.0 || neg <= 0.0 {
        return None;
    }
    let (mut tp, mut fp, mut area) = (0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let (tp0, fp0) = (tp, fp);
        let s = order[i].0;
        while i < order.len() && order[i].0 == s {
            let p = order[i].1;
            tp += p;
            fp += 1.0 - p;
            i += 1;
        }
        area += (fp - fp0) * (tp + tp0) / 2.0;
    }
    Some((area / (pos * neg)).clamp(0.0, 1.0))
}

/// Hanley & McNeil's standard error of an AUC `a` with `pos` positives and `neg` negatives.
fn auc_se(a: f64, pos: f64, neg: f64) -> Option<f64> {
    if pos <= 0.0 || neg <= 0.0 {
        return None;
    }
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let v =
        (a * (1.0 - a) + (pos - 1.0).max(0.0) * (q1 - a * a) + (neg - 1.0).max(0.0) * (q2 - a * a))
            / (pos * neg);
    Some(v.max(0.0).sqrt())
}

/// `f()` when `denominator` is positive, else 0 (an undefined ratio is a constant 0).
fn safe(denominator: f64, f: impl FnOnce() -> f64) -> f64 {
    if denominator > 0.0 {
        f()
    } else {
        0.0
    }
}

fn class_estimate(rows: &[BinaryRow]) -> ClassEstimate {
    let (mut tp, mut fp, mut fn_, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for r in rows {
        let p = r.p.clamp(0.0, 1.0);
        if r.predicted_positive {
            tp += p;
            fp += 1.0 - p;
        } else {
            fn_ += p;
            tn += 1.0 - p;
        }
    }
    let n_pred = tp + fp;
    let (pos, neg) = (tp + fn_, fp + tn);
    let precision = ratio(tp, n_pred);
    let recall = ratio(tp, pos);
    let specificity = ratio(tn, neg);
    let f1 = ratio(2.0 * tp, 2.0 * tp + fp + fn_);
    let ind = |r: &BinaryRow| if r.predicted_positive { 1.0 } else { 0.0 };
    let roc_auc = expected_auc(rows);
    ClassEstimate {
        precision,
        recall,
        f1,
        specificity,
        roc_auc,
        se_precision: precision.map(|_| safe(n_pred, || delta_se(rows, |r| ind(r) / n_pred))),
        se_recall: recall.map(|v| safe(pos, || delta_se(rows, |r| (ind(r) - v) / pos))),
        se_f1: f1.map(|v| {
            safe(n_pred + pos, || {
                delta_se(rows, |r| (2.0 * ind(r) - v) / (n_pred + pos))
            })
        }),
        se_specificity: specificity
            .map(|v| safe(neg, || delta_se(rows, |r| (v - (1.0 - ind(r))) / neg))),
        se_roc_auc: roc_auc.and_then(|a| auc_se(a, pos, neg)),
    }
}

/// Estimates a binary classifier from its rows; `None` when there are none.
pub fn estimate_binary(rows: &[BinaryRow]) -> Option<Estimate> {
    if rows.is_empty() {
        return None;
    }
    let n = rows.len() as f64;
    let correct: f64 = rows
        .iter()
        .map(|r| {
            let p = r.p.clamp(0.0, 1.0);
            if r.predicted_positive {
                p
            } else {
                1.0 - p
            }
        })
        .sum();
    let c = class_estimate(rows);
    let mut se = BTreeMap::new();
    se.insert("accuracy", delta_se(rows, |_| 1.0 / n));
    for (name, v) in [
        ("precision", c.se_precision),
        ("recall", c.se_recall),
        ("f1", c.se_f1),
        ("specificity", c.se_specificity),
        ("roc_auc", c.se_roc_auc),
    ] {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            se.insert(name, v);
        }
    }
    Some(Estimate {
        rows: rows.len(),
        accuracy: correct / n,
        precision: c.precision,
        recall: c.recall,
        f1: c.f1,
        specificity: c.specificity,
        roc_auc: c.roc_auc,
        sampling_error: se,
    })
}

/// One row of a multi-class model.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiRow {
    /// The model's score per class (ranks the rows for ROC AUC).
    pub scores: Vec<f64>,
    /// Calibrated probability per class (summing to 1).
    pub p: Vec<f64>,
    /// Index of the predicted class.
    pub predicted: usize,
}

/// Mean of the defined values and the standard error of that mean (independent terms);
/// `None` when no class has a value.
fn macro_mean(values: &[(Option<f64>, Option<f64>)]) -> (Option<f64>, Option<f64>) {
    let defined: Vec<(f64, Option<f64>)> = values
        .iter()
        .filter_map(|(v, se)| v.map(|v| (v, *se)))
        .collect();
    if defined.is_empty() {
        return (None, None);
    }
    let k = defined.len() as f64;
    let mean = defined.iter().map(|(v, _)| v).sum::<f64>() / k;
    let var: f64 = defined
        .iter()
        .map(|(_, se)| se.unwrap_or(0.0).powi(2))
        .sum();
    (Some(mean), Some(var.sqrt() / k))
}

/// Estimates a `k`-class classifier one class against the rest, macro-averaged over the
/// classes whose metric is defined; `None` without rows.
pub fn estimate_multiclass(rows: &[MultiRow], k: usize) -> Option<Estimate> {
    let rows: Vec<&MultiRow> = rows
        .iter()
        .filter(|r| r.p.len() == k && r.scores.len() == k && r.predicted < k)
        .collect();
    if rows.is_empty() || k == 0 {
        return None;
    }
    let n = rows.len() as f64;
    let q: Vec<f64> = rows
        .iter()
        .map(|r| r.p[r.predicted].clamp(0.0, 1.0))
        .collect();
    let accuracy = q.iter().sum::<f64>() / n;
    let se_accuracy = q.iter().map(|q| q * (1.0 - q)).sum::<f64>().sqrt() / n;
    let per: Vec<ClassEstimate> = (0..k)
        .map(|c| {
            let binary: Vec<BinaryRow> = rows
                .iter()
                .map(|r| BinaryRow {
                    score: r.scores[c],
                    p: r.p[c],
                    predicted_positive: r.predicted == c,
                })
                .collect();
            class_estimate(&binary)
        })
        .collect();
    let pick = |f: fn(&ClassEstimate) -> (Option<f64>, Option<f64>)| {
        macro_mean(&per.iter().map(f).collect::<Vec<_>>())
    };
    let (precision, se_p) = pick(|c| (c.precision, c.se_precision));
    let (recall, se_r) = pick(|c| (c.recall, c.se_recall));
    let (f1, se_f) = pick(|c| (c.f1, c.se_f1));
    let (specificity, se_s) = pick(|c| (c.specificity, c.se_specificity));
    let (roc_auc, se_a) = pick(|c| (c.roc_auc, c.se_roc_auc));
    let mut se = BTreeMap::new();
    se.insert("accuracy", se_accuracy);
    for (name, v) in [
        ("precision", se_p),
        ("recall", se_r),
        ("f1", se_f),
        ("specificity", se_s),
        ("roc_auc", se_a),
    ] {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            se.insert(name, v);
        }
    }
    Some(Estimate {
        rows: rows.len(),
        accuracy,
        precision,
        recall,
        f1,
        specificity,
        roc_auc,
        sampling_error: se,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn row(p: f64, predicted_positive: bool) -> BinaryRow {
        BinaryRow {
            score: p,
            p,
            predicted_positive,
        }
    }

    #[test]
    fn isotonic_pools_violators() {
        // Outcomes 0,1,0,1 at scores .1,.2,.3,.4: the middle pair pools to 0.5.
        let c = Calibrator::fit(&[0.1, 0.2, 0.3, 0.4], &[false, true, false, true]).unwrap();
        let Map::Isotonic { x, y } = &c.map else {
            panic!("isotonic")
        };
        assert_eq!(y, &vec![0.0, 0.5, 0.5, 1.0]);
        assert_eq!(x, &vec![0.1, 0.2, 0.3, 0.4]);
        // sklearn: IsotonicRegression(out_of_bounds="clip").fit([.1,.2,.3,.4], [0,1,0,1])
        //   .predict([0, .25, .9, .175]) = [0, .5, 1, .375]
        assert_eq!(c.apply(0.0), 0.0);
        assert_eq!(c.apply(0.25), 0.5);
        assert_eq!(c.apply(0.9), 1.0);
        assert!((c.apply(0.175) - 0.375).abs() < 1e-12);
    }

    #[test]
    fn expected_confusion_matrix() {
        // Two positives at p=.9 and .6, one negative at p=.2.
        let e = estimate_binary(&[row(0.9, true), row(0.6, true), row(0.2, false)]).unwrap();
        let (tp, fp, fn_, tn) = (1.5, 0.5, 0.2, 0.8);
        assert!((e.accuracy - (tp + tn) / 3.0).abs() < 1e-12);
        assert!((e.precision.unwrap() - tp / (tp + fp)).abs() < 1e-12);
        assert!((e.recall.unwrap() - tp / (tp + fn_)).abs() < 1e-12);
        assert!((e.f1.unwrap() - 2.0 * tp / (2.0 * tp + fp + fn_)).abs() < 1e-12);
        assert!((e.specificity.unwrap() - tn / (tn + fp)).abs() < 1e-12);
        // Ranking .9 > .6 > .2: pairs (i positive, j negative) weighted p_i (1 - p_j),
        // i ranked above j, over (Σp)(Σ(1-p)) minus the i = j terms half-counted by the
        // trapezoids: the estimator's own arithmetic, worked by hand.
        let (p1, p2, p3) = (0.9, 0.6, 0.2);
        let pos = p1 + p2 + p3;
        let neg = 3.0 - pos;
        let area = p1 * (1.0 - p2)
            + p1 * (1.0 - p3)
            + p2 * (1.0 - p3)
            + 0.5 * (p1 * (1.0 - p1) + p2 * (1.0 - p2) + p3 * (1.0 - p3));
        assert!((e.roc_auc.unwrap() - area / (pos * neg)).abs() < 1e-12);
    }

    /// The estimates and their sampling errors against many simulated windows whose truth
    /// is drawn from the (calibrated) probabilities: the mean realized value is the
    /// estimate, and the spread of the realized values is the sampling error.
    #[test]
    fn estimates_and_sampling_errors_match_simulated_truth() {
        let mut rng = StdRng::seed_from_u64(11);
        let n = 400;
        let rows: Vec<BinaryRow> = (0..n)
            .map(|_| {
                let p: f64 = rng.random::<f64>().powf(0.7);
                row(p, p >= 0.65)
            })
            .collect();
        let e = estimate_binary(&rows).unwrap();
        let trials = 3000;
        let mut acc = Vec::new();
        let mut rec = Vec::new();
        let mut auc = Vec::new();
        for _ in 0..trials {
            let y: Vec<bool> = rows.iter().map(|r| rng.random::<f64>() < r.p).collect();
            let correct = rows
                .iter()
                .zip(&y)
                .filter(|(r, y)| r.predicted_positive == **y)
                .count();
            acc.push(correct as f64 / n as f64);
            let pos = y.iter().filter(|y| **y).count() as f64;
            let tp = rows
                .iter()
                .zip(&y)
                .filter(|(r, y)| r.predicted_positive && **y)
                .count() as f64;
            rec.push(tp / pos);
            let labels: Vec<bool> = y.clone();
            let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
            auc.push(super::super::scores::roc_auc(&labels, &scores).unwrap());
        }
        let stats = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
            (m, s)
        };
        for (name, values, est) in [
            ("accuracy", &acc, e.accuracy),
            ("recall", &rec, e.recall.unwrap()),
            ("roc_auc", &auc, e.roc_auc.unwrap()),
        ] {
            let (m, s) = stats(values);
            let se = e.sampling_error[name];
            assert!(
                (m - est).abs() < 0.005,
                "{name}: mean {m} vs estimate {est}"
            );
            assert!(
                (se / s - 1.0).abs() < 0.15,
                "{name}: sampling error {se} vs simulated {s}"
            );
        }
    }

    #[test]
    fn calibration_is_chosen_by_held_out_brier_score() {
        let mut rng = StdRng::seed_from_u64(5);
        let n = 4000;
        // Calibrated scores: the raw scores are already right.
        let s: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        let y: Vec<bool> = s.iter().map(|p| rng.random::<f64>() < *p).collect();
        assert!(Calibrator::fit_if_better(&s, &y).is_none());
        // A distortion that is not logistic: isotonic wins.
        let q: Vec<f64> = s
            .iter()
            .map(|p| if *p < 0.5 { p / 5.0 } else { 0.9 + p / 10.0 })
            .collect();
        let c = Calibrator::fit_if_better(&q, &y).expect("calibration helps");
        assert_eq!(c.method(), "isotonic");
        // A temperature-scaled model: the logistic map recovers the truth.
        let t: Vec<f64> = s.iter().map(|p| sigmoid(2.5 * logit(*p))).collect();
        let c = Calibrator::fit_if_better(&t, &y).expect("calibration helps");
        assert_eq!(c.method(), "logistic");
        for p in [0.1, 0.5, 0.8] {
            let reported = sigmoid(2.5 * logit(p));
            assert!(
                (c.apply(reported) - p).abs() < 0.03,
                "{p}: {}",
                c.apply(reported)
            );
        }
    }

    #[test]
    fn multiclass_is_macro_one_versus_rest() {
        let rows = vec![
            MultiRow {
                scores: vec![0.7, 0.2, 0.1],
                p: vec![0.7, 0.2, 0.1],
                predicted: 0,
            },
            MultiRow {
                scores: vec![0.1, 0.3, 0.6],
                p: vec![0.1, 0.3, 0.6],
                predicted: 2,
            },
        ];
        let e = estimate_multiclass(&rows, 3).unwrap();
        assert!((e.accuracy - 0.65).abs() < 1e-12);
        // Class 0: tp .7 fp .3 fn .1; class 1: never predicted, tp 0 fn .5; class 2:
        // tp .6 fp .4 fn .1. Class 1 is never predicted: precision 0, as sklearn's.
        let precision = (0.7 + 0.0 + 0.6) / 3.0;
        let recall = (0.7 / 0.8 + 0.0 + 0.6 / 0.7) / 3.0;
        assert!((e.precision.unwrap() - precision).abs() < 1e-12);
        assert!((e.recall.unwrap() - recall).abs() < 1e-12);
        assert!(e.sampling_error.contains_key("f1"));
    }
}
