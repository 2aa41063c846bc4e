//! Model health: the rules on given inputs (SPEC section 5 default thresholds, per-model
//! overrides, performance against the baseline reference). End to end: `tests/e2e/health.rs`.

use mlmon::config::{Config, Level, ModelOverrides, Thresholds};
use mlmon::drift::{ModelDriftReport, Status};
use mlmon::health::{evaluate, ErrorRate, HealthInputs, HealthStatus};
use mlmon::latency::LatencySummary;
use mlmon::performance::cbpe::Estimate;
use mlmon::performance::scores::{Averaging, ClassificationScores};
use mlmon::performance::{EstimatedPerformance, FeedbackState, PerformanceReport};

fn latency(p95_ms: f64, sla_q_ms: f64) -> LatencySummary {
    LatencySummary {
        count: 100,
        sum: 0.5,
        p50: 0.005,
        p95: p95_ms / 1e3,
        p99: p95_ms / 1e3,
        sla_quantile: sla_q_ms / 1e3,
    }
}

fn check<'a>(h: &'a mlmon::health::ModelHealth, name: &str) -> &'a mlmon::health::Check {
    h.checks.iter().find(|c| c.check == name).unwrap()
}

#[test]
fn no_data_is_healthy_with_unknown_checks() {
    let h = evaluate(&Config::default(), "m", &HealthInputs::default());
    assert_eq!(h.status, HealthStatus::Healthy);
    assert!(h.reasons.is_empty());
    assert_eq!(h.checks.len(), 7);
    assert!(
        h.checks.iter().all(|c| c.status.is_none()),
        "{:?}",
        h.checks
    );
}

#[test]
fn default_thresholds_of_the_spec() {
    let cfg = Config::default();
    let cases: Vec<(HealthInputs, &str, HealthStatus)> = vec![
        // Error rate 0.1 % / 1 %.
        (
            HealthInputs {
                errors: Some(ErrorRate {
                    requests: 1000,
                    errors: 1,
                }),
                ..Default::default()
            },
            "error_rate",
            HealthStatus::Warning,
        ),
        (
            HealthInputs {
                errors: Some(ErrorRate {
                    requests: 1000,
                    errors: 10,
                }),
                ..Default::default()
            },
            "error_rate",
            HealthStatus::Critical,
        ),
        (
            HealthInputs {
                errors: Some(ErrorRate {
                    requests: 1000,
                    errors: 0,
                }),
                ..Default::default()
            },
            "error_rate",
            HealthStatus::Healthy,
        ),
        // Latency p95 50 ms / 100 ms.
        (
            HealthInputs {
                latency: Some(latency(60.0, 60.0)),
                ..Default::default()
            },
            "latency",
            HealthStatus::Warning,
        ),
        // SLA: p95 over sla.latency (100 ms) is critical.
        (
            HealthInputs {
                latency: Some(latency(40.0, 100.5)),
                ..Default::default()
            },
            "sla",
            HealthStatus::Critical,
        ),
        // Anomaly rate 0.5 % / 1 %.
        (
            HealthInputs {
                anomaly_rate: Some(0.006),
                ..Default::default()
            },
            "anomaly_rate",
            HealthStatus::Warning,
        ),
        // Data quality: lower is worse (0.9 / 0.75).
        (
            HealthInputs {
                data_quality: Some(0.7),
                ..Default::default()
            },
            "data_quality",
            HealthStatus::Critical,
        ),
        (
            HealthInputs {
                data_quality: Some(0.95),
                ..Default::default()
            },
            "data_quality",
            HealthStatus::Healthy,
        ),
        // Drift score 0.2 / 0.5; one critical feature alone makes a warning.
        (
            HealthInputs {
                drift: Some(drift(0.6, Status::Critical)),
                ..Default::default()
            },
            "drift",
            HealthStatus::Critical,
        ),
        (
            HealthInputs {
                drift: Some(drift(0.1, Status::Critical)),
                ..Default::default()
            },
            "drift",
            HealthStatus::Warning,
        ),
        (
            HealthInputs {
                drift: Some(drift(0.1, Status::Warning)),
                ..Default::default()
            },
            "drift",
            HealthStatus::Healthy,
        ),
    ];
    for (inputs, name, want) in cases {
        let h = evaluate(&cfg, "m", &inputs);
        let c = check(&h, name);
        assert_eq!(c.status, Some(want), "{name}: {c:?}");
        assert_eq!(h.status, want, "{name}: overall");
        if want > HealthStatus::Healthy {
            assert_eq!(h.reasons[0].check, name);
            assert!(
                h.reasons[0].recommendation.is_some(),
                "{name}: no recommendation"
            );
        } else {
            assert!(h.reasons.is_empty());
        }
    }
}

fn drift(score: f64, status: Status) -> ModelDriftReport {
    ModelDriftReport {
        model: "m".into(),
        baseline_id: "b".into(),
        window_seconds: 900.0,
        drift_score: Some(score),
        status: Some(status),
        features: Vec::new(),
    }
}

#[test]
fn per_model_overrides_and_worst_first() {
    let mut cfg = Config::default();
    cfg.models.insert(
        "lenient".into(),
        ModelOverrides {
            thresholds: Some(Thresholds {
                error_rate: Level::higher(0.05, 0.1),
                ..Thresholds::default()
            }),
        },
    );
    let inputs = HealthInputs {
        errors: Some(ErrorRate {
            requests: 100,
            errors: 2,
        }),
        latency: Some(latency(70.0, 70.0)),
        ..Default::default()
    };
    let strict = evaluate(&cfg, "strict", &inputs);
    assert_eq!(strict.status, HealthStatus::Critical);
    assert_eq!(strict.reasons.len(), 2);
    assert_eq!(strict.reasons[0].check, "error_rate", "worst first");
    assert_eq!(strict.reasons[1].check, "latency");
    let lenient = evaluate(&cfg, "lenient", &inputs);
    assert_eq!(
        check(&lenient, "error_rate").status,
        Some(HealthStatus::Healthy)
    );
    assert_eq!(lenient.status, HealthStatus::Warning, "latency still warns");
}

fn performance(accuracy: Option<f64>, estimated: Option<f64>) -> PerformanceReport {
    PerformanceReport {
        model: "m".into(),
        task: Some(mlmon::config::Task::Classification),
        task_source: None,
        window_seconds: 900.0,
        positive_class: "1".into(),
        classification: accuracy.map(|a| ClassificationScores {
            count: 100,
            accuracy: a,
            precision: a,
            recall: a,
            f1: a,
            specificity: a,
            roc_auc: None,
            confusion_matrix: Default::default(),
            averaging: Averaging::Binary,
            classes: vec!["0".into(), "1".into()],
        }),
        regression: None,
        estimated: estimated.map(|a| EstimatedPerformance {
            estimate: Estimate {
                rows: 100,
                accuracy: a,
                precision: None,
                recall: None,
                f1: None,
                specificity: None,
                roc_auc: None,
                sampling_error: Default::default(),
            },
            calibration: "assumed",
            positive_class: None,
            classes: Vec::new(),
            threshold: None,
            threshold_source: None,
        }),
        feedback: FeedbackState {
            pending_predictions: 0,
            early_feedback: 0,
            matched_in_window: 100,
            unusable_in_window: 0,
            ttl_seconds: 3600.0,
        },
    }
}

#[test]
fn performance_drop_against_the_baseline_reference() {
    let cfg = Config::default();
    // (live accuracy, estimated accuracy, reference) → status; drop levels 5 % / 10 %.
    let cases = [
        (Some(0.88), None, Some(0.9), Some(HealthStatus::Healthy)),
        (Some(0.84), None, Some(0.9), Some(HealthStatus::Warning)),
        (
            Some(0.7),
            Some(0.95),
            Some(0.9),
            Some(HealthStatus::Critical),
        ),
        (None, Some(0.8), Some(0.9), Some(HealthStatus::Critical)),
        (Some(0.7), None, None, None),
        (None, None, Some(0.9), None),
    ];
    for (live, est, reference, want) in cases {
        let inputs = HealthInputs {
            performance: Some(performance(live, est)),
            performance_reference: reference,
            ..Default::default()
        };
        let h = evaluate(&cfg, "m", &inputs);
        let c = check(&h, "performance");
        assert_eq!(c.status, want, "{live:?} {est:?} {reference:?}: {c:?}");
        if live.is_none() && est.is_some() && reference.is_some() {
            assert!(c.message.starts_with("estimated"), "{}", c.message);
        }
        if want == Some(HealthStatus::Critical) {
            assert!(
                c.recommendation
                    .clone()
                    .unwrap()
                    .contains("GET /api/v1/models/m/drift"),
                "{c:?}"
            );
        }
    }
}
