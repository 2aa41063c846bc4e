//! The one way in. Every source of exchanges (the proxy's body tee, `POST
//! /api/v1/predictions`, KServe's `POST /api/v1/events`, and later stream consumers) turns
//! what it received into a [`Record`] and offers it to the bounded [`Queue`] with
//! `try_send`: nothing on the proxy's or the admin server's workers waits for, or runs, an
//! analysis. The analysis side ([`worker::Worker`]) drains the queue on a thread of its own,
//! parses payloads, feeds live-capture baselines and every [`crate::analysis::Analysis`].
//!
//! ```text
//! proxy tee ─┐
//! /predictions ─┼─ Record ─▶ Queue (count + byte bound, try_send) ─▶ Worker ─▶ analyses
//! /events ───┘                  full: counted, 503 for the API
//! ```

pub mod admit;
pub mod events;
pub mod parser;
pub mod worker;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::record::{CapturedExchange, ParsedExchange};

pub use worker::{decode, Worker, DECODE_REASONS, MAX_DECODED_BYTES};

/// One row logged through `POST /api/v1/predictions` (already parsed by the handler).
#[derive(Debug, Clone)]
pub struct LoggedRow {
    /// The request id ground truth refers to.
    pub request_id: String,
    /// When the prediction was made (the record's `timestamp`, else arrival).
    pub received_at: SystemTime,
    /// The row and its prediction.
    pub parsed: ParsedExchange,
}

/// Work an ingress hands to the analysis thread as it is, e.g. comparing a shadow model's
/// answer with the primary's (`crate::shadow`): parsing stays off the runtime's workers.
pub trait Job: Send + std::fmt::Debug {
    /// Approximate memory the job holds while queued (the queue's byte budget).
    fn queued_bytes(&self) -> usize;
    /// Does the work, on the analysis thread.
    fn run(self: Box<Self>);
}

/// What an ingress hands to the analysis side.
#[derive(Debug)]
pub enum Record {
    /// Raw request and response bytes (the proxy's tee, a KServe event pair): parsed on
    /// the analysis side with the payload adapters.
    Captured(Box<CapturedExchange>),
    /// Rows already in the neutral form (`POST /api/v1/predictions`).
    Logged {
        /// The model (folded to `__other__` past `model.max_models`).
        model: String,
        /// Model version when known.
        version: Option<String>,
        /// The rows, one exchange each.
        rows: Vec<LoggedRow>,
        /// Their size for the queue's byte budget ([`Record::logged_size`]), computed once
        /// by the ingress off the runtime's workers.
        size: usize,
    },
    /// Work to run on the analysis thread; it analyses no exchange of its own.
    Job(Box<dyn Job>),
}

impl Record {
    /// Approximate memory the record holds while queued (the queue's byte budget).
    pub fn queued_bytes(&self) -> usize {
        match self {
            Record::Captured(ex) => ex.captured_bytes(),
            Record::Logged { size, .. } => *size,
            Record::Job(job) => job.queued_bytes(),
        }
    }

    /// A logged record with its size computed (walks every row once).
    pub fn logged(model: String, version: Option<String>, rows: Vec<LoggedRow>) -> Record {
        let size = Self::logged_size(&model, &rows);
        Record::Logged {
            model,
            version,
            rows,
            size,
        }
    }

    /// Approximate memory of logged rows while queued.
    pub fn logged_size(model: &str, rows: &[LoggedRow]) -> usize {
        let row_bytes = |r: &LoggedRow| {
            let values: usize = r
                .parsed
                .rows
                .iter()
                .flat_map(|row| row.values.iter())
                .map(|(n, v)| n.len() + value_bytes(v) + 48)
                .sum();
            let predictions: usize = r
                .parsed
                .predictions
                .iter()
                .map(|p| 48 + p.probabilities.as_ref().map_or(0, |p| 8 * p.len()))
                .sum();
            values + predictions + r.request_id.len() + 96
        };
        model.len() + rows.iter().map(row_bytes).sum::<usize>()
    }

    /// Exchanges (rows for logged records, one for a captured exchange) this record holds.
    pub fn exchanges(&self) -> u64 {
        match self {
            Record::Captured(_) => 1,
            Record::Logged { rows, .. } => rows.len() as u64,
            Record::Job(_) => 0,
        }
    }
}

fn value_bytes(v: &crate::record::FeatureValue) -> usize {
    match v {
        crate::record::FeatureValue::Text(s) => s.len(),
        _ => 0,
    }
}

/// Why a record was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The queue holds `capture.queue` records or `capture.max_queue_bytes` bytes.
    #[error("the analysis queue is full")]
    Full,
    /// The analysis side has stopped (shutdown).
    #[error("the analysis side has stopped")]
    Closed,
}

/// The sending end of the capture queue, shared by every ingress. Bounded in records
/// (`capture.queue`) and in bytes (`capture.max_queue_bytes`); never blocks.
#[derive(Debug, Clone)]
pub struct Queue {
    tx: mpsc::Sender<Record>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving end, for the [`Worker`].
#[derive(Debug)]
pub struct Receiver {
    rx: mpsc::Receiver<Record>,
    bytes: Arc<AtomicUsize>,
}

/// A queue of at most `records` records and `max_bytes` bytes.
pub fn queue(records: usize, max_bytes: usize) -> (Queue, Receiver) {
    let (tx, rx) = mpsc::channel(records.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        Queue {
            tx,
            bytes: bytes.clone(),
            max_bytes,
        },
        Receiver { rx, bytes },
    )
}

impl Queue {
    /// Offers a record; never waits.
    pub fn try_send(&self, record: Record) -> Result<(), Rejected> {
        let size = record.queued_bytes();
        let queued = self.bytes.fetch_add(size, Ordering::AcqRel);
        if queued + size > self.max_bytes {
            self.bytes.fetch_sub(size, Ordering::AcqRel);
            return Err(Rejected::Full);
        }
        match self.tx.try_send(record) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.bytes.fetch_sub(size, Ordering::AcqRel);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => Rejected::Full,
                    mpsc::error::TrySendError::Closed(_) => Rejected::Closed,
                })
            }
        }
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A handle that does not keep the queue open.
    pub fn downgrade(&self) -> WeakQueue {
        WeakQueue {
            tx: self.tx.downgrade(),
            bytes: self.bytes.clone(),
            max_bytes: self.max_bytes,
            capacity: self.tx.max_capacity(),
        }
    }

    /// Bytes waiting (approximate, see [`Record::queued_bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }
}

/// A queue handle that does not keep the analysis side alive: the admin API holds this
/// one, so the worker ends once the proxy (the owner of the strong handle) is gone.
#[derive(Debug, Clone)]
pub struct WeakQueue {
    tx: mpsc::WeakSender<Record>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    capacity: usize,
}

impl WeakQueue {
    /// Offers a record; never waits. [`Rejected::Closed`] once the queue has shut down.
    pub fn try_send(&self, record: Record) -> Result<(), Rejected> {
        let tx = self.tx.upgrade().ok_or(Rejected::Closed)?;
        Queue {
            tx,
            bytes: self.bytes.clone(),
            max_bytes: self.max_bytes,
        }
        .try_send(record)
    }

    /// Records waiting (0 once shut down).
    pub fn len(&self) -> usize {
        self.tx
            .upgrade()
            .map_or(0, |tx| self.capacity - tx.capacity())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Receiver {
    /// The next record, blocking the (dedicated) thread; `None` once every sender is gone.
    pub fn blocking_recv(&mut self) -> Option<Record> {
        let r = self.rx.blocking_recv()?;
        self.bytes.fetch_sub(r.queued_bytes(), Ordering::AcqRel);
        Some(r)
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// The next record if one waits.
    pub fn try_recv(&mut self) -> Option<Record> {
        let r = self.rx.try_recv().ok()?;
        self.bytes.fetch_sub(r.queued_bytes(), Ordering::AcqRel);
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FeatureValue, Prediction, Row};

    fn logged(n: usize) -> Record {
        Record::logged(
            "m".into(),
            None,
            (0..n)
                .map(|i| LoggedRow {
                    request_id: format!("r{i}"),
                    received_at: SystemTime::now(),
                    parsed: ParsedExchange {
                        rows: vec![Row {
                            values: vec![("x".into(), FeatureValue::Number(1.0))],
                        }],
                        predictions: vec![Prediction {
                            value: FeatureValue::Number(0.0),
                            probabilities: None,
                        }],
                    },
                })
                .collect(),
        )
    }

    #[test]
    fn bounded_in_records_and_bytes_and_released_on_receive() {
        let one = logged(10).queued_bytes();
        let (q, mut rx) = queue(2, one * 3);
        assert_eq!(q.try_send(logged(10)), Ok(()));
        assert_eq!(q.try_send(logged(10)), Ok(()));
        assert_eq!(q.try_send(logged(10)), Err(Rejected::Full), "record bound");
        assert_eq!(q.len(), 2);
        assert_eq!(q.bytes(), 2 * one);
        assert!(rx.try_recv().is_some());
        assert_eq!(q.bytes(), one);
        // Byte bound: one 30-row record is bigger than what is left.
        assert_eq!(q.try_send(logged(30)), Err(Rejected::Full));
        assert_eq!(q.bytes(), one, "a refused record takes no budget");
        assert!(rx.try_recv().is_some());
        assert_eq!(q.bytes(), 0);
        drop(rx);
        assert_eq!(q.try_send(logged(1)), Err(Rejected::Closed));
    }
}
