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
//! id itself (keyed SipHash with per-store random keys, so ids cannot be crafted to collide);
//! the scores of a request's rows share one allocation. Heap per waiting row with two class
//! scores ([`FeedbackStore::heap_bytes`], test `a_waiting_row_costs_what_the_docs_state`):
//! 164 bytes in single-row requests (mostly the id map and the expiry order, per request;
//! times are kept as milliseconds after the store's first prediction, the order's keys as
//! two `u64` halves), 63 bytes in 8-row batches (were 204 and 67 with an `Instant` per
//! request); `bench/analysis` (`--pending 100000`) measured 245 bytes per single-row
//! prediction with the allocator's overhead before that. Expired ids remembered to tell late
//! feedback ([`MAX_EXPIRED_IDS`]) are kept as the first 64 bits of their digest: 21 bytes
//! each with the tables' spare capacity (2.1 MB per model when all 100 000 are remembered;
//! was 43 bytes, 4.3 MB).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use tokio::time::Instant;

use crate::record::{FeatureValue, Prediction};

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

struct Slot {
    predicted: FeatureValue,
    /// Where this row's class scores are in [`Entry::scores`]; `scores_len` 0: none.
    scores_at: u32,
    scores_len: u16,
    matched: bool,
}

impl Slot {
    /// Takes this row's scores out of its request's `scores` (a matched row needs them no
    /// more).
    fn take_scores(&mut self, scores: &[f64]) -> Option<Vec<f64>> {
        if self.scores_len == 0 {
            return None;
        }
        let at = self.scores_at as usize;
        let out = scores
            .get(at..at + usize::from(self.scores_len))
            .map(<[f64]>::to_vec);
        self.scores_len = 0;
        out
    }
}

struct Entry {
    /// Milliseconds after the store's epoch.
    at_ms: u64,
    generation: u64,
    rows: Box<[Slot]>,
    /// The class scores of every row, one after the other: one allocation per request
    /// rather than one per row.
    scores: Box<[f64]>,
}

/// A request id as the store keeps it: a 128-bit keyed digest (see the module docs).
type Key = u128;

/// A [`Key`] as two halves (8-byte alignment: a queue entry of 32 bytes, not 48).
type Key64 = [u64; 2];

/// The hasher of the tables keyed by a [`Key`] or its first half: the key already is a
/// keyed SipHash digest (uniform, and not craftable without the store's random keys), so
/// hashing it again is wasted work (three hashes per inserted request, issue 13). Folds
/// the key to 64 bits.
type DigestHash = std::hash::BuildHasherDefault<DigestHasher>;

/// See [`DigestHash`].
#[derive(Debug, Default, Clone, Copy)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `u64` and `u128` keys; any other input still hashes.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }

    fn write_u128(&mut self, v: u128) {
        self.0 ^= (v >> 64) as u64 ^ v as u64;
    }
}

fn split(k: Key) -> Key64 {
    [(k >> 64) as u64, k as u64]
}

fn join(k: Key64) -> Key {
    (u128::from(k[0]) << 64) | u128::from(k[1])
}

/// The part of a key the set of expired ids keeps.
fn short(k: Key) -> u64 {
    (k >> 64) as u64
}

/// Waiting predictions of one model.
pub struct FeedbackStore {
    ttl: Duration,
    max_pending: usize,
    /// The two keyed hashes of a [`Key`].
    keys: (RandomState, RandomState),
    pending: HashMap<Key, Entry, DigestHash>,
    /// Time of the first prediction seen: times are kept as milliseconds after it.
    epoch: Option<Instant>,
    /// Insertion order of `pending` as (milliseconds, key, generation); entries replaced
    /// since carry an old generation.
    order: VecDeque<(u64, Key64, u64)>,
    next_generation: u64,
    rows: usize,
    /// Expired ids by the first 64 bits of their key (a chance collision among the
    /// 100 000 remembered ids is about 3·10⁻¹⁰: it would count unknown feedback as late).
    expired: HashSet<u64, DigestHash>,
    expired_order: VecDeque<u64>,
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
    /// A store keeping predictions `ttl` long, at most `max_pending` rows.
    pub fn new(ttl: Duration, max_pending: usize) -> Self {
        FeedbackStore {
            ttl,
            max_pending: max_pending.max(1),
            keys: (RandomState::new(), RandomState::new()),
            pending: HashMap::default(),
            epoch: None,
            order: VecDeque::new(),
            next_generation: 0,
            rows: 0,
            expired: HashSet::default(),
            expired_order: VecDeque::new(),
            early: HashMap::new(),
            early_order: VecDeque::new(),
        }
    }

    /// `now` as milliseconds after the epoch (set by the first call).
    fn ms(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    fn key(&self, id: &str) -> Key {
        let high = self.keys.0.hash_one(id) as u128;
        let low = self.keys.1.hash_one(id) as u128;
        (high << 64) | low
    }

    /// Prediction rows waiting (matched or not).
    pub fn pending_rows(&self) -> usize {
        self.rows
    }

    /// Ground-truth rows waiting for their prediction.
    pub fn early_rows(&self) -> usize {
        self.early.len()
    }

    /// Heap bytes this store holds (capacities, the text of label predictions included;
    /// the allocator's own per-allocation overhead is not), for the per-row cost stated in
    /// docs/performance.md.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let text = |v: &FeatureValue| match v {
            FeatureValue::Text(t) => t.capacity(),
            _ => 0,
        };
        let entries: usize = self
            .pending
            .values()
            .map(|e| {
                e.rows.len() * size_of::<Slot>()
                    + e.rows.iter().map(|s| text(&s.predicted)).sum::<usize>()
                    + e.scores.len() * size_of::<f64>()
            })
            .sum();
        let early: usize = self.early.values().map(|(_, v)| text(v)).sum();
        self.pending.capacity() * (size_of::<(Key, Entry)>() + 1)
            + entries
            + self.order.capacity() * size_of::<(u64, Key64, u64)>()
            + self.expired.capacity() * (size_of::<u64>() + 1)
            + self.expired_order.capacity() * size_of::<u64>()
            + self.early.capacity() * (size_of::<((Key, usize), (Instant, FeatureValue))>() + 1)
            + early
            + self.early_order.capacity() * size_of::<(Instant, Key, usize)>()
    }

    /// Drops what is past its time; returns what expired.
    pub fn expire(&mut self, now: Instant) -> Expired {
        let mut out = Expired::default();
        let (now_ms, ttl) = (self.ms(now), self.ttl_ms());
        while let Some((at, _, _)) = self.order.front() {
            if now_ms.saturating_sub(*at) < ttl {
                break;
            }
            if let Some((_, id, generation)) = self.order.pop_front() {
                out.predictions += self.retire(join(id), generation);
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

    /// Removes a pending entry of this generation; counts its unmatched rows.
    fn retire(&mut self, id: Key, generation: u64) -> usize {
        let current = self
            .pending
            .get(&id)
            .is_some_and(|e| e.generation == generation);
        if !current {
            return 0;
        }
        let Some(entry) = self.pending.remove(&id) else {
            return 0;
        };
        self.rows -= entry.rows.len();
        self.remember_expired(id);
        entry.rows.iter().filter(|s| !s.matched).count()
    }

    fn remember_expired(&mut self, id: Key) {
        let id = short(id);
        if self.expired.contains(&id) {
            return;
        }
        if self.expired_order.len() >= MAX_EXPIRED_IDS {
            if let Some(old) = self.expired_order.pop_front() {
                self.expired.remove(&old);
            }
        }
        self.expired.insert(id);
        self.expired_order.push_back(id);
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
        let id = self.key(id);
        if let Some(old) = self.pending.remove(&id) {
            self.rows -= old.rows.len();
        }
        self.expired.remove(&short(id));
        // Evict the oldest requests until the new rows fit.
        while self.rows + predicted.len() > self.max_pending {
            let Some((_, old, generation)) = self.order.pop_front() else {
                break;
            };
            self.retire(join(old), generation);
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let total: usize = predicted
            .iter()
            .filter_map(|t| row(t).1.map(<[f64]>::len))
            .filter(|&n| n <= usize::from(u16::MAX))
            .sum();
        let mut scores = Vec::with_capacity(total);
        let mut rows: Box<[Slot]> = predicted
            .iter()
            .map(|t| {
                let (p, row_scores) = row(t);
                // Scores beyond the offsets' range (never at the performance engine's
                // MAX_CLASSES) are not kept.
                let at = u32::try_from(scores.len()).ok();
                let len = row_scores.and_then(|s| u16::try_from(s.len()).ok());
                let (scores_at, scores_len) = match (at, len, row_scores) {
                    (Some(at), Some(len), Some(row)) => {
                        scores.extend_from_slice(row);
                        (at, len)
                    }
                    _ => (0, 0),
                };
                Slot {
                    predicted: p.clone(),
                    scores_at,
                    scores_len,
                    matched: false,
                }
            })
            .collect();
        let scores = scores.into_boxed_slice();
        let mut matched = Vec::new();
        if !self.early.is_empty() {
            for (i, slot) in rows.iter_mut().enumerate() {
                if let Some((_, actual)) = self.early.remove(&(id, i)) {
                    slot.matched = true;
                    matched.push((
                        i,
                        MatchedPair {
                            predicted: slot.predicted.clone(),
                            scores: slot.take_scores(&scores),
                            actual,
                        },
                    ));
                }
            }
        }
        self.rows += rows.len();
        let at_ms = self.ms(now);
        self.pending.insert(
            id,
            Entry {
                at_ms,
                generation,
                rows,
                scores,
            },
        );
        self.order.push_back((at_ms, split(id), generation));
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
        let id = self.key(id);
        let (now_ms, ttl) = (self.ms(now), self.ttl_ms());
        if let Some(entry) = self.pending.get_mut(&id) {
            // Past the TTL but not yet swept: late, like a swept one.
            if now_ms.saturating_sub(entry.at_ms) >= ttl {
                return Outcome::Late;
            }
            let scores = &entry.scores;
            return match entry.rows.get_mut(row) {
                None => Outcome::Unknown,
                Some(slot) if slot.matched => Outcome::Duplicate,
                Some(slot) => {
                    slot.matched = true;
                    Outcome::Matched(MatchedPair {
                        predicted: slot.predicted.clone(),
                        scores: slot.take_scores(scores),
                        actual,
                    })
                }
            };
        }
        if self.expired.contains(&short(id)) {
            return Outcome::Late;
        }
        let key = (id, row);
        if self.early.contains_key(&key) {
            return Outcome::Duplicate;
        }
        if self.early.len() >= MAX_EARLY {
            return Outcome::Unknown;
        }
        self.early.insert(key, (now, actual));
        self.early_order.push_back((now, id, row));
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
            "feedback store: {one:.0} B per waiting row (1-row requests), {eight:.0} B (8-row)"
        );
        assert!(one <= 170.0, "{one} B per row, 1-row requests");
        assert!(eight <= 64.0, "{eight} B per row, 8-row requests");
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
        assert!(per_id <= 23.0, "{per_id} B per expired id");
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
}
