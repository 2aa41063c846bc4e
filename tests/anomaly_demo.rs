//! The demo's traffic carries occasional out-of-distribution rows and missing values, and
//! they show up in the anomaly and data quality metrics of the running binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(hostport).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn demo_traffic_shows_anomalies_and_missing_values() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlmon"))
        .args([
            "demo",
            "--duration",
            "14",
            "--drift-after",
            "1000",
            "--rps",
            "100",
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
