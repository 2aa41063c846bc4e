//! The one time-sliding window every analysis uses (drift, quality, anomalies, latency).
//!
//! The window is cut into [`BUCKETS`] buckets of `window / BUCKETS`; a bucket leaves once it
//! has fully aged out, so the aggregates in force span between `window` and
//! `window + window / BUCKETS`. Memory is bounded by `BUCKETS + 1` aggregates whatever the
//! rate. Time comes from tokio's clock, so tests can pause it.

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
    /// Until when [`Buckets::current`] keeps answering the newest bucket with nothing to
    /// expire or open: the earlier of the newest bucket's end and the oldest one's expiry.
    /// `None` after any change of the buckets held, so the next call takes the full path.
    /// Every value of every analysis goes through `current`, and this makes it one
    /// comparison of instants instead of two additions and three comparisons.
    steady_until: Option<Instant>,
}

impl<T: Default> Buckets<T> {
    /// An empty window of length `window` (at least 1 ms per bucket).
    pub fn new(window: Duration) -> Self {
        let bucket_len = (window / BUCKETS).max(Duration::from_millis(1));
        Buckets {
            window,
            bucket_len,
            buckets: VecDeque::with_capacity(BUCKETS as usize + 1),
            steady_until: None,
        }
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The length of one bucket.
    pub fn bucket_len(&self) -> Duration {
        self.bucket_len
    }

    /// Whether a value at `now` opens a new bucket (the next [`Buckets::current`] call).
    pub fn opens_bucket(&self, now: Instant) -> bool {
        match self.buckets.back() {
            Some((start, _)) => now.saturating_duration_since(*start) >= self.bucket_len,
            None => true,
        }
    }

    /// Drops the buckets that have fully aged out as of `now`.
    pub fn expire(&mut self, now: Instant) {
        while let Some((start, _)) = self.buckets.front() {
            let end = start
                .checked_add(self.bucket_len)
                .and_then(|e| e.checked_add(self.window));
            match end {
                Some(end) if end <= now => {
                    self.buckets.pop_front();
                    self.steady_until = None;
                }
                _ => break,
            }
        }
    }

    /// The aggregate of the bucket `now` falls in (opened when needed).
    #[inline]
    pub fn current(&mut self, now: Instant) -> &mut T {
        if !self.is_steady(now) {
            self.advance(now);
        }
        // A bucket was just pushed when there was none.
        let last = self.buckets.len() - 1;
        &mut self.buckets[last].1
    }

    /// [`Buckets::current`]'s slow path, out of line so that the steady path (every value
    /// of every analysis) inlines into its callers: expires, opens a bucket if needed.
    #[inline(never)]
    fn advance(&mut self, now: Instant) {
        self.expire(now);
        if self.opens_bucket(now) {
            self.buckets.push_back((now, T::default()));
        }
        self.steady_until = self.steady_until_now();
    }

    /// Whether [`Buckets::current`] at `now` would neither expire nor open a bucket.
    #[inline]
    pub fn is_steady(&self, now: Instant) -> bool {
        self.steady_until.is_some_and(|until| now < until)
    }

    fn steady_until_now(&self) -> Option<Instant> {
        let (newest, _) = self.buckets.back()?;
        let (oldest, _) = self.buckets.front()?;
        let opens = newest.checked_add(self.bucket_len)?;
        let expires = oldest
            .checked_add(self.bucket_len)
            .and_then(|e| e.checked_add(self.window))?;
        Some(opens.min(expires))
    }

    /// The live buckets as of `now`, oldest first, with their start times.
    pub fn live(&mut self, now: Instant) -> impl Iterator<Item = (Instant, &T)> {
        self.expire(now);
        self.buckets.iter().map(|(s, t)| (*s, t))
    }
}

impl<T> Buckets<T> {
    /// Every held bucket, newest first, mutably (for pruning across buckets).
    pub fn newest_first_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.buckets.iter_mut().rev().map(|(_, t)| t)
    }

    /// Every held bucket, oldest first, without expiring any.
    pub fn held(&self) -> impl Iterator<Item = &T> {
        self.buckets.iter().map(|(_, t)| t)
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// Welford moments with min and max.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    /// Values counted.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Moments {
    /// Adds one value.
    pub fn push(&mut self, v: f64) {
        if self.n == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.n += 1;
        let d = v - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (v - self.mean);
    }

    /// Chan et al.'s parallel merge.
    pub fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n as f64;
        self.m2 += o.m2 + d * d * self.n as f64 * o.n as f64 / n as f64;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.n = n;
    }

    /// Population standard deviation (ddof = 0).
    pub fn std(&self) -> Option<f64> {
        (self.n > 0).then(|| (self.m2 / self.n as f64).max(0.0).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn buckets_age_out_after_the_window_and_one_bucket() {
        let mut b: Buckets<u64> = Buckets::new(Duration::from_secs(100));
        let t0 = Instant::now();
        *b.current(t0) += 1;
        *b.current(t0 + Duration::from_secs(5)) += 1; // same 10 s bucket
        *b.current(t0 + Duration::from_secs(10)) += 1; // a new bucket
        let sum = |b: &mut Buckets<u64>, t| b.live(t).map(|(_, v)| *v).sum::<u64>();
        assert_eq!(sum(&mut b, t0 + Duration::from_secs(10)), 3);
        // The first bucket [0, 10) lives until 10 + 100.
        assert_eq!(sum(&mut b, t0 + Duration::from_secs(109)), 3);
        assert_eq!(sum(&mut b, t0 + Duration::from_secs(110)), 1);
        assert_eq!(sum(&mut b, t0 + Duration::from_secs(120)), 0);
        assert!(b.is_empty());
    }

    /// The steady fast path of `current` answers exactly what the full path would: values
    /// pushed at irregular times (bursts, pauses longer than the window) land in the same
    /// buckets as in a window that takes the full path every time.
    #[tokio::test(start_paused = true)]
    async fn steady_fast_path_matches_the_full_path() {
        let window = Duration::from_secs(100);
        let mut fast: Buckets<u64> = Buckets::new(window);
        let mut full: Buckets<u64> = Buckets::new(window);
        let t0 = Instant::now();
        let mut t = t0;
        let mut x = 7_u64;
        for i in 0..5_000u64 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Mostly small steps, sometimes a pause of up to 250 s.
            let step_ms = if (x >> 60) == 0 {
                (x >> 20) % 250_000
            } else {
                (x >> 20) % 900
            };
            t += Duration::from_millis(step_ms);
            *fast.current(t) += i;
            full.steady_until = None;
            *full.current(t) += i;
            assert_eq!(
                fast.buckets,
                full.buckets,
                "after {i} values at {:?}",
                t - t0
            );
        }
    }

    #[test]
    fn moments_merge_equals_one_pass() {
        let xs = [1.0, 4.0, -2.0, 8.5, 3.0, 3.0];
        let mut all = Moments::default();
        xs.iter().for_each(|&x| all.push(x));
        let (mut a, mut b) = (Moments::default(), Moments::default());
        xs[..2].iter().for_each(|&x| a.push(x));
        xs[2..].iter().for_each(|&x| b.push(x));
        a.merge(&b);
        assert_eq!(a.n, all.n);
        assert!((a.mean - all.mean).abs() < 1e-12);
        assert!((a.m2 - all.m2).abs() < 1e-9);
        assert_eq!((a.min, a.max), (-2.0, 8.5));
        // statistics.pstdev([1, 4, -2, 8.5, 3, 3]) = 3.167762968124702
        assert!((all.std().unwrap() - 3.167_762_968_124_702).abs() < 1e-12);
    }
}
