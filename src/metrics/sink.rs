//! Streaming metrics (SPEC section 11, docs/streaming.md):
//! `mlmon_sink_records_total{sink,result}` for the capture stream and
//! `mlmon_feedback_source_records_total{source,result}` for ground truth read from a broker
//! (what it became once applied is counted in `mlmon_feedback_total`, as for the API).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// `{sink,result}`: `sink` is `kafka` or `nats`; `result` is `sent`, `dropped` or `failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    /// `kafka` or `nats`.
    pub sink: &'static str,
    /// `sent` (acknowledged), `dropped` (the sink's queue was full), `failed` (not delivered).
    pub result: &'static str,
}

/// `{source,result}`: `source` is `kafka` or `nats`; `result` is `applied`, `invalid` or
/// `unknown_model`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `kafka` or `nats`.
    pub source: &'static str,
    /// `applied`, `invalid` (not a feedback record) or `unknown_model` (model not seen).
    pub result: &'static str,
}

/// The streaming metric families.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// `mlmon_sink_records_total`.
    pub records: Family<SinkLabels, Counter>,
    /// `mlmon_feedback_source_records_total`.
    pub source_records: Family<SourceLabels, Counter>,
}

impl SinkMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> SinkMetrics {
        let m = SinkMetrics::default();
        registry.register(
            "sink_records",
            "Capture-stream records by sink and result: sent (acknowledged by the broker), dropped (the sink's queue was full), failed (not delivered within sink.timeout)",
            m.records.clone(),
        );
        registry.register(
            "feedback_source_records",
            "Ground-truth records read from a broker by source and result: applied (as POST /api/v1/feedback would), invalid or unknown_model (skipped)",
            m.source_records.clone(),
        );
        m
    }

    /// Counts `n` records of `sink` with `result`.
    pub fn count(&self, sink: &'static str, result: &'static str, n: u64) {
        if n > 0 {
            self.records
                .get_or_create(&SinkLabels { sink, result })
                .inc_by(n);
        }
    }

    /// Creates the series of a configured sink at zero.
    pub fn init_sink(&self, sink: &'static str) {
        for result in ["sent", "dropped", "failed"] {
            let _ = self.records.get_or_create(&SinkLabels { sink, result });
        }
    }

    /// Counts one record read from `source` with `result`.
    pub fn count_source(&self, source: &'static str, result: &'static str) {
        self.source_records
            .get_or_create(&SourceLabels { source, result })
            .inc();
    }

    /// Creates the series of a configured source at zero.
    pub fn init_source(&self, source: &'static str) {
        for result in ["applied", "invalid", "unknown_model"] {
            let _ = self
                .source_records
                .get_or_create(&SourceLabels { source, result });
        }
    }
}
