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
    pub fn set(&self, model: &str, snapshot: Arc<Snapshot>) -> Result<Arc<Current>, RegistryError> {
        check_usable(&snapshot)?;
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
