//! The pairing store of KServe inference-logger events (`POST /api/v1/events`): the
//! request and response halves of one exchange arrive separately, in any order, and wait
//! here for each other before the pair goes to the capture queue as one record.
//!
//! The store is bounded in count ([`MAX_PENDING_EVENTS`]) and in bytes (`events.max_bytes`,
//! 64 MiB: the oldest halves make room); halves expire after `events.ttl` on a timer
//! ([`expire_every`]) whether or not more events arrive. A request whose response never
//! came is analysed alone; a lone response is dropped and counted (issue 11, finding 5:
//! v1 held 30 lone 15 MiB responses, +474 MB, until another event arrived).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::time::Instant;

/// The CloudEvents type of a logged inference request.
pub const REQUEST_TYPE: &str = "org.kubeflow.serving.inference.request";
/// The CloudEvents type of a logged inference response.
pub const RESPONSE_TYPE: &str = "org.kubeflow.serving.inference.response";
/// Default `events.ttl`: how long a half waits for the other.
pub const EVENT_TTL: Duration = Duration::from_secs(60);
/// Halves waiting at most (the oldest are dropped past this).
pub const MAX_PENDING_EVENTS: usize = 10_000;
/// Default `events.max_bytes`: bytes of waiting halves at most (bodies and their keys).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
/// How often expired halves are swept out.
pub const EXPIRY_TICK: Duration = Duration::from_secs(1);
/// Bookkeeping bytes counted per waiting half besides its body and names.
const HALF_OVERHEAD: usize = 128;

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

impl Half {
    /// Bytes this entry holds, as counted against `events.max_bytes`.
    fn size(&self, id: &str) -> usize {
        HALF_OVERHEAD
            + id.len()
            + self.model.len()
            + self.request.as_ref().map_or(0, Bytes::len)
            + self.response.as_ref().map_or(0, Bytes::len)
    }
}

/// Waiting halves by `ce-id`, their arrival order, and the bytes they hold.
#[derive(Debug, Default)]
struct Halves {
    by_id: HashMap<String, Half>,
    order: VecDeque<(Instant, String)>,
    bytes: usize,
}

impl Halves {
    /// Removes the entry `id` if it is the one queued at `at`; a request is returned
    /// (to be analysed alone), a lone response is dropped and counted.
    fn evict(&mut self, at: Instant, id: String, ready: &mut Vec<Paired>, dropped: &AtomicU64) {
        if self.by_id.get(&id).is_none_or(|h| h.at != at) {
            return;
        }
        let Some(h) = self.by_id.remove(&id) else {
            return;
        };
        self.bytes = self.bytes.saturating_sub(h.size(&id));
        match h.request {
            Some(request) => ready.push(Paired {
                id,
                model: h.model,
                time: h.time,
                request,
                response: None,
            }),
            None => {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Evicts expired entries (and, while `room` asks for it, the oldest ones).
    fn sweep(
        &mut self,
        now: Instant,
        ttl: Duration,
        room: impl Fn(&Halves) -> bool,
        ready: &mut Vec<Paired>,
        dropped: &AtomicU64,
    ) {
        while let Some((at, _)) = self.order.front() {
            let expired = now.saturating_duration_since(*at) >= ttl;
            if !expired && room(self) {
                break;
            }
            let Some((at, id)) = self.order.pop_front() else {
                break;
            };
            self.evict(at, id, ready, dropped);
        }
    }
}

/// Halves of logged exchanges waiting for each other.
#[derive(Debug)]
pub struct EventPairing {
    inner: Mutex<Halves>,
    max_bytes: usize,
    ttl: Duration,
    /// Lone responses dropped (expired or evicted for room) since start.
    dropped: AtomicU64,
}

impl Default for EventPairing {
    fn default() -> Self {
        Self::with_max_bytes(DEFAULT_MAX_BYTES)
    }
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
    /// An empty store with the default bounds ([`DEFAULT_MAX_BYTES`], [`EVENT_TTL`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store holding at most `max_bytes` of waiting halves.
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        Self::with_limits(max_bytes, EVENT_TTL)
    }

    /// An empty store holding at most `max_bytes` of halves, each for at most `ttl`
    /// (`events.max_bytes`, `events.ttl`).
    pub fn with_limits(max_bytes: usize, ttl: Duration) -> Self {
        EventPairing {
            inner: Mutex::new(Halves::default()),
            max_bytes,
            ttl,
            dropped: AtomicU64::new(0),
        }
    }

    /// Takes the requests whose response did not come within [`EVENT_TTL`] (to be
    /// analysed alone) and drops expired lone responses. Run on a timer by
    /// [`expire_every`], so memory is returned even when no more events arrive.
    pub fn expire(&self, now: Instant) -> Vec<Paired> {
        let mut ready = Vec::new();
        if let Ok(mut g) = self.inner.lock() {
            g.sweep(now, self.ttl, |_| true, &mut ready, &self.dropped);
        }
        ready
    }

    /// Bytes held by waiting halves.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map(|g| g.bytes).unwrap_or(0)
    }

    /// Lone responses dropped since start (expired, or evicted to make room).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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
        let halves = &mut *guard;
        let mut ready = Vec::new();
        let incoming = HALF_OVERHEAD + id.len() + model.len() + body.len();
        if incoming > self.max_bytes {
            // Cannot wait within the bound: a request is analysed alone at once, a
            // response is dropped (with its request, if that was waiting).
            let mut ready = Vec::new();
            if let Some(h) = halves.by_id.get(id) {
                let at = h.at;
                halves.evict(at, id.to_string(), &mut ready, &self.dropped);
            }
            match kind {
                Kind::Request => ready.push(Paired {
                    id: id.to_string(),
                    model: model.to_string(),
                    time,
                    request: body,
                    response: None,
                }),
                Kind::Response => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            return ready;
        }
        // Expire, then make room (in count and in bytes) from the oldest.
        let max_bytes = self.max_bytes;
        halves.sweep(
            now,
            self.ttl,
            |h| h.by_id.len() < MAX_PENDING_EVENTS && h.bytes + incoming <= max_bytes,
            &mut ready,
            &self.dropped,
        );
        let complete = match halves.by_id.get_mut(id) {
            Some(h) => {
                let before = h.size(id);
                match kind {
                    Kind::Request => {
                        h.request = Some(body);
                        h.time = time;
                        h.model = model.to_string();
                    }
                    Kind::Response => h.response = Some(body),
                }
                let after = h.size(id);
                let complete = h.request.is_some() && h.response.is_some();
                halves.bytes = (halves.bytes + after).saturating_sub(before);
                complete
            }
            None => {
                let (request, response) = match kind {
                    Kind::Request => (Some(body), None),
                    Kind::Response => (None, Some(body)),
                };
                let half = Half {
                    at: now,
                    model: model.to_string(),
                    time,
                    request,
                    response,
                };
                halves.bytes += half.size(id);
                halves.by_id.insert(id.to_string(), half);
                halves.order.push_back((now, id.to_string()));
                false
            }
        };
        if complete {
            if let Some(h) = halves.by_id.remove(id) {
                halves.bytes = halves.bytes.saturating_sub(h.size(id));
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
        self.inner.lock().map(|g| g.by_id.len()).unwrap_or(0)
    }
}

/// Sweeps `store` every `every` until `shutdown`, handing expired requests to `analyse`
/// (inputs only) and counting dropped lone responses in `dropped`.
pub async fn expire_every(
    store: Arc<EventPairing>,
    every: Duration,
    analyse: impl Fn(Paired),
    dropped: impl Fn(u64),
    mut shutdown: crate::shutdown::Shutdown,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = store.dropped();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => break,
        }
        for p in store.expire(Instant::now()) {
            analyse(p);
        }
        let now = store.dropped();
        if now > reported {
            dropped(now - reported);
            reported = now;
        }
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

    #[tokio::test(start_paused = true)]
    async fn the_store_is_bounded_in_bytes() {
        // The v1 finding: 30 lone 15 MiB responses held 474 MB. Scaled down: 30 lone
        // 1 MiB responses in a 4 MiB store.
        let s = EventPairing::with_max_bytes(4 << 20);
        let t = SystemTime::now();
        let mib = Bytes::from(vec![b'r'; 1 << 20]);
        for i in 0..30 {
            s.add(
                &format!("r{i}"),
                Kind::Response,
                "m",
                t,
                mib.clone(),
                Instant::now(),
            );
            assert!(s.bytes() <= 4 << 20, "{} bytes held", s.bytes());
        }
        assert_eq!(s.pending(), 3);
        assert_eq!(s.dropped(), 27);
        // The newest are kept: a request for r29 still pairs.
        let ready = s.add(
            "r29",
            Kind::Request,
            "m",
            t,
            Bytes::from_static(b"q"),
            Instant::now(),
        );
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].response.as_ref().map(Bytes::len), Some(1 << 20));
        // A request evicted to make room is analysed alone, not lost.
        let s = EventPairing::with_max_bytes(3 << 20);
        s.add("q0", Kind::Request, "m", t, mib.clone(), Instant::now());
        s.add("q1", Kind::Request, "m", t, mib.clone(), Instant::now());
        let ready = s.add("q2", Kind::Request, "m", t, mib.clone(), Instant::now());
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].id, "q0");
        assert!(ready[0].response.is_none());
        // A body larger than the whole store never waits.
        let big = Bytes::from(vec![b'x'; 4 << 20]);
        let ready = s.add("big", Kind::Request, "m", t, big.clone(), Instant::now());
        assert_eq!(ready.len(), 1);
        assert!(s
            .add("big2", Kind::Response, "m", t, big, Instant::now())
            .is_empty());
        assert!(s.bytes() <= 3 << 20);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_halves_leave_on_the_timer_without_new_events() {
        let s = Arc::new(EventPairing::with_max_bytes(1 << 20));
        let t = SystemTime::now();
        s.add(
            "a",
            Kind::Request,
            "m",
            t,
            Bytes::from_static(b"q"),
            Instant::now(),
        );
        s.add(
            "b",
            Kind::Response,
            "m",
            t,
            Bytes::from_static(b"r"),
            Instant::now(),
        );
        let analysed = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicU64::new(0));
        let (trigger, shutdown) = crate::shutdown::channel();
        let (a, d) = (analysed.clone(), dropped.clone());
        let task = tokio::spawn(expire_every(
            s.clone(),
            EXPIRY_TICK,
            move |p: Paired| a.lock().unwrap().push(p.id),
            move |n| {
                d.fetch_add(n, Ordering::Relaxed);
            },
            shutdown,
        ));
        tokio::time::sleep(EVENT_TTL / 2).await;
        assert_eq!(s.pending(), 2);
        tokio::time::sleep(EVENT_TTL / 2 + EXPIRY_TICK * 2).await;
        assert_eq!(s.pending(), 0, "expired halves still held");
        assert_eq!(s.bytes(), 0);
        assert_eq!(*analysed.lock().unwrap(), vec!["a".to_string()]);
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        trigger.fire();
        task.await.unwrap();
    }
}
