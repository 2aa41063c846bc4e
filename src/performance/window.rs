//! The estimate's window of scored predictions, as flat columns.
//!
//! A row is its time (milliseconds after the window's epoch, `u32`), its score count
//! (`u16`, at most [`MAX_CLASSES`](super::MAX_CLASSES)), its predicted label (an index
//! into a small per-model table of labels, `u16`) and its scores, one after the other
//! in one `f64` column: 8 bytes of bookkeeping plus 8 per score, 24 bytes for a binary
//! classifier's row (was about 130 with an `Instant`, a `Vec<f64>` and an optional `String`
//! per row, and up to twice that with the `VecDeque`'s doubling). The columns grow by
//! doubling only up to their bound, never past it. Scores stay `f64`: the estimate is
//! computed from exactly the values the model returned.

use std::collections::{HashMap, VecDeque};

use tokio::time::Instant;

/// Distinct predicted labels kept per model (a label is only read when it names one of
/// the classifier's classes, at most [`MAX_CLASSES`](super::MAX_CLASSES)). When the table
/// is full it is rebuilt from the rows in the window; a label that still does not fit is
/// kept as "no label" (its row is decided by the decision rule).
pub const MAX_LABELS: usize = 1_024;

const NO_LABEL: u16 = u16::MAX;

/// Up to this many labels, [`ProbabilityWindow::intern`] finds a label by comparison.
const SCAN_LABELS: usize = 8;

/// Offsets past this rebase the epoch (long uptimes; the window itself is far shorter).
const REBASE_MS: u64 = 1 << 31;

/// Pushes `v`, growing the deque to at most `cap` elements (doubling below that).
fn push_bounded<T>(d: &mut VecDeque<T>, v: T, cap: usize) {
    if d.len() == d.capacity() {
        let want = d.len().saturating_mul(2).max(16).min(cap).max(d.len() + 1);
        d.reserve_exact(want - d.len());
    }
    d.push_back(v);
}

/// Predicted labels by index.
#[derive(Debug, Default)]
struct Labels {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u16>,
    /// Rows pushed since the table was last rebuilt (a full table is rebuilt at most once
    /// per window's worth of rows).
    since_rebuild: usize,
}

/// The rows with class scores of one model, oldest first.
#[derive(Debug, Default)]
pub struct ProbabilityWindow {
    epoch: Option<Instant>,
    at_ms: VecDeque<u32>,
    widths: VecDeque<u16>,
    labels: VecDeque<u16>,
    scores: VecDeque<f64>,
    table: Labels,
    /// Rows kept at most.
    cap: usize,
    /// The last [`ProbabilityWindow::offset`] that did not rebase: (time, epoch, offset).
    /// The rows of one exchange share their time, so only its first row computes it.
    last_offset: Option<(Instant, Instant, u32)>,
}

impl ProbabilityWindow {
    /// An empty window of at most `cap` rows.
    pub fn new(cap: usize) -> Self {
        ProbabilityWindow {
            cap: cap.max(1),
            ..Default::default()
        }
    }

    /// Rows in the window.
    pub fn len(&self) -> usize {
        self.widths.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.widths.is_empty()
    }

    /// Scores of the newest row.
    pub fn last_width(&self) -> Option<usize> {
        self.widths.back().map(|w| usize::from(*w))
    }

    fn offset(&mut self, at: Instant) -> u32 {
        if let (Some((t, e, ms)), Some(epoch)) = (self.last_offset, self.epoch) {
            if t == at && e == epoch {
                return ms;
            }
        }
        let epoch = *self.epoch.get_or_insert(at);
        let mut ms =
            u64::try_from(at.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX);
        if ms >= REBASE_MS {
            // Move the epoch to the oldest row (or to now without rows).
            let shift = self.at_ms.front().map_or(ms, |t| u64::from(*t));
            self.epoch = Some(epoch + std::time::Duration::from_millis(shift));
            let shift32 = u32::try_from(shift).unwrap_or(u32::MAX);
            for t in self.at_ms.iter_mut() {
                *t = t.saturating_sub(shift32);
            }
            ms -= shift;
            self.last_offset = None;
            return u32::try_from(ms).unwrap_or(u32::MAX);
        }
        let ms = u32::try_from(ms).unwrap_or(u32::MAX);
        self.last_offset = Some((at, epoch, ms));
        ms
    }

    /// Adds a row (the oldest goes when the window is full).
    pub fn push(&mut self, at: Instant, scores: &[f64], predicted: Option<&str>) {
        let Ok(width) = u16::try_from(scores.len()) else {
            return;
        };
        if self.len() >= self.cap {
            self.pop_front();
        }
        let t = self.offset(at);
        let label = predicted.map_or(NO_LABEL, |l| self.intern(l));
        let cap = self.cap;
        push_bounded(&mut self.at_ms, t, cap);
        push_bounded(&mut self.widths, width, cap);
        push_bounded(&mut self.labels, label, cap);
        let score_cap = cap.saturating_mul(usize::from(width).max(1));
        for s in scores {
            push_bounded(&mut self.scores, *s, score_cap);
        }
        self.table.since_rebuild = self.table.since_rebuild.saturating_add(1);
    }

    fn pop_front(&mut self) {
        self.at_ms.pop_front();
        self.labels.pop_front();
        if let Some(w) = self.widths.pop_front() {
            self.scores.drain(..usize::from(w).min(self.scores.len()));
        }
    }

    /// Drops the rows older than `cutoff`.
    pub fn expire(&mut self, cutoff: Instant) {
        let Some(epoch) = self.epoch else { return };
        let Some(since) = cutoff.checked_duration_since(epoch) else {
            return;
        };
        let cutoff_ms = since.as_millis().min(u128::from(u32::MAX)) as u32;
        while self.at_ms.front().is_some_and(|t| *t < cutoff_ms) {
            self.pop_front();
        }
        if self.is_empty() {
            // Release the columns of an idle model.
            *self = ProbabilityWindow {
                table: std::mem::take(&mut self.table),
                ..ProbabilityWindow::new(self.cap)
            };
        }
    }

    fn intern(&mut self, label: &str) -> u16 {
        // A classifier has few labels: comparing them is cheaper than hashing one per row
        // (`names[i]` and `index` agree: the same index either way).
        if self.table.names.len() <= SCAN_LABELS {
            if let Some(i) = self.table.names.iter().position(|n| **n == *label) {
                return i as u16;
            }
        } else if let Some(i) = self.table.index.get(label) {
            return *i;
        }
        if self.table.names.len() >= MAX_LABELS
            && self.table.since_rebuild >= self.cap.min(self.len().max(1))
        {
            self.rebuild_labels();
        }
        if self.table.names.len() >= MAX_LABELS {
            return NO_LABEL;
        }
        let i = self.table.names.len() as u16;
        self.table.names.push(label.into());
        self.table.index.insert(label.into(), i);
        i
    }

    /// Keeps the labels of the rows in the window only.
    fn rebuild_labels(&mut self) {
        let old = std::mem::take(&mut self.table.names);
        self.table.index.clear();
        let mut remap = vec![NO_LABEL; old.len()];
        for l in self.labels.iter_mut() {
            if *l == NO_LABEL {
                continue;
            }
            let i = usize::from(*l);
            let (Some(name), Some(slot)) = (old.get(i), remap.get_mut(i)) else {
                *l = NO_LABEL;
                continue;
            };
            if *slot == NO_LABEL {
                *slot = self.table.names.len() as u16;
                self.table.names.push(name.clone());
                self.table.index.insert(name.clone(), *slot);
            }
            *l = *slot;
        }
        self.table.since_rebuild = 0;
    }

    /// The rows as (scores, predicted label), oldest first.
    pub fn rows(&mut self) -> impl Iterator<Item = (&[f64], Option<&str>)> {
        let scores: &[f64] = self.scores.make_contiguous();
        let names = &self.table.names;
        let mut at = 0_usize;
        self.widths.iter().zip(&self.labels).map(move |(w, l)| {
            let end = (at + usize::from(*w)).min(scores.len());
            let row = &scores[at.min(end)..end];
            at = end;
            let label = names.get(usize::from(*l)).map(|s| &**s);
            (row, label)
        })
    }

    /// Heap bytes held (capacities; the label table's entries included).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let text: usize = self.table.names.iter().map(|s| 2 * s.len()).sum();
        self.at_ms.capacity() * size_of::<u32>()
            + self.widths.capacity() * size_of::<u16>()
            + self.labels.capacity() * size_of::<u16>()
            + self.scores.capacity() * size_of::<f64>()
            + self.table.names.capacity() * size_of::<Box<str>>()
            + self.table.index.capacity() * (size_of::<(Box<str>, u16)>() + 1)
            + text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn rows_come_back_in_order_and_expire_by_time() {
        let mut w = ProbabilityWindow::new(3);
        let t0 = Instant::now();
        w.push(t0, &[0.2, 0.8], Some("1"));
        w.push(t0 + Duration::from_secs(1), &[0.1, 0.3, 0.6], None);
        w.push(t0 + Duration::from_secs(2), &[0.9, 0.1], Some("0"));
        let rows: Vec<(Vec<f64>, Option<String>)> = w
            .rows()
            .map(|(s, l)| (s.to_vec(), l.map(str::to_string)))
            .collect();
        assert_eq!(
            rows,
            vec![
                (vec![0.2, 0.8], Some("1".into())),
                (vec![0.1, 0.3, 0.6], None),
                (vec![0.9, 0.1], Some("0".into())),
            ]
        );
        // Full: the oldest goes.
        w.push(t0 + Duration::from_secs(3), &[0.5, 0.5], Some("1"));
        assert_eq!(w.len(), 3);
        assert_eq!(w.rows().next().map(|(s, _)| s.len()), Some(3));
        // Rows older than the cutoff go; a row at the cutoff stays.
        w.expire(t0 + Duration::from_secs(2));
        assert_eq!(w.len(), 2);
        assert_eq!(w.last_width(), Some(2));
        w.expire(t0 + Duration::from_secs(10));
        assert!(w.is_empty());
        assert_eq!(w.rows().count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn columns_never_grow_past_the_bound() {
        let cap = 1_000;
        let mut w = ProbabilityWindow::new(cap);
        let t = Instant::now();
        for i in 0..5 * cap {
            w.push(t, &[0.25, 0.75], Some(if i % 2 == 0 { "a" } else { "b" }));
        }
        assert_eq!(w.len(), cap);
        // 2 + 2 + 4 bytes of bookkeeping and 16 of scores per row, no doubling past cap.
        let per_row = w.heap_bytes() as f64 / cap as f64;
        assert!(per_row <= 24.5, "{per_row} B per row");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_label_table_is_rebuilt_from_the_window() {
        let mut w = ProbabilityWindow::new(10);
        let t = Instant::now();
        for i in 0..3 * MAX_LABELS {
            w.push(t, &[0.5, 0.5], Some(&format!("label-{i}")));
        }
        let labels: Vec<Option<String>> = w.rows().map(|(_, l)| l.map(str::to_string)).collect();
        let expected: Vec<Option<String>> = (3 * MAX_LABELS - 10..3 * MAX_LABELS)
            .map(|i| Some(format!("label-{i}")))
            .collect();
        assert_eq!(labels, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn offsets_are_rebased_on_long_uptimes() {
        let mut w = ProbabilityWindow::new(10);
        let t0 = Instant::now();
        w.push(t0, &[1.0], None);
        let late = t0 + Duration::from_millis(REBASE_MS + 5_000);
        w.push(late, &[0.5], None);
        w.expire(late - Duration::from_secs(1));
        assert_eq!(w.len(), 1, "the old row expired, the new one stayed");
        assert_eq!(w.rows().next().map(|(s, _)| s.to_vec()), Some(vec![0.5]));
    }
}
