//! The baseline snapshot: the JSON document (`format_version: 2`; 1 still loads) that
//! describes what a model's inputs and outputs looked like at training or
//! validation time. Field-by-field documentation is in `docs/baseline.md`,
//! the machine-readable contract in `docs/baseline.schema.json`.
//!
//! A snapshot is checked when it is loaded ([`Snapshot::load`],
//! [`Snapshot::from_json_bytes`]): unknown fields, wrong types and
//! inconsistent values (edges out of order, proportions that do not add up,
//! ...) are refused with an error that names the file and the JSON path of
//! the offending field.
//!
//! Layout: this file holds the types; `io` loads, writes and hashes them;
//! `validate` checks them; `named_map` is the order-keeping JSON object;
//! `key` turns values into category keys.

mod io;
mod joint;
mod key;
mod named_map;
mod validate;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use joint::{JointCells, JointRow};
pub(crate) use key::bool_text;
pub use key::category_key;
pub(crate) use key::{format_number, parse_number, text_category_key, ParsedText};
pub use named_map::NamedMap;

/// The snapshot format version this code writes (2: numeric entries carry `sketch`).
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this code reads (1: no `sketch`; KS and Wasserstein then use
/// a sketch of the reference `sample`).
pub const MIN_FORMAT_VERSION: u32 = 1;

/// The category that pools values beyond the category cap (and, in the drift
/// engine, values never seen in the baseline).
pub use crate::stats::OTHER_CATEGORY;

/// Proportions (bins, categories) must add up to 1 within this tolerance
/// (the same as `stats::validate_proportions`).
pub const PROPORTION_SUM_TOLERANCE: f64 = 1e-6;

/// Largest reference sample accepted per feature (bounds memory of a
/// snapshot received through the API).
pub const MAX_SAMPLE_LEN: usize = 1_000_000;

/// Largest number of bins accepted per numeric feature.
pub const MAX_BINS: usize = 10_000;

/// Largest number of categories accepted per categorical feature.
pub const MAX_CATEGORIES: usize = 100_000;

/// Why a snapshot could not be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The document is not JSON, or a field has the wrong type, is unknown or missing.
    #[error("{file}: {}{message}", path_prefix(path))]
    Parse {
        /// Where the document came from (file name or e.g. "request body").
        file: String,
        /// JSON path of the field (`features.age.bins.edges[2]`); empty for the document itself.
        path: String,
        /// What is wrong, with the line and column when known.
        message: String,
    },
    /// The document parsed but a value is inconsistent.
    #[error("{file}: {}{message}", path_prefix(path))]
    Invalid {
        /// Where the document came from.
        file: String,
        /// JSON path of the field (`features.age.bins.proportions`).
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The snapshot could not be serialized.
    #[error("cannot serialize baseline snapshot: {0}")]
    Serialize(#[source] serde_json::Error),
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl SnapshotError {
    /// The JSON path of the offending field, when the error is about one.
    pub fn field_path(&self) -> Option<&str> {
        match self {
            SnapshotError::Parse { path, .. } | SnapshotError::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// A baseline snapshot of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// [`FORMAT_VERSION`] (2) when written by this mlmon; 1 is still read.
    pub format_version: u32,
    /// Which model this baseline describes.
    pub model: ModelInfo,
    /// Identifier exported as `mlmon_baseline_info{id}`: a content hash
    /// ([`Snapshot::content_id`]) unless the producer chose one. Filled in on
    /// load when the document has none.
    #[serde(default)]
    pub id: String,
    /// When the snapshot was built (RFC 3339, informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Where the data came from (file name, query, pipeline run; informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Rows the snapshot was built from.
    pub row_count: u64,
    /// How the snapshot was built (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
    /// Remarks about the whole build (e.g. skipped nested columns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Input features by name, in the model's feature order (the order used
    /// for request arrays that carry no names).
    #[serde(default)]
    pub features: NamedMap<FeatureBaseline>,
    /// The model's output, exported as feature `prediction` with `kind="output"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<FeatureBaseline>,
    /// The ground truth column, when the data had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<FeatureBaseline>,
    /// The model's score columns (`--probability`), whose values are in `joint_sample`
    /// beside `prediction` and `target` (calibration). Absent when the build named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<ProbabilityInfo>,
    /// A row-aligned sample (numeric features, `prediction`, `target`, the probability
    /// columns): the joint distribution the per-feature samples cannot give (multivariate
    /// anomaly scores, calibration). Absent in snapshots built before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint_sample: Option<JointSample>,
}

/// The model's class scores (`mlmon baseline build --probability COL`, repeatable):
/// one column is the positive class's score, several are one score per class in class
/// order. Each column is also a column of the snapshot's `joint_sample`, so (score,
/// target) pairs can be read row by row. Not input features: they have no drift entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbabilityInfo {
    /// The score columns as named in the input, in class order.
    pub columns: Vec<String>,
    /// The class labels (category keys): one per column when there are several; for a
    /// single column, the two classes `[negative, positive]`. Empty (absent) when the
    /// build could not tell them (no categorical or integral target or prediction with
    /// that many classes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

/// Rows sampled as wholes: one cell per column per row, `null` where the row had no number.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointSample {
    /// Column names: numeric input features (by their name), `prediction`, `target`,
    /// then the probability columns (by their name, see [`ProbabilityInfo`]).
    pub columns: Vec<String>,
    /// The rows, each with one cell per column (row-major in one allocation).
    pub rows: JointCells,
}

/// Largest number of cells (rows × columns) accepted in a joint sample.
pub const MAX_JOINT_CELLS: usize = 20_000_000;

/// Model identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// Model name, as it appears in the `model` label.
    pub name: String,
    /// Model version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Build parameters, recorded so a build can be reproduced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildInfo {
    /// Producer and version, e.g. `mlmon 0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Seed of the reservoir samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Requested number of bins per numeric feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<usize>,
    /// Requested reference sample size per numeric feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_size: Option<usize>,
    /// Values per numeric feature kept to estimate quantiles and bin edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile_sample_size: Option<usize>,
    /// Distinct categories kept per categorical feature before pooling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_categories: Option<usize>,
}

/// Whether a feature is treated as a number or as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureType {
    /// Real numbers: bins, quantiles, reference sample.
    Numeric,
    /// Labels: category proportions.
    Categorical,
}

impl FeatureType {
    /// `numeric` or `categorical`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureType::Numeric => "numeric",
            FeatureType::Categorical => "categorical",
        }
    }
}

/// What the baseline knows about one feature (or the prediction, or the target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureBaseline {
    /// `numeric` or `categorical`.
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// Summary statistics.
    pub stats: FeatureStats,
    /// Numeric only: the histogram over quantile bins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<Bins>,
    /// Categorical only: proportion of each value among non-missing values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<NamedMap<f64>>,
    /// Numeric only: reference sample of non-missing values for KS and
    /// Wasserstein. Sorted ascending after load or build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<f64>,
    /// Numeric only (format 2): a quantile sketch of *all* the column's non-missing
    /// values, the reference of KS and Wasserstein ([`crate::stats::sketch`]). Absent in
    /// format 1 snapshots, where the `sample` stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sketch: Option<crate::stats::QuantileSketch>,
    /// Per-feature drift thresholds overriding the configured ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    /// Feature importance (any non-negative scale), used to weight
    /// `mlmon_model_drift_score`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<f64>,
    /// Remarks from the build (category cap reached, estimated quantiles, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Summary statistics of one column.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureStats {
    /// Non-missing values.
    pub count: u64,
    /// Missing values (null, empty, NaN, absent) over all rows, in [0, 1].
    pub missing_ratio: f64,
    /// Mean of the non-missing values (numeric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Sample standard deviation (ddof = 1, as pandas) of the non-missing values (numeric, count ≥ 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Smallest value (numeric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest value (numeric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Quantiles of the non-missing values (numeric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<Quantiles>,
    /// Distinct values seen (categorical; a lower bound when the tracking cap was reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<u64>,
}

/// Quantiles (numpy's default 'linear' definition).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantiles {
    /// 1st percentile.
    pub p01: f64,
    /// 5th percentile.
    pub p05: f64,
    /// 25th percentile (first quartile).
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile (third quartile).
    pub p75: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    /// The probability levels, in field order.
    pub const LEVELS: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];
    /// The field names, in field order.
    pub const NAMES: [&'static str; 7] = ["p01", "p05", "p25", "p50", "p75", "p95", "p99"];

    /// The values, in field order.
    pub fn values(&self) -> [f64; 7] {
        [
            self.p01, self.p05, self.p25, self.p50, self.p75, self.p95, self.p99,
        ]
    }

    /// Builds from values in field order.
    pub fn from_values(v: [f64; 7]) -> Self {
        Quantiles {
            p01: v[0],
            p05: v[1],
            p25: v[2],
            p50: v[3],
            p75: v[4],
            p95: v[5],
            p99: v[6],
        }
    }
}

/// A histogram over `k` interior edges: `k + 1` bins, open at both ends.
/// Bin `i` holds `edges[i-1] < v <= edges[i]` (bin 0: `v <= edges[0]`,
/// bin k: `v > edges[k-1]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bins {
    /// Interior edges, finite and strictly increasing.
    pub edges: Vec<f64>,
    /// Proportion of non-missing values in each bin: `edges.len() + 1`
    /// non-negative values that add up to 1.
    pub proportions: Vec<f64>,
}

/// Per-feature drift thresholds; each is optional and overrides the configured level.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// PSI levels (higher is worse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi: Option<ThresholdPair>,
    /// Jensen–Shannon divergence levels (higher is worse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub js_divergence: Option<ThresholdPair>,
    /// KS statistic levels (higher is worse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<ThresholdPair>,
    /// KS p-value levels (lower is worse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_pvalue: Option<ThresholdPair>,
    /// Wasserstein-1 levels, in the feature's unit (higher is worse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasserstein: Option<ThresholdPair>,
    /// Chi-square p-value levels (lower is worse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi2_pvalue: Option<ThresholdPair>,
}

/// A warning and a critical level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdPair {
    /// Level at which the status becomes `warning`.
    pub warning: f64,
    /// Level at which the status becomes `critical`.
    pub critical: f64,
}

/// Which column of the model a baseline entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRole {
    /// An input feature (`kind="input"`).
    Input,
    /// The model output (`kind="output"`, feature name `prediction`).
    Output,
    /// The ground truth.
    Target,
}

impl Snapshot {
    /// Every entry: features (in order), then the prediction, then the target,
    /// with the name used in metrics (`prediction` and `target` for the last two).
    pub fn entries(&self) -> impl Iterator<Item = (&str, EntryRole, &FeatureBaseline)> {
        self.features
            .iter()
            .map(|(n, f)| (n, EntryRole::Input, f))
            .chain(
                self.prediction
                    .iter()
                    .map(|f| ("prediction", EntryRole::Output, f)),
            )
            .chain(self.target.iter().map(|f| ("target", EntryRole::Target, f)))
    }

    fn entries_mut(&mut self) -> impl Iterator<Item = (String, EntryRole, &mut FeatureBaseline)> {
        self.features
            .0
            .iter_mut()
            .map(|(n, f)| (format!("features.{n}"), EntryRole::Input, f))
            .chain(
                self.prediction
                    .iter_mut()
                    .map(|f| ("prediction".to_string(), EntryRole::Output, f)),
            )
            .chain(
                self.target
                    .iter_mut()
                    .map(|f| ("target".to_string(), EntryRole::Target, f)),
            )
    }
}
