//! Unit tests of the capture record, the sinks' bounded queues, the feedback records and
//! the configuration keys.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::time::Instant;

use super::feedback::{handle, parse_record, Apply};
use super::record::records;
use super::Sinks;
use crate::analysis::{Analysis, Exchange, RawRequest};
use crate::config::{Config, NatsSinkConfig, Overrides};
use crate::metrics::sink::{SinkLabels, SinkMetrics, SourceLabels};
use crate::record::{FeatureValue, ParsedExchange, Prediction, Row};

fn parsed() -> ParsedExchange {
    ParsedExchange {
        rows: vec![
            Row {
                values: vec![
                    ("age".into(), FeatureValue::Number(41.5)),
                    ("city".into(), FeatureValue::Text("Oslo".into())),
                    ("gap".into(), FeatureValue::Missing),
                ],
            },
            Row {
                values: vec![("age".into(), FeatureValue::Number(7.0))],
            },
        ],
        predictions: vec![
            Prediction {
                value: FeatureValue::Number(1.0),
                probabilities: Some(vec![0.25, 0.75]),
            },
            Prediction {
                value: FeatureValue::Text("no".into()),
                probabilities: None,
            },
        ],
    }
}

fn exchange<'a>(parsed: &'a ParsedExchange, request: Option<RawRequest<'a>>) -> Exchange<'a> {
    Exchange {
        model: "fraud",
        version: Some("v3"),
        request_id: "r-1",
        received_at: UNIX_EPOCH + Duration::from_micros(1_767_323_045_678_901),
        now: Instant::now(),
        parsed,
        request,
        baseline: None,
    }
}

fn decode(m: &super::record::Message) -> Value {
    serde_json::from_slice(&m.payload).unwrap()
}

#[tokio::test]
async fn one_complete_record_per_row_with_raw_values_when_allowed() {
    let p = parsed();
    let req = RawRequest {
        path: "/v2/models/fraud/infer",
        body: b"{}",
        status: Some(200),
        duration: Duration::from_micros(12_300),
    };
    let out = records(&exchange(&p, Some(req)), true);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|m| &m.key[..] == b"fraud"));
    assert_eq!(
        decode(&out[0]),
        json!({
            "model": "fraud", "version": "v3", "request_id": "r-1", "row": 0,
            "time": "2026-01-02T03:04:05.678901Z",
            "features": {"age": 41.5, "city": "Oslo", "gap": null},
            "prediction": 1.0, "probabilities": [0.25, 0.75],
            "latency_seconds": 0.0123, "status": 200, "redacted": false
        })
    );
    let second = decode(&out[1]);
    assert_eq!(second["row"], 1);
    assert_eq!(second["features"], json!({"age": 7.0}));
    assert_eq!(second["prediction"], "no");
    assert!(second.get("probabilities").is_none(), "{second}");
}

#[tokio::test]
async fn without_log_values_feature_values_are_withheld() {
    let p = parsed();
    // Posted to the ingestion API: no latency or status.
    let out = records(&exchange(&p, None), false);
    let r = decode(&out[0]);
    assert_eq!(
        r["features"],
        json!({"age": null, "city": null, "gap": null})
    );
    assert_eq!(r["redacted"], true);
    assert_eq!(r["prediction"], 1.0);
    assert_eq!(r["latency_seconds"], Value::Null);
    assert_eq!(r["status"], Value::Null);
    let text = String::from_utf8(out[0].payload.to_vec()).unwrap();
    assert!(!text.contains("Oslo") && !text.contains("41.5"), "{text}");
}

#[tokio::test]
async fn an_exchange_without_rows_still_gives_one_record() {
    let p = ParsedExchange::default();
    let out = records(&exchange(&p, None), true);
    assert_eq!(out.len(), 1);
    let r = decode(&out[0]);
    assert_eq!(r["features"], json!({}));
    assert_eq!(r["prediction"], Value::Null);
}

fn sink_count(m: &SinkMetrics, result: &'static str) -> u64 {
    m.records
        .get_or_create(&SinkLabels {
            sink: "nats",
            result,
        })
        .get()
}

#[tokio::test]
async fn a_full_sink_queue_drops_and_counts_instead_of_waiting() {
    let mut cfg = Config::default();
    cfg.sink.queue = 3;
    cfg.sink.nats = Some(NatsSinkConfig {
        url: "nats://127.0.0.1:1".into(),
        subject: "s".into(),
        ..Default::default()
    });
    let metrics = Arc::new(SinkMetrics::default());
    // Not spawned: nothing drains the queue.
    let sinks = Sinks::new(&cfg, metrics.clone()).unwrap();
    let p = parsed();
    let t = std::time::Instant::now();
    for _ in 0..10 {
        sinks.observe(&exchange(&p, None));
    }
    assert!(t.elapsed() < Duration::from_secs(1));
    // 10 exchanges of 2 rows: 3 queued, 17 dropped.
    assert_eq!(sink_count(&metrics, "dropped"), 17);
    assert_eq!(sink_count(&metrics, "sent"), 0);
}

#[test]
fn feedback_records_need_a_model_and_the_api_fields() {
    let (model, item) =
        parse_record(json!({"model": "m", "request_id": "r", "row": 2, "actual": "yes"})).unwrap();
    assert_eq!(
        (model.as_str(), item.request_id.as_str(), item.row),
        ("m", "r", 2)
    );
    assert_eq!(item.actual, FeatureValue::Text("yes".into()));
    for bad in [
        json!({"request_id": "r", "actual": 1}),
        json!({"model": "", "request_id": "r", "actual": 1}),
        json!({"model": 3, "request_id": "r", "actual": 1}),
        json!({"model": "m", "request_id": "", "actual": 1}),
        json!({"model": "m", "request_id": "r", "actual": null}),
        json!({"model": "m", "request_id": "r", "actual": 1, "extra": 1}),
        json!([1]),
    ] {
        assert!(parse_record(bad.clone()).is_err(), "{bad}");
    }
}

#[test]
fn bad_records_are_counted_and_skipped_good_ones_applied() {
    let applied: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen = applied.clone();
    let apply: Apply = Arc::new(
        move |model: &str, items: &[crate::performance::FeedbackItem]| {
            if model != "m" {
                return None;
            }
            for i in items {
                seen.lock()
                    .unwrap()
                    .push((model.to_string(), i.request_id.clone()));
            }
            Some(Vec::new())
        },
    );
    let metrics = SinkMetrics::default();
    handle(b"{oops", &apply, &metrics, "kafka");
    handle(
        json!([
            {"model": "m", "request_id": "a", "actual": 1},
            {"model": "m", "request_id": "b"},
            {"model": "x", "request_id": "c", "actual": 0},
            {"model": "m", "request_id": "d", "actual": 0}
        ])
        .to_string()
        .as_bytes(),
        &apply,
        &metrics,
        "kafka",
    );
    let count = |result| {
        metrics
            .source_records
            .get_or_create(&SourceLabels {
                source: "kafka",
                result,
            })
            .get()
    };
    assert_eq!(
        (count("applied"), count("invalid"), count("unknown_model")),
        (2, 2, 1)
    );
    let got = applied.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![("m".into(), "a".into()), ("m".into(), "d".into())]
    );
}

fn load(env: &[(&str, &str)]) -> Result<Config, String> {
    Config::load_from(
        None,
        &Overrides::default(),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn broker_keys_come_from_the_environment_and_are_checked() {
    let cfg = load(&[
        ("MLMON_SINK__KAFKA__BROKERS", "k:9092"),
        ("MLMON_SINK__KAFKA__TOPIC", "capture"),
        ("MLMON_SINK__NATS__URL", "nats://n:4222"),
        ("MLMON_SINK__NATS__SUBJECT", "mlmon.capture"),
        ("MLMON_SINK__NATS__JETSTREAM", "true"),
        ("MLMON_FEEDBACK__KAFKA__BROKERS", "k:9092"),
        ("MLMON_FEEDBACK__KAFKA__TOPIC", "fb"),
        ("MLMON_FEEDBACK__NATS__URL", "nats://n:4222"),
        ("MLMON_FEEDBACK__NATS__SUBJECT", "fb"),
    ])
    .unwrap();
    let k = cfg.sink.kafka.unwrap();
    assert_eq!(
        (k.brokers.as_str(), k.topic.as_str()),
        ("k:9092", "capture")
    );
    assert!(cfg.sink.nats.unwrap().jetstream);
    assert_eq!(cfg.feedback.kafka.unwrap().group, "mlmon");
    assert_eq!(cfg.feedback.nats.unwrap().stream, None);

    for (env, key) in [
        (
            &[("MLMON_SINK__KAFKA__TOPIC", "t")][..],
            "sink.kafka.brokers",
        ),
        (
            &[("MLMON_SINK__NATS__URL", "http://x")][..],
            "sink.nats.url",
        ),
        (&[("MLMON_SINK__QUEUE", "0")][..], "sink.queue"),
        (&[("MLMON_SINK__TIMEOUT", "0s")][..], "sink.timeout"),
        (
            &[("MLMON_FEEDBACK__KAFKA__BROKERS", "k:1")][..],
            "feedback.kafka.topic",
        ),
        (
            &[
                ("MLMON_FEEDBACK__KAFKA__BROKERS", "k:1"),
                ("MLMON_FEEDBACK__KAFKA__TOPIC", "t"),
                ("MLMON_FEEDBACK__KAFKA__OPTIONS__GROUP.ID", "x"),
            ][..],
            "feedback.kafka.options",
        ),
        (
            &[("MLMON_FEEDBACK__NATS__SUBJECT", "s")][..],
            "feedback.nats.url",
        ),
    ] {
        let e = load(env).unwrap_err();
        assert!(e.contains(key), "{env:?}: {e}");
    }
}

#[test]
fn a_librdkafka_option_it_refuses_stops_the_start_naming_the_section() {
    let mut cfg = Config::default();
    cfg.sink.kafka = Some(crate::config::KafkaSinkConfig {
        brokers: "127.0.0.1:1".into(),
        topic: "t".into(),
        options: [("no.such.property".to_string(), "1".to_string())].into(),
    });
    let e = Sinks::new(&cfg, Arc::default()).unwrap_err();
    assert!(e.starts_with("sink.kafka: "), "{e}");
    assert!(e.contains("no.such.property"), "{e}");
}

#[test]
fn now_is_not_needed_for_records() {
    // The record's time is the request's arrival, not the analysis time.
    let p = parsed();
    let mut ex = exchange(&p, None);
    ex.received_at = SystemTime::UNIX_EPOCH;
    let r = decode(&records(&ex, true)[0]);
    assert_eq!(r["time"], "1970-01-01T00:00:00.000000Z");
}

#[test]
fn librdkafka_options_keep_their_dotted_names_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mlmon.yaml");
    std::fs::write(
        &path,
        "sink:\n  kafka:\n    brokers: k:9092\n    topic: t\n    options:\n      security.protocol: SASL_SSL\n      sasl.mechanism: SCRAM-SHA-512\nfeedback:\n  kafka:\n    brokers: k:9092\n    topic: fb\n    options: {auto.offset.reset: latest}\n",
    )
    .unwrap();
    let cfg = Config::load_from(Some(&path), &Overrides::default(), std::iter::empty()).unwrap();
    let opts = cfg.sink.kafka.unwrap().options;
    assert_eq!(
        opts.get("security.protocol").map(String::as_str),
        Some("SASL_SSL"),
        "{opts:?}"
    );
    assert_eq!(
        opts.get("sasl.mechanism").map(String::as_str),
        Some("SCRAM-SHA-512")
    );
    let fb = cfg.feedback.kafka.unwrap().options;
    assert_eq!(
        fb.get("auto.offset.reset").map(String::as_str),
        Some("latest"),
        "{fb:?}"
    );
}
