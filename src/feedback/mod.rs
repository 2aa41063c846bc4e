//! Joining ground truth to predictions (SPEC section 7, `POST /api/v1/feedback/{model}`).
//!
//! Every analysed prediction waits in a per-model [`FeedbackStore`] under its request id
//! (the proxy's `x-request-id`, the ingestion API's `request_id`, KServe's `ce-id`) and its
//! row within the batch, for `feedback.ttl`. Ground truth that arrives for a waiting row is
//! *matched* and handed to the performance window. The store is bounded:
//!
//! - at most `feedback.max_pending` prediction rows wait; past that the oldest requests are
//!   evicted (and treated as expired);
//! - ids whose predictions expired (TTL or eviction) are remembered in a bounded FIFO set of
//!   [`MAX_EXPIRED_IDS`] ids, so that ground truth arriving for them counts as *late* rather
//!   than *unmatched*; once an id falls out of that set its feedback is *unmatched*;
//! - ground truth for an id not seen yet is held in a small early buffer
//!   ([`MAX_EARLY`] rows, for [`EARLY_GRACE`]): the proxy answers the client before the
//!   capture pipeline has analysed the exchange, so a fast client can send ground truth
//!   first. When the prediction arrives within the grace the pair is matched; otherwise the
//!   feedback is counted *unmatched*.
//!
//! A waiting row is matched at most once: later ground truth for the same (id, row) is a
//! *duplicate* (counted unmatched; the first value stands). Matched rows keep waiting until
//! their TTL so that duplicates are recognised. A prediction that reuses a request id still
//! waiting replaces the older one.
//!
//! Time comes from tokio's clock, so tests drive the TTL with paused time.
//!
//! Memory: only what the join needs is kept per waiting row (the predicted value, the class
//! scores, whether it matched) and, per request, a 128-bit digest of its id rather than the
//! id itself (keyed SipHash with per-store random keys, so ids cannot be crafted to collide).
//! The layout is columns in arrival order, no allocation per request or row:
//!
//! - `requests`, a ring of 24-byte records (digest, arrival as `u32` time units, first row);
//!   a request's rows run to the next one's first row;
//! - `slots`, a ring of 12-byte rows: the predicted value as one `u64` (a number's own bits,
//!   or the index of a label kept once per store, `labels.rs`; a spent code once matched)
//!   and where its scores start in `scores`, a ring of `f64`;
//! - `ids`, an index (`index.rs`) from the digest to the request's sequence number in the
//!   ring: a `hashbrown::HashTable` of 8-byte entries (32 bits of the digest beside the
//!   position) and its control byte, at most 7/8 full (11.8 bytes an entry at 100 000).
//!
//! A request replaced by a reuse of its id stays in the rings as a tombstone (its id no
//! longer points at it) that expiry and eviction skip; `max_pending` counts waiting rows
//! only, and past `max_pending` × 1.25 rows in the ring the tombstones are compacted away.
//! The rings grow by doubling but stop at what `max_pending` rows need. Heap per waiting row
//! with two class scores ([`FeedbackStore::heap_bytes`], test
//! `a_waiting_row_costs_what_the_docs_state`): 64 bytes in single-row requests, 33 bytes
//! in 8-row batches (were 164 and 63 with a `HashMap` of 64-byte entries and an expiry
//! queue per request, and a 32-byte `FeatureValue` per row). Expired ids remembered to tell
//! late feedback ([`MAX_EXPIRED_IDS`]) are kept as the first 64 bits of their digest in a
//! ring with the same kind of index: 20 bytes each (2.0 MB per model when all 100 000 are
//! remembered; were 21 bytes with a `HashSet`).
//!
//! Times are `u32` units after a base (milliseconds; coarser only for a TTL past 2³⁰ ms,
//! 12.4 days, so that a TTL is at most 2³⁰ units); when the newest time no longer fits,
//! the base moves up to 2³¹ units behind it (every 24.8 days at 1 ms) and older times are
//! clamped to it, still past their TTL.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::ops::Range;
use std::time::Duration;

use tokio::time::Instant;

use crate::record::{FeatureValue, Prediction};

mod index;
mod labels;

use index::Index;
use labels::{Labels, SPENT};

/// How long ground truth may wait for its prediction to be analysed.
pub const EARLY_GRACE: Duration = Duration::from_secs(60);
/// Ground-truth rows waiting for their prediction, at most (per model).
pub const MAX_EARLY: usize = 10_000;
/// Expired request ids remembered to tell late feedback from unknown ids (per model).
pub const MAX_EXPIRED_IDS: usize = 100_000;

/// What became of one ground-truth record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Joined to its prediction.
    Matched(MatchedPair),
    /// The row was matched already; the first ground truth stands.
    Duplicate,
    /// No prediction with this id (and row) is known, or the early buffer is full.
    Unknown,
    /// The prediction expired (TTL or eviction) before the ground truth arrived.
    Late,
    /// No prediction yet: held until it is analysed (within [`EARLY_GRACE`]).
    Early,
}

impl Outcome {
    /// The `mlmon_feedback_total{result}` value, or `None` while the outcome is pending.
    pub fn result(&self) -> Option<&'static str> {
        match self {
            Outcome::Matched(_) => Some("matched"),
            Outcome::Duplicate | Outcome::Unknown => Some("unmatched"),
            Outcome::Late => Some("late"),
            Outcome::Early => None,
        }
    }

    /// A short name for API answers.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Matched(_) => "matched",
            Outcome::Duplicate => "duplicate",
            Outcome::Unknown => "unknown",
            Outcome::Late => "late",
            Outcome::Early => "pending",
        }
    }
}

/// A prediction joined to its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedPair {
    /// What the model predicted.
    pub predicted: FeatureValue,
    /// The class scores the model returned with it (what the realized ROC AUC needs).
    pub scores: Option<Vec<f64>>,
    /// The ground truth.
    pub actual: FeatureValue,
}

/// What expiry removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Prediction rows whose TTL ran out without ground truth.
    pub predictions: usize,
    /// Early ground-truth rows whose prediction never came (now unmatched).
    pub early_feedback: usize,
}

/// Rows waiting at most, whatever `feedback.max_pending` says: positions in the rings are
/// `u32` sequence numbers, which must stay far from wrapping onto each other.
const MAX_ROWS: usize = 1 << 30;

/// Class scores held at most (all waiting rows together), for the same reason; scores past
/// it are not kept (never reached: a thousand scores for each of a million rows).
const MAX_SCORES: usize = 1 << 31;

/// A TTL is counted in at most this many time units (milliseconds, or coarser past 12
/// days), so that a request's arrival fits a `u32` with room to rebase.
const MAX_TTL_UNITS: u128 = 1 << 30;

/// How far behind the newest time a rebase puts the base: twice the longest TTL, so a
/// request clamped to the base is still past its TTL.
const REBASE_LAG: u64 = 1 << 31;

/// One request, in arrival order in [`FeedbackStore::requests`] (24 bytes). A request
/// whose id was reused while it waited stays in the ring as a tombstone (its id no longer
/// points at it) until it reaches the front or the ring is compacted.
#[derive(Debug, Clone, Copy)]
struct Request {
    /// The id's digest ([`Key`] as two halves).
    key: Key64,
    /// Arrival, in time units after [`FeedbackStore::base`].
    at: u32,
    /// Sequence number of its first row in [`FeedbackStore::slots`]; its rows run to the
    /// next request's first (or the end).
    first: u32,
}

/// One waiting row (12 bytes).
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The predicted value as [`Labels::encode`] codes it, as two halves (4-byte
    /// alignment); [`SPENT`] once matched, or when its request was replaced.
    value: [u32; 2],
    /// Sequence number of its first class score in [`FeedbackStore::scores`]; its scores
    /// run to the next row's first (or the end). None when they are the same.
    scores_at: u32,
}

impl Slot {
    fn code(&self) -> u64 {
        (u64::from(self.value[0]) << 32) | u64::from(self.value[1])
    }

    fn halves(code: u64) -> [u32; 2] {
        [(code >> 32) as u32, code as u32]
    }
}

/// A request id as the store keeps it: a 128-bit keyed digest (see the module docs).
type Key = u128;

/// A [`Key`] as two halves (8-byte alignment).
type Key64 = [u64; 2];

fn split(k: Key) -> Key64 {
    [(k >> 64) as u64, k as u64]
}

fn join(k: Key64) -> Key {
    (u128::from(k[0]) << 64) | u128::from(k[1])
}

/// The ring index of sequence number `seq` in a ring whose front is `front`.
fn index_of(seq: u32, front: u32) -> usize {
    seq.wrapping_sub(front) as usize
}

/// The sequence number of ring index `i` (rings hold fewer than 2³¹ entries).
fn seq(front: u32, i: usize) -> u32 {
    front.wrapping_add(i as u32)
}

/// The run of `i` in a ring whose entries start where `start_of` says and end where the
/// next one starts (or at `len`), clamped to `0..len`.
fn run(start: usize, next: Option<usize>, len: usize) -> Range<usize> {
    let end = next.unwrap_or(len).min(len);
    start.min(end)..end
}

/// The run of entry `i` of `ring` in the column it indexes (`len` long): from its start,
/// as `start` reads it, to the next entry's start; empty past the ring's end.
fn run_of<T>(
    ring: &VecDeque<T>,
    i: usize,
    start: impl Fn(&T) -> usize,
    len: usize,
) -> Range<usize> {
    match ring.get(i) {
        Some(e) => run(start(e), ring.get(i + 1).map(&start), len),
        None => 0..0,
    }
}

/// Makes room for `need` more entries in `v`: doubling, but not past `soft` while that is
/// enough (the store's bound: no spare half-ring at `max_pending`), then not past `hard`.
fn reserve<T>(v: &mut VecDeque<T>, need: usize, soft: usize, hard: usize) {
    let want = v.len() + need;
    if want <= v.capacity() {
        return;
    }
    let double = v.capacity().saturating_mul(2).max(4);
    let target = if want <= soft {
        double.min(soft)
    } else {
        double.min(hard)
    };
    v.reserve_exact(target.max(want) - v.len());
}

/// Waiting predictions of one model.
pub struct FeedbackStore {
    max_pending: usize,
    /// The two keyed hashes of a [`Key`].
    keys: (RandomState, RandomState),
    /// Time of the first call: times are counted in `unit_ms` after it.
    epoch: Option<Instant>,
    /// Milliseconds per time unit: 1 unless the TTL is longer than 2³⁰ ms (12.4 days).
    unit_ms: u64,
    /// The TTL in time units.
    ttl_units: u64,
    /// The time (units after the epoch) a request's `at` counts from.
    base: u64,
    /// Requests in arrival order, tombstones of replaced ones included.
    requests: VecDeque<Request>,
    /// Sequence number of `requests.front()`.
    first_request: u32,
    /// Waiting requests' sequence numbers by their id (tagged by the digest's first half).
    ids: Index,
    /// The rows of `requests`, in the same order.
    slots: VecDeque<Slot>,
    /// Sequence number of `slots.front()`.
    first_slot: u32,
    /// The class scores of `slots`, in the same order.
    scores: VecDeque<f64>,
    /// Sequence number of `scores.front()`.
    first_score: u32,
    /// Predicted labels, once per store.
    labels: Labels,
    /// Rows of waiting requests (matched or not).
    rows: usize,
    /// Rows of tombstones still in the ring.
    dead_rows: usize,
    /// Expired ids by the first 64 bits of their key, oldest first (a chance collision
    /// among the 100 000 remembered ids is about 3·10⁻¹⁰: it would count unknown feedback
    /// as late). An id that got a new prediction stays in the ring but leaves `expired`.
    expired_ids: VecDeque<u64>,
    /// Sequence number of `expired_ids.front()`.
    first_expired: u32,
    /// Remembered expired ids' sequence numbers by their value.
    expired: Index,
    early: HashMap<(Key, usize), (Instant, FeatureValue)>,
    early_order: VecDeque<(Instant, Key, usize)>,
}

impl std::fmt::Debug for FeedbackStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackStore")
            .field("pending_rows", &self.rows)
            .field("early", &self.early.len())
            .finish_non_exhaustive()
    }
}

impl FeedbackStore {
    /// A store keeping predictions `ttl` long, at most `max_pending` rows (at most 2³⁰).
    pub fn new(ttl: Duration, max_pending: usize) -> Self {
        let max_pending = max_pending.clamp(1, MAX_ROWS);
        let ttl_ms = ttl.as_millis();
        let unit_ms = ttl_ms.div_ceil(MAX_TTL_UNITS).max(1);
        FeedbackStore {
            max_pending,
            keys: (RandomState::new(), RandomState::new()),
            epoch: None,
            unit_ms: u64::try_from(unit_ms).unwrap_or(u64::MAX),
            ttl_units: u64::try_from(ttl_ms.div_ceil(unit_ms)).unwrap_or(u64::MAX),
            base: 0,
            requests: VecDeque::new(),
            first_request: 0,
            ids: Index::new(),
            slots: VecDeque::new(),
            first_slot: 0,
            scores: VecDeque::new(),
            first_score: 0,
            labels: Labels::new(),
            rows: 0,
            dead_rows: 0,
            expired_ids: VecDeque::new(),
            first_expired: 0,
            expired: Index::new(),
            early: HashMap::new(),
            early_order: VecDeque::new(),
        }
    }

    /// `now` in time units after the epoch (set by the first call).
    fn now_units(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        let ms =
            u64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX);
        ms / self.unit_ms
    }

    /// `now_units` as a request's `at`, rebasing when it no longer fits a `u32`.
    fn stamp(&mut self, now_units: u64) -> u32 {
        if let Ok(at) = u32::try_from(now_units.saturating_sub(self.base)) {
            return at;
        }
        // Every 2³¹ units (24.8 days at 1 ms): the oldest times move up to the new base,
        // which is twice the TTL back, so what was past its TTL still is.
        let base = now_units.saturating_sub(REBASE_LAG);
        let shift = base.saturating_sub(self.base);
        for r in &mut self.requests {
            r.at = u32::try_from(u64::from(r.at).saturating_sub(shift)).unwrap_or(u32::MAX);
        }
        self.base = base;
        u32::try_from(REBASE_LAG).unwrap_or(u32::MAX)
    }

    /// Time units since `at`.
    fn age(&self, now_units: u64, at: u32) -> u64 {
        now_units.saturating_sub(self.base + u64::from(at))
    }

    fn key(&self, id: &str) -> Key {
        let high = self.keys.0.hash_one(id) as u128;
        let low = self.keys.1.hash_one(id) as u128;
        (high << 64) | low
    }

    /// The ring index of the waiting request with this key.
    fn find(&self, key: Key64) -> Option<usize> {
        let (requests, front) = (&self.requests, self.first_request);
        self.ids
            .find(Index::tag(key[0]), |s| {
                requests
                    .get(index_of(s, front))
                    .is_some_and(|r| r.key == key)
            })
            .map(|s| index_of(s, front))
    }

    /// Whether the request at ring index `i` waits (is not a tombstone).
    fn is_live(&self, i: usize) -> bool {
        self.requests.get(i).is_some_and(|r| {
            self.ids
                .contains(Index::tag(r.key[0]), seq(self.first_request, i))
        })
    }

    /// The slot indices of the request at ring index `i`.
    fn rows_of(&self, i: usize) -> Range<usize> {
        let at = |r: &Request| index_of(r.first, self.first_slot);
        run_of(&self.requests, i, at, self.slots.len())
    }

    /// The score indices of the slot at index `i`.
    fn scores_of(&self, i: usize) -> Range<usize> {
        let at = |s: &Slot| index_of(s.scores_at, self.first_score);
        run_of(&self.slots, i, at, self.scores.len())
    }

    /// Rows the ring holds at most, tombstones included: past it, it is compacted.
    fn ring_limit(&self) -> usize {
        self.max_pending + self.max_pending / 4 + 1
    }

    /// Prediction rows waiting (matched or not).
    pub fn pending_rows(&self) -> usize {
        self.rows
    }

    /// Requests waiting for ground truth, replaced ones not yet compacted away included
    /// (so never fewer than the requests a feedback can still match).
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// Ground-truth rows waiting for their prediction.
    pub fn early_rows(&self) -> usize {
        self.early.len()
    }

    /// Heap bytes this store holds (capacities, the text of labels included; the
    /// allocator's own per-allocation overhead is not), for the per-row cost stated in
    /// docs/performance.md.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let text = |v: &FeatureValue| match v {
            FeatureValue::Text(t) => t.capacity(),
            _ => 0,
        };
        let early: usize = self.early.values().map(|(_, v)| text(v)).sum();
        self.requests.capacity() * size_of::<Request>()
            + self.ids.heap_bytes()
            + self.slots.capacity() * size_of::<Slot>()
            + self.scores.capacity() * size_of::<f64>()
            + self.labels.heap_bytes()
            + self.expired_ids.capacity() * size_of::<u64>()
            + self.expired.heap_bytes()
            + self.early.capacity() * (size_of::<((Key, usize), (Instant, FeatureValue))>() + 1)
            + early
            + self.early_order.capacity() * size_of::<(Instant, Key, usize)>()
    }

    /// Drops what is past its time; returns what expired.
    pub fn expire(&mut self, now: Instant) -> Expired {
        let mut out = Expired::default();
        let now_units = self.now_units(now);
        while let Some(r) = self.requests.front() {
            if self.age(now_units, r.at) < self.ttl_units && self.is_live(0) {
                break;
            }
            if let Some(Some(unmatched)) = self.pop_front() {
                out.predictions += unmatched;
            }
        }
        while let Some((at, _, _)) = self.early_order.front() {
            if now.saturating_duration_since(*at) < EARLY_GRACE {
                break;
            }
            if let Some((at, id, row)) = self.early_order.pop_front() {
                let key = (id, row);
                if self.early.get(&key).is_some_and(|(t, _)| *t == at) {
                    self.early.remove(&key);
                    out.early_feedback += 1;
                }
            }
        }
        out
    }

    /// Removes the oldest request from the ring: `None` when there is none,
    /// `Some(None)` for a tombstone, else the number of its rows that never matched (it is
    /// remembered as expired).
    fn pop_front(&mut self) -> Option<Option<usize>> {
        let live = self.is_live(0);
        let rows = self.rows_of(0);
        let request = self.requests.pop_front()?;
        let sequence = self.first_request;
        self.first_request = sequence.wrapping_add(1);
        let mut unmatched = 0;
        // The front request's rows start the ring (`rows.start` is 0).
        for s in self.slots.drain(..rows.end) {
            let code = s.code();
            if code != SPENT {
                unmatched += 1;
                self.labels.release(code);
            }
        }
        self.first_slot = seq(self.first_slot, rows.end);
        let scores = self
            .slots
            .front()
            .map_or(self.scores.len(), |s| {
                index_of(s.scores_at, self.first_score)
            })
            .min(self.scores.len());
        self.scores.drain(..scores);
        self.first_score = seq(self.first_score, scores);
        if !live {
            self.dead_rows = self.dead_rows.saturating_sub(rows.end);
            return Some(None);
        }
        self.ids.remove(Index::tag(request.key[0]), sequence);
        self.rows = self.rows.saturating_sub(rows.end);
        self.remember_expired(request.key[0]);
        Some(Some(unmatched))
    }

    /// Turns the request at ring index `i` into a tombstone (its id was reused).
    fn bury(&mut self, i: usize) {
        let Some(r) = self.requests.get(i) else {
            return;
        };
        self.ids
            .remove(Index::tag(r.key[0]), seq(self.first_request, i));
        let rows = self.rows_of(i);
        for s in self.slots.range_mut(rows.clone()) {
            self.labels.release(s.code());
            s.value = Slot::halves(SPENT);
        }
        self.rows = self.rows.saturating_sub(rows.len());
        self.dead_rows += rows.len();
    }

    /// Drops the tombstones from the ring, moving the waiting requests, their rows and
    /// scores forward in place (the sequence numbers of the fronts stay).
    fn compact(&mut self) {
        let (mut to_request, mut to_slot, mut to_score) = (0, 0, 0);
        for i in 0..self.requests.len() {
            let Some(r) = self.requests.get(i).copied() else {
                break;
            };
            // Read before anything at or after `i` is overwritten (writes lag the reads).
            let rows = self.rows_of(i);
            let (tag, from) = (Index::tag(r.key[0]), seq(self.first_request, i));
            if !self.ids.contains(tag, from) {
                continue;
            }
            let first = seq(self.first_slot, to_slot);
            for s in rows {
                let scores = self.scores_of(s);
                let Some(mut slot) = self.slots.get(s).copied() else {
                    break;
                };
                slot.scores_at = seq(self.first_score, to_score);
                for c in scores {
                    if let Some(x) = self.scores.get(c).copied() {
                        if let Some(y) = self.scores.get_mut(to_score) {
                            *y = x;
                        }
                        to_score += 1;
                    }
                }
                if let Some(y) = self.slots.get_mut(to_slot) {
                    *y = slot;
                }
                to_slot += 1;
            }
            let to = seq(self.first_request, to_request);
            if to != from {
                self.ids.repoint(tag, from, to);
            }
            if let Some(y) = self.requests.get_mut(to_request) {
                *y = Request { first, ..r };
            }
            to_request += 1;
        }
        self.requests.truncate(to_request);
        self.slots.truncate(to_slot);
        self.scores.truncate(to_score);
        self.dead_rows = 0;
    }

    /// The position of an expired id in `expired_ids`.
    fn find_expired(&self, short: u64) -> Option<u32> {
        let (ids, front) = (&self.expired_ids, self.first_expired);
        self.expired.find(Index::tag(short), |s| {
            ids.get(index_of(s, front)) == Some(&short)
        })
    }

    fn remember_expired(&mut self, short: u64) {
        if self.find_expired(short).is_some() {
            return;
        }
        if self.expired_ids.len() >= MAX_EXPIRED_IDS {
            if let Some(old) = self.expired_ids.pop_front() {
                // A no-op when that id got a new prediction since.
                self.expired.remove(Index::tag(old), self.first_expired);
                self.first_expired = self.first_expired.wrapping_add(1);
            }
        }
        reserve(&mut self.expired_ids, 1, MAX_EXPIRED_IDS, MAX_EXPIRED_IDS);
        let position = seq(self.first_expired, self.expired_ids.len());
        self.expired_ids.push_back(short);
        self.expired.insert(Index::tag(short), position);
    }

    fn forget_expired(&mut self, short: u64) {
        if let Some(position) = self.find_expired(short) {
            self.expired.remove(Index::tag(short), position);
        }
    }

    /// Stores the predictions of one request (row `i` is `predicted[i]`) and returns the
    /// pairs completed by ground truth that arrived early, with their rows.
    pub fn insert(
        &mut self,
        id: &str,
        predicted: Vec<FeatureValue>,
        now: Instant,
    ) -> Vec<(usize, MatchedPair)> {
        self.insert_scored(id, predicted.into_iter().map(|p| (p, None)).collect(), now)
    }

    /// [`FeedbackStore::insert`] with each row's class scores, kept until the row is matched
    /// so that the realized ROC AUC can be computed.
    pub fn insert_scored(
        &mut self,
        id: &str,
        predicted: Vec<(FeatureValue, Option<Vec<f64>>)>,
        now: Instant,
    ) -> Vec<(usize, MatchedPair)> {
        self.insert_rows(id, &predicted, |(p, s)| (p, s.as_deref()), now)
    }

    /// [`FeedbackStore::insert_scored`] straight from the parsed predictions of a request:
    /// row `i` is `predictions[i]`, its class scores kept when there are 1 to `max_scores`
    /// of them. Spares the analysis thread a vector of copied values and one copied score
    /// vector per row (issue 13).
    pub fn insert_predictions(
        &mut self,
        id: &str,
        predictions: &[Prediction],
        max_scores: usize,
        now: Instant,
    ) -> Vec<(usize, MatchedPair)> {
        self.insert_rows(
            id,
            predictions,
            |p| {
                let scores = p
                    .probabilities
                    .as_deref()
                    .filter(|s| !s.is_empty() && s.len() <= max_scores);
                (&p.value, scores)
            },
            now,
        )
    }

    /// Stores the rows `items` of request `id`, each read by `row` as its predicted value
    /// and class scores.
    fn insert_rows<T>(
        &mut self,
        id: &str,
        items: &[T],
        row: impl Fn(&T) -> (&FeatureValue, Option<&[f64]>),
        now: Instant,
    ) -> Vec<(usize, MatchedPair)> {
        let predicted = items.get(..self.max_pending).unwrap_or(items);
        if predicted.is_empty() {
            return Vec::new();
        }
        let n = predicted.len();
        let key = split(self.key(id));
        if let Some(i) = self.find(key) {
            self.bury(i);
        }
        self.forget_expired(key[0]);
        // Evict the oldest requests until the new rows fit.
        while self.rows + n > self.max_pending {
            if self.pop_front().is_none() {
                break;
            }
        }
        while !self.requests.is_empty() && !self.is_live(0) {
            self.pop_front();
        }
        if self.dead_rows > 0 && self.slots.len() + n > self.ring_limit() {
            self.compact();
        }
        let now_units = self.now_units(now);
        let at = self.stamp(now_units);
        let (soft, hard) = (self.max_pending, self.ring_limit());
        reserve(&mut self.requests, 1, soft, hard);
        reserve(&mut self.slots, n, soft, hard);
        // The scores column stops where `max_pending` rows at its current scores per row
        // would.
        let scores_soft = (self.scores.len() as u128 * self.max_pending as u128)
            .checked_div(self.slots.len() as u128)
            .map_or(0, |s| usize::try_from(s).unwrap_or(usize::MAX));
        let first = seq(self.first_slot, self.slots.len());
        let mut matched = Vec::new();
        for (i, t) in predicted.iter().enumerate() {
            let (p, scores) = row(t);
            // Scores beyond a row's `u16` count (never at the performance engine's
            // MAX_CLASSES) are not kept; no scores are none.
            let scores = scores.filter(|s| !s.is_empty() && s.len() <= usize::from(u16::MAX));
            let scores_at = seq(self.first_score, self.scores.len());
            let early = if self.early.is_empty() {
                None
            } else {
                self.early.remove(&(join(key), i))
            };
            let code = match early {
                Some((_, actual)) => {
                    matched.push((
                        i,
                        MatchedPair {
                            predicted: p.clone(),
                            scores: scores.map(<[f64]>::to_vec),
                            actual,
                        },
                    ));
                    SPENT
                }
                None => {
                    if let Some(s) = scores.filter(|s| self.scores.len() + s.len() <= MAX_SCORES) {
                        reserve(&mut self.scores, s.len(), scores_soft, usize::MAX);
                        self.scores.extend(s.iter().copied());
                    }
                    self.labels.encode(p)
                }
            };
            self.slots.push_back(Slot {
                value: Slot::halves(code),
                scores_at,
            });
        }
        self.rows += n;
        let position = seq(self.first_request, self.requests.len());
        self.requests.push_back(Request { key, at, first });
        self.ids.insert(Index::tag(key[0]), position);
        matched
    }

    /// Joins one ground-truth value to row `row` of request `id`.
    pub fn feedback(
        &mut self,
        id: &str,
        row: usize,
        actual: FeatureValue,
        now: Instant,
    ) -> Outcome {
        let key = split(self.key(id));
        let now_units = self.now_units(now);
        if let Some(i) = self.find(key) {
            // Past the TTL but not yet swept: late, like a swept one.
            if self
                .requests
                .get(i)
                .is_none_or(|r| self.age(now_units, r.at) >= self.ttl_units)
            {
                return Outcome::Late;
            }
            let rows = self.rows_of(i);
            if row >= rows.len() {
                return Outcome::Unknown;
            }
            let s = rows.start + row;
            let Some(code) = self.slots.get(s).map(Slot::code) else {
                return Outcome::Unknown;
            };
            if code == SPENT {
                return Outcome::Duplicate;
            }
            let Some(predicted) = self.labels.decode(code) else {
                return Outcome::Unknown;
            };
            let scores = self.scores_of(s);
            let scores = (!scores.is_empty()).then(|| self.scores.range(scores).copied().collect());
            self.labels.release(code);
            if let Some(slot) = self.slots.get_mut(s) {
                slot.value = Slot::halves(SPENT);
            }
            return Outcome::Matched(MatchedPair {
                predicted,
                scores,
                actual,
            });
        }
        if self.find_expired(key[0]).is_some() {
            return Outcome::Late;
        }
        let key = (join(key), row);
        if self.early.contains_key(&key) {
            return Outcome::Duplicate;
        }
        if self.early.len() >= MAX_EARLY {
            return Outcome::Unknown;
        }
        self.early.insert(key, (now, actual));
        self.early_order.push_back((now, key.0, row));
        Outcome::Early
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: f64) -> FeatureValue {
        FeatureValue::Number(v)
    }

    #[tokio::test(start_paused = true)]
    async fn match_duplicate_unknown_late() {
        let mut s = FeedbackStore::new(Duration::from_secs(10), 100);
        let t0 = Instant::now();
        assert!(s.insert("a", vec![n(1.0), n(0.0)], t0).is_empty());
        assert_eq!(
            s.feedback("a", 1, n(1.0), t0),
            Outcome::Matched(MatchedPair {
                predicted: n(0.0),
                scores: None,
                actual: n(1.0)
            })
        );
        assert_eq!(s.feedback("a", 1, n(0.0), t0), Outcome::Duplicate);
        assert_eq!(s.feedback("a", 7, n(0.0), t0), Outcome::Unknown);
        tokio::time::advance(Duration::from_secs(11)).await;
        let now = Instant::now();
        assert_eq!(
            s.feedback("a", 0, n(1.0), now),
            Outcome::Late,
            "before the sweep"
        );
        let e = s.expire(now);
        assert_eq!(e.predictions, 1, "row 0 expired unmatched");
        assert_eq!(s.pending_rows(), 0);
        assert_eq!(
            s.feedback("a", 0, n(1.0), now),
            Outcome::Late,
            "after the sweep"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn early_feedback_waits_for_its_prediction() {
        let mut s = FeedbackStore::new(Duration::from_secs(100), 100);
        let t0 = Instant::now();
        assert_eq!(s.feedback("b", 0, n(3.0), t0), Outcome::Early);
        assert_eq!(s.feedback("b", 0, n(4.0), t0), Outcome::Duplicate);
        assert_eq!(s.feedback("c", 0, n(3.0), t0), Outcome::Early);
        let m = s.insert("b", vec![n(2.0)], t0);
        assert_eq!(
            m,
            vec![(
                0,
                MatchedPair {
                    predicted: n(2.0),
                    scores: None,
                    actual: n(3.0)
                }
            )]
        );
        assert_eq!(s.early_rows(), 1);
        tokio::time::advance(EARLY_GRACE).await;
        assert_eq!(s.expire(Instant::now()).early_feedback, 1, "c never came");
        assert!(s.insert("c", vec![n(1.0)], Instant::now()).is_empty());
    }

    /// Heap bytes per waiting row with `max_pending` rows waiting in requests of `rows`
    /// rows, each with a numeric prediction and two class scores.
    fn bytes_per_row(rows: usize) -> f64 {
        let max_pending = 100_000;
        let mut s = FeedbackStore::new(Duration::from_secs(3600), max_pending);
        let t = Instant::now();
        for i in 0..max_pending / rows {
            let predicted = (0..rows)
                .map(|r| (n((r % 2) as f64), Some(vec![0.25, 0.75])))
                .collect();
            s.insert_scored(&format!("request-{i}"), predicted, t);
        }
        assert_eq!(s.pending_rows(), max_pending);
        s.heap_bytes() as f64 / max_pending as f64
    }

    #[test]
    fn a_waiting_row_costs_what_the_docs_state() {
        // docs/performance.md ("Memory"): single-row requests and the 8-row batches of
        // the bench's OIP workload, two class scores per row.
        let (one, eight) = (bytes_per_row(1), bytes_per_row(8));
        eprintln!(
            "feedback store: {one:.1} B per waiting row (1-row requests), {eight:.1} B (8-row)"
        );
        assert!(one <= 64.0, "{one} B per row, 1-row requests");
        assert!(eight <= 34.0, "{eight} B per row, 8-row requests");
    }

    #[test]
    fn an_expired_id_costs_what_the_docs_state() {
        // Every insert evicts the previous request, whose id is remembered as expired.
        let mut s = FeedbackStore::new(Duration::from_secs(3600), 1);
        let t = Instant::now();
        for i in 0..=MAX_EXPIRED_IDS + 1 {
            s.insert(&format!("request-{i}"), vec![n(1.0)], t);
        }
        assert_eq!(
            s.feedback("request-0", 0, n(1.0), t),
            Outcome::Early,
            "forgotten"
        );
        assert_eq!(s.feedback("request-1", 0, n(1.0), t), Outcome::Late);
        let per_id = s.heap_bytes() as f64 / MAX_EXPIRED_IDS as f64;
        eprintln!("feedback store: {per_id:.1} B per expired id");
        assert!(per_id <= 20.0, "{per_id} B per expired id");
    }

    #[tokio::test(start_paused = true)]
    async fn scores_come_back_with_their_row_once() {
        let mut s = FeedbackStore::new(Duration::from_secs(100), 100);
        let t = Instant::now();
        let predicted = vec![
            (n(1.0), Some(vec![0.1, 0.9])),
            (n(0.0), None),
            (n(2.0), Some(vec![0.2, 0.3, 0.5])),
        ];
        assert!(s.insert_scored("a", predicted, t).is_empty());
        let scores = |o: Outcome| match o {
            Outcome::Matched(p) => p.scores,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            scores(s.feedback("a", 2, n(2.0), t)),
            Some(vec![0.2, 0.3, 0.5])
        );
        assert_eq!(scores(s.feedback("a", 1, n(0.0), t)), None);
        assert_eq!(scores(s.feedback("a", 0, n(1.0), t)), Some(vec![0.1, 0.9]));
        assert_eq!(s.feedback("a", 0, n(1.0), t), Outcome::Duplicate);
        // Ground truth that came first gets the scores too.
        assert_eq!(s.feedback("b", 1, n(0.0), t), Outcome::Early);
        let m = s.insert_scored("b", vec![(n(1.0), None), (n(0.0), Some(vec![0.6, 0.4]))], t);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].1.scores, Some(vec![0.6, 0.4]));
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_by_max_pending_oldest_evicted_as_expired() {
        let mut s = FeedbackStore::new(Duration::from_secs(100), 3);
        let t = Instant::now();
        s.insert("a", vec![n(1.0), n(1.0)], t);
        s.insert("b", vec![n(1.0)], t);
        s.insert("c", vec![n(1.0)], t);
        assert_eq!(s.pending_rows(), 2, "a evicted to make room");
        assert_eq!(s.feedback("a", 0, n(1.0), t), Outcome::Late);
        // A reused id replaces the waiting prediction.
        s.insert("b", vec![n(5.0)], t);
        assert_eq!(s.pending_rows(), 2);
        assert_eq!(
            s.feedback("b", 0, n(5.0), t),
            Outcome::Matched(MatchedPair {
                predicted: n(5.0),
                scores: None,
                actual: n(5.0)
            })
        );
        for i in 0..(MAX_EARLY + 5) {
            s.feedback(&format!("x{i}"), 0, n(0.0), t);
        }
        assert_eq!(s.early_rows(), MAX_EARLY);
        assert_eq!(s.feedback("y", 0, n(0.0), t), Outcome::Unknown);
    }

    /// The store's invariants: the ring holds the waiting rows and the tombstones' rows,
    /// within its limit; labels only for waiting rows.
    fn check_invariants(s: &FeedbackStore) {
        assert_eq!(s.slots.len(), s.rows + s.dead_rows, "rows accounted");
        assert!(s.rows <= s.max_pending, "{} > {}", s.rows, s.max_pending);
        assert!(s.slots.len() <= s.ring_limit(), "ring bounded");
        assert!(s.requests.len() <= s.slots.len());
        assert!(s.labels.len() <= s.rows);
        let live = (0..s.requests.len()).filter(|&i| s.is_live(i)).count();
        assert_eq!(live, s.ids.len(), "every id points at one waiting request");
        assert!(s.expired_ids.len() <= MAX_EXPIRED_IDS);
    }

    /// A request as the reference model keeps it.
    struct ModelRequest {
        id: String,
        at: Instant,
        rows: Vec<(FeatureValue, Option<Vec<f64>>, bool)>,
    }

    /// The store's documented behaviour, written plainly (no bounds on memory).
    struct Model {
        ttl: Duration,
        max_pending: usize,
        pending: VecDeque<ModelRequest>,
        expired: Vec<String>,
        early: Vec<(String, usize, Instant, FeatureValue)>,
    }

    impl Model {
        fn rows(&self) -> usize {
            self.pending.iter().map(|r| r.rows.len()).sum()
        }

        fn expire_front(&mut self) -> usize {
            let Some(r) = self.pending.pop_front() else {
                return 0;
            };
            if !self.expired.contains(&r.id) {
                self.expired.push(r.id);
            }
            r.rows.iter().filter(|(_, _, m)| !m).count()
        }

        fn insert(
            &mut self,
            id: &str,
            rows: Vec<(FeatureValue, Option<Vec<f64>>)>,
            now: Instant,
        ) -> Vec<(usize, MatchedPair)> {
            let mut rows: Vec<_> = rows.into_iter().take(self.max_pending).collect();
            if rows.is_empty() {
                return Vec::new();
            }
            self.pending.retain(|r| r.id != id);
            self.expired.retain(|e| e != id);
            while self.rows() + rows.len() > self.max_pending && !self.pending.is_empty() {
                self.expire_front();
            }
            let mut matched = Vec::new();
            let mut kept = Vec::new();
            for (i, (p, s)) in rows.drain(..).enumerate() {
                let s = s.filter(|s| !s.is_empty());
                let early = self.early.iter().position(|e| e.0 == id && e.1 == i);
                let done = early.is_some();
                if let Some(e) = early {
                    let (_, _, _, actual) = self.early.remove(e);
                    matched.push((
                        i,
                        MatchedPair {
                            predicted: p.clone(),
                            scores: s.clone(),
                            actual,
                        },
                    ));
                }
                kept.push((p, s, done));
            }
            self.pending.push_back(ModelRequest {
                id: id.to_string(),
                at: now,
                rows: kept,
            });
            matched
        }

        fn feedback(
            &mut self,
            id: &str,
            row: usize,
            actual: FeatureValue,
            now: Instant,
        ) -> Outcome {
            if let Some(r) = self.pending.iter_mut().find(|r| r.id == id) {
                if now.saturating_duration_since(r.at) >= self.ttl {
                    return Outcome::Late;
                }
                return match r.rows.get_mut(row) {
                    None => Outcome::Unknown,
                    Some((_, _, true)) => Outcome::Duplicate,
                    Some((p, s, m)) => {
                        *m = true;
                        Outcome::Matched(MatchedPair {
                            predicted: p.clone(),
                            scores: s.take(),
                            actual,
                        })
                    }
                };
            }
            if self.expired.iter().any(|e| e == id) {
                return Outcome::Late;
            }
            if self.early.iter().any(|e| e.0 == id && e.1 == row) {
                return Outcome::Duplicate;
            }
            if self.early.len() >= MAX_EARLY {
                return Outcome::Unknown;
            }
            self.early.push((id.to_string(), row, now, actual));
            Outcome::Early
        }

        fn expire(&mut self, now: Instant) -> Expired {
            let mut out = Expired::default();
            while self
                .pending
                .front()
                .is_some_and(|r| now.saturating_duration_since(r.at) >= self.ttl)
            {
                out.predictions += self.expire_front();
            }
            let before = self.early.len();
            self.early
                .retain(|e| now.saturating_duration_since(e.2) < EARLY_GRACE);
            out.early_feedback = before - self.early.len();
            out
        }
    }

    /// Random traffic against the store and the model: ids reused while they wait,
    /// batches of 1 to 6 rows against `max_pending` 9, labels, numbers and missing values,
    /// early and duplicate ground truth, expiry; sequence numbers start just below their
    /// wrap-around.
    fn same_as_the_model(seed: u64, ttl: Duration, step: Duration) {
        let mut s = FeedbackStore::new(ttl, 9);
        s.first_request = u32::MAX - 5;
        s.first_slot = u32::MAX - 17;
        s.first_score = u32::MAX - 2;
        s.first_expired = u32::MAX - 1;
        let mut m = Model {
            ttl,
            max_pending: 9,
            pending: VecDeque::new(),
            expired: Vec::new(),
            early: Vec::new(),
        };
        let t0 = Instant::now();
        let mut now = t0;
        let mut x = seed;
        let mut rand = |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        let labels = ["cat", "dog", "", "bird"];
        for _ in 0..20_000 {
            now += step * rand(3) as u32;
            let id = format!("r{}", rand(14));
            match rand(10) {
                0..=3 => {
                    let rows = (0..=rand(6))
                        .map(|_| {
                            let p = match rand(5) {
                                0 | 1 => n(rand(3) as f64),
                                2 => FeatureValue::Missing,
                                _ => FeatureValue::Text(labels[rand(4) as usize].to_string()),
                            };
                            let scores = match rand(4) {
                                0 => None,
                                1 => Some(vec![]),
                                k => {
                                    Some((0..k).map(|c| c as f64 / 10.0 + rand(9) as f64).collect())
                                }
                            };
                            (p, scores)
                        })
                        .collect::<Vec<_>>();
                    assert_eq!(
                        s.insert_scored(&id, rows.clone(), now),
                        m.insert(&id, rows, now),
                        "insert {id}"
                    );
                }
                4..=8 => {
                    let row = rand(7) as usize;
                    let actual = n(rand(2) as f64);
                    assert_eq!(
                        s.feedback(&id, row, actual.clone(), now),
                        m.feedback(&id, row, actual, now),
                        "feedback {id} row {row}"
                    );
                }
                _ => assert_eq!(s.expire(now), m.expire(now), "expire"),
            }
            assert_eq!(s.pending_rows(), m.rows());
            assert_eq!(s.early_rows(), m.early.len());
            check_invariants(&s);
        }
        let wrapped = |front: u32| front < u32::MAX / 2;
        assert!(
            wrapped(s.first_request)
                && wrapped(s.first_slot)
                && wrapped(s.first_score)
                && wrapped(seq(s.first_expired, s.expired_ids.len())),
            "the sequence numbers wrapped"
        );
    }

    #[test]
    fn behaves_like_the_plain_model_through_wrap_around() {
        for seed in 1..4 {
            same_as_the_model(seed, Duration::from_secs(10), Duration::from_secs(1));
        }
        // A TTL in 9 ms units (100 days): whole units only.
        same_as_the_model(
            7,
            Duration::from_secs(100 * 86_400),
            Duration::from_secs(86_400),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_replaced_id_leaves_a_tombstone_that_never_counts() {
        let mut s = FeedbackStore::new(Duration::from_secs(10), 100);
        let t0 = Instant::now();
        s.insert("b", vec![n(3.0)], t0);
        s.insert("a", vec![n(1.0), n(2.0)], t0);
        let t1 = t0 + Duration::from_secs(5);
        s.insert("a", vec![n(4.0)], t1);
        assert_eq!(s.pending_rows(), 2);
        assert_eq!(s.dead_rows, 2, "a's first two rows are a tombstone");
        assert_eq!(
            s.feedback("a", 1, n(0.0), t1),
            Outcome::Unknown,
            "one row now"
        );
        // Past the first a's TTL: only b expires; the tombstone goes without counting.
        let t2 = t0 + Duration::from_secs(11);
        assert_eq!(s.expire(t2).predictions, 1);
        assert_eq!((s.pending_rows(), s.dead_rows, s.requests.len()), (1, 0, 1));
        assert_eq!(
            s.feedback("a", 0, n(4.0), t2),
            Outcome::Matched(MatchedPair {
                predicted: n(4.0),
                scores: None,
                actual: n(4.0)
            }),
            "the replacement waits its own TTL"
        );
        assert_eq!(s.feedback("b", 0, n(3.0), t2), Outcome::Late);
        let t3 = t1 + Duration::from_secs(10);
        assert_eq!(s.expire(t3).predictions, 0, "a matched");
        assert_eq!(s.feedback("a", 0, n(4.0), t3), Outcome::Late);
        check_invariants(&s);
    }

    #[tokio::test(start_paused = true)]
    async fn eviction_takes_the_oldest_waiting_request_not_a_replaced_one() {
        let mut s = FeedbackStore::new(Duration::from_secs(100), 3);
        let t = Instant::now();
        s.insert("a", vec![n(1.0)], t);
        s.insert("b", vec![n(2.0)], t);
        s.insert("c", vec![n(3.0)], t);
        s.insert("a", vec![n(5.0)], t);
        s.insert("d", vec![n(6.0)], t);
        assert_eq!(
            s.feedback("b", 0, n(0.0), t),
            Outcome::Late,
            "b was the oldest"
        );
        s.insert("e", vec![n(7.0)], t);
        assert_eq!(s.feedback("c", 0, n(0.0), t), Outcome::Late);
        for (id, v) in [("a", 5.0), ("d", 6.0), ("e", 7.0)] {
            assert!(
                matches!(s.feedback(id, 0, n(v), t), Outcome::Matched(p) if p.predicted == n(v)),
                "{id}"
            );
        }
        check_invariants(&s);
    }

    #[test]
    fn reusing_one_id_keeps_the_ring_bounded() {
        let mut s = FeedbackStore::new(Duration::from_secs(100), 1_000);
        let t = Instant::now();
        for i in 0..900 {
            s.insert(&format!("other-{i}"), vec![n(1.0)], t);
        }
        for i in 0..100_000 {
            let rows = 1 + i % 3;
            s.insert_scored("same", vec![(n(i as f64), Some(vec![0.5, 0.5])); rows], t);
            assert!(
                s.slots.len() <= s.ring_limit(),
                "{} rows in the ring",
                s.slots.len()
            );
        }
        check_invariants(&s);
        assert_eq!(
            s.pending_rows(),
            900 + 1,
            "nothing evicted for the tombstones"
        );
        assert!(s.scores.len() <= 2 * s.ring_limit());
        let Outcome::Matched(last) = s.feedback("same", 0, n(0.0), t) else {
            panic!("the last prediction waits");
        };
        assert_eq!(
            (last.predicted, last.scores),
            (n(99_999.0), Some(vec![0.5, 0.5]))
        );
        assert!(matches!(
            s.feedback("other-0", 0, n(0.0), t),
            Outcome::Matched(_)
        ));
        // Bounded heap: the columns never grew past the ring's limit.
        assert!(s.heap_bytes() < 1_300 * 24 + 1_300 * 12 + 2_700 * 8 + 20_000);
    }

    #[tokio::test(start_paused = true)]
    async fn max_pending_counts_rows_across_batch_sizes() {
        let mut s = FeedbackStore::new(Duration::from_secs(100), 10);
        let t = Instant::now();
        s.insert("a", vec![n(1.0); 4], t);
        s.insert("b", vec![n(1.0)], t);
        s.insert("c", vec![n(1.0); 3], t);
        assert_eq!(s.pending_rows(), 8);
        s.insert("d", vec![n(1.0); 5], t);
        assert_eq!(s.pending_rows(), 9, "a (4 rows) evicted, not b");
        assert_eq!(s.feedback("a", 0, n(1.0), t), Outcome::Late);
        assert!(matches!(s.feedback("b", 0, n(1.0), t), Outcome::Matched(_)));
        s.insert("e", vec![n(2.0); 12], t);
        assert_eq!(
            s.pending_rows(),
            10,
            "a batch past max_pending keeps its first rows"
        );
        assert_eq!(s.feedback("e", 10, n(1.0), t), Outcome::Unknown);
        assert!(matches!(s.feedback("e", 9, n(1.0), t), Outcome::Matched(_)));
        for id in ["b", "c", "d"] {
            assert_eq!(s.feedback(id, 0, n(1.0), t), Outcome::Late, "{id}");
        }
        check_invariants(&s);
    }

    #[tokio::test(start_paused = true)]
    async fn times_rebase_past_49_days() {
        // 10 days: millisecond units; a u32 of them lasts 49.7 days.
        let day = Duration::from_secs(86_400);
        let mut s = FeedbackStore::new(day * 10, 100);
        let t0 = Instant::now();
        s.insert("keep", vec![n(0.0)], t0);
        for d in 1..=12u32 {
            let now = t0 + day * (9 * d);
            s.insert(&format!("day-{d}"), vec![n(f64::from(d))], now);
            if d >= 2 {
                let previous = s.feedback(&format!("day-{}", d - 1), 0, n(1.0), now);
                assert!(matches!(previous, Outcome::Matched(_)), "day {d}");
            }
            if d >= 3 {
                let before = s.feedback(&format!("day-{}", d - 2), 0, n(1.0), now);
                assert_eq!(before, Outcome::Late, "day {d}");
            }
        }
        assert!(s.base > 0, "rebased");
        let now = t0 + day * 108 + Duration::from_millis(1);
        let keep = s.feedback("keep", 0, n(0.0), now);
        assert_eq!(keep, Outcome::Late, "never swept, still late");
        let e = s.expire(now);
        assert_eq!(
            e.predictions, 1,
            "keep expired unmatched, days 1 to 10 matched"
        );
        assert_eq!(s.pending_rows(), 2, "days 11 and 12 wait");
        let last = t0 + day * 108;
        let just_in_time = last + day * 10 - Duration::from_millis(1);
        let twelve = s.feedback("day-12", 0, n(0.0), just_in_time);
        assert!(matches!(twelve, Outcome::Matched(_)));
        check_invariants(&s);
    }

    #[test]
    fn heap_bytes_follow_the_labels_and_the_bound() {
        let mut s = FeedbackStore::new(Duration::from_secs(100), 1_000);
        assert_eq!(
            s.heap_bytes(),
            0,
            "nothing allocated before the first prediction"
        );
        let t = Instant::now();
        let label = |i: usize| FeatureValue::Text(format!("{i:0>100}"));
        for i in 0..1_000 {
            s.insert(&format!("r{i}"), vec![label(i % 500)], t);
        }
        assert_eq!(s.labels.len(), 500, "one copy per distinct label");
        let full = s.heap_bytes();
        assert!(full >= 500 * 100 + 1_000 * (24 + 12), "{full}");
        // An index entry: 9 bytes at hashbrown's load, at most 7/8 and at least 7/16.
        assert!(full <= 500 * (100 + 24 + 4 + 4 + 21) + 1_000 * (24 + 12 + 21) + 4_096);
        for i in 0..1_000 {
            let o = s.feedback(&format!("r{i}"), 0, n(0.0), t);
            assert!(matches!(o, Outcome::Matched(p) if p.predicted == label(i % 500)));
        }
        assert_eq!(s.labels.len(), 0, "matched rows hold no label");
        assert!(
            s.heap_bytes() + 500 * 100 <= full + 4_096,
            "the labels' text freed"
        );
        // Another 2 000 requests in a store of 1 000: the columns stay where they were.
        let cap = (
            s.requests.capacity(),
            s.slots.capacity(),
            s.ids.heap_bytes(),
        );
        for i in 0..2_000 {
            s.insert(&format!("again-{i}"), vec![n(1.0)], t);
        }
        assert_eq!(
            cap,
            (
                s.requests.capacity(),
                s.slots.capacity(),
                s.ids.heap_bytes()
            )
        );
        check_invariants(&s);
    }
}
