//! The background of KernelSHAP: the rows "absent" features take their values from.
//!
//! From the baseline's row-aligned joint sample (numeric features), the rows holding every
//! numeric feature of the model; categorical features take their most frequent baseline
//! category. More rows than `explain.background` are summarised by k-means (as
//! `shap.kmeans` does): k-means++ seeding (seeded), Lloyd iterations on standardised
//! columns, each centre's coordinate snapped to the nearest value of its cluster's members
//! for that feature (so integer features stay integers), weighted by its cluster's share of
//! the rows. Without a joint sample the background is the one reference row of occlusion
//! (median / most frequent category).

use rand::{Rng, SeedableRng};

use crate::baseline::{FeatureType, Snapshot};
use crate::record::{FeatureValue, Row};

/// Rows with weights summing to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Background {
    /// The rows (every feature named by the caller that has a value).
    pub rows: Vec<Row>,
    /// One weight per row, summing to 1.
    pub weights: Vec<f64>,
    /// Where the rows came from, for the answer.
    pub source: String,
}

/// Lloyd iterations at most.
const MAX_ITERATIONS: usize = 100;

/// The background of `features` from `snapshot`, at most `k` rows; features without a
/// baseline value are left out of the rows (the caller holds them at the explained row's
/// value). `None` when no feature has a baseline value.
pub fn from_baseline(snapshot: &Snapshot, features: &[String], k: usize) -> Option<Background> {
    let reference: Vec<(String, FeatureValue)> = features
        .iter()
        .filter_map(|f| {
            let b = snapshot.features.get(f)?;
            super::engine::reference_value(b).map(|v| (f.clone(), v))
        })
        .collect();
    if reference.is_empty() {
        return None;
    }
    let numeric: Vec<&String> = features
        .iter()
        .filter(|f| {
            snapshot
                .features
                .get(f)
                .is_some_and(|b| b.kind == FeatureType::Numeric)
        })
        .collect();
    let sample = snapshot.joint_sample.as_ref().and_then(|js| {
        let idx: Vec<usize> = numeric
            .iter()
            .map(|f| js.columns.iter().position(|c| c == *f))
            .collect::<Option<_>>()?;
        let rows: Vec<Vec<f64>> = js
            .rows
            .iter()
            .filter_map(|r| {
                idx.iter()
                    .map(|&i| r.get(i).filter(|x| x.is_finite()))
                    .collect::<Option<Vec<f64>>>()
            })
            .collect();
        (!numeric.is_empty() && !rows.is_empty()).then_some(rows)
    });
    let Some(sample) = sample else {
        return Some(Background {
            rows: vec![Row { values: reference }],
            weights: vec![1.0],
            source: "baseline reference row (median, most frequent category)".into(),
        });
    };
    let n = sample.len();
    let (centres, weights, source) = if n <= k {
        (
            sample,
            vec![1.0 / n as f64; n],
            format!("baseline joint sample ({n} rows)"),
        )
    } else {
        let (c, w) = kmeans(&sample, k, 0x6b6d_6561_6e73);
        let source = format!(
            "k-means summary ({} centres) of the baseline joint sample ({n} rows)",
            c.len()
        );
        (c, w, source)
    };
    let rows = centres
        .into_iter()
        .map(|centre| Row {
            values: reference
                .iter()
                .map(|(name, v)| match numeric.iter().position(|f| *f == name) {
                    Some(j) => (name.clone(), FeatureValue::Number(centre[j])),
                    None => (name.clone(), v.clone()),
                })
                .collect(),
        })
        .collect();
    Some(Background {
        rows,
        weights,
        source,
    })
}

fn dist2(a: &[f64], b: &[f64], scale: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .zip(scale)
        .map(|((x, y), s)| ((x - y) / s).powi(2))
        .sum()
}

/// k-means of `rows` into at most `k` centres with their weights (cluster share); see the
/// module documentation. Deterministic for a `seed`.
pub fn kmeans(rows: &[Vec<f64>], k: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let n = rows.len();
    let Some(first) = rows.first() else {
        return (Vec::new(), Vec::new());
    };
    let d = first.len();
    let k = k.clamp(1, n);
    // Column scales: standard deviations (1 for constant columns).
    let scale: Vec<f64> = (0..d)
        .map(|j| {
            let mean = rows.iter().map(|r| r[j]).sum::<f64>() / n as f64;
            let var = rows.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n as f64;
            if var > 0.0 {
                var.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut centres: Vec<Vec<f64>> = vec![rows[rng.random_range(0..n)].clone()];
    let mut nearest: Vec<f64> = rows.iter().map(|r| dist2(r, &centres[0], &scale)).collect();
    while centres.len() < k {
        let total: f64 = nearest.iter().sum();
        if total <= 0.0 {
            break; // fewer distinct rows than k
        }
        let mut u = rng.random::<f64>() * total;
        let mut pick = n - 1;
        for (i, d) in nearest.iter().enumerate() {
            if u < *d {
                pick = i;
                break;
            }
            u -= d;
        }
        let c = rows[pick].clone();
        for (i, r) in rows.iter().enumerate() {
            nearest[i] = nearest[i].min(dist2(r, &c, &scale));
        }
        centres.push(c);
    }
    let mut assign = vec![usize::MAX; n];
    for _ in 0..MAX_ITERATIONS {
        let mut changed = false;
        for (i, r) in rows.iter().enumerate() {
            let best = (0..centres.len())
                .min_by(|&a, &b| {
                    dist2(r, &centres[a], &scale).total_cmp(&dist2(r, &centres[b], &scale))
                })
                .unwrap_or(0);
            if assign[i] != best {
                assign[i] = best;
                changed = true;
            }
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members = members_of(rows, &assign, c);
            if members.is_empty() {
                continue;
            }
            for (j, x) in centre.iter_mut().enumerate() {
                *x = members.iter().map(|r| r[j]).sum::<f64>() / members.len() as f64;
            }
        }
        if !changed {
            break;
        }
    }
    let mut out = Vec::with_capacity(centres.len());
    let mut weights = Vec::with_capacity(centres.len());
    for (c, centre) in centres.iter().enumerate() {
        let members = members_of(rows, &assign, c);
        if members.is_empty() {
            continue;
        }
        // Snap each coordinate to the nearest member value (real values stay real).
        let snapped: Vec<f64> = (0..d)
            .map(|j| {
                members
                    .iter()
                    .map(|r| r[j])
                    .min_by(|a, b| (a - centre[j]).abs().total_cmp(&(b - centre[j]).abs()))
                    .unwrap_or(centre[j])
            })
            .collect();
        weights.push(members.len() as f64 / n as f64);
        out.push(snapped);
    }
    (out, weights)
}

/// The rows assigned to cluster `c`.
fn members_of<'a>(rows: &'a [Vec<f64>], assign: &[usize], c: usize) -> Vec<&'a Vec<f64>> {
    rows.iter()
        .zip(assign)
        .filter(|(_, a)| **a == c)
        .map(|(r, _)| r)
        .collect()
}
