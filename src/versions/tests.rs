//! Engine-level tests: versions kept apart, ground truth joined to the version that
//! answered, comparisons and their verdicts, bounded labels, exported series.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::compare::{CompareParams, Verdict};
use super::engine::VersionsEngine;
use super::significance;
use crate::analysis::{Analysis, Exchange};
use crate::baseline::Registry;
use crate::config::{Config, Task};
use crate::latency::LatencyWindows;
use crate::metrics::Metrics;
use crate::performance::FeedbackItem;
use crate::proxy::model_id::{ModelNames, OTHER};
use crate::record::{FeatureValue, ParsedExchange, Prediction};

struct Fixture {
    engine: VersionsEngine,
    latency: Arc<LatencyWindows>,
    metrics: Metrics,
}

fn fixture(task: Task, max_versions: usize) -> Fixture {
    let mut cfg = Config::default();
    cfg.drift.window = Duration::from_secs(3600);
    cfg.model.task = task;
    let metrics = Metrics::new("test");
    let latency = Arc::new(LatencyWindows::new(cfg.drift.window));
    let names = Arc::new(ModelNames::new(8).with_max_versions(max_versions));
    let engine = VersionsEngine::new(
        Arc::new(cfg),
        names,
        latency.clone(),
        Arc::new(Registry::new(0, 100)),
        metrics.versions.clone(),
    );
    Fixture {
        engine,
        latency,
        metrics,
    }
}

fn observe(e: &VersionsEngine, version: Option<&str>, id: &str, values: &[FeatureValue]) {
    let parsed = ParsedExchange {
        rows: Vec::new(),
        predictions: values
            .iter()
            .map(|v| Prediction {
                value: v.clone(),
                probabilities: None,
            })
            .collect(),
    };
    e.observe(&Exchange {
        model: "m",
        version,
        request_id: id,
        received_at: SystemTime::now(),
        now: tokio::time::Instant::now(),
        parsed: &parsed,
        request: None,
        baseline: None,
    });
}

fn truth(id: &str, actual: f64) -> FeedbackItem {
    FeedbackItem {
        request_id: id.to_string(),
        row: 0,
        actual: FeatureValue::Number(actual),
    }
}

/// v1 right on 90 of 100 rows, v2 on 70 of 100: the realized accuracies, the z-test of
/// statsmodels (`proportions_ztest([70, 90], [100, 100])`) and `b_worse`.
#[tokio::test(start_paused = true)]
async fn accuracy_per_version_and_a_significant_regression() {
    let f = fixture(Task::Classification, 4);
    let mut items = Vec::new();
    for i in 0..100 {
        for (v, right) in [("v1", i < 90), ("v2", i < 70)] {
            let id = format!("{v}-{i}");
            observe(&f.engine, Some(v), &id, &[FeatureValue::Number(1.0)]);
            items.push(truth(&id, if right { 1.0 } else { 0.0 }));
        }
    }
    // Unversioned traffic is not this analysis' business.
    observe(&f.engine, None, "plain", &[FeatureValue::Number(1.0)]);
    items.push(truth("plain", 1.0));
    assert_eq!(f.engine.feedback("m", &items), 200);

    let c = f
        .engine
        .compare("m", "v1", "v2", &CompareParams::default())
        .unwrap();
    let acc = c.metrics.iter().find(|m| m.metric == "accuracy").unwrap();
    assert_eq!(
        (acc.a, acc.b, acc.n_a, acc.n_b),
        (Some(0.9), Some(0.7), 100, 100)
    );
    let want = significance::two_proportion(90, 100, 70, 100, 0.05).unwrap();
    assert_eq!(acc.p_value, Some(want.p_value));
    assert!(acc.p_value.unwrap() < 0.001);
    assert_eq!(acc.verdict, Verdict::BWorse);
    // The same labels from both: the distributions agree.
    let dist = c
        .metrics
        .iter()
        .find(|m| m.metric == "prediction_distribution")
        .unwrap();
    assert_eq!(dist.test, "chi2_homogeneity");
    assert_eq!(dist.p_value, Some(1.0));

    // The reverse direction is an improvement.
    let c = f
        .engine
        .compare("m", "v2", "v1", &CompareParams::default())
        .unwrap();
    assert_eq!(c.metrics[0].verdict, Verdict::BBetter);
    assert!(f
        .engine
        .compare("m", "v1", "v9", &CompareParams::default())
        .is_err());
}

#[tokio::test(start_paused = true)]
async fn few_rows_are_not_enough_and_many_equal_rows_are_no_difference() {
    let f = fixture(Task::Classification, 4);
    let mut items = Vec::new();
    for i in 0..20 {
        for (v, right) in [("a", i < 18), ("b", i < 10)] {
            let id = format!("{v}-{i}");
            observe(&f.engine, Some(v), &id, &[FeatureValue::Number(1.0)]);
            items.push(truth(&id, if right { 1.0 } else { 0.0 }));
        }
    }
    f.engine.feedback("m", &items);
    let c = f
        .engine
        .compare("m", "a", "b", &CompareParams::default())
        .unwrap();
    assert_eq!(c.metrics[0].metric, "accuracy");
    assert!(c.metrics[0].p_value.unwrap() < 0.05, "significant but tiny");
    assert_eq!(c.metrics[0].verdict, Verdict::NotEnoughData);

    // 500 rows each at 80 %: not significant and past the 393 needed for h = 0.2.
    let f = fixture(Task::Classification, 4);
    let mut items = Vec::new();
    for i in 0..500 {
        for v in ["a", "b"] {
            let id = format!("{v}-{i}");
            observe(&f.engine, Some(v), &id, &[FeatureValue::Number(1.0)]);
            items.push(truth(&id, if i % 5 == 0 { 0.0 } else { 1.0 }));
        }
    }
    f.engine.feedback("m", &items);
    let c = f
        .engine
        .compare("m", "a", "b", &CompareParams::default())
        .unwrap();
    assert_eq!(c.metrics[0].sample_size_needed, Some(393));
    assert_eq!(c.metrics[0].verdict, Verdict::NoDifference);
    // A stricter effect needs more rows than there are.
    let strict = CompareParams {
        min_effect: 0.1,
        ..CompareParams::default()
    };
    let c = f.engine.compare("m", "a", "b", &strict).unwrap();
    assert_eq!(c.metrics[0].verdict, Verdict::NotEnoughData);
}

/// Regression: absolute errors by Welch's t-test, prediction distributions by KS; latency
/// and errors come from the proxy's windows.
#[tokio::test(start_paused = true)]
async fn regression_errors_latency_and_distributions() {
    let f = fixture(Task::Regression, 4);
    let mut items = Vec::new();
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for i in 0..60 {
        let x = i as f64;
        for (v, pred) in [("v1", x + 0.5), ("v2", x + 3.0 + (i % 3) as f64)] {
            let id = format!("{v}-{i}");
            observe(&f.engine, Some(v), &id, &[FeatureValue::Number(pred)]);
            items.push(truth(&id, x));
            if v == "v1" {
                ea.push(0.5)
            } else {
                eb.push(3.0 + (i % 3) as f64)
            }
        }
        f.latency
            .record_version("m", "v1", Duration::from_millis(10 + i % 5), false);
        f.latency
            .record_version("m", "v2", Duration::from_millis(30 + i % 7), i % 10 == 0);
    }
    f.engine.feedback("m", &items);
    let c = f
        .engine
        .compare("m", "v1", "v2", &CompareParams::default())
        .unwrap();
    let names: Vec<&str> = c.metrics.iter().map(|m| m.metric).collect();
    assert_eq!(
        names,
        [
            "absolute_error",
            "error_rate",
            "latency_mean",
            "prediction_distribution"
        ]
    );
    let abs = &c.metrics[0];
    assert_eq!(abs.test, "welch_t");
    let ma = significance::Moments::of(&ea).unwrap();
    let mb = significance::Moments::of(&eb).unwrap();
    let want = significance::welch(ma, mb, 0.05).unwrap();
    assert!((abs.statistic.unwrap() - want.statistic).abs() < 1e-9);
    assert_eq!(abs.verdict, Verdict::BWorse);
    // 6 errors of 60 against none: statsmodels proportions_ztest([6, 0], [60, 60]).
    assert_eq!(c.metrics[1].verdict, Verdict::BWorse);
    assert!((c.metrics[1].p_value.unwrap() - 0.011966745157436275).abs() < 1e-12);
    assert_eq!(c.metrics[2].verdict, Verdict::BWorse, "30 ms against 10 ms");
    assert_eq!(c.metrics[3].test, "ks");

    // The refresh exports each version against the reference (the one with most
    // requests; a tie goes to the first name): v2 worse on latency.
    f.engine.refresh(&Registry::new(0, 100));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &f.metrics.registry).unwrap();
    assert!(out.contains(
        "mlmon_version_comparison_verdict{model=\"m\",version=\"v2\",reference=\"v1\",metric=\"latency_mean\"} -1.0"
    ), "{out}");
    assert!(
        out.contains("mlmon_version_performance{model=\"m\",version=\"v1\",metric=\"mae\"} 0.5")
    );
    assert!(out.contains(
        "mlmon_version_prediction_psi{model=\"m\",version=\"v2\",against=\"reference\"}"
    ));
    // The window empties: the series go.
    tokio::time::advance(Duration::from_secs(4000)).await;
    f.engine.refresh(&Registry::new(0, 100));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &f.metrics.registry).unwrap();
    assert!(!out.contains("mlmon_version_comparison_verdict{"), "{out}");
    assert!(!out.contains("mlmon_version_performance{"));
}

#[tokio::test(start_paused = true)]
async fn versions_and_labels_stay_bounded() {
    let f = fixture(Task::Auto, 2);
    for i in 0..50 {
        let v = format!("v{i}");
        observe(
            &f.engine,
            Some(&v),
            &format!("r{i}"),
            &[FeatureValue::Text(format!("label{i}"))],
        );
    }
    let r = f.engine.versions_report("m").unwrap();
    let names: Vec<&str> = r.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(names, [OTHER, "v0", "v1"]);
    let other = r.versions.iter().find(|v| v.version == OTHER).unwrap();
    assert_eq!(other.prediction_rows, 48);
    assert_eq!(r.task, Some("classification"));
}

/// Ground truth sent before the exchange was analysed joins when it is.
#[tokio::test(start_paused = true)]
async fn early_ground_truth_joins_its_version() {
    let f = fixture(Task::Classification, 4);
    assert_eq!(f.engine.feedback("m", &[truth("late-bird", 1.0)]), 0);
    observe(
        &f.engine,
        Some("v1"),
        "late-bird",
        &[FeatureValue::Number(1.0)],
    );
    let r = f.engine.versions_report("m").unwrap();
    let acc = r.versions[0].accuracy.unwrap();
    assert_eq!((acc.value, acc.n), (1.0, 1));
}

/// Class scores give each version its label-free accuracy (probabilities taken as
/// calibrated without a baseline): the mean probability of the predicted class.
#[tokio::test(start_paused = true)]
async fn estimated_accuracy_per_version() {
    let f = fixture(Task::Classification, 4);
    for (v, p1) in [("v1", 0.9), ("v2", 0.6)] {
        for i in 0..10 {
            let parsed = ParsedExchange {
                rows: Vec::new(),
                predictions: vec![Prediction {
                    value: FeatureValue::Number(1.0),
                    probabilities: Some(vec![1.0 - p1, p1]),
                }],
            };
            f.engine.observe(&Exchange {
                model: "m",
                version: Some(v),
                request_id: &format!("{v}-{i}"),
                received_at: SystemTime::now(),
                now: tokio::time::Instant::now(),
                parsed: &parsed,
                request: None,
                baseline: None,
            });
        }
    }
    let r = f.engine.versions_report("m").unwrap();
    let est: Vec<(String, f64, u64)> = r
        .versions
        .iter()
        .map(|v| {
            let e = v.estimated_accuracy.unwrap();
            (v.version.clone(), e.value, e.n)
        })
        .collect();
    assert_eq!(est.len(), 2);
    assert_eq!((est[0].0.as_str(), est[0].2), ("v1", 10));
    assert!((est[0].1 - 0.9).abs() < 1e-12, "{est:?}");
    assert!((est[1].1 - 0.6).abs() < 1e-12, "{est:?}");
    // No ground truth yet: no realized accuracy.
    assert!(r.versions.iter().all(|v| v.accuracy.is_none()));
}

/// Output drift per version against the baseline's prediction bins and against the
/// reference version: a version predicting like the baseline has PSI 0, one predicting
/// only the top decile a large one.
#[tokio::test(start_paused = true)]
async fn prediction_psi_against_the_baseline_and_the_reference() {
    let mut cfg = Config::default();
    cfg.drift.window = Duration::from_secs(3600);
    cfg.model.version = Some("v1".into());
    let metrics = Metrics::new("test");
    let latency = Arc::new(LatencyWindows::new(cfg.drift.window));
    let registry = Arc::new(Registry::new(0, 100));
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/baseline/python_snapshot.json"
    );
    let snap = crate::baseline::Snapshot::load(std::path::Path::new(path)).unwrap();
    registry.set("credit-risk", Arc::new(snap)).unwrap();
    let engine = VersionsEngine::new(
        Arc::new(cfg),
        Arc::new(ModelNames::new(8)),
        latency,
        registry.clone(),
        metrics.versions.clone(),
    );
    // One value in each baseline decile (edges 0.097, 0.207, ..., 0.899), ten times.
    let deciles = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95];
    for (v, values) in [("v1", deciles.to_vec()), ("v2", vec![0.95; 10])] {
        for i in 0..10 {
            let parsed = ParsedExchange {
                rows: Vec::new(),
                predictions: values
                    .iter()
                    .map(|x| Prediction {
                        value: FeatureValue::Number(*x),
                        probabilities: None,
                    })
                    .collect(),
            };
            engine.observe(&Exchange {
                model: "credit-risk",
                version: Some(v),
                request_id: &format!("{v}-{i}"),
                received_at: SystemTime::now(),
                now: tokio::time::Instant::now(),
                parsed: &parsed,
                request: None,
                baseline: None,
            });
        }
    }
    let r = engine.versions_report("credit-risk").unwrap();
    assert_eq!(r.reference.as_deref(), Some("v1"));
    let (v1, v2) = (&r.versions[0], &r.versions[1]);
    assert_eq!(v1.prediction_psi_baseline, Some(0.0));
    assert_eq!(v1.prediction_psi_reference, None, "the reference itself");
    // 9 empty bins floored at 1e-4 against 0.1, and all rows in the last:
    // 9·(1e-4 − 0.1)·ln(1e-4 / 0.1) + (1 − 0.1)·ln(1 / 0.1)
    let want = 9.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln() + 0.9 * 10f64.ln();
    let got = v2.prediction_psi_baseline.unwrap();
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    assert!(v2.prediction_psi_reference.unwrap() > 2.0);
    engine.refresh(&registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &metrics.registry).unwrap();
    assert!(out.contains(
        "mlmon_version_prediction_psi{model=\"credit-risk\",version=\"v1\",against=\"baseline\"} 0.0"
    ), "{out}");
}

/// The request ids kept for joining ground truth follow the store's requests, not
/// `feedback.max_pending` (which counts rows): with 8-row batches and room for 80 rows,
/// about 10 ids stay, and ground truth still joins the newest request and not an evicted one.
#[tokio::test(start_paused = true)]
async fn request_ids_stay_bounded_by_the_waiting_requests() {
    let mut cfg = Config::default();
    cfg.drift.window = Duration::from_secs(3600);
    cfg.model.task = Task::Classification;
    cfg.feedback.max_pending = 80;
    let engine = VersionsEngine::new(
        Arc::new(cfg),
        Arc::new(ModelNames::new(8).with_max_versions(4)),
        Arc::new(LatencyWindows::new(Duration::from_secs(3600))),
        Arc::new(Registry::new(0, 100)),
        Metrics::new("test").versions.clone(),
    );
    let rows = vec![FeatureValue::Number(1.0); 8];
    for i in 0..1000 {
        observe(&engine, Some("v1"), &format!("request-{i}"), &rows);
    }
    let ids = engine.pending_ids("m");
    assert!(
        (10..=11).contains(&ids),
        "{ids} ids kept for 10 waiting requests"
    );
    assert_eq!(engine.feedback("m", &[truth("request-0", 1.0)]), 0);
    assert_eq!(engine.feedback("m", &[truth("request-999", 1.0)]), 1);
}
