//! The demo's traffic carries occasional out-of-distribution rows and missing values, and
//! they show up in the anomaly and data quality metrics of the running binary.

use std::time::{Duration, Instant};

use crate::common::{http_get as get, spawn_demo};

fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn demo_traffic_shows_anomalies_and_missing_values() {
    let (mut child, metrics_url) =
        spawn_demo(&["--duration", "14", "--drift-after", "1000", "--rps", "100"]);
    let deadline = Instant::now() + Duration::from_secs(13);
    let (mut anomalies, mut missing) = (0.0, 0.0);
    while Instant::now() < deadline && (anomalies < 3.0 || missing < 3.0) {
        std::thread::sleep(Duration::from_millis(500));
        let Some(text) = get(&metrics_url) else {
            continue;
        };
        anomalies = sample(&text, "mlmon_anomalies_total{model=\"credit-risk\"}").unwrap_or(0.0);
        missing = sample(
            &text,
            "mlmon_feature_errors_total{model=\"credit-risk\",feature=\"debt_ratio\",reason=\"missing\"}",
        )
        .unwrap_or(0.0);
    }
    let status = child.wait().unwrap();
    assert!(anomalies >= 3.0, "{anomalies} anomalies in the demo");
    assert!(missing >= 3.0, "{missing} missing debt ratios in the demo");
    assert!(status.success());
}
