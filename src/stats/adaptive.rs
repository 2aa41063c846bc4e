//! Adaptive PSI thresholds (`drift.adaptive: true`): per-feature levels derived from the
//! sampling noise PSI shows when nothing has drifted, at the current window size.
//!
//! # Model
//!
//! Under no drift the window's bin counts are a multinomial sample of size `n` from the
//! baseline proportions `e`, and the baseline proportions themselves were estimated from
//! `N` rows (bins at the baseline's own quantiles have the same noise, carried by their
//! edges). To second order `PSI = Σ (a−e)·ln(a/e) ≈ Σ (a−e)²/e`, Pearson's distance, so
//!
//! ```text
//! PSI ≈ s · χ²_{k−1},    s = 1/n + 1/N,    k = number of bins with e_i > 0
//! ```
//!
//! (`1/N` is dropped when the baseline proportions are exact or `N` is unknown).
//!
//! For small windows the dominant departure from this is the `1e-4` floor: a bin that
//! happens to receive no window value contributes `c_i = (e_i − 1e-4)·ln(e_i / 1e-4)`
//! (≈ 0.69 for `e_i = 0.1`), far above its χ² share. That event has probability
//! `π_i = (1 − e_i)^n`, so the null distribution is modelled as the mixture
//!
//! ```text
//! P(PSI > t) ≈ (1 − Σπ_i)·P(s·χ²_{k−1} > t) + Σ_i π_i·P(s·χ²_{k−2} > t − c_i − δ_i)
//! ```
//!
//! where `δ_i = −e_i·ln(1 − e_i)` is the shift of the other bins, which share that bin's
//! mass. The `q`-quantile `T_q` is solved by bisection (closed form when `Σπ_i` is
//! negligible, i.e. whenever every bin expects ≥ ~20 values).
//!
//! Thresholds are then `warning = configured.warning + T_0.99`,
//! `critical = configured.critical + T_0.999`: a feature is flagged when its PSI exceeds the
//! configured level *beyond* what sampling noise alone produces 1 % (0.1 %) of the time.
//! With a 5000-value window and 10 bins the noise term is ~0.004 / ~0.006, so the
//! configured levels dominate; with 100 values it is ~0.22 / ~0.29.
//!
//! # Accuracy (checked by simulation in `scripts/gen/stats.py`)
//!
//! The quantiles agree with simulated multinomial PSI quantiles within about 10 % when
//! every bin expects at least 20 window values (`window_n · min e_i ≥ 20`, see
//! [`min_expected_count`]), and the model understates them by at most ~30 % down to 5
//! expected values per bin. Below that (a handful of values per bin) single hits in rare
//! bins give PSI a heavier tail than any χ² model: callers should require a minimum window
//! count before judging drift on PSI.

use super::chi2::{chi2_quantile, chi2_sf};
use super::psi::PSI_FLOOR;

/// Tail probability level of the warning threshold (1 % false alarms under no drift).
pub const WARNING_QUANTILE: f64 = 0.99;
/// Tail probability level of the critical threshold (0.1 % false alarms under no drift).
pub const CRITICAL_QUANTILE: f64 = 0.999;

/// A pair of warning / critical levels for one statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Values at or above this are `warning`.
    pub warning: f64,
    /// Values at or above this are `critical`.
    pub critical: f64,
}

/// `window_n · min_i e_i` over the bins with positive expected proportion: the expected
/// number of window values in the rarest bin. `None` for an empty/invalid `expected`.
pub fn min_expected_count(expected: &[f64], window_n: u64) -> Option<f64> {
    let min = expected
        .iter()
        .copied()
        .filter(|e| e.is_finite() && *e > 0.0)
        .fold(f64::INFINITY, f64::min);
    min.is_finite().then_some(min * window_n as f64)
}

/// The `q`-quantile (`0 < q < 1`) of PSI under no drift for a window of `window_n` values
/// binned like `expected`, with the baseline estimated from `baseline_n` rows (`None`: the
/// baseline proportions are taken as exact). See the module docs for the model.
///
/// `Some(0.0)` when fewer than two bins have positive expected mass (PSI is then 0 under no
/// drift). `None` when `window_n == 0`, `baseline_n == Some(0)`, `q` is outside `(0, 1)`,
/// or `expected` is empty or holds a negative / non-finite value.
pub fn psi_null_quantile(
    expected: &[f64],
    window_n: u64,
    baseline_n: Option<u64>,
    q: f64,
) -> Option<f64> {
    if window_n == 0 || baseline_n == Some(0) || !(q > 0.0 && q < 1.0) || expected.is_empty() {
        return None;
    }
    if !expected.iter().all(|e| e.is_finite() && *e >= 0.0) {
        return None;
    }
    let total: f64 = expected.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let support: Vec<f64> = expected
        .iter()
        .filter(|&&e| e > 0.0)
        .map(|&e| e / total)
        .collect();
    let k = support.len();
    if k < 2 {
        return Some(0.0);
    }
    let n = window_n as f64;
    let s = 1.0 / n + baseline_n.map_or(0.0, |b| 1.0 / b as f64);
    let dof = (k - 1) as f64;
    let base = s * chi2_quantile(q, dof)?;

    // Empty-bin mixture components: (probability, shift).
    let components: Vec<(f64, f64)> = support
        .iter()
        .map(|&e| {
            let pi = (1.0 - e).powf(n);
            let ef = e.max(PSI_FLOOR);
            let shift = (ef - PSI_FLOOR) * (ef / PSI_FLOOR).ln() - e * (1.0 - e).ln();
            (pi, shift)
        })
        .filter(|&(pi, _)| pi > 0.0)
        .collect();
    let pi_total: f64 = components.iter().map(|c| c.0).sum();
    let alpha = 1.0 - q;
    if pi_total < alpha * 1e-6 {
        return Some(base);
    }
    let tail = |t: f64| -> f64 {
        let main = (1.0 - pi_total).max(0.0) * chi2_sf(t / s, dof).unwrap_or(0.0);
        let extra: f64 = components
            .iter()
            .map(|&(pi, shift)| {
                let x = t - shift;
                let p = if k > 2 {
                    if x <= 0.0 {
                        1.0
                    } else {
                        chi2_sf(x / s, (k - 2) as f64).unwrap_or(0.0)
                    }
                } else if x < 0.0 {
                    1.0
                } else {
                    0.0
                };
                pi * p
            })
            .sum();
        main + extra - alpha
    };
    // The mixture tail is decreasing in t; bracket the root, then bisect.
    let mut lo = 0.0_f64;
    let mut hi = base.max(s);
    for _ in 0..64 {
        if tail(hi) <= 0.0 {
            break;
        }
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-9 * hi {
            break;
        }
    }
    Some(hi)
}

/// Adaptive PSI thresholds: the configured levels plus the no-drift PSI quantiles at
/// [`WARNING_QUANTILE`] and [`CRITICAL_QUANTILE`] for this window size (module docs).
/// `None` under the same conditions as [`psi_null_quantile`].
pub fn adaptive_psi_thresholds(
    expected: &[f64],
    window_n: u64,
    baseline_n: Option<u64>,
    configured: Thresholds,
) -> Option<Thresholds> {
    let w = psi_null_quantile(expected, window_n, baseline_n, WARNING_QUANTILE)?;
    let c = psi_null_quantile(expected, window_n, baseline_n, CRITICAL_QUANTILE)?;
    Some(Thresholds {
        warning: configured.warning + w,
        critical: configured.critical + c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_windows_follow_the_scaled_chi_square() {
        // k = 10, n = 5000: every bin expects 500 values, the mixture is negligible.
        let e = [0.1; 10];
        let q = psi_null_quantile(&e, 5000, None, 0.99).unwrap();
        let chi = chi2_quantile(0.99, 9.0).unwrap() / 5000.0;
        assert!((q - chi).abs() < 1e-12, "{q} vs {chi}");
        let q2 = psi_null_quantile(&e, 5000, Some(5000), 0.99).unwrap();
        assert!((q2 - 2.0 * chi).abs() < 1e-12);
    }

    #[test]
    fn noise_shrinks_with_window_size() {
        let e = [0.25; 4];
        let small = psi_null_quantile(&e, 40, None, 0.99).unwrap();
        let large = psi_null_quantile(&e, 4000, None, 0.99).unwrap();
        assert!(small > 10.0 * large, "{small} {large}");
    }

    #[test]
    fn thresholds_add_noise_to_configured_levels() {
        let t = adaptive_psi_thresholds(
            &[0.1; 10],
            100,
            None,
            Thresholds {
                warning: 0.1,
                critical: 0.2,
            },
        )
        .unwrap();
        assert!(t.warning > 0.1 && t.critical > 0.2 && t.critical > t.warning);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(psi_null_quantile(&[1.0], 100, None, 0.99), Some(0.0));
        assert_eq!(psi_null_quantile(&[0.5, 0.5], 0, None, 0.99), None);
        assert_eq!(psi_null_quantile(&[0.5, 0.5], 10, Some(0), 0.99), None);
        assert_eq!(psi_null_quantile(&[], 10, None, 0.99), None);
        assert_eq!(psi_null_quantile(&[0.5, 0.5], 10, None, 1.0), None);
        assert_eq!(psi_null_quantile(&[0.5, f64::NAN], 10, None, 0.5), None);
        assert_eq!(min_expected_count(&[0.0, 0.25, 0.75], 100), Some(25.0));
        assert_eq!(min_expected_count(&[], 100), None);
    }
}
