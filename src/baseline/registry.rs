//! The baseline registry: the one place that knows which snapshot each model is compared
//! with. Snapshots come from files at start-up, from `PUT /api/v1/models/{m}/baseline`, or
//! from the first `baseline.capture_rows` live rows. Every install gets a new *generation*;
//! analyses keep the generation they built their state from and rebuild when it changes, so
//! no analysis has to ask another one (the drift engine used to be this registry).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;

use super::{BaselineBuilder, BuildOptions, FeatureBaseline, FeatureType, Snapshot};
use crate::record::ParsedExchange;
use crate::stats::sketch::REFERENCE_COMPRESSION;

/// The baseline a model uses now.
#[derive(Debug)]
pub struct Current {
    /// The snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Changes (grows) every time a snapshot is installed for any model.
    pub generation: u64,
    /// The snapshot's input feature order (names columns of unnamed tensors).
    pub order: Arc<Vec<String>>,
}

/// Why a snapshot cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The snapshot lacks what the analyses need (e.g. a numeric feature without bins).
    #[error("{feature}: {message}")]
    Unusable {
        /// The feature at fault.
        feature: String,
        /// What is missing.
        message: &'static str,
    },
}

/// Baselines of every model, plus live captures in progress.
#[derive(Debug)]
pub struct Registry {
    /// `baseline.capture_rows` (0: no capture).
    capture_rows: usize,
    /// Reference sample size of captured baselines (`drift.sample_size`).
    sample_size: usize,
    /// Last generation handed out.
    generation: AtomicU64,
    /// Installed baselines.
    current: DashMap<String, Arc<Current>>,
    /// Models whose baseline is being captured from live rows.
    captures: DashMap<String, Mutex<BaselineBuilder>>,
}

/// Checks that every feature carries what drift needs (bins or categories).
fn check_usable(snapshot: &Snapshot) -> Result<(), RegistryError> {
    let inputs = snapshot.features.iter();
    let output = snapshot.prediction.as_ref().map(|b| ("prediction", b));
    for (name, b) in inputs.chain(output) {
        let missing = |b: &FeatureBaseline| match b.kind {
            FeatureType::Numeric if b.bins.is_none() => Some("numeric feature has no bins"),
            FeatureType::Categorical if b.categories.is_none() => {
                Some("categorical feature has no categories")
            }
            _ => None,
        };
        if let Some(message) = missing(b) {
            return Err(RegistryError::Unusable {
                feature: name.to_string(),
                message,
            });
        }
    }
    Ok(())
}

/// Drops what no analysis reads from an installed snapshot's input features: of the
/// reference `sample` and the full-column `sketch`, only the one the drift engine compares
/// with (`drift::engine::reference_sketch`) is kept; the other is a second copy of the same
/// distribution (up to 40 KiB for a 5 000-value sample, up to 48 KiB for a sketch at the
/// default compression).
///
/// - The sample holds the whole column (baselines of at most `--sample-size` rows): the
///   sample is the exact distribution; it stays, unless the sketch is exact (every cell an
///   atom) and smaller (8 bytes per sorted value against 24 per atom: a 2 000-row column of
///   distinct values keeps 16 KB of sample rather than a 48 KB sketch, a boolean column its
///   two atoms). The other goes.
/// - The sample is part of a larger column and the snapshot has a sketch (format 2): the
///   sketch is the reference; the sample goes, and an inexact sketch is kept at
///   [`REFERENCE_COMPRESSION`] (≤ 501 cells, ≤ 12 KiB; the file's default is 2 000 cells):
///   the live windows it is compared with are coarser still (`drift.sketch_compression`),
///   and KS and Wasserstein stay within SPEC section 5's accuracy (`stats::sketch` tests).
/// - Format 1 (no sketch): the sample is the reference and stays.
///
/// The prediction and the target keep both (the task is decided from their samples), and
/// nothing else of the snapshot changes.
pub fn slim(snapshot: &mut Snapshot) {
    for (_, b) in snapshot.features.0.iter_mut() {
        if b.kind != FeatureType::Numeric {
            continue;
        }
        let whole_column = b.sample.len() as u64 == b.stats.count;
        match &mut b.sketch {
            // Two exact references: the smaller stays (a sorted value is 8 bytes, an atom
            // 24; a column of few distinct values keeps its sketch).
            Some(s) if whole_column => {
                if s.memory_bytes() < b.sample.len() * std::mem::size_of::<f64>() {
                    b.sample = Vec::new();
                } else {
                    b.sketch = None;
                }
            }
            Some(s) if s.rank_error_bound() == 0.0 => b.sample = Vec::new(),
            Some(s) => {
                *s = s.recompressed(REFERENCE_COMPRESSION);
                b.sample = Vec::new();
            }
            None => {}
        }
        b.sample.shrink_to_fit();
    }
}

impl Registry {
    /// An empty registry capturing `capture_rows` live rows per model without a baseline
    /// (0: none), keeping `sample_size` reference values per captured feature.
    pub fn new(capture_rows: usize, sample_size: usize) -> Self {
        Registry {
            capture_rows,
            sample_size,
            generation: AtomicU64::new(0),
            current: DashMap::new(),
            captures: DashMap::new(),
        }
    }

    /// Installs (or replaces) the baseline of `model`; analyses start afresh from it.
    ///
    /// A snapshot the registry holds alone (loaded from a file, received through the API,
    /// captured) is [slimmed](slim) first: each input feature keeps one KS/Wasserstein
    /// reference, not two.
    pub fn set(
        &self,
        model: &str,
        mut snapshot: Arc<Snapshot>,
    ) -> Result<Arc<Current>, RegistryError> {
        check_usable(&snapshot)?;
        if let Some(s) = Arc::get_mut(&mut snapshot) {
            slim(s);
        }
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let order = Arc::new(snapshot.features.names().map(str::to_string).collect());
        let current = Arc::new(Current {
            snapshot,
            generation,
            order,
        });
        self.captures.remove(model);
        self.current.insert(model.to_string(), current.clone());
        Ok(current)
    }

    /// The baseline of `model` now, if it has one.
    pub fn get(&self, model: &str) -> Option<Arc<Current>> {
        self.current.get(model).map(|c| c.clone())
    }

    /// The snapshot of `model`, if it has one.
    pub fn snapshot(&self, model: &str) -> Option<Arc<Snapshot>> {
        self.get(model).map(|c| c.snapshot.clone())
    }

    /// Input feature order of `model` (empty without a baseline).
    pub fn order(&self, model: &str) -> Arc<Vec<String>> {
        self.get(model).map(|c| c.order.clone()).unwrap_or_default()
    }

    /// Whether `model` has a baseline.
    pub fn contains(&self, model: &str) -> bool {
        self.current.contains_key(model)
    }

    /// Models with a baseline or a capture in progress, sorted.
    pub fn models(&self) -> Vec<String> {
        let mut names: Vec<String> = self.current.iter().map(|e| e.key().clone()).collect();
        names.extend(self.captures.iter().map(|e| e.key().clone()));
        names.sort();
        names.dedup();
        names
    }

    /// Rows still to capture before `model` has a baseline; `None` when it has one or
    /// nothing is being captured.
    pub fn capture_pending(&self, model: &str) -> Option<usize> {
        let c = self.captures.get(model)?;
        let c = c.lock().ok()?;
        Some(self.capture_rows.saturating_sub(c.row_count()))
    }

    /// Feeds one exchange of a model without a baseline to its capture (when
    /// `baseline.capture_rows` > 0). Returns the new baseline once enough rows are in.
    pub fn capture(
        &self,
        model: &str,
        version: Option<&str>,
        parsed: &ParsedExchange,
    ) -> Option<Arc<Current>> {
        if self.capture_rows == 0 || self.current.contains_key(model) {
            return None;
        }
        let entry = self.captures.entry(model.to_string()).or_insert_with(|| {
            let mut options = BuildOptions::new(model);
            options.model_version = version.map(str::to_string);
            options.source = Some(format!(
                "captured from the first {} live rows",
                self.capture_rows
            ));
            options.sample_size = self.sample_size;
            Mutex::new(BaselineBuilder::new(options, self.capture_rows))
        });
        let full = {
            let Ok(mut capture) = entry.lock() else {
                return None;
            };
            for row in &parsed.rows {
                capture.push_row(row);
            }
            for p in &parsed.predictions {
                capture.push_prediction(p);
            }
            capture.is_full()
        };
        drop(entry);
        if !full {
            return None;
        }
        let (_, capture) = self.captures.remove(model)?;
        let capture = capture.into_inner().ok()?;
        match capture.finish() {
            Ok(snapshot) => {
                tracing::info!(model, id = %snapshot.id, rows = snapshot.row_count, "baseline captured from live traffic");
                match self.set(model, Arc::new(snapshot)) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!(model, error = %e, "captured baseline is unusable");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(model, error = %e, "could not build a baseline from captured rows");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FeatureValue, Prediction, Row};

    fn exchange(rows: usize) -> ParsedExchange {
        ParsedExchange {
            rows: (0..rows)
                .map(|i| Row {
                    values: vec![("x".into(), FeatureValue::Number(i as f64))],
                })
                .collect(),
            predictions: (0..rows)
                .map(|i| Prediction {
                    value: FeatureValue::Number((i % 2) as f64),
                    probabilities: None,
                })
                .collect(),
        }
    }

    #[test]
    fn capture_installs_a_baseline_with_a_new_generation() {
        let r = Registry::new(100, 50);
        assert!(r.capture("m", None, &exchange(60)).is_none());
        assert_eq!(r.capture_pending("m"), Some(40));
        assert_eq!(r.models(), vec!["m".to_string()]);
        let c = r.capture("m", Some("v2"), &exchange(60)).expect("captured");
        assert_eq!(c.order.as_slice(), ["x".to_string()]);
        assert_eq!(r.capture_pending("m"), None);
        assert_eq!(r.get("m").map(|c| c.generation), Some(c.generation));
        // A replaced baseline is a new generation; captures stop once one exists.
        let again = r.set("m", c.snapshot.clone()).expect("usable");
        assert!(again.generation > c.generation);
        assert!(r.capture("m", None, &exchange(500)).is_none());
    }

    /// A numeric input entry of `n` distinct values whose sample holds `sampled` of them.
    fn numeric_entry(n: usize, sampled: usize) -> FeatureBaseline {
        use crate::stats::sketch::{QuantileSketch, DEFAULT_COMPRESSION};
        let values: Vec<f64> = (0..n).map(|i| (i as f64 * 0.618).sin()).collect();
        let mut sample: Vec<f64> = values.iter().copied().take(sampled).collect();
        sample.sort_by(f64::total_cmp);
        FeatureBaseline {
            kind: FeatureType::Numeric,
            stats: crate::baseline::FeatureStats {
                count: n as u64,
                ..Default::default()
            },
            bins: Some(crate::baseline::Bins {
                edges: vec![0.0],
                proportions: vec![0.5, 0.5],
            }),
            categories: None,
            sample,
            sketch: Some(QuantileSketch::from_values(DEFAULT_COMPRESSION, &values)),
            thresholds: None,
            importance: None,
            notes: Vec::new(),
        }
    }

    fn snapshot_with(x: FeatureBaseline, prediction: Option<FeatureBaseline>) -> Snapshot {
        Snapshot {
            format_version: crate::baseline::FORMAT_VERSION,
            model: crate::baseline::ModelInfo {
                name: "m".into(),
                version: None,
            },
            id: "test".into(),
            created_at: None,
            source: None,
            row_count: x.stats.count,
            build: None,
            notes: Vec::new(),
            features: crate::baseline::NamedMap(vec![("x".to_string(), x)]),
            prediction,
            target: None,
            probability: None,
            joint_sample: None,
        }
    }

    #[test]
    fn installed_snapshots_keep_one_reference_per_input() {
        let r = Registry::new(0, 50);
        let cases = [
            // (values, sampled, keeps the sample, keeps the sketch)
            (1_500, 1_500, true, false), // whole column, exact sketch: the smaller sample
            (4_000, 4_000, true, false), // whole column, inexact sketch: the sample
            (20_000, 5_000, false, true), // part of a larger column: the sketch
        ];
        for (n, sampled, keeps_sample, keeps_sketch) in cases {
            let before = snapshot_with(numeric_entry(n, sampled), Some(numeric_entry(n, sampled)));
            let exact = before.features.0[0]
                .1
                .sketch
                .as_ref()
                .is_some_and(|s| s.rank_error_bound() == 0.0);
            assert_eq!(exact, n == 1_500, "{n} values");
            let installed = r
                .set("m", Arc::new(before.clone()))
                .expect("usable")
                .snapshot
                .clone();
            let (b, a) = (&before.features.0[0].1, &installed.features.0[0].1);
            // What is kept is kept whole: the reference drift compares with is unchanged.
            if keeps_sample {
                assert_eq!(a.sample, b.sample, "{n} values");
            } else {
                assert!(a.sample.is_empty(), "{n} values");
            }
            if keeps_sketch {
                // Exact sketches as they are; a sketch of a larger column at the reference
                // compression.
                let expected = b.sketch.as_ref().map(|s| {
                    if exact {
                        s.clone()
                    } else {
                        s.recompressed(REFERENCE_COMPRESSION)
                    }
                });
                assert_eq!(a.sketch, expected, "{n} values");
                assert!(a.sketch.as_ref().is_some_and(|s| s.len() <= 2_000));
            } else {
                assert!(a.sketch.is_none(), "{n} values");
            }
            assert_eq!((&a.stats, &a.bins), (&b.stats, &b.bins));
            // The prediction keeps both (the task is decided from its sample).
            assert_eq!(installed.prediction, before.prediction);
        }
        // A snapshot shared with its caller is installed as it is.
        let shared = Arc::new(snapshot_with(numeric_entry(20_000, 5_000), None));
        let installed = r.set("m", shared.clone()).expect("usable").snapshot.clone();
        assert_eq!(installed.features.0[0].1.sample.len(), 5_000);
    }

    #[test]
    fn no_capture_when_disabled() {
        let r = Registry::new(0, 50);
        assert!(r.capture("m", None, &exchange(10)).is_none());
        assert!(r.models().is_empty());
        assert_eq!(r.capture_pending("m"), None);
    }

    #[test]
    fn unusable_snapshots_are_refused_naming_the_feature() {
        let r = Registry::new(10, 50);
        let c = r.capture("m", None, &exchange(10)).expect("captured");
        let mut broken = (*c.snapshot).clone();
        if let Some((_, f)) = broken.features.0.first_mut() {
            f.bins = None;
        }
        let e = r.set("m", Arc::new(broken)).expect_err("refused");
        assert_eq!(e.to_string(), "x: numeric feature has no bins");
        // The old baseline stays.
        assert_eq!(r.get("m").map(|x| x.generation), Some(c.generation));
    }
}
