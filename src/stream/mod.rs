//! Streaming (SPEC section 11, docs/streaming.md): the capture stream of every analysed row
//! to Kafka and/or NATS, and ground truth consumed from them.
//!
//! ```text
//! ingest::Worker ─▶ Sinks::observe ─try_send─▶ [sink.queue] ─▶ batch::run ─▶ Kafka / NATS
//!   (analysis thread: builds the JSON once,      bounded:      (a tokio task: batches,
//!    never waits; a full queue is a counted       dropped       waits for acks within
//!    drop)                                        when full)    sink.timeout, counts)
//!
//! Kafka topic / NATS subject ─▶ feedback source ─▶ AppState::apply_feedback (as the API)
//!                                 (commit / ack after applying)
//! ```
//!
//! - [`record`]: the record's JSON shape and its redacted form;
//! - [`batch`]: the delivery loop shared by both sinks;
//! - [`kafka`], [`nats`]: the clients (`rdkafka`, `async-nats`);
//! - [`feedback`]: parsing and applying ground truth from a broker.

pub mod batch;
pub mod feedback;
pub mod kafka;
pub mod nats;
pub mod record;

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::analysis::{Analysis, Exchange};
use crate::baseline;
use crate::config::Config;
use crate::metrics::sink::SinkMetrics;
use crate::shutdown::Shutdown;

use self::batch::{Deliverer, Limits};
use self::record::Message;

struct Output {
    name: &'static str,
    tx: mpsc::Sender<Message>,
}

/// The configured capture sinks, fed as an analysis (after the others).
pub struct Sinks {
    outputs: Vec<Output>,
    log_values: bool,
    metrics: Arc<SinkMetrics>,
    /// The delivery side of each output until [`Sinks::spawn`] starts it.
    waiting: Mutex<Vec<(mpsc::Receiver<Message>, Deliverer)>>,
    limits: Limits,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.outputs.iter().map(|o| o.name))
            .finish()
    }
}

impl Sinks {
    /// The sinks of `cfg.sink` (none when no broker is configured). Errors (a librdkafka
    /// option it refuses) name the key.
    pub fn new(cfg: &Config, metrics: Arc<SinkMetrics>) -> Result<Sinks, String> {
        let s = &cfg.sink;
        let mut deliverers = Vec::new();
        if let Some(k) = &s.kafka {
            deliverers.push(Deliverer::Kafka(kafka::KafkaSink::new(
                k, s.timeout, s.queue,
            )?));
        }
        if let Some(n) = &s.nats {
            deliverers.push(Deliverer::Nats(nats::NatsSink::new(n)));
        }
        let mut outputs = Vec::new();
        let mut waiting = Vec::new();
        for d in deliverers {
            let (tx, rx) = mpsc::channel(s.queue.max(1));
            metrics.init_sink(d.name());
            outputs.push(Output { name: d.name(), tx });
            waiting.push((rx, d));
        }
        Ok(Sinks {
            outputs,
            log_values: cfg.privacy.log_values,
            metrics,
            waiting: Mutex::new(waiting),
            limits: Limits {
                batch: s.batch.max(1),
                linger: s.linger,
                timeout: s.timeout,
            },
        })
    }

    /// Whether any sink is configured.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Starts each sink's delivery task on `tasks` (once).
    pub fn spawn(&self, shutdown: &Shutdown, tasks: &mut JoinSet<()>) {
        let waiting = match self.waiting.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => return,
        };
        for (rx, d) in waiting {
            tasks.spawn(batch::run(
                rx,
                d,
                self.limits,
                self.metrics.clone(),
                shutdown.clone(),
            ));
        }
    }
}

impl Analysis for Sinks {
    fn name(&self) -> &'static str {
        "sink"
    }

    fn observe(&self, exchange: &Exchange<'_>) {
        if self.outputs.is_empty() {
            return;
        }
        for m in record::records(exchange, self.log_values) {
            for o in &self.outputs {
                // Never wait: a full queue (a slow or absent broker) is a counted drop.
                if o.tx.try_send(m.clone()).is_err() {
                    self.metrics.count(o.name, "dropped", 1);
                }
            }
        }
    }

    fn refresh(&self, _: &baseline::Registry) {}

    fn report(&self, _: &str) -> Option<serde_json::Value> {
        None
    }
}

/// The configured feedback sources (`feedback.kafka`, `feedback.nats`), made at start-up
/// (so a bad librdkafka option stops it, naming the key) and started by [`Sources::spawn`].
pub struct Sources {
    kafka: Mutex<Option<kafka::KafkaSource>>,
    nats: Option<crate::config::NatsSourceConfig>,
    metrics: Arc<SinkMetrics>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("nats", &self.nats.is_some())
            .finish_non_exhaustive()
    }
}

impl Sources {
    /// The sources of `cfg.feedback`.
    pub fn new(cfg: &Config, metrics: Arc<SinkMetrics>) -> Result<Sources, String> {
        let kafka = match &cfg.feedback.kafka {
            Some(k) => {
                metrics.init_source("kafka");
                Some(kafka::KafkaSource::new(k)?)
            }
            None => None,
        };
        if cfg.feedback.nats.is_some() {
            metrics.init_source("nats");
        }
        Ok(Sources {
            kafka: Mutex::new(kafka),
            nats: cfg.feedback.nats.clone(),
            metrics,
        })
    }

    /// Starts the sources on `tasks` (once), applying records with `apply`.
    pub fn spawn(&self, apply: feedback::Apply, shutdown: &Shutdown, tasks: &mut JoinSet<()>) {
        if let Some(source) = self.kafka.lock().ok().and_then(|mut k| k.take()) {
            tasks.spawn(source.run(apply.clone(), self.metrics.clone(), shutdown.clone()));
        }
        if let Some(n) = &self.nats {
            tasks.spawn(nats::run_source(
                n.clone(),
                apply,
                self.metrics.clone(),
                shutdown.clone(),
            ));
        }
    }
}

#[cfg(test)]
mod tests;
