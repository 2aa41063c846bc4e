//! The `probability` entry of a build: the score columns (`--probability`) and, when the
//! data tells them, their class labels.

use crate::baseline::snapshot::format_number;
use crate::baseline::snapshot::{FeatureBaseline, FeatureType, ProbabilityInfo, OTHER_CATEGORY};

/// The snapshot's `probability` for the score `columns` (in class order): the classes
/// come from the target, else the prediction, when it has exactly as many classes as
/// needed (one per column; two for a single positive-class column).
pub(super) fn probability_info(
    columns: &[String],
    target: Option<&FeatureBaseline>,
    prediction: Option<&FeatureBaseline>,
) -> Option<ProbabilityInfo> {
    if columns.is_empty() {
        return None;
    }
    let want = if columns.len() == 1 { 2 } else { columns.len() };
    let classes = [target, prediction]
        .into_iter()
        .flatten()
        .filter_map(classes_of)
        .find(|c| c.len() == want)
        .unwrap_or_default();
    Some(ProbabilityInfo {
        columns: columns.to_vec(),
        classes,
    })
}

/// The distinct labels of an entry in class order (numerically when every label is a
/// number, as scikit-learn's `classes_`, else by text): a categorical entry's categories
/// (unknown when values were pooled into `__other__`), or a numeric entry's integral
/// values when its reference sample holds every value. `None` when not known.
fn classes_of(entry: &FeatureBaseline) -> Option<Vec<String>> {
    let mut labels: Vec<String> = match entry.kind {
        FeatureType::Categorical => {
            let cats = entry.categories.as_ref()?;
            if cats.get(OTHER_CATEGORY).is_some() {
                return None;
            }
            cats.names().map(str::to_owned).collect()
        }
        FeatureType::Numeric => {
            let s = &entry.sample;
            if s.is_empty() || s.len() as u64 != entry.stats.count {
                return None;
            }
            if s.iter().any(|v| v.fract() != 0.0) {
                return None;
            }
            let mut v = s.clone();
            v.sort_by(f64::total_cmp);
            v.dedup();
            if v.len() > 1000 {
                return None;
            }
            v.into_iter().map(format_number).collect()
        }
    };
    let numbers: Option<Vec<f64>> = labels.iter().map(|l| l.parse::<f64>().ok()).collect();
    match numbers {
        Some(n) => {
            let mut pairs: Vec<(f64, String)> = n.into_iter().zip(labels).collect();
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
            labels = pairs.into_iter().map(|(_, l)| l).collect();
        }
        None => labels.sort(),
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::{Path, PathBuf};

    use crate::baseline::test_support::{build_err, write};
    use crate::baseline::{build_from_file, BuildOptions, NoProgress, ProbabilityInfo, Snapshot};

    /// A binary model with decision threshold 0.65: feature `x`, score `p`, label `yhat`
    /// (what the model returns), target `y`. Deterministic (no RNG).
    fn binary_csv(dir: &Path, name: &str, rows: usize) -> PathBuf {
        let mut text = String::from("x,p,yhat,y\n");
        for i in 0..rows {
            let p = ((i * 37) % 100) as f64 / 100.0;
            let yhat = u8::from(p >= 0.65);
            let y = u8::from(((i * 53) % 100) as f64 / 100.0 < p);
            writeln!(text, "{},{p},{yhat},{y}", i % 17).unwrap();
        }
        write(dir, name, &text)
    }

    fn opts() -> BuildOptions {
        BuildOptions {
            prediction: Some("yhat".into()),
            probability: vec!["p".into()],
            target: Some("y".into()),
            ..BuildOptions::new("loan")
        }
    }

    #[test]
    fn prediction_is_the_label_and_probability_the_scores() {
        let dir = tempfile::tempdir().unwrap();
        let path = binary_csv(dir.path(), "train.csv", 400);
        let snap = build_from_file(&path, None, &opts(), &mut NoProgress).unwrap();
        // The output entry describes the labels the model returns, not the scores.
        let pred = snap.prediction.as_ref().unwrap();
        assert_eq!((pred.stats.min, pred.stats.max), (Some(0.0), Some(1.0)));
        // The score column is no input feature; it is named in `probability` with the
        // classes from the target (sorted as scikit-learn's classes_: positive last).
        assert!(snap.features.get("p").is_none());
        assert_eq!(snap.features.names().collect::<Vec<_>>(), ["x"]);
        assert_eq!(
            snap.probability,
            Some(ProbabilityInfo {
                columns: vec!["p".into()],
                classes: vec!["0".into(), "1".into()],
            })
        );
        // (score, target) pairs row by row in the joint sample.
        let joint = snap.joint_sample.as_ref().unwrap();
        assert_eq!(joint.columns, ["x", "prediction", "target", "p"]);
        assert_eq!(joint.rows.len(), 400);
        let (pi, ti) = (3, 2);
        for (i, row) in joint.rows.iter().enumerate() {
            let p = ((i * 37) % 100) as f64 / 100.0;
            assert_eq!(row.get(pi), Some(p), "row {i}");
            assert_eq!(row.get(1), Some(f64::from(u8::from(p >= 0.65))), "row {i}");
            assert!(matches!(row.get(ti), Some(v) if v == 0.0 || v == 1.0));
        }
        // `mlmon baseline show` names it.
        let shown = crate::baseline::render_summary(&snap, "b.json");
        assert!(
            shown.contains("  probability p (classes 0, 1)\n"),
            "{shown}"
        );
        // Written, read back and valid against the published schema.
        let text = snap.to_json().unwrap();
        assert_eq!(
            Snapshot::from_json_bytes(text.as_bytes(), "b").unwrap(),
            snap
        );
        let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/baseline.schema.json");
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(validator.is_valid(&doc));
    }

    #[test]
    fn live_labels_do_not_drift_against_a_label_prediction() {
        // Issue 12 defect 4: with the score as --prediction, live labels read PSI ≈ 6.7
        // forever. With --prediction yhat --probability p, the same traffic reads ≈ 0.
        let dir = tempfile::tempdir().unwrap();
        let train = binary_csv(dir.path(), "train.csv", 2000);
        // The same traffic with the output in `yhat` (mlmon drift --prediction yhat) and in
        // a column named `prediction` (the default).
        let live_yhat = binary_csv(dir.path(), "l.csv", 2000);
        let live = write(
            dir.path(),
            "live.csv",
            &std::fs::read_to_string(&live_yhat)
                .unwrap()
                .replace("x,p,yhat,y", "x,p,prediction,y"),
        );
        let cfg = crate::config::Config::default();
        let output_psi = |snap: Snapshot, input: &Path, column: Option<&str>| {
            let path = dir.path().join("b.json");
            snap.save(&path).unwrap();
            let snap = Snapshot::load(&path).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let _guard = rt.enter();
            let report =
                crate::drift::offline::drift_of_file(snap, input, None, column, &cfg).unwrap();
            report
                .features
                .iter()
                .find(|f| f.feature == "prediction")
                .and_then(|f| f.psi)
                .unwrap()
        };
        let split = build_from_file(&train, None, &opts(), &mut NoProgress).unwrap();
        let psi = output_psi(split.clone(), &live, None);
        assert!(psi < 0.01, "label baseline vs live labels: PSI {psi}");
        assert_eq!(output_psi(split, &live_yhat, Some("yhat")), psi);
        let scores_as_prediction = BuildOptions {
            prediction: Some("p".into()),
            probability: Vec::new(),
            exclude: vec!["yhat".into()],
            ..opts()
        };
        let old = build_from_file(&train, None, &scores_as_prediction, &mut NoProgress).unwrap();
        let psi = output_psi(old, &live, None);
        assert!(psi > 1.0, "score baseline vs live labels: PSI {psi}");
    }

    #[test]
    fn several_columns_are_one_score_per_class_in_class_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("x,p_cat,p_dog,p_eel,label\n");
        for i in 0..90 {
            let label = ["dog", "cat", "eel"][i % 3];
            writeln!(text, "{i},0.2,0.5,0.3,{label}").unwrap();
        }
        let path = write(dir.path(), "m.csv", &text);
        let o = BuildOptions {
            probability: vec!["p_cat".into(), "p_dog".into(), "p_eel".into()],
            target: Some("label".into()),
            ..BuildOptions::new("pets")
        };
        let snap = build_from_file(&path, None, &o, &mut NoProgress).unwrap();
        let p = snap.probability.as_ref().unwrap();
        assert_eq!(p.columns, ["p_cat", "p_dog", "p_eel"]);
        assert_eq!(p.classes, ["cat", "dog", "eel"]);
        let joint = snap.joint_sample.as_ref().unwrap();
        assert_eq!(joint.columns, ["x", "p_cat", "p_dog", "p_eel"]);
        // Two classes for three columns: the classes are left out rather than guessed.
        let mut text = String::from("x,p_a,p_b,p_c,label\n");
        for i in 0..10 {
            writeln!(text, "{i},0.2,0.5,0.3,{}", ["a", "b"][i % 2]).unwrap();
        }
        let path = write(dir.path(), "two.csv", &text);
        let o = BuildOptions {
            probability: vec!["p_a".into(), "p_b".into(), "p_c".into()],
            target: Some("label".into()),
            ..BuildOptions::new("m")
        };
        let snap = build_from_file(&path, None, &o, &mut NoProgress).unwrap();
        assert!(snap.probability.as_ref().unwrap().classes.is_empty());
    }

    #[test]
    fn live_captures_keep_labels_as_prediction_and_scores_as_probability() {
        use crate::baseline::BaselineBuilder;
        use crate::record::{FeatureValue, Prediction, Row};
        let mut b = BaselineBuilder::new(BuildOptions::new("live"), 100);
        for i in 0..100 {
            let p = f64::from(i) / 100.0;
            b.push_row(&Row {
                values: vec![("x".into(), FeatureValue::Number(f64::from(i % 7)))],
            });
            b.push_prediction(&Prediction {
                value: FeatureValue::Number(f64::from(u8::from(p >= 0.65))),
                probabilities: Some(vec![1.0 - p, p]),
            });
        }
        let snap = b.finish().unwrap();
        let pred = snap.prediction.as_ref().unwrap();
        assert_eq!((pred.stats.min, pred.stats.max), (Some(0.0), Some(1.0)));
        assert_eq!(
            snap.probability,
            Some(ProbabilityInfo {
                columns: vec!["probability".into()],
                classes: vec!["0".into(), "1".into()],
            })
        );
        let joint = snap.joint_sample.as_ref().unwrap();
        assert_eq!(joint.columns, ["x", "prediction", "probability"]);
        for (i, row) in joint.rows.iter().enumerate() {
            assert_eq!(row.get(2), Some(i as f64 / 100.0), "row {i}");
        }
        // Three classes: one column per class; no probabilities: no `probability`.
        let mut b = BaselineBuilder::new(BuildOptions::new("live"), 10);
        let mut plain = BaselineBuilder::new(BuildOptions::new("live"), 10);
        for i in 0..10 {
            let row = Row {
                values: vec![("x".into(), FeatureValue::Number(f64::from(i)))],
            };
            b.push_row(&row);
            plain.push_row(&row);
            b.push_prediction(&Prediction {
                value: FeatureValue::Text(["a", "b", "c"][i as usize % 3].into()),
                probabilities: Some(vec![0.2, 0.3, 0.5]),
            });
            plain.push_prediction(&Prediction {
                value: FeatureValue::Number(1.0),
                probabilities: None,
            });
        }
        let p = b.finish().unwrap().probability.unwrap();
        assert_eq!(
            p.columns,
            ["probability_0", "probability_1", "probability_2"]
        );
        assert_eq!(p.classes, ["a", "b", "c"]);
        assert_eq!(plain.finish().unwrap().probability, None);
    }

    #[test]
    fn probability_columns_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = binary_csv(dir.path(), "t.csv", 20);
        let err = build_err(
            &path,
            &BuildOptions {
                probability: vec!["q".into()],
                ..opts()
            },
        );
        assert!(
            err.contains("no column named \"q\" (given with --probability)"),
            "{err}"
        );
        let err = build_err(
            &path,
            &BuildOptions {
                probability: vec!["yhat".into()],
                ..opts()
            },
        );
        assert_eq!(
            err,
            "--probability: column \"yhat\" is also the --prediction or --target column"
        );
        let err = build_err(
            &path,
            &BuildOptions {
                probability: vec!["p".into(), "p".into()],
                ..opts()
            },
        );
        assert_eq!(err, "--probability: column \"p\" is given twice");
    }

    #[test]
    fn malformed_probability_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = binary_csv(dir.path(), "t.csv", 50);
        let snap = build_from_file(&path, None, &opts(), &mut NoProgress).unwrap();
        let load = |s: &Snapshot| {
            Snapshot::from_json_bytes(s.to_json().unwrap().as_bytes(), "b.json")
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let mut bad = snap.clone();
        bad.probability.as_mut().unwrap().classes = vec!["1".into()];
        assert!(load(&bad)
            .unwrap_err()
            .contains("probability.classes: 1 classes for 1 column(s)"));
        let mut bad = snap.clone();
        bad.probability.as_mut().unwrap().columns = vec!["x".into()];
        assert!(load(&bad).unwrap_err().contains("probability.columns[0]"));
        let mut bad = snap.clone();
        bad.probability = None;
        assert!(load(&bad).unwrap_err().contains(
            "joint_sample.columns[3]: \"p\" is not a feature, prediction, target or probability column"
        ));
        // A snapshot without `probability` (and without the score in its joint sample), as
        // every format_version 1 snapshot written before, still loads.
        let mut v1 = snap;
        v1.probability = None;
        if let Some(j) = v1.joint_sample.as_mut() {
            j.columns.pop();
            j.rows = j
                .rows
                .iter()
                .map(|r| r.iter().take(r.len() - 1).collect())
                .collect();
        }
        load(&v1).unwrap();
    }
}
