//! Kafka through librdkafka (`rdkafka`): the capture sink (a producer keyed by model) and
//! the feedback source (a consumer group committing each offset only after its record is
//! applied).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::Instant;

use super::batch::Delivered;
use super::feedback::Apply;
use super::record::Message;
use crate::config::{KafkaSinkConfig, KafkaSourceConfig};
use crate::metrics::sink::SinkMetrics;
use crate::shutdown::Shutdown;

/// `base` (mlmon's own settings) under the user's `options` (which win, except the
/// reserved keys the configuration check refuses).
fn client_config(base: &[(&str, String)], options: &BTreeMap<String, String>) -> ClientConfig {
    let mut cc = ClientConfig::new();
    for (k, v) in base {
        cc.set(*k, v);
    }
    for (k, v) in options {
        cc.set(k, v);
    }
    cc
}

/// The capture sink's producer.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaSink {
    /// A producer for `cfg` (no connection yet: librdkafka connects in the background).
    /// `timeout` bounds a record's delivery (`message.timeout.ms`), `queue` the records
    /// librdkafka holds. Errors name the key.
    pub fn new(cfg: &KafkaSinkConfig, timeout: Duration, queue: usize) -> Result<Self, String> {
        let base = [
            ("bootstrap.servers", cfg.brokers.clone()),
            ("message.timeout.ms", timeout.as_millis().max(1).to_string()),
            ("queue.buffering.max.messages", queue.max(1).to_string()),
            ("linger.ms", "5".into()),
            // One request in flight per broker: a retry can never overtake the records
            // after it, so each model's records stay in order within its partition.
            ("max.in.flight.requests.per.connection", "1".into()),
            ("client.id", "mlmon".into()),
        ];
        let producer: FutureProducer = client_config(&base, &cfg.options)
            .create()
            .map_err(|e| format!("sink.kafka: {e}"))?;
        Ok(KafkaSink {
            producer,
            topic: cfg.topic.clone(),
        })
    }

    /// Produces `batch` and waits for the acknowledgements until `deadline`.
    pub async fn deliver(&mut self, batch: &[Message], deadline: Instant) -> Delivered {
        let mut d = Delivered::default();
        let mut pending = Vec::with_capacity(batch.len());
        for m in batch {
            let record = FutureRecord::to(&self.topic)
                .key(&m.key[..])
                .payload(&m.payload[..]);
            match self.producer.send_result(record) {
                Ok(f) => pending.push(f),
                Err(_) => d.failed += 1,
            }
        }
        for f in pending {
            match tokio::time::timeout_at(deadline, f).await {
                Ok(Ok(Ok(_))) => d.sent += 1,
                _ => d.failed += 1,
            }
        }
        d
    }
}

/// The feedback source's consumer.
pub struct KafkaSource {
    consumer: StreamConsumer,
}

impl KafkaSource {
    /// A consumer of `cfg.topic` in group `cfg.group`, committing by hand. Errors name the key.
    pub fn new(cfg: &KafkaSourceConfig) -> Result<Self, String> {
        let base = [
            ("bootstrap.servers", cfg.brokers.clone()),
            ("group.id", cfg.group.clone()),
            ("enable.auto.commit", "false".into()),
            ("auto.offset.reset", "earliest".into()),
            ("client.id", "mlmon".into()),
        ];
        let consumer: StreamConsumer = client_config(&base, &cfg.options)
            .create()
            .map_err(|e| format!("feedback.kafka: {e}"))?;
        consumer
            .subscribe(&[&cfg.topic])
            .map_err(|e| format!("feedback.kafka.topic: {e}"))?;
        Ok(KafkaSource { consumer })
    }

    /// Applies every record of the topic until `shutdown`; commits each message's offset
    /// once it is applied (or found invalid and skipped).
    pub async fn run(self, apply: Apply, metrics: Arc<SinkMetrics>, mut shutdown: Shutdown) {
        let mut last_error_log: Option<Instant> = None;
        loop {
            let msg = tokio::select! {
                m = self.consumer.recv() => m,
                _ = shutdown.wait() => break,
            };
            match msg {
                Ok(m) => {
                    super::feedback::handle(
                        m.payload().unwrap_or_default(),
                        &apply,
                        &metrics,
                        "kafka",
                    );
                    if let Err(e) = self.consumer.commit_message(&m, CommitMode::Async) {
                        tracing::debug!(error = %e, "feedback.kafka: commit failed");
                    }
                }
                Err(e) => {
                    if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                        last_error_log = Some(Instant::now());
                        tracing::warn!(error = %e, "feedback.kafka: cannot consume; retrying");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.wait() => break,
                    }
                }
            }
        }
    }
}
