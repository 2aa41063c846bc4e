//! Per-row anomaly scores against a baseline (docs/anomaly.md).
//!
//! Every score is expressed in *sigma-equivalents*: the two-sided standard-normal quantile
//! of the component's tail probability, so one threshold (`anomaly.threshold`, default 4)
//! applies to all of them.
//!
//! - **Numeric feature**: a robust, skew-aware z = (x − median) / scale, with the scale of
//!   each side taken from the baseline quantiles: `(p99 − p50) / z₀.₉₉` above the median,
//!   `(p50 − p01) / z₀.₉₉` below (for a normal feature both are its standard deviation;
//!   the tails of the baseline do not inflate them). Falls back to the baseline standard
//!   deviation when a side has no spread.
//! - **Categorical feature**: the tail probability of the value's category (the baseline
//!   share of categories at most as frequent as it), `0.5 / count` for a category the
//!   baseline never saw; z = Φ⁻¹(1 − tail / 2).
//! - **Multivariate**: the squared Mahalanobis distance d² of the row's robustly
//!   standardised numeric features (`(x − median) / (IQR / 1.349)`) under a Ledoit–Wolf
//!   covariance fitted on the baseline's row-aligned `joint_sample`, turned into a
//!   sigma-equivalent through its χ²(p) tail: z = Φ⁻¹(1 − sf_χ²(d², p) / 2). It catches rows
//!   whose values are each ordinary but whose combination is not (a broken correlation).
//!   Missing values enter at the baseline mean (they add nothing to d²).
//! - **Prediction**: the model output scored like a feature against the baseline
//!   `prediction`; a classifier's largest class probability below
//!   `anomaly.min_confidence` makes the row anomalous (`low_confidence`).
//!
//! The row score is the largest component. Each feature's contribution is
//! `max(|zᵢ|, √max(0, cᵢ))`, `cᵢ` being its term of d², and features are ranked by it.

use std::collections::HashMap;

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use super::mahalanobis::Mahalanobis;
use crate::baseline::{category_key, FeatureBaseline, FeatureType, Snapshot, OTHER_CATEGORY};
use crate::record::PREDICTION;
use crate::record::{FeatureValue, PositionHints, Prediction, Row};

/// Largest score reported (a value infinitely far from a constant baseline).
pub const MAX_SCORE: f64 = 1000.0;

/// Features kept in an anomaly's explanation.
pub const EXPLAIN_TOP: usize = 5;

/// z of the 99th percentile of the standard normal.
const Z99: f64 = 2.326_347_874_040_840_8;

/// 1.349 ≈ the interquartile range of the standard normal.
const IQR_NORMAL: f64 = 1.348_979_500_392_163_4;

/// Row-aligned baseline rows: `columns` names, one value (or `None`) per column per row.
#[derive(Debug, Clone, Copy)]
pub struct JointRows<'a> {
    /// Column names (feature names, `prediction`, `target`).
    pub columns: &'a [String],
    /// Rows, each with one value per column.
    pub rows: &'a crate::baseline::JointCells,
}

/// Two-sided sigma-equivalent of a tail probability: Φ⁻¹(1 − tail / 2).
pub fn sigma_of_tail(tail: f64) -> f64 {
    if tail.is_nan() || tail >= 1.0 {
        return 0.0;
    }
    if tail <= 0.0 {
        return MAX_SCORE;
    }
    let Ok(n) = Normal::new(0.0, 1.0) else {
        return 0.0;
    };
    let z = -n.inverse_cdf(tail / 2.0);
    if z.is_finite() {
        z.clamp(0.0, MAX_SCORE)
    } else {
        MAX_SCORE
    }
}

/// Sigma-equivalent of a squared Mahalanobis distance with `dof` degrees of freedom.
pub fn sigma_of_chi2(d2: f64, dof: usize) -> f64 {
    if d2 <= 0.0 || dof == 0 {
        return 0.0;
    }
    match crate::stats::chi2_sf(d2, dof as f64) {
        Some(sf) if sf > 1e-300 => sigma_of_tail(sf),
        // Far beyond any tail double precision can hold: the distance itself.
        _ => d2.sqrt().clamp(37.0, MAX_SCORE),
    }
}

fn json_value(v: &FeatureValue) -> serde_json::Value {
    match v {
        FeatureValue::Number(n) => serde_json::Value::from(*n),
        FeatureValue::Text(t) => serde_json::Value::from(t.as_str()),
        FeatureValue::Missing => serde_json::Value::Null,
    }
}

#[derive(Debug, Clone)]
enum Uni {
    Numeric {
        median: f64,
        lo: f64,
        hi: f64,
        /// Symmetric robust scale for the multivariate standardisation.
        scale: f64,
    },
    /// Sigma-equivalents of each category's tail, computed once at fit time.
    Categorical {
        sigma: HashMap<String, f64>,
        other: Option<f64>,
        unseen: f64,
    },
}

fn positive(v: Option<f64>) -> Option<f64> {
    v.filter(|s| s.is_finite() && *s > 0.0)
}

impl Uni {
    fn fit(b: &FeatureBaseline) -> Option<Uni> {
        match b.kind {
            FeatureType::Numeric => {
                let std = positive(b.stats.std);
                match b.stats.quantiles {
                    Some(q) => {
                        let hi = positive(Some((q.p99 - q.p50) / Z99)).or(std).unwrap_or(0.0);
                        let lo = positive(Some((q.p50 - q.p01) / Z99)).or(std).unwrap_or(0.0);
                        let scale = positive(Some((q.p75 - q.p25) / IQR_NORMAL))
                            .or(std)
                            .or(positive(Some((hi + lo) / 2.0)))
                            .unwrap_or(1.0);
                        Some(Uni::Numeric {
                            median: q.p50,
                            lo,
                            hi,
                            scale,
                        })
                    }
                    None => {
                        let median = b.stats.mean?;
                        let s = std.unwrap_or(0.0);
                        Some(Uni::Numeric {
                            median,
                            lo: s,
                            hi: s,
                            scale: std.unwrap_or(1.0),
                        })
                    }
                }
            }
            FeatureType::Categorical => {
                let cats = b.categories.as_ref()?;
                let mut props: Vec<(String, f64)> = Vec::new();
                let mut other = None;
                for (name, p) in cats.iter() {
                    if name == OTHER_CATEGORY {
                        other = Some(*p);
                    } else {
                        props.push((name.to_string(), *p));
                    }
                }
                // Tail of a category: the share of categories at most as frequent. Sorted
                // proportions with prefix sums: O(n log n), so a baseline with 100 000
                // categories fits in milliseconds (a sum per category was quadratic).
                let mut sorted: Vec<f64> = props.iter().map(|(_, p)| *p).chain(other).collect();
                sorted.sort_by(f64::total_cmp);
                let mut prefix = Vec::with_capacity(sorted.len() + 1);
                prefix.push(0.0_f64);
                for q in &sorted {
                    let last = prefix.last().copied().unwrap_or(0.0);
                    prefix.push(last + q);
                }
                let tail_of = |p: f64| {
                    let k = sorted.partition_point(|q| *q <= p);
                    prefix.get(k).copied().unwrap_or(0.0)
                };
                let sigma = props
                    .iter()
                    .map(|(n, p)| (n.clone(), sigma_of_tail(tail_of(*p))))
                    .collect();
                let other = other.map(|p| sigma_of_tail(tail_of(p)));
                let count = b.stats.count.max(1) as f64;
                Some(Uni::Categorical {
                    sigma,
                    other,
                    unseen: sigma_of_tail(0.5 / count),
                })
            }
        }
    }

    /// [`Uni::z`], with its common case inlined into the caller's loop: a finite number
    /// on a numeric feature.
    #[inline(always)]
    fn z_inline(&self, value: &FeatureValue) -> Option<(f64, Option<f64>)> {
        match (self, value) {
            (Uni::Numeric { median, lo, hi, .. }, FeatureValue::Number(v)) if v.is_finite() => {
                Some((numeric_z(*median, *lo, *hi, *v), Some(*v)))
            }
            _ => self.z(value),
        }
    }

    /// Signed robust z for a numeric value (`None` for missing or text).
    fn z(&self, value: &FeatureValue) -> Option<(f64, Option<f64>)> {
        match self {
            Uni::Numeric { median, lo, hi, .. } => {
                let v = match value {
                    FeatureValue::Number(v) if v.is_finite() => *v,
                    FeatureValue::Text(s) => {
                        s.trim().parse::<f64>().ok().filter(|v| v.is_finite())?
                    }
                    _ => return None,
                };
                Some((numeric_z(*median, *lo, *hi, v), Some(v)))
            }
            Uni::Categorical {
                sigma,
                other,
                unseen,
            } => {
                let key = category_key(value)?;
                let z = sigma
                    .get(key.as_ref())
                    .copied()
                    .or(*other)
                    .unwrap_or(*unseen);
                Some((z, None))
            }
        }
    }
}

/// The skew-aware robust z of a finite `v` against a numeric feature's median and side
/// scales (`Uni::z` of a number; inlined into the per-value loop for finite numbers).
#[inline(always)]
fn numeric_z(median: f64, lo: f64, hi: f64, v: f64) -> f64 {
    let d = v - median;
    let s = if d >= 0.0 { hi } else { lo };
    if d == 0.0 {
        0.0
    } else if s > 0.0 {
        (d / s).clamp(-MAX_SCORE, MAX_SCORE)
    } else {
        MAX_SCORE.copysign(d)
    }
}

#[derive(Debug, Clone)]
struct Joint {
    /// Feature index (into `Scorer::features`) of each column.
    features: Vec<usize>,
    /// `(median, scale)` of each column's feature, the robust standardisation
    /// [`Scorer::standardise`] applies (kept here so that scoring a row reads them
    /// directly instead of matching the feature's [`Uni`] per column).
    standard: Vec<(f64, f64)>,
    model: Mahalanobis,
}

/// Why the multivariate score is not used, for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Univariate tails and the Mahalanobis distance.
    Multivariate,
    /// Univariate tails only; the reason says why.
    Univariate,
}

/// One feature's part in a row's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// Feature name (`prediction` for the output).
    pub feature: String,
    /// `max(|z|, √max(0, c))`: how far this feature pushes the row out, in sigmas.
    pub contribution: f64,
    /// Signed univariate robust z (sigma-equivalent for categorical values).
    pub z: Option<f64>,
    /// Share of the squared Mahalanobis distance (can be negative).
    pub mahalanobis_share: Option<f64>,
    /// The value (numeric), filled only when `privacy.log_values` allows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// The score of one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowScore {
    /// The largest component, in sigma-equivalents.
    pub score: f64,
    /// Largest univariate feature score.
    pub univariate: f64,
    /// Sigma-equivalent of the Mahalanobis distance, when fitted.
    pub multivariate: Option<f64>,
    /// Squared Mahalanobis distance, when fitted.
    pub mahalanobis_d2: Option<f64>,
    /// Score of the prediction against the baseline prediction distribution.
    pub prediction: Option<f64>,
    /// Largest class probability, when the model returned probabilities.
    pub confidence: Option<f64>,
    /// Why the row is anomalous (empty when it is not): `feature_tail`, `multivariate`,
    /// `prediction`, `low_confidence`.
    pub reasons: Vec<&'static str>,
    /// Features ranked by contribution, largest first (at most [`EXPLAIN_TOP`]); filled
    /// for anomalies (and by [`Scorer::score_explained`]).
    pub explanation: Vec<Contribution>,
}

impl RowScore {
    /// Whether the row counts as an anomaly.
    pub fn is_anomaly(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// A scorer fitted on one baseline.
#[derive(Debug, Clone)]
pub struct Scorer {
    names: Vec<String>,
    features: Vec<Option<Uni>>,
    index: HashMap<String, usize>,
    joint: Option<Joint>,
    prediction: Option<Uni>,
    threshold: f64,
    min_confidence: f64,
    /// Why the multivariate score is off, when it is.
    pub fallback: Option<String>,
}

/// Scoring settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `anomaly.threshold`.
    pub threshold: f64,
    /// `anomaly.min_confidence`.
    pub min_confidence: f64,
    /// `anomaly.max_joint_features`.
    pub max_joint_features: usize,
    /// `limits.max_features`.
    pub max_features: usize,
}

/// What the analysis thread keeps per model between rows for [`Scorer::score_hinted`]: the
/// row positions' feature hints and the per-row working vectors, reused so that scoring a
/// row allocates nothing unless it is explained (issue 13).
#[derive(Debug, Default, Clone)]
pub struct ScoreScratch {
    /// The feature index each row position resolved to last time.
    hints: PositionHints,
    z: Vec<Option<f64>>,
    values: Vec<Option<f64>>,
    raw: Vec<Option<usize>>,
    shares: Vec<Option<f64>>,
    x: Vec<f64>,
    contrib: Vec<f64>,
    w: Vec<f64>,
}

impl Scorer {
    /// Fits on a snapshot and, when given, its row-aligned joint sample.
    pub fn fit(snapshot: &Snapshot, joint: Option<JointRows<'_>>, s: Settings) -> Scorer {
        let mut names = Vec::new();
        let mut features = Vec::new();
        let mut index = HashMap::new();
        for (name, b) in snapshot.features.iter().take(s.max_features) {
            index.insert(name.to_string(), names.len());
            names.push(name.to_string());
            features.push(Uni::fit(b));
        }
        let prediction = snapshot.prediction.as_ref().and_then(Uni::fit);
        let mut scorer = Scorer {
            names,
            features,
            index,
            joint: None,
            prediction,
            threshold: s.threshold,
            min_confidence: s.min_confidence,
            fallback: None,
        };
        match joint {
            None => {
                scorer.fallback = Some(
                    "the baseline has no joint_sample (row-aligned rows): univariate scores only"
                        .into(),
                )
            }
            Some(j) => match scorer.fit_joint(j, s.max_joint_features) {
                Ok(jm) => scorer.joint = Some(jm),
                Err(why) => scorer.fallback = Some(why),
            },
        }
        scorer
    }

    fn fit_joint(&self, j: JointRows<'_>, max: usize) -> Result<Joint, String> {
        // Numeric features present in the joint sample, in baseline order.
        let mut cols = Vec::new();
        let mut feats = Vec::new();
        for (fi, name) in self.names.iter().enumerate() {
            if feats.len() >= max {
                break;
            }
            let Some(Uni::Numeric { .. }) = &self.features[fi] else {
                continue;
            };
            if let Some(c) = j.columns.iter().position(|c| c == name) {
                cols.push(c);
                feats.push(fi);
            }
        }
        if feats.len() < 2 {
            return Err(format!(
                "the joint_sample has {} numeric input feature(s): univariate scores only",
                feats.len()
            ));
        }
        let mut rows = Vec::with_capacity(j.rows.len());
        for r in j.rows {
            let mut x = Vec::with_capacity(feats.len());
            for (&c, &fi) in cols.iter().zip(&feats) {
                x.push(self.standardise(fi, r.get(c)));
            }
            rows.push(x);
        }
        // Missing cells enter at the column mean.
        for k in 0..feats.len() {
            let present: Vec<f64> = rows.iter().filter_map(|r| r[k]).collect();
            let mean = present.iter().sum::<f64>() / (present.len().max(1) as f64);
            for r in rows.iter_mut() {
                r[k] = r[k].or(Some(mean));
            }
        }
        let rows: Vec<Vec<f64>> = rows
            .into_iter()
            .map(|r| r.into_iter().map(|v| v.unwrap_or(0.0)).collect())
            .collect();
        if rows.len() < 10 {
            return Err(format!(
                "the joint_sample has {} rows (at least 10 needed): univariate scores only",
                rows.len()
            ));
        }
        let model = Mahalanobis::fit(&rows).map_err(|e| {
            format!("the Mahalanobis distance cannot be fitted ({e}): univariate scores only")
        })?;
        let standard = feats
            .iter()
            .map(|&fi| match &self.features[fi] {
                Some(Uni::Numeric { median, scale, .. }) => (*median, *scale),
                // Only numeric features are joint columns.
                _ => (0.0, 1.0),
            })
            .collect();
        Ok(Joint {
            features: feats,
            standard,
            model,
        })
    }

    fn standardise(&self, fi: usize, v: Option<f64>) -> Option<f64> {
        let v = v.filter(|v| v.is_finite())?;
        match &self.features[fi] {
            Some(Uni::Numeric { median, scale, .. }) => Some((v - median) / scale),
            _ => None,
        }
    }

    /// The method in force.
    pub fn method(&self) -> Method {
        if self.joint.is_some() {
            Method::Multivariate
        } else {
            Method::Univariate
        }
    }

    /// Names of the features in the multivariate score.
    pub fn joint_features(&self) -> Vec<String> {
        self.joint
            .as_ref()
            .map(|j| j.features.iter().map(|&f| self.names[f].clone()).collect())
            .unwrap_or_default()
    }

    /// Shrinkage of the fitted covariance.
    pub fn shrinkage(&self) -> Option<f64> {
        self.joint.as_ref().map(|j| j.model.shrinkage)
    }

    /// Scores one row (and its prediction, when known); the explanation is filled for
    /// anomalies only (it costs more than the score). `with_values` copies the values into
    /// the explanation.
    pub fn score(&self, row: &Row, prediction: Option<&Prediction>, with_values: bool) -> RowScore {
        self.score_with(
            row,
            prediction,
            with_values,
            false,
            &mut ScoreScratch::default(),
        )
    }

    /// [`Scorer::score`] with `scratch` kept by the caller across rows: its hints remember
    /// the feature each row position was last time, its vectors are reused (the analysis
    /// thread keeps one per model).
    pub fn score_hinted(
        &self,
        row: &Row,
        prediction: Option<&Prediction>,
        with_values: bool,
        scratch: &mut ScoreScratch,
    ) -> RowScore {
        self.score_with(row, prediction, with_values, false, scratch)
    }

    /// [`Scorer::score`] with the explanation filled whether or not the row is an anomaly.
    pub fn score_explained(
        &self,
        row: &Row,
        prediction: Option<&Prediction>,
        with_values: bool,
    ) -> RowScore {
        self.score_with(
            row,
            prediction,
            with_values,
            true,
            &mut ScoreScratch::default(),
        )
    }

    fn score_with(
        &self,
        row: &Row,
        prediction: Option<&Prediction>,
        with_values: bool,
        always_explain: bool,
        scratch: &mut ScoreScratch,
    ) -> RowScore {
        let n = self.features.len();
        let ScoreScratch {
            hints,
            z,
            values,
            raw,
            shares,
            x,
            contrib,
            w,
        } = scratch;
        for v in [&mut *z, &mut *values, &mut *shares] {
            v.clear();
            v.resize(n, None);
        }
        // The row position of each feature's value.
        raw.clear();
        raw.resize(n, None);
        for (position, (name, value)) in row.values.iter().enumerate() {
            let found = hints.resolve(
                position,
                name,
                |i| self.names.get(i).map(String::as_str),
                |n| self.index.get(n).copied(),
            );
            if let Some(i) = found {
                if raw[i].is_some() {
                    continue;
                }
                raw[i] = Some(position);
                let scored = self.features[i].as_ref().and_then(|u| u.z_inline(value));
                if let Some((zi, v)) = scored {
                    z[i] = Some(zi);
                    values[i] = v;
                }
            }
        }
        let univariate = z.iter().flatten().fold(0.0_f64, |a, b| a.max(b.abs()));
        let (mut multivariate, mut d2) = (None, None);
        if let Some(j) = &self.joint {
            x.clear();
            // `standardise` with the column's (median, scale) at hand; a missing value
            // enters at the column mean.
            x.extend(j.features.iter().zip(&j.standard).zip(&j.model.mean).map(
                |((&fi, &(median, scale)), &mean)| match values.get(fi).copied().flatten() {
                    Some(v) if v.is_finite() => (v - median) / scale,
                    _ => mean,
                },
            ));
            if let Some(dd) = j.model.distance2_into(x, contrib, w) {
                for (&fi, &c) in j.features.iter().zip(contrib.iter()) {
                    shares[fi] = Some(c);
                }
                d2 = Some(dd);
                multivariate = Some(sigma_of_chi2(dd, j.features.len()));
            }
        }
        let pz = match (&self.prediction, prediction) {
            (Some(u), Some(p)) => u.z_inline(&p.value).map(|(zp, _)| zp),
            _ => None,
        };
        let confidence = prediction
            .and_then(|p| p.probabilities.as_ref())
            .and_then(|ps| {
                ps.iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))))
            });
        let score = univariate
            .max(multivariate.unwrap_or(0.0))
            .max(pz.map(f64::abs).unwrap_or(0.0));
        let mut reasons = Vec::new();
        if univariate >= self.threshold {
            reasons.push("feature_tail");
        }
        if multivariate.is_some_and(|m| m >= self.threshold) {
            reasons.push("multivariate");
        }
        if pz.is_some_and(|p| p.abs() >= self.threshold) {
            reasons.push("prediction");
        }
        if self.min_confidence > 0.0 && confidence.is_some_and(|c| c < self.min_confidence) {
            reasons.push("low_confidence");
        }
        let mut explanation: Vec<Contribution> = Vec::new();
        let explain = always_explain || !reasons.is_empty();
        for (i, name) in self.names.iter().enumerate().filter(|_| explain) {
            if z[i].is_none() && shares[i].is_none() {
                continue;
            }
            let c = z[i]
                .map(f64::abs)
                .unwrap_or(0.0)
                .max(shares[i].map(|c| c.max(0.0).sqrt()).unwrap_or(0.0));
            explanation.push(Contribution {
                feature: name.clone(),
                contribution: c,
                z: z[i],
                mahalanobis_share: match (shares[i], d2) {
                    (Some(c), Some(d)) if d > 0.0 => Some(c / d),
                    _ => None,
                },
                value: if with_values {
                    raw[i]
                        .and_then(|p| row.values.get(p))
                        .map(|(_, v)| json_value(v))
                } else {
                    None
                },
            });
        }
        if let Some(zp) = pz.filter(|_| explain) {
            explanation.push(Contribution {
                feature: PREDICTION.to_string(),
                contribution: zp.abs(),
                z: Some(zp),
                mahalanobis_share: None,
                value: match (with_values, prediction) {
                    (true, Some(p)) => Some(json_value(&p.value)),
                    _ => None,
                },
            });
        }
        explanation.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
        explanation.truncate(EXPLAIN_TOP);
        // The ring keeps anomalies with their explanation: without this, each kept the
        // capacity of one contribution per feature (12 KB for 100 features; 39 MB in a
        // 32-model sidecar's rings, issue 13).
        explanation.shrink_to_fit();
        RowScore {
            score,
            univariate,
            multivariate,
            mahalanobis_d2: d2,
            prediction: pz,
            confidence,
            reasons,
            explanation,
        }
    }
}
