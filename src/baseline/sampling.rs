//! Seeded, reproducible sampling: a SplitMix64 generator and a reservoir.
//!
//! We use our own tiny generator rather than `rand`'s `StdRng` because the
//! snapshot promises byte-identical builds for the same input and seed, and
//! `rand` does not guarantee its streams across releases. SplitMix64 is fully
//! specified (Steele, Lea & Flood 2014) and passes BigCrush, which is plenty
//! for choosing reservoir slots.

/// A SplitMix64 pseudo-random generator: deterministic for a given seed.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    /// The generator state (advanced by the golden-ratio increment).
    state: u64,
}

impl SplitMix64 {
    /// A generator whose stream depends on `seed` and on a stream name, so
    /// that each column gets its own stream and adding or removing a column
    /// does not change the samples of the others.
    pub(crate) fn for_stream(seed: u64, stream: &str) -> Self {
        Self {
            state: seed ^ fnv1a64(stream.as_bytes()),
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift
    /// (bias below 2^-64 · n, irrelevant here and reproducible).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// FNV-1a, 64-bit: a stable hash of a stream name (not for security).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// A uniform random sample of at most `capacity` items from a stream
/// (Vitter's algorithm R), exact (every item) while the stream is shorter.
#[derive(Debug, Clone)]
pub(crate) struct Reservoir<T> {
    /// The kept items, in no particular order once the reservoir is full.
    items: Vec<T>,
    /// Maximum number of items kept.
    capacity: usize,
    /// Items offered so far.
    seen: u64,
    /// The seeded generator choosing replacements.
    rng: SplitMix64,
}

impl<T> Reservoir<T> {
    /// An empty reservoir keeping at most `capacity` items.
    pub(crate) fn new(capacity: usize, rng: SplitMix64) -> Self {
        Self {
            items: Vec::new(),
            capacity,
            seen: 0,
            rng,
        }
    }

    /// Offers one item of the stream.
    #[inline]
    pub(crate) fn offer(&mut self, item: T) {
        self.seen += 1;
        if self.items.len() < self.capacity {
            self.items.push(item);
        } else if self.capacity > 0 {
            let j = self.rng.below(self.seen);
            if let Some(slot) = self.items.get_mut(j as usize) {
                *slot = item;
            }
        }
    }

    /// True while every offered item is kept.
    pub(crate) fn is_exact(&self) -> bool {
        self.seen == self.items.len() as u64
    }

    /// The kept items and the generator (for further seeded subsampling).
    pub(crate) fn into_parts(self) -> (Vec<T>, SplitMix64) {
        (self.items, self.rng)
    }
}

/// Keeps a uniform random subset of `k` items of `items` (partial
/// Fisher–Yates), or all of them when there are at most `k`.
pub(crate) fn subsample<T>(mut items: Vec<T>, k: usize, rng: &mut SplitMix64) -> Vec<T> {
    if items.len() <= k {
        return items;
    }
    for i in 0..k {
        let j = i + rng.below((items.len() - i) as u64) as usize;
        items.swap(i, j);
    }
    items.truncate(k);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_stream() {
        // Reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c):
        // the first outputs are e220a8397b1dcdaf, 6e789e6aa1b965f4, 06c45d188009454f.
        let mut g = SplitMix64 { state: 0 };
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(g.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(g.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn reservoir_is_exact_below_capacity_and_bounded_above() {
        let mut r = Reservoir::new(10, SplitMix64::for_stream(1, "x"));
        for i in 0..7 {
            r.offer(i);
        }
        assert!(r.is_exact());
        for i in 7..1000 {
            r.offer(i);
        }
        assert!(!r.is_exact());
        let (items, _) = r.into_parts();
        assert_eq!(items.len(), 10);
    }

    #[test]
    fn reservoir_is_roughly_uniform() {
        // Each of 100 items should land in a 10-slot reservoir with p = 0.1;
        // over 2000 seeded runs the count per item is Binomial(2000, 0.1):
        // mean 200, sd ≈ 13.4; 6 sd bounds make a false failure negligible.
        let mut hits = [0u32; 100];
        for run in 0..2000u64 {
            let mut r = Reservoir::new(10, SplitMix64::for_stream(run, "u"));
            for i in 0..100usize {
                r.offer(i);
            }
            for i in r.into_parts().0 {
                hits[i] += 1;
            }
        }
        for (i, h) in hits.iter().enumerate() {
            assert!((120..=280).contains(h), "item {i} kept {h} times");
        }
    }

    #[test]
    fn subsample_keeps_k_distinct_items() {
        let mut rng = SplitMix64::for_stream(3, "s");
        let mut s = subsample((0..100).collect::<Vec<_>>(), 10, &mut rng);
        assert_eq!(s.len(), 10);
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 10);
        let all = subsample((0..5).collect::<Vec<_>>(), 10, &mut rng);
        assert_eq!(all, vec![0, 1, 2, 3, 4]);
    }
}
