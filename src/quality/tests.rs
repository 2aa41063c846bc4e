//! The quality engine driven directly with exchanges carrying the model's baseline, under
//! paused tokio time. Expected figures are worked out by hand in the comments.

use rand::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{FeatureQualityReport, QualityEngine, QualityReport};
use crate::analysis::{Analysis, Exchange};
use crate::baseline::{BaselineBuilder, BuildOptions, Current, Registry, Snapshot};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::record::{FeatureValue, ParsedExchange, Row};

const WINDOW: Duration = Duration::from_secs(100);

fn engine() -> (Metrics, Arc<Registry>, QualityEngine) {
    let mut cfg = Config::default();
    cfg.drift.window = WINDOW;
    engine_of(cfg)
}

/// An engine of `cfg` with a registry of its own.
fn engine_of(cfg: Config) -> (Metrics, Arc<Registry>, QualityEngine) {
    let metrics = Metrics::new("test");
    let registry = Arc::new(Registry::new(0, 100));
    let e = QualityEngine::new(
        Arc::new(cfg),
        metrics.quality.clone(),
        Some(registry.clone()),
    );
    (metrics, registry, e)
}

/// 1000 rows: `x` 0, 1, …, 999; `colour` red/green/blue, or missing every fifth row when
/// `missing_colours` (a baseline missing share of 0.2).
fn snapshot(missing_colours: bool) -> Snapshot {
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 1000);
    let colours = ["red", "green", "blue"];
    for i in 0..1000 {
        let colour = if missing_colours && i % 5 == 0 {
            FeatureValue::Missing
        } else {
            FeatureValue::Text(colours[i % 3].into())
        };
        b.push_row(&Row {
            values: vec![
                ("x".into(), FeatureValue::Number(i as f64)),
                ("colour".into(), colour),
            ],
        });
    }
    b.finish().expect("baseline builds")
}

fn num(v: f64) -> FeatureValue {
    FeatureValue::Number(v)
}

fn text(s: &str) -> FeatureValue {
    FeatureValue::Text(s.into())
}

fn row(values: &[(&str, FeatureValue)]) -> Row {
    Row {
        values: values
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
    }
}

fn observe(e: &QualityEngine, baseline: Option<&Arc<Current>>, rows: Vec<Row>) {
    let parsed = ParsedExchange {
        rows,
        predictions: Vec::new(),
    };
    Analysis::observe(
        e,
        &Exchange {
            model: "m",
            version: None,
            request_id: "r",
            received_at: SystemTime::now(),
            now: Instant::now(),
            parsed: &parsed,
            request: None,
            baseline,
        },
    );
}

fn feature<'a>(r: &'a QualityReport, name: &str) -> &'a FeatureQualityReport {
    r.features
        .iter()
        .find(|f| f.feature == name)
        .unwrap_or_else(|| panic!("no feature {name} in {r:?}"))
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-12)
}

/// 10 rows against `snapshot(false)`: x has 1 missing, 1 text, 1 out of range (2000 > 999,
/// inside the far-out fence 749.25 + 3 · 499.5 = 2247.75) and 7 good values; colour has
/// 1 unseen category (`purple`) and 1 absent value.
fn ten_rows() -> Vec<Row> {
    let mut rows = vec![
        row(&[("x", FeatureValue::Missing), ("colour", text("red"))]),
        row(&[("x", text("abc")), ("colour", text("green"))]),
        row(&[("x", num(2000.0)), ("colour", text("purple"))]),
        row(&[("x", num(1.0))]),
    ];
    rows.extend((0..6).map(|i| row(&[("x", num(f64::from(i) * 100.0)), ("colour", text("blue"))])));
    rows
}

#[tokio::test(start_paused = true)]
async fn counts_and_score_against_the_baseline_of_the_exchange() {
    let (_, registry, e) = engine();
    let current = registry
        .set("m", Arc::new(snapshot(false)))
        .expect("usable");
    observe(&e, Some(&current), ten_rows());
    let r = e.report("m").expect("a report");
    assert_eq!(r.baseline_id.as_deref(), Some(current.snapshot.id.as_str()));
    assert_eq!(r.rows, 10);

    let x = feature(&r, "x");
    assert!(x.in_baseline);
    assert_eq!(x.feature_type, "numeric");
    assert_eq!(
        (x.window.values, x.window.missing, x.window.type_mismatch),
        (10, 1, 1)
    );
    assert_eq!((x.window.out_of_range, x.window.outlier), (1, 0));
    assert_eq!(x.window.numeric, 8);
    assert_eq!(x.out_of_range_ratio, Some(1.0 / 8.0));
    // Missing 0.1 above the baseline's 0, plus mismatch 0.1, plus out of range 0.1.
    assert!(close(x.problem_ratio, 0.3), "{:?}", x.problem_ratio);

    let c = feature(&r, "colour");
    assert_eq!(c.feature_type, "categorical");
    assert_eq!((c.window.missing, c.window.unseen_category), (1, 1));
    assert_eq!(c.errors_total.unseen_category, 1);
    assert!(close(c.problem_ratio, 0.2), "{:?}", c.problem_ratio);

    // score = 1 − mean(0.3, 0.2).
    assert!(close(r.score, 0.75), "{:?}", r.score);
    assert_eq!(e.score("m"), r.score);
}

#[tokio::test(start_paused = true)]
async fn missing_values_count_only_above_the_baseline_share() {
    let (_, registry, e) = engine();
    let current = registry.set("m", Arc::new(snapshot(true))).expect("usable");
    let good = |colour: FeatureValue| row(&[("x", num(5.0)), ("colour", colour)]);
    // 2 of 10 missing: the baseline's own 0.2, no problem.
    let mut rows: Vec<Row> = (0..8).map(|_| good(text("red"))).collect();
    rows.extend((0..2).map(|_| good(FeatureValue::Missing)));
    observe(&e, Some(&current), rows);
    let r = e.report("m").expect("a report");
    let c = feature(&r, "colour");
    assert_eq!(c.baseline_missing_ratio, Some(0.2));
    assert!(close(c.problem_ratio, 0.0), "{:?}", c.problem_ratio);
    assert!(close(r.score, 1.0), "{:?}", r.score);

    // 3 more missing in 10 more rows: 5 of 20 = 0.25, excess 0.05.
    let mut rows: Vec<Row> = (0..7).map(|_| good(text("red"))).collect();
    rows.extend((0..3).map(|_| good(FeatureValue::Missing)));
    observe(&e, Some(&current), rows);
    let r = e.report("m").expect("a report");
    assert!(close(feature(&r, "colour").problem_ratio, 0.05));
    assert!(close(r.score, 1.0 - 0.05 / 2.0), "{:?}", r.score);
}

#[tokio::test(start_paused = true)]
async fn the_window_empties_after_drift_window_but_totals_stay() {
    let (metrics, registry, e) = engine();
    let current = registry
        .set("m", Arc::new(snapshot(false)))
        .expect("usable");
    observe(&e, Some(&current), ten_rows());
    e.refresh();
    let score_line = "mlmon_data_quality_score{model=\"m\"}";
    assert!(metrics.encode(None).0.contains(score_line));

    // Ten buckets of 10 s: the first leaves at 100 s + 10 s.
    tokio::time::advance(Duration::from_secs(109)).await;
    assert!(close(e.score("m"), 0.75));
    tokio::time::advance(Duration::from_secs(1)).await;
    let r = e.report("m").expect("a report");
    assert_eq!(r.rows, 0);
    assert_eq!(r.score, None, "no values, no score");
    let x = feature(&r, "x");
    assert_eq!((x.window.values, x.missing_ratio), (0, None));
    assert_eq!(x.errors_total.missing, 1, "totals are since start");
    assert_eq!(x.errors_total.type_mismatch, 1);
    e.refresh();
    let text = metrics.encode(None).0;
    assert!(!text.contains(score_line), "{text}");
    assert!(
        text.contains("mlmon_feature_errors_total{model=\"m\",feature=\"x\",reason=\"missing\"} 1")
    );
}

#[tokio::test(start_paused = true)]
async fn a_replaced_baseline_starts_an_empty_window() {
    let (_, registry, e) = engine();
    let first = registry
        .set("m", Arc::new(snapshot(false)))
        .expect("usable");
    observe(&e, Some(&first), ten_rows());
    let mut second = snapshot(true);
    second.id = "second".into();
    let second = registry.set("m", Arc::new(second)).expect("usable");
    observe(
        &e,
        Some(&second),
        vec![row(&[("x", num(3.0)), ("colour", text("red"))])],
    );
    let r = e.report("m").expect("a report");
    assert_eq!(r.baseline_id.as_deref(), Some("second"));
    assert_eq!(r.rows, 1);
    assert_eq!(feature(&r, "x").window.values, 1);
    assert_eq!(feature(&r, "x").errors_total.missing, 0);
    assert!(close(r.score, 1.0));
}

#[tokio::test(start_paused = true)]
async fn without_a_baseline_the_first_value_fixes_a_feature_type() {
    let (_, _, e) = engine();
    observe(
        &e,
        None,
        vec![
            row(&[("n", num(1.0)), ("c", text("a"))]),
            row(&[("n", text("oops")), ("c", num(2.0))]),
            row(&[("n", text("7")), ("c", FeatureValue::Missing)]),
        ],
    );
    let r = e.report("m").expect("a report");
    assert_eq!(r.baseline_id, None);
    let n = feature(&r, "n");
    assert!(!n.in_baseline);
    assert_eq!(n.feature_type, "numeric");
    // "7" reads as a number; "oops" does not.
    assert_eq!((n.window.values, n.window.type_mismatch), (3, 1));
    assert_eq!(n.mean, Some(4.0));
    // Extremes are raw values: withheld unless privacy.log_values.
    assert_eq!((n.min, n.max), (None, None));
    let c = feature(&r, "c");
    assert_eq!(c.feature_type, "categorical");
    assert_eq!((c.window.type_mismatch, c.window.missing), (0, 1));
    // n: 1/3 mismatched; c: 1/3 missing (no baseline share): score 1 − 1/3.
    assert!(close(r.score, 1.0 - 1.0 / 3.0), "{:?}", r.score);
}

/// An engine whose reports include the window extremes and that keeps at most
/// `max_features` features.
fn engine_with(max_features: usize) -> (Arc<Registry>, QualityEngine) {
    let mut cfg = Config::default();
    cfg.drift.window = WINDOW;
    cfg.privacy.log_values = true;
    cfg.limits.max_features = max_features;
    let (_, registry, e) = engine_of(cfg);
    (registry, e)
}

/// Exchanges of many rows (past the engine's chunk of rows, with names in any order,
/// repeated, unknown, absent, text and missing values) give exactly the reports of the
/// same rows sent one per exchange: the feature-by-feature pass over an exchange's rows
/// is the row-by-row pass.
#[tokio::test(start_paused = true)]
async fn many_rows_per_exchange_equal_one_row_per_exchange() {
    let names = ["x", "colour", "new_a", "new_b", "new_c", "new_d"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut next = move |n: u64| rand::Rng::random_range(&mut rng, 0..n);
    let mut exchanges: Vec<Vec<Row>> = Vec::new();
    for size in [1_u64, 3, 70, 8, 150, 2, 64, 65] {
        let rows = (0..size)
            .map(|_| {
                let k = next(6) + 1;
                let values = (0..k)
                    .map(|_| {
                        let name = names[next(names.len() as u64) as usize];
                        let value = match next(10) {
                            0 => FeatureValue::Missing,
                            1 => text("abc"),
                            2 => text("red"),
                            3 => num(f64::NAN),
                            _ => num(next(3000) as f64 - 500.0 + 0.25),
                        };
                        (name.to_string(), value)
                    })
                    .collect();
                Row { values }
            })
            .collect();
        exchanges.push(rows);
    }
    for max_features in [3, 4, 100] {
        let (ra, batched) = engine_with(max_features);
        let (rb, single) = engine_with(max_features);
        let a = ra.set("m", Arc::new(snapshot(true))).expect("usable");
        let b = rb.set("m", Arc::new(snapshot(true))).expect("usable");
        for rows in &exchanges {
            observe(&batched, Some(&a), rows.clone());
            for r in rows {
                observe(&single, Some(&b), vec![r.clone()]);
            }
            tokio::time::advance(Duration::from_secs(7)).await;
        }
        let (ra, rb) = (
            batched.report("m").expect("a report"),
            single.report("m").expect("a report"),
        );
        assert_eq!(ra, rb, "max_features {max_features}");
        assert!(ra.features.len() >= 3 && ra.rows > 300, "{ra:?}");
    }
}
