//! `mlmon demo` from the binary alone: it starts, serves metrics, and its traffic drifts.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_runs_from_the_binary_and_drift_becomes_visible() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlmon"))
        .args([
            "demo",
            "--duration",
            "14",
            "--drift-after",
            "3",
            "--rps",
            "60",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let metrics_url = loop {
        let line = lines.next().expect("demo printed its URLs").unwrap();
        if let Some(rest) = line.trim().strip_prefix("metrics:") {
            break rest.trim().to_string();
        }
    };
    let deadline = Instant::now() + Duration::from_secs(13);
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

/// A plain HTTP/1.0 GET of `http://host:port/path`.
fn get(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut s = std::net::TcpStream::connect(host).ok()?;
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}
