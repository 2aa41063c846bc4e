//! `GET /api/v1/models/{model}/history`: what the status page (`GET /`, docs/status-page.md)
//! needs beyond the area reports: the bounded history of the model-level series and the
//! worst features' PSI, the baseline in use, the thresholds in force, and which area
//! reports exist now (so the page asks only for those).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiError;
use crate::app::AppState;
use crate::config::Level;

/// Query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only points after this Unix time (seconds): a page that already holds the older ones
    /// asks for the new ones only.
    pub since: Option<f64>,
}

fn level(l: &Level) -> Value {
    json!({ "warning": l.warning, "critical": l.critical })
}

/// The model's history, baseline, thresholds and available reports.
pub async fn history(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    super::on_reports_thread(&state, move |s| history_of(s, model, q.since))
        .await?
        .map(Json)
}

fn history_of(state: &AppState, model: String, since: Option<f64>) -> Result<Value, ApiError> {
    let known = state.model_names().contains(&model);
    let report = state.history.report(&model, since);
    if !known && report.is_none() {
        return Err(ApiError::NotFound(format!(
            "model {model:?} has not been seen"
        )));
    }
    let cfg = &state.config;
    let t = cfg.thresholds_for(&model);
    let baseline = state.baselines.snapshot(&model).map(|s| {
        json!({
            "id": s.id,
            "rows": s.row_count,
            "created_at": s.created_at,
            "source": s.source,
            "model_version": s.model.version,
            "features": s.features.len(),
        })
    });
    let has_baseline = baseline.is_some();
    let mut body = match report {
        Some(r) => serde_json::to_value(r).unwrap_or_else(|_| json!({})),
        None => json!({
            "model": model,
            "interval_seconds": state.history.spacing().as_secs_f64(),
            "capacity": state.history.capacity(),
            "t": [],
        }),
    };
    if let Value::Object(o) = &mut body {
        o.insert("baseline".into(), baseline.unwrap_or(Value::Null));
        o.insert(
            "baseline_capture_pending".into(),
            json!(state.baselines.capture_pending(&model)),
        );
        o.insert(
            "thresholds".into(),
            json!({
                "psi": level(&t.psi),
                "js_divergence": t.js.as_ref().map(level),
                "ks_statistic": t.ks_statistic.as_ref().map(level),
                "drift_score": level(&t.drift_score),
                "latency_p95_seconds": level(&t.latency_p95.seconds()),
                "error_rate": level(&t.error_rate),
                "anomaly_rate": level(&t.anomaly_rate),
                "data_quality": level(&t.data_quality),
                "performance_drop": level(&t.performance_drop),
                "sla_latency_seconds": cfg.sla.latency.as_secs_f64(),
                "sla_quantile": cfg.sla.quantile,
                "drift_adaptive": cfg.drift.adaptive,
            }),
        );
        o.insert(
            "window_seconds".into(),
            json!(cfg.drift.window.as_secs_f64()),
        );
        o.insert(
            "explain".into(),
            json!({
                "enabled": !cfg.explain.interval.is_zero(),
                "interval_seconds": cfg.explain.interval.as_secs_f64(),
            }),
        );
        o.insert(
            "privacy".into(),
            json!({ "log_values": cfg.privacy.log_values }),
        );
        o.insert(
            "available".into(),
            json!({
                "drift": has_baseline,
                "anomalies": has_baseline,
                "quality": state.quality.models().contains(&model),
                "importance": state.explain.importance(&model, None).is_some(),
            }),
        );
    }
    Ok(body)
}
