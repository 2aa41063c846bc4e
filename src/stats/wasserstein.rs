//! First Wasserstein (earth mover's) distance between two samples:
//! `W1 = ∫ |F_u(x) − F_v(x)| dx`, equal to `scipy.stats.wasserstein_distance(u, v)`.
//! In the units of the feature (a mean shift of `δ` gives `W1 = |δ|`).

use super::quantiles::NeumaierSum;

/// W1 distance of two unsorted samples (copies and sorts, dropping NaN and `±inf`).
/// `None` when either sample has no finite value.
pub fn wasserstein(u: &[f64], v: &[f64]) -> Option<f64> {
    let u = super::sorted_finite(u);
    let v = super::sorted_finite(v);
    wasserstein_sorted(&u, &v)
}

/// W1 distance of two ascending samples in `O(n + m)`: the sum over consecutive pooled
/// values of `|F_u − F_v| · gap`. Leading/trailing non-finite values are ignored; `None`
/// when either sample is empty. Unsorted input gives a meaningless answer, never a panic.
pub fn wasserstein_sorted(u: &[f64], v: &[f64]) -> Option<f64> {
    let u = super::finite_run(u);
    let v = super::finite_run(v);
    if u.is_empty() || v.is_empty() {
        return None;
    }
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let (mut i, mut j) = (0_usize, 0_usize);
    let mut prev: Option<f64> = None;
    let mut total = NeumaierSum::default();
    while i < u.len() || j < v.len() {
        let x = match (u.get(i), v.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        if x.is_nan() {
            // Only reachable with NaN inside an unsorted slice: skip it so the loop ends.
            if u.get(i).is_some_and(|a| a.is_nan()) {
                i += 1;
            } else {
                j += 1;
            }
            continue;
        }
        if let Some(p) = prev {
            // Both CDFs are constant on [p, x): F_u = i/nu, F_v = j/nv.
            let diff = (i as f64 / nu - j as f64 / nv).abs();
            total.add(diff * (x - p));
        }
        let (i0, j0) = (i, j);
        while i < u.len() && u[i] <= x {
            i += 1;
        }
        while j < v.len() && v[j] <= x {
            j += 1;
        }
        if i == i0 && j == j0 {
            // Unsorted input (a value below x after x): step past it.
            if i < u.len() {
                i += 1;
            } else {
                j += 1;
            }
        }
        prev = Some(x);
    }
    Some(total.total())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_gives_its_size() {
        let u = [0.0, 1.0, 2.0, 3.0];
        let v: Vec<f64> = u.iter().map(|x| x + 5.0).collect();
        assert!((wasserstein(&u, &v).unwrap() - 5.0).abs() < 1e-12);
    }

    #[test]
    fn empty_is_none_identical_is_zero() {
        assert_eq!(wasserstein(&[], &[1.0]), None);
        assert_eq!(wasserstein(&[2.0, 1.0], &[1.0, 2.0]), Some(0.0));
    }

    #[test]
    fn unsorted_input_to_sorted_variant_terminates() {
        assert!(wasserstein_sorted(&[3.0, 1.0, 2.0], &[2.0, f64::NAN, 0.0]).is_some());
    }
}
