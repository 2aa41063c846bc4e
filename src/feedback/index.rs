//! A compact hash index from 32-bit tags to `u32` positions, for the feedback store.
//!
//! The store keeps its records (requests, expired ids, labels) in rings and vectors of its
//! own and only needs to find a record's position from its digest. A `HashMap<u128, u32>`
//! would spend 33 bytes a bucket on a key the ring already holds; this table keeps, per
//! bucket, 32 bits of the digest (the *tag*) beside the position: 8 bytes, at most 80 %
//! full. Lookups compare tags in the table and confirm a candidate against the record
//! itself (the caller's `is` closure), so the table never reads the records to rehash or to
//! delete; two keys sharing a tag simply both stay (probing goes on past a mismatch).
//!
//! Open addressing with linear probing and backward-shift deletion (no tombstones, so a
//! table under constant insert/remove churn never degrades). A bucket's home is the tag
//! scaled to the table length (`tag × len >> 32`), so the length need not be a power of
//! two and growth can stop at what the store's bound needs.

/// An empty bucket. Tags are never `u32::MAX` (see [`Index::tag`]), so no entry is this.
const EMPTY: u64 = u64::MAX;

/// Entries per bucket at most: 4/5 (expected probes 3 for a hit, 13 for a miss).
const LOAD_NUM: usize = 4;
const LOAD_DEN: usize = 5;

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// `tag << 32 | position`, or [`EMPTY`].
    buckets: Vec<u64>,
    /// Entries held.
    len: usize,
    /// Entries the owner holds at most in normal operation: growth stops at the buckets
    /// that many need, unless more really arrive.
    bound: usize,
}

impl Index {
    /// An empty index expected to hold at most `bound` entries.
    pub(super) fn new(bound: usize) -> Self {
        Index {
            buckets: Vec::new(),
            len: 0,
            bound,
        }
    }

    /// The tag of a 64-bit digest (its high half, `u32::MAX` folded to `u32::MAX - 1`).
    pub(super) fn tag(digest: u64) -> u32 {
        ((digest >> 32) as u32).min(u32::MAX - 1)
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes (capacity).
    pub(super) fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<u64>()
    }

    fn home(&self, tag: u32) -> usize {
        ((u64::from(tag) * self.buckets.len() as u64) >> 32) as usize
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.buckets.len() {
            0
        } else {
            i + 1
        }
    }

    /// The bucket of the entry with `tag` whose position satisfies `is`.
    fn bucket(&self, tag: u32, mut is: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mut i = self.home(tag);
        loop {
            let e = *self.buckets.get(i)?;
            if e == EMPTY {
                return None;
            }
            if (e >> 32) as u32 == tag && is(e as u32) {
                return Some(i);
            }
            i = self.next(i);
        }
    }

    /// The position of the entry with `tag` for which `is` holds.
    pub(super) fn find(&self, tag: u32, is: impl FnMut(u32) -> bool) -> Option<u32> {
        self.bucket(tag, is)
            .and_then(|i| self.buckets.get(i))
            .map(|e| *e as u32)
    }

    /// Whether the entry (`tag`, `position`) is held.
    pub(super) fn contains(&self, tag: u32, position: u32) -> bool {
        self.bucket(tag, |p| p == position).is_some()
    }

    /// Adds the entry (`tag`, `position`); the caller makes sure that it is not held yet.
    pub(super) fn insert(&mut self, tag: u32, position: u32) {
        if (self.len + 1) * LOAD_DEN > self.buckets.len() * LOAD_NUM {
            self.grow();
        }
        self.place(tag, position);
        self.len += 1;
    }

    fn place(&mut self, tag: u32, position: u32) {
        let mut i = self.home(tag);
        // The table is never full (load at most 4/5), so an empty bucket comes.
        for _ in 0..self.buckets.len() {
            match self.buckets.get_mut(i) {
                Some(b) if *b == EMPTY => {
                    *b = (u64::from(tag) << 32) | u64::from(position);
                    return;
                }
                _ => i = self.next(i),
            }
        }
    }

    /// Buckets for `entries` entries at the load bound.
    fn buckets_for(entries: usize) -> usize {
        (entries * LOAD_DEN).div_ceil(LOAD_NUM).max(4)
    }

    /// Doubles the buckets, not past what `bound` entries need unless more are held.
    fn grow(&mut self) {
        let need = Self::buckets_for(self.len + 1);
        let bounded = Self::buckets_for(self.bound);
        let double = self.buckets.len() * 2;
        let target = if need <= bounded {
            double.clamp(need, bounded)
        } else {
            double.max(need)
        };
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; target]);
        for e in old.into_iter().filter(|e| *e != EMPTY) {
            self.place((e >> 32) as u32, e as u32);
        }
    }

    /// Removes the entry (`tag`, `position`); returns whether it was held.
    pub(super) fn remove(&mut self, tag: u32, position: u32) -> bool {
        let Some(mut hole) = self.bucket(tag, |p| p == position) else {
            return false;
        };
        let n = self.buckets.len();
        let mut j = hole;
        // Backward shift: move each following entry of the run into the hole when its
        // home is not between the hole and itself.
        loop {
            j = self.next(j);
            let e = self.buckets.get(j).copied().unwrap_or(EMPTY);
            if e == EMPTY || j == hole {
                break;
            }
            let home = self.home((e >> 32) as u32);
            let from_home = (j + n - home) % n;
            let from_hole = (j + n - hole) % n;
            if from_home >= from_hole {
                if let Some(b) = self.buckets.get_mut(hole) {
                    *b = e;
                }
                hole = j;
            }
        }
        if let Some(b) = self.buckets.get_mut(hole) {
            *b = EMPTY;
        }
        self.len -= 1;
        true
    }

    /// Points the entry (`tag`, `from`) at `to`; returns whether it was held.
    pub(super) fn repoint(&mut self, tag: u32, from: u32, to: u32) -> bool {
        match self
            .bucket(tag, |p| p == from)
            .and_then(|i| self.buckets.get_mut(i))
        {
            Some(b) => {
                *b = (u64::from(tag) << 32) | u64::from(to);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_removes_and_repoints_under_churn() {
        let mut ix = Index::new(1_000);
        // Few distinct tags: long runs, shared tags, wrap-around at the table's end.
        let tag = |k: u32| u32::MAX - 1 - (k % 7);
        let mut held = std::collections::HashSet::new();
        let mut x: u64 = 1;
        for step in 0..20_000u32 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let k = ((x >> 33) % 1_500) as u32;
            if held.contains(&k) {
                assert!(ix.contains(tag(k), k), "step {step}");
                assert!(ix.remove(tag(k), k));
                held.remove(&k);
                assert!(!ix.contains(tag(k), k));
            } else {
                ix.insert(tag(k), k);
                held.insert(k);
            }
            assert_eq!(ix.len(), held.len());
        }
        for &k in &held {
            assert_eq!(ix.find(tag(k), |p| p == k), Some(k));
            assert!(ix.repoint(tag(k), k, k + 10_000));
            assert_eq!(ix.find(tag(k), |p| p == k + 10_000), Some(k + 10_000));
        }
        assert!(!ix.remove(tag(0), 99_999));
        for &k in &held {
            assert!(ix.remove(tag(k), k + 10_000));
        }
        assert_eq!(ix.len(), 0);
        assert_eq!(ix.find(tag(1), |_| true), None);
    }

    #[test]
    fn grows_to_the_bound_not_a_power_of_two_past_it() {
        let mut ix = Index::new(100_000);
        for k in 0..100_000u32 {
            ix.insert(
                Index::tag(u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                k,
            );
        }
        assert_eq!(ix.heap_bytes(), 125_000 * 8, "4/5 full at the bound");
        // More than the bound still fits (by doubling).
        for k in 100_000..100_010u32 {
            ix.insert(
                Index::tag(u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                k,
            );
        }
        assert_eq!(ix.len(), 100_010);
        assert_eq!(ix.heap_bytes(), 250_000 * 8);
    }
}
