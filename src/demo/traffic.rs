//! The demo's synthetic client: credit applications from a fixed distribution that shifts
//! after `drift_after` (lower incomes, higher debt, more applicants from the south).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal};
use serde_json::{json, Value};

use super::model::MODEL;

/// One synthetic applicant.
#[derive(Debug, Clone, PartialEq)]
pub struct Applicant {
    /// Yearly income.
    pub income: f64,
    /// Age in years.
    pub age: f64,
    /// Debt-to-income ratio.
    pub debt_ratio: f64,
    /// Open credit accounts.
    pub num_accounts: f64,
    /// Region.
    pub region: &'static str,
}

/// Draws applicants; `drifted` selects the shifted distribution.
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
}

impl Generator {
    /// A seeded generator.
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// One applicant.
    pub fn applicant(&mut self, drifted: bool) -> Applicant {
        let (income_mu, debt_mean, south) = if drifted {
            (10.55_f64, 0.5_f64, 0.55_f64)
        } else {
            (10.9_f64, 0.35, 0.25)
        };
        let income = LogNormal::new(income_mu, 0.35)
            .map(|d| d.sample(&mut self.rng))
            .unwrap_or(55_000.0);
        let age = Normal::new(40.0_f64, 11.0)
            .map(|d| d.sample(&mut self.rng))
            .unwrap_or(40.0)
            .clamp(18.0, 90.0)
            .round();
        let debt_ratio = Normal::new(debt_mean, 0.15)
            .map(|d| d.sample(&mut self.rng))
            .unwrap_or(debt_mean)
            .clamp(0.0, 2.0);
        let num_accounts = (self.rng.random::<f64>() * 8.0).floor() + 1.0;
        let u: f64 = self.rng.random();
        let rest = (1.0 - south) / 3.0;
        let region = if u < south {
            "south"
        } else if u < south + rest {
            "north"
        } else if u < south + 2.0 * rest {
            "east"
        } else {
            "west"
        };
        Applicant {
            income: income.round(),
            age,
            debt_ratio,
            num_accounts,
            region,
        }
    }

    /// An Open Inference Protocol request for a batch of applicants.
    pub fn batch(&mut self, size: usize, drifted: bool) -> Value {
        let rows: Vec<Applicant> = (0..size).map(|_| self.applicant(drifted)).collect();
        let col = |f: fn(&Applicant) -> f64| -> Vec<f64> { rows.iter().map(f).collect() };
        json!({
            "inputs": [
                { "name": "income", "shape": [size], "datatype": "FP64", "data": col(|a| a.income) },
                { "name": "age", "shape": [size], "datatype": "FP64", "data": col(|a| a.age) },
                { "name": "debt_ratio", "shape": [size], "datatype": "FP64", "data": col(|a| a.debt_ratio) },
                { "name": "num_accounts", "shape": [size], "datatype": "FP64", "data": col(|a| a.num_accounts) },
                { "name": "region", "shape": [size], "datatype": "BYTES", "data": rows.iter().map(|a| a.region).collect::<Vec<_>>() },
            ]
        })
    }
}

impl Generator {
    /// Spoils a few values of a batch so data quality and anomaly detection have something
    /// to show: per row, 0.3 % out-of-distribution (income ×8 with a debt ratio of 1.6, an
    /// impossible pair for the training data: with the detector's own false positives the
    /// anomaly rate sits near the 0.5 % warning level) and 1 % missing debt ratios (`null`).
    pub fn spoil(&mut self, batch: &mut Value) {
        let Some(inputs) = batch.get_mut("inputs").and_then(Value::as_array_mut) else {
            return;
        };
        let n = inputs
            .first()
            .and_then(|i| i.get("data"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for row in 0..n {
            let u: f64 = self.rng.random();
            let mut set = |name: &str, f: &dyn Fn(&Value) -> Value| {
                let cell = inputs
                    .iter_mut()
                    .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
                    .and_then(|i| i.get_mut("data"))
                    .and_then(Value::as_array_mut)
                    .and_then(|d| d.get_mut(row));
                if let Some(c) = cell {
                    *c = f(c);
                }
            };
            if u < 0.003 {
                set("income", &|v| json!(v.as_f64().unwrap_or(55_000.0) * 8.0));
                set("debt_ratio", &|_| json!(1.6));
            } else if u < 0.013 {
                set("debt_ratio", &|_| Value::Null);
            }
        }
    }
}

impl Generator {
    /// The true outcome (1 = default) of every row of an OIP batch. Before the drift point
    /// outcomes follow the model's own probabilities (it is calibrated); after it the world
    /// changes too (concept drift: the same applicant defaults more often, log-odds +1.5),
    /// so the model's accuracy drops once ground truth arrives.
    pub fn outcomes(&mut self, batch: &Value, drifted: bool) -> Vec<i64> {
        let column = |name: &str| -> Vec<Value> {
            batch
                .get("inputs")
                .and_then(Value::as_array)
                .and_then(|inputs| {
                    inputs
                        .iter()
                        .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
                })
                .and_then(|i| i.get("data"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (income, age, debt, accounts, region) = (
            column("income"),
            column("age"),
            column("debt_ratio"),
            column("num_accounts"),
            column("region"),
        );
        let num = |c: &[Value], i: usize, d: f64| c.get(i).and_then(Value::as_f64).unwrap_or(d);
        (0..region.len())
            .map(|i| {
                let p = super::model::predict_proba(
                    num(&income, i, 55_000.0),
                    num(&age, i, 40.0),
                    num(&debt, i, 0.35),
                    num(&accounts, i, 4.0),
                    region.get(i).and_then(Value::as_str).unwrap_or(""),
                )
                .clamp(1e-9, 1.0 - 1e-9);
                let p_true = if drifted {
                    1.0 / (1.0 + (-((p / (1.0 - p)).ln() + 1.5)).exp())
                } else {
                    p
                };
                i64::from(self.rng.random::<f64>() < p_true)
            })
            .collect()
    }
}

/// Sends traffic to `proxy` at `rps` until `stop` resolves; drift starts after `drift_after`.
/// With `admin`, ground truth for half of the requests is posted to the feedback API with
/// the `x-request-id` the proxy returned, as a labelling pipeline would (with `admin_token`
/// as a bearer token when the admin API requires one).
pub async fn run(
    proxy: String,
    admin: Option<String>,
    admin_token: Option<String>,
    rps: f64,
    drift_after: Duration,
    mut stop: crate::shutdown::Shutdown,
) {
    let client = reqwest::Client::new();
    let url = format!("{proxy}/v2/models/{MODEL}/infer");
    let mut gen = Generator::new(42);
    let start = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / rps.max(0.1));
    let mut tick = tokio::time::interval(period);
    let mut announced = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait() => return,
        }
        let drifted = start.elapsed() >= drift_after;
        if drifted && !announced {
            announced = true;
            tracing::info!("demo traffic now drifts: lower incomes, higher debt ratios, more applicants from the south");
        }
        let size = 1 + (gen.rng.random::<u32>() % 4) as usize;
        let mut body = gen.batch(size, drifted);
        gen.spoil(&mut body);
        let truth = gen.outcomes(&body, drifted);
        let feedback_url = admin
            .as_ref()
            .filter(|_| gen.rng.random::<f64>() < 0.5)
            .map(|a| format!("{a}/api/v1/feedback/{MODEL}"));
        let client = client.clone();
        let url = url.clone();
        let admin_token = admin_token.clone();
        tokio::spawn(async move {
            let resp = match client.post(&url).json(&body).send().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "demo request failed");
                    return;
                }
            };
            let id = resp
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let _ = resp.bytes().await;
            if let (Some(feedback_url), Some(id)) = (feedback_url, id) {
                let labels: Vec<Value> = truth
                    .iter()
                    .enumerate()
                    .map(|(row, actual)| json!({ "request_id": id, "row": row, "actual": actual }))
                    .collect();
                let mut post = client.post(&feedback_url).json(&labels);
                if let Some(t) = &admin_token {
                    post = post.bearer_auth(t);
                }
                if let Err(e) = post.send().await {
                    tracing::debug!(error = %e, "demo feedback failed");
                }
            }
        });
    }
}
