//! Health rules at their boundaries with the SPEC section 5 defaults: each check's value at
//! a level counts as that level (in the direction the figure gets worse), a check without
//! data is unknown and changes nothing. More cases: `tests/offline/health.rs`.

use std::sync::Arc;

use super::{evaluate, ErrorRate, HealthEngine, HealthInputs, HealthStatus, ModelHealth};
use crate::config::Config;
use crate::drift::{ModelDriftReport, Status};
use crate::latency::LatencySummary;
use crate::metrics::Metrics;

use HealthStatus::{Critical, Healthy, Warning};

fn status(h: &ModelHealth, check: &str) -> Option<HealthStatus> {
    h.checks
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| panic!("no check {check}"))
        .status
}

fn latency(p95: f64, sla_quantile: f64) -> LatencySummary {
    LatencySummary {
        count: 10,
        sum: 0.1,
        p50: 0.001,
        p95,
        p99: p95,
        sla_quantile,
    }
}

fn drift(score: f64, worst: Status) -> ModelDriftReport {
    ModelDriftReport {
        model: "m".into(),
        baseline_id: "b".into(),
        window_seconds: 900.0,
        drift_score: Some(score),
        status: Some(worst),
        features: Vec::new(),
    }
}

/// Evaluates `inputs` and returns the status of `check` and the overall status.
fn judge(cfg: &Config, inputs: HealthInputs, check: &str) -> (Option<HealthStatus>, HealthStatus) {
    let h = evaluate(cfg, "m", &inputs);
    (status(&h, check), h.status)
}

#[test]
fn each_check_maps_its_value_onto_its_levels() {
    let cfg = Config::default();
    let errors = |errors| HealthInputs {
        errors: Some(ErrorRate {
            requests: 1000,
            errors,
        }),
        ..Default::default()
    };
    let anomaly = |r| HealthInputs {
        anomaly_rate: Some(r),
        ..Default::default()
    };
    let quality = |s| HealthInputs {
        data_quality: Some(s),
        ..Default::default()
    };
    let lat = |p95, q| HealthInputs {
        latency: Some(latency(p95, q)),
        ..Default::default()
    };
    let dr = |score, worst| HealthInputs {
        drift: Some(drift(score, worst)),
        ..Default::default()
    };
    let cases: Vec<(&str, HealthInputs, HealthStatus)> = vec![
        // error_rate 0.001 / 0.01, higher is worse; at a level counts.
        ("error_rate", errors(0), Healthy),
        ("error_rate", errors(1), Warning),
        ("error_rate", errors(9), Warning),
        ("error_rate", errors(10), Critical),
        // anomaly_rate 0.005 / 0.01.
        ("anomaly_rate", anomaly(0.0049), Healthy),
        ("anomaly_rate", anomaly(0.005), Warning),
        ("anomaly_rate", anomaly(0.01), Critical),
        // data_quality 0.9 / 0.75, lower is worse.
        ("data_quality", quality(1.0), Healthy),
        ("data_quality", quality(0.91), Healthy),
        ("data_quality", quality(0.9), Warning),
        ("data_quality", quality(0.76), Warning),
        ("data_quality", quality(0.75), Critical),
        ("data_quality", quality(0.0), Critical),
        // latency_p95 50 ms / 100 ms.
        ("latency", lat(0.049, 0.0), Healthy),
        ("latency", lat(0.05, 0.0), Warning),
        ("latency", lat(0.1, 0.0), Critical),
        // sla.latency 100 ms at sla.quantile: at the SLA is within it, over it is critical.
        ("sla", lat(0.0, 0.1), Healthy),
        ("sla", lat(0.0, 0.1001), Critical),
        // drift_score 0.2 / 0.5; a critical feature makes at least a warning.
        ("drift", dr(0.1, Status::Ok), Healthy),
        ("drift", dr(0.2, Status::Warning), Warning),
        ("drift", dr(0.5, Status::Critical), Critical),
        ("drift", dr(0.0, Status::Critical), Warning),
    ];
    for (check, inputs, expected) in cases {
        let what = format!("{check} {inputs:?}");
        let (got, overall) = judge(&cfg, inputs, check);
        assert_eq!(got, Some(expected), "{what}");
        // Every other check is unknown: the overall status is this one's.
        assert_eq!(overall, expected, "{what}");
    }
}

#[test]
fn unknown_checks_do_not_change_the_status() {
    let cfg = Config::default();
    let h = evaluate(&cfg, "m", &HealthInputs::default());
    assert_eq!(h.status, Healthy);
    assert!(h.reasons.is_empty());
    assert!(h.checks.iter().all(|c| c.status.is_none()));
    // No requests at all is unknown, not a zero error rate.
    let none = HealthInputs {
        errors: Some(ErrorRate::default()),
        anomaly_rate: Some(0.02),
        ..Default::default()
    };
    let h = evaluate(&cfg, "m", &none);
    assert_eq!(status(&h, "error_rate"), None);
    assert_eq!(h.status, Critical);
    let reasons: Vec<&str> = h.reasons.iter().map(|c| c.check).collect();
    assert_eq!(reasons, ["anomaly_rate"]);
    assert!(h.reasons[0]
        .recommendation
        .as_deref()
        .is_some_and(|r| r.contains("/api/v1/models/m/anomalies")));
}

#[test]
fn reasons_are_worst_first() {
    let cfg = Config::default();
    let h = evaluate(
        &cfg,
        "m",
        &HealthInputs {
            anomaly_rate: Some(0.006),
            data_quality: Some(0.5),
            latency: Some(latency(0.01, 0.01)),
            ..Default::default()
        },
    );
    assert_eq!(h.status, Critical);
    let reasons: Vec<(&str, Option<HealthStatus>)> =
        h.reasons.iter().map(|c| (c.check, c.status)).collect();
    assert_eq!(
        reasons,
        [
            ("data_quality", Some(Critical)),
            ("anomaly_rate", Some(Warning))
        ]
    );
    assert_eq!(status(&h, "latency"), Some(Healthy));
}

#[test]
fn a_model_override_of_data_quality_stays_lower_is_worse() {
    let cfg: Config = serde_json::from_value(serde_json::json!({
        "models": {"m": {"thresholds": {"data_quality": {"warning": 0.6, "critical": 0.4}}}}
    }))
    .expect("config");
    let q = |s| HealthInputs {
        data_quality: Some(s),
        ..Default::default()
    };
    assert_eq!(judge(&cfg, q(0.8), "data_quality").0, Some(Healthy));
    assert_eq!(judge(&cfg, q(0.6), "data_quality").0, Some(Warning));
    assert_eq!(judge(&cfg, q(0.4), "data_quality").0, Some(Critical));
    // Other models keep the defaults (0.9 / 0.75).
    let h = evaluate(&cfg, "other", &q(0.8));
    assert_eq!(status(&h, "data_quality"), Some(Warning));
}

#[test]
fn the_gauge_exports_the_overall_status() {
    let metrics = Metrics::new("test");
    let engine = HealthEngine::new(Arc::new(Config::default()), metrics.health.clone());
    let h = engine.evaluate(
        "m",
        &HealthInputs {
            anomaly_rate: Some(0.006),
            ..Default::default()
        },
    );
    engine.export(&h);
    let text = metrics.encode(None).0;
    assert!(text.contains("mlmon_model_health{model=\"m\"} 1"), "{text}");
}
