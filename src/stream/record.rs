//! The capture record: one JSON object per analysed row (docs/streaming.md).
//!
//! ```json
//! {"model": "m", "version": "v1", "request_id": "r1", "row": 0,
//!  "time": "2026-01-02T03:04:05.678901Z",
//!  "features": {"age": 41, "city": "Oslo"}, "prediction": 1,
//!  "probabilities": [0.2, 0.8], "latency_seconds": 0.0123, "status": 200,
//!  "redacted": false}
//! ```
//!
//! Without `privacy.log_values` every feature value is `null` (`"redacted": true`): the
//! record keeps its shape (feature names, prediction, timing) so consumers can join ground
//! truth and count, but carries no raw input.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::analysis::Exchange;
use crate::record::FeatureValue;

/// One record ready for a sink: its key (the model: Kafka keeps one model's records in one
/// partition, in order) and its JSON body.
#[derive(Debug, Clone)]
pub struct Message {
    /// The model name.
    pub key: Bytes,
    /// The JSON record.
    pub payload: Bytes,
}

fn value(v: &FeatureValue) -> Value {
    match v {
        FeatureValue::Number(n) => {
            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
        }
        FeatureValue::Text(s) => Value::String(s.clone()),
        FeatureValue::Missing => Value::Null,
    }
}

/// The records of one exchange: one per row (at least one, so an exchange whose body was
/// not understood still carries its latency and status).
pub fn records(ex: &Exchange<'_>, log_values: bool) -> Vec<Message> {
    let parsed = ex.parsed;
    let n = parsed.rows.len().max(parsed.predictions.len()).max(1);
    let key = Bytes::copy_from_slice(ex.model.as_bytes());
    let time = humantime::format_rfc3339_micros(ex.received_at).to_string();
    let (latency, status) = match ex.request {
        Some(r) => (
            serde_json::Number::from_f64(r.duration.as_secs_f64())
                .map_or(Value::Null, Value::Number),
            r.status.map_or(Value::Null, Value::from),
        ),
        None => (Value::Null, Value::Null),
    };
    (0..n)
        .map(|i| {
            let mut features = Map::new();
            if let Some(row) = parsed.rows.get(i) {
                for (name, v) in &row.values {
                    let v = if log_values { value(v) } else { Value::Null };
                    features.insert(name.clone(), v);
                }
            }
            let prediction = parsed.predictions.get(i);
            let mut rec = Map::new();
            rec.insert("model".into(), Value::from(ex.model));
            rec.insert(
                "version".into(),
                ex.version.map_or(Value::Null, Value::from),
            );
            rec.insert("request_id".into(), Value::from(ex.request_id));
            rec.insert("row".into(), Value::from(i));
            rec.insert("time".into(), Value::from(time.clone()));
            rec.insert("features".into(), Value::Object(features));
            rec.insert(
                "prediction".into(),
                prediction.map_or(Value::Null, |p| value(&p.value)),
            );
            if let Some(probs) = prediction.and_then(|p| p.probabilities.as_ref()) {
                rec.insert(
                    "probabilities".into(),
                    Value::Array(
                        probs
                            .iter()
                            .map(|p| {
                                serde_json::Number::from_f64(*p).map_or(Value::Null, Value::Number)
                            })
                            .collect(),
                    ),
                );
            }
            rec.insert("latency_seconds".into(), latency.clone());
            rec.insert("status".into(), status.clone());
            rec.insert("redacted".into(), Value::Bool(!log_values));
            let payload = serde_json::to_vec(&Value::Object(rec)).unwrap_or_default();
            Message {
                key: key.clone(),
                payload: Bytes::from(payload),
            }
        })
        .collect()
}
