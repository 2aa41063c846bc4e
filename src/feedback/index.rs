//! A compact hash index from 32-bit tags to `u32` positions, for the feedback store.
//!
//! The store keeps its records (requests, expired ids) in rings of its own and only needs
//! to find a record's position from its digest. A `HashMap<u128, u32>` would spend 33 bytes
//! a bucket on a key the ring already holds; this index keeps, per entry, 32 bits of the
//! digest (the *tag*) beside the position: 8 bytes and hashbrown's control byte, in a
//! [`hashbrown::HashTable`] hashed by the tag alone. Lookups compare tags in the table and
//! confirm a candidate against the record itself (the caller's `is` closure), so the table
//! never reads the records to rehash or to delete; two keys sharing a tag both stay
//! (the search goes on past a mismatch).

use hashbrown::HashTable;

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// `tag << 32 | position`.
    table: HashTable<u64>,
}

/// The table's hash of an entry: its tag, already the bits of a keyed digest, in both
/// halves (hashbrown reads the top bits for its control bytes and the low ones for the
/// bucket).
fn hash_of(tag: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(tag)
}

fn entry(tag: u32, position: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(position)
}

fn tag_of(e: u64) -> u32 {
    (e >> 32) as u32
}

impl Index {
    /// An empty index; it allocates as entries arrive.
    pub(super) fn new() -> Self {
        Index::default()
    }

    /// The tag of a 64-bit digest (its high half).
    pub(super) fn tag(digest: u64) -> u32 {
        (digest >> 32) as u32
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// Heap bytes (the table's allocation).
    pub(super) fn heap_bytes(&self) -> usize {
        self.table.allocation_size()
    }

    /// The position of the entry with `tag` for which `is` holds.
    pub(super) fn find(&self, tag: u32, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        self.table
            .find(hash_of(tag), |e| tag_of(*e) == tag && is(*e as u32))
            .map(|e| *e as u32)
    }

    /// Whether the entry (`tag`, `position`) is held.
    pub(super) fn contains(&self, tag: u32, position: u32) -> bool {
        let e = entry(tag, position);
        self.table.find(hash_of(tag), |x| *x == e).is_some()
    }

    /// Adds the entry (`tag`, `position`); the caller makes sure that it is not held yet.
    pub(super) fn insert(&mut self, tag: u32, position: u32) {
        self.table
            .insert_unique(hash_of(tag), entry(tag, position), |e| hash_of(tag_of(*e)));
    }

    /// Removes the entry (`tag`, `position`); returns whether it was held.
    pub(super) fn remove(&mut self, tag: u32, position: u32) -> bool {
        let e = entry(tag, position);
        match self.table.find_entry(hash_of(tag), |x| *x == e) {
            Ok(found) => {
                found.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Points the entry (`tag`, `from`) at `to`; returns whether it was held.
    pub(super) fn repoint(&mut self, tag: u32, from: u32, to: u32) -> bool {
        let e = entry(tag, from);
        match self.table.find_mut(hash_of(tag), |x| *x == e) {
            Some(x) => {
                *x = entry(tag, to);
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
        let mut ix = Index::new();
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
    fn an_entry_costs_about_twelve_bytes_at_the_store_bound() {
        let mut ix = Index::new();
        for k in 0..100_000u32 {
            ix.insert(
                Index::tag(u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                k,
            );
        }
        assert_eq!(ix.len(), 100_000);
        // 131 072 buckets of 8 bytes and a control byte each.
        let per_entry = ix.heap_bytes() as f64 / 100_000.0;
        assert!((11.0..12.0).contains(&per_entry), "{per_entry} B");
        for k in 0..100_000u32 {
            let tag = Index::tag(u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            assert_eq!(ix.find(tag, |p| p == k), Some(k));
        }
    }
}
