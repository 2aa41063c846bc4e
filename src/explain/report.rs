//! What explanations report: the compared model output (picked by the positive class and
//! the baseline's class order), importances.

use serde::Serialize;

use crate::baseline::Snapshot;
use crate::record::label_of_str;
use crate::record::{FeatureValue, Prediction};

/// Which output of a prediction explanations compare: the positive-class score, picked by
/// `performance.positive_class` and the baseline's class order (docs/explainability.md).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputPicker {
    /// `performance.positive_class`, normalised like labels.
    positive: String,
    /// The baseline's class order of the score columns, normalised.
    classes: Vec<String>,
}

impl OutputPicker {
    /// The picker for a model with `snapshot` (its `probability.classes`) and the configured
    /// positive class.
    pub fn new(positive_class: &str, snapshot: Option<&Snapshot>) -> OutputPicker {
        OutputPicker {
            positive: label_of_str(positive_class),
            classes: snapshot
                .and_then(|s| s.probability.as_ref())
                .map(|p| p.classes.iter().map(|c| label_of_str(c)).collect())
                .unwrap_or_default(),
        }
    }

    /// The score column of the positive class among `k` columns: its position in the
    /// baseline's classes when they are declared for `k` columns; else, scikit-learn's
    /// order of 0/1 (or 0..k−1) labels: the column numbered by the positive class when it is
    /// an integer below k; else the second column (`predict_proba[:, 1]`).
    pub fn column(&self, k: usize) -> usize {
        if k <= 1 {
            return 0;
        }
        if self.classes.len() == k {
            if let Some(i) = self.classes.iter().position(|c| *c == self.positive) {
                return i;
            }
        }
        match self.positive.parse::<usize>() {
            Ok(i) if i < k => i,
            _ => 1,
        }
    }

    /// The output of one prediction.
    pub fn output(&self, p: &Prediction) -> Output {
        if let Some(probs) = &p.probabilities {
            if let Some(v) = probs.get(self.column(probs.len())) {
                return Output::Score(*v);
            }
        }
        match &p.value {
            FeatureValue::Number(v) => Output::Score(*v),
            FeatureValue::Text(s) => Output::Label(s.clone()),
            FeatureValue::Missing => Output::Label(String::new()),
        }
    }

    /// The output as a number for KernelSHAP and sensitivity: the score, else 1 when the
    /// label is the positive class and 0 otherwise.
    pub fn score(&self, o: &Output) -> f64 {
        match o {
            Output::Score(v) => *v,
            Output::Label(l) => f64::from(u8::from(label_of_str(l) == self.positive)),
        }
    }
}

/// One model output reduced to what explanations compare.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Positive-class probability or numeric prediction.
    Score(f64),
    /// A class label (no probabilities returned).
    Label(String),
}

impl Output {
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
    /// The method's importance (see [`ImportanceReport::method`]).
    pub importance: f64,
}

/// The last importance of a model by one method (`GET /api/v1/models/{model}/importance`).
#[derive(Debug, Clone, Serialize)]
pub struct ImportanceReport {
    /// Model name.
    pub model: String,
    /// `permutation`, `shap` or `sensitivity`.
    pub method: &'static str,
    /// Rows the importance was computed on.
    pub rows: usize,
    /// Rows sent to the model server for it.
    pub model_rows: usize,
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
