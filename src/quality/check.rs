//! How one value of a feature is judged against what the baseline says about the feature.

use std::collections::HashSet;

use crate::baseline::{category_key, FeatureBaseline, FeatureType, OTHER_CATEGORY};
use crate::record::FeatureValue;

/// Multiple of the interquartile range beyond the quartiles that makes a value an outlier
/// (Tukey's "far out" fences).
pub const OUTLIER_IQR_FACTOR: f64 = 3.0;

/// How a value was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A usable value (`outlier`/`out_of_range` for numeric values beyond the limits).
    Ok {
        /// Outside the baseline `[min, max]`.
        out_of_range: bool,
        /// Beyond the outlier fences.
        outlier: bool,
    },
    /// Missing.
    Missing,
    /// Text on a numeric feature.
    TypeMismatch,
    /// A category the baseline never saw.
    UnseenCategory,
}

/// What the baseline says a feature should look like.
#[derive(Debug, Clone)]
pub(super) enum Spec {
    Numeric {
        min: Option<f64>,
        max: Option<f64>,
        fences: Option<(f64, f64)>,
        baseline_missing: f64,
    },
    Categorical {
        known: HashSet<String>,
        /// The baseline pooled rare values into `__other__`: nothing is "unseen".
        pooled: bool,
        baseline_missing: f64,
    },
    /// Not in the baseline: the type is fixed by the first non-missing value.
    Unknown { numeric: Option<bool> },
}

/// Numeric reading of a value, as the drift windows read it.
enum Num {
    Value(f64),
    Missing,
    Text,
}

fn numeric(value: &FeatureValue) -> Num {
    match value {
        FeatureValue::Number(v) if v.is_finite() => Num::Value(*v),
        FeatureValue::Number(_) | FeatureValue::Missing => Num::Missing,
        FeatureValue::Text(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Num::Missing;
            }
            match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Num::Value(v),
                Ok(_) => Num::Missing,
                Err(_) => Num::Text,
            }
        }
    }
}

impl Spec {
    pub(super) fn from_baseline(b: &FeatureBaseline) -> Spec {
        match b.kind {
            FeatureType::Numeric => {
                let fences = b.stats.quantiles.map(|q| {
                    let iqr = (q.p75 - q.p25).max(0.0);
                    (
                        q.p25 - OUTLIER_IQR_FACTOR * iqr,
                        q.p75 + OUTLIER_IQR_FACTOR * iqr,
                    )
                });
                Spec::Numeric {
                    min: b.stats.min,
                    max: b.stats.max,
                    fences,
                    baseline_missing: b.stats.missing_ratio,
                }
            }
            FeatureType::Categorical => {
                let mut known = HashSet::new();
                let mut pooled = false;
                if let Some(c) = &b.categories {
                    for (name, _) in c.iter() {
                        if name == OTHER_CATEGORY {
                            pooled = true;
                        } else {
                            known.insert(name.to_string());
                        }
                    }
                }
                Spec::Categorical {
                    known,
                    pooled,
                    baseline_missing: b.stats.missing_ratio,
                }
            }
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Spec::Numeric { .. }
            | Spec::Unknown {
                numeric: Some(true),
            } => "numeric",
            Spec::Categorical { .. }
            | Spec::Unknown {
                numeric: Some(false),
            } => "categorical",
            Spec::Unknown { numeric: None } => "unknown",
        }
    }

    pub(super) fn baseline_missing(&self) -> f64 {
        match self {
            Spec::Numeric {
                baseline_missing, ..
            }
            | Spec::Categorical {
                baseline_missing, ..
            } => *baseline_missing,
            Spec::Unknown { .. } => 0.0,
        }
    }

    /// The `mlmon_feature_errors_total` reasons zero-initialised for this feature: those
    /// normal traffic gives, `missing` and the type's own check (`out_of_range` for a numeric
    /// feature, `unseen_category` for a categorical one unless the baseline pooled rare
    /// values). A `type_mismatch` (a client's schema error) and a reason the type cannot give
    /// get their series at their first occurrence (issue 13: series per feature).
    pub(super) fn reasons(&self) -> &'static [&'static str] {
        match self {
            Spec::Numeric { .. } => &["missing", "out_of_range"],
            Spec::Categorical { pooled: true, .. } | Spec::Unknown { .. } => &["missing"],
            Spec::Categorical { pooled: false, .. } => &["missing", "unseen_category"],
        }
    }

    /// Judges one value; returns the check and the numeric value when there is one.
    #[inline]
    pub(super) fn check(&mut self, value: &FeatureValue) -> (Check, Option<f64>) {
        match self {
            Spec::Numeric {
                min, max, fences, ..
            } => match numeric(value) {
                Num::Value(v) => {
                    let out_of_range = min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m);
                    let outlier = fences.is_some_and(|(lo, hi)| v < lo || v > hi);
                    (
                        Check::Ok {
                            out_of_range,
                            outlier,
                        },
                        Some(v),
                    )
                }
                Num::Missing => (Check::Missing, None),
                Num::Text => (Check::TypeMismatch, None),
            },
            Spec::Categorical { known, pooled, .. } => match category_key(value) {
                None => (Check::Missing, None),
                Some(k) if *pooled || known.contains(k.as_ref()) => (
                    Check::Ok {
                        out_of_range: false,
                        outlier: false,
                    },
                    None,
                ),
                Some(_) => (Check::UnseenCategory, None),
            },
            Spec::Unknown { numeric: kind } => {
                let n = numeric(value);
                if matches!(n, Num::Missing) {
                    return (Check::Missing, None);
                }
                let is_num = *kind.get_or_insert(matches!(n, Num::Value(_)));
                match (is_num, n) {
                    (true, Num::Value(v)) => (
                        Check::Ok {
                            out_of_range: false,
                            outlier: false,
                        },
                        Some(v),
                    ),
                    (true, _) => (Check::TypeMismatch, None),
                    (false, _) => (
                        Check::Ok {
                            out_of_range: false,
                            outlier: false,
                        },
                        None,
                    ),
                }
            }
        }
    }
}
