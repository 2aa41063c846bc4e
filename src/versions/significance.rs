//! The tests behind `GET /api/v1/models/{model}/compare` (SPEC 10), pure functions checked
//! against scipy and statsmodels (`scripts/gen/versions.py`, `tests/fixtures/versions/`).
//!
//! Every test compares version `b` with version `a` and reports `b − a`:
//!
//! - [`two_proportion`]: accuracy-type metrics (accuracy, error rate). The z statistic uses
//!   the pooled proportion (`statsmodels.stats.proportion.proportions_ztest([x_b, x_a],
//!   [n_b, n_a])`), the interval the unpooled Wald one (`confint_proportions_2indep(x_b, n_b,
//!   x_a, n_a, method="wald")`).
//! - [`welch`]: means (absolute errors, latency): `scipy.stats.ttest_ind(b, a,
//!   equal_var=False)` with its `confidence_interval()`, from the two samples' moments.
//! - [`ks`]: numeric prediction distributions, `scipy.stats.ks_2samp(b, a, method="asymp")`.
//! - [`chi2_homogeneity`]: class-label distributions, `scipy.stats.chi2_contingency(table,
//!   correction=False)`.
//!
//! Sample sizes needed are those of `statsmodels.stats.power.NormalIndPower` for equal group
//! sizes: `n = 2·((z_{1−α/2} + z_{power}) / effect)²` per version, with effect Cohen's h
//! (proportions) or d (means); for KS the size at which the asymptotic critical value
//! `c(α)·√(2/n)` reaches the effect, `c(α) = √(−ln(α/2)/2)`.

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// A test's result: `b − a`, its interval, the statistic and the two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TestResult {
    /// `b − a` (for KS the statistic `D`; for chi-square the largest share difference).
    pub difference: f64,
    /// Confidence interval of the difference at `1 − alpha`, when the test has one.
    pub ci_low: Option<f64>,
    /// Upper end of the interval.
    pub ci_high: Option<f64>,
    /// The test statistic (z, t, D or χ²).
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Degrees of freedom (Welch, chi-square).
    pub df: Option<f64>,
}

fn std_normal() -> Option<Normal> {
    Normal::new(0.0, 1.0).ok()
}

/// Two-sided z critical value at `alpha`.
pub fn z_crit(alpha: f64) -> Option<f64> {
    Some(std_normal()?.inverse_cdf(1.0 - alpha / 2.0))
}

/// Two-proportion z-test of `x_b / n_b` against `x_a / n_a`. `None` when a sample is empty.
/// When both proportions are 0 or both 1 the pooled variance is 0 and there is no evidence
/// of a difference: z 0, p-value 1 (statsmodels answers NaN).
pub fn two_proportion(x_a: u64, n_a: u64, x_b: u64, n_b: u64, alpha: f64) -> Option<TestResult> {
    if n_a == 0 || n_b == 0 || x_a > n_a || x_b > n_b {
        return None;
    }
    let (na, nb) = (n_a as f64, n_b as f64);
    let (pa, pb) = (x_a as f64 / na, x_b as f64 / nb);
    let diff = pb - pa;
    let pooled = (x_a + x_b) as f64 / (na + nb);
    let se0 = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    let normal = std_normal()?;
    let (z, p) = if se0 > 0.0 {
        let z = diff / se0;
        (z, (2.0 * normal.sf(z.abs())).min(1.0))
    } else {
        (0.0, 1.0)
    };
    let se = (pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb).sqrt();
    let zc = z_crit(alpha)?;
    Some(TestResult {
        difference: diff,
        ci_low: Some(diff - zc * se),
        ci_high: Some(diff + zc * se),
        statistic: z,
        p_value: p,
        df: None,
    })
}

/// Sample moments of one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Moments {
    /// Observations.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Sample variance (ddof 1).
    pub variance: f64,
}

impl Moments {
    /// Moments of a sample; `None` when it is empty.
    pub fn of(values: &[f64]) -> Option<Moments> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Some(Moments {
            n: values.len() as u64,
            mean,
            variance,
        })
    }
}

/// Welch's t-test of mean `b` against mean `a`. `None` with fewer than two observations in
/// a group; when both variances are 0 the means either agree (p 1) or the test is undefined
/// (`None`).
pub fn welch(a: Moments, b: Moments, alpha: f64) -> Option<TestResult> {
    if a.n < 2 || b.n < 2 || !a.variance.is_finite() || !b.variance.is_finite() {
        return None;
    }
    let (na, nb) = (a.n as f64, b.n as f64);
    let (va, vb) = (a.variance / na, b.variance / nb);
    let diff = b.mean - a.mean;
    let se = (va + vb).sqrt();
    if se <= 0.0 {
        return (diff == 0.0).then_some(TestResult {
            difference: 0.0,
            ci_low: Some(0.0),
            ci_high: Some(0.0),
            statistic: 0.0,
            p_value: 1.0,
            df: None,
        });
    }
    let df = (va + vb).powi(2) / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    let t = diff / se;
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = (2.0 * dist.sf(t.abs())).min(1.0);
    let tc = dist.inverse_cdf(1.0 - alpha / 2.0);
    Some(TestResult {
        difference: diff,
        ci_low: Some(diff - tc * se),
        ci_high: Some(diff + tc * se),
        statistic: t,
        p_value: p,
        df: Some(df),
    })
}

/// Two-sample KS test of the samples `a` and `b` (asymptotic p-value).
pub fn ks(a: &[f64], b: &[f64]) -> Option<TestResult> {
    let r = crate::stats::ks_2samp(b, a)?;
    Some(TestResult {
        difference: r.statistic,
        ci_low: None,
        ci_high: None,
        statistic: r.statistic,
        p_value: r.pvalue,
        df: None,
    })
}

/// Chi-square test of homogeneity of two label count vectors (same class order), without
/// continuity correction. Classes absent from both are dropped. `difference` is the largest
/// absolute difference of class shares (`b − a`, signed).
pub fn chi2_homogeneity(a: &[u64], b: &[u64]) -> Option<TestResult> {
    let cols: Vec<(u64, u64)> = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x, *y))
        .filter(|(x, y)| x + y > 0)
        .collect();
    let (na, nb): (u64, u64) = cols.iter().fold((0, 0), |(s, t), (x, y)| (s + x, t + y));
    if na == 0 || nb == 0 {
        return None;
    }
    let n = (na + nb) as f64;
    let mut stat = 0.0;
    let mut diff = 0.0_f64;
    for (x, y) in &cols {
        let col = (x + y) as f64;
        for (o, row) in [(*x, na), (*y, nb)] {
            let e = row as f64 * col / n;
            stat += (o as f64 - e).powi(2) / e;
        }
        let d = *y as f64 / nb as f64 - *x as f64 / na as f64;
        if d.abs() > diff.abs() {
            diff = d;
        }
    }
    let dof = cols.len().saturating_sub(1);
    let p = if dof == 0 {
        1.0
    } else {
        ChiSquared::new(dof as f64).ok()?.sf(stat)
    };
    Some(TestResult {
        difference: diff,
        ci_low: None,
        ci_high: None,
        statistic: stat,
        p_value: p,
        df: Some(dof as f64),
    })
}

/// Cohen's h of two proportions (`b` against `a`).
pub fn cohens_h(p_a: f64, p_b: f64) -> f64 {
    2.0 * p_b.clamp(0.0, 1.0).sqrt().asin() - 2.0 * p_a.clamp(0.0, 1.0).sqrt().asin()
}

/// Cohen's d of two means with the pooled standard deviation.
pub fn cohens_d(a: Moments, b: Moments) -> Option<f64> {
    if a.n + b.n < 3 {
        return None;
    }
    let pooled = (((a.n as f64 - 1.0) * a.variance + (b.n as f64 - 1.0) * b.variance)
        / (a.n + b.n - 2) as f64)
        .sqrt();
    (pooled > 0.0).then(|| (b.mean - a.mean) / pooled)
}

/// Observations per version for a two-sided normal test at `alpha` to detect a
/// standardized `effect` with probability `power` (equal group sizes).
pub fn sample_size(effect: f64, alpha: f64, power: f64) -> Option<f64> {
    let effect = effect.abs();
    if effect <= 0.0 || !effect.is_finite() {
        return None;
    }
    let normal = std_normal()?;
    let z = z_crit(alpha)? + normal.inverse_cdf(power);
    Some(2.0 * (z / effect).powi(2))
}

/// Observations per version at which the KS test at `alpha` detects a difference `d` of
/// the two distribution functions.
pub fn ks_sample_size(d: f64, alpha: f64) -> Option<f64> {
    if d <= 0.0 || d > 1.0 || !(0.0..1.0).contains(&alpha) {
        return None;
    }
    let c = (-(alpha / 2.0).ln() / 2.0).sqrt();
    Some(2.0 * (c / d).powi(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert!(two_proportion(0, 0, 1, 2, 0.05).is_none());
        assert!(two_proportion(3, 2, 1, 2, 0.05).is_none());
        let same = two_proportion(10, 10, 5, 5, 0.05).unwrap();
        assert_eq!((same.statistic, same.p_value), (0.0, 1.0));
        let one = Moments::of(&[1.0]).unwrap();
        assert!(welch(one, one, 0.05).is_none());
        let flat = Moments::of(&[2.0, 2.0]).unwrap();
        assert_eq!(welch(flat, flat, 0.05).unwrap().p_value, 1.0);
        let other = Moments::of(&[3.0, 3.0]).unwrap();
        assert!(welch(flat, other, 0.05).is_none());
        assert!(ks(&[], &[1.0]).is_none());
        assert!(chi2_homogeneity(&[0, 0], &[1, 2]).is_none());
        assert_eq!(chi2_homogeneity(&[3, 0], &[5, 0]).unwrap().p_value, 1.0);
        assert!(sample_size(0.0, 0.05, 0.8).is_none());
        assert!(ks_sample_size(0.0, 0.05).is_none());
    }

    fn fixture() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/versions/significance.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    fn f(v: &serde_json::Value) -> f64 {
        v.as_f64().unwrap_or(f64::NAN)
    }

    fn sample(v: &serde_json::Value) -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str()?.parse().ok()).collect())
            .unwrap_or_default()
    }

    fn close(what: &str, got: f64, want: f64, rel: f64) {
        let tol = rel * want.abs().max(1e-300) + 1e-15;
        assert!(
            (got - want).abs() <= tol,
            "{what}: got {got}, scipy/statsmodels {want}"
        );
    }

    #[test]
    fn agrees_with_scipy_and_statsmodels() {
        let fx = fixture();
        let alpha = f(&fx["alpha"]);
        let power = f(&fx["power"]);
        let cases = fx["proportions"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            cases.len(),
            6,
            "fixture missing: run scripts/gen/versions.py"
        );
        for c in &cases {
            let u = |k: &str| c[k].as_u64().unwrap_or(0);
            let r = two_proportion(u("x_a"), u("n_a"), u("x_b"), u("n_b"), alpha).unwrap();
            close("difference", r.difference, f(&c["difference"]), 1e-12);
            close("z", r.statistic, f(&c["statistic"]), 1e-10);
            close("p", r.p_value, f(&c["p_value"]), 1e-9);
            close("ci low", r.ci_low.unwrap(), f(&c["ci_low"]), 1e-9);
            close("ci high", r.ci_high.unwrap(), f(&c["ci_high"]), 1e-9);
            let pa = u("x_a") as f64 / u("n_a") as f64;
            let pb = u("x_b") as f64 / u("n_b") as f64;
            let h = cohens_h(pa, pb);
            close("h", h, f(&c["cohens_h"]), 1e-12);
            match c["sample_size"].as_f64() {
                // NormalIndPower counts the far tail too (< 1e-6 of the power).
                Some(n) => close("n", sample_size(h, alpha, power).unwrap(), n, 1e-4),
                None => assert!(sample_size(h, alpha, power).is_none()),
            }
        }
        let cases = fx["welch"].as_array().cloned().unwrap_or_default();
        assert_eq!(cases.len(), 4);
        for c in &cases {
            let (a, b) = (sample(&c["a"]), sample(&c["b"]));
            let (ma, mb) = (Moments::of(&a).unwrap(), Moments::of(&b).unwrap());
            let r = welch(ma, mb, alpha).unwrap();
            close("difference", r.difference, f(&c["difference"]), 1e-10);
            close("t", r.statistic, f(&c["statistic"]), 1e-9);
            close("df", r.df.unwrap(), f(&c["df"]), 1e-9);
            close("p", r.p_value, f(&c["p_value"]), 1e-8);
            close("ci low", r.ci_low.unwrap(), f(&c["ci_low"]), 1e-8);
            close("ci high", r.ci_high.unwrap(), f(&c["ci_high"]), 1e-8);
            let d = cohens_d(ma, mb).unwrap();
            close("d", d, f(&c["cohens_d"]), 1e-10);
            close(
                "n",
                sample_size(d, alpha, power).unwrap(),
                f(&c["sample_size"]),
                1e-4,
            );
        }
        let cases = fx["ks"].as_array().cloned().unwrap_or_default();
        assert_eq!(cases.len(), 3);
        for c in &cases {
            let r = ks(&sample(&c["a"]), &sample(&c["b"])).unwrap();
            close("D", r.statistic, f(&c["statistic"]), 1e-12);
            close("p", r.p_value, f(&c["p_value"]), 1e-8);
        }
        let cases = fx["chi2"].as_array().cloned().unwrap_or_default();
        assert_eq!(cases.len(), 3);
        for c in &cases {
            let counts = |k: &str| -> Vec<u64> {
                c[k].as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                    .unwrap_or_default()
            };
            let r = chi2_homogeneity(&counts("a"), &counts("b")).unwrap();
            close("chi2", r.statistic, f(&c["statistic"]), 1e-10);
            close("p", r.p_value, f(&c["p_value"]), 1e-8);
            assert_eq!(r.df, c["df"].as_f64());
        }
    }

    #[test]
    fn known_values() {
        // Textbook: 1.959964 and 0.841621; n = 2 (2.801585 / 0.2)^2 = 392.44.
        let n = sample_size(0.2, 0.05, 0.8).unwrap();
        assert!((n - 392.443).abs() < 1e-2, "{n}");
        // c(0.05) = 1.358102
        let n = ks_sample_size(0.1, 0.05).unwrap();
        assert!((n - 2.0 * 13.58102_f64.powi(2)).abs() < 1e-2, "{n}");
    }
}
