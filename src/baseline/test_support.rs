//! Helpers shared by the baseline module's tests: the fixture table generated
//! with numpy/pandas by `scripts/gen/baseline.py`
//! (tests/fixtures/baseline/), and small builders of inputs and errors.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{build_from_file, BuildOptions, NoProgress, Snapshot};

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/baseline")
        .join(name)
}

pub(crate) fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The options matching the fixture table.
pub(crate) fn fixture_options() -> BuildOptions {
    BuildOptions {
        prediction: Some("pred".into()),
        target: Some("label".into()),
        categorical: vec!["zip".into()],
        exclude: vec!["dropme".into()],
        ..BuildOptions::new("credit-risk")
    }
}

pub(crate) fn build(name: &str, options: &BuildOptions) -> Snapshot {
    build_from_file(&fixture(name), None, options, &mut NoProgress).unwrap()
}

pub(crate) fn close(actual: f64, expected: f64, rel: f64, what: &str) {
    let tol = rel * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: got {actual}, numpy says {expected}"
    );
}

pub(crate) fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub(crate) fn build_err(path: &Path, options: &BuildOptions) -> String {
    build_from_file(path, None, options, &mut NoProgress)
        .unwrap_err()
        .to_string()
}
