//! The snapshot's row-aligned `joint_sample`: built by the file builder and the live
//! builder (seeded, bounded, rows really aligned, prediction and target included),
//! checked on load, optional for older snapshots, and used by the multivariate score.

use std::io::Write;

use mlmon::anomaly::joint_rows;
use mlmon::anomaly::scorer::{Method, Scorer, Settings};
use mlmon::baseline::{build_from_file, BaselineBuilder, BuildOptions, NoProgress, Snapshot};
use mlmon::record::{FeatureValue, Prediction, Row};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn settings() -> Settings {
    Settings {
        threshold: 4.0,
        min_confidence: 0.0,
        max_joint_features: 64,
        max_features: 256,
    }
}

/// CSV rows: a, b = 0.9 a + noise, colour, score (prediction), label (target).
fn csv(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let mut rng = StdRng::seed_from_u64(5);
    let path = dir.join("train.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "a,b,colour,score,label").unwrap();
    for i in 0..n {
        let a: f64 = rng.sample(StandardNormal);
        let e: f64 = rng.sample(StandardNormal);
        let b = 0.9 * a + 0.4359 * e;
        let a_cell = if i % 50 == 7 {
            String::new()
        } else {
            a.to_string()
        };
        let colour = ["red", "blue"][i % 2];
        let score = 1.0 / (1.0 + (-a).exp());
        writeln!(f, "{a_cell},{b},{colour},{score},{}", i64::from(a > 0.0)).unwrap();
    }
    path
}

fn options(sample: usize) -> BuildOptions {
    let mut o = BuildOptions::new("m");
    o.prediction = Some("score".into());
    o.target = Some("label".into());
    o.sample_size = sample;
    o.seed = 3;
    o
}

#[test]
fn the_file_builder_keeps_whole_rows_with_prediction_and_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), 3000);
    let snap = build_from_file(&path, None, &options(500), &mut NoProgress).unwrap();
    let j = snap.joint_sample.as_ref().expect("joint_sample");
    assert_eq!(j.columns, ["a", "b", "prediction", "target"]);
    assert_eq!(j.rows.len(), 500);
    // Rows are whole input rows: b ≈ 0.9 a, the prediction is the logistic of a and
    // the target its sign; missing a is null.
    let mut nulls = 0;
    for r in &j.rows {
        let (b, p, t) = (r.get(1).unwrap(), r.get(2).unwrap(), r.get(3).unwrap());
        match r.get(0) {
            Some(a) => {
                assert!((p - 1.0 / (1.0 + (-a).exp())).abs() < 1e-9, "{r:?}");
                assert_eq!(t, f64::from(u8::from(a > 0.0)));
                assert!((b - 0.9 * a).abs() < 3.0);
            }
            None => nulls += 1,
        }
    }
    assert!(nulls > 0 && nulls < 30, "{nulls} missing a");
    // Seeded: the same build gives the same sample; another seed another one.
    let again = build_from_file(&path, None, &options(500), &mut NoProgress).unwrap();
    assert_eq!(again.joint_sample, snap.joint_sample);
    let mut o = options(500);
    o.seed = 4;
    let other = build_from_file(&path, None, &o, &mut NoProgress).unwrap();
    assert_ne!(other.joint_sample, snap.joint_sample);
    // All rows when fewer than the sample size, in input order.
    let all = build_from_file(&path, None, &options(5000), &mut NoProgress).unwrap();
    assert_eq!(all.joint_sample.as_ref().unwrap().rows.len(), 3000);
    // Saved and loaded unchanged; the schema test in src/baseline/tests.rs covers the JSON.
    let out = dir.path().join("b.json");
    snap.save(&out).unwrap();
    let back = Snapshot::load(&out).unwrap();
    assert_eq!(back.joint_sample, snap.joint_sample);
    assert_eq!(back.id, snap.id);
}

#[test]
fn the_live_builder_pairs_rows_with_their_predictions() {
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 300);
    for i in 0..300 {
        let x = i as f64;
        b.push_row(&Row {
            values: vec![
                ("x".into(), FeatureValue::Number(x)),
                ("c".into(), FeatureValue::Text("k".into())),
            ],
        });
        b.push_prediction(&Prediction {
            value: FeatureValue::Number(2.0 * x + 1.0),
            probabilities: None,
        });
    }
    let snap = b.finish().unwrap();
    let j = snap.joint_sample.unwrap();
    assert_eq!(j.columns, ["x", "prediction"]);
    assert_eq!(j.rows.len(), 300);
    for (i, r) in j.rows.iter().enumerate() {
        assert_eq!(r.to_vec(), vec![Some(i as f64), Some(2.0 * i as f64 + 1.0)]);
    }
}

fn doc_with_joint(joint: serde_json::Value) -> Vec<u8> {
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 20);
    for i in 0..20 {
        b.push_row(&Row {
            values: vec![
                ("x".into(), FeatureValue::Number(i as f64)),
                ("y".into(), FeatureValue::Number((i * i) as f64)),
            ],
        });
    }
    let mut v: serde_json::Value =
        serde_json::from_str(&b.finish().unwrap().to_json().unwrap()).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("id");
    match joint {
        serde_json::Value::Null => {
            obj.remove("joint_sample");
        }
        j => {
            obj.insert("joint_sample".into(), j);
        }
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn inconsistent_joint_samples_are_refused_with_their_path() {
    let cases = [
        (
            serde_json::json!({"columns": ["x", "nope"], "rows": []}),
            "joint_sample.columns[1]",
        ),
        (
            serde_json::json!({"columns": ["x", "x"], "rows": []}),
            "joint_sample.columns[1]",
        ),
        (
            serde_json::json!({"columns": ["x", "y"], "rows": [[1, 2], [3]]}),
            "joint_sample.rows[1]",
        ),
        (
            serde_json::json!({"columns": ["prediction"], "rows": []}),
            "joint_sample.columns[0]",
        ),
        (
            serde_json::json!({"columns": ["x"], "rows": [["a"]]}),
            "joint_sample.rows[0][0]",
        ),
    ];
    for (joint, path) in cases {
        let err = Snapshot::from_json_bytes(&doc_with_joint(joint.clone()), "b.json").unwrap_err();
        assert_eq!(err.field_path(), Some(path), "{joint}: {err}");
        assert!(err.to_string().starts_with("b.json: "), "{err}");
    }
    assert!(Snapshot::from_json_bytes(
        &doc_with_joint(serde_json::json!({"columns": ["y", "x"], "rows": [[1, null]]})),
        "b.json"
    )
    .is_ok());
}

#[test]
fn snapshots_without_a_joint_sample_load_and_score_univariately() {
    let snap =
        Snapshot::from_json_bytes(&doc_with_joint(serde_json::Value::Null), "old.json").unwrap();
    assert!(snap.joint_sample.is_none());
    let s = Scorer::fit(&snap, joint_rows(&snap), settings());
    assert_eq!(s.method(), Method::Univariate);
}

#[test]
fn a_built_snapshot_fits_the_multivariate_score_and_catches_a_correlation_break() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), 5000);
    let snap = build_from_file(&path, None, &options(5000), &mut NoProgress).unwrap();
    let s = Scorer::fit(&snap, joint_rows(&snap), settings());
    assert_eq!(s.method(), Method::Multivariate, "{:?}", s.fallback);
    assert_eq!(s.joint_features(), ["a", "b"]);
    let row = |a: f64, b: f64| Row {
        values: vec![
            ("a".into(), FeatureValue::Number(a)),
            ("b".into(), FeatureValue::Number(b)),
            ("colour".into(), FeatureValue::Text("red".into())),
        ],
    };
    let ok = s.score(&row(1.5, 1.4), None, false);
    assert!(!ok.is_anomaly(), "{ok:?}");
    let broken = s.score(&row(2.0, -1.8), None, false);
    assert!(broken.univariate < 4.0);
    assert_eq!(broken.reasons, ["multivariate"], "{broken:?}");
}
