//! What the drift engine reports: the serializable report types, and how one feature's
//! drift and status are computed from its window against the baseline and the thresholds.

use serde::Serialize;

use super::engine::FeatureState;
use super::window::{Layout, WindowView};
use crate::baseline::{Snapshot, ThresholdPair};
use crate::config::Level;
use crate::record::Kind;
use crate::stats;
use crate::stats::sketch::QuantileSketch;

/// Drift status of a feature or model: the one warning/critical status every analysis
/// shares.
pub use crate::config::Status;

/// Warning/critical pair in a report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LevelReport {
    /// Warning level.
    pub warning: f64,
    /// Critical level.
    pub critical: f64,
}

impl From<Level> for LevelReport {
    fn from(l: Level) -> Self {
        LevelReport {
            warning: l.warning,
            critical: l.critical,
        }
    }
}

impl From<ThresholdPair> for LevelReport {
    fn from(l: ThresholdPair) -> Self {
        LevelReport {
            warning: l.warning,
            critical: l.critical,
        }
    }
}

/// The thresholds applied to a feature.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThresholdsReport {
    /// PSI levels (always applied).
    pub psi: Option<LevelReport>,
    /// JS levels, when configured.
    pub js_divergence: Option<LevelReport>,
    /// KS statistic levels, when configured.
    pub ks_statistic: Option<LevelReport>,
    /// KS p-value levels (lower is worse), when the baseline sets them.
    pub ks_pvalue: Option<LevelReport>,
    /// Wasserstein levels, when the baseline sets them.
    pub wasserstein: Option<LevelReport>,
    /// Chi-square p-value levels (lower is worse), when the baseline sets them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2_pvalue: Option<LevelReport>,
    /// Whether the PSI levels were widened by `drift.adaptive`.
    pub adaptive: bool,
}

/// Window counts of a feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowCounts {
    /// Values counted (not missing, right type).
    pub count: u64,
    /// Missing values.
    pub missing: u64,
    /// Values of the wrong type.
    pub invalid: u64,
    /// Values behind KS/Wasserstein (all numeric values in the window, sketched).
    pub sample: usize,
}

/// Drift of one feature over the current window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub feature: String,
    /// `input` or `output`.
    pub kind: Kind,
    /// `numeric` or `categorical`.
    #[serde(rename = "type")]
    pub feature_type: &'static str,
    /// Window counts.
    pub window: WindowCounts,
    /// PSI over the baseline bins/categories.
    pub psi: Option<f64>,
    /// JS divergence, base 2.
    pub js_divergence: Option<f64>,
    /// KS statistic (numeric).
    pub ks_statistic: Option<f64>,
    /// KS asymptotic p-value (numeric).
    pub ks_pvalue: Option<f64>,
    /// Wasserstein-1 (numeric).
    pub wasserstein: Option<f64>,
    /// `ks_statistic` is within this of scipy's value on all the window's and the baseline
    /// column's values (computed from the sketches; 0 when both are exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_error_bound: Option<f64>,
    /// `wasserstein` is within this of scipy's value on all values (as `ks_error_bound`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein_error_bound: Option<f64>,
    /// Chi-square p-value (categorical).
    pub chi2_pvalue: Option<f64>,
    /// Status; `None` when the window is empty.
    pub status: Option<Status>,
    /// Thresholds applied.
    pub thresholds: ThresholdsReport,
    /// Window mean (numeric).
    pub mean: Option<f64>,
    /// Window standard deviation, ddof = 0 (numeric).
    pub std: Option<f64>,
    /// Window minimum (numeric).
    pub min: Option<f64>,
    /// Window maximum (numeric).
    pub max: Option<f64>,
}

/// The sketches behind one numeric feature's KS and Wasserstein.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSketches {
    /// Feature name.
    pub feature: String,
    /// `input` or `output`.
    pub kind: Kind,
    /// The window's values (the union of its live time buckets).
    pub window: QuantileSketch,
    /// The baseline column's values.
    pub baseline: QuantileSketch,
}

/// The window and baseline sketches of a model's numeric features
/// (`GET /api/v1/models/{model}/sketch`): what a fleet view merges across replicas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSketches {
    /// Model name.
    pub model: String,
    /// Baseline id.
    pub baseline_id: String,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Numeric features (inputs, then the output), in baseline order.
    pub features: Vec<FeatureSketches>,
}

/// Drift of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDriftReport {
    /// Model name.
    pub model: String,
    /// Baseline id.
    pub baseline_id: String,
    /// Window length in seconds.
    pub window_seconds: f64,
    /// Share of input features drifted; `None` before any data.
    pub drift_score: Option<f64>,
    /// Worst input feature status; `None` before any data.
    pub status: Option<Status>,
    /// Input features then the output.
    pub features: Vec<FeatureDrift>,
}

/// A baseline's levels of a figure that gets worse as it grows.
fn higher(p: ThresholdPair) -> Level {
    Level::higher(p.warning, p.critical)
}

/// A baseline's levels of a figure that gets worse as it shrinks (p-values).
fn lower(p: ThresholdPair) -> Level {
    Level::lower(p.warning, p.critical)
}

pub(super) fn feature_drift(
    f: &FeatureState,
    snapshot: &Snapshot,
    view: &WindowView,
    sketches: &[&QuantileSketch],
    cfg: &crate::config::Thresholds,
    adaptive: bool,
) -> FeatureDrift {
    let entry = f.entry(snapshot);
    let baseline_rows = snapshot.row_count;
    let n = view.count();
    let numeric = matches!(f.window.layout(), Layout::Numeric { .. });
    let (mut psi, mut js, mut ks_statistic, mut ks_pvalue, mut wasserstein, mut chi2_pvalue) =
        (None, None, None, None, None, None);
    let mut bounds = None;
    if n > 0 {
        psi = stats::psi_counts(&f.expected, &view.counts);
        js = stats::js_divergence_counts(&f.expected, &view.counts);
        if numeric {
            // Both full columns, sketched; the p-value from the true counts.
            let reference = entry.map(super::engine::reference_sketch);
            // The window's buckets compared as one sketch, without building their union.
            let compared = reference.and_then(|r| {
                stats::sketch::compare_union_with_bounds(sketches, &r, f.reference_bounds)
            });
            if let Some(c) = compared {
                ks_statistic = Some(c.ks_statistic);
                ks_pvalue = c.ks_pvalue();
                wasserstein = Some(c.wasserstein);
                bounds = Some((c.ks_error_bound, c.wasserstein_error_bound));
            }
        } else {
            let aligned = stats::align_categories(
                f.cells
                    .iter()
                    .zip(&f.expected)
                    .map(|(c, p)| (c.as_str(), *p)),
                f.cells
                    .iter()
                    .zip(&view.counts)
                    .map(|(c, k)| (c.as_str(), *k)),
            );
            chi2_pvalue = stats::chi2_gof(&aligned.observed, &aligned.expected).map(|c| c.pvalue);
        }
    }
    let own = entry.and_then(|b| b.thresholds.as_ref());
    let mut psi_level = own.and_then(|t| t.psi).map(higher).unwrap_or(cfg.psi);
    let mut widened = false;
    if adaptive && n > 0 {
        if let Some(t) = stats::adaptive_psi_thresholds(
            &f.expected,
            n,
            Some(baseline_rows),
            stats::adaptive::Thresholds {
                warning: psi_level.warning,
                critical: psi_level.critical,
            },
        ) {
            psi_level = Level::higher(t.warning, t.critical);
            widened = true;
        }
    }
    let js_level = own.and_then(|t| t.js_divergence).map(higher).or(cfg.js);
    let ks_level = own
        .and_then(|t| t.ks_statistic)
        .map(higher)
        .or(cfg.ks_statistic);
    let ks_p_level = own.and_then(|t| t.ks_pvalue).map(lower);
    let chi2_level = own.and_then(|t| t.chi2_pvalue).map(lower);
    let w_level = own.and_then(|t| t.wasserstein).map(higher);

    // The worst status over every figure that has levels; a figure without a value (or a
    // NaN) does not count.
    let status = (n > 0).then(|| {
        [
            (Some(psi_level), psi),
            (js_level, js),
            (ks_level, ks_statistic),
            (w_level, wasserstein),
            (ks_p_level, ks_pvalue),
            (chi2_level, chi2_pvalue),
        ]
        .into_iter()
        .filter_map(|(level, value)| Some(level?.classify(value?)))
        .max()
        .unwrap_or(Status::Ok)
    });
    let numeric_stat = |v: f64| (numeric && view.moments.n > 0).then_some(v);
    FeatureDrift {
        feature: f.name.clone(),
        kind: f.kind,
        feature_type: if numeric { "numeric" } else { "categorical" },
        window: WindowCounts {
            count: n,
            missing: view.missing,
            invalid: view.invalid,
            sample: usize::try_from(sketches.iter().map(|s| s.count()).sum::<u64>())
                .unwrap_or(usize::MAX),
        },
        psi,
        js_divergence: js,
        ks_statistic,
        ks_pvalue,
        wasserstein,
        ks_error_bound: bounds.map(|b| b.0),
        wasserstein_error_bound: bounds.map(|b| b.1),
        chi2_pvalue,
        status,
        thresholds: ThresholdsReport {
            psi: Some(psi_level.into()),
            js_divergence: js_level.map(Into::into),
            ks_statistic: ks_level.map(Into::into),
            ks_pvalue: ks_p_level.map(Into::into),
            chi2_pvalue: chi2_level.map(Into::into),
            wasserstein: w_level.map(Into::into),
            adaptive: widened,
        },
        mean: numeric_stat(view.moments.mean),
        std: if numeric { view.moments.std() } else { None },
        min: numeric_stat(view.moments.min),
        max: numeric_stat(view.moments.max),
    }
}

/// The model's drift score (share of input features at warning or worse, weighted by the
/// live SHAP importances when explain computed them (`live`, feature → mean |φ|), else by the
/// baseline's importances when it has any) and its worst input feature status; both `None`
/// before any input feature has values in the window.
pub(super) fn summarise(
    features: &[FeatureDrift],
    states: &[FeatureState],
    live: Option<&std::collections::HashMap<String, f64>>,
    snapshot: &Snapshot,
) -> (Option<f64>, Option<Status>) {
    let importance = |f: &FeatureState| f.entry(snapshot).and_then(|b| b.importance);
    let has_importance = states
        .iter()
        .any(|f| f.kind == Kind::Input && importance(f).is_some());
    weighted_score(
        features
            .iter()
            .zip(states)
            .filter(|(fd, _)| fd.kind == Kind::Input)
            .filter_map(|(fd, f)| {
                let w = if let Some(live) = live {
                    live.get(&fd.feature).copied().unwrap_or(0.0).max(0.0)
                } else if has_importance {
                    importance(f).unwrap_or(0.0).max(0.0)
                } else {
                    1.0
                };
                fd.status.map(|status| (status, w))
            }),
    )
}

/// The drift score (the weighted share of `(status, weight)` pairs at warning or worse) and
/// the worst status; both `None` without any pair (or with zero total weight, the score).
pub(super) fn weighted_score(
    statuses: impl Iterator<Item = (Status, f64)>,
) -> (Option<f64>, Option<Status>) {
    let (mut weight, mut drifted, mut worst) = (0.0, 0.0, None::<Status>);
    for (status, w) in statuses {
        weight += w;
        if status >= Status::Warning {
            drifted += w;
        }
        worst = worst.max(Some(status));
    }
    ((weight > 0.0).then(|| drifted / weight), worst)
}
