//! KernelSHAP (Lundberg & Lee 2017) on a black-box value function: which coalitions to
//! evaluate, their kernel weights, and the weighted least-squares solve with the efficiency
//! constraint Σ φ = v(1) − v(0).
//!
//! A coalition z ∈ {0,1}^M (M players = features) is evaluated by the caller as
//! v(z) = Σ_b w_b f(x on the features of z, background row b elsewhere). With every
//! coalition enumerated and the Shapley kernel π(z) = (M − 1) / (C(M,|z|) |z| (M − |z|)), the
//! solution *is* the Shapley value; with fewer coalitions than 2^M − 2 they are sampled as
//! `shap.KernelExplainer` samples them: subset sizes whose coalitions all fit in the budget
//! (smallest and largest sizes first, paired with their complements) are enumerated, the rest
//! drawn by the kernel's size distribution, with each drawn coalition's complement.
//!
//! The solve eliminates the last player with the constraint (φ_M = Δ − Σ_{j<M} φ_j) and
//! solves the (M − 1)-dimensional normal equations with nalgebra (SVD, so that an
//! ill-conditioned sample still gives the minimum-norm answer).

use std::collections::HashMap;

use nalgebra::{DMatrix, DVector};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

/// The coalitions to evaluate and their kernel weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Coalitions {
    /// Number of players M.
    pub players: usize,
    /// One mask per coalition (`true` = the feature takes the explained row's value).
    /// Neither the empty nor the full coalition is listed (they are v(0) and v(1)).
    pub masks: Vec<Vec<bool>>,
    /// Weight of each coalition in the regression (any positive scale).
    pub weights: Vec<f64>,
    /// Whether every coalition is listed (then the solve gives exact Shapley values).
    pub exact: bool,
}

/// The number of coalitions KernelSHAP evaluates for `players` features and a `budget`:
/// 2^M − 2 when that fits in the budget (exact), else the budget. 0 for fewer than 2 players
/// (one player gets all of v(1) − v(0)).
pub fn coalition_count(players: usize, budget: usize) -> usize {
    if players < 2 {
        return 0;
    }
    match all_coalitions(players) {
        Some(n) if n <= budget => n,
        _ => budget,
    }
}

/// 2^M − 2, when it fits in a usize.
fn all_coalitions(players: usize) -> Option<usize> {
    let shift = u32::try_from(players).ok()?;
    1usize
        .checked_shl(shift)
        .filter(|_| shift < usize::BITS)?
        .checked_sub(2)
}

fn binomial(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    let mut out = 1.0;
    for i in 0..k {
        out = out * (n - i) as f64 / (i + 1) as f64;
    }
    out
}

/// The Shapley kernel weight of a coalition of `size` out of `m` players.
pub fn kernel_weight(m: usize, size: usize) -> f64 {
    (m as f64 - 1.0) / (binomial(m, size) * size as f64 * (m - size) as f64)
}

/// Calls `f` with every `k`-subset of `0..n` (as sorted indices), in lexicographic order.
fn for_each_combination(n: usize, k: usize, mut f: impl FnMut(&[usize])) {
    if k > n {
        return;
    }
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        f(&idx);
        // The rightmost index that can still move right.
        let Some(i) = (0..k).rev().find(|&i| idx[i] != i + n - k) else {
            return;
        };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

fn mask_of(m: usize, on: &[usize]) -> Vec<bool> {
    let mut mask = vec![false; m];
    for &i in on {
        mask[i] = true;
    }
    mask
}

/// The coalitions KernelSHAP evaluates for `m` players within `budget` coalitions
/// (deterministic for a `seed`); see the module documentation.
pub fn coalitions(m: usize, budget: usize, seed: u64) -> Coalitions {
    let mut out = Coalitions {
        players: m,
        masks: Vec::new(),
        weights: Vec::new(),
        exact: true,
    };
    if m < 2 {
        return out;
    }
    if all_coalitions(m).is_some_and(|n| n <= budget) {
        for size in 1..m {
            let w = kernel_weight(m, size);
            for_each_combination(m, size, |on| {
                out.masks.push(mask_of(m, on));
                out.weights.push(w);
            });
        }
        return out;
    }
    out.exact = false;
    // Sizes 1..=ceil((M−1)/2); sizes up to floor((M−1)/2) are paired with their complements.
    let sizes = m / 2; // = ceil((m - 1) / 2)
    let paired = (m - 1) / 2;
    let mut size_weight: Vec<f64> = (1..=sizes)
        .map(|s| (m as f64 - 1.0) / (s as f64 * (m - s) as f64))
        .collect();
    for w in size_weight.iter_mut().take(paired) {
        *w *= 2.0;
    }
    let total: f64 = size_weight.iter().sum();
    for w in &mut size_weight {
        *w /= total;
    }
    let mut left = budget;
    let mut remaining = size_weight.clone();
    let mut full = 0;
    for s in 1..=sizes {
        let is_paired = s <= paired;
        let n_subsets = binomial(m, s) * if is_paired { 2.0 } else { 1.0 };
        if left as f64 * remaining[s - 1] / n_subsets < 1.0 - 1e-8 {
            break;
        }
        full += 1;
        left = left.saturating_sub(n_subsets as usize);
        if remaining[s - 1] < 1.0 {
            let scale = 1.0 - remaining[s - 1];
            for w in &mut remaining {
                *w /= scale;
            }
        }
        let mut w = size_weight[s - 1] / binomial(m, s);
        if is_paired {
            w /= 2.0;
        }
        for_each_combination(m, s, |on| {
            let mask = mask_of(m, on);
            if is_paired {
                out.masks.push(mask.iter().map(|b| !b).collect());
                out.weights.push(w);
            }
            out.masks.push(mask);
            out.weights.push(w);
        });
    }
    if full == sizes || left == 0 {
        return out;
    }
    let fixed = out.masks.len();
    // Sizes left, drawn by their share of the kernel (pairs count once: halve them back).
    let mut rest: Vec<f64> = size_weight.clone();
    for w in rest.iter_mut().take(paired) {
        *w /= 2.0;
    }
    let rest = &rest[full..];
    let rest_total: f64 = rest.iter().sum();
    let mut cumulative = Vec::with_capacity(rest.len());
    let mut acc = 0.0;
    for w in rest {
        acc += w / rest_total;
        cumulative.push(acc);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut seen: HashMap<Vec<bool>, usize> = HashMap::new();
    // Draws are bounded: repeated coalitions only add weight, so stop after 4 × budget.
    let mut draws = 0;
    while left > 0 && draws < 4 * budget {
        draws += 1;
        let u: f64 = rng.random();
        let k = cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(rest.len() - 1);
        let s = full + 1 + k;
        let on = sample(&mut rng, m, s).into_vec();
        let mask = mask_of(m, &on);
        let complement: Vec<bool> = mask.iter().map(|b| !b).collect();
        let with_complement = s <= paired;
        match seen.get(&mask) {
            Some(&i) => {
                out.weights[i] += 1.0;
                if with_complement {
                    if let Some(&j) = seen.get(&complement) {
                        out.weights[j] += 1.0;
                    }
                }
            }
            None => {
                seen.insert(mask.clone(), out.masks.len());
                out.masks.push(mask);
                out.weights.push(1.0);
                left -= 1;
                if with_complement && left > 0 {
                    seen.insert(complement.clone(), out.masks.len());
                    out.masks.push(complement);
                    out.weights.push(1.0);
                    left -= 1;
                }
            }
        }
    }
    // The drawn coalitions share the weight of the sizes that were not enumerated.
    let drawn: f64 = out.weights[fixed..].iter().sum();
    let share: f64 = size_weight[full..].iter().sum();
    if drawn > 0.0 {
        for w in &mut out.weights[fixed..] {
            *w *= share / drawn;
        }
    }
    out
}

/// Shapley values from the coalitions' values `v` (v(z) for each mask of `c`), `v0` = v(∅)
/// (the expected output over the background) and `v1` = v(all) (the explained output):
/// the kernel-weighted least squares with Σ φ = v1 − v0 imposed exactly.
pub fn solve(c: &Coalitions, v: &[f64], v0: f64, v1: f64) -> Result<Vec<f64>, String> {
    let m = c.players;
    let delta = v1 - v0;
    if m == 0 {
        return Ok(Vec::new());
    }
    if m == 1 {
        return Ok(vec![delta]);
    }
    if v.len() != c.masks.len() {
        return Err(format!(
            "{} coalition values for {} coalitions",
            v.len(),
            c.masks.len()
        ));
    }
    if let Some(bad) = v.iter().chain([&v0, &v1]).find(|x| !x.is_finite()) {
        return Err(format!("model output {bad} is not a finite number"));
    }
    let last = m - 1;
    let n = c.masks.len();
    // Rows scaled by sqrt(w): the weighted problem as an ordinary one.
    let mut x = DMatrix::<f64>::zeros(n, last);
    let mut y = DVector::<f64>::zeros(n);
    for (i, (mask, &w)) in c.masks.iter().zip(&c.weights).enumerate() {
        let sw = w.max(0.0).sqrt();
        let z_last = f64::from(u8::from(mask[last]));
        for j in 0..last {
            x[(i, j)] = sw * (f64::from(u8::from(mask[j])) - z_last);
        }
        y[i] = sw * (v[i] - v0 - z_last * delta);
    }
    let xtx = x.transpose() * &x;
    let xty = x.transpose() * &y;
    let scale = xtx.diagonal().amax().max(f64::MIN_POSITIVE);
    let beta = xtx
        .svd(true, true)
        .solve(&xty, scale * 1e-12)
        .map_err(|e| format!("KernelSHAP solve failed: {e}"))?;
    let mut phi: Vec<f64> = beta.iter().copied().collect();
    let rest: f64 = phi.iter().sum();
    phi.push(delta - rest);
    Ok(phi)
}

/// Exact Shapley values by the defining sum over subsets (tests; O(M 2^M) values `v` of
/// every subset, indexed by bitmask).
#[cfg(test)]
pub fn shapley_by_definition(m: usize, v: &[f64]) -> Vec<f64> {
    let fact = |n: usize| (1..=n).map(|i| i as f64).product::<f64>();
    (0..m)
        .map(|j| {
            (0..1usize << m)
                .filter(|s| s & (1 << j) == 0)
                .map(|s| {
                    let size = s.count_ones() as usize;
                    let w = fact(size) * fact(m - size - 1) / fact(m);
                    w * (v[s | (1 << j)] - v[s])
                })
                .sum()
        })
        .collect()
}

/// A sample mean's tolerance helper for tests: the largest |a − b|.
#[cfg(test)]
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Draws for tests that need a random value function.
#[cfg(test)]
pub fn random_game(m: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..1usize << m).map(|_| rng.random::<f64>()).collect()
}
