//! `mlmon demo` from the binary alone: it starts, serves metrics, and its traffic drifts.

use std::time::{Duration, Instant};

use crate::common::{http_get as get, spawn_demo};

#[test]
fn demo_runs_from_the_binary_and_drift_becomes_visible() {
    // Alone, income turns critical about 8 s in (refreshes every 2 s); the run is longer so
    // that a loaded machine (the whole e2e suite on 2 CPUs, a debug build) still gets there.
    let (mut child, metrics_url) =
        spawn_demo(&["--duration", "24", "--drift-after", "3", "--rps", "60"]);
    let deadline = Instant::now() + Duration::from_secs(23);
    let mut drifted = false;
    while Instant::now() < deadline && !drifted {
        std::thread::sleep(Duration::from_millis(500));
        let Some(text) = get(&metrics_url) else {
            continue;
        };
        drifted = text.lines().any(|l| {
            l.starts_with("mlmon_feature_drift_status{model=\"credit-risk\",feature=\"income\"")
                && l.ends_with(" 2")
        });
    }
    let status = child.wait().unwrap();
    assert!(drifted, "income drift became critical in the demo");
    assert!(status.success(), "demo stops cleanly after --duration");
}
