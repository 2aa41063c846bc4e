//! Tests of the baseline module against fixtures generated with numpy/pandas
//! by `scripts/gen_baseline_fixtures.py` (tests/fixtures/baseline/).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::record::{FeatureValue, Prediction};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/baseline")
        .join(name)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The options matching the fixture table.
fn fixture_options() -> BuildOptions {
    BuildOptions {
        prediction: Some("pred".into()),
        target: Some("label".into()),
        categorical: vec!["zip".into()],
        exclude: vec!["dropme".into()],
        ..BuildOptions::new("credit-risk")
    }
}

fn build(name: &str, options: &BuildOptions) -> Snapshot {
    build_from_file(&fixture(name), None, options, &mut NoProgress).unwrap()
}

fn close(actual: f64, expected: f64, rel: f64, what: &str) {
    let tol = rel * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: got {actual}, numpy says {expected}"
    );
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Compares one built entry with the numpy/pandas expectation.
fn check_entry(name: &str, entry: &FeatureBaseline, exp: &Value) {
    let s = &entry.stats;
    assert_eq!(
        entry.kind.as_str(),
        exp["type"].as_str().unwrap(),
        "{name}: type"
    );
    assert_eq!(s.count, exp["count"].as_u64().unwrap(), "{name}: count");
    close(
        s.missing_ratio,
        f(&exp["missing_ratio"]),
        1e-12,
        &format!("{name}: missing_ratio"),
    );
    match entry.kind {
        FeatureType::Numeric => {
            let bins = entry.bins.as_ref().unwrap();
            if s.count == 0 {
                assert!(exp.get("mean").is_none());
                assert!(s.mean.is_none() && s.std.is_none() && entry.sample.is_empty());
                return;
            }
            close(
                s.mean.unwrap(),
                f(&exp["mean"]),
                1e-9,
                &format!("{name}: mean"),
            );
            close(
                s.std.unwrap(),
                f(&exp["std"]),
                1e-9,
                &format!("{name}: std"),
            );
            assert_eq!(s.min.unwrap(), f(&exp["min"]), "{name}: min");
            assert_eq!(s.max.unwrap(), f(&exp["max"]), "{name}: max");
            let q = s.quantiles.unwrap();
            for (k, v) in Quantiles::NAMES.iter().zip(q.values()) {
                close(v, f(&exp["quantiles"][k]), 1e-12, &format!("{name}: {k}"));
            }
            let edges: Vec<f64> = exp["edges"].as_array().unwrap().iter().map(f).collect();
            assert_eq!(bins.edges.len(), edges.len(), "{name}: number of edges");
            for (i, (a, e)) in bins.edges.iter().zip(&edges).enumerate() {
                close(*a, *e, 1e-12, &format!("{name}: edges[{i}]"));
            }
            let props: Vec<f64> = exp["proportions"]
                .as_array()
                .unwrap()
                .iter()
                .map(f)
                .collect();
            assert_eq!(
                bins.proportions.len(),
                props.len(),
                "{name}: number of bins"
            );
            for (i, (a, e)) in bins.proportions.iter().zip(&props).enumerate() {
                close(*a, *e, 1e-12, &format!("{name}: proportions[{i}]"));
            }
            assert_eq!(
                entry.sample.len() as u64,
                s.count,
                "{name}: sample holds every value"
            );
        }
        FeatureType::Categorical => {
            let cats = entry.categories.as_ref().unwrap();
            let exp_cats = exp["categories"].as_object().unwrap();
            assert_eq!(cats.len(), exp_cats.len(), "{name}: categories {cats:?}");
            for (k, p) in exp_cats {
                let got = cats
                    .get(k)
                    .unwrap_or_else(|| panic!("{name}: category {k:?} missing"));
                close(*got, f(p), 1e-12, &format!("{name}: categories.{k}"));
            }
            assert_eq!(s.distinct, exp["distinct"].as_u64(), "{name}: distinct");
        }
    }
}

/// Checks a whole build of the fixture table against expected.json.
fn check_against_expected(snap: &Snapshot) {
    let exp = expected();
    assert_eq!(snap.row_count, exp["rows"].as_u64().unwrap());
    assert_eq!(snap.model.name, "credit-risk");
    let names: Vec<&str> = snap.features.names().collect();
    assert_eq!(
        names,
        [
            "age",
            "income",
            "score",
            "constant",
            "flag",
            "country",
            "zip",
            "mixed",
            "early_text",
            "day",
            "all_missing"
        ],
        "feature order follows the input, without prediction, target and excluded columns"
    );
    for (name, entry) in snap.features.iter() {
        check_entry(name, entry, &exp["columns"][name]);
    }
    check_entry(
        "pred",
        snap.prediction.as_ref().unwrap(),
        &exp["columns"]["pred"],
    );
    check_entry(
        "label",
        snap.target.as_ref().unwrap(),
        &exp["columns"]["label"],
    );
}

#[test]
fn csv_build_matches_numpy_and_pandas() {
    let snap = build("data.csv", &fixture_options());
    check_against_expected(&snap);
    assert_eq!(
        snap.source.as_deref(),
        Some(fixture("data.csv").display().to_string() + " (csv)").as_deref()
    );
    // The column that turned to text after 1500 numeric rows says so.
    let mixed = snap.features.get("mixed").unwrap();
    assert!(
        mixed.notes[0].contains("row 15") && mixed.notes[0].contains("not a number"),
        "{:?}",
        mixed.notes
    );
    // A column whose first value is text is categorical without a note.
    assert!(snap.features.get("early_text").unwrap().notes.is_empty());
}

#[test]
fn jsonl_build_matches_numpy_and_pandas() {
    check_against_expected(&build("data.jsonl", &fixture_options()));
}

#[test]
fn parquet_builds_match_numpy_and_pandas_for_every_codec() {
    for name in [
        "data.parquet",
        "data_zstd.parquet",
        "data_gzip.parquet",
        "data_lz4.parquet",
    ] {
        let snap = build(name, &fixture_options());
        check_against_expected(&snap);
        assert!(
            snap.notes
                .iter()
                .any(|n| n.contains("nested") && n.contains("tags")),
            "{name}: the list column is reported: {:?}",
            snap.notes
        );
    }
}

#[test]
fn every_format_gives_the_same_baseline() {
    let csv = build("data.csv", &fixture_options());
    for name in ["data.jsonl", "data.parquet"] {
        let other = build(name, &fixture_options());
        assert_eq!(other.features, csv.features, "{name}");
        assert_eq!(other.prediction, csv.prediction, "{name}");
        assert_eq!(other.target, csv.target, "{name}");
    }
}

#[test]
fn gzip_compressed_csv_is_read() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&std::fs::read(fixture("data.csv")).unwrap())
        .unwrap();
    gz.finish().unwrap();
    let snap = build_from_file(&path, None, &fixture_options(), &mut NoProgress).unwrap();
    check_against_expected(&snap);
}

#[test]
fn reference_sample_holds_every_value_when_fewer_than_sample_size() {
    let snap = build("data.csv", &fixture_options());
    let exp = expected();
    let values: Vec<f64> = exp["columns"]["income"]["sorted_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(f)
        .collect();
    assert_eq!(snap.features.get("income").unwrap().sample, values);
}

#[test]
fn reference_sample_is_a_reproducible_seeded_subset() {
    let opts = BuildOptions {
        sample_size: 100,
        ..fixture_options()
    };
    let a = build("data.csv", &opts);
    let b = build("data.csv", &opts);
    let sa = &a.features.get("income").unwrap().sample;
    assert_eq!(sa.len(), 100);
    assert_eq!(
        sa,
        &b.features.get("income").unwrap().sample,
        "same seed, same sample"
    );
    assert_eq!(a.id, b.id, "same input and options give the same id");
    assert!(sa.windows(2).all(|w| w[0] <= w[1]), "sample is sorted");
    let exp = expected();
    let all: Vec<f64> = exp["columns"]["income"]["sorted_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(f)
        .collect();
    assert!(
        sa.iter().all(|v| all.contains(v)),
        "sample values come from the data"
    );
    let c = build("data.csv", &BuildOptions { seed: 1, ..opts });
    assert_ne!(
        sa,
        &c.features.get("income").unwrap().sample,
        "another seed, another sample"
    );
    assert_ne!(a.id, c.id);
}

/// Reads a numeric CSV column of the fixture with the csv crate (independent
/// of the builder's reader).
fn csv_column(name: &str) -> Vec<f64> {
    let mut r = csv::Reader::from_path(fixture("data.csv")).unwrap();
    let idx = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records()
        .filter_map(|rec| rec.unwrap()[idx].parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect()
}

#[test]
fn inputs_larger_than_the_quantile_sample_take_a_second_exact_pass() {
    let opts = BuildOptions {
        quantile_sample_size: 300,
        sample_size: 100,
        ..fixture_options()
    };
    let snap = build("data.csv", &opts);
    let exp = expected();
    for name in ["age", "income", "score"] {
        let entry = snap.features.get(name).unwrap();
        let e = &exp["columns"][name];
        let s = &entry.stats;
        // Streaming statistics stay exact.
        assert_eq!(s.count, e["count"].as_u64().unwrap());
        close(s.mean.unwrap(), f(&e["mean"]), 1e-9, "mean");
        close(s.std.unwrap(), f(&e["std"]), 1e-9, "std");
        assert_eq!(s.min.unwrap(), f(&e["min"]));
        assert_eq!(s.max.unwrap(), f(&e["max"]));
        assert_eq!(entry.sample.len(), 100);
        assert!(entry
            .notes
            .iter()
            .any(|n| n.contains("estimated from a uniform sample of 300")));
        // Bin proportions are exact for the (estimated) edges: count them here.
        let values = csv_column(name);
        let bins = entry.bins.as_ref().unwrap();
        for (i, p) in bins.proportions.iter().enumerate() {
            let in_bin = values
                .iter()
                .filter(|v| {
                    (i == 0 || **v > bins.edges[i - 1])
                        && (i == bins.edges.len() || **v <= bins.edges[i])
                })
                .count();
            close(
                *p,
                in_bin as f64 / values.len() as f64,
                1e-12,
                &format!("{name} bin {i}"),
            );
        }
        // Estimated quantiles sit near the right rank (300-value sample: the
        // rank error has sd ≤ 0.03, allow 0.12).
        let q = s.quantiles.unwrap();
        for (level, v) in Quantiles::LEVELS.iter().zip(q.values()) {
            let rank = values.iter().filter(|x| **x <= v).count() as f64 / values.len() as f64;
            assert!(
                (rank - level).abs() <= 0.12,
                "{name}: quantile {level} at rank {rank}"
            );
        }
    }
}

#[test]
fn categories_beyond_the_cap_are_pooled_into_other() {
    let snap = build(
        "data.csv",
        &BuildOptions {
            max_categories: 3,
            ..fixture_options()
        },
    );
    let exp = expected();
    let capped = exp["columns"]["country"]["categories_cap3"]
        .as_object()
        .unwrap();
    let cats = snap
        .features
        .get("country")
        .unwrap()
        .categories
        .as_ref()
        .unwrap();
    assert_eq!(cats.len(), 4);
    assert_eq!(
        cats.0.last().unwrap().0,
        OTHER_CATEGORY,
        "__other__ comes last"
    );
    for (k, p) in capped {
        close(*cats.get(k).unwrap(), f(p), 1e-12, k);
    }
    let notes = &snap.features.get("country").unwrap().notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("7 distinct values") && n.contains("4 least frequent")),
        "{notes:?}"
    );
}

#[test]
fn numbers_in_categorical_columns_use_one_key_form() {
    // "01067" in the file and the number 1067 in live traffic must meet.
    let snap = build("data.csv", &fixture_options());
    let zip = snap
        .features
        .get("zip")
        .unwrap()
        .categories
        .as_ref()
        .unwrap();
    assert!(zip.get("1067").is_some() && zip.get("01067").is_none());
    assert_eq!(
        category_key(&FeatureValue::Number(1067.0)).as_deref(),
        Some("1067")
    );
    assert_eq!(
        category_key(&FeatureValue::Text("01067".into())).as_deref(),
        Some("1067")
    );
    assert_eq!(
        category_key(&FeatureValue::Text("1.50".into())).as_deref(),
        Some("1.5")
    );
    assert_eq!(
        category_key(&FeatureValue::Text("DE".into())).as_deref(),
        Some("DE")
    );
    assert_eq!(category_key(&FeatureValue::Text("NaN".into())), None);
    assert_eq!(category_key(&FeatureValue::Missing), None);
}

#[test]
fn live_rows_build_the_same_baseline_as_the_file() {
    let file = build("data.csv", &fixture_options());
    let mut live = BaselineBuilder::new(
        BuildOptions {
            categorical: vec!["zip".into()],
            ..BuildOptions::new("credit-risk")
        },
        10_000,
    );
    let mut source = open_source(&fixture("data.jsonl"), None, &[]).unwrap();
    while let Some(row) = source.next_record_row().unwrap() {
        let pred = row.get("pred").cloned().unwrap_or(FeatureValue::Missing);
        let mut features = row.clone();
        features
            .values
            .retain(|(n, _)| !["pred", "label", "dropme"].contains(&n.as_str()));
        assert!(live.push_row(&features));
        assert!(live.push_prediction(&Prediction {
            value: pred,
            probabilities: None
        }));
    }
    let snap = live.finish().unwrap();
    assert_eq!(snap.row_count, 2000);
    assert_eq!(snap.source.as_deref(), Some("first 2000 live rows"));
    // JSONL key order is the table's order, so even the feature order matches.
    assert_eq!(snap.features, file.features);
    assert_eq!(snap.prediction, file.prediction);
    assert!(snap.target.is_none());
}

#[test]
fn live_builder_holds_at_most_max_rows() {
    let mut live = BaselineBuilder::new(BuildOptions::new("m"), 3);
    let row = |v: f64| crate::record::Row {
        values: vec![("x".into(), FeatureValue::Number(v))],
    };
    for i in 0..3 {
        assert!(live.push_row(&row(i as f64)));
    }
    assert!(live.is_full());
    assert!(!live.push_row(&row(99.0)), "the 4th row is refused");
    assert_eq!(live.row_count(), 3);
    let snap = live.finish().unwrap();
    let x = snap.features.get("x").unwrap();
    assert_eq!(x.stats.max, Some(2.0));
    assert!(snap.prediction.is_none());
}

#[test]
fn live_builder_with_no_rows_is_an_error() {
    let err = BaselineBuilder::new(BuildOptions::new("m"), 3)
        .finish()
        .unwrap_err();
    assert!(matches!(err, BuildError::NoRows { .. }), "{err}");
}

// ---------------------------------------------------------------- snapshot file

fn built_json() -> Value {
    let snap = build("data.csv", &fixture_options());
    serde_json::from_str(&snap.to_json().unwrap()).unwrap()
}

fn load_err(doc: &Value) -> String {
    let bytes = serde_json::to_vec(doc).unwrap();
    Snapshot::from_json_bytes(&bytes, "baseline.json")
        .unwrap_err()
        .to_string()
}

#[test]
fn snapshot_round_trips_through_json() {
    let snap = build("data.csv", &fixture_options());
    let text = snap.to_json().unwrap();
    let back = Snapshot::from_json_bytes(text.as_bytes(), "x").unwrap();
    assert_eq!(back, snap);
    assert_eq!(back.content_id().unwrap(), snap.id);
    // Arrays stay on one line; objects are indented.
    assert!(text.contains("\"edges\": ["));
    assert!(text.lines().count() < 400, "{} lines", text.lines().count());
    // Saved through a temporary file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.json");
    snap.save(&path).unwrap();
    assert_eq!(Snapshot::load(&path).unwrap(), snap);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn a_snapshot_without_id_gets_its_content_hash() {
    // Edit the text: a serde_json::Value would reorder the features.
    let built = build("data.csv", &fixture_options());
    let id = built.id.clone();
    let text = built
        .to_json()
        .unwrap()
        .replacen(&format!("\"id\": \"{id}\","), "", 1)
        .replacen(
            built.created_at.as_deref().unwrap(),
            "2030-01-01T00:00:00Z",
            1,
        );
    assert!(!text.contains(&id));
    let snap = Snapshot::from_json_bytes(text.as_bytes(), "b").unwrap();
    assert_eq!(snap.id, id, "id ignores created_at");
    assert_eq!(snap.id.len(), 16);
}

/// An edit of a snapshot document.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn malformed_snapshots_are_refused_naming_the_field() {
    let base = built_json();
    let n_age_edges = base["features"]["age"]["bins"]["edges"]
        .as_array()
        .unwrap()
        .len();
    let cases: Vec<(Mutation, String)> = vec![
        (
            Box::new(|d| {
                d["features"]["age"]["bins"]["proportions"].as_array_mut().unwrap().pop();
            }),
            format!(
                "baseline.json: features.age.bins.proportions: expected {} values ({} edges + 1), found {}",
                n_age_edges + 1,
                n_age_edges,
                n_age_edges
            ),
        ),
        (
            Box::new(|d| {
                let e = d["features"]["age"]["bins"]["edges"].as_array_mut().unwrap();
                e.swap(2, 3);
            }),
            "baseline.json: features.age.bins.edges[3]:".into(),
        ),
        (
            Box::new(|d| d["features"]["income"]["bins"]["proportions"][0] = json!(-0.1)),
            "baseline.json: features.income.bins.proportions[0]: -0.1 must be a non-negative number"
                .into(),
        ),
        (
            Box::new(|d| d["features"]["income"]["bins"]["proportions"][0] = json!(0.5)),
            "baseline.json: features.income.bins.proportions: proportions add up to".into(),
        ),
        (
            Box::new(|d| d["features"]["country"]["categories"]["US"] = json!(0.1)),
            "baseline.json: features.country.categories: proportions add up to".into(),
        ),
        (
            Box::new(|d| d["features"]["age"]["bins"]["edgez"] = json!([])),
            "baseline.json: features.age.bins.edgez: unknown field `edgez`".into(),
        ),
        (
            Box::new(|d| d["row_count"] = json!("many")),
            "baseline.json: row_count: invalid type: string \"many\"".into(),
        ),
        (
            Box::new(|d| d["features"]["age"]["sample"][4] = json!("x")),
            "baseline.json: features.age.sample[4]: invalid type: string \"x\"".into(),
        ),
        (
            Box::new(|d| d["format_version"] = json!(2)),
            "baseline.json: format_version: unsupported format_version 2 (this mlmon reads 1)"
                .into(),
        ),
        (
            Box::new(|d| {
                d["features"]["age"].as_object_mut().unwrap().remove("bins");
            }),
            "baseline.json: features.age: numeric features need \"bins\"".into(),
        ),
        (
            Box::new(|d| d["features"]["age"]["type"] = json!("ordinal")),
            "baseline.json: features.age.type: unknown variant `ordinal`".into(),
        ),
        (
            Box::new(|d| d["features"]["country"]["sample"] = json!([1.0])),
            "baseline.json: features.country.sample: only numeric features have a reference sample"
                .into(),
        ),
        (
            Box::new(|d| {
                d["features"]["age"]["thresholds"] = json!({"psi": {"warning": 0.3, "critical": 0.2}})
            }),
            "baseline.json: features.age.thresholds.psi: warning 0.3 is above critical 0.2".into(),
        ),
        (
            Box::new(|d| {
                d["prediction"]["thresholds"] = json!({"ks_pvalue": {"warning": 0.01, "critical": 0.05}})
            }),
            "baseline.json: prediction.thresholds.ks_pvalue: warning 0.01 is below critical 0.05".into(),
        ),
        (
            Box::new(|d| d["features"]["age"]["importance"] = json!(-1)),
            "baseline.json: features.age.importance: -1 must be a non-negative number".into(),
        ),
        (
            Box::new(|d| d["features"]["age"]["stats"]["missing_ratio"] = json!(1.5)),
            "baseline.json: features.age.stats.missing_ratio: 1.5 is outside [0, 1]".into(),
        ),
        (
            Box::new(|d| d["features"]["age"]["stats"]["quantiles"]["p50"] = json!(-100)),
            "baseline.json: features.age.stats.quantiles.p50: -100 is below p25".into(),
        ),
        (
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("model");
            }),
            "baseline.json: missing field `model`".into(),
        ),
        (
            Box::new(|d| d["features"]["prediction"] = d["features"]["age"].clone()),
            "baseline.json: features.prediction: a feature cannot be named \"prediction\" when the snapshot has a prediction entry".into(),
        ),
        (
            Box::new(|d| d["model"]["name"] = json!(" ")),
            "baseline.json: model.name: must not be empty".into(),
        ),
    ];
    for (mutate, want) in cases {
        let mut doc = base.clone();
        mutate(&mut doc);
        let got = load_err(&doc);
        assert!(got.starts_with(&want), "\n got: {got}\nwant: {want}…");
    }
}

#[test]
fn malformed_json_text_is_refused_with_position() {
    let err = Snapshot::from_json_bytes(b"{\"format_version\": 1,\n  oops}", "b.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("b.json: ") && err.contains("line 2"),
        "{err}"
    );
    let text = built_json().to_string();
    let err = Snapshot::from_json_bytes(format!("{text} trailing").as_bytes(), "b.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("trailing characters"), "{err}");
    // A feature named twice.
    let doc = text.replacen("\"income\":", "\"age\":", 1);
    let err = Snapshot::from_json_bytes(doc.as_bytes(), "b.json").unwrap_err();
    assert!(err.to_string().contains("duplicate key \"age\""), "{err}");
    assert_eq!(err.field_path(), Some("features"));
}

#[test]
fn missing_file_error_names_the_file() {
    let err = Snapshot::load(Path::new("/nonexistent/base.json"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("/nonexistent/base.json: "), "{err}");
}

#[test]
fn a_snapshot_written_by_the_documented_python_example_loads() {
    let snap = Snapshot::load(&fixture("python_snapshot.json")).unwrap();
    assert_eq!(snap.model.name, "credit-risk");
    assert_eq!(
        snap.features.names().collect::<Vec<_>>(),
        ["age", "income", "score", "country"]
    );
    assert_eq!(snap.features.get("age").unwrap().sample.len(), 300);
    assert_eq!(snap.prediction.as_ref().unwrap().kind, FeatureType::Numeric);
    // Its stats agree with the builder's on the same data.
    let built = build("data.csv", &fixture_options());
    for name in ["age", "income", "score"] {
        let (a, b) = (
            &snap.features.get(name).unwrap(),
            &built.features.get(name).unwrap(),
        );
        assert_eq!(
            a.bins.as_ref().unwrap().edges,
            b.bins.as_ref().unwrap().edges,
            "{name}"
        );
        close(a.stats.mean.unwrap(), b.stats.mean.unwrap(), 1e-9, name);
    }
}

// ---------------------------------------------------------------- JSON Schema

fn schema_validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/baseline.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

#[test]
fn built_and_python_snapshots_match_the_json_schema() {
    let validator = schema_validator();
    let mut docs = vec![
        ("csv", built_json()),
        (
            "parquet capped",
            serde_json::from_str(
                &build(
                    "data.parquet",
                    &BuildOptions {
                        max_categories: 2,
                        quantile_sample_size: 500,
                        ..fixture_options()
                    },
                )
                .to_json()
                .unwrap(),
            )
            .unwrap(),
        ),
        (
            "python",
            serde_json::from_str(
                &std::fs::read_to_string(fixture("python_snapshot.json")).unwrap(),
            )
            .unwrap(),
        ),
    ];
    let mut with_thresholds = built_json();
    with_thresholds["features"]["age"]["thresholds"] = json!({"psi": {"warning": 0.1, "critical": 0.25}, "ks_pvalue": {"warning": 0.05, "critical": 0.01}});
    with_thresholds["features"]["age"]["importance"] = json!(0.4);
    docs.push(("thresholds", with_thresholds));
    for (name, doc) in &docs {
        let errors: Vec<String> = validator
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn the_json_schema_refuses_what_the_loader_refuses() {
    let validator = schema_validator();
    let base = built_json();
    let mutations: Vec<Mutation> = vec![
        Box::new(|d| d["features"]["age"]["bins"]["edgez"] = json!([])),
        Box::new(|d| d["row_count"] = json!("many")),
        Box::new(|d| d["format_version"] = json!(2)),
        Box::new(|d| d["features"]["age"]["type"] = json!("ordinal")),
        Box::new(|d| {
            d["features"]["age"].as_object_mut().unwrap().remove("bins");
        }),
        Box::new(|d| d["features"]["country"]["bins"] = json!({"edges": [], "proportions": [1.0]})),
        Box::new(|d| d["features"]["income"]["bins"]["proportions"][0] = json!(-0.1)),
        Box::new(|d| d["features"]["age"]["stats"]["missing_ratio"] = json!(1.5)),
        Box::new(|d| {
            d.as_object_mut().unwrap().remove("model");
        }),
    ];
    for (i, m) in mutations.iter().enumerate() {
        let mut doc = base.clone();
        m(&mut doc);
        assert!(!validator.is_valid(&doc), "mutation {i} passes the schema");
        assert!(Snapshot::from_json_bytes(&serde_json::to_vec(&doc).unwrap(), "b").is_err());
    }
}

// ---------------------------------------------------------------- build errors

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn build_err(path: &Path, options: &BuildOptions) -> String {
    build_from_file(path, None, options, &mut NoProgress)
        .unwrap_err()
        .to_string()
}

#[test]
fn build_errors_name_the_file_and_the_line_or_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let opts = BuildOptions::new("m");

    let p = write(d, "ragged.csv", "a,b\n1,2\n3\n");
    let err = build_err(&p, &opts);
    assert_eq!(
        err,
        format!(
            "{}: line 3: expected 2 fields (as in the header), found 1",
            p.display()
        )
    );

    let p = write(d, "bad.jsonl", "{\"a\": 1}\n{\"a\": 2\n");
    let err = build_err(&p, &opts);
    assert!(
        err.starts_with(&format!("{}: line 2: invalid JSON", p.display())),
        "{err}"
    );

    let p = write(d, "nested.jsonl", "{\"a\": 1}\n{\"a\": [1, 2]}\n");
    let err = build_err(&p, &opts);
    assert!(
        err.starts_with(&format!(
            "{}: line 2: key \"a\" holds an array",
            p.display()
        )),
        "{err}"
    );

    let p = write(
        d,
        "twice.jsonl",
        "{\"a\": 1}\n\n{\"a\": 2, \"b\": 1, \"a\": 3}\n",
    );
    assert_eq!(
        build_err(&p, &opts),
        format!("{}: line 3: key \"a\" appears twice", p.display())
    );

    let p = write(d, "array.jsonl", "[1, 2]\n");
    assert!(build_err(&p, &opts).contains("line 1: expected a JSON object, found an array"));

    let p = write(d, "empty.csv", "");
    assert!(
        build_err(&p, &opts).contains("empty"),
        "{}",
        build_err(&p, &opts)
    );

    let p = write(d, "header_only.csv", "a,b\n");
    assert_eq!(
        build_err(&p, &opts),
        format!("{}: no data rows", p.display())
    );

    let p = write(d, "dup.csv", "a,a\n1,2\n");
    assert!(build_err(&p, &opts).contains("column \"a\" appears more than once"));

    let p = write(d, "data.txt", "a\n1\n");
    assert!(build_err(&p, &opts).contains("pass --format"));

    let p = write(d, "ok.csv", "a,b\n1,x\n");
    let err = build_err(
        &p,
        &BuildOptions {
            categorical: vec!["colour".into()],
            ..opts.clone()
        },
    );
    assert_eq!(
        err,
        format!(
            "{}: no column named \"colour\" (given with --categorical); the columns are: a, b",
            p.display()
        )
    );
    let err = build_err(
        &p,
        &BuildOptions {
            prediction: Some("y".into()),
            ..opts.clone()
        },
    );
    assert!(
        err.contains("no column named \"y\" (given with --prediction)"),
        "{err}"
    );
    let p2 = write(d, "clash.csv", "prediction,score\n1,0.5\n");
    let err = build_err(
        &p2,
        &BuildOptions {
            prediction: Some("score".into()),
            ..opts.clone()
        },
    );
    assert_eq!(
        err,
        format!("{}: a feature column is named \"prediction\" while --prediction is \"score\"; rename it or add --exclude prediction", p2.display())
    );
    let err = build_err(
        &p,
        &BuildOptions {
            bins: 1,
            ..opts.clone()
        },
    );
    assert_eq!(err, "--bins: 1 is outside 2..=10000");

    let p = write(d, "notutf8.csv", "a\n");
    std::fs::write(&p, b"a,b\n1,\xff\n").unwrap();
    assert!(
        build_err(&p, &opts).contains("line 2: field 2 is not valid UTF-8"),
        "{}",
        build_err(&p, &opts)
    );

    let p = d.join("missing.csv");
    assert!(build_err(&p, &opts).starts_with(&format!("{}: ", p.display())));

    let p = write(d, "broken.parquet", "not parquet at all");
    assert!(build_err(&p, &opts).starts_with(&format!("{}: ", p.display())));
}

#[test]
fn excluded_columns_in_parquet_are_not_decoded_and_still_known() {
    let snap = build(
        "data.parquet",
        &BuildOptions {
            exclude: vec!["dropme".into(), "day".into()],
            ..fixture_options()
        },
    );
    assert!(snap.features.get("day").is_none() && snap.features.get("dropme").is_none());
}

#[test]
fn missing_value_spellings_and_infinities_count_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "na.csv",
        "x,c\n1,a\nNA,b\n,N/A\nnan,<NA>\ninf,null\n2,None\n-Infinity,#N/A\n3,a\n",
    );
    let snap = build_from_file(&p, None, &BuildOptions::new("m"), &mut NoProgress).unwrap();
    let x = snap.features.get("x").unwrap();
    assert_eq!(x.kind, FeatureType::Numeric);
    assert_eq!(x.stats.count, 3);
    assert_eq!(x.stats.missing_ratio, 5.0 / 8.0);
    assert_eq!(x.stats.mean, Some(2.0));
    let c = snap.features.get("c").unwrap();
    assert_eq!(c.kind, FeatureType::Categorical);
    assert_eq!(c.stats.count, 3);
    assert_eq!(c.categories.as_ref().unwrap().get("a"), Some(&(2.0 / 3.0)));
}

#[test]
fn tab_separated_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "t.tsv", "x\ty\n1\ta,b\n2\tc\n");
    let snap = build_from_file(&p, None, &BuildOptions::new("m"), &mut NoProgress).unwrap();
    assert_eq!(snap.features.get("x").unwrap().stats.mean, Some(1.5));
    assert!(snap
        .features
        .get("y")
        .unwrap()
        .categories
        .as_ref()
        .unwrap()
        .get("a,b")
        .is_some());
}

#[test]
fn a_constant_feature_has_one_edge() {
    let snap = build("data.csv", &fixture_options());
    let bins = snap.features.get("constant").unwrap().bins.clone().unwrap();
    assert_eq!(bins.edges, vec![7.0]);
    assert_eq!(bins.proportions, vec![1.0, 0.0]);
}

#[derive(Default)]
struct Recorder {
    events: Vec<String>,
}

impl Progress for Recorder {
    fn start(&mut self, label: &str, total: Option<u64>, bytes: bool) {
        self.events.push(format!("start {label} {total:?} {bytes}"));
    }
    fn update(&mut self, done: u64) {
        self.events.push(format!("update {done}"));
    }
    fn finish(&mut self) {
        self.events.push("finish".into());
    }
}

#[test]
fn progress_is_reported_per_pass() {
    let size = std::fs::metadata(fixture("data.csv")).unwrap().len();
    // One pass when every column fits the quantile sample and no column
    // turns categorical late ("mixed" does).
    let mut rec = Recorder::default();
    let opts = BuildOptions {
        exclude: vec!["dropme".into(), "mixed".into()],
        ..fixture_options()
    };
    build_from_file(&fixture("data.csv"), None, &opts, &mut rec).unwrap();
    assert_eq!(
        rec.events,
        vec![format!("start reading Some({size}) true"), "finish".into()]
    );

    // A second pass shows as a second bar; Parquet counts rows.
    let mut rec = Recorder::default();
    let opts = BuildOptions {
        quantile_sample_size: 100,
        sample_size: 10,
        ..fixture_options()
    };
    build_from_file(&fixture("data.parquet"), None, &opts, &mut rec).unwrap();
    assert_eq!(
        rec.events,
        vec![
            "start reading Some(2000) false".to_string(),
            "finish".into(),
            "start counting bins Some(2000) false".into(),
            "finish".into()
        ]
    );
}

#[test]
fn show_summarises_model_rows_and_features() {
    let snap = build("data.csv", &fixture_options());
    let text = show::render(&snap, "baseline.json");
    let exp = expected();
    assert!(
        text.starts_with("Baseline snapshot baseline.json\n"),
        "{text}"
    );
    assert!(text.contains("  model       credit-risk\n"), "{text}");
    assert!(
        text.contains(&format!("  id          {}\n", snap.id)),
        "{text}"
    );
    assert!(text.contains("  rows        2,000\n"), "{text}");
    assert!(text.contains("Features (11)"), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
            .to_string()
    };
    let age = line("age");
    let missing = format!("{:.1}%", f(&exp["columns"]["age"]["missing_ratio"]) * 100.0);
    assert!(age.contains("numeric") && age.contains(&missing), "{age}");
    assert!(
        age.contains(&format!("{:.2}", f(&exp["columns"]["age"]["mean"]))),
        "{age}"
    );
    assert!(
        age.contains(" 10 ") && age.trim_end().ends_with("1934"),
        "{age}"
    );
    let country = line("country");
    assert!(
        country.contains("categorical") && country.contains("US 39%, DE 21%, FR 15%, +4 more"),
        "{country}"
    );
    assert!(text.contains("Prediction and target"), "{text}");
    assert!(line("prediction").contains("numeric"));
    assert!(
        text.contains("Notes\n") && text.contains("  - mixed: treated as categorical"),
        "{text}"
    );
}

#[test]
fn parquet_dates_and_timestamps_are_formatted_without_chrono() {
    use super::reader::{
        format_date as date, format_time_of_day as time_of_day, format_timestamp as timestamp,
    };
    assert_eq!(date(0), "1970-01-01");
    assert_eq!(date(19_723), "2024-01-01");
    assert_eq!(date(-1), "1969-12-31");
    assert_eq!(date(11_016), "2000-02-29");
    assert_eq!(timestamp(0, 1_000), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        timestamp(1_704_067_200_123, 1_000),
        "2024-01-01T00:00:00.123Z"
    );
    assert_eq!(timestamp(-1, 1_000_000), "1969-12-31T23:59:59.999999Z");
    assert_eq!(time_of_day(3_723_004, 1_000), "01:02:03.004");
    // Extreme values do not panic.
    let _ = date(i64::from(i32::MAX));
    let _ = timestamp(i64::MIN, 1_000);
}

/// The 1-million-row, 20-column build: run by hand with
/// `MLMON_BIG_CSV=/tmp/big.csv cargo test --release -- --ignored big_csv`
/// after `python scripts/gen_baseline_fixtures.py --big /tmp/big.csv`.
#[test]
#[ignore = "benchmark: needs MLMON_BIG_CSV (see the doc comment)"]
fn big_csv_builds_in_bounded_memory() {
    let path = std::env::var("MLMON_BIG_CSV").expect("set MLMON_BIG_CSV to the generated CSV");
    let t = std::time::Instant::now();
    let snap = build_from_file(
        Path::new(&path),
        None,
        &BuildOptions::new("big"),
        &mut NoProgress,
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "built {} rows x {} columns in {secs:.2} s; snapshot {} bytes",
        snap.row_count,
        snap.features.len(),
        snap.to_json().unwrap().len()
    );
    assert_eq!(snap.row_count, 1_000_000);
    assert_eq!(snap.features.len(), 20);
}
