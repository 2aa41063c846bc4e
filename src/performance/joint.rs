//! What a baseline's row-aligned joint sample (columns: input features, `prediction`,
//! `target`; numeric cells) says about performance: the calibration of predicted
//! probabilities, and the reference value of the primary metric that model health compares
//! the live one with.

use super::cbpe::Calibrator;
use super::classifier::{Classifier, Reference, ReferenceRow};
use super::scores::{self, label_of_str};
use crate::baseline::{JointCells, JointRow};
use crate::config::Task;

/// `(prediction, target)` of the rows holding both.
fn pairs(columns: &[String], rows: &JointCells) -> Option<Vec<(f64, f64)>> {
    let p = columns.iter().position(|c| c == "prediction")?;
    let t = columns.iter().position(|c| c == "target")?;
    let out: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| match (r.get(p), r.get(t)) {
            (Some(a), Some(b)) if a.is_finite() && b.is_finite() => Some((a, b)),
            _ => None,
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Whether the prediction column holds probabilities (all in 0..1, some fractional)
/// rather than labels.
fn are_probabilities(pairs: &[(f64, f64)]) -> bool {
    pairs.iter().all(|(p, _)| (0.0..=1.0).contains(p))
        && pairs.iter().any(|(p, _)| p.fract() != 0.0)
}

fn label(x: f64) -> String {
    label_of_str(&format!("{x}"))
}

/// The joint sample's scored rows, when its `prediction` column holds probabilities (a
/// baseline built with the positive-class score as its prediction): one score per row (the
/// positive class's), no predicted label, the target label.
pub fn scored_reference(columns: &[String], rows: &JointCells) -> Option<Reference> {
    let pairs = pairs(columns, rows)?;
    if !are_probabilities(&pairs) {
        return None;
    }
    Some(Reference {
        classes: None,
        rows: pairs
            .iter()
            .map(|(p, t)| ReferenceRow {
                scores: vec![*p],
                predicted: None,
                target: Some(label(*t)),
            })
            .collect(),
    })
}

/// The joint sample's scored rows when it holds the named score columns (one = the
/// positive class's score, several = one per class in class order): each row's scores,
/// its predicted label (the `prediction` column, when it holds labels rather than
/// probabilities) and its target. `None` when a score column is missing.
pub fn scored_reference_with(
    columns: &[String],
    rows: &JointCells,
    score_columns: &[String],
) -> Option<Reference> {
    if score_columns.is_empty() {
        return None;
    }
    let idx: Vec<usize> = score_columns
        .iter()
        .map(|c| columns.iter().position(|x| x == c))
        .collect::<Option<_>>()?;
    let p = columns.iter().position(|c| c == "prediction");
    let t = columns.iter().position(|c| c == "target");
    let cell = |r: &JointRow<'_>, i: Option<usize>| i.and_then(|i| r.get(i));
    let predictions_are_labels = p.is_some_and(|p| {
        let v: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.get(p).map(|x| (x, 0.0)))
            .collect();
        !v.is_empty() && !are_probabilities(&v)
    });
    let out: Vec<ReferenceRow> = rows
        .iter()
        .filter_map(|r| {
            let scores: Vec<f64> = idx
                .iter()
                .map(|&i| cell(&r, Some(i)))
                .collect::<Option<_>>()?;
            Some(ReferenceRow {
                scores,
                predicted: if predictions_are_labels {
                    cell(&r, p).map(label)
                } else {
                    None
                },
                target: cell(&r, t).map(label),
            })
        })
        .collect();
    (!out.is_empty()).then_some(Reference {
        classes: None,
        rows: out,
    })
}

/// Calibration of the positive-class probability on the joint sample (see
/// [`scored_reference`]); `None` when the sample has no scores or calibration does not help.
pub fn calibrator(columns: &[String], rows: &JointCells, positive: &str) -> Option<Calibrator> {
    let reference = scored_reference(columns, rows)?;
    let c = Classifier::new(1, Some(&reference), &[], positive, None);
    c.calibrators.get(c.positive).cloned().flatten()
}

/// Accuracy of the model on scored rows: each row's predicted label (its own, else the
/// classifier's decision rule) against its target.
pub fn reference_accuracy(reference: &Reference, classifier: &Classifier) -> Option<f64> {
    let (mut a, mut p) = (Vec::new(), Vec::new());
    for r in &reference.rows {
        let (Some(t), Some(d)) = (
            r.target.as_ref(),
            classifier.predicted_label(&r.scores, r.predicted.as_deref()),
        ) else {
            continue;
        };
        a.push(t.clone());
        p.push(d);
    }
    scores::classification(&a, &p, &classifier.classes[classifier.positive]).map(|s| s.accuracy)
}

/// The primary metric on the joint sample: accuracy for classifiers (scores decide by the
/// model's decision rule, see [`Classifier`]; labels are compared as they are), R² for
/// regressors.
pub fn reference(
    columns: &[String],
    rows: &JointCells,
    positive: &str,
    threshold: Option<f64>,
    task: Task,
) -> Option<f64> {
    let pairs = pairs(columns, rows)?;
    match task {
        Task::Regression => {
            let (p, t): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            scores::regression(&t, &p).and_then(|s| s.r2)
        }
        _ => {
            if let Some(r) = scored_reference(columns, rows) {
                let c = Classifier::new(1, Some(&r), &[], positive, threshold);
                return reference_accuracy(&r, &c);
            }
            let (p, t): (Vec<String>, Vec<String>) =
                pairs.iter().map(|(p, t)| (label(*p), label(*t))).unzip();
            scores::classification(&t, &p, positive).map(|s| s.accuracy)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::performance::cbpe::{estimate_binary, BinaryRow};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn cols() -> Vec<String> {
        vec!["x".into(), "prediction".into(), "target".into()]
    }

    /// An overconfident model: reports `q` for true probability `p`.
    fn overconfident(p: f64) -> f64 {
        if p >= 0.5 {
            p.sqrt().sqrt()
        } else {
            1.0 - (1.0 - p).sqrt().sqrt()
        }
    }

    #[test]
    fn baseline_calibration_corrects_an_overconfident_model() {
        let mut rng = StdRng::seed_from_u64(3);
        let sample = |rng: &mut StdRng, n: usize| -> Vec<(f64, bool)> {
            (0..n)
                .map(|_| {
                    let p: f64 = rng.random();
                    (overconfident(p), rng.random::<f64>() < p)
                })
                .collect()
        };
        let baseline: Vec<Vec<Option<f64>>> = sample(&mut rng, 5000)
            .into_iter()
            .map(|(q, y)| vec![Some(0.0), Some(q), Some(if y { 1.0 } else { 0.0 })])
            .collect();
        let c =
            calibrator(&cols(), &baseline.clone().into(), "1").expect("probabilities and labels");
        let live = sample(&mut rng, 20_000);
        let truth = live.iter().filter(|(q, y)| (*q >= 0.5) == *y).count() as f64 / 20_000.0;
        let row = |q: f64, p: f64| BinaryRow {
            score: q,
            p,
            predicted_positive: q >= 0.5,
        };
        let raw: Vec<BinaryRow> = live.iter().map(|(q, _)| row(*q, *q)).collect();
        let calibrated: Vec<BinaryRow> = live.iter().map(|(q, _)| row(*q, c.apply(*q))).collect();
        let raw = estimate_binary(&raw).unwrap().accuracy;
        let fixed = estimate_binary(&calibrated).unwrap().accuracy;
        assert!(
            raw - truth > 0.1,
            "uncalibrated is optimistic: {raw} vs {truth}"
        );
        assert!(
            (fixed - truth).abs() < 0.02,
            "calibrated {fixed} vs {truth}"
        );
        // The reference accuracy of the same baseline: p >= 0.5 predicts 1.
        let want = baseline
            .iter()
            .filter(|r| (r[1].unwrap() >= 0.5) == (r[2].unwrap() == 1.0))
            .count() as f64
            / 5000.0;
        let got = reference(
            &cols(),
            &baseline.clone().into(),
            "1",
            None,
            Task::Classification,
        )
        .unwrap();
        assert!((got - want).abs() < 1e-12);
    }

    #[test]
    fn labels_are_not_probabilities() {
        let rows = vec![
            vec![None, Some(1.0), Some(1.0)],
            vec![None, Some(0.0), Some(1.0)],
            vec![None, Some(1.0), None],
        ];
        assert!(calibrator(&cols(), &rows.clone().into(), "1").is_none());
        assert_eq!(
            reference(
                &cols(),
                &rows.clone().into(),
                "1",
                None,
                Task::Classification
            ),
            Some(0.5)
        );
        assert!(reference(
            &["a".to_string()],
            &rows.clone().into(),
            "1",
            None,
            Task::Classification
        )
        .is_none());
        let reg = vec![
            vec![None, Some(1.0), Some(1.5)],
            vec![None, Some(2.0), Some(2.5)],
            vec![None, Some(3.0), Some(2.0)],
        ];
        // sklearn.metrics.r2_score([1.5, 2.5, 2.0], [1, 2, 3]) = 1 - 1.5 / 0.5 = -2
        let r2 = reference(&cols(), &reg.clone().into(), "1", None, Task::Regression).unwrap();
        assert!((r2 + 2.0).abs() < 1e-12, "{r2}");
    }
}
