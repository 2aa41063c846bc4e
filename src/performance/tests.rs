//! Engine-level tests of the label-free estimate: class identity and the decision rule.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::analysis::{Analysis, Exchange};
use crate::metrics::Metrics;
use crate::record::{ParsedExchange, Prediction};

fn engine(cfg: Config) -> PerformanceEngine {
    let metrics = Metrics::new("test");
    PerformanceEngine::new(Arc::new(cfg), metrics.performance.clone(), None)
}

fn observe(e: &PerformanceEngine, id: &str, label: f64, probs: Vec<f64>) {
    let parsed = ParsedExchange {
        rows: Vec::new(),
        predictions: vec![Prediction {
            value: FeatureValue::Number(label),
            probabilities: Some(probs),
        }],
    };
    e.observe(&Exchange {
        model: "m",
        version: None,
        request_id: id,
        received_at: SystemTime::now(),
        parsed: &parsed,
        now: tokio::time::Instant::now(),
        request: None,
        baseline: None,
    });
}

fn cfg() -> Config {
    let mut cfg = Config::default();
    cfg.drift.window = Duration::from_secs(3600);
    cfg
}

/// Issue 12, defect 1: a model with a 0.65 threshold predicts 0 at P(1) = 0.6. The class
/// of each probability column must not be learnt from the row's argmax (last row wins):
/// both orders must give the same estimate, with "1" the positive class.
#[tokio::test(start_paused = true)]
async fn estimate_does_not_depend_on_row_order_with_a_non_half_threshold() {
    let rows = [(1.0, vec![0.2, 0.8]), (0.0, vec![0.4, 0.6])];
    let mut estimates = Vec::new();
    for order in [[0, 1], [1, 0]] {
        let e = engine(cfg());
        for (n, i) in order.iter().enumerate() {
            let (label, probs) = rows[*i].clone();
            observe(&e, &format!("r{n}"), label, probs);
        }
        let est = e.report("m").and_then(|r| r.estimated).expect("estimate");
        assert_eq!(est.positive_class.as_deref(), Some("1"));
        assert_eq!(est.classes, vec!["0".to_string(), "1".to_string()]);
        estimates.push(est.estimate.accuracy);
    }
    // Row 1 predicted 1 at P(1) = .8 (right with .8), row 2 predicted 0 at P(1) = .6
    // (right with .4): expected accuracy 0.6 in either order.
    for a in estimates {
        assert!((a - 0.6).abs() < 1e-12, "{a}");
    }
}

/// Rows that carry scores but no label decide by the configured threshold, not argmax.
#[tokio::test(start_paused = true)]
async fn unlabelled_rows_use_the_configured_threshold() {
    let mut c = cfg();
    c.performance.threshold = Some(0.65);
    let e = engine(c);
    let parsed = ParsedExchange {
        rows: Vec::new(),
        predictions: vec![Prediction {
            value: FeatureValue::Missing,
            probabilities: Some(vec![0.4, 0.6]),
        }],
    };
    e.observe(&Exchange {
        model: "m",
        version: None,
        request_id: "a",
        received_at: SystemTime::now(),
        parsed: &parsed,
        now: tokio::time::Instant::now(),
        request: None,
        baseline: None,
    });
    let est = e.report("m").and_then(|r| r.estimated).expect("estimate");
    assert_eq!(est.threshold, Some(0.65));
    // Predicted 0 (0.6 < 0.65): right with probability 0.4.
    assert!((est.estimate.accuracy - 0.4).abs() < 1e-12);
}

/// The health check's reference accuracy of a baseline holding scores honours the
/// model's threshold instead of assuming 0.5.
#[test]
fn reference_accuracy_uses_the_threshold() {
    let cols = vec!["prediction".to_string(), "target".to_string()];
    // Scores .6 with truth 0 (x3), .7 with truth 1, .2 with truth 0.
    let rows: Vec<Vec<Option<f64>>> = [(0.6, 0.0), (0.6, 0.0), (0.6, 0.0), (0.7, 1.0), (0.2, 0.0)]
        .iter()
        .map(|(p, t)| vec![Some(*p), Some(*t)])
        .collect();
    let at_half =
        joint::reference(&cols, &rows.clone().into(), "1", None, Task::Classification).unwrap();
    assert!((at_half - 0.4).abs() < 1e-12, "{at_half}");
    let at_65 = joint::reference(
        &cols,
        &rows.clone().into(),
        "1",
        Some(0.65),
        Task::Classification,
    )
    .unwrap();
    assert!((at_65 - 1.0).abs() < 1e-12, "{at_65}");
}
