//! Jensen–Shannon divergence in bits.
//!
//! `JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m)`, `m = (p + q)/2`, logarithm base 2, so it lies in
//! `[0, 1]`. Equals `scipy.spatial.distance.jensenshannon(p, q, base=2)**2`: both inputs are
//! normalised to sum to 1 first, and no floor is applied (`0·ln 0 = 0`).

/// JS divergence (base 2) between two non-negative weight vectors of the same length
/// (proportions or counts: each is normalised to sum 1).
///
/// `None` when the slices are empty or differ in length, when a weight is negative or
/// non-finite, or when either side sums to zero (an empty window).
pub fn js_divergence(p: &[f64], q: &[f64]) -> Option<f64> {
    if p.is_empty() || p.len() != q.len() {
        return None;
    }
    let valid = |x: &f64| x.is_finite() && *x >= 0.0;
    if !p.iter().all(valid) || !q.iter().all(valid) {
        return None;
    }
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    if sp <= 0.0 || sq <= 0.0 || !sp.is_finite() || !sq.is_finite() {
        return None;
    }
    let mut left = 0.0;
    let mut right = 0.0;
    for (&pi, &qi) in p.iter().zip(q) {
        let (pi, qi) = (pi / sp, qi / sq);
        let m = (pi + qi) / 2.0;
        left += rel_entr(pi, m);
        right += rel_entr(qi, m);
    }
    let js = (left + right) / std::f64::consts::LN_2 / 2.0;
    // Rounding can leave a tiny negative sum for nearly identical inputs (where scipy would
    // return NaN from the square root); the divergence is never below zero.
    Some(js.max(0.0))
}

/// JS divergence of a window given as per-bin counts against baseline proportions.
/// `None` for an empty window, and as for [`js_divergence`].
pub fn js_divergence_counts(expected: &[f64], actual_counts: &[u64]) -> Option<f64> {
    let actual: Vec<f64> = actual_counts.iter().map(|&c| c as f64).collect();
    js_divergence(expected, &actual)
}

/// `x·ln(x/y)` with the conventions `0·ln(0/y) = 0` (scipy.special.rel_entr).
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_supports_give_one_bit() {
        let v = js_divergence(&[1.0, 0.0], &[0.0, 1.0]).unwrap();
        assert!((v - 1.0).abs() < 1e-12);
    }

    #[test]
    fn identical_is_zero_and_scale_free() {
        assert_eq!(js_divergence(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), Some(0.0));
    }

    #[test]
    fn empty_or_invalid_is_none() {
        assert_eq!(js_divergence(&[0.5, 0.5], &[0.0, 0.0]), None);
        assert_eq!(js_divergence_counts(&[0.5, 0.5], &[0, 0]), None);
        assert_eq!(js_divergence(&[0.5], &[0.5, 0.5]), None);
        assert_eq!(js_divergence(&[0.5, f64::INFINITY], &[0.5, 0.5]), None);
        assert_eq!(js_divergence(&[], &[]), None);
    }
}
