//! NATS through `async-nats`: the capture sink (core publish + flush, or JetStream publish
//! waiting for the stream's acks) and the feedback source (a plain subscription, or a
//! durable JetStream consumer acknowledging each message after it is applied).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::batch::Delivered;
use super::feedback::Apply;
use super::record::Message;
use crate::config::{NatsSinkConfig, NatsSourceConfig};
use crate::metrics::sink::SinkMetrics;
use crate::shutdown::Shutdown;

/// Connects in the background (a server that is down at start is retried for ever).
async fn connect(
    url: &str,
    credentials: Option<&std::path::Path>,
    key: &str,
) -> Result<async_nats::Client, String> {
    let mut opts = async_nats::ConnectOptions::new()
        .name("mlmon")
        .retry_on_initial_connect();
    if let Some(path) = credentials {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| format!("{key}.credentials: {}: {e}", path.display()))?;
    }
    let urls: Vec<async_nats::ServerAddr> = url
        .split(',')
        .map(|u| u.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{key}.url: {url:?}: {e}"))?;
    opts.connect(urls)
        .await
        .map_err(|e| format!("{key}.url: {url:?}: {e}"))
}

/// The capture sink's connection.
pub struct NatsSink {
    cfg: NatsSinkConfig,
    client: Option<async_nats::Client>,
}

impl NatsSink {
    /// A sink for `cfg`; it connects on first use.
    pub fn new(cfg: &NatsSinkConfig) -> Self {
        NatsSink {
            cfg: cfg.clone(),
            client: None,
        }
    }

    async fn client(&mut self) -> Option<async_nats::Client> {
        if self.client.is_none() {
            match connect(&self.cfg.url, self.cfg.credentials.as_deref(), "sink.nats").await {
                Ok(c) => self.client = Some(c),
                Err(e) => tracing::warn!(error = %e, "sink.nats: cannot connect"),
            }
        }
        self.client.clone()
    }

    /// Publishes `batch`; done when flushed (core) or acknowledged (JetStream) by `deadline`.
    pub async fn deliver(&mut self, batch: &[Message], deadline: Instant) -> Delivered {
        let n = batch.len() as u64;
        let Some(client) = self.client().await else {
            return Delivered { sent: 0, failed: n };
        };
        let subject = self.cfg.subject.clone();
        if self.cfg.jetstream {
            let js = jetstream::new(client);
            let mut d = Delivered::default();
            let mut acks = Vec::with_capacity(batch.len());
            for m in batch {
                match tokio::time::timeout_at(
                    deadline,
                    js.publish(subject.clone(), m.payload.clone()),
                )
                .await
                {
                    Ok(Ok(ack)) => acks.push(ack),
                    _ => d.failed += 1,
                }
            }
            for ack in acks {
                match tokio::time::timeout_at(deadline, ack).await {
                    Ok(Ok(_)) => d.sent += 1,
                    _ => d.failed += 1,
                }
            }
            d
        } else {
            let publish = async {
                for m in batch {
                    client
                        .publish(subject.clone(), m.payload.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                }
                client.flush().await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout_at(deadline, publish).await {
                Ok(Ok(())) => Delivered { sent: n, failed: 0 },
                _ => Delivered { sent: 0, failed: n },
            }
        }
    }
}

/// Applies every message of `cfg.subject` until `shutdown`.
pub async fn run_source(
    cfg: NatsSourceConfig,
    apply: Apply,
    metrics: Arc<SinkMetrics>,
    mut shutdown: Shutdown,
) {
    let client = tokio::select! {
        c = connect(&cfg.url, cfg.credentials.as_deref(), "feedback.nats") => c,
        _ = shutdown.wait() => return,
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "feedback.nats: cannot connect; ground truth from NATS is off");
            return;
        }
    };
    match cfg.stream.clone() {
        None => {
            let mut sub = loop {
                match client.subscribe(cfg.subject.clone()).await {
                    Ok(s) => break s,
                    Err(e) => {
                        tracing::warn!(error = %e, "feedback.nats: cannot subscribe; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = shutdown.wait() => return,
                        }
                    }
                }
            };
            loop {
                let msg = tokio::select! {
                    m = sub.next() => m,
                    _ = shutdown.wait() => break,
                };
                let Some(msg) = msg else { break };
                super::feedback::handle(&msg.payload, &apply, &metrics, "nats");
            }
        }
        Some(stream) => {
            let js = jetstream::new(client);
            loop {
                let run =
                    jetstream_source(&js, &stream, &cfg, &apply, &metrics, &mut shutdown).await;
                match run {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, stream, "feedback.nats: JetStream consumer failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = shutdown.wait() => return,
                        }
                    }
                }
            }
        }
    }
}

/// One life of the durable consumer: `Ok` on shutdown, `Err` to be retried.
async fn jetstream_source(
    js: &jetstream::Context,
    stream: &str,
    cfg: &NatsSourceConfig,
    apply: &Apply,
    metrics: &SinkMetrics,
    shutdown: &mut Shutdown,
) -> Result<(), String> {
    let s = js.get_stream(stream).await.map_err(|e| e.to_string())?;
    let consumer = s
        .get_or_create_consumer(
            &cfg.durable,
            jetstream::consumer::pull::Config {
                durable_name: Some(cfg.durable.clone()),
                filter_subject: cfg.subject.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    loop {
        let msg = tokio::select! {
            m = messages.next() => m,
            _ = shutdown.wait() => return Ok(()),
        };
        match msg {
            None => return Err("message stream ended".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(m)) => {
                super::feedback::handle(&m.payload, apply, metrics, "nats");
                // Acknowledged only once applied: a crash before this redelivers it.
                if let Err(e) = m.ack().await {
                    tracing::debug!(error = %e, "feedback.nats: ack failed");
                }
            }
        }
    }
}
