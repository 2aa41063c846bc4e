//! The `sink` section (the capture stream to Kafka and NATS) and the broker settings of the
//! `feedback.kafka` / `feedback.nats` sources (docs/streaming.md). Every broker is off unless
//! its section is present.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{count_between, positive_duration, Invalid};

/// The `sink` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Produce one record per analysed row to a Kafka topic (off when absent).
    pub kafka: Option<KafkaSinkConfig>,
    /// Publish one record per analysed row to a NATS subject (off when absent).
    pub nats: Option<NatsSinkConfig>,
    /// Records waiting for each sink at most; past it new records are dropped and counted
    /// (`mlmon_sink_records_total{result="dropped"}`), the analysis never waits.
    pub queue: usize,
    /// Records delivered in one batch at most.
    pub batch: usize,
    /// Longest a record waits for its batch to fill before the batch is sent.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Time limit of one batch's delivery (Kafka acknowledgements, JetStream acks, a NATS
    /// flush); records not confirmed by then are counted `failed`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            kafka: None,
            nats: None,
            queue: 10_000,
            batch: 500,
            linger: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Kafka connection settings shared by `sink.kafka` and `feedback.kafka`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers, comma-separated `host:port`.
    pub brokers: String,
    /// Topic the records are produced to (keyed by model: one partition per model keeps
    /// its records in order).
    pub topic: String,
    /// librdkafka properties passed through as they are (`security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, …).
    pub options: BTreeMap<String, String>,
}

/// The `sink.nats` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSinkConfig {
    /// Server URL(s), comma-separated (`nats://host:4222`, `tls://…`; credentials may be
    /// written `nats://user:password@host:4222`).
    pub url: String,
    /// Subject the records are published to.
    pub subject: String,
    /// Publish through JetStream and wait for the stream's acknowledgement (a stream must
    /// cover the subject); plain NATS publishing (at most once) otherwise.
    pub jetstream: bool,
    /// NATS credentials file (`.creds`), when the server wants one.
    pub credentials: Option<std::path::PathBuf>,
}

/// The `feedback.kafka` section: ground truth consumed from a topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSourceConfig {
    /// Bootstrap brokers, comma-separated `host:port`.
    pub brokers: String,
    /// Topic to consume.
    pub topic: String,
    /// Consumer group; offsets are committed to it only after a record is applied.
    pub group: String,
    /// librdkafka properties passed through (`security.protocol`, `sasl.*`, `ssl.*`,
    /// `auto.offset.reset`, …).
    pub options: BTreeMap<String, String>,
}

/// The `feedback.nats` section: ground truth consumed from a subject.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSourceConfig {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// Subject to consume.
    pub subject: String,
    /// JetStream stream to consume through a durable consumer, acknowledging each message
    /// after it is applied; plain subscription (at most once) when absent.
    pub stream: Option<String>,
    /// Name of the durable JetStream consumer (with `stream`).
    pub durable: String,
    /// NATS credentials file (`.creds`), when the server wants one.
    pub credentials: Option<std::path::PathBuf>,
}

impl Default for KafkaSourceConfig {
    fn default() -> Self {
        KafkaSourceConfig {
            brokers: String::new(),
            topic: String::new(),
            group: "mlmon".into(),
            options: BTreeMap::new(),
        }
    }
}

impl Default for NatsSourceConfig {
    fn default() -> Self {
        NatsSourceConfig {
            url: String::new(),
            subject: String::new(),
            stream: None,
            durable: "mlmon".into(),
            credentials: None,
        }
    }
}

/// `key` (`section.field`) must be set once its section is. The error is about the section,
/// so that it names the variables or the file that set the section's other keys.
fn required(key: &str, value: &str) -> Result<(), Invalid> {
    if !value.trim().is_empty() {
        return Ok(());
    }
    let section = key.rsplit_once('.').map_or(key, |(s, _)| s);
    Err(Invalid::new(
        section,
        format!("{key} is required once {section} is set"),
    ))
}

fn nats_url(key: &str, value: &str) -> Result<(), Invalid> {
    required(key, value)?;
    for url in value.split(',') {
        let url = url.trim();
        let scheme = url.split("://").next().unwrap_or_default();
        if !url.contains("://") || !matches!(scheme, "nats" | "tls" | "ws" | "wss") {
            return Err(Invalid::new(
                key,
                format!("{url:?} is not a NATS URL like nats://127.0.0.1:4222"),
            ));
        }
    }
    Ok(())
}

fn kafka_options(key: &str, options: &BTreeMap<String, String>) -> Result<(), Invalid> {
    // These are mlmon's own: it commits after applying and keys by model.
    for reserved in ["bootstrap.servers", "group.id", "enable.auto.commit"] {
        if options.contains_key(reserved) {
            return Err(Invalid::new(
                &format!("{key}.options"),
                format!("{reserved:?} is set by mlmon from its own keys"),
            ));
        }
    }
    Ok(())
}

impl SinkConfig {
    /// Whether any sink is configured.
    pub fn enabled(&self) -> bool {
        self.kafka.is_some() || self.nats.is_some()
    }

    pub(super) fn check(&self) -> Result<(), Invalid> {
        count_between("sink.queue", self.queue, 1, 10_000_000)?;
        count_between("sink.batch", self.batch, 1, 100_000)?;
        positive_duration("sink.linger", self.linger, Some(Duration::from_secs(60)))?;
        positive_duration("sink.timeout", self.timeout, Some(Duration::from_secs(600)))?;
        if let Some(k) = &self.kafka {
            required("sink.kafka.brokers", &k.brokers)?;
            required("sink.kafka.topic", &k.topic)?;
            kafka_options("sink.kafka", &k.options)?;
        }
        if let Some(n) = &self.nats {
            nats_url("sink.nats.url", &n.url)?;
            required("sink.nats.subject", &n.subject)?;
        }
        Ok(())
    }
}

impl KafkaSourceConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        required("feedback.kafka.brokers", &self.brokers)?;
        required("feedback.kafka.topic", &self.topic)?;
        required("feedback.kafka.group", &self.group)?;
        kafka_options("feedback.kafka", &self.options)
    }
}

impl NatsSourceConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        nats_url("feedback.nats.url", &self.url)?;
        required("feedback.nats.subject", &self.subject)?;
        if self.stream.is_some() {
            required("feedback.nats.durable", &self.durable)?;
        }
        Ok(())
    }
}
