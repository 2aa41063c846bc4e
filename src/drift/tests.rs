//! The drift engine driven directly: exchanges in, reports and `/metrics` out, under paused
//! tokio time. Expected figures are worked out by hand in the comments.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{DriftEngine, ModelDriftReport, Status};
use crate::analysis::{Analysis, Exchange};
use crate::baseline::{
    BaselineBuilder, BuildOptions, Current, Registry, Snapshot, ThresholdPair, Thresholds,
};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::record::{FeatureValue, ParsedExchange, Row};

const WINDOW: Duration = Duration::from_secs(100);

struct Fixture {
    metrics: Metrics,
    registry: Arc<Registry>,
    engine: DriftEngine,
}

fn fixture() -> Fixture {
    fixture_with(crate::config::FleetBins::Full)
}

fn fixture_with(fleet_bins: crate::config::FleetBins) -> Fixture {
    let mut cfg = Config::default();
    cfg.drift.window = WINDOW;
    cfg.drift.fleet_bins = fleet_bins;
    let metrics = Metrics::new("test");
    let registry = Arc::new(Registry::new(0, 100));
    let engine = DriftEngine::new(Arc::new(cfg), metrics.drift.clone(), registry.clone());
    Fixture {
        metrics,
        registry,
        engine,
    }
}

/// A baseline of 1000 rows: `colour` half red, half blue (as the window tests count it);
/// `x` 0, 1, …, 999 when `numeric`.
fn snapshot(numeric: bool) -> Snapshot {
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 1000);
    for i in 0..1000 {
        let mut values = vec![(
            "colour".to_string(),
            FeatureValue::Text(if i % 2 == 0 { "red" } else { "blue" }.into()),
        )];
        if numeric {
            values.push(("x".to_string(), FeatureValue::Number(i as f64)));
        }
        b.push_row(&Row { values });
    }
    b.finish().expect("baseline builds")
}

/// `snapshot(false)` whose `colour` carries its own thresholds.
fn with_thresholds(t: Thresholds) -> Snapshot {
    let mut s = snapshot(false);
    for (name, f) in s.features.0.iter_mut() {
        if name == "colour" {
            f.thresholds = Some(t.clone());
        }
    }
    s
}

fn colours(red: usize, blue: usize) -> Vec<Row> {
    let row = |c: &str| Row {
        values: vec![("colour".to_string(), FeatureValue::Text(c.into()))],
    };
    let mut rows: Vec<Row> = (0..red).map(|_| row("red")).collect();
    rows.extend((0..blue).map(|_| row("blue")));
    rows
}

fn observe(engine: &DriftEngine, baseline: &Arc<Current>, rows: Vec<Row>) {
    let parsed = ParsedExchange {
        rows,
        predictions: Vec::new(),
    };
    Analysis::observe(
        engine,
        &Exchange {
            model: "m",
            version: None,
            request_id: "r",
            received_at: SystemTime::now(),
            now: Instant::now(),
            parsed: &parsed,
            request: None,
            baseline: Some(baseline),
        },
    );
}

fn feature<'a>(r: &'a ModelDriftReport, name: &str) -> &'a super::FeatureDrift {
    r.features
        .iter()
        .find(|f| f.feature == name)
        .unwrap_or_else(|| panic!("no feature {name} in {r:?}"))
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test(start_paused = true)]
async fn psi_levels_give_the_feature_and_model_status() {
    // Baseline red/blue 0.5/0.5 (the `__other__` cell is 0 on both sides, floored alike).
    // PSI = Σ (a − e) ln(a / e):
    //   65/35: 0.15 ln 1.3 − 0.15 ln 0.7 = 0.0928561  → ok (< 0.1)
    //   70/30: 0.2 ln 1.4 − 0.2 ln 0.6   = 0.1694596  → warning (0.1 ≤ psi < 0.2)
    //   80/20: 0.3 ln 1.6 − 0.3 ln 0.4   = 0.4158883  → critical (≥ 0.2)
    for (red, psi, status) in [
        (65, 0.092_856_1, Status::Ok),
        (70, 0.169_459_6, Status::Warning),
        (80, 0.415_888_3, Status::Critical),
    ] {
        let f = fixture();
        let current = f
            .registry
            .set("m", Arc::new(snapshot(false)))
            .expect("usable");
        observe(&f.engine, &current, colours(red, 100 - red));
        let r = f.engine.report("m").expect("a report");
        let c = feature(&r, "colour");
        assert_eq!(c.window.count, 100);
        assert!(
            c.psi.is_some_and(|p| (p - psi).abs() < 1e-6),
            "{red}/{}: psi {:?}, by hand {psi}",
            100 - red,
            c.psi
        );
        assert_eq!(c.status, Some(status), "{red}/{}", 100 - red);
        assert_eq!(r.status, Some(status));
        // One input feature: the drift score is 1 when it is drifted, else 0.
        let drifted = if status >= Status::Warning { 1.0 } else { 0.0 };
        assert_eq!(r.drift_score, Some(drifted));
    }
}

#[tokio::test(start_paused = true)]
async fn chi2_pvalue_levels_from_the_baseline_count_from_the_bottom() {
    // PSI levels far away so that only the p-value decides; chi2 on 100 values against
    // 50/50, one degree of freedom: p = P(χ²₁ ≥ x) = 2 (1 − Φ(√x)).
    //   55/45: x = 1 → p = 0.3173105  → ok
    //   60/40: x = 4 → p = 0.0455003  → warning (≤ 0.05)
    //   65/35: x = 9 → p = 0.0026998  → critical (≤ 0.01)
    let levels = Thresholds {
        psi: Some(ThresholdPair {
            warning: 10.0,
            critical: 20.0,
        }),
        chi2_pvalue: Some(ThresholdPair {
            warning: 0.05,
            critical: 0.01,
        }),
        ..Thresholds::default()
    };
    for (red, p, status) in [
        (55, 0.317_310_5, Status::Ok),
        (60, 0.045_500_3, Status::Warning),
        (65, 0.002_699_8, Status::Critical),
    ] {
        let f = fixture();
        let current = f
            .registry
            .set("m", Arc::new(with_thresholds(levels.clone())))
            .expect("usable");
        observe(&f.engine, &current, colours(red, 100 - red));
        let r = f.engine.report("m").expect("a report");
        let c = feature(&r, "colour");
        assert!(
            c.chi2_pvalue.is_some_and(|v| (v - p).abs() < 1e-6),
            "{red}/{}: p {:?}, by hand {p}",
            100 - red,
            c.chi2_pvalue
        );
        assert_eq!(c.status, Some(status), "{red}/{}", 100 - red);
        let shown = c.thresholds.chi2_pvalue.expect("levels reported");
        assert_eq!((shown.warning, shown.critical), (0.05, 0.01));
    }
}

#[tokio::test(start_paused = true)]
async fn values_leave_the_window_after_drift_window() {
    let f = fixture();
    let current = f
        .registry
        .set("m", Arc::new(snapshot(false)))
        .expect("usable");
    observe(&f.engine, &current, colours(80, 20));
    f.engine.refresh();
    let psi_line = "mlmon_feature_psi{model=\"m\",feature=\"colour\",kind=\"input\"}";
    assert!(f.metrics.encode(None).0.contains(psi_line));

    // Ten buckets of 10 s: the first bucket leaves at 100 s + 10 s.
    tokio::time::advance(Duration::from_secs(109)).await;
    let r = f.engine.report("m").expect("a report");
    assert_eq!(feature(&r, "colour").window.count, 100);
    tokio::time::advance(Duration::from_secs(1)).await;
    let r = f.engine.report("m").expect("a report");
    let c = feature(&r, "colour");
    assert_eq!(c.window.count, 0);
    assert_eq!(
        (c.psi, c.status),
        (None, None),
        "no value, never zero drift"
    );
    assert_eq!((r.drift_score, r.status), (None, None));

    // The refresh removes the series instead of exporting zero drift.
    f.engine.refresh();
    let text = f.metrics.encode(None).0;
    assert!(!text.contains(psi_line), "{text}");
    assert!(!text.contains("mlmon_model_drift_score{model=\"m\"}"));

    // New values count again.
    observe(&f.engine, &current, colours(50, 50));
    let r = f.engine.report("m").expect("a report");
    assert_eq!(feature(&r, "colour").window.count, 100);
    assert!(close(feature(&r, "colour").psi, 0.0));
}

#[tokio::test(start_paused = true)]
async fn a_replaced_baseline_resets_the_windows_and_drops_the_old_series() {
    let f = fixture();
    let first = f
        .registry
        .set("m", Arc::new(snapshot(true)))
        .expect("usable");
    let rows: Vec<Row> = (0..100)
        .map(|i| Row {
            values: vec![
                ("colour".to_string(), FeatureValue::Text("red".into())),
                ("x".to_string(), FeatureValue::Number(i as f64)),
            ],
        })
        .collect();
    observe(&f.engine, &first, rows);
    f.engine.refresh();
    let r = f.engine.report("m").expect("a report");
    assert_eq!(r.baseline_id, first.snapshot.id);
    assert_eq!(feature(&r, "x").window.count, 100);
    let text = f.metrics.encode(None).0;
    let x_bins = "mlmon_baseline_bin_ratio{model=\"m\",feature=\"x\"";
    let x_psi = "mlmon_feature_psi{model=\"m\",feature=\"x\"";
    let x_counts = "mlmon_feature_bin_observations_total{model=\"m\",feature=\"x\"";
    let old_info = format!(
        "mlmon_baseline_info{{model=\"m\",id=\"{}\"}}",
        first.snapshot.id
    );
    for line in [x_bins, x_psi, x_counts, &old_info] {
        assert!(text.contains(line), "{line} missing before the replacement");
    }

    // A new baseline without `x`, installed through the registry: the next exchange
    // carries it and the engine starts afresh from it.
    let mut replacement = snapshot(false);
    replacement.id = "second".into();
    let second = f.registry.set("m", Arc::new(replacement)).expect("usable");
    assert!(second.generation > first.generation);
    observe(&f.engine, &second, colours(60, 40));
    f.engine.refresh();
    let r = f.engine.report("m").expect("a report");
    assert_eq!(r.baseline_id, "second");
    assert!(r.features.iter().all(|f| f.feature != "x"), "{r:?}");
    assert_eq!(
        feature(&r, "colour").window.count,
        100,
        "the 100 rows seen before the replacement are not in the new window"
    );
    let text = f.metrics.encode(None).0;
    for line in [x_bins, x_psi, x_counts, &old_info] {
        assert!(!text.contains(line), "{line} still exported:\n{text}");
    }
    assert!(text.contains("mlmon_baseline_info{model=\"m\",id=\"second\"} 1"));
}

#[tokio::test(start_paused = true)]
async fn exchanges_without_a_baseline_are_not_analysed() {
    let f = fixture();
    let parsed = ParsedExchange {
        rows: colours(10, 0),
        predictions: Vec::new(),
    };
    f.engine.observe(&Exchange {
        model: "m",
        version: None,
        request_id: "r",
        received_at: SystemTime::now(),
        now: Instant::now(),
        parsed: &parsed,
        request: None,
        baseline: None,
    });
    assert!(f.engine.report("m").is_none());
    assert!(Analysis::report(&f.engine, "m").is_none());
}

#[tokio::test(start_paused = true)]
async fn live_shap_importance_weights_the_drift_score() {
    // colour 80/20 (critical), x spread like the baseline's 0..999 (ok): unweighted 1/2.
    let rows = |f: &Fixture, current: &Arc<Current>| {
        let rows: Vec<Row> = (0..100)
            .map(|i| Row {
                values: vec![
                    (
                        "colour".to_string(),
                        FeatureValue::Text(if i < 80 { "red" } else { "blue" }.into()),
                    ),
                    ("x".to_string(), FeatureValue::Number((i * 10) as f64 + 4.5)),
                ],
            })
            .collect();
        observe(&f.engine, current, rows);
    };
    let f = fixture();
    let current = f
        .registry
        .set("m", Arc::new(snapshot(true)))
        .expect("usable");
    rows(&f, &current);
    let r = f.engine.report("m").expect("a report");
    assert_eq!(feature(&r, "x").status, Some(Status::Ok), "{r:?}");
    assert!(close(r.drift_score, 0.5), "{:?}", r.drift_score);
    // Explain's mean |φ|: colour 3, x 1 → 3 / 4 of the weight is drifted.
    let live = Arc::new(crate::analysis::LiveImportance::default());
    let mut cfg = Config::default();
    cfg.drift.window = WINDOW;
    let engine = DriftEngine::new(Arc::new(cfg), f.metrics.drift.clone(), f.registry.clone())
        .with_live_importance(live.clone());
    let g = Fixture {
        metrics: Metrics::new("test"),
        registry: f.registry.clone(),
        engine,
    };
    rows(&g, &current);
    let both = |c: f64, x: f64| {
        [("colour".to_string(), c), ("x".to_string(), x)]
            .into_iter()
            .collect()
    };
    live.set("m", both(3.0, 1.0));
    assert!(close(g.engine.report("m").unwrap().drift_score, 0.75));
    // The model ignores colour: its drift does not count.
    live.set("m", both(0.0, 1.0));
    assert!(close(g.engine.report("m").unwrap().drift_score, 0.0));
    // No positive importance yet: back to equal weights.
    live.set("m", both(0.0, 0.0));
    assert!(close(g.engine.report("m").unwrap().drift_score, 0.5));
}

#[tokio::test(start_paused = true)]
async fn per_bin_series_follow_drift_fleet_bins() {
    use crate::config::FleetBins;
    // Counted per family: (bin counters, baseline ratios, PSI series).
    let count = |text: &str| {
        let n = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
        (
            n("mlmon_feature_bin_observations_total{"),
            n("mlmon_baseline_bin_ratio{"),
            n("mlmon_feature_psi{"),
        )
    };
    let mut seen = Vec::new();
    for mode in [FleetBins::Off, FleetBins::Counts, FleetBins::Full] {
        let f = fixture_with(mode);
        let current = f
            .registry
            .set("m", Arc::new(snapshot(true)))
            .expect("usable");
        let rows: Vec<Row> = (0..50)
            .map(|i| Row {
                values: vec![
                    ("colour".to_string(), FeatureValue::Text("red".into())),
                    ("x".to_string(), FeatureValue::Number(f64::from(i))),
                ],
            })
            .collect();
        observe(&f.engine, &current, rows);
        f.engine.refresh();
        let text = f.metrics.encode(None).0;
        seen.push((mode, count(&text)));
        let observed: u64 = text
            .lines()
            .filter(|l| l.starts_with("mlmon_feature_bin_observations_total{"))
            .filter(|l| l.contains("feature=\"x\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if mode.counts() {
            assert_eq!(observed, 50, "{mode:?}: every x value counted in a bin");
        }
    }
    // `colour` has red, blue and __other__ (3 cells), `x` its baseline bins.
    let bins = match &seen[2].1 {
        (c, r, _) if c == r && *c > 3 => *c,
        other => panic!("full: {other:?}"),
    };
    assert_eq!(
        seen[0].1,
        (0, 0, 2),
        "off: no per-bin series, the statistics stay"
    );
    assert_eq!(seen[1].1, (bins, 0, 2), "counts: the counters, no ratios");
    assert_eq!(seen[2].1, (bins, bins, 2), "full: both");
}

/// A report spread over two threads is the report of one thread, feature for feature and
/// in the same order (12 numeric features, some drifted, and a categorical one).
#[tokio::test(start_paused = true)]
async fn two_report_threads_give_the_one_thread_report() {
    let numeric = |i: usize| format!("n{i:02}");
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 2000);
    for r in 0..2000 {
        let mut values = vec![(
            "colour".to_string(),
            FeatureValue::Text(if r % 3 == 0 { "red" } else { "blue" }.into()),
        )];
        for i in 0..12 {
            let v = ((r * 7919 + i * 104_729) % 2000) as f64 / 10.0;
            values.push((numeric(i), FeatureValue::Number(v)));
        }
        b.push_row(&Row { values });
    }
    let snapshot = Arc::new(b.finish().expect("baseline builds"));
    let reports: Vec<ModelDriftReport> = [1, 2]
        .into_iter()
        .map(|threads| {
            let mut cfg = Config::default();
            cfg.drift.window = WINDOW;
            let registry = Arc::new(Registry::new(0, 100));
            let engine = DriftEngine::new(
                Arc::new(cfg),
                Metrics::new("test").drift.clone(),
                registry.clone(),
            )
            .with_report_threads(threads);
            let current = registry.set("m", snapshot.clone()).expect("usable");
            let rows = (0..3000)
                .map(|r| {
                    let mut values = vec![(
                        "colour".to_string(),
                        FeatureValue::Text(if r % 2 == 0 { "red" } else { "blue" }.into()),
                    )];
                    for i in 0..12 {
                        // Every third feature shifted: drifted, with a small p-value.
                        let shift = if i % 3 == 0 { 40.0 } else { 0.0 };
                        let v = ((r * 6151 + i * 7) % 2000) as f64 / 10.0 + shift;
                        values.push((numeric(i), FeatureValue::Number(v)));
                    }
                    Row { values }
                })
                .collect();
            observe(&engine, &current, rows);
            engine.report("m").expect("a report")
        })
        .collect();
    assert_eq!(reports[0].features.len(), 13);
    assert!(reports[0]
        .features
        .iter()
        .any(|f| f.ks_pvalue.is_some_and(|p| p < 1e-6)));
    assert_eq!(reports[0], reports[1]);
}
