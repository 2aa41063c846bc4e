//! The pairing store of KServe inference-logger events (`POST /api/v1/events`): the
//! request and response halves of one exchange arrive separately, in any order, and wait
//! here (bounded) for each other before the pair goes to the capture queue as one record.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::time::Instant;

/// The CloudEvents type of a logged inference request.
pub const REQUEST_TYPE: &str = "org.kubeflow.serving.inference.request";
/// The CloudEvents type of a logged inference response.
pub const RESPONSE_TYPE: &str = "org.kubeflow.serving.inference.response";
/// How long a half waits for the other.
pub const EVENT_TTL: Duration = Duration::from_secs(60);
/// Halves waiting at most (the oldest are dropped past this).
pub const MAX_PENDING_EVENTS: usize = 10_000;

/// One request/response pair, or a request alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// `ce-id`.
    pub id: String,
    /// Model (`ce-inferenceservicename`).
    pub model: String,
    /// When the request happened (`ce-time` of the request, else arrival).
    pub time: SystemTime,
    /// Request body.
    pub request: Bytes,
    /// Response body, when it came.
    pub response: Option<Bytes>,
}

#[derive(Debug)]
struct Half {
    at: Instant,
    model: String,
    time: SystemTime,
    request: Option<Bytes>,
    response: Option<Bytes>,
}

/// Waiting halves by `ce-id`, and their arrival order.
type Halves = (HashMap<String, Half>, VecDeque<(Instant, String)>);

/// Halves of logged exchanges waiting for each other.
#[derive(Debug, Default)]
pub struct EventPairing {
    inner: Mutex<Halves>,
}

/// Which half an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The inference request.
    Request,
    /// The inference response.
    Response,
}

impl EventPairing {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one half. Returns the pairs ready for analysis: this event's pair when complete,
    /// and requests whose response did not come within [`EVENT_TTL`].
    pub fn add(
        &self,
        id: &str,
        kind: Kind,
        model: &str,
        time: SystemTime,
        body: Bytes,
        now: Instant,
    ) -> Vec<Paired> {
        let Ok(mut guard) = self.inner.lock() else {
            return Vec::new();
        };
        let (halves, order) = &mut *guard;
        let mut ready = Vec::new();
        // Expire, then make room.
        while let Some((at, _)) = order.front() {
            let expired = now.saturating_duration_since(*at) >= EVENT_TTL;
            if !expired && halves.len() < MAX_PENDING_EVENTS {
                break;
            }
            let Some((at, old)) = order.pop_front() else {
                break;
            };
            if halves.get(&old).is_some_and(|h| h.at == at) {
                if let Some(h) = halves.remove(&old) {
                    if let Some(request) = h.request {
                        ready.push(Paired {
                            id: old,
                            model: h.model,
                            time: h.time,
                            request,
                            response: None,
                        });
                    }
                }
            }
        }
        let complete = match halves.get_mut(id) {
            Some(h) => {
                match kind {
                    Kind::Request => {
                        h.request = Some(body);
                        h.time = time;
                        h.model = model.to_string();
                    }
                    Kind::Response => h.response = Some(body),
                }
                h.request.is_some() && h.response.is_some()
            }
            None => {
                let (request, response) = match kind {
                    Kind::Request => (Some(body), None),
                    Kind::Response => (None, Some(body)),
                };
                halves.insert(
                    id.to_string(),
                    Half {
                        at: now,
                        model: model.to_string(),
                        time,
                        request,
                        response,
                    },
                );
                order.push_back((now, id.to_string()));
                false
            }
        };
        if complete {
            if let Some(h) = halves.remove(id) {
                if let Some(request) = h.request {
                    ready.push(Paired {
                        id: id.to_string(),
                        model: h.model,
                        time: h.time,
                        request,
                        response: h.response,
                    });
                }
            }
        }
        ready
    }

    /// Halves waiting.
    pub fn pending(&self) -> usize {
        self.inner.lock().map(|g| g.0.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pairs_in_any_order_and_expires_lone_requests() {
        let s = EventPairing::new();
        let t = SystemTime::now();
        let now = Instant::now();
        assert!(s
            .add("a", Kind::Response, "m", t, Bytes::from_static(b"r"), now)
            .is_empty());
        let ready = s.add("a", Kind::Request, "m", t, Bytes::from_static(b"q"), now);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].response.as_deref(), Some(&b"r"[..]));
        assert!(s
            .add("b", Kind::Request, "m", t, Bytes::from_static(b"q"), now)
            .is_empty());
        assert!(s
            .add("c", Kind::Response, "m", t, Bytes::from_static(b"r"), now)
            .is_empty());
        tokio::time::advance(EVENT_TTL).await;
        let ready = s.add(
            "d",
            Kind::Request,
            "m",
            t,
            Bytes::from_static(b"q"),
            Instant::now(),
        );
        assert_eq!(ready.len(), 1, "b alone; the lone response c is dropped");
        assert_eq!(ready[0].id, "b");
        assert!(ready[0].response.is_none());
        assert_eq!(s.pending(), 1);
    }
}
