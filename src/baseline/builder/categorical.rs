//! Categorical columns: exact counts up to a cap, the rest pooled into `__other__`.

use std::collections::HashMap;

use super::numeric::missing_ratio;
use super::BuildOptions;
use crate::baseline::reader::Cell;
use crate::baseline::snapshot::{
    format_number, text_category_key, FeatureBaseline, FeatureStats, FeatureType, NamedMap,
    OTHER_CATEGORY,
};

#[derive(Debug)]
pub(super) struct CategoricalAcc {
    /// Exact counts of the first `limit` distinct values.
    pub(super) counts: HashMap<String, u64>,
    /// Values seen after the table was full, not in it.
    pub(super) overflow: u64,
    /// Non-missing values.
    pub(super) count: u64,
    /// Distinct values tracked at most.
    pub(super) limit: usize,
}

impl CategoricalAcc {
    pub(super) fn new(limit: usize) -> Self {
        CategoricalAcc {
            counts: HashMap::new(),
            overflow: 0,
            count: 0,
            limit,
        }
    }

    #[inline]
    pub(super) fn push_key(&mut self, key: &str) {
        self.count += 1;
        if let Some(c) = self.counts.get_mut(key) {
            *c += 1;
        } else if self.counts.len() < self.limit {
            self.counts.insert(key.to_string(), 1);
        } else {
            self.overflow += 1;
        }
    }

    #[inline]
    pub(super) fn push(&mut self, cell: Cell<'_>) {
        match cell {
            Cell::Missing => {}
            Cell::Number(v) => {
                if v.is_finite() {
                    self.push_key(&format_number(v));
                }
            }
            Cell::Text(s) => {
                if let Some(key) = text_category_key(s) {
                    self.push_key(&key);
                }
            }
        }
    }

    /// Proportions (most frequent first, `__other__` last), distinct count, notes.
    pub(super) fn finish(self, max_categories: usize) -> (NamedMap<f64>, u64, Vec<String>) {
        let mut notes = Vec::new();
        let distinct = self.counts.len() as u64;
        let mut entries: Vec<(String, u64)> = self.counts.into_iter().collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut other = self.overflow;
        if let Some(pos) = entries.iter().position(|(k, _)| k == OTHER_CATEGORY) {
            other += entries.remove(pos).1;
        }
        let mut pooled_values = 0usize;
        if entries.len() > max_categories {
            pooled_values = entries.len() - max_categories;
            other += entries.drain(max_categories..).map(|(_, c)| c).sum::<u64>();
        }
        if self.overflow > 0 {
            notes.push(format!(
                "more than {} distinct values: values first seen after that were counted as {OTHER_CATEGORY}",
                self.limit
            ));
        }
        if pooled_values > 0 {
            notes.push(format!(
                "{distinct} distinct values: the {pooled_values} least frequent are pooled into {OTHER_CATEGORY}"
            ));
        }
        let total = self.count as f64;
        let mut map: Vec<(String, f64)> = entries
            .into_iter()
            .map(|(k, c)| (k, c as f64 / total))
            .collect();
        if other > 0 {
            map.push((OTHER_CATEGORY.to_string(), other as f64 / total));
        }
        (NamedMap(map), distinct, notes)
    }
}

pub(super) fn categorical_baseline(
    acc: CategoricalAcc,
    rows: u64,
    o: &BuildOptions,
    note: Option<String>,
) -> FeatureBaseline {
    let count = acc.count;
    let (categories, distinct, mut notes) = acc.finish(o.max_categories);
    if let Some(n) = note {
        notes.insert(0, n);
    }
    if count == 0 {
        notes.push("no values: every row is missing".to_string());
    }
    FeatureBaseline {
        kind: FeatureType::Categorical,
        stats: FeatureStats {
            count,
            missing_ratio: missing_ratio(count, rows),
            distinct: Some(distinct),
            ..FeatureStats::default()
        },
        bins: None,
        categories: Some(categories),
        sample: Vec::new(),
        sketch: None,
        thresholds: None,
        importance: None,
        notes,
    }
}
