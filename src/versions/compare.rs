//! One version against another: per metric both values, `b − a`, its interval, the
//! p-value and a verdict with the sample sizes a decision needs (SPEC 10).
//!
//! | metric | test | better |
//! |---|---|---|
//! | `accuracy` (classifiers, ground truth) | two-proportion z | higher |
//! | `absolute_error` (regressors, ground truth) | Welch's t on the absolute errors | lower |
//! | `error_rate` (proxied requests) | two-proportion z | lower |
//! | `latency_mean` (proxied requests) | Welch's t | lower |
//! | `prediction_distribution` | KS (numbers) or chi-square (labels) | — |
//!
//! Verdict: `not_enough_data` while either version has fewer than [`MIN_SAMPLES`]
//! observations or the test is undefined; `b_better` / `b_worse` when `p < alpha`;
//! `no_difference` when not significant although both versions have at least the sample
//! size needed to detect `min_effect` (Cohen's h or d, or a KS distance) at `alpha` with
//! `power`; else `not_enough_data`. A prediction distribution has no direction: a
//! significant difference is `different`.

use serde::Serialize;

use super::engine::{labels_of, VersionWindow};
use super::significance::{self as sig, Moments, TestResult};
use crate::config::Task;
use crate::latency::ErrorRate;

/// Fewer observations than this in either version: `not_enough_data` whatever the test
/// says (the normal approximations behind the z-test and the asymptotic KS need some).
pub const MIN_SAMPLES: u64 = 30;

/// What a version brings to a comparison.
#[derive(Debug, Clone, Default)]
pub struct VersionData {
    /// Its analysed window.
    pub window: VersionWindow,
    /// Proxied requests and errors in the window.
    pub errors: ErrorRate,
    /// Proxied latency moments in the window.
    pub latency: Option<Moments>,
}

/// Query parameters of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CompareParams {
    /// Significance level (default 0.05).
    pub alpha: f64,
    /// Power the sample sizes are computed for (default 0.8).
    pub power: f64,
    /// Smallest standardized effect worth detecting (Cohen's h or d; KS distance), default
    /// 0.2 ("small").
    pub min_effect: f64,
}

impl Default for CompareParams {
    fn default() -> Self {
        CompareParams {
            alpha: 0.05,
            power: 0.8,
            min_effect: 0.2,
        }
    }
}

impl CompareParams {
    /// `Err` names the parameter out of its range.
    pub fn check(&self) -> Result<(), String> {
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(format!("alpha={} must be in (0, 0.5)", self.alpha));
        }
        if !(self.power >= 0.5 && self.power < 1.0) {
            return Err(format!("power={} must be in [0.5, 1)", self.power));
        }
        if !(self.min_effect > 0.0 && self.min_effect <= 1.0) {
            return Err(format!("min_effect={} must be in (0, 1]", self.min_effect));
        }
        Ok(())
    }
}

/// The decision for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// B is better with significance.
    BBetter,
    /// B is worse with significance.
    BWorse,
    /// Not significant with enough data to detect `min_effect`.
    NoDifference,
    /// Too few observations to decide.
    NotEnoughData,
    /// The distributions differ with significance (no direction).
    Different,
}

/// One metric of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    /// Metric name.
    pub metric: &'static str,
    /// The test used.
    pub test: &'static str,
    /// `higher` or `lower` is better; `none` for distributions.
    pub better: &'static str,
    /// A's value (for distributions: A's prediction rows).
    pub a: Option<f64>,
    /// B's value.
    pub b: Option<f64>,
    /// A's observations.
    pub n_a: u64,
    /// B's observations.
    pub n_b: u64,
    /// `b − a` (KS: the statistic D; chi-square: the largest class-share difference).
    pub difference: Option<f64>,
    /// Interval of the difference at `1 − alpha`.
    pub ci_low: Option<f64>,
    /// Upper end.
    pub ci_high: Option<f64>,
    /// The test statistic.
    pub statistic: Option<f64>,
    /// Degrees of freedom (Welch, chi-square).
    pub df: Option<f64>,
    /// Two-sided p-value.
    pub p_value: Option<f64>,
    /// The observed standardized effect (Cohen's h or d, KS D).
    pub effect_size: Option<f64>,
    /// Observations per version needed to detect `min_effect` at `alpha` with `power`.
    pub sample_size_needed: Option<u64>,
    /// The decision.
    pub verdict: Verdict,
}

/// `GET /api/v1/models/{model}/compare?a=..&b=..`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Model name.
    pub model: String,
    /// Version A (the reference).
    pub a: String,
    /// Version B (the candidate).
    pub b: String,
    /// The parameters used.
    #[serde(flatten)]
    pub params: CompareParams,
    /// One entry per metric the two versions have data for.
    pub metrics: Vec<MetricComparison>,
}

fn verdict(
    r: Option<&TestResult>,
    n_a: u64,
    n_b: u64,
    needed: Option<f64>,
    higher_better: Option<bool>,
    alpha: f64,
) -> Verdict {
    let Some(r) = r else {
        return Verdict::NotEnoughData;
    };
    if n_a < MIN_SAMPLES || n_b < MIN_SAMPLES || !r.p_value.is_finite() {
        return Verdict::NotEnoughData;
    }
    if r.p_value < alpha {
        return match higher_better {
            None => Verdict::Different,
            Some(h) if (r.difference > 0.0) == h => Verdict::BBetter,
            Some(_) => Verdict::BWorse,
        };
    }
    match needed {
        Some(n) if (n_a.min(n_b) as f64) >= n => Verdict::NoDifference,
        _ => Verdict::NotEnoughData,
    }
}

#[allow(clippy::too_many_arguments)]
fn entry(
    metric: &'static str,
    test: &'static str,
    better: Option<bool>,
    values: (Option<f64>, Option<f64>),
    n: (u64, u64),
    r: Option<TestResult>,
    effect: Option<f64>,
    needed: Option<f64>,
    alpha: f64,
) -> MetricComparison {
    MetricComparison {
        metric,
        test,
        better: match better {
            Some(true) => "higher",
            Some(false) => "lower",
            None => "none",
        },
        a: values.0,
        b: values.1,
        n_a: n.0,
        n_b: n.1,
        difference: r.map(|r| r.difference),
        ci_low: r.and_then(|r| r.ci_low),
        ci_high: r.and_then(|r| r.ci_high),
        statistic: r.map(|r| r.statistic),
        df: r.and_then(|r| r.df),
        p_value: r.map(|r| r.p_value),
        effect_size: effect,
        sample_size_needed: needed.map(|n| n.ceil() as u64),
        verdict: verdict(r.as_ref(), n.0, n.1, needed, better, alpha),
    }
}

fn proportion_metric(
    metric: &'static str,
    higher_better: bool,
    (x_a, n_a): (u64, u64),
    (x_b, n_b): (u64, u64),
    p: &CompareParams,
) -> MetricComparison {
    let r = sig::two_proportion(x_a, n_a, x_b, n_b, p.alpha);
    let (pa, pb) = (x_a as f64 / n_a as f64, x_b as f64 / n_b as f64);
    entry(
        metric,
        "two_proportion_z",
        Some(higher_better),
        (Some(pa), Some(pb)),
        (n_a, n_b),
        r,
        Some(sig::cohens_h(pa, pb)),
        sig::sample_size(p.min_effect, p.alpha, p.power),
        p.alpha,
    )
}

fn mean_metric(
    metric: &'static str,
    a: Moments,
    b: Moments,
    p: &CompareParams,
) -> MetricComparison {
    entry(
        metric,
        "welch_t",
        Some(false),
        (Some(a.mean), Some(b.mean)),
        (a.n, b.n),
        sig::welch(a, b, p.alpha),
        sig::cohens_d(a, b),
        sig::sample_size(p.min_effect, p.alpha, p.power),
        p.alpha,
    )
}

/// Compares `b` with `a` on every metric both have data for.
pub fn compare(
    model: &str,
    a_name: &str,
    b_name: &str,
    task: Option<Task>,
    a: &VersionData,
    b: &VersionData,
    p: &CompareParams,
) -> Comparison {
    let mut metrics = Vec::new();
    let (wa, wb) = (&a.window, &b.window);
    let regression = task == Some(Task::Regression);
    if !regression && wa.labelled > 0 && wb.labelled > 0 {
        metrics.push(proportion_metric(
            "accuracy",
            true,
            (wa.correct, wa.labelled),
            (wb.correct, wb.labelled),
            p,
        ));
    }
    if task != Some(Task::Classification) {
        if let (Some(ea), Some(eb)) = (wa.abs_errors, wb.abs_errors) {
            metrics.push(mean_metric("absolute_error", ea, eb, p));
        }
    }
    if a.errors.requests > 0 && b.errors.requests > 0 {
        metrics.push(proportion_metric(
            "error_rate",
            false,
            (a.errors.errors, a.errors.requests),
            (b.errors.errors, b.errors.requests),
            p,
        ));
    }
    if let (Some(la), Some(lb)) = (a.latency, b.latency) {
        metrics.push(mean_metric("latency_mean", la, lb, p));
    }
    if let Some(m) = distribution(wa, wb, task, p) {
        metrics.push(m);
    }
    Comparison {
        model: model.to_string(),
        a: a_name.to_string(),
        b: b_name.to_string(),
        params: *p,
        metrics,
    }
}

/// The prediction distributions: chi-square on the labels of classifiers (text labels, or
/// class indices), KS on numeric predictions otherwise.
fn distribution(
    wa: &VersionWindow,
    wb: &VersionWindow,
    task: Option<Task>,
    p: &CompareParams,
) -> Option<MetricComparison> {
    let labels = !wa.labels.is_empty() || !wb.labels.is_empty();
    if labels || task == Some(Task::Classification) {
        let (la, lb) = (labels_of(wa), labels_of(wb));
        let keys: std::collections::BTreeSet<&String> = la.keys().chain(lb.keys()).collect();
        let ca: Vec<u64> = keys
            .iter()
            .map(|k| la.get(*k).copied().unwrap_or(0))
            .collect();
        let cb: Vec<u64> = keys
            .iter()
            .map(|k| lb.get(*k).copied().unwrap_or(0))
            .collect();
        let (na, nb) = (ca.iter().sum::<u64>(), cb.iter().sum::<u64>());
        if na == 0 || nb == 0 {
            return None;
        }
        let r = sig::chi2_homogeneity(&ca, &cb);
        // Cohen's w of the 2×k table: √(χ²/N). Detecting w = min_effect with `power` needs
        // a noncentrality λ = N·w² ≈ (√χ²_crit + z_power)² (exact for 2 classes, an
        // approximation for more), N split evenly between the versions.
        let w = r.map(|r| (r.statistic / (na + nb) as f64).sqrt());
        let needed = r.and_then(|r| {
            let dof = r.df?;
            if dof < 1.0 {
                return None;
            }
            let crit = crate::stats::chi2_quantile(1.0 - p.alpha, dof)?;
            let z = statrs::distribution::ContinuousCDF::inverse_cdf(
                &statrs::distribution::Normal::new(0.0, 1.0).ok()?,
                p.power,
            );
            Some((crit.sqrt() + z).powi(2) / p.min_effect.powi(2) / 2.0)
        });
        return Some(entry(
            "prediction_distribution",
            "chi2_homogeneity",
            None,
            (Some(na as f64), Some(nb as f64)),
            (na, nb),
            r,
            w,
            needed,
            p.alpha,
        ));
    }
    if wa.numbers.is_empty() || wb.numbers.is_empty() {
        return None;
    }
    let r = sig::ks(&wa.numbers, &wb.numbers);
    Some(entry(
        "prediction_distribution",
        "ks",
        None,
        (Some(wa.rows as f64), Some(wb.rows as f64)),
        (wa.numbers.len() as u64, wb.numbers.len() as u64),
        r,
        r.map(|r| r.statistic),
        sig::ks_sample_size(p.min_effect, p.alpha),
        p.alpha,
    ))
}
