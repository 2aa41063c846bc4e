//! The baseline snapshot: the JSON document (`format_version: 1`) that
//! describes what a model's inputs and outputs looked like at training or
//! validation time. Field-by-field documentation is in `docs/baseline.md`,
//! the machine-readable contract in `docs/baseline.schema.json`.
//!
//! A snapshot is checked when it is loaded ([`Snapshot::load`],
//! [`Snapshot::from_json_bytes`]): unknown fields, wrong types and
//! inconsistent values (edges out of order, proportions that do not add up,
//! ...) are refused with an error that names the file and the JSON path of
//! the offending field.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::marker::PhantomData;
use std::path::Path;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::record::FeatureValue;

/// The snapshot format version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;

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
    /// Always [`FORMAT_VERSION`] (1).
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
    /// A row-aligned sample (numeric features, `prediction`, `target`): the joint
    /// distribution the per-feature samples cannot give (multivariate anomaly scores,
    /// calibration). Absent in snapshots built before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint_sample: Option<JointSample>,
}

/// Rows sampled as wholes: one cell per column per row, `null` where the row had no number.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointSample {
    /// Column names: numeric input features (by their name), `prediction`, `target`.
    pub columns: Vec<String>,
    /// The rows, each with one cell per column.
    pub rows: Vec<Vec<Option<f64>>>,
}

/// Largest number of cells (rows × columns) accepted in a joint sample.
pub const MAX_JOINT_CELLS: usize = 20_000_000;

impl JointSample {
    /// Checks the sample against its snapshot; the error is (JSON path, message).
    fn validate(&self, snapshot: &Snapshot) -> Result<(), (String, String)> {
        let at = |f: &str| format!("joint_sample.{f}");
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            let known = match c.as_str() {
                "prediction" if snapshot.prediction.is_some() => true,
                "target" if snapshot.target.is_some() => true,
                name => snapshot.features.get(name).is_some(),
            };
            if !known {
                return Err((
                    at(&format!("columns[{i}]")),
                    format!("{c:?} is not a feature, prediction or target of this snapshot"),
                ));
            }
            if !seen.insert(c.as_str()) {
                return Err((at(&format!("columns[{i}]")), format!("{c:?} appears twice")));
            }
        }
        if self.rows.len().saturating_mul(self.columns.len()) > MAX_JOINT_CELLS {
            return Err((
                at("rows"),
                format!(
                    "{} rows of {} columns exceed the limit of {MAX_JOINT_CELLS} cells",
                    self.rows.len(),
                    self.columns.len()
                ),
            ));
        }
        for (i, r) in self.rows.iter().enumerate() {
            if r.len() != self.columns.len() {
                return Err((
                    at(&format!("rows[{i}]")),
                    format!(
                        "has {} cells, expected one per column ({})",
                        r.len(),
                        self.columns.len()
                    ),
                ));
            }
            if let Some(j) = r.iter().position(|v| v.is_some_and(|v| !v.is_finite())) {
                return Err((
                    at(&format!("rows[{i}][{j}]")),
                    "must be a finite number or null".into(),
                ));
            }
        }
        Ok(())
    }
}

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

/// A JSON object whose key order is kept (feature order, category order).
/// Duplicate keys are refused on load.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedMap<V>(pub Vec<(String, V)>);

impl<V> Default for NamedMap<V> {
    fn default() -> Self {
        NamedMap(Vec::new())
    }
}

impl<V> NamedMap<V> {
    /// The value for `name`.
    pub fn get(&self, name: &str) -> Option<&V> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The keys in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V: Serialize> Serialize for NamedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for NamedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = NamedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                let mut seen = std::collections::HashSet::new();
                while let Some(key) = access.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!("duplicate key \"{key}\"")));
                    }
                    let value = access.next_value::<V>()?;
                    entries.push((key, value));
                }
                Ok(NamedMap(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
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
    /// Reads and checks a snapshot file.
    pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| SnapshotError::Io {
            file: file.clone(),
            source,
        })?;
        Snapshot::from_json_bytes(&bytes, &file)
    }

    /// Parses and checks a snapshot; `origin` names the source in errors
    /// (a file name, or e.g. `request body`).
    pub fn from_json_bytes(bytes: &[u8], origin: &str) -> Result<Snapshot, SnapshotError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut snapshot: Snapshot =
            serde_path_to_error::deserialize(&mut de).map_err(|e| SnapshotError::Parse {
                file: origin.to_string(),
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        de.end().map_err(|e| SnapshotError::Parse {
            file: origin.to_string(),
            path: String::new(),
            message: e.to_string(),
        })?;
        snapshot
            .validate()
            .map_err(|(path, message)| SnapshotError::Invalid {
                file: origin.to_string(),
                path,
                message,
            })?;
        for (_, _, entry) in snapshot.entries_mut() {
            entry.sample.sort_by(f64::total_cmp);
        }
        if snapshot.id.is_empty() {
            snapshot.id = snapshot.content_id()?;
        }
        Ok(snapshot)
    }

    /// The snapshot as JSON: objects indented, arrays of numbers kept on one line.
    pub fn to_json(&self) -> Result<String, SnapshotError> {
        let mut out = Vec::new();
        let mut ser =
            serde_json::Serializer::with_formatter(&mut out, SnapshotFormatter::default());
        self.serialize(&mut ser).map_err(SnapshotError::Serialize)?;
        out.push(b'\n');
        String::from_utf8(out).map_err(|e| {
            SnapshotError::Serialize(serde::ser::Error::custom(format!("invalid UTF-8: {e}")))
        })
    }

    /// Writes the snapshot to `path` (through a temporary file renamed into
    /// place, so a reader never sees half a snapshot).
    pub fn save(&self, path: &Path) -> Result<(), SnapshotError> {
        let file = path.display().to_string();
        let io = |source| SnapshotError::Io {
            file: file.clone(),
            source,
        };
        let json = self.to_json()?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "baseline.json".to_string());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(json.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// A content hash: the first 16 hex digits of the SHA-256 of the compact
    /// JSON of the snapshot without its `id` and `created_at`, so two builds of
    /// the same data with the same options get the same id.
    pub fn content_id(&self) -> Result<String, SnapshotError> {
        let mut copy = self.clone();
        copy.id = String::new();
        copy.created_at = None;
        let bytes = serde_json::to_vec(&copy).map_err(SnapshotError::Serialize)?;
        let digest = Sha256::digest(&bytes);
        Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
    }

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

    /// Checks every value; the error is (JSON path, message).
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        if self.format_version != FORMAT_VERSION {
            return Err((
                "format_version".into(),
                format!(
                    "unsupported format_version {} (this mlmon reads {FORMAT_VERSION})",
                    self.format_version
                ),
            ));
        }
        if self.model.name.trim().is_empty() {
            return Err(("model.name".into(), "must not be empty".into()));
        }
        if self.features.is_empty() && self.prediction.is_none() {
            return Err((
                "features".into(),
                "a snapshot needs at least one feature or a prediction".into(),
            ));
        }
        if self.features.names().any(|n| n.is_empty()) {
            return Err(("features".into(), "feature names must not be empty".into()));
        }
        for (name, entry) in [("prediction", &self.prediction), ("target", &self.target)] {
            if entry.is_some() && self.features.get(name).is_some() {
                return Err((
                    format!("features.{name}"),
                    format!(
                        "a feature cannot be named \"{name}\" when the snapshot has a {name} entry"
                    ),
                ));
            }
        }
        let prefix = |name: &str, role: EntryRole| match role {
            EntryRole::Input => format!("features.{name}"),
            _ => name.to_string(),
        };
        for (name, role, entry) in self.entries() {
            entry.validate(&prefix(name, role))?;
        }
        if let Some(j) = &self.joint_sample {
            j.validate(self)?;
        }
        Ok(())
    }
}

impl FeatureBaseline {
    /// Checks one entry; `at` is its JSON path.
    fn validate(&self, at: &str) -> Result<(), (String, String)> {
        let err = |field: &str, msg: String| Err((format!("{at}.{field}"), msg));
        let s = &self.stats;
        if !(0.0..=1.0).contains(&s.missing_ratio) {
            return err(
                "stats.missing_ratio",
                format!("{} is outside [0, 1]", s.missing_ratio),
            );
        }
        if let Some(std) = s.std {
            if std < 0.0 {
                return err("stats.std", format!("{std} is negative"));
            }
        }
        if let (Some(min), Some(max)) = (s.min, s.max) {
            if min > max {
                return err("stats.min", format!("min {min} is greater than max {max}"));
            }
        }
        if let Some(q) = &s.quantiles {
            let v = q.values();
            for i in 1..v.len() {
                if v[i] < v[i - 1] {
                    return err(
                        &format!("stats.quantiles.{}", Quantiles::NAMES[i]),
                        format!(
                            "{} is below {} = {} (quantiles must not decrease)",
                            v[i],
                            Quantiles::NAMES[i - 1],
                            v[i - 1]
                        ),
                    );
                }
            }
        }
        match self.kind {
            FeatureType::Numeric => {
                if self.categories.is_some() {
                    return err(
                        "categories",
                        "only categorical features have categories".into(),
                    );
                }
                let Some(bins) = &self.bins else {
                    return Err((at.to_string(), "numeric features need \"bins\"".into()));
                };
                validate_bins(bins).map_err(|(f, m)| (format!("{at}.bins.{f}"), m))?;
                if s.count > 0 {
                    for (field, value) in [("mean", s.mean), ("min", s.min), ("max", s.max)] {
                        if value.is_none() {
                            return err(
                                "stats",
                                format!("numeric features with values need \"{field}\""),
                            );
                        }
                    }
                    if self.sample.is_empty() {
                        return err(
                            "sample",
                            "numeric features with values need a non-empty reference sample".into(),
                        );
                    }
                }
                if self.sample.len() > MAX_SAMPLE_LEN {
                    return err(
                        "sample",
                        format!(
                            "{} values, more than the {MAX_SAMPLE_LEN} accepted",
                            self.sample.len()
                        ),
                    );
                }
                // JSON cannot carry NaN or infinities, but a snapshot built
                // in memory could; refuse them here too.
                if let Some(i) = self.sample.iter().position(|v| !v.is_finite()) {
                    return err(&format!("sample[{i}]"), "must be a finite number".into());
                }
            }
            FeatureType::Categorical => {
                if self.bins.is_some() {
                    return err("bins", "only numeric features have bins".into());
                }
                if !self.sample.is_empty() {
                    return err(
                        "sample",
                        "only numeric features have a reference sample".into(),
                    );
                }
                let Some(categories) = &self.categories else {
                    return Err((
                        at.to_string(),
                        "categorical features need \"categories\"".into(),
                    ));
                };
                validate_categories(categories, s.count)
                    .map_err(|(f, m)| (format!("{at}.categories{f}"), m))?;
            }
        }
        if let Some(t) = &self.thresholds {
            validate_thresholds(t).map_err(|(f, m)| (format!("{at}.thresholds.{f}"), m))?;
        }
        if let Some(imp) = self.importance {
            if !imp.is_finite() || imp < 0.0 {
                return err("importance", format!("{imp} must be a non-negative number"));
            }
        }
        Ok(())
    }
}

fn validate_bins(bins: &Bins) -> Result<(), (String, String)> {
    if bins.edges.len() >= MAX_BINS {
        return Err((
            "edges".into(),
            format!(
                "{} edges, at most {} accepted",
                bins.edges.len(),
                MAX_BINS - 1
            ),
        ));
    }
    for (i, e) in bins.edges.iter().enumerate() {
        if !e.is_finite() {
            return Err((format!("edges[{i}]"), "must be a finite number".into()));
        }
        if i > 0 && *e <= bins.edges[i - 1] {
            return Err((
                format!("edges[{i}]"),
                format!(
                    "{e} is not greater than edges[{}] = {} (edges must be strictly increasing)",
                    i - 1,
                    bins.edges[i - 1]
                ),
            ));
        }
    }
    let expected = bins.edges.len() + 1;
    if bins.proportions.len() != expected {
        return Err((
            "proportions".into(),
            format!(
                "expected {expected} values ({} edges + 1), found {}",
                bins.edges.len(),
                bins.proportions.len()
            ),
        ));
    }
    check_proportions(bins.proportions.iter().copied(), |i| {
        format!("proportions[{i}]")
    })
    .map_err(|(f, m)| {
        if f.is_empty() {
            ("proportions".into(), m)
        } else {
            (f, m)
        }
    })
}

fn validate_categories(categories: &NamedMap<f64>, count: u64) -> Result<(), (String, String)> {
    if categories.len() > MAX_CATEGORIES {
        return Err((
            String::new(),
            format!(
                "{} categories, at most {MAX_CATEGORIES} accepted",
                categories.len()
            ),
        ));
    }
    if categories.is_empty() {
        if count > 0 {
            return Err((
                String::new(),
                "categorical features with values need at least one category".into(),
            ));
        }
        return Ok(());
    }
    let names: Vec<&str> = categories.names().collect();
    check_proportions(categories.iter().map(|(_, p)| *p), |i| {
        format!(".{}", names.get(i).copied().unwrap_or_default())
    })
}

/// Values must be finite, non-negative and add up to 1; the error path is
/// `name(i)` for one value, empty for the sum.
fn check_proportions(
    values: impl Iterator<Item = f64>,
    name: impl Fn(usize) -> String,
) -> Result<(), (String, String)> {
    let mut sum = 0.0;
    for (i, p) in values.enumerate() {
        if !p.is_finite() || p < 0.0 {
            return Err((name(i), format!("{p} must be a non-negative number")));
        }
        sum += p;
    }
    if (sum - 1.0).abs() > PROPORTION_SUM_TOLERANCE {
        return Err((
            String::new(),
            format!("proportions add up to {sum}, expected 1 (±{PROPORTION_SUM_TOLERANCE})"),
        ));
    }
    Ok(())
}

fn validate_thresholds(t: &Thresholds) -> Result<(), (String, String)> {
    let higher_is_worse = [
        ("psi", t.psi),
        ("js_divergence", t.js_divergence),
        ("ks_statistic", t.ks_statistic),
        ("wasserstein", t.wasserstein),
    ];
    for (name, pair) in higher_is_worse {
        if let Some(p) = pair {
            for (level, v) in [("warning", p.warning), ("critical", p.critical)] {
                if !v.is_finite() || v < 0.0 {
                    return Err((
                        format!("{name}.{level}"),
                        format!("{v} must be non-negative"),
                    ));
                }
            }
            if p.warning > p.critical {
                return Err((
                    name.to_string(),
                    format!(
                        "warning {} is above critical {} (higher {name} is worse)",
                        p.warning, p.critical
                    ),
                ));
            }
        }
    }
    for (name, pair) in [("ks_pvalue", t.ks_pvalue), ("chi2_pvalue", t.chi2_pvalue)] {
        if let Some(p) = pair {
            for (level, v) in [("warning", p.warning), ("critical", p.critical)] {
                if !(0.0..=1.0).contains(&v) {
                    return Err((format!("{name}.{level}"), format!("{v} is outside [0, 1]")));
                }
            }
            if p.warning < p.critical {
                return Err((
                    name.to_string(),
                    format!(
                        "warning {} is below critical {} (a lower p-value is worse)",
                        p.warning, p.critical
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The category key of a value, shared by the builder and the drift engine
/// so that baseline and live traffic agree: text that parses as a finite
/// number and JSON numbers both become the number's shortest decimal form
/// (`"1.0"`, `"01"` and `1` all give `"1"`); other text is kept as is;
/// missing values (and NaN) have no key.
pub fn category_key(value: &FeatureValue) -> Option<Cow<'_, str>> {
    match value {
        FeatureValue::Missing => None,
        FeatureValue::Number(v) => v.is_finite().then(|| Cow::Owned(format_number(*v))),
        FeatureValue::Text(s) => text_category_key(s),
    }
}

/// [`category_key`] for a text cell.
pub(crate) fn text_category_key(s: &str) -> Option<Cow<'_, str>> {
    match parse_number(s) {
        ParsedText::Number(v) => Some(Cow::Owned(format_number(v))),
        ParsedText::NonFinite => None,
        ParsedText::Text => Some(Cow::Borrowed(s)),
    }
}

/// The shortest decimal that reads back as `v` (`-0` becomes `0`).
pub(crate) fn format_number(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    format!("{v}")
}

/// What a text cell holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ParsedText {
    /// A finite number (surrounding whitespace ignored).
    Number(f64),
    /// NaN or an infinity: counted as missing.
    NonFinite,
    /// Anything else.
    Text,
}

/// Parses a text cell as a number.
#[inline]
pub(crate) fn parse_number(s: &str) -> ParsedText {
    let t = s.trim();
    match t.as_bytes().first() {
        // Quick reject: numbers start with a digit, a sign, '.', or are inf/nan.
        Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'i' | b'I' | b'n' | b'N') => {}
        _ => return ParsedText::Text,
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => ParsedText::Number(v),
        Ok(_) => ParsedText::NonFinite,
        Err(_) => ParsedText::Text,
    }
}

/// A `serde_json` formatter that indents objects but writes arrays on one
/// line, so a 5000-value sample stays one line of the file.
#[derive(Debug, Default)]
struct SnapshotFormatter {
    /// Current object nesting depth.
    indent: usize,
    /// Whether the current object has written a member.
    has_value: bool,
}

impl SnapshotFormatter {
    fn newline_indent<W: ?Sized + Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.indent {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for SnapshotFormatter {
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.indent += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.indent -= 1;
        if self.has_value {
            self.newline_indent(w)?;
        }
        self.has_value = true;
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline_indent(w)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
}
