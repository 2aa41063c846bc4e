//! The demo's model server: a logistic credit-risk classifier served over the Open
//! Inference Protocol (KServe v2), as MLServer or Triton would serve it.
//!
//! `POST /v2/models/credit-risk/infer` takes one input per feature (`income`, `age`,
//! `debt_ratio`, `num_accounts` as FP64, `region` as BYTES) and answers `predict` (INT64
//! class) and `predict_proba` (FP64 `[N, 2]`). `POST
//! /v2/models/credit-risk/versions/{1,2}/infer` addresses a version: 1 is that model, 2 a
//! retrained candidate that weighs debt more and income less (`mlmon demo --shadow` sends it
//! a copy of the traffic).

use std::net::SocketAddr;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;

/// The demo model's name.
pub const MODEL: &str = "credit-risk";

/// Numeric features, in the order the model reads them.
pub const NUMERIC_FEATURES: [&str; 4] = ["income", "age", "debt_ratio", "num_accounts"];

/// The categorical feature.
pub const CATEGORICAL_FEATURE: &str = "region";

/// The coefficients of one version of the demo model (a logistic score over standardised
/// income and debt ratio, age, number of accounts and a per-region effect).
struct Coefficients {
    intercept: f64,
    income: f64,
    debt_ratio: f64,
}

/// Version 1, the model in production.
const V1: Coefficients = Coefficients {
    intercept: -1.2,
    income: -0.9,
    debt_ratio: 1.1,
};

/// Version 2, the candidate: debt weighs more, income less, so it disagrees with version 1
/// on about 8 % of applicants, near the decision boundary.
const V2: Coefficients = Coefficients {
    intercept: -1.0,
    income: -0.6,
    debt_ratio: 1.5,
};

fn score(
    c: &Coefficients,
    income: f64,
    age: f64,
    debt_ratio: f64,
    num_accounts: f64,
    region: &str,
) -> f64 {
    let region_effect = match region {
        "south" => 0.3,
        "east" => -0.2,
        "west" => 0.1,
        _ => 0.0,
    };
    let z = c.intercept
        + c.income * (income - 55_000.0) / 20_000.0
        + c.debt_ratio * (debt_ratio - 0.35) / 0.15
        - 0.02 * (age - 40.0)
        + 0.15 * (num_accounts - 4.0)
        + region_effect;
    1.0 / (1.0 + (-z).exp())
}

/// Probability of class 1 (default) for one applicant.
pub fn predict_proba(
    income: f64,
    age: f64,
    debt_ratio: f64,
    num_accounts: f64,
    region: &str,
) -> f64 {
    score(&V1, income, age, debt_ratio, num_accounts, region)
}

/// Probability of class 1 from version 2, the candidate ([`V2`]).
pub fn predict_proba_v2(
    income: f64,
    age: f64,
    debt_ratio: f64,
    num_accounts: f64,
    region: &str,
) -> f64 {
    score(&V2, income, age, debt_ratio, num_accounts, region)
}

fn column<'a>(inputs: &'a [Value], name: &str) -> Option<&'a Vec<Value>> {
    inputs
        .iter()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|i| i.get("data"))
        .and_then(Value::as_array)
}

fn bad(msg: String) -> (StatusCode, Json<Value>) {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg })))
}

async fn infer(
    Path(model): Path<String>,
    body: Json<Value>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    answer(&model, "1", body.0)
}

async fn infer_version(
    Path((model, version)): Path<(String, String)>,
    body: Json<Value>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    answer(&model, &version, body.0)
}

fn answer(
    model: &str,
    version: &str,
    body: Value,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let predict = match version {
        "1" => predict_proba,
        "2" => predict_proba_v2,
        _ => {
            return Err((
                StatusCode::NOT_FOUND,
                Json(json!({ "error": format!("model {model} version {version} not found") })),
            ))
        }
    };
    if model != MODEL {
        return Err((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("model {model} not found") })),
        ));
    }
    let inputs = body
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("missing inputs".into()))?;
    let mut cols = Vec::new();
    for name in NUMERIC_FEATURES {
        cols.push(column(inputs, name).ok_or_else(|| bad(format!("missing input {name}")))?);
    }
    let region = column(inputs, CATEGORICAL_FEATURE)
        .ok_or_else(|| bad(format!("missing input {CATEGORICAL_FEATURE}")))?;
    let n = region.len();
    if cols.iter().any(|c| c.len() != n) {
        return Err(bad("inputs have different lengths".into()));
    }
    let mut classes = Vec::with_capacity(n);
    let mut proba = Vec::with_capacity(2 * n);
    for i in 0..n {
        // The model imputes missing numbers with training means, as a real pipeline would.
        let v = |c: usize, default: f64| cols[c][i].as_f64().unwrap_or(default);
        let p = predict(
            v(0, 55_000.0),
            v(1, 40.0),
            v(2, 0.35),
            v(3, 4.0),
            region[i].as_str().unwrap_or(""),
        );
        classes.push(i64::from(p >= 0.5));
        proba.push(1.0 - p);
        proba.push(p);
    }
    Ok(Json(json!({
        "model_name": MODEL,
        "model_version": version,
        "id": body.get("id").cloned().unwrap_or(Value::Null),
        "outputs": [
            { "name": "predict", "shape": [n], "datatype": "INT64", "data": classes },
            { "name": "predict_proba", "shape": [n, 2], "datatype": "FP64", "data": proba },
        ],
    })))
}

/// The model server's router.
pub fn router() -> Router {
    Router::new()
        .route(
            "/v2/health/live",
            get(|| async { Json(json!({ "live": true })) }),
        )
        .route(
            "/v2/health/ready",
            get(|| async { Json(json!({ "ready": true })) }),
        )
        .route(
            "/v2/models/{model}",
            get(|Path(m): Path<String>| async move {
                Json(json!({ "name": m, "platform": "mlmon-demo", "versions": ["1", "2"] }))
            }),
        )
        .route("/v2/models/{model}/infer", post(infer))
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(infer_version),
        )
}

/// Serves the model on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, mut shutdown: Shutdown) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::debug!(?addr, "demo model server listening");
    let _ = axum::serve(listener, router())
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn riskier_applicants_score_higher() {
        let safe = predict_proba(90_000.0, 50.0, 0.1, 3.0, "north");
        let risky = predict_proba(20_000.0, 25.0, 0.8, 9.0, "south");
        assert!(safe < 0.1, "{safe}");
        assert!(risky > 0.9, "{risky}");
    }

    #[test]
    fn the_candidate_disagrees_on_a_few_applicants_only() {
        let mut gen = crate::demo::traffic::Generator::new(11);
        let n = 5000;
        let differ = (0..n)
            .filter(|_| {
                let a = gen.applicant(false);
                let p1 = predict_proba(a.income, a.age, a.debt_ratio, a.num_accounts, a.region);
                let p2 = predict_proba_v2(a.income, a.age, a.debt_ratio, a.num_accounts, a.region);
                (p1 >= 0.5) != (p2 >= 0.5)
            })
            .count();
        let share = differ as f64 / n as f64;
        // About 8 %: agreement near 0.92, between the alert levels of 95 % and 90 %.
        assert!((0.06..0.10).contains(&share), "{share}");
    }
}
