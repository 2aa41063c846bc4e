//! Label-free estimation (CBPE): on a calibrated model whose true accuracy is known (the
//! labels are drawn from the model's own probabilities, and scored here by counting), the
//! estimate from the probabilities alone lands within 0.02 of the truth.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mlmon::analysis::{Analysis, Exchange};
use mlmon::config::Config;
use mlmon::metrics::Metrics;
use mlmon::performance::PerformanceEngine;
use mlmon::record::{FeatureValue, ParsedExchange, Prediction};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Dirichlet, Distribution};

fn engine() -> (PerformanceEngine, Metrics) {
    let mut cfg = Config::default();
    cfg.drift.window = Duration::from_secs(3600);
    let metrics = Metrics::new("test");
    (
        PerformanceEngine::new(Arc::new(cfg), metrics.performance.clone(), None),
        metrics,
    )
}

fn observe(e: &PerformanceEngine, model: &str, id: usize, probs: Vec<f64>, label: usize) {
    let parsed = ParsedExchange {
        rows: Vec::new(),
        predictions: vec![Prediction {
            value: FeatureValue::Number(label as f64),
            probabilities: Some(probs),
        }],
    };
    e.observe(&Exchange {
        model,
        version: None,
        request_id: &format!("r{id}"),
        received_at: SystemTime::now(),
        parsed: &parsed,
        now: tokio::time::Instant::now(),
        request: None,
        baseline: None,
    });
}

#[tokio::test(start_paused = true)]
async fn binary_estimate_within_two_points_of_the_truth() {
    let (e, m) = engine();
    let mut rng = StdRng::seed_from_u64(7);
    // A skewed score distribution (most rows confident, some near 0.5).
    let beta = Beta::new(0.7, 0.5).unwrap();
    let n = 20_000;
    let (mut tp, mut fp, mut fn_, mut tn) = (0u32, 0u32, 0u32, 0u32);
    for i in 0..n {
        let p: f64 = beta.sample(&mut rng);
        let truth = rng.random::<f64>() < p;
        let predicted = p >= 0.5;
        match (predicted, truth) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => tn += 1,
        }
        observe(&e, "bin", i, vec![1.0 - p, p], usize::from(predicted));
    }
    let r = e.report("bin").unwrap();
    let est = r.estimated.clone().expect("estimate");
    assert_eq!(est.calibration, "assumed");
    assert_eq!(est.estimate.rows, n);
    let (tp, fp, fn_, tn) = (tp as f64, fp as f64, fn_ as f64, tn as f64);
    let truth = [
        ("accuracy", (tp + tn) / n as f64, est.estimate.accuracy),
        ("precision", tp / (tp + fp), est.estimate.precision.unwrap()),
        ("recall", tp / (tp + fn_), est.estimate.recall.unwrap()),
        (
            "f1",
            2.0 * tp / (2.0 * tp + fp + fn_),
            est.estimate.f1.unwrap(),
        ),
        (
            "specificity",
            tn / (tn + fp),
            est.estimate.specificity.unwrap(),
        ),
    ];
    for (metric, actual, estimated) in truth {
        assert!(
            (actual - estimated).abs() < 0.02,
            "{metric}: true {actual}, estimated {estimated}"
        );
    }
    // Without any ground truth there is no measured performance, only the estimate.
    assert!(r.classification.is_none());
    assert_eq!(
        r.estimated_metrics().len(),
        6,
        "binary: accuracy, precision, recall, f1, specificity, roc_auc"
    );
    assert_eq!(r.sampling_errors().len(), 6);
    // Exported: every estimate with its sampling error, a few thousandths for 20 000 rows.
    e.refresh();
    let (text, _) = m.encode(None);
    let samples = crate::common::parse_exposition(&text);
    for metric in [
        "accuracy",
        "precision",
        "recall",
        "f1",
        "specificity",
        "roc_auc",
    ] {
        let labels = [("model", "bin"), ("metric", metric)];
        assert!(crate::common::value(&samples, "mlmon_estimated_performance", &labels).is_some());
        let se = crate::common::value(
            &samples,
            "mlmon_estimated_performance_sampling_error",
            &labels,
        )
        .unwrap_or_else(|| panic!("no sampling error for {metric}"));
        assert!(se > 0.0 && se < 0.01, "{metric}: {se}");
    }
}

#[tokio::test(start_paused = true)]
async fn multiclass_accuracy_estimate_within_two_points() {
    let (e, _m) = engine();
    let mut rng = StdRng::seed_from_u64(11);
    let dirichlet = Dirichlet::new([0.6, 0.6, 0.6, 0.6]).unwrap();
    let n = 20_000;
    let mut correct = 0u32;
    for i in 0..n {
        let p: [f64; 4] = dirichlet.sample(&mut rng);
        // The truth drawn from the model's own probabilities: calibrated by construction.
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let mut truth = 3;
        for (k, pk) in p.iter().enumerate() {
            acc += pk;
            if u < acc {
                truth = k;
                break;
            }
        }
        let predicted = (0..4).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap();
        if predicted == truth {
            correct += 1;
        }
        observe(&e, "multi", i, p.to_vec(), predicted);
    }
    let est = e.report("multi").unwrap().estimated.unwrap();
    let actual = correct as f64 / n as f64;
    assert!(
        (actual - est.estimate.accuracy).abs() < 0.02,
        "true {actual}, estimated {}",
        est.estimate.accuracy
    );
    // Multi-class models get every metric, macro-averaged one class against the rest.
    assert_eq!(est.estimate.metrics().len(), 6);
    assert_eq!(est.estimate.sampling_error.len(), 6);
}

#[tokio::test(start_paused = true)]
async fn overconfident_model_is_estimated_optimistically_without_calibration() {
    // The documented limit: an uncalibrated (overconfident) model's estimate is too high.
    let (e, _m) = engine();
    let mut rng = StdRng::seed_from_u64(5);
    let n = 10_000;
    let mut correct = 0u32;
    for i in 0..n {
        let p: f64 = rng.random();
        let truth = rng.random::<f64>() < p;
        // Reported probability pushed towards 0/1.
        let reported = if p >= 0.5 {
            p.sqrt().sqrt()
        } else {
            1.0 - (1.0 - p).sqrt().sqrt()
        };
        let predicted = reported >= 0.5;
        if predicted == truth {
            correct += 1;
        }
        observe(
            &e,
            "over",
            i,
            vec![1.0 - reported, reported],
            usize::from(predicted),
        );
    }
    let est = e.report("over").unwrap().estimated.unwrap();
    let actual = correct as f64 / n as f64;
    assert!(
        est.estimate.accuracy > actual + 0.1,
        "{} vs {actual}",
        est.estimate.accuracy
    );
}
