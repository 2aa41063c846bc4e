//! The delivery loop of one sink: take what waits in the sink's bounded queue, up to
//! `sink.batch` records or `sink.linger`, deliver it within `sink.timeout`, count the
//! outcome. Only this task ever waits on a broker; the analysis side only `try_send`s.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::record::Message;
use super::{kafka, nats};
use crate::metrics::sink::SinkMetrics;
use crate::shutdown::Shutdown;

/// What one batch became.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Acknowledged (Kafka, JetStream) or flushed (NATS).
    pub sent: u64,
    /// Refused, or not confirmed before the deadline.
    pub failed: u64,
}

/// A sink's client.
pub enum Deliverer {
    /// A Kafka producer.
    Kafka(kafka::KafkaSink),
    /// A NATS connection (core or JetStream).
    Nats(nats::NatsSink),
}

impl Deliverer {
    /// The `sink` label.
    pub fn name(&self) -> &'static str {
        match self {
            Deliverer::Kafka(_) => "kafka",
            Deliverer::Nats(_) => "nats",
        }
    }

    async fn deliver(&mut self, batch: &[Message], deadline: Instant) -> Delivered {
        match self {
            Deliverer::Kafka(k) => k.deliver(batch, deadline).await,
            Deliverer::Nats(n) => n.deliver(batch, deadline).await,
        }
    }
}

/// Limits of the loop (from the `sink` section).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Records per batch at most.
    pub batch: usize,
    /// Longest wait for a batch to fill.
    pub linger: Duration,
    /// Time limit of one batch's delivery.
    pub timeout: Duration,
}

/// Delivers what arrives on `rx` until the analysis side is gone or `shutdown` fires; on
/// shutdown what is already queued gets one more bounded delivery.
pub async fn run(
    mut rx: mpsc::Receiver<Message>,
    mut deliverer: Deliverer,
    limits: Limits,
    metrics: Arc<SinkMetrics>,
    mut shutdown: Shutdown,
) {
    let name = deliverer.name();
    let mut batch: Vec<Message> = Vec::with_capacity(limits.batch);
    let mut last_error_log: Option<Instant> = None;
    loop {
        let first = tokio::select! {
            m = rx.recv() => m,
            _ = shutdown.wait() => None,
        };
        let Some(first) = first else { break };
        batch.push(first);
        let fill_until = Instant::now() + limits.linger;
        while batch.len() < limits.batch {
            match tokio::time::timeout_at(fill_until, rx.recv()).await {
                Ok(Some(m)) => batch.push(m),
                Ok(None) | Err(_) => break,
            }
        }
        let d = deliverer
            .deliver(&batch, Instant::now() + limits.timeout)
            .await;
        count(&metrics, name, d, &mut last_error_log);
        batch.clear();
    }
    // Shutdown: what waits already gets one bounded attempt, then the rest is dropped.
    rx.close();
    while let Ok(m) = rx.try_recv() {
        batch.push(m);
        if batch.len() >= limits.batch {
            break;
        }
    }
    if !batch.is_empty() {
        let d = deliverer
            .deliver(&batch, Instant::now() + limits.timeout)
            .await;
        count(&metrics, name, d, &mut last_error_log);
    }
    let mut left = 0;
    while rx.try_recv().is_ok() {
        left += 1;
    }
    metrics.count(name, "dropped", left);
}

fn count(metrics: &SinkMetrics, name: &'static str, d: Delivered, last: &mut Option<Instant>) {
    metrics.count(name, "sent", d.sent);
    metrics.count(name, "failed", d.failed);
    // One warning per minute at most while a broker is away.
    if d.failed > 0 && last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
        *last = Some(Instant::now());
        tracing::warn!(
            sink = name,
            failed = d.failed,
            "capture records not delivered (counted in mlmon_sink_records_total{{result=\"failed\"}})"
        );
    }
}
