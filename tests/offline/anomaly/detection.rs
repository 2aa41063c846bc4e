//! Anomaly detection quality with rows injected at known positions: 6-sigma outliers on
//! one feature at 1 % (recall, the right feature ranked first, false positives on clean
//! rows), a correlation break that only the multivariate score sees, unusual predictions,
//! low confidence, the bounded ring, privacy of values, and the rate trend.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mlmon::analysis::Exchange;
use mlmon::anomaly::scorer::{JointRows, Method, Scorer, Settings};
use mlmon::anomaly::AnomalyEngine;
use mlmon::baseline::{BaselineBuilder, BuildOptions, Snapshot};
use mlmon::config::Config;
use mlmon::metrics::anomaly::AnomalyMetrics;
use mlmon::record::{FeatureValue, ParsedExchange, Prediction, Row};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
const MEAN: [f64; 4] = [10.0, -3.0, 0.0, 250.0];
const SD: [f64; 4] = [2.0, 0.5, 1.0, 40.0];

/// Correlated normal rows: b follows a (ρ = 0.8), d follows c (ρ = 0.6).
fn draw(rng: &mut StdRng) -> [f64; 4] {
    let z: [f64; 4] = std::array::from_fn(|_| rng.sample(StandardNormal));
    let u = [z[0], 0.8 * z[0] + 0.6 * z[1], z[2], 0.6 * z[2] + 0.8 * z[3]];
    std::array::from_fn(|i| MEAN[i] + SD[i] * u[i])
}

fn row(v: &[f64]) -> Row {
    Row {
        values: NAMES
            .iter()
            .zip(v)
            .map(|(n, x)| (n.to_string(), FeatureValue::Number(*x)))
            .collect(),
    }
}

fn settings(threshold: f64) -> Settings {
    Settings {
        threshold,
        min_confidence: 0.0,
        max_joint_features: 64,
        max_features: 256,
    }
}

/// A snapshot of `n` baseline rows (with a numeric prediction `a + b`), and the rows.
fn baseline(n: usize, seed: u64) -> (Snapshot, Vec<Vec<Option<f64>>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), n);
    let mut joint = Vec::new();
    for _ in 0..n {
        let v = draw(&mut rng);
        b.push_row(&row(&v));
        b.push_prediction(&Prediction {
            value: FeatureValue::Number(v[0] + v[1]),
            probabilities: None,
        });
        joint.push(v.iter().map(|x| Some(*x)).collect());
    }
    (b.finish().unwrap(), joint)
}

fn names() -> Vec<String> {
    NAMES.iter().map(|s| s.to_string()).collect()
}

#[test]
fn six_sigma_outliers_at_one_percent_are_found_with_the_right_feature_first() {
    let (snap, joint) = baseline(20_000, 1);
    let cols = names();
    let scorer = Scorer::fit(
        &snap,
        Some(JointRows {
            columns: &cols,
            rows: &joint[..5000].to_vec().into(),
        }),
        settings(4.0),
    );
    assert_eq!(scorer.method(), Method::Multivariate);
    let mut rng = StdRng::seed_from_u64(2);
    let (mut injected, mut found, mut first_right) = (0, 0, 0);
    let (mut clean, mut false_pos) = (0, 0);
    for i in 0..20_000 {
        let mut v = draw(&mut rng);
        let inject = i % 100 == 37;
        if inject {
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            v[1] = MEAN[1] + sign * 6.0 * SD[1];
        }
        let s = scorer.score(&row(&v), None, false);
        if inject {
            injected += 1;
            if s.is_anomaly() {
                found += 1;
                if s.explanation.first().map(|c| c.feature.as_str()) == Some("b") {
                    first_right += 1;
                }
            }
        } else {
            clean += 1;
            if s.is_anomaly() {
                false_pos += 1;
            }
        }
    }
    assert_eq!(injected, 200);
    let recall = found as f64 / injected as f64;
    let right = first_right as f64 / injected as f64;
    let fpr = false_pos as f64 / clean as f64;
    assert!(recall >= 0.95, "recall {recall}");
    assert!(right >= 0.95, "right feature first in {right}");
    assert!(
        fpr <= 0.01,
        "false-positive rate {fpr} ({false_pos} of {clean})"
    );
}

#[test]
fn a_correlation_break_is_caught_by_the_multivariate_score_only() {
    let (snap, joint) = baseline(10_000, 3);
    let cols = names();
    let multi = Scorer::fit(
        &snap,
        Some(JointRows {
            columns: &cols,
            rows: &joint[..5000].to_vec().into(),
        }),
        settings(4.0),
    );
    let uni = Scorer::fit(&snap, None, settings(4.0));
    assert_eq!(uni.method(), Method::Univariate);
    assert!(uni.fallback.as_deref().unwrap().contains("joint_sample"));
    let mut rng = StdRng::seed_from_u64(4);
    for _ in 0..200 {
        let mut v = draw(&mut rng);
        // a high and b low (they move together in the baseline), each well within range.
        let k = 2.0 + rng.random::<f64>() * 0.5;
        v[0] = MEAN[0] + k * SD[0];
        v[1] = MEAN[1] - k * SD[1];
        let r = row(&v);
        let s = multi.score(&r, None, false);
        assert!(
            s.univariate < 4.0,
            "each value is ordinary: {}",
            s.univariate
        );
        assert!(
            s.reasons.contains(&"multivariate"),
            "break missed: score {} d2 {:?}",
            s.score,
            s.mahalanobis_d2
        );
        let top: Vec<&str> = s
            .explanation
            .iter()
            .take(2)
            .map(|c| c.feature.as_str())
            .collect();
        assert!(
            top.contains(&"a") && top.contains(&"b"),
            "explained by {top:?}"
        );
        assert!(!uni.score(&r, None, false).is_anomaly());
    }
}

#[test]
fn unusual_predictions_and_low_confidence_are_anomalies() {
    let (snap, _) = baseline(5000, 5);
    let mut s = settings(4.0);
    let scorer = Scorer::fit(&snap, None, s);
    let v = [MEAN[0], MEAN[1], MEAN[2], MEAN[3]];
    let normal_pred = Prediction {
        value: FeatureValue::Number(MEAN[0] + MEAN[1]),
        probabilities: None,
    };
    assert!(!scorer
        .score(&row(&v), Some(&normal_pred), false)
        .is_anomaly());
    let odd = Prediction {
        value: FeatureValue::Number(MEAN[0] + MEAN[1] + 20.0),
        probabilities: None,
    };
    let r = scorer.score(&row(&v), Some(&odd), false);
    assert_eq!(r.reasons, vec!["prediction"]);
    assert_eq!(r.explanation[0].feature, "prediction");

    s.min_confidence = 0.6;
    let scorer = Scorer::fit(&snap, None, s);
    let unsure = Prediction {
        value: FeatureValue::Number(MEAN[0] + MEAN[1]),
        probabilities: Some(vec![0.45, 0.55]),
    };
    let r = scorer.score(&row(&v), Some(&unsure), false);
    assert_eq!(r.reasons, vec!["low_confidence"]);
    assert_eq!(r.confidence, Some(0.55));
    let sure = Prediction {
        probabilities: Some(vec![0.1, 0.9]),
        ..unsure
    };
    assert!(!scorer.score(&row(&v), Some(&sure), false).is_anomaly());
}

#[test]
fn unseen_categories_score_by_their_rarity() {
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 10_000);
    for i in 0..10_000 {
        let colour = match i % 100 {
            0 => "rare",
            1..=49 => "red",
            _ => "blue",
        };
        b.push_row(&Row {
            values: vec![("colour".into(), FeatureValue::Text(colour.into()))],
        });
    }
    let snap = b.finish().unwrap();
    let scorer = Scorer::fit(&snap, None, settings(4.0));
    let score = |c: &str| {
        scorer.score(
            &Row {
                values: vec![("colour".into(), FeatureValue::Text(c.into()))],
            },
            None,
            false,
        )
    };
    assert!(!score("red").is_anomaly());
    // 1 % of rows: tail 0.01, 2.58 sigma, not anomalous at 4.
    let rare = score("rare");
    assert!(
        (rare.score - 2.5758293035489).abs() < 1e-6,
        "{}",
        rare.score
    );
    assert!(!rare.is_anomaly());
    // Never seen in 10 000 values: tail 0.5 / 10 000, 4.06 sigma.
    let unseen = score("purple");
    assert!(unseen.is_anomaly(), "{}", unseen.score);
    assert_eq!(unseen.explanation[0].feature, "colour");
}

fn engine(cfg: Config, snap: &Snapshot) -> AnomalyEngine {
    let e = AnomalyEngine::new(Arc::new(cfg), Arc::new(AnomalyMetrics::default()), None);
    e.set_baseline("m", snap);
    e
}

fn observe(e: &AnomalyEngine, rows: Vec<Row>, id: &str, at: tokio::time::Instant) {
    let parsed = ParsedExchange {
        rows,
        predictions: Vec::new(),
    };
    e.observe(&Exchange {
        model: "m",
        version: Some("v1"),
        request_id: id,
        received_at: SystemTime::now(),
        parsed: &parsed,
        now: at,
        request: None,
        baseline: None,
    });
}

#[test]
fn the_ring_is_bounded_and_values_appear_only_with_privacy_log_values() {
    let (snap, _) = baseline(5000, 6);
    let odd = |k: f64| row(&[MEAN[0] + k * SD[0], MEAN[1], MEAN[2], MEAN[3]]);
    let mut cfg = Config::default();
    cfg.anomaly.ring_size = 3;
    let e = engine(cfg.clone(), &snap);
    let now = tokio::time::Instant::now();
    for i in 0..5 {
        observe(
            &e,
            vec![row(&MEAN), odd(8.0 + i as f64)],
            &format!("req-{i}"),
            now,
        );
    }
    let r = e.report_at("m", now).unwrap();
    assert_eq!(r.anomalies_total, 5);
    assert_eq!(r.scored_total, 10);
    assert_eq!(r.window.rate, Some(0.5));
    assert_eq!(r.anomalies.len(), 3);
    assert_eq!(r.anomalies[0].request_id, "req-4");
    assert_eq!(r.anomalies[0].row, 1);
    assert_eq!(r.anomalies[0].score.explanation[0].feature, "a");
    assert!(!r.values_included);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["anomalies"][0]["explanation"][0]
        .get("value")
        .is_none());

    cfg.privacy.log_values = true;
    let e = engine(cfg, &snap);
    observe(&e, vec![odd(9.0)], "req-x", now);
    let r = e.report_at("m", now).unwrap();
    assert!(r.values_included);
    let json = serde_json::to_value(&r).unwrap();
    let v = json["anomalies"][0]["explanation"][0]["value"]
        .as_f64()
        .unwrap();
    assert_eq!(v, MEAN[0] + 9.0 * SD[0]);
}

#[test]
fn the_trend_follows_a_two_proportion_test_of_the_window_halves() {
    let (snap, _) = baseline(5000, 7);
    let mut cfg = Config::default();
    cfg.drift.window = Duration::from_secs(100);
    let odd = row(&[MEAN[0] + 9.0 * SD[0], MEAN[1], MEAN[2], MEAN[3]]);
    let t0 = tokio::time::Instant::now();
    let later = t0 + Duration::from_secs(60);

    // Older half 2 % anomalous, newer half 20 %: increasing.
    let e = engine(cfg.clone(), &snap);
    let batch = |bad: usize| -> Vec<Row> {
        (0..100)
            .map(|i| if i < bad { odd.clone() } else { row(&MEAN) })
            .collect()
    };
    observe(&e, batch(2), "old", t0);
    observe(&e, batch(20), "new", later);
    let r = e.report_at("m", later).unwrap();
    assert_eq!((r.trend.older.rows, r.trend.older.anomalies), (100, 2));
    assert_eq!((r.trend.newer.rows, r.trend.newer.anomalies), (100, 20));
    // scipy-free check of the statistic: p = 22/200, se = sqrt(p(1-p)(2/100)).
    let p: f64 = 0.11;
    let z = (0.20 - 0.02) / (p * (1.0 - p) * 0.02).sqrt();
    assert!((r.trend.z.unwrap() - z).abs() < 1e-12);
    assert_eq!(r.trend.direction, 1);
    assert_eq!(r.window.rate, Some(0.11));

    // The reverse: decreasing.
    let e = engine(cfg.clone(), &snap);
    observe(&e, batch(20), "old", t0);
    observe(&e, batch(2), "new", later);
    assert_eq!(e.report_at("m", later).unwrap().trend.direction, -1);

    // A small difference is stable.
    let e = engine(cfg.clone(), &snap);
    observe(&e, batch(3), "old", t0);
    observe(&e, batch(5), "new", later);
    assert_eq!(e.report_at("m", later).unwrap().trend.direction, 0);

    // Rows age out of the window.
    let gone = t0 + Duration::from_secs(300);
    let r = e.report_at("m", gone).unwrap();
    assert_eq!(r.window.rows, 0);
    assert_eq!(r.window.rate, None);
    assert_eq!(r.anomalies_total, 8);
}
