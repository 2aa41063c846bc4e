//! A time-sliding window of per-bucket aggregates, as the drift windows use: the window is
//! cut into [`BUCKETS`] buckets of `window / BUCKETS`; a bucket leaves once it has fully
//! aged out, so the aggregates in force span between `window` and `window + window / BUCKETS`.
//! Memory is bounded by `BUCKETS + 1` aggregates whatever the rate.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Time buckets per window.
pub const BUCKETS: u32 = 10;

/// Aggregates of type `T` per time bucket.
#[derive(Debug, Clone)]
pub struct Buckets<T> {
    window: Duration,
    bucket_len: Duration,
    buckets: VecDeque<(Instant, T)>,
}

impl<T: Default> Buckets<T> {
    /// An empty window of length `window` (at least 1 ms per bucket).
    pub fn new(window: Duration) -> Self {
        let bucket_len = (window / BUCKETS).max(Duration::from_millis(1));
        Buckets {
            window,
            bucket_len,
            buckets: VecDeque::with_capacity(BUCKETS as usize + 1),
        }
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn expire(&mut self, now: Instant) {
        while let Some((start, _)) = self.buckets.front() {
            let end = start
                .checked_add(self.bucket_len)
                .and_then(|e| e.checked_add(self.window));
            match end {
                Some(end) if end <= now => {
                    self.buckets.pop_front();
                }
                _ => break,
            }
        }
    }

    /// The aggregate of the bucket `now` falls in (opened when needed).
    pub fn current(&mut self, now: Instant) -> &mut T {
        self.expire(now);
        let open = match self.buckets.back() {
            Some((start, _)) => now.saturating_duration_since(*start) >= self.bucket_len,
            None => true,
        };
        if open {
            self.buckets.push_back((now, T::default()));
        }
        // A bucket was just pushed when there was none.
        let last = self.buckets.len() - 1;
        &mut self.buckets[last].1
    }

    /// The live buckets as of `now`, oldest first, with their start times.
    pub fn live(&mut self, now: Instant) -> impl Iterator<Item = (Instant, &T)> {
        self.expire(now);
        self.buckets.iter().map(|(s, t)| (*s, t))
    }
}
