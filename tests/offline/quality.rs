//! Data quality counts: missing, wrong-type, unseen-category, out-of-range and outlier
//! values injected at known positions are counted exactly, in the API report and in
//! `/metrics`; the score follows its documented formula; features without a baseline are
//! tracked too, within `limits.max_features`.

use std::sync::Arc;
use std::time::SystemTime;

use mlmon::analysis::Exchange;
use mlmon::baseline::{BaselineBuilder, BuildOptions, Snapshot};
use mlmon::config::Config;
use mlmon::metrics::Metrics;
use mlmon::quality::QualityEngine;
use mlmon::record::{FeatureValue, ParsedExchange, Row};

/// x: 0, 1, …, 999 (quartiles 249.75 / 749.25, fences −1249.5 / 2248.5);
/// colour: red / green / blue.
fn snapshot() -> Snapshot {
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 1000);
    let colours = ["red", "green", "blue"];
    for i in 0..1000 {
        b.push_row(&Row {
            values: vec![
                ("x".into(), FeatureValue::Number(i as f64)),
                ("colour".into(), FeatureValue::Text(colours[i % 3].into())),
            ],
        });
    }
    b.finish().unwrap()
}

fn num(v: f64) -> FeatureValue {
    FeatureValue::Number(v)
}
fn text(s: &str) -> FeatureValue {
    FeatureValue::Text(s.into())
}

fn observe(e: &QualityEngine, rows: Vec<Row>) {
    let parsed = ParsedExchange {
        rows,
        predictions: Vec::new(),
    };
    e.observe(&Exchange {
        model: "m",
        version: None,
        request_id: "r",
        received_at: SystemTime::now(),
        parsed: &parsed,
        now: tokio::time::Instant::now(),
        request: None,
        baseline: None,
    });
}

fn r(values: Vec<(&str, FeatureValue)>) -> Row {
    Row {
        values: values
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
    }
}

#[test]
fn injected_problems_are_counted_exactly() {
    let metrics = Metrics::new("test");
    // Window min/max are raw values, reported only with privacy.log_values.
    let mut cfg = Config::default();
    cfg.privacy.log_values = true;
    let e = QualityEngine::new(Arc::new(cfg), metrics.quality.clone(), None);
    e.set_baseline("m", &snapshot());
    let mut rows = Vec::new();
    // 100 clean rows.
    for i in 0..100 {
        rows.push(r(vec![("x", num(i as f64 * 9.0)), ("colour", text("red"))]));
    }
    // x missing 4 ways (null, NaN, empty text, absent); colour missing once (null).
    rows.push(r(vec![
        ("x", FeatureValue::Missing),
        ("colour", text("red")),
    ]));
    rows.push(r(vec![("x", num(f64::NAN)), ("colour", text("red"))]));
    rows.push(r(vec![("x", text("  ")), ("colour", text("blue"))]));
    rows.push(r(vec![("colour", FeatureValue::Missing)]));
    // x of the wrong type 3 times; numbers sent as text are not mismatches.
    rows.push(r(vec![("x", text("abc")), ("colour", text("red"))]));
    rows.push(r(vec![("x", text("1e3x")), ("colour", text("red"))]));
    rows.push(r(vec![("x", text("n/a")), ("colour", text("red"))]));
    rows.push(r(vec![("x", text("12.5")), ("colour", text("red"))]));
    // 2 unseen colours.
    rows.push(r(vec![("x", num(5.0)), ("colour", text("purple"))]));
    rows.push(r(vec![("x", num(5.0)), ("colour", text("Red"))]));
    // x out of range 3 times, 2 of them beyond the outlier fences.
    rows.push(r(vec![("x", num(-0.5)), ("colour", text("red"))]));
    rows.push(r(vec![("x", num(5000.0)), ("colour", text("red"))]));
    rows.push(r(vec![("x", num(-2000.0)), ("colour", text("red"))]));
    assert_eq!(rows.len(), 113);
    observe(&e, rows);

    let rep = e.report("m").unwrap();
    assert_eq!(rep.rows, 113);
    let x = rep.features.iter().find(|f| f.feature == "x").unwrap();
    let c = rep.features.iter().find(|f| f.feature == "colour").unwrap();
    assert_eq!(x.window.values, 113);
    assert_eq!(x.window.missing, 4);
    assert_eq!(x.window.type_mismatch, 3);
    assert_eq!(x.window.out_of_range, 3);
    assert_eq!(x.window.outlier, 2);
    assert_eq!(x.window.numeric, 113 - 4 - 3);
    assert_eq!(x.limits.unwrap().lower_fence, Some(249.75 - 3.0 * 499.5));
    assert_eq!(x.limits.unwrap().upper_fence, Some(749.25 + 3.0 * 499.5));
    assert_eq!(x.missing_ratio, Some(4.0 / 113.0));
    assert_eq!(x.out_of_range_ratio, Some(3.0 / 106.0));
    assert_eq!(x.outlier_ratio, Some(2.0 / 106.0));
    assert_eq!(c.window.missing, 1);
    assert_eq!(c.window.unseen_category, 2);
    assert_eq!(c.window.type_mismatch, 0);
    assert_eq!(c.errors_total.unseen_category, 2);
    // Window statistics of x's 106 numeric values, computed here independently.
    let mut xs: Vec<f64> = (0..100).map(|i| i as f64 * 9.0).collect();
    xs.extend([12.5, 5.0, 5.0, -0.5, 5000.0, -2000.0]);
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let std = (xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((x.mean.unwrap() - mean).abs() < 1e-9);
    assert!((x.std.unwrap() - std).abs() < 1e-9);
    assert_eq!(x.min, Some(-2000.0));
    assert_eq!(x.max, Some(5000.0));
    // Score: 1 − mean(x problems, colour problems); the baseline has no missing values.
    let px = (4.0 + 3.0 + 3.0) / 113.0;
    let pc = (1.0 + 2.0) / 113.0;
    let score = 1.0 - (px + pc) / 2.0;
    assert!((rep.score.unwrap() - score).abs() < 1e-12);
    assert_eq!(e.score("m"), rep.score);

    e.refresh();
    let (text, _) = metrics.encode(None);
    let samples = crate::common::parse_exposition(&text);
    let get = |name: &str, labels: &[(&str, &str)]| crate::common::value(&samples, name, labels);
    let xl = [("model", "m"), ("feature", "x")];
    assert_eq!(get("mlmon_feature_missing_ratio", &xl), Some(4.0 / 113.0));
    assert_eq!(
        get("mlmon_feature_out_of_range_ratio", &xl),
        Some(3.0 / 106.0)
    );
    assert_eq!(get("mlmon_feature_outlier_ratio", &xl), Some(2.0 / 106.0));
    assert_eq!(
        get(
            "mlmon_feature_stat",
            &[("model", "m"), ("feature", "x"), ("stat", "max")]
        ),
        Some(5000.0)
    );
    for (feature, reason, n) in [
        ("x", "missing", 4.0),
        ("x", "type_mismatch", 3.0),
        ("x", "out_of_range", 3.0),
        ("colour", "missing", 1.0),
        ("colour", "unseen_category", 2.0),
    ] {
        assert_eq!(
            get(
                "mlmon_feature_errors_total",
                &[("model", "m"), ("feature", feature), ("reason", reason)]
            ),
            Some(n),
            "{feature} {reason}"
        );
    }
    // A reason the feature's type cannot give, or one that never happened and is not
    // zero-initialised for it (a categorical's type_mismatch), has no series (issue 13).
    for (feature, reason) in [
        ("x", "unseen_category"),
        ("colour", "type_mismatch"),
        ("colour", "out_of_range"),
    ] {
        assert_eq!(
            get(
                "mlmon_feature_errors_total",
                &[("model", "m"), ("feature", feature), ("reason", reason)]
            ),
            None,
            "{feature} {reason}"
        );
    }
    let s = get("mlmon_data_quality_score", &[("model", "m")]).unwrap();
    assert!((s - score).abs() < 1e-12);
    // Counters only grow: a second refresh adds nothing.
    e.refresh();
    let (text, _) = metrics.encode(None);
    let samples = crate::common::parse_exposition(&text);
    assert_eq!(
        crate::common::value(
            &samples,
            "mlmon_feature_errors_total",
            &[("model", "m"), ("feature", "x"), ("reason", "missing")]
        ),
        Some(4.0)
    );
}

#[test]
fn error_counters_start_at_zero_for_the_reasons_each_feature_type_gives() {
    let metrics = Metrics::new("test");
    let e = QualityEngine::new(Arc::new(Config::default()), metrics.quality.clone(), None);
    e.set_baseline("m", &snapshot());
    let (text, _) = metrics.encode(None);
    let samples = crate::common::parse_exposition(&text);
    // The reasons normal traffic gives start at zero: missing plus the type's own check
    // (out_of_range for a numeric feature, unseen_category for a categorical one); the rest
    // appear at their first occurrence, which keeps a 100-feature page under 120 KB.
    for (feature, reason, zero) in [
        ("x", "missing", true),
        ("x", "out_of_range", true),
        ("x", "type_mismatch", false),
        ("x", "unseen_category", false),
        ("colour", "missing", true),
        ("colour", "unseen_category", true),
        ("colour", "type_mismatch", false),
        ("colour", "out_of_range", false),
    ] {
        assert_eq!(
            crate::common::value(
                &samples,
                "mlmon_feature_errors_total",
                &[("model", "m"), ("feature", feature), ("reason", reason)]
            ),
            zero.then_some(0.0),
            "{feature} {reason}"
        );
    }
    // No window values yet: no score, no ratios (never a fake perfect score).
    assert_eq!(e.score("m"), None);
}

#[test]
fn features_without_a_baseline_are_tracked_within_the_limit() {
    let metrics = Metrics::new("test");
    let mut cfg = Config::default();
    cfg.limits.max_features = 3;
    let e = QualityEngine::new(Arc::new(cfg), metrics.quality.clone(), None);
    // No baseline at all: the first value fixes each feature's type.
    observe(
        &e,
        vec![
            r(vec![
                ("a", num(1.0)),
                ("b", text("x")),
                ("c", num(2.0)),
                ("d", num(3.0)),
            ]),
            r(vec![("a", text("oops")), ("b", num(7.0))]),
            r(vec![
                ("a", text("4")),
                ("b", FeatureValue::Missing),
                ("c", num(1.0)),
            ]),
        ],
    );
    let rep = e.report("m").unwrap();
    assert_eq!(rep.baseline_id, None);
    let names: Vec<&str> = rep.features.iter().map(|f| f.feature.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"], "d is beyond limits.max_features");
    let a = &rep.features[0];
    assert_eq!(a.feature_type, "numeric");
    assert!(!a.in_baseline);
    assert_eq!(
        (a.window.values, a.window.type_mismatch, a.window.missing),
        (3, 1, 0)
    );
    let b = &rep.features[1];
    assert_eq!(b.feature_type, "categorical");
    assert_eq!(
        (b.window.values, b.window.type_mismatch, b.window.missing),
        (3, 0, 1)
    );
    let c = &rep.features[2];
    assert_eq!((c.window.values, c.window.missing), (3, 1));
    assert_eq!(c.mean, Some(1.5));
}
