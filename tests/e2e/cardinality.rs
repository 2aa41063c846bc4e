//! Issue 13, cardinality: a model with 100 numeric input features and a baseline, under
//! traffic through the proxy, exports at most 1 500 series and a `/metrics` page of at most
//! 120 KB by default; the per-bin series (two per bin and feature) come only with
//! `drift.fleet_bins` (`counts`: the bin counters, `full`: the baseline ratios too).

use std::collections::BTreeMap;
use std::time::Duration;

use mlmon::baseline::{BaselineBuilder, BuildOptions};
use mlmon::config::FleetBins;
use mlmon::record::{FeatureValue, Row};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{analysed, config, eventually, records_model, upstream};

const FEATURES: usize = 100;

/// As in the drift benchmark (`bench/drift`).
fn name(i: usize) -> String {
    format!("num_{i:03}")
}

fn values(rng: &mut StdRng) -> Vec<f64> {
    (0..FEATURES)
        .map(|i| i as f64 + rng.random::<f64>() * 10.0 - 5.0)
        .collect()
}

/// A baseline of 2 000 rows of the 100 features.
fn baseline(dir: &std::path::Path) -> std::path::PathBuf {
    let mut b = BaselineBuilder::new(BuildOptions::new("wide"), 2000);
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..2000 {
        let values = values(&mut rng)
            .iter()
            .enumerate()
            .map(|(i, x)| (name(i), FeatureValue::Number(*x)))
            .collect();
        b.push_row(&Row { values });
    }
    let path = dir.join("wide.json");
    std::fs::write(&path, serde_json::to_vec(&b.finish().unwrap()).unwrap()).unwrap();
    path
}

/// Series per metric family (sample name) of an exposition.
fn families(text: &str) -> BTreeMap<String, usize> {
    let mut families = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split(['{', ' ']).next().unwrap_or(line);
        *families.entry(name.to_string()).or_insert(0) += 1;
    }
    families
}

/// Series and bytes of `/metrics` once the model's drift gauges are exported, and its
/// series per family.
async fn page(fleet_bins: FleetBins) -> (usize, usize, usize, BTreeMap<String, usize>) {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream(records_model).await;
    let mut cfg = config(up);
    cfg.model.name = "wide".into();
    cfg.baseline.files = vec![baseline(dir.path())];
    cfg.drift.interval = Duration::from_secs(1);
    cfg.drift.fleet_bins = fleet_bins;
    let running = mlmon::server::start(cfg).await.unwrap();
    let client = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(4);
    for _ in 0..10 {
        let rows: Vec<serde_json::Value> = (0..20)
            .map(|_| {
                let v = values(&mut rng);
                serde_json::Value::Object(
                    v.iter()
                        .enumerate()
                        .map(|(i, x)| (name(i), serde_json::json!(x)))
                        .collect(),
                )
            })
            .collect();
        let r = client
            .post(format!("http://{}/predict", running.proxy_addr))
            .json(&rows)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    analysed(&running, 10).await;
    let url = format!("http://{}/metrics", running.admin_addr);
    let text = eventually("every feature's drift statistics exported", || async {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        // Every per-feature family, not PSI alone: a drift refresh that ran before the last
        // rows were analysed can have exported some statistics and not yet the others, and
        // the quality and anomaly gauges come from refreshes of their own.
        let count = |family: &str| text.lines().filter(|l| l.starts_with(family)).count();
        let sparsest = [
            "mlmon_feature_psi{",
            "mlmon_feature_js_divergence{",
            "mlmon_feature_ks_statistic{",
            "mlmon_feature_ks_pvalue{",
            "mlmon_feature_wasserstein{",
            "mlmon_feature_drift_status{",
            "mlmon_feature_missing_ratio{",
            "mlmon_feature_out_of_range_ratio{",
            "mlmon_feature_outlier_ratio{",
        ]
        .iter()
        .map(|family| count(family))
        .min()
        .unwrap_or(0);
        let model_gauges = ["mlmon_data_quality_score{", "mlmon_anomaly_rate{"]
            .iter()
            .all(|family| count(family) == 1);
        let rows = text
            .lines()
            .find(|l| l.starts_with("mlmon_predictions_total{"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        if sparsest >= FEATURES && model_gauges && rows == Some(200.0) {
            Ok(text)
        } else {
            Err(format!(
                "{sparsest} series in the sparsest per-feature family, quality score and \
                 anomaly rate exported: {model_gauges}, {rows:?} rows"
            ))
        }
    })
    .await;
    running.shutdown();
    running.wait().await;
    let series = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    let bins = text
        .lines()
        .filter(|l| {
            l.starts_with("mlmon_feature_bin_observations_total{")
                || l.starts_with("mlmon_baseline_bin_ratio{")
        })
        .count();
    (series, text.len(), bins, families(&text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_feature_model_exports_at_most_1500_series_and_120_kb_by_default() {
    let (series, bytes, bins, off) = page(FleetBins::Off).await;
    eprintln!("drift.fleet_bins off: {series} series, {bytes} bytes, {bins} per-bin series");
    assert_eq!(bins, 0, "no per-bin series by default");
    assert!(series <= 1500, "{series} series > 1500");
    assert!(bytes <= 120_000, "{bytes} bytes > 120 KB");

    let (series_full, bytes_full, bins_full, full) = page(FleetBins::Full).await;
    eprintln!(
        "drift.fleet_bins full: {series_full} series, {bytes_full} bytes, {bins_full} per-bin series"
    );
    // Two series (counter, ratio) per bin and feature, 10 bins each.
    assert!(bins_full >= 2 * 10 * FEATURES, "{bins_full} per-bin series");
    // The rest is the same (up to a series of timing, e.g. an SLA violation).
    let differ: Vec<String> = off
        .keys()
        .chain(full.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|f| off.get(*f) != full.get(*f))
        .map(|f| format!("{f}: {:?} off, {:?} full", off.get(f), full.get(f)))
        .collect();
    assert!(
        series_full.abs_diff(series + bins_full) <= 3,
        "{series_full} vs {series} + {bins_full}; families that differ: {differ:#?}"
    );
}
