//! Live SHAP importances shared with the drift score: the last mean |φ| per feature of each
//! model, published by the explain engine and read by [`crate::drift`] to weight the share of
//! drifted features (docs/explainability.md, "Drift × importance").

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The last SHAP importance per model (one entry per model the explain engine saw, which
/// the model registry bounds).
#[derive(Debug, Default)]
pub struct LiveImportance {
    models: RwLock<HashMap<String, Arc<HashMap<String, f64>>>>,
}

impl LiveImportance {
    /// Replaces the importances of `model`.
    pub fn set(&self, model: &str, features: HashMap<String, f64>) {
        self.models
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(model.to_string(), Arc::new(features));
    }

    /// The importances of `model`, when SHAP importance was computed for it and some
    /// feature has a positive one.
    pub fn get(&self, model: &str) -> Option<Arc<HashMap<String, f64>>> {
        self.models
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
            .filter(|m| m.values().any(|v| *v > 0.0))
            .cloned()
    }
}
