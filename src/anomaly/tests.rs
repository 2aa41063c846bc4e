//! The anomaly engine driven directly with exchanges carrying the model's baseline, under
//! paused tokio time: the window rate and the trend test users see in the report.

use rand::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{trend_test, AnomalyEngine};
use crate::analysis::{Analysis, Exchange};
use crate::baseline::{BaselineBuilder, BuildOptions, Current, Registry, Snapshot};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::record::{FeatureValue, ParsedExchange, Row};

const WINDOW: Duration = Duration::from_secs(100);

fn engine() -> (Metrics, Arc<Registry>, AnomalyEngine) {
    let mut cfg = Config::default();
    cfg.drift.window = WINDOW;
    let metrics = Metrics::new("test");
    let registry = Arc::new(Registry::new(0, 100));
    let e = AnomalyEngine::new(
        Arc::new(cfg),
        metrics.anomaly.clone(),
        Some(registry.clone()),
    );
    (metrics, registry, e)
}

/// `x` = 0, 1, …, 999: median 499.5, upper scale (p99 − p50) / z₀.₉₉ ≈ 210, so 500 scores
/// about 0 sigma and 100 000 far above the threshold of 4.
fn snapshot() -> Snapshot {
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 1000);
    for i in 0..1000 {
        b.push_row(&Row {
            values: vec![("x".into(), FeatureValue::Number(i as f64))],
        });
    }
    b.finish().expect("baseline builds")
}

/// `rows` rows of which the first `anomalies` are far out.
fn observe(e: &AnomalyEngine, baseline: &Arc<Current>, id: &str, rows: usize, anomalies: usize) {
    let parsed = ParsedExchange {
        rows: (0..rows)
            .map(|i| Row {
                values: vec![(
                    "x".into(),
                    FeatureValue::Number(if i < anomalies { 100_000.0 } else { 500.0 }),
                )],
            })
            .collect(),
        predictions: Vec::new(),
    };
    Analysis::observe(
        e,
        &Exchange {
            model: "m",
            version: Some("v1"),
            request_id: id,
            received_at: SystemTime::now(),
            now: Instant::now(),
            parsed: &parsed,
            request: None,
            baseline: Some(baseline),
        },
    );
}

#[tokio::test(start_paused = true)]
async fn rate_and_trend_over_the_window() {
    let (metrics, registry, e) = engine();
    let current = registry.set("m", Arc::new(snapshot())).expect("usable");

    // Older half: 1 anomaly in 100 rows.
    observe(&e, &current, "r1", 100, 1);
    let r = e.report("m").expect("a report");
    assert_eq!((r.window.rows, r.window.anomalies), (100, 1));
    assert_eq!(r.window.rate, Some(0.01));
    assert_eq!(e.rate("m"), Some(0.01));
    // Everything is in the newer half so far: no trend.
    assert_eq!((r.trend.direction, r.trend.z), (0, None));

    // 60 s later (past half the window), 20 anomalies in 100 rows.
    tokio::time::advance(Duration::from_secs(60)).await;
    observe(&e, &current, "r2", 100, 20);
    let r = e.report("m").expect("a report");
    assert_eq!(r.window.rate, Some(21.0 / 200.0));
    assert_eq!((r.trend.older.rows, r.trend.older.anomalies), (100, 1));
    assert_eq!((r.trend.newer.rows, r.trend.newer.anomalies), (100, 20));
    // Pooled p = 0.105, se = √(0.105 · 0.895 · (1/100 + 1/100)); z = 0.19 / se = 4.3826.
    let z = r.trend.z.expect("a z statistic");
    assert!((z - 4.382_606_070_252_322).abs() < 1e-9, "z {z}");
    assert_eq!(r.trend.direction, 1, "increasing at the 5 % level");
    assert_eq!((r.scored_total, r.anomalies_total), (200, 21));
    // The ring lists the anomalous rows newest first.
    assert_eq!(r.anomalies.len(), 21);
    assert_eq!(r.anomalies[0].request_id, "r2");
    assert_eq!(r.anomalies[0].row, 19);
    assert_eq!(r.anomalies[0].version.as_deref(), Some("v1"));
    assert_eq!(r.anomalies[20].request_id, "r1");

    e.refresh();
    let text = metrics.encode(None).0;
    assert!(
        text.contains("mlmon_anomaly_rate{model=\"m\"} 0.105"),
        "{text}"
    );
    assert!(
        text.contains("mlmon_anomaly_trend{model=\"m\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mlmon_anomalies_total{model=\"m\"} 21"),
        "{text}"
    );

    // The first bucket leaves at 100 s + 10 s: only the newer rows remain, no trend.
    tokio::time::advance(Duration::from_secs(50)).await;
    let r = e.report("m").expect("a report");
    assert_eq!(r.window.rate, Some(0.2));
    assert_eq!((r.trend.direction, r.trend.z), (0, None));
    // After the whole window, no rows: no rate (not 0).
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(e.rate("m"), None);
    e.refresh();
    let text = metrics.encode(None).0;
    assert!(!text.contains("mlmon_anomaly_rate{model=\"m\"}"), "{text}");
    assert!(
        text.contains("mlmon_anomaly_trend{model=\"m\"} 0"),
        "{text}"
    );
}

#[test]
fn trend_test_by_hand() {
    // 10 % then 2 %: p = 0.06, se = √(0.06 · 0.94 · 0.02), z = −0.08 / se = −2.382.
    let (dir, z) = trend_test((100, 10), (100, 2));
    assert_eq!(dir, -1);
    assert!(z.is_some_and(|z| (z + 2.381_965_336_701_654_7).abs() < 1e-9));
    // 5 % then 8 %: z = 0.860, within ±1.96.
    let (dir, z) = trend_test((100, 5), (100, 8));
    assert_eq!(dir, 0);
    assert!(z.is_some_and(|z| (z - 0.860_485_929_317_662_7).abs() < 1e-9));
    // No anomalies at all: no spread, no trend.
    assert_eq!(trend_test((100, 0), (100, 0)), (0, Some(0.0)));
}

#[tokio::test(start_paused = true)]
async fn a_replaced_baseline_refits_and_starts_afresh() {
    let (_, registry, e) = engine();
    let first = registry.set("m", Arc::new(snapshot())).expect("usable");
    observe(&e, &first, "r1", 10, 5);
    let mut second = snapshot();
    second.id = "second".into();
    let second = registry.set("m", Arc::new(second)).expect("usable");
    observe(&e, &second, "r2", 10, 1);
    let r = e.report("m").expect("a report");
    assert_eq!(r.baseline_id, "second");
    assert_eq!((r.window.rows, r.window.anomalies), (10, 1));
    assert_eq!((r.scored_total, r.anomalies_total), (10, 1));
    assert_eq!(r.anomalies.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_baseline_no_scores() {
    let (_, _, e) = engine();
    let parsed = ParsedExchange::default();
    e.observe(&Exchange {
        model: "m",
        version: None,
        request_id: "r",
        received_at: SystemTime::now(),
        now: Instant::now(),
        parsed: &parsed,
        request: None,
        baseline: None,
    });
    assert!(e.report("m").is_none());
    assert_eq!(e.rate("m"), None);
}

/// Scoring rows with one scratch kept across them (the engine's way: position hints,
/// reused vectors) gives exactly the scores of a fresh scratch per row, whatever the
/// order of the names, repeated, unknown or missing features, text numbers and
/// categories.
#[test]
fn a_kept_scratch_scores_like_a_fresh_one() {
    use super::scorer::{ScoreScratch, Scorer, Settings};
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 2000);
    let colours = ["red", "green", "blue"];
    for i in 0..2000_u32 {
        let x = f64::from(i % 100);
        b.push_row(&Row {
            values: vec![
                ("x".into(), FeatureValue::Number(x)),
                ("y".into(), FeatureValue::Number(2.0 * x + f64::from(i % 7))),
                ("z".into(), FeatureValue::Number(f64::from(i % 13))),
                (
                    "colour".into(),
                    FeatureValue::Text(colours[i as usize % 3].into()),
                ),
            ],
        });
    }
    let snapshot = b.finish().expect("baseline builds");
    let scorer = Scorer::fit(
        &snapshot,
        super::joint_rows(&snapshot),
        Settings {
            threshold: 4.0,
            min_confidence: 0.0,
            max_joint_features: 10,
            max_features: 100,
        },
    );
    assert!(scorer.fallback.is_none(), "{:?}", scorer.fallback);
    let names = ["x", "y", "z", "colour", "unknown"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut next = move |n: u64| rand::Rng::random_range(&mut rng, 0..n);
    let mut scratch = ScoreScratch::default();
    for _ in 0..300 {
        let k = next(6);
        let values = (0..k)
            .map(|_| {
                let name = names[next(5) as usize];
                let value = match next(8) {
                    0 => FeatureValue::Missing,
                    1 => FeatureValue::Text("purple".into()),
                    2 => FeatureValue::Text(" 42.5 ".into()),
                    3 => FeatureValue::Number(f64::NAN),
                    _ => FeatureValue::Number(next(400) as f64 - 150.0),
                };
                (name.to_string(), value)
            })
            .collect();
        let row = Row { values };
        let kept = scorer.score_hinted(&row, None, true, &mut scratch);
        let fresh = scorer.score(&row, None, true);
        assert_eq!(kept, fresh, "{row:?}");
        let bits =
            |s: &super::scorer::RowScore| (s.score.to_bits(), s.mahalanobis_d2.map(f64::to_bits));
        assert_eq!(bits(&kept), bits(&fresh));
    }
}
