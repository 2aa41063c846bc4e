//! Ground truth read from a broker: each message is one record of `POST /api/v1/feedback`
//! plus `"model"` (or an array of them), applied through the same path as the API
//! ([`crate::app::AppState::apply_feedback`], counted in `mlmon_feedback_total`). A record
//! that cannot be applied is counted and skipped: the consumer never stops on it.

use std::sync::Arc;

use serde_json::Value;

use crate::feedback::Outcome;
use crate::metrics::sink::SinkMetrics;
use crate::performance::FeedbackItem;

/// Records read from one message at most (as `POST /api/v1/feedback`).
pub const MAX_RECORDS: usize = 10_000;

/// Applies ground truth for a model: `None` when the model has not been seen.
pub type Apply = Arc<dyn Fn(&str, &[FeedbackItem]) -> Option<Vec<Outcome>> + Send + Sync>;

/// One record of a message: the model and the feedback item, or why it is not one.
pub fn parse_record(mut v: Value) -> Result<(String, FeedbackItem), String> {
    let Some(obj) = v.as_object_mut() else {
        return Err(format!("not a JSON object: {}", short(&v)));
    };
    let model = match obj.remove("model") {
        Some(Value::String(m)) if !m.is_empty() => m,
        Some(other) => {
            return Err(format!(
                "model must be a non-empty string, not {}",
                short(&other)
            ))
        }
        None => return Err("missing field `model`".into()),
    };
    FeedbackItem::from_json(v).map(|item| (model, item))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Applies one message from `source` (`kafka`, `nats`), counting each record in
/// `mlmon_feedback_source_records_total`.
pub fn handle(payload: &[u8], apply: &Apply, metrics: &SinkMetrics, source: &'static str) {
    let records = match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Array(a)) => a,
        Ok(v) => vec![v],
        Err(e) => {
            tracing::debug!(source, error = %e, "feedback record is not JSON; skipped");
            metrics.count_source(source, "invalid");
            return;
        }
    };
    for (i, r) in records.into_iter().enumerate() {
        if i >= MAX_RECORDS {
            metrics.count_source(source, "invalid");
            continue;
        }
        match parse_record(r) {
            Ok((model, item)) => match apply(&model, std::slice::from_ref(&item)) {
                Some(_) => metrics.count_source(source, "applied"),
                None => metrics.count_source(source, "unknown_model"),
            },
            Err(e) => {
                tracing::debug!(source, error = %e, "feedback record skipped");
                metrics.count_source(source, "invalid");
            }
        }
    }
}
