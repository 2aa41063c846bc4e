//! Encoder round trips: rows encoded from a learnt template parse back, through the same
//! payload adapters the proxy uses, into the same rows.

use serde_json::{json, Value};

use super::encode::{Layout, Template};
use crate::payload::{self, PayloadConfig, PayloadFormat};
use crate::record::{FeatureValue, Row};

fn rows() -> Vec<Row> {
    let mk = |a: f64, n: f64, c: &str| Row {
        values: vec![
            ("age".into(), FeatureValue::Number(a)),
            ("n".into(), FeatureValue::Number(n)),
            ("city".into(), FeatureValue::Text(c.into())),
        ],
    };
    vec![
        mk(31.5, 2.0, "Oslo"),
        mk(-4.25, 7.0, "Rome"),
        mk(0.0, 0.0, "Lima"),
    ]
}

fn numeric_rows() -> Vec<Row> {
    rows()
        .into_iter()
        .map(|mut r| {
            r.values.pop();
            r
        })
        .collect()
}

/// Rows with their values sorted by name: JSON objects carry no key order (serde_json
/// writes keys sorted), so object formats are compared this way.
fn by_name(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r.values.sort_by(|a, b| a.0.cmp(&b.0));
            r
        })
        .collect()
}

/// Learns a template from `template_body` sent to `path`, encodes `rows`, parses the
/// result back with `payload::parse` and returns the parsed rows and the encoded body.
fn round_trip(path: &str, template_body: Value, rows: &[Row]) -> (Vec<Row>, Value, Template) {
    round_trip_raw(path, &template_body.to_string(), rows)
}

/// [`round_trip`] from the template's bytes as a client wrote them (key order kept).
fn round_trip_raw(path: &str, raw: &str, rows: &[Row]) -> (Vec<Row>, Value, Template) {
    let cfg = PayloadConfig::default();
    let template_body: Value = serde_json::from_str(raw).unwrap();
    let raw = raw.as_bytes();
    let format = payload::request_format(&cfg, path, raw).unwrap();
    let names: Vec<String> = rows[0].values.iter().map(|(n, _)| n.clone()).collect();
    let first = payload::parse(&cfg, path, raw, None, &names).unwrap().rows[0].clone();
    let t = Template::learn(path, format, &template_body, &first).unwrap();
    let body = t.encode(rows).unwrap();
    let bytes = serde_json::to_vec(&body).unwrap();
    let back = payload::parse(&cfg, path, &bytes, None, &names)
        .unwrap()
        .rows;
    (back, body, t)
}

#[test]
fn oip_one_input_per_feature_keeps_names_and_datatypes() {
    let tmpl = json!({"inputs": [
        {"name": "age", "shape": [1], "datatype": "FP64", "data": [40.0]},
        {"name": "n", "shape": [1, 1], "datatype": "INT64", "data": [3]},
        {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["Oslo"]},
    ], "parameters": {"content_type": "pd"}});
    let (back, body, t) = round_trip("/v2/models/m/infer", tmpl, &rows());
    assert_eq!(back, rows());
    assert!(matches!(t.layout, Layout::OipInputs { .. }));
    assert_eq!(body["inputs"][1]["datatype"], "INT64");
    assert_eq!(body["inputs"][1]["shape"], json!([3, 1]));
    assert_eq!(body["inputs"][1]["data"], json!([2, 7, 0]));
    assert_eq!(body["inputs"][2]["datatype"], "BYTES");
    assert_eq!(body["inputs"][0]["shape"], json!([3]));
    assert_eq!(body["parameters"], json!({"content_type": "pd"}));
}

#[test]
fn oip_single_tensor_stays_one_tensor() {
    let tmpl = json!({"inputs": [
        {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}
    ]});
    let (back, body, t) = round_trip("/v2/models/m/infer", tmpl, &numeric_rows());
    assert_eq!(back, numeric_rows());
    assert!(matches!(t.layout, Layout::OipTensor { .. }));
    assert_eq!(body["inputs"].as_array().unwrap().len(), 1);
    assert_eq!(body["inputs"][0]["shape"], json!([3, 2]));
    assert_eq!(body["inputs"][0]["datatype"], "FP32");
}

#[test]
fn kserve_v1_objects_and_arrays() {
    let tmpl = json!({"instances": [{"age": 1.0, "n": 2.0, "city": "Oslo"}]});
    let (back, body, _) = round_trip("/v1/models/m:predict", tmpl, &rows());
    assert_eq!(by_name(&back), by_name(&rows()));
    assert!(body["instances"][0].is_object());

    let tmpl = json!({"instances": [[1.0, 2.0]]});
    let (back, body, _) = round_trip("/v1/models/m:predict", tmpl, &numeric_rows());
    assert_eq!(back, numeric_rows());
    assert_eq!(
        body["instances"],
        json!([[31.5, 2.0], [-4.25, 7.0], [0.0, 0.0]])
    );
}

#[test]
fn mlflow_dataframe_split() {
    let tmpl = r#"{"dataframe_records": [{"age": 1.0, "n": 2.0, "city": "Oslo"}]}"#;
    let (back, body, _) = round_trip_raw("/invocations", tmpl, &rows());
    assert_eq!(back, rows());
    assert_eq!(
        body["dataframe_split"]["columns"],
        json!(["age", "n", "city"])
    );
}

#[test]
fn seldon_ndarray_with_names() {
    let tmpl = json!({"data": {"names": ["age", "n", "city"], "ndarray": [[1.0, 2.0, "Oslo"]]}});
    let (back, body, _) = round_trip("/api/v1.0/predictions", tmpl, &rows());
    assert_eq!(back, rows());
    assert_eq!(body["data"]["ndarray"][1], json!([-4.25, 7.0, "Rome"]));
}

#[test]
fn records_batch_and_single_object() {
    let tmpl = json!([{"age": 1.0, "n": 2.0, "city": "Oslo"}]);
    let (back, _, t) = round_trip("/predict", tmpl, &rows());
    assert_eq!(by_name(&back), by_name(&rows()));
    assert!(t.batches());

    let tmpl = json!({"age": 1.0, "n": 2.0, "city": "Oslo"});
    let (back, body, t) = round_trip("/predict", tmpl, &rows()[..1]);
    assert_eq!(by_name(&back), by_name(&rows()[..1]));
    assert!(body.is_object());
    assert!(!t.batches());
}

#[test]
fn pointer_format_is_refused_and_missing_features_are_errors() {
    let row = &rows()[0];
    let err = Template::learn("/x", PayloadFormat::Pointer, &json!({}), row).unwrap_err();
    assert!(err.to_string().contains("pointer"), "{err}");

    let t = Template::learn("/x", PayloadFormat::Records, &json!([]), row).unwrap();
    let short = Row {
        values: vec![("age".into(), FeatureValue::Number(1.0))],
    };
    let err = t.encode(&[short]).unwrap_err();
    assert!(err.to_string().contains("\"n\""), "{err}");
}

mod engine {
    //! The explain engine fed exchanges directly: what it learns from which exchange.

    use std::sync::Arc;
    use std::time::SystemTime;

    use serde_json::json;
    use tokio::time::Instant;

    use crate::analysis::{Analysis, Exchange, RawRequest};
    use crate::config::Config;
    use crate::explain::ExplainEngine;
    use crate::metrics::Metrics;
    use crate::record::{FeatureValue, ParsedExchange, Prediction, Row};

    const PATH: &str = "/v2/models/m/infer";

    fn row() -> Row {
        Row {
            values: vec![
                ("age".into(), FeatureValue::Number(40.0)),
                ("city".into(), FeatureValue::Text("Oslo".into())),
            ],
        }
    }

    fn feed(e: &ExplainEngine, request: Option<&[u8]>, predictions: usize) {
        feed_row(e, row(), request, predictions);
    }

    fn feed_row(e: &ExplainEngine, row: Row, request: Option<&[u8]>, predictions: usize) {
        let parsed = ParsedExchange {
            rows: vec![row],
            predictions: (0..predictions)
                .map(|_| Prediction {
                    value: FeatureValue::Number(1.0),
                    probabilities: None,
                })
                .collect(),
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
                request: request.map(|body| RawRequest {
                    path: PATH,
                    body,
                    status: Some(200),
                    duration: std::time::Duration::ZERO,
                }),
                baseline: None,
            },
        );
    }

    #[tokio::test]
    async fn the_template_is_learnt_only_from_a_raw_request_with_predictions() {
        let metrics = Metrics::new("test");
        let e = ExplainEngine::new(Arc::new(Config::default()), metrics.explain.clone(), None)
            .expect("engine");
        let body = json!({"inputs": [
            {"name": "age", "shape": [1], "datatype": "FP64", "data": [40.0]},
            {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["Oslo"]},
        ]})
        .to_string();

        // The model did not answer understandably: no template, the row is kept.
        feed(&e, Some(body.as_bytes()), 0);
        assert!(e.template("m").is_none());
        // Records posted to /api/v1/predictions carry no raw request.
        feed(&e, None, 1);
        assert!(e.template("m").is_none());
        assert_eq!(e.recent_rows("m"), 2);

        feed(&e, Some(body.as_bytes()), 1);
        let t = e.template("m").expect("a template");
        assert_eq!(t.path, PATH);
        assert_eq!(t.features, ["age", "city"]);
        assert_eq!(e.recent_rows("m"), 3);
        // No importance computed yet: nothing to report.
        assert!(Analysis::report(&e, "m").is_none());
    }

    #[tokio::test]
    async fn the_ring_keeps_the_most_recent_rows() {
        let metrics = Metrics::new("test");
        let e = ExplainEngine::new(Arc::new(Config::default()), metrics.explain.clone(), None)
            .expect("engine");
        for _ in 0..crate::explain::RING_ROWS + 5 {
            feed(&e, None, 1);
        }
        assert_eq!(e.recent_rows("m"), crate::explain::RING_ROWS);
        assert_eq!(e.recent_rows("other"), 0);
    }

    /// Busy traffic: past `RING_ROWS_PER_PERIOD` rows in a second nothing more is copied,
    /// and the next second's rows replace the oldest.
    #[tokio::test(start_paused = true)]
    async fn the_ring_copies_at_most_its_budget_per_second() {
        use crate::explain::{RING_PERIOD, RING_ROWS, RING_ROWS_PER_PERIOD};
        let metrics = Metrics::new("test");
        let e = ExplainEngine::new(Arc::new(Config::default()), metrics.explain.clone(), None)
            .expect("engine");
        let observe = |e: &ExplainEngine, value: f64| {
            let row = Row {
                values: vec![("age".into(), FeatureValue::Number(value))],
            };
            feed_row(e, row, None, 0);
        };
        for i in 0..RING_ROWS_PER_PERIOD + 100 {
            observe(&e, i as f64);
        }
        let ages = |e: &ExplainEngine| -> Vec<f64> {
            e.ring("m")
                .iter()
                .filter_map(|r| r.get("age").and_then(FeatureValue::as_f64))
                .collect()
        };
        // The first second's budget: rows 0 .. budget, none of the 100 past it.
        let first = ages(&e);
        assert_eq!(first.len(), RING_ROWS_PER_PERIOD.min(RING_ROWS));
        assert_eq!(
            first.last().copied(),
            Some((RING_ROWS_PER_PERIOD - 1) as f64)
        );
        tokio::time::advance(RING_PERIOD).await;
        observe(&e, -1.0);
        let next = ages(&e);
        assert_eq!(next.len(), RING_ROWS);
        assert_eq!(
            next.last().copied(),
            Some(-1.0),
            "a new second copies again"
        );
        assert_eq!(next.first().copied(), Some(1.0), "the oldest row made room");
    }
}
