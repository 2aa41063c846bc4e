//! Performance metrics (SPEC section 6): model quality against ground truth, label-free
//! estimates, and how feedback was joined.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{model,metric}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelMetricLabels {
    /// Model name.
    pub model: String,
    /// `mae`, `rmse`, `r2`, `accuracy`, `precision`, `recall`, `f1`, `specificity` or
    /// `roc_auc`.
    pub metric: &'static str,
}

/// `{model,actual,predicted}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfusionLabels {
    /// Model name.
    pub model: String,
    /// The true label (or `__other__`).
    pub actual: String,
    /// The predicted label (or `__other__`).
    pub predicted: String,
}

/// `{model,result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedbackLabels {
    /// Model name.
    pub model: String,
    /// `matched`, `unmatched` or `late`.
    pub result: &'static str,
}

type F64Gauge = Gauge<f64, AtomicU64>;

/// The performance metric families.
#[derive(Debug, Default)]
pub struct PerformanceMetrics {
    /// `mlmon_performance{model,metric}`.
    pub performance: Family<ModelMetricLabels, F64Gauge>,
    /// `mlmon_estimated_performance{model,metric}`.
    pub estimated: Family<ModelMetricLabels, F64Gauge>,
    /// `mlmon_estimated_performance_sampling_error{model,metric}`.
    pub sampling_error: Family<ModelMetricLabels, F64Gauge>,
    /// `mlmon_confusion_matrix{model,actual,predicted}`.
    pub confusion: Family<ConfusionLabels, F64Gauge>,
    /// `mlmon_feedback_total{model,result}`.
    pub feedback: Family<FeedbackLabels, Counter>,
    /// The confusion cells exported per model (to remove those that left the window).
    confusion_cells: Mutex<HashMap<String, Vec<ConfusionLabels>>>,
}

impl PerformanceMetrics {
    /// Registers the group in `registry` (prefix `mlmon`).
    pub fn register(registry: &mut Registry) -> PerformanceMetrics {
        let m = PerformanceMetrics::default();
        registry.register(
            "performance",
            "Model performance over the window from ground truth (feedback): mae, rmse, r2 or accuracy, precision, recall, f1, specificity, roc_auc",
            m.performance.clone(),
        );
        registry.register(
            "estimated_performance",
            "Label-free performance estimate from the predicted probabilities (confidence-based, as NannyML's CBPE)",
            m.estimated.clone(),
        );
        registry.register(
            "estimated_performance_sampling_error",
            "Standard error of each label-free estimate for the window's size",
            m.sampling_error.clone(),
        );
        registry.register(
            "confusion_matrix",
            "Window counts of (actual, predicted) labels from ground truth (at most 16 labels, the rest __other__)",
            m.confusion.clone(),
        );
        registry.register(
            "feedback",
            "Ground-truth records received, by result: matched (joined to a prediction), unmatched (unknown, duplicate or unusable), late (after feedback.ttl)",
            m.feedback.clone(),
        );
        m
    }

    /// Sets `model`'s confusion matrix from its `(actual, predicted, count)` cells
    /// (removing cells no longer in it); no cells remove all.
    pub fn set_confusion<'a>(
        &self,
        model: &str,
        cells: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
    ) {
        let Ok(mut exported) = self.confusion_cells.lock() else {
            return;
        };
        let old = exported.remove(model).unwrap_or_default();
        let mut new = Vec::new();
        for (actual, predicted, count) in cells {
            let labels = ConfusionLabels {
                model: model.to_string(),
                actual: actual.to_string(),
                predicted: predicted.to_string(),
            };
            self.confusion.get_or_create(&labels).set(count as f64);
            new.push(labels);
        }
        for labels in old {
            if !new.contains(&labels) {
                self.confusion.remove(&labels);
            }
        }
        if !new.is_empty() {
            exported.insert(model.to_string(), new);
        }
    }
}
