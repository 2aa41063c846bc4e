use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::compare::{label_psi, numeric_psi, Answer, CompareJob, Comparison, MAX_LABELS};
use super::Sampler;
use crate::config::{Config, Task};
use crate::ingest::Job;
use crate::metrics::Metrics;
use crate::record::{FeatureValue, Prediction};

fn pred(v: f64) -> Prediction {
    Prediction {
        value: FeatureValue::Number(v),
        probabilities: None,
    }
}

fn label(s: &str) -> Prediction {
    Prediction {
        value: FeatureValue::Text(s.into()),
        probabilities: None,
    }
}

fn comparison(cfg: Config) -> (Comparison, Metrics) {
    let metrics = Metrics::new("test");
    let c = Comparison::new(Arc::new(cfg), metrics.shadow.clone(), None);
    (c, metrics)
}

#[test]
fn sampler_copies_exactly_the_share_asked_spread_evenly() {
    let s = Sampler::new(0.25);
    let picks: Vec<bool> = (0..100).map(|_| s.next()).collect();
    assert_eq!(picks.iter().filter(|p| **p).count(), 25);
    // Never two copies in a row at 1/4.
    assert!(picks.windows(2).all(|w| !(w[0] && w[1])));
    let all = Sampler::new(1.0);
    assert!((0..10).all(|_| all.next()));
    let none = Sampler::new(0.0);
    assert!((0..10).all(|_| !none.next()));
    let third = Sampler::new(1.0 / 3.0);
    assert_eq!((0..300).filter(|_| third.next()).count(), 100);
}

#[tokio::test(start_paused = true)]
async fn classifier_agreement_and_label_psi_match_a_hand_computation() {
    let (c, metrics) = comparison(Config::default());
    let now = Instant::now();
    // Primary 0,1,1,2; shadow 0,1,2,2: 3 of 4 agree.
    c.observe_pair(
        "m",
        &[pred(0.0), pred(1.0), pred(1.0), pred(2.0)],
        &[pred(0.0), pred(1.0), pred(2.0), pred(2.0)],
        now,
    );
    let r = &c.reports(now)[0];
    assert_eq!(r.task, Some("classification"));
    assert_eq!(r.rows, 4);
    assert_eq!(r.agreement, Some(0.75));
    assert_eq!(r.mean_abs_diff, None);
    // Primary proportions (.25, .5, .25), shadow (.25, .25, .5):
    // PSI = (.25−.5)·ln(.25/.5) + (.5−.25)·ln(.5/.25) = 0.5·ln 2.
    let psi = r.prediction_psi.unwrap();
    assert!((psi - 0.5 * 2f64.ln()).abs() < 1e-12, "{psi}");
    c.export(now);
    let text = metrics.encode(None).0;
    assert!(
        text.contains("mlmon_shadow_agreement{model=\"m\"} 0.75"),
        "{text}"
    );
    assert!(!text.contains("mlmon_shadow_mean_abs_diff{"), "{text}");
    assert!(
        text.contains("mlmon_shadow_prediction_psi{model=\"m\"} 0.34657"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn regression_mean_abs_diff_and_decile_psi_match_a_hand_computation() {
    let (c, _) = comparison(Config::default());
    let now = Instant::now();
    let primary: Vec<Prediction> = (1..=10).map(|i| pred(i as f64 + 0.5)).collect();
    let shadow: Vec<Prediction> = (1..=10).map(|i| pred(i as f64 + 1.5)).collect();
    c.observe_pair("r", &primary, &shadow, now);
    let r = &c.reports(now)[0];
    assert_eq!(r.task, Some("regression"));
    assert_eq!(r.agreement, None);
    assert_eq!(r.mean_abs_diff, Some(1.0));
    // Primary 1.5..10.5: numpy deciles 2.4, 3.3, …, 9.6 put one value in each of 10 bins.
    // Shadow 2.5..11.5: bin 0 empty (floored to 1e-4), bins 1–8 one each, bin 9 two.
    let expected = (1e-4 - 0.1) * (1e-4f64 / 0.1).ln() + (0.2 - 0.1) * 2f64.ln();
    let psi = r.prediction_psi.unwrap();
    assert!((psi - expected).abs() < 1e-12, "{psi} vs {expected}");
}

#[test]
fn psi_helpers_agree_on_identical_distributions_and_refuse_empty_ones() {
    let p: Vec<f64> = (0..100).map(|i| i as f64).collect();
    assert_eq!(numeric_psi(&p, &p), Some(0.0));
    assert_eq!(numeric_psi(&[], &p), None);
    assert_eq!(numeric_psi(&p, &[]), None);
    let mut a = std::collections::HashMap::new();
    a.insert("x".to_string(), 3);
    assert_eq!(label_psi(&a, &a), Some(0.0));
    assert_eq!(label_psi(&Default::default(), &a), None);
}

#[tokio::test(start_paused = true)]
async fn labels_task_config_and_window_expiry() {
    let mut cfg = Config::default();
    cfg.drift.window = Duration::from_secs(60);
    let (c, metrics) = comparison(cfg);
    let now = Instant::now();
    c.observe_pair(
        "t",
        &[label("cat"), label("dog")],
        &[label("cat"), label("cat")],
        now,
    );
    assert_eq!(c.reports(now)[0].agreement, Some(0.5));
    // Unparsed answers count, and compare no row.
    c.observe_pair("t", &[label("cat")], &[], now);
    let r = &c.reports(now)[0];
    assert_eq!((r.rows, r.unparsed), (2, 1));
    c.export(now);
    assert!(metrics
        .encode(None)
        .0
        .contains("mlmon_shadow_agreement{model=\"t\"} 0.5"));
    // The window ages out: the series goes, rather than stay at a stale value.
    let later = now + Duration::from_secs(200);
    let r = &c.reports(later)[0];
    assert_eq!((r.rows, r.agreement, r.prediction_psi), (0, None, None));
    c.export(later);
    assert!(!metrics.encode(None).0.contains("mlmon_shadow_agreement{"));

    // model.task wins over what predictions look like.
    let mut cfg = Config::default();
    cfg.model.task = Task::Regression;
    let (c, _) = comparison(cfg);
    c.observe_pair("n", &[pred(1.0), pred(2.0)], &[pred(1.0), pred(4.0)], now);
    let r = &c.reports(now)[0];
    assert_eq!((r.task, r.mean_abs_diff), (Some("regression"), Some(1.0)));
}

#[tokio::test(start_paused = true)]
async fn labels_are_bounded() {
    let (c, _) = comparison(Config::default());
    let now = Instant::now();
    let many: Vec<Prediction> = (0..500).map(|i| label(&format!("l{i}"))).collect();
    c.observe_pair("b", &many, &many, now);
    let r = &c.reports(now)[0];
    assert_eq!(r.agreement, Some(1.0));
    // 64 labels plus __other__ on both sides: identical distributions.
    assert_eq!(r.prediction_psi, Some(0.0));
    const { assert!(MAX_LABELS < 500) };
}

#[tokio::test(start_paused = true)]
async fn a_job_parses_both_answers_with_the_payload_adapters() {
    let (c, _) = comparison(Config::default());
    let c = Arc::new(c);
    let answer = |b: &'static str| Answer {
        body: Bytes::from_static(b.as_bytes()),
        content_type: Some("application/json".into()),
        content_encoding: None,
    };
    let job = CompareJob {
        comparison: c.clone(),
        model: "iris".into(),
        primary_path: "/v1/models/iris:predict".into(),
        shadow_path: "/v1/models/iris-v2:predict".into(),
        request: Bytes::from_static(br#"{"instances": [[1, 2], [3, 4], [5, 6]]}"#),
        request_encoding: None,
        primary: answer(r#"{"predictions": [0, 1, 1]}"#),
        shadow: answer(r#"{"predictions": [0, 1, 0]}"#),
    };
    assert!(job.queued_bytes() > 0);
    Box::new(job).run();
    assert_eq!(c.compared(), 1);
    let r = &c.reports(Instant::now())[0];
    assert_eq!(r.rows, 3);
    assert!((r.agreement.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    // A shadow answer that is not a prediction is counted, not compared.
    let bad = CompareJob {
        comparison: c.clone(),
        model: "iris".into(),
        primary_path: "/v1/models/iris:predict".into(),
        shadow_path: "/v1/models/iris:predict".into(),
        request: Bytes::from_static(br#"{"instances": [[1, 2]]}"#),
        request_encoding: None,
        primary: answer(r#"{"predictions": [0]}"#),
        shadow: answer("<html>busy</html>"),
    };
    Box::new(bad).run();
    let r = &c.reports(Instant::now())[0];
    assert_eq!((r.rows, r.unparsed), (3, 1));
}
