//! Cost per row of data quality checks and anomaly scoring, as the pipeline task pays it.
//!
//! ```text
//! cargo run --release --example anomaly_cost
//! ```
//!
//! Builds a baseline (the live builder, so it carries a joint sample of 5000 rows) for
//! models of 4 and 20 numeric features plus one categorical feature, then times
//! (a) the scorer alone and (b) the quality and anomaly engines fed exchanges of 1 and of
//! 32 rows, exactly as the pipeline feeds them. Prints nanoseconds per row (median of 5
//! runs). Synthetic data: correlated normal features.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use mlmon::analysis::Exchange;
use mlmon::anomaly::scorer::{Scorer, Settings};
use mlmon::anomaly::{joint_rows, AnomalyEngine};
use mlmon::baseline::{BaselineBuilder, BuildOptions, Snapshot};
use mlmon::config::Config;
use mlmon::metrics::Metrics;
use mlmon::quality::QualityEngine;
use mlmon::record::{FeatureValue, ParsedExchange, Prediction, Row};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn row(rng: &mut StdRng, p: usize) -> Row {
    let common: f64 = rng.sample(StandardNormal);
    let mut values: Vec<(String, FeatureValue)> = (0..p)
        .map(|j| {
            let e: f64 = rng.sample(StandardNormal);
            (
                format!("f{j}"),
                FeatureValue::Number(10.0 * j as f64 + 0.6 * common + 0.8 * e),
            )
        })
        .collect();
    let c = ["red", "green", "blue"][rng.random_range(0..3)];
    values.push(("colour".into(), FeatureValue::Text(c.into())));
    Row { values }
}

fn baseline(p: usize) -> Snapshot {
    let mut rng = StdRng::seed_from_u64(1);
    let mut b = BaselineBuilder::new(BuildOptions::new("m"), 50_000);
    for _ in 0..50_000 {
        b.push_row(&row(&mut rng, p));
        b.push_prediction(&Prediction {
            value: FeatureValue::Number(rng.sample(StandardNormal)),
            probabilities: None,
        });
    }
    b.finish().expect("baseline")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let settings = Settings {
        threshold: 4.0,
        min_confidence: 0.0,
        max_joint_features: 64,
        max_features: 256,
    };
    for p in [4usize, 20] {
        let snap = baseline(p);
        let mut rng = StdRng::seed_from_u64(2);
        let rows: Vec<Row> = (0..20_000).map(|_| row(&mut rng, p)).collect();
        let pred = Prediction {
            value: FeatureValue::Number(0.3),
            probabilities: None,
        };
        let t = Instant::now();
        let scorer = Scorer::fit(&snap, joint_rows(&snap), settings);
        let fit = t.elapsed();
        let mut runs = Vec::new();
        let mut flagged = 0;
        for _ in 0..5 {
            let t = Instant::now();
            for r in &rows {
                if scorer.score(r, Some(&pred), false).is_anomaly() {
                    flagged += 1;
                }
            }
            runs.push(t.elapsed().as_nanos() as f64 / rows.len() as f64);
        }
        println!(
            "{p:>2} numeric + 1 categorical features: fit {:.1} ms ({:?}); scorer alone {:.0} ns/row ({} flagged)",
            fit.as_secs_f64() * 1e3,
            scorer.method(),
            median(runs),
            flagged / 5
        );
        for batch in [1usize, 32] {
            let mut runs = Vec::new();
            for _ in 0..5 {
                let metrics = Metrics::new("bench");
                let cfg = Arc::new(Config::default());
                let q = QualityEngine::new(cfg.clone(), metrics.quality.clone(), None);
                let a = AnomalyEngine::new(cfg, metrics.anomaly.clone(), None);
                q.set_baseline("m", &snap);
                a.set_baseline("m", &snap);
                let exchanges: Vec<ParsedExchange> = rows
                    .chunks(batch)
                    .map(|c| ParsedExchange {
                        rows: c.to_vec(),
                        predictions: vec![pred.clone(); c.len()],
                    })
                    .collect();
                let t = Instant::now();
                for ex in &exchanges {
                    let obs = Exchange {
                        model: "m",
                        version: None,
                        request_id: "r",
                        received_at: SystemTime::now(),
                        now: tokio::time::Instant::now(),
                        parsed: ex,
                        request: None,
                        baseline: None,
                    };
                    q.observe(&obs);
                    a.observe(&obs);
                }
                runs.push(t.elapsed().as_nanos() as f64 / rows.len() as f64);
            }
            println!(
                "    quality + anomaly engines, {batch:>2} rows per exchange: {:.0} ns/row",
                median(runs)
            );
        }
    }
}
