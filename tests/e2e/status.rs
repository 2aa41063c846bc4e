//! The status page (`GET /`, docs/status-page.md): the page and its assets are open and
//! self-contained, the API behind it keeps its token, the history follows the refreshes,
//! raw window extremes stay out of the drift API, and `mlmon demo` prints the page first.
//! The page itself in a real browser: tests/py/test_status_page.py.

use std::time::Duration;

use crate::common::{analysed, config, eventually, records_model, upstream};
use serde_json::Value;

async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut r = reqwest::Client::new().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_open_self_contained_and_small_the_api_keeps_its_token() {
    let up = upstream(records_model).await;
    let mut cfg = config(up);
    cfg.admin.token = Some("t0k".into());
    cfg.admin.allow_unauthenticated = false;
    let running = mlmon::server::start(cfg).await.unwrap();
    let admin = format!("http://{}", running.admin_addr);

    let page = get(&format!("{admin}/"), None).await;
    assert_eq!(page.status(), 200, "the page needs no token");
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src=\"/status/status.js\" defer></script>"));
    assert_eq!(html.matches("<script").count(), 1, "no inline script");
    let mut total = html.len();
    for (path, ct) in [
        ("/status/status.js", "text/javascript; charset=utf-8"),
        ("/status/status.css", "text/css; charset=utf-8"),
    ] {
        let r = get(&format!("{admin}{path}"), None).await;
        assert_eq!(r.status(), 200, "{path} needs no token");
        assert_eq!(r.headers()["content-type"], ct, "{path}");
        let body = r.text().await.unwrap();
        // Nothing from another origin: no CDN, no web font (the SVG namespace is a name,
        // never fetched).
        let external = body
            .replace("http://www.w3.org/2000/svg", "")
            .contains("://");
        assert!(!external, "{path} refers to another origin");
        assert!(!body.contains("@import") && !body.contains("@font-face"));
        total += body.len();
    }
    assert!(total < 100 * 1024, "page and assets weigh {total} bytes");

    // The API behind the page keeps its rules.
    for path in ["/api/v1/models", "/api/v1/models/default/history"] {
        assert_eq!(get(&format!("{admin}{path}"), None).await.status(), 401);
        assert_eq!(
            get(&format!("{admin}{path}"), Some("wrong")).await.status(),
            401
        );
        assert_eq!(
            get(&format!("{admin}{path}"), Some("t0k")).await.status(),
            200,
            "{path}"
        );
    }
    // Unknown paths beside the page are JSON 404s, not the page.
    let r = get(&format!("{admin}/status/other.js"), None).await;
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_follows_the_refreshes_and_drift_withholds_raw_extremes() {
    let up = upstream(records_model).await;
    let mut cfg = config(up);
    cfg.model.name = "svc".into();
    cfg.baseline.capture_rows = 20;
    cfg.drift.interval = Duration::from_millis(100);
    let running = mlmon::server::start(cfg).await.unwrap();
    let admin = format!("http://{}", running.admin_addr);
    let client = reqwest::Client::new();
    for i in 0..40 {
        client
            .post(format!("http://{}/predict", running.proxy_addr))
            .body(format!("[{{\"x\": {}}}]", f64::from(i) - 20.0))
            .send()
            .await
            .unwrap();
    }
    analysed(&running, 40).await;
    // Points are at least 5 s apart: the one after the traffic sees all 40 requests.
    let h: Value = eventually("a history point with the 40 requests", || async {
        let h: Value = get(&format!("{admin}/api/v1/models/svc/history"), None)
            .await
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let last = h["requests"].as_array().and_then(|r| r.last().cloned());
        if last == Some(Value::from(40)) {
            Ok(h)
        } else {
            Err(format!("requests {}", h["requests"]))
        }
    })
    .await;
    let n = h["t"].as_array().unwrap().len();
    assert!(n >= 2, "a point at start and one after the traffic");
    for key in [
        "health",
        "drift_score",
        "p50",
        "p95",
        "p99",
        "errors",
        "quality",
    ] {
        assert_eq!(h[key].as_array().unwrap().len(), n, "{key}");
    }
    assert!(h["p95"][n - 1].as_f64().unwrap() > 0.0);
    assert_eq!(h["errors"][n - 1], 0);
    assert_eq!(h["interval_seconds"], 5.0);
    assert_eq!(h["baseline"]["rows"], 20, "captured from the first 20 rows");
    assert_eq!(h["thresholds"]["psi"]["warning"], 0.1);
    assert_eq!(h["thresholds"]["latency_p95_seconds"]["critical"], 0.1);
    assert_eq!(h["available"]["drift"], true);
    assert_eq!(h["available"]["importance"], false);
    assert_eq!(h["explain"]["enabled"], false);
    assert_eq!(h["privacy"]["log_values"], false);
    // Only newer points.
    let last_t = h["t"][n - 1].as_f64().unwrap();
    let newer: Value = get(
        &format!("{admin}/api/v1/models/svc/history?since={last_t}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(newer["t"].as_array().unwrap().len() <= 1);
    let unknown = get(&format!("{admin}/api/v1/models/nope/history"), None).await;
    assert_eq!(unknown.status(), 404);

    // Window min/max are raw values: not in the drift API without privacy.log_values.
    let drift: Value = get(&format!("{admin}/api/v1/models/svc/drift"), None)
        .await
        .json()
        .await
        .unwrap();
    let x = drift["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "x")
        .unwrap();
    assert!(x["mean"].is_number(), "{x}");
    assert!(x["min"].is_null() && x["max"].is_null(), "{x}");
    running.shutdown();
    running.wait().await;
}

#[test]
fn demo_prints_the_status_page_first() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlmon"))
        .args(["demo", "--duration", "6", "--rps", "5"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let url = first
        .split_once("open the status page at ")
        .map(|(_, u)| u.trim().to_string())
        .unwrap_or_else(|| panic!("first line names the status page: {first:?}"));
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    let page = crate::common::http_get(&url).unwrap_or_default();
    assert!(page.contains("<title>mlmon status</title>"), "{page}");
    assert!(child.wait().unwrap().success());
}

/// What the status page adds to the binary: its embedded files plus every function of
/// `mlmon::status` and `mlmon::api::status` (generic instances included: their names carry
/// the type), read from the symbol table of the test binary (a debug build: unoptimized, so
/// an upper bound of the release build's). The release figure is in docs/performance.md.
#[test]
fn status_page_adds_under_a_megabyte_to_the_binary() {
    let out = std::process::Command::new("nm")
        .args(["-S", "-C", env!("CARGO_BIN_EXE_mlmon")])
        .output()
        .expect("nm (binutils) runs");
    assert!(out.status.success(), "nm failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut symbols = 0usize;
    let mut code = 0usize;
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (_, Some(size), _, Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if name.contains("mlmon::status::") || name.contains("mlmon::api::status::") {
            symbols += 1;
            code += usize::from_str_radix(size, 16).unwrap_or(0);
        }
    }
    assert!(symbols > 10, "the status symbols are found ({symbols})");
    let assets = mlmon::status::PAGE_HTML.len()
        + mlmon::status::PAGE_JS.len()
        + mlmon::status::PAGE_CSS.len();
    let added = code + assets;
    eprintln!("status page in the binary: {code} bytes of code in {symbols} symbols + {assets} bytes of page");
    assert!(added < 1024 * 1024, "{added} bytes");
}
