//! What explanations report: the compared model output, permutation importances.

use serde::Serialize;

use crate::record::{FeatureValue, Prediction};

/// One model output reduced to what explanations compare.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Positive-class probability or numeric prediction.
    Score(f64),
    /// A class label (no probabilities returned).
    Label(String),
}

impl Output {
    /// The figure explanations compare for one prediction (see the module docs).
    pub(super) fn from_prediction(p: &Prediction) -> Output {
        if let Some(probs) = &p.probabilities {
            if let Some(v) = probs.get(1).or(probs.first()) {
                return Output::Score(*v);
            }
        }
        match &p.value {
            FeatureValue::Number(v) => Output::Score(*v),
            FeatureValue::Text(s) => Output::Label(s.clone()),
            FeatureValue::Missing => Output::Label(String::new()),
        }
    }

    /// `self − other` for scores; 1 when labels differ, else 0.
    pub fn minus(&self, other: &Output) -> f64 {
        match (self, other) {
            (Output::Score(a), Output::Score(b)) => a - b,
            (a, b) => f64::from(u8::from(a != b)),
        }
    }

    /// The output as it appears in an explanation.
    pub(super) fn to_json(&self) -> serde_json::Value {
        match self {
            Output::Score(v) => serde_json::json!(v),
            Output::Label(s) => serde_json::json!(s),
        }
    }
}

/// Importance of one feature.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeatureImportance {
    /// Feature name.
    pub feature: String,
    /// Mean |f(x) − f(x with the feature's column shuffled)|.
    pub importance: f64,
}

/// The last permutation importance of a model (`GET /api/v1/models/{model}/importance`).
#[derive(Debug, Clone, Serialize)]
pub struct ImportanceReport {
    /// Model name.
    pub model: String,
    /// Always `permutation`.
    pub method: &'static str,
    /// Rows the importance was computed on.
    pub rows: usize,
    /// Requests sent to the model server for it.
    pub requests: usize,
    /// Unix time (seconds) of the computation.
    pub computed_at: f64,
    /// Features, most important first.
    pub features: Vec<FeatureImportance>,
}

/// Mean |a − b| over paired outputs (0 without any).
pub(super) fn mean_abs_diff(a: &[Output], b: &[Output]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x.minus(y).abs()).sum::<f64>() / n as f64
}
