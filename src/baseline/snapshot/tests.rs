//! Snapshot tests: JSON round trip, content id, refusal of malformed
//! documents naming the field, the JSON Schema agreeing with the loader.

use std::path::Path;

use serde_json::{json, Value};

use crate::baseline::test_support::*;
use crate::baseline::*;

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
            Box::new(|d| {
                d["features"]["age"]["sketch"] =
                    json!({"compression": 100, "count": 2, "cells": [[30.0, 2]]});
            }),
            "baseline.json: features.age.sketch.count: 2 values, but stats.count is".into(),
        ),
        (
            Box::new(|d| {
                d["features"]["age"]["sketch"] =
                    json!({"compression": 100, "count": 2, "cells": [[30.0, 1]]});
            }),
            "baseline.json: features.age.sketch: cell counts add up to 1, not to count 2".into(),
        ),
        (
            Box::new(|d| {
                d["features"]["country"]["sketch"] =
                    json!({"compression": 100, "count": 1, "cells": [[1.0, 1]]});
            }),
            "baseline.json: features.country.sketch: only numeric features have a sketch".into(),
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
            Box::new(|d| d["format_version"] = json!(3)),
            "baseline.json: format_version: unsupported format_version 3 (this mlmon reads 1 to 2)"
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
        Box::new(|d| d["format_version"] = json!(3)),
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
