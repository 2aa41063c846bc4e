//! The `anomaly` configuration section: file, environment, defaults and refusals.

use std::io::Write;

use mlmon::config::{Config, Overrides};

fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mlmon.yaml");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(yaml.as_bytes()).unwrap();
    Config::load_from(
        Some(&path),
        &Overrides::default(),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn defaults_file_and_environment() {
    let c = load("{}\n", &[]).unwrap();
    assert_eq!(c.anomaly.threshold, 4.0);
    assert_eq!(c.anomaly.ring_size, 100);
    assert_eq!(c.anomaly.min_confidence, 0.0);
    assert_eq!(c.anomaly.max_joint_features, 64);
    let c = load(
        "anomaly:\n  threshold: 5.5\n  ring_size: 10\n  min_confidence: 0.6\n  max_joint_features: 8\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.anomaly.threshold, 5.5);
    assert_eq!(c.anomaly.ring_size, 10);
    assert_eq!(c.anomaly.min_confidence, 0.6);
    assert_eq!(c.anomaly.max_joint_features, 8);
    let c = load("{}\n", &[("MLMON_ANOMALY__THRESHOLD", "3")]).unwrap();
    assert_eq!(c.anomaly.threshold, 3.0);
}

#[test]
fn bad_values_and_unknown_keys_are_refused_by_name() {
    let e = load("anomaly:\n  threshold: 0\n", &[]).unwrap_err();
    assert!(e.contains("anomaly.threshold"), "{e}");
    let e = load("anomaly:\n  threshold: -2\n", &[]).unwrap_err();
    assert!(e.contains("anomaly.threshold"), "{e}");
    let e = load("anomaly:\n  min_confidence: 1.5\n", &[]).unwrap_err();
    assert!(e.contains("anomaly.min_confidence"), "{e}");
    let e = load("anomaly:\n  treshold: 4\n", &[]).unwrap_err();
    assert!(e.contains("treshold"), "{e}");
}
