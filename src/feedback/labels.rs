//! Predicted values as one `u64` per waiting row, for the feedback store.
//!
//! A `FeatureValue` is 32 bytes; most predictions are a number (a class index or a
//! regression output) or one of a few class labels. A number is kept as its own bits; a
//! label is kept once per store in a reference-counted table and the row holds its index,
//! in the bit space of a NaN no computation produces (a `BOXED` prefix). The one number
//! whose bits fall in that space (that very NaN) goes to the table too, so every value comes
//! back bit for bit.
//!
//! The table only holds labels some waiting row refers to (a row's reference is released
//! when it is matched, replaced, evicted or expires), so it is bounded by the store's
//! waiting rows; freed entries are reused before the table grows.

use std::hash::{BuildHasher, RandomState};

use super::index::Index;
use crate::record::FeatureValue;

/// The high 32 bits of a boxed code: a negative quiet NaN with a payload of no arithmetic.
const BOXED: u64 = 0xFFFA_5E7C_0000_0000;
const BOX_MASK: u64 = 0xFFFF_FFFF_0000_0000;
/// [`FeatureValue::Missing`].
const MISSING: u64 = BOXED | 0xFFFF_FFFF;
/// A row that needs no value any more (matched, or of a replaced request).
pub(super) const SPENT: u64 = BOXED | 0xFFFF_FFFE;
/// Table indices stay below this.
const MAX_INDEX: u32 = 0xFFFF_FFF0;

/// A value the table holds.
#[derive(Debug)]
enum Label {
    /// A class label (`Box<str>`: 16 bytes, no spare capacity).
    Text(Box<str>),
    /// A number whose bits are in the boxed space.
    Bits(u64),
    /// A free entry.
    Free,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct Labels {
    values: Vec<Label>,
    /// Rows referring to each entry (0: free).
    refs: Vec<u32>,
    /// Free entries, reused first.
    free: Vec<u32>,
    /// Entries by the hash of their value.
    index: Index,
    hasher: RandomState,
}

impl Labels {
    /// An empty table.
    pub(super) fn new() -> Self {
        Labels {
            values: Vec::new(),
            refs: Vec::new(),
            free: Vec::new(),
            index: Index::new(),
            hasher: RandomState::new(),
        }
    }

    /// Distinct values held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// Heap bytes (capacities and the labels' text).
    pub(super) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let text: usize = self
            .values
            .iter()
            .map(|v| match v {
                Label::Text(t) => t.len(),
                _ => 0,
            })
            .sum();
        self.values.capacity() * size_of::<Label>()
            + text
            + self.refs.capacity() * size_of::<u32>()
            + self.free.capacity() * size_of::<u32>()
            + self.index.heap_bytes()
    }

    /// The hash a label's entry is indexed by (also what [`Labels::release`] removes).
    fn hash_text(&self, t: &str) -> u64 {
        self.hasher.hash_one((0u8, t))
    }

    /// The hash a boxed number's entry is indexed by.
    fn hash_bits(&self, bits: u64) -> u64 {
        self.hasher.hash_one((1u8, bits))
    }

    /// The code a row keeps for `v`, taking a reference on a table entry when it needs one.
    pub(super) fn encode(&mut self, v: &FeatureValue) -> u64 {
        match v {
            FeatureValue::Number(x) if x.to_bits() & BOX_MASK != BOXED => x.to_bits(),
            FeatureValue::Missing => MISSING,
            // Unreachable while fewer than MAX_INDEX rows wait (the store's bound is far
            // below): the row then keeps no value rather than a wrong one.
            _ => self.intern(v).map_or(SPENT, |i| BOXED | u64::from(i)),
        }
    }

    fn intern(&mut self, v: &FeatureValue) -> Option<u32> {
        let h = match v {
            FeatureValue::Text(t) => self.hash_text(t),
            FeatureValue::Number(x) => self.hash_bits(x.to_bits()),
            FeatureValue::Missing => return None,
        };
        let tag = Index::tag(h);
        let values = &self.values;
        let found = self.index.find(tag, |i| match (values.get(i as usize), v) {
            (Some(Label::Text(a)), FeatureValue::Text(b)) => **a == **b,
            (Some(Label::Bits(a)), FeatureValue::Number(b)) => *a == b.to_bits(),
            _ => false,
        });
        if let Some(i) = found {
            if let Some(r) = self.refs.get_mut(i as usize) {
                *r += 1;
            }
            return Some(i);
        }
        let label = match v {
            FeatureValue::Text(t) => Label::Text(t.as_str().into()),
            FeatureValue::Number(x) => Label::Bits(x.to_bits()),
            FeatureValue::Missing => return None,
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let (Some(slot), Some(r)) = (
                    self.values.get_mut(i as usize),
                    self.refs.get_mut(i as usize),
                ) {
                    *slot = label;
                    *r = 1;
                }
                i
            }
            None => {
                let i = u32::try_from(self.values.len())
                    .ok()
                    .filter(|&i| i < MAX_INDEX)?;
                self.values.push(label);
                self.refs.push(1);
                i
            }
        };
        self.index.insert(tag, i);
        Some(i)
    }

    /// The value of a code (`None` for [`SPENT`]).
    pub(super) fn decode(&self, code: u64) -> Option<FeatureValue> {
        if code & BOX_MASK != BOXED {
            return Some(FeatureValue::Number(f64::from_bits(code)));
        }
        match code {
            MISSING => Some(FeatureValue::Missing),
            SPENT => None,
            _ => match self.values.get((code as u32) as usize)? {
                Label::Text(t) => Some(FeatureValue::Text(t.to_string())),
                Label::Bits(b) => Some(FeatureValue::Number(f64::from_bits(*b))),
                Label::Free => None,
            },
        }
    }

    /// Drops a row's reference taken by [`Labels::encode`].
    pub(super) fn release(&mut self, code: u64) {
        if code & BOX_MASK != BOXED || code == MISSING || code == SPENT {
            return;
        }
        let i = code as u32;
        let Some(r) = self.refs.get_mut(i as usize) else {
            return;
        };
        *r = r.saturating_sub(1);
        if *r > 0 {
            return;
        }
        let Some(slot) = self.values.get_mut(i as usize) else {
            return;
        };
        let h = match std::mem::replace(slot, Label::Free) {
            Label::Text(t) => self.hash_text(&t),
            Label::Bits(b) => self.hash_bits(b),
            Label::Free => return,
        };
        self.index.remove(Index::tag(h), i);
        self.free.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_bit_for_bit_and_labels_are_shared_and_freed() {
        let mut l = Labels::new();
        let boxed_nan = f64::from_bits(BOXED | 7);
        let values = [
            FeatureValue::Number(1.5),
            FeatureValue::Number(-0.0),
            FeatureValue::Number(f64::NAN),
            FeatureValue::Number(boxed_nan),
            FeatureValue::Missing,
            FeatureValue::Text("cat".into()),
            FeatureValue::Text(String::new()),
        ];
        let codes: Vec<u64> = values.iter().map(|v| l.encode(v)).collect();
        for (v, c) in values.iter().zip(&codes) {
            match (v, l.decode(*c)) {
                (FeatureValue::Number(a), Some(FeatureValue::Number(b))) => {
                    assert_eq!(a.to_bits(), b.to_bits())
                }
                (a, b) => assert_eq!(Some(a.clone()), b),
            }
        }
        assert_eq!(l.len(), 3, "the boxed NaN, cat and the empty label");
        let cat = l.encode(&FeatureValue::Text("cat".into()));
        assert_eq!(cat, codes[5], "one entry per distinct label");
        l.release(cat);
        assert_eq!(l.decode(codes[5]), Some(FeatureValue::Text("cat".into())));
        l.release(codes[5]);
        assert_eq!(l.len(), 2, "freed with its last row");
        let dog = l.encode(&FeatureValue::Text("dog".into()));
        assert_eq!(dog, codes[5], "the freed entry is reused");
        assert_eq!(l.decode(SPENT), None);
        for c in [codes[3], codes[6], dog] {
            l.release(c);
        }
        assert_eq!(l.len(), 0);
    }
}
