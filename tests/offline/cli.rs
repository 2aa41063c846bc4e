//! Start-up errors from the real binary: one line naming the file, key or value, a
//! non-zero exit, no panic or backtrace.

use std::io::Write;
use std::process::{Command, Output};

fn mlmon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlmon"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("MLMON_ADMIN__TOKEN")
        .output()
        .unwrap()
}

fn one_line_error(out: &Output, needles: &[&str]) {
    assert!(!out.status.success(), "must fail");
    assert_ne!(out.status.code(), None, "exits, not killed");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, got:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(lines[0].starts_with("mlmon: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
}

fn file(ext: &str, text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn unknown_config_key_names_file_and_key() {
    let f = file(".yaml", "drift:\n  windw: 5m\n");
    let path = f.path().to_str().unwrap();
    one_line_error(&mlmon(&["serve", "--config", path]), &[path, "windw"]);
    one_line_error(
        &mlmon(&["check-config", "--config", path]),
        &[path, "windw"],
    );
}

#[test]
fn unparsable_upstream_names_the_value() {
    one_line_error(
        &mlmon(&[
            "serve",
            "--upstream",
            "not a url",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ]),
        &["upstream", "not a url"],
    );
}

#[test]
fn port_in_use_names_key_and_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    one_line_error(
        &mlmon(&["serve", "--listen", &addr, "--admin-listen", "127.0.0.1:0"]),
        &["listen", &addr],
    );
}

#[test]
fn malformed_baseline_names_file_and_field() {
    let b = file(".json", r#"{"format_version": 1, "model": {"name": "m"}}"#);
    let path = b.path().to_str().unwrap();
    one_line_error(
        &mlmon(&[
            "serve",
            "--baseline",
            path,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ]),
        &[path],
    );
    let cfg = file(".yaml", &format!("baseline:\n  files: [{path}]\n"));
    one_line_error(
        &mlmon(&["check-config", "--config", cfg.path().to_str().unwrap()]),
        &[path],
    );
}

#[test]
fn valid_config_checks_ok() {
    let f = file(
        ".toml",
        "upstream = \"http://127.0.0.1:9000\"\n[drift]\nwindow = \"5m\"\n",
    );
    let out = mlmon(&["check-config", "--config", f.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("http://127.0.0.1:9000"));
}

fn mlmon_env(args: &[&str], env: &[(&str, std::ffi::OsString)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlmon"));
    c.args(args).env("RUST_BACKTRACE", "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MLMON_") {
            c.env_remove(k);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn env_errors_name_the_variable_key_and_value() {
    // Env overrides the file (SPEC revision 2), so the bad value in force is the variable's.
    let f = file(".yaml", "drift:\n  window: 5m\n");
    let path = f.path().to_str().unwrap();
    one_line_error(
        &mlmon_env(
            &["check-config", "--config", path],
            &[("MLMON_DRIFT__WINDOW", "forever".into())],
        ),
        &[
            "environment variable MLMON_DRIFT__WINDOW",
            "drift.window",
            "\"forever\"",
        ],
    );
    one_line_error(
        &mlmon_env(
            &["check-config"],
            &[("MLMON_CAPTURE__QUEUE", "many".into())],
        ),
        &["MLMON_CAPTURE__QUEUE", "capture.queue", "\"many\""],
    );
}

#[test]
fn non_utf8_environment_is_an_error_only_for_our_variables() {
    use std::os::unix::ffi::OsStringExt;
    let junk = std::ffi::OsString::from_vec(vec![0x66, 0xff, 0x6f]);
    let out = mlmon_env(&["check-config"], &[("SOMEONE_ELSES", junk.clone())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    one_line_error(
        &mlmon_env(&["check-config"], &[("MLMON_MODEL__NAME", junk)]),
        &["environment variable MLMON_MODEL__NAME", "not valid UTF-8"],
    );
}
