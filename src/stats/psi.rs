//! Population Stability Index.
//!
//! `PSI = Σ (a_i − e_i)·ln(a_i / e_i)` over the baseline bins (or categories), where `a` are
//! the window (actual) proportions and `e` the baseline (expected) ones. Each proportion
//! below [`PSI_FLOOR`] (`1e-4`) is raised to it before the sum, with **no** renormalisation,
//! so an empty bin costs a finite amount instead of an infinite one.

/// Proportions below this are set to it before computing PSI (SPEC section 5).
pub const PSI_FLOOR: f64 = 1e-4;

/// PSI of `actual` against `expected` proportions (same length, same bin order).
///
/// `None` when the slices are empty, differ in length, or hold a negative or non-finite
/// proportion. Proportions are used as given (not renormalised); see [`psi_counts`] for raw
/// window counts.
pub fn psi(expected: &[f64], actual: &[f64]) -> Option<f64> {
    if expected.is_empty() || expected.len() != actual.len() {
        return None;
    }
    let valid = |p: &f64| p.is_finite() && *p >= 0.0;
    if !expected.iter().all(valid) || !actual.iter().all(valid) {
        return None;
    }
    Some(
        expected
            .iter()
            .zip(actual)
            .map(|(&e, &a)| {
                let (e, a) = (e.max(PSI_FLOOR), a.max(PSI_FLOOR));
                (a - e) * (a / e).ln()
            })
            .sum(),
    )
}

/// PSI of a window given as per-bin counts against baseline proportions.
///
/// `None` for an empty window (all counts zero): no data is not "no drift". Also `None`
/// under the same shape conditions as [`psi`].
pub fn psi_counts(expected: &[f64], actual_counts: &[u64]) -> Option<f64> {
    let actual = super::bins::proportions(actual_counts)?;
    psi(expected, &actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_have_zero_psi() {
        assert_eq!(psi(&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]), Some(0.0));
    }

    #[test]
    fn empty_bins_are_floored_not_infinite() {
        // a = (1, 0): bin 1 floored to 1e-4 on both sides of the comparison it enters.
        let v = psi(&[0.5, 0.5], &[1.0, 0.0]).unwrap();
        let expected = 0.5 * 2f64.ln() + (1e-4 - 0.5) * (1e-4f64 / 0.5).ln();
        assert!((v - expected).abs() < 1e-12);
    }

    #[test]
    fn invalid_shapes_and_empty_windows_are_none() {
        assert_eq!(psi(&[], &[]), None);
        assert_eq!(psi(&[0.5, 0.5], &[1.0]), None);
        assert_eq!(psi(&[0.5, f64::NAN], &[0.5, 0.5]), None);
        assert_eq!(psi(&[0.5, 0.5], &[-0.5, 1.5]), None);
        assert_eq!(psi_counts(&[0.5, 0.5], &[0, 0]), None);
    }
}
