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
//! id itself (keyed SipHash with per-store random keys, so ids cannot be crafted to collide):
//! about 245 bytes per waiting single-row prediction with two class scores, measured by
//! `bench/analysis` (`--pending 100000`), where keeping the id strings cost 338.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use tokio::time::Instant;

use crate::record::FeatureValue;

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
    /// Boxed, not a `Vec`: no spare capacity and 8 bytes less per waiting row.
    scores: Option<Box<[f64]>>,
    matched: bool,
}

struct Entry {
    at: Instant,
    generation: u64,
    rows: Vec<Slot>,
}

/// A request id as the store keeps it: a 128-bit keyed digest (see the module docs).
type Key = u128;

/// Waiting predictions of one model.
pub struct FeedbackStore {
    ttl: Duration,
    max_pending: usize,
    /// The two keyed hashes of a [`Key`].
    keys: (RandomState, RandomState),
    pending: HashMap<Key, Entry>,
    /// Insertion order of `pending` (entries replaced since carry an old generation).
    order: VecDeque<(Instant, Key, u64)>,
    next_generation: u64,
    rows: usize,
    expired: HashSet<Key>,
    expired_order: VecDeque<Key>,
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
            pending: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            rows: 0,
            expired: HashSet::new(),
            expired_order: VecDeque::new(),
            early: HashMap::new(),
            early_order: VecDeque::new(),
        }
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

    /// Drops what is past its time; returns what expired.
    pub fn expire(&mut self, now: Instant) -> Expired {
        let mut out = Expired::default();
        while let Some((at, _, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.ttl {
                break;
            }
            if let Some((_, id, generation)) = self.order.pop_front() {
                out.predictions += self.retire(id, generation);
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
        let mut predicted = predicted;
        predicted.truncate(self.max_pending);
        if predicted.is_empty() {
            return Vec::new();
        }
        let id = self.key(id);
        if let Some(old) = self.pending.remove(&id) {
            self.rows -= old.rows.len();
        }
        self.expired.remove(&id);
        // Evict the oldest requests until the new rows fit.
        while self.rows + predicted.len() > self.max_pending {
            let Some((_, old, generation)) = self.order.pop_front() else {
                break;
            };
            self.retire(old, generation);
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut rows: Vec<Slot> = predicted
            .into_iter()
            .map(|(p, scores)| Slot {
                predicted: p,
                scores: scores.map(Vec::into_boxed_slice),
                matched: false,
            })
            .collect();
        let mut matched = Vec::new();
        if !self.early.is_empty() {
            for (i, slot) in rows.iter_mut().enumerate() {
                if let Some((_, actual)) = self.early.remove(&(id, i)) {
                    slot.matched = true;
                    matched.push((
                        i,
                        MatchedPair {
                            predicted: slot.predicted.clone(),
                            scores: slot.scores.take().map(Vec::from),
                            actual,
                        },
                    ));
                }
            }
        }
        self.rows += rows.len();
        self.pending.insert(
            id,
            Entry {
                at: now,
                generation,
                rows,
            },
        );
        self.order.push_back((now, id, generation));
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
        if let Some(entry) = self.pending.get_mut(&id) {
            // Past the TTL but not yet swept: late, like a swept one.
            if now.saturating_duration_since(entry.at) >= self.ttl {
                return Outcome::Late;
            }
            return match entry.rows.get_mut(row) {
                None => Outcome::Unknown,
                Some(slot) if slot.matched => Outcome::Duplicate,
                Some(slot) => {
                    slot.matched = true;
                    Outcome::Matched(MatchedPair {
                        predicted: slot.predicted.clone(),
                        scores: slot.scores.take().map(Vec::from),
                        actual,
                    })
                }
            };
        }
        if self.expired.contains(&id) {
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
