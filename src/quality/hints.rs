//! Row position hints resolved inline, shared by the quality and anomaly engines: the logic
//! of [`crate::record::PositionHints`] (a row position remembers the feature it resolved to
//! last time; a name that differs falls back to the lookup), with the hit path inlined into
//! the engines' per-value loops and names of 8 to 16 bytes compared in two word loads
//! instead of a `bcmp` call (issue 13: both were a call per analysed value).

use crate::record::MAX_HINTED_POSITIONS;

/// The feature index each row position resolved to last time (`usize::MAX`: none).
#[derive(Debug, Default, Clone)]
pub(crate) struct RowHints(Vec<usize>);

impl RowHints {
    /// The index of `name` found at row position `position`: the remembered index when
    /// `name_of(index)` is `name`, else `lookup(name)` (remembered for next time). Same
    /// answers as [`crate::record::PositionHints::resolve`].
    #[inline]
    pub(crate) fn resolve<'n>(
        &mut self,
        position: usize,
        name: &str,
        name_of: impl Fn(usize) -> Option<&'n str>,
        lookup: impl FnOnce(&str) -> Option<usize>,
    ) -> Option<usize> {
        if let Some(&i) = self.0.get(position) {
            if name_of(i).is_some_and(|n| same_name(n, name)) {
                return Some(i);
            }
        }
        self.remember(position, lookup(name))
    }

    /// Remembers `found` for `position` (within [`MAX_HINTED_POSITIONS`]).
    #[cold]
    fn remember(&mut self, position: usize, found: Option<usize>) -> Option<usize> {
        if position < MAX_HINTED_POSITIONS {
            if self.0.len() <= position {
                self.0.resize(position + 1, usize::MAX);
            }
            if let Some(slot) = self.0.get_mut(position) {
                *slot = found.unwrap_or(usize::MAX);
            }
        }
        found
    }
}

/// `a == b`, with names of 8 to 16 bytes (`feature_07`, `petal_length`) compared as their
/// first and last 8 bytes (overlapping words: both equal exactly when the bytes are).
#[inline]
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if (8..=16).contains(&a.len()) {
        let word = |s: &[u8], at: usize| {
            s.get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map(u64::from_ne_bytes)
        };
        let tail = a.len() - 8;
        return word(a, 0) == word(b, 0) && word(a, tail) == word(b, tail);
    }
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_is_equality() {
        let names = [
            "",
            "a",
            "feature",
            "feature_",
            "feature_0",
            "feature_00",
            "feature_01",
            "geature_00",
            "feature_00_x",
            "feature_00_y",
            "a_very_long_feature_name_00",
            "a_very_long_feature_name_01",
            "0123456789abcdef",
            "0123456789abcdeF",
            "X123456789abcdef",
            "0123456789abcdefg",
        ];
        for a in names {
            for b in names {
                assert_eq!(same_name(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn hints_resolve_like_the_lookup_in_any_order() {
        let names = ["alpha_feature", "b", "feature_02"];
        let lookup = |n: &str| names.iter().position(|m| *m == n);
        let mut hints = RowHints::default();
        let rows: [&[&str]; 4] = [
            &["alpha_feature", "b", "feature_02"],
            &["feature_02", "alpha_feature", "unknown"],
            &["b", "b", "feature_02"],
            &["alpha_feature", "b", "feature_02"],
        ];
        for row in rows {
            for (position, name) in row.iter().enumerate() {
                let got = hints.resolve(position, name, |i| names.get(i).copied(), lookup);
                assert_eq!(got, lookup(name), "{name} at {position}");
            }
        }
    }
}
