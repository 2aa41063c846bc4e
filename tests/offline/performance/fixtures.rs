//! `mlmon::performance` checked against scikit-learn.
//!
//! The fixtures in `tests/fixtures/performance/` come from
//! `scripts/gen/performance.py` (sklearn, fixed seeds); no expected value here is
//! computed by mlmon. Each case is replayed through the `PerformanceEngine` with paused
//! time: early ground truth (before the predictions are analysed), the predictions in
//! batches, ground truth after them (with duplicates, unknown ids and rows past a batch),
//! then ground truth after `feedback.ttl`. Every score must match sklearn to 1e-9 and the
//! `mlmon_feedback_total` counters must match the case's counts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mlmon::analysis::{Analysis, Exchange};
use mlmon::config::{Config, Task};
use mlmon::feedback::Outcome;
use mlmon::metrics::Metrics;
use mlmon::performance::{FeedbackItem, PerformanceEngine};
use mlmon::record::{FeatureValue, ParsedExchange, Prediction};
use serde_json::Value;

const TOL: f64 = 1e-9;

fn cases() -> Vec<Value> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "performance",
        "scores.json",
    ]
    .iter()
    .collect();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap().clone();
    assert!(cases.len() >= 5);
    cases
}

fn fv(v: &Value) -> FeatureValue {
    FeatureValue::from_json(v).expect("scalar")
}

fn items(case: &Value, phase: &str) -> Vec<FeedbackItem> {
    case["feedback"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["phase"] == phase)
        .map(|f| FeedbackItem {
            request_id: f["request_id"].as_str().unwrap().to_string(),
            row: f["row"].as_u64().unwrap() as usize,
            actual: fv(&f["actual"]),
        })
        .collect()
}

fn counter(metrics: &Metrics, model: &str, result: &str) -> f64 {
    let (text, _) = metrics.encode(None);
    crate::common::value(
        &crate::common::parse_exposition(&text),
        "mlmon_feedback_total",
        &[("model", model), ("result", result)],
    )
    .unwrap_or(0.0)
}

#[tokio::test(start_paused = true)]
async fn scores_match_sklearn() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let mut cfg = Config::default();
        cfg.feedback.ttl = Duration::from_secs(120);
        cfg.drift.window = Duration::from_secs(3600);
        cfg.performance.positive_class = case["positive_class"].as_str().unwrap().into();
        // The task is left to `auto` for classification (decided from the values seen);
        // regression is configured (a window of integral-looking floats is not expected).
        if case["task"] == "regression" {
            cfg.model.task = Task::Regression;
        }
        let metrics = Metrics::new("test");
        let engine = PerformanceEngine::new(Arc::new(cfg), metrics.performance.clone(), None);

        // Ground truth before the predictions: held, not yet counted.
        let early = items(&case, "before");
        for o in engine.feedback(name, &early) {
            assert_eq!(o, Outcome::Early, "{name}: early feedback is held");
        }
        for r in case["requests"].as_array().unwrap() {
            let scores = r["probabilities"].as_array();
            let parsed = ParsedExchange {
                rows: Vec::new(),
                predictions: r["predictions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Prediction {
                        value: fv(p),
                        probabilities: scores.map(|s| {
                            s[i].as_array()
                                .unwrap()
                                .iter()
                                .map(|x| x.as_f64().unwrap())
                                .collect()
                        }),
                    })
                    .collect(),
            };
            engine.observe(&Exchange {
                model: name,
                version: None,
                request_id: r["request_id"].as_str().unwrap(),
                received_at: SystemTime::now(),
                parsed: &parsed,
                now: tokio::time::Instant::now(),
                request: None,
                baseline: None,
            });
        }
        engine.feedback(name, &items(&case, "after"));
        tokio::time::advance(Duration::from_secs(121)).await;
        for o in engine.feedback(name, &items(&case, "late")) {
            assert_eq!(o, Outcome::Late, "{name}: feedback after the TTL is late");
        }

        let report = engine
            .refresh()
            .into_iter()
            .find(|r| r.model == name)
            .unwrap();
        let got = report.metrics();
        let expected = case["expected"].as_object().unwrap();
        assert_eq!(got.len(), expected.len(), "{name}: {got:?}");
        for (metric, want) in expected {
            let want = want.as_f64().unwrap();
            let (_, v) = got
                .iter()
                .find(|(m, _)| m == metric)
                .unwrap_or_else(|| panic!("{name}: no {metric} in {got:?}"));
            assert!(
                (v - want).abs() <= TOL * want.abs().max(1.0),
                "{name} {metric}: mlmon {v}, sklearn {want}"
            );
        }
        if let Some(c) = &report.classification {
            let avg = serde_json::to_value(c.averaging).unwrap();
            assert_eq!(avg, case["averaging"], "{name}: averaging");
            // sklearn.metrics.confusion_matrix, cell by cell (every label, zeros included).
            let want = case["expected_confusion"].as_object().unwrap();
            let mut cells = 0;
            for (actual, row) in want {
                for (predicted, n) in row.as_object().unwrap() {
                    let got = c
                        .confusion_matrix
                        .cells()
                        .find(|(a, p, _)| a == actual && p == predicted)
                        .map(|(_, _, n)| n);
                    assert_eq!(got, n.as_u64(), "{name}: confusion[{actual}][{predicted}]");
                    cells += 1;
                }
            }
            assert_eq!(
                c.confusion_matrix.cells().count(),
                cells,
                "{name}: matrix size"
            );
        }
        let counts = &case["expected_counts"];
        for result in ["matched", "unmatched", "late"] {
            assert_eq!(
                counter(&metrics, name, result),
                counts[result].as_f64().unwrap(),
                "{name}: mlmon_feedback_total{{result=\"{result}\"}}"
            );
        }
        // The gauges carry the same values.
        let (text, _) = metrics.encode(None);
        let samples = crate::common::parse_exposition(&text);
        for (metric, want) in expected {
            let v = crate::common::value(
                &samples,
                "mlmon_performance",
                &[("model", name), ("metric", metric)],
            )
            .unwrap_or_else(|| panic!("{name}: mlmon_performance{{metric={metric}}} missing"));
            assert!((v - want.as_f64().unwrap()).abs() <= TOL * v.abs().max(1.0));
        }
        // The confusion matrix gauges.
        if let Some(want) = case["expected_confusion"].as_object() {
            for (actual, row) in want {
                for (predicted, n) in row.as_object().unwrap() {
                    let v = crate::common::value(
                        &samples,
                        "mlmon_confusion_matrix",
                        &[
                            ("model", name),
                            ("actual", actual),
                            ("predicted", predicted),
                        ],
                    );
                    assert_eq!(
                        v,
                        n.as_f64(),
                        "{name}: mlmon_confusion_matrix {actual}/{predicted}"
                    );
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn window_expiry_removes_the_series() {
    let mut cfg = Config::default();
    cfg.drift.window = Duration::from_secs(60);
    let metrics = Metrics::new("test");
    let engine = PerformanceEngine::new(Arc::new(cfg), metrics.performance.clone(), None);
    let parsed = ParsedExchange {
        rows: Vec::new(),
        predictions: vec![Prediction {
            value: FeatureValue::Number(2.5),
            probabilities: None,
        }],
    };
    engine.observe(&Exchange {
        model: "m",
        version: None,
        request_id: "r1",
        received_at: SystemTime::now(),
        parsed: &parsed,
        now: tokio::time::Instant::now(),
        request: None,
        baseline: None,
    });
    engine.feedback(
        "m",
        &[FeedbackItem {
            request_id: "r1".into(),
            row: 0,
            actual: FeatureValue::Text("3.5".into()),
        }],
    );
    let r = engine.refresh().pop().unwrap();
    assert_eq!(
        r.task,
        Some(Task::Regression),
        "non-integral values: regression"
    );
    assert_eq!(
        r.metrics(),
        vec![("mae", 1.0), ("rmse", 1.0)],
        "one pair: no R²"
    );
    tokio::time::advance(Duration::from_secs(61)).await;
    let r = engine.refresh().pop().unwrap();
    assert!(r.metrics().is_empty());
    let (text, _) = metrics.encode(None);
    assert!(!text.contains("mlmon_performance{"), "{text}");
}
