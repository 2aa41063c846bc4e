//! What health reports and how: the checks of one model evaluated from its inputs.

use serde::Serialize;

use crate::config::{Config, Level, Status};
use crate::drift::ModelDriftReport;
use crate::latency::{ErrorRate, LatencySummary};
use crate::performance::PerformanceReport;

/// Overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Every check within its warning level.
    Healthy,
    /// At least one check at or past its warning level.
    Warning,
    /// At least one check at or past its critical level.
    Critical,
}

impl HealthStatus {
    /// 0, 1 or 2 as exported by `mlmon_model_health`.
    pub fn code(self) -> i64 {
        match self {
            HealthStatus::Healthy => 0,
            HealthStatus::Warning => 1,
            HealthStatus::Critical => 2,
        }
    }

    fn from_status(s: Status) -> HealthStatus {
        match s {
            Status::Ok => HealthStatus::Healthy,
            Status::Warning => HealthStatus::Warning,
            Status::Critical => HealthStatus::Critical,
        }
    }
}

/// One evaluated check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// `drift`, `latency`, `sla`, `error_rate`, `anomaly_rate`, `data_quality`, `performance`.
    pub check: &'static str,
    /// `healthy`, `warning` or `critical`; `None` (`unknown`) without data.
    pub status: Option<HealthStatus>,
    /// The measured value.
    pub value: Option<f64>,
    /// Warning level.
    pub warning: f64,
    /// Critical level.
    pub critical: f64,
    /// What was measured, in words.
    pub message: String,
    /// What to check first when the check fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
}

/// Health of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelHealth {
    /// Model name.
    pub model: String,
    /// The worst check.
    pub status: HealthStatus,
    /// The failing checks (warning or critical), worst first.
    pub reasons: Vec<Check>,
    /// Every check, including healthy and unknown ones.
    pub checks: Vec<Check>,
}

/// Everything health is computed from.
#[derive(Debug, Clone, Default)]
pub struct HealthInputs {
    /// Drift report.
    pub drift: Option<ModelDriftReport>,
    /// Latency window.
    pub latency: Option<LatencySummary>,
    /// Error counts over the window.
    pub errors: Option<ErrorRate>,
    /// Anomaly rate.
    pub anomaly_rate: Option<f64>,
    /// Data quality score.
    pub data_quality: Option<f64>,
    /// Performance report.
    pub performance: Option<PerformanceReport>,
    /// Reference value of the primary performance metric.
    pub performance_reference: Option<f64>,
}

const REC_DRIFT: &str = "Open GET /api/v1/models/{model}/drift and compare the drifted features with the baseline: check the upstream data pipeline and feature encoding (units, defaults, new categories) first; if the shift is real, retrain on recent data.";
const REC_LATENCY: &str = "Compare mlmon_upstream_duration_seconds with mlmon_request_duration_seconds to tell model time from proxy/network time; then check the model server's CPU/memory saturation, batch sizes and replica count.";
const REC_SLA: &str = "The window latency quantile is over sla.latency: check the model server's saturation (CPU throttling, queueing, large batches) first, then scale out.";
const REC_ERRORS: &str = "Check the model server's logs for the 5xx answers; 502/504 come from mlmon itself (upstream unreachable or over proxy.upstream_timeout): check the upstream is up and not overloaded.";
const REC_ANOMALY: &str = "Inspect the recent anomalous rows (GET /api/v1/models/{model}/anomalies) and the features that explain them: a new client, a broken transformation or an attack are the usual causes.";
const REC_QUALITY: &str = "Check mlmon_feature_missing_ratio and mlmon_feature_errors_total per feature (GET /api/v1/models/{model}/quality): a schema change or a failing feature source is the usual cause.";
const REC_PERFORMANCE: &str = "Check input drift first (GET /api/v1/models/{model}/drift); verify ground truth is joined (mlmon_feedback_total unmatched/late) and labelled as the model expects; then consider retraining on recent data.";

fn check(
    name: &'static str,
    value: Option<f64>,
    level: Level,
    message: String,
    recommendation: &'static str,
) -> Check {
    let status = value.map(|v| HealthStatus::from_status(level.classify(v)));
    Check {
        check: name,
        status,
        value,
        warning: level.warning,
        critical: level.critical,
        message,
        recommendation: status
            .filter(|s| *s > HealthStatus::Healthy)
            .map(|_| recommendation.to_string()),
    }
}

/// Evaluates every check of `model` against its thresholds.
pub fn evaluate(cfg: &Config, model: &str, inputs: &HealthInputs) -> ModelHealth {
    let t = cfg.thresholds_for(model);
    let mut checks = Vec::new();

    // Drift: the drift score, and at least a warning for a single critical feature.
    let score = inputs.drift.as_ref().and_then(|d| d.drift_score);
    let mut c = check(
        "drift",
        score,
        t.drift_score,
        match &inputs.drift {
            None => "no baseline".to_string(),
            Some(d) => {
                let drifted: Vec<&str> = d
                    .features
                    .iter()
                    .filter(|f| {
                        f.kind == crate::record::Kind::Input
                            && f.status.is_some_and(|s| s >= Status::Warning)
                    })
                    .map(|f| f.feature.as_str())
                    .collect();
                match score {
                    None => "no live rows in the window yet".to_string(),
                    Some(s) => format!(
                        "drift score {s:.3}; drifted features: {}",
                        if drifted.is_empty() {
                            "none".to_string()
                        } else {
                            drifted.join(", ")
                        }
                    ),
                }
            }
        },
        REC_DRIFT,
    );
    if c.status == Some(HealthStatus::Healthy)
        && inputs
            .drift
            .as_ref()
            .is_some_and(|d| d.status == Some(Status::Critical))
    {
        c.status = Some(HealthStatus::Warning);
        c.recommendation = Some(REC_DRIFT.to_string());
        c.message.push_str(" (a feature is critically drifted)");
    }
    checks.push(c);

    let latency_level = t.latency_p95.seconds();
    checks.push(check(
        "latency",
        inputs.latency.map(|l| l.p95),
        latency_level,
        match inputs.latency {
            Some(l) => format!(
                "window p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms over {} requests",
                l.p50 * 1e3,
                l.p95 * 1e3,
                l.p99 * 1e3,
                l.count
            ),
            None => "no requests in the window".to_string(),
        },
        REC_LATENCY,
    ));
    let sla = cfg.sla.latency.as_secs_f64();
    let mut sla_check = check(
        "sla",
        inputs.latency.map(|l| l.sla_quantile),
        Level::higher(sla, sla),
        match inputs.latency {
            Some(l) => format!(
                "window p{} {:.1} ms against sla.latency {:.1} ms",
                cfg.sla.quantile * 100.0,
                l.sla_quantile * 1e3,
                sla * 1e3
            ),
            None => "no requests in the window".to_string(),
        },
        REC_SLA,
    );
    // At the SLA is within it; only over it is a breach.
    if let (Some(l), Some(_)) = (inputs.latency, sla_check.status) {
        let breach = l.sla_quantile > sla;
        sla_check.status = Some(if breach {
            HealthStatus::Critical
        } else {
            HealthStatus::Healthy
        });
        sla_check.recommendation = breach.then(|| REC_SLA.to_string());
    }
    checks.push(sla_check);

    let rate = inputs
        .errors
        .filter(|e| e.requests > 0)
        .map(|e| e.errors as f64 / e.requests as f64);
    checks.push(check(
        "error_rate",
        rate,
        t.error_rate,
        match inputs.errors {
            Some(e) if e.requests > 0 => format!(
                "{} of {} requests failed (5xx or upstream error) in the window",
                e.errors, e.requests
            ),
            _ => "no requests in the window".to_string(),
        },
        REC_ERRORS,
    ));

    checks.push(check(
        "anomaly_rate",
        inputs.anomaly_rate,
        t.anomaly_rate,
        match inputs.anomaly_rate {
            Some(r) => format!("{:.3} % of rows anomalous in the window", r * 100.0),
            None => "no anomaly figures".to_string(),
        },
        REC_ANOMALY,
    ));

    // Lower is worse: `thresholds.data_quality` is a `Level::lower`.
    checks.push(check(
        "data_quality",
        inputs.data_quality,
        t.data_quality,
        match inputs.data_quality {
            Some(s) => format!("data quality score {s:.3}"),
            None => "no data quality figures".to_string(),
        },
        REC_QUALITY,
    ));

    let (current, source) = primary_metric(inputs.performance.as_ref());
    let drop = match (current, inputs.performance_reference) {
        (Some((_, v)), Some(r)) if r.abs() > f64::EPSILON => Some(((r - v) / r.abs()).max(0.0)),
        _ => None,
    };
    checks.push(check(
        "performance",
        drop,
        t.performance_drop,
        match (current, inputs.performance_reference) {
            (Some((metric, v)), Some(r)) => {
                format!("{source} {metric} {v:.4} against the baseline's {r:.4}")
            }
            (Some((metric, v)), None) => {
                format!("{source} {metric} {v:.4}; no baseline reference to compare with")
            }
            _ => "no ground truth or estimate in the window".to_string(),
        },
        REC_PERFORMANCE,
    ));

    for c in checks.iter_mut() {
        if let Some(r) = c.recommendation.as_mut() {
            *r = r.replace("{model}", model);
        }
    }
    let status = checks
        .iter()
        .filter_map(|c| c.status)
        .max()
        .unwrap_or(HealthStatus::Healthy);
    let mut reasons: Vec<Check> = checks
        .iter()
        .filter(|c| c.status.is_some_and(|s| s > HealthStatus::Healthy))
        .cloned()
        .collect();
    reasons.sort_by_key(|c| std::cmp::Reverse(c.status));
    ModelHealth {
        model: model.to_string(),
        status,
        reasons,
        checks,
    }
}

/// The primary metric of a report: ground truth first (accuracy, or R² for regression),
/// else the estimated accuracy. Returns `((metric, value), "measured" | "estimated")`.
pub fn primary_metric(
    r: Option<&PerformanceReport>,
) -> (Option<(&'static str, f64)>, &'static str) {
    let Some(r) = r else { return (None, "") };
    if let Some(c) = &r.classification {
        return (Some(("accuracy", c.accuracy)), "measured");
    }
    if let Some(g) = &r.regression {
        return (g.r2.map(|v| ("r2", v)), "measured");
    }
    if let Some(e) = &r.estimated {
        return (Some(("accuracy", e.estimate.accuracy)), "estimated");
    }
    (None, "")
}
