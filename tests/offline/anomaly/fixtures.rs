//! Anomaly scoring statistics checked against scikit-learn / scipy / numpy.
//!
//! The fixtures in `tests/fixtures/anomaly/` are produced by
//! `scripts/gen/anomaly.py` (fixed seeds); no expected value here is computed by
//! mlmon. Regenerate with `python scripts/gen/anomaly.py` after installing
//! `tests/py/requirements.txt` (numpy, scipy, scikit-learn).

use std::path::PathBuf;

use mlmon::anomaly::mahalanobis::Mahalanobis;
use mlmon::anomaly::scorer::{sigma_of_chi2, sigma_of_tail, JointRows, Method, Scorer, Settings};
use mlmon::baseline::{BaselineBuilder, BuildOptions};
use mlmon::record::{FeatureValue, Row};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "anomaly",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().parse().unwrap())
                .collect()
        })
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn ledoit_wolf_and_mahalanobis_match_sklearn() {
    let doc = load("ledoit_wolf.json");
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let rows = matrix(&case["rows"]);
        let m = Mahalanobis::fit(&rows).unwrap();
        assert!(
            close(m.shrinkage, case["shrinkage"].as_f64().unwrap(), 1e-9),
            "{name}: shrinkage {} vs sklearn {}",
            m.shrinkage,
            case["shrinkage"]
        );
        for (a, b) in m.mean.iter().zip(floats(&case["location"])) {
            assert!(close(*a, b, 1e-12), "{name}: location {a} vs {b}");
        }
        let cov: Vec<f64> = case["covariance"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        assert_eq!(cov.len(), m.covariance.len());
        for (a, b) in m.covariance.iter().zip(&cov) {
            assert!(close(*a, *b, 1e-9), "{name}: covariance {a} vs {b}");
        }
        let points = matrix(&case["points"]);
        for (p, want) in points.iter().zip(floats(&case["d2"])) {
            let (d2, contrib) = m.distance2(p).unwrap();
            assert!(close(d2, want, 1e-8), "{name}: d2 {d2} vs sklearn {want}");
            // The per-feature shares add up to the distance.
            assert!(close(contrib.iter().sum::<f64>(), want, 1e-8));
        }
    }
}

#[test]
fn sigma_equivalents_match_scipy() {
    let doc = load("sigma.json");
    for c in doc["tails"].as_array().unwrap() {
        let tail = c["tail"].as_f64().unwrap();
        let want = c["sigma"].as_f64().unwrap();
        let got = sigma_of_tail(tail);
        assert!(close(got, want, 1e-9), "tail {tail}: {got} vs scipy {want}");
    }
    for c in doc["chi2"].as_array().unwrap() {
        let d2 = c["d2"].as_f64().unwrap();
        let dof = c["dof"].as_u64().unwrap() as usize;
        let want = c["sigma"].as_f64().unwrap();
        let got = sigma_of_chi2(d2, dof);
        assert!(
            close(got, want, 1e-6),
            "chi2 {d2} dof {dof}: {got} vs scipy {want}"
        );
    }
}

#[test]
fn row_scores_match_the_documented_method_computed_with_numpy_and_sklearn() {
    let doc = load("scorer.json");
    let names: Vec<String> = doc["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let baseline = matrix(&doc["baseline"]);
    let mut builder = BaselineBuilder::new(BuildOptions::new("m"), baseline.len());
    for r in &baseline {
        builder.push_row(&Row {
            values: names
                .iter()
                .cloned()
                .zip(r.iter().map(|v| FeatureValue::Number(*v)))
                .collect(),
        });
    }
    let snapshot = builder.finish().unwrap();
    // The builder's quantiles are numpy's (checked by the baseline tests); confirm the
    // ones the scorer uses.
    for n in &names {
        let q = snapshot.features.get(n).unwrap().stats.quantiles.unwrap();
        let want = &doc["quantiles"][n];
        for (field, v) in [
            ("p01", q.p01),
            ("p25", q.p25),
            ("p50", q.p50),
            ("p75", q.p75),
            ("p99", q.p99),
        ] {
            assert!(
                close(v, want[field].as_f64().unwrap(), 1e-12),
                "{n}.{field}"
            );
        }
    }
    let joint: Vec<Vec<Option<f64>>> = baseline
        .iter()
        .map(|r| r.iter().map(|v| Some(*v)).collect())
        .collect();
    let settings = Settings {
        threshold: 4.0,
        min_confidence: 0.0,
        max_joint_features: 64,
        max_features: 256,
    };
    let scorer = Scorer::fit(
        &snapshot,
        Some(JointRows {
            columns: &names,
            rows: &joint.clone().into(),
        }),
        settings,
    );
    assert_eq!(scorer.method(), Method::Multivariate);
    assert!(close(
        scorer.shrinkage().unwrap(),
        doc["shrinkage"].as_f64().unwrap(),
        1e-9
    ));
    for (i, r) in doc["rows"].as_array().unwrap().iter().enumerate() {
        let values: Vec<f64> = r["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().parse().unwrap())
            .collect();
        let row = Row {
            values: names
                .iter()
                .cloned()
                .zip(values.iter().map(|v| FeatureValue::Number(*v)))
                .collect(),
        };
        let s = scorer.score_explained(&row, None, false);
        let want_z = floats(&r["z"]);
        for (f, wz) in names.iter().zip(&want_z) {
            let got = s
                .explanation
                .iter()
                .find(|c| &c.feature == f)
                .and_then(|c| c.z)
                .unwrap();
            assert!(close(got, *wz, 1e-9), "row {i} {f}: z {got} vs {wz}");
        }
        let d2 = s.mahalanobis_d2.unwrap();
        assert!(
            close(d2, r["d2"].as_f64().unwrap(), 1e-8),
            "row {i}: d2 {d2} vs {}",
            r["d2"]
        );
        assert!(
            close(s.score, r["score"].as_f64().unwrap(), 1e-6),
            "row {i}: score {} vs {}",
            s.score,
            r["score"]
        );
    }
}
