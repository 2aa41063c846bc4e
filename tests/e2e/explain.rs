//! End to end: a real model server on 127.0.0.1 (p = sigmoid(2·a + 0·b)) speaking OIP v2 or
//! KServe v1 and parsing every body strictly; live traffic through the proxy; permutation
//! importance, KernelSHAP, sensitivity and occlusion explanations computed by re-sending rows
//! to it; the number of requests each costs; a failing or slow model server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{analysed, config, eventually, scrape, upstream, value, UpBody};
use http::Response;
use http_body_util::{BodyExt, Full};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde_json::{json, Value};

/// What the model server saw.
#[derive(Default)]
struct Seen {
    /// Requests marked `x-mlmon-explain: 1` (with an `x-request-id`).
    explain: AtomicUsize,
    /// All requests.
    total: AtomicUsize,
    /// Bodies that broke the protocol.
    invalid: AtomicUsize,
    /// Answer 500 to explain requests.
    fail: AtomicBool,
    /// Delay explain answers by this many milliseconds.
    delay_ms: std::sync::atomic::AtomicU64,
    /// Rows of every explain request, in arrival order.
    log: std::sync::Mutex<Vec<Vec<(f64, f64)>>>,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The model: only `a` matters.
fn p(a: f64, _b: f64) -> f64 {
    sigmoid(2.0 * a)
}

fn number_list(v: &Value, n: usize) -> Result<Vec<f64>, String> {
    let list = v.as_array().ok_or("data is not a list")?;
    if list.len() != n {
        return Err(format!("data has {} values, shape says {n}", list.len()));
    }
    list.iter()
        .map(|x| {
            x.as_f64()
                .ok_or_else(|| "non-number in FP64 data".to_string())
        })
        .collect()
}

/// Strict OIP v2: exactly inputs `a` and `b`, FP64, shape `[N]`, N numbers each.
fn oip_rows(body: &Value) -> Result<Vec<(f64, f64)>, String> {
    let obj = body.as_object().ok_or("body is not an object")?;
    if let Some(k) = obj
        .keys()
        .find(|k| !["inputs", "parameters", "id"].contains(&k.as_str()))
    {
        return Err(format!("unexpected key {k}"));
    }
    let inputs = obj["inputs"].as_array().ok_or("inputs is not a list")?;
    if inputs.len() != 2 {
        return Err("expected inputs a and b".into());
    }
    let mut cols = std::collections::BTreeMap::new();
    for i in inputs {
        if i["datatype"] != "FP64" {
            return Err("datatype must be FP64".into());
        }
        let shape = i["shape"].as_array().ok_or("no shape")?;
        if shape.len() != 1 {
            return Err("shape must be [N]".into());
        }
        let n = shape[0].as_u64().ok_or("bad dimension")? as usize;
        let name = i["name"].as_str().ok_or("no name")?;
        cols.insert(name.to_string(), number_list(&i["data"], n)?);
    }
    let (a, b) = (cols.get("a").ok_or("no a")?, cols.get("b").ok_or("no b")?);
    if a.len() != b.len() {
        return Err("inputs of different lengths".into());
    }
    Ok(a.iter().copied().zip(b.iter().copied()).collect())
}

/// Strict KServe v1: `{"instances": [{"a": x, "b": y}, ...]}`, nothing else.
fn kserve_rows(body: &Value) -> Result<Vec<(f64, f64)>, String> {
    let obj = body.as_object().ok_or("body is not an object")?;
    if obj.len() != 1 {
        return Err("only instances expected".into());
    }
    let inst = obj
        .get("instances")
        .and_then(Value::as_array)
        .ok_or("no instances")?;
    inst.iter()
        .map(|r| {
            let r = r.as_object().ok_or("instance is not an object")?;
            if r.len() != 2 {
                return Err("instance must hold exactly a and b".to_string());
            }
            let get = |k: &str| r.get(k).and_then(Value::as_f64).ok_or(format!("no {k}"));
            Ok((get("a")?, get("b")?))
        })
        .collect()
}

fn json_response(status: u16, v: Value) -> Response<UpBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(v.to_string())).boxed())
        .unwrap()
}

async fn serve(
    seen: Arc<Seen>,
    oip: bool,
    req: http::Request<hyper::body::Incoming>,
) -> Response<UpBody> {
    seen.total.fetch_add(1, Ordering::SeqCst);
    let marked = req
        .headers()
        .get("x-mlmon-explain")
        .is_some_and(|v| v == "1");
    if marked {
        assert!(req.headers().contains_key("x-request-id"));
        seen.explain.fetch_add(1, Ordering::SeqCst);
        if seen.fail.load(Ordering::SeqCst) {
            return json_response(500, json!({"error": "model crashed"}));
        }
        let delay = seen.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| if oip { oip_rows(&v) } else { kserve_rows(&v) });
    let rows = match parsed {
        Ok(r) => r,
        Err(e) => {
            seen.invalid.fetch_add(1, Ordering::SeqCst);
            return json_response(400, json!({ "error": e }));
        }
    };
    if marked {
        seen.log.lock().unwrap().push(rows.clone());
    }
    let probs: Vec<[f64; 2]> = rows
        .iter()
        .map(|&(a, b)| [1.0 - p(a, b), p(a, b)])
        .collect();
    if oip {
        let data: Vec<f64> = probs.iter().flatten().copied().collect();
        json_response(
            200,
            json!({"model_name": "m", "outputs": [
                {"name": "probabilities", "shape": [rows.len(), 2], "datatype": "FP64", "data": data}
            ]}),
        )
    } else {
        json_response(200, json!({ "predictions": probs }))
    }
}

struct Setup {
    running: mlmon::server::Running,
    seen: Arc<Seen>,
    client: reqwest::Client,
    /// The admin token, which reads need too when set.
    token: Option<String>,
}

async fn setup(oip: bool, token: Option<&str>) -> Setup {
    setup_with(oip, token, Duration::from_millis(200)).await
}

async fn setup_with(oip: bool, token: Option<&str>, interval: Duration) -> Setup {
    setup_cfg(oip, token, interval, |_| {}).await
}

async fn setup_cfg(
    oip: bool,
    token: Option<&str>,
    interval: Duration,
    tweak: impl FnOnce(&mut mlmon::config::Config),
) -> Setup {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let addr = upstream(move |req| serve(s.clone(), oip, req)).await;
    let mut cfg = config(addr);
    cfg.explain.interval = interval;
    cfg.explain.min_rows = 32;
    cfg.explain.max_rows = 64;
    cfg.baseline.capture_rows = 40;
    cfg.admin.token = token.map(str::to_string);
    tweak(&mut cfg);
    let running = mlmon::server::start(cfg).await.unwrap();
    Setup {
        running,
        seen,
        client: reqwest::Client::new(),
        token: token.map(str::to_string),
    }
}

/// Sends 30 requests of 2 rows (a, b ~ N(0, 1)) through the proxy.
async fn traffic(s: &Setup, oip: bool) {
    let mut rng = StdRng::seed_from_u64(11);
    let normal = Normal::new(0.0, 1.0).unwrap();
    for _ in 0..30 {
        let (a, b): (Vec<f64>, Vec<f64>) = (0..2)
            .map(|_| (normal.sample(&mut rng), normal.sample(&mut rng)))
            .unzip();
        let (path, body) = if oip {
            (
                "/v2/models/m/infer",
                json!({"inputs": [
                    {"name": "a", "shape": [2], "datatype": "FP64", "data": a},
                    {"name": "b", "shape": [2], "datatype": "FP64", "data": b},
                ]}),
            )
        } else {
            (
                "/v1/models/m:predict",
                json!({"instances": [{"a": a[0], "b": b[0]}, {"a": a[1], "b": b[1]}]}),
            )
        };
        let r = s
            .client
            .post(format!("http://{}{path}", s.running.proxy_addr))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

async fn importance(s: &Setup) -> Value {
    let url = format!("http://{}/api/v1/models/m/importance", s.running.admin_addr);
    // Computed by the periodic `explain.interval` task.
    eventually("the importance of m", || async {
        let mut req = s.client.get(&url);
        if let Some(t) = &s.token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        if r.status() == 200 {
            return Ok(r.json().await.unwrap());
        }
        assert_eq!(r.status(), 404);
        Err("404".to_string())
    })
    .await
}

async fn check_importance(s: &Setup) {
    let imp = importance(s).await;
    assert_eq!(imp["method"], "permutation");
    assert!(imp["rows"].as_u64().unwrap() >= 32, "{imp}");
    let features = imp["features"].as_array().unwrap();
    assert_eq!(features[0]["feature"], "a", "{imp}");
    assert_eq!(features[1]["feature"], "b", "{imp}");
    let ia = features[0]["importance"].as_f64().unwrap();
    // |sigmoid(2a) - sigmoid(2a')| for independent a, a' ~ N(0,1) averages about 0.3.
    assert!(ia > 0.1 && ia < 0.6, "importance of a {ia}");
    // b has no effect on the model at all: shuffling it changes nothing.
    assert_eq!(features[1]["importance"].as_f64().unwrap(), 0.0);

    let m = scrape(s.running.admin_addr).await;
    let gauge = |f: &str| {
        value(
            &m,
            "mlmon_feature_importance",
            &[("model", "m"), ("feature", f), ("method", "permutation")],
        )
    };
    assert!(gauge("a").unwrap() > 0.1);
    assert_eq!(gauge("b"), Some(0.0));
    // Only the 30 client requests are traffic; mlmon's own calls are not counted.
    assert!(s.seen.explain.load(Ordering::SeqCst) >= 3);
    assert_eq!(
        value(
            &m,
            "mlmon_requests_total",
            &[("model", "m"), ("code", "2xx")]
        ),
        Some(30.0)
    );
    assert_eq!(s.seen.invalid.load(Ordering::SeqCst), 0);
}

async fn post_explain(s: &Setup, model: &str, body: &str, token: Option<&str>) -> (u16, Value) {
    post_explain_query(s, model, "", body, token).await
}

async fn post_explain_query(
    s: &Setup,
    model: &str,
    query: &str,
    body: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = s
        .client
        .post(format!(
            "http://{}/api/v1/models/{model}/explain{query}",
            s.running.admin_addr
        ))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn check_explain(s: &Setup, token: Option<&str>) {
    let (status, v) = post_explain(s, "m", r#"{"features": {"a": 2.0, "b": -1.5}}"#, token).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["method"], "occlusion");
    assert!((v["prediction"].as_f64().unwrap() - sigmoid(4.0)).abs() < 1e-12);
    let f = v["features"].as_array().unwrap();
    assert_eq!(f[0]["feature"], "a", "{v}");
    let median_a = f[0]["reference"].as_f64().unwrap();
    let expected = sigmoid(4.0) - sigmoid(2.0 * median_a);
    assert!(expected > 0.3);
    assert!(
        (f[0]["contribution"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{v}"
    );
    assert_eq!(f[1]["feature"], "b");
    assert_eq!(f[1]["contribution"].as_f64().unwrap(), 0.0);
    assert_eq!(s.seen.invalid.load(Ordering::SeqCst), 0);

    // Errors are JSON with the right status.
    let (status, v) = post_explain(s, "nope", r#"{"features": {"a": 1}}"#, token).await;
    assert_eq!(status, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("nope"));
    let (status, v) = post_explain(s, "m", r#"{"rows": []}"#, token).await;
    assert_eq!(status, 422, "{v}");
    let (status, v) = post_explain(s, "m", r#"{"features": {"a": 1}}"#, token).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("features.b"), "{v}");
    s.seen.fail.store(true, Ordering::SeqCst);
    let (status, v) = post_explain(s, "m", r#"{"features": {"a": 1, "b": 2}}"#, token).await;
    assert_eq!(status, 502, "{v}");
    assert!(v["error"].as_str().unwrap().contains("500"), "{v}");
    s.seen.fail.store(false, Ordering::SeqCst);
}

#[tokio::test]
async fn oip_v2_model_importance_and_explanation() {
    let s = setup(true, None).await;
    let r = s
        .client
        .get(format!(
            "http://{}/api/v1/models/m/importance",
            s.running.admin_addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    traffic(&s, true).await;
    // Every row analysed: the baseline (captured from the first 40) is in place.
    analysed(&s.running, 30).await;
    check_importance(&s).await;
    check_explain(&s, None).await;
    s.running.shutdown();
    s.running.wait().await;
}

#[tokio::test]
async fn kserve_v1_model_importance_and_explanation_with_token() {
    let s = setup(false, Some("s3cret")).await;
    traffic(&s, false).await;
    analysed(&s.running, 30).await;
    check_importance(&s).await;
    let (status, _) = post_explain(&s, "m", r#"{"features": {"a": 1, "b": 2}}"#, None).await;
    assert_eq!(status, 401);
    check_explain(&s, Some("s3cret")).await;
    s.running.shutdown();
    s.running.wait().await;
}

/// The reported importance is recomputed here from the rows the model server received:
/// one request with the recent rows, then one per feature with only that feature's column
/// shuffled (a permutation of the same values, other columns untouched).
#[tokio::test]
async fn importance_is_the_mean_absolute_change_over_the_rows_sent() {
    let s = setup_with(true, None, Duration::ZERO).await;
    traffic(&s, true).await;
    analysed(&s.running, 30).await;
    let explain = s.running.state.explain.clone();
    assert_eq!(explain.recent_rows("m"), 60);
    assert!(explain.template("m").is_some());
    let report = explain.compute_importance("m").await.unwrap();
    let log = s.seen.log.lock().unwrap().clone();
    assert_eq!(log.len(), 3, "1 + 2 features requests");
    assert_eq!(report.requests, 3);
    let (base, perm_a, perm_b) = (&log[0], &log[1], &log[2]);
    assert_eq!(base.len(), 60);
    assert_eq!(report.rows, 60);
    let sorted = |v: Vec<f64>| {
        let mut v = v;
        v.sort_by(f64::total_cmp);
        v
    };
    let col = |rows: &[(f64, f64)], j: usize| -> Vec<f64> {
        rows.iter()
            .map(|r| if j == 0 { r.0 } else { r.1 })
            .collect()
    };
    assert_eq!(sorted(col(perm_a, 0)), sorted(col(base, 0)));
    assert_ne!(col(perm_a, 0), col(base, 0), "column a shuffled");
    assert_eq!(col(perm_a, 1), col(base, 1), "column b untouched");
    assert_eq!(sorted(col(perm_b, 1)), sorted(col(base, 1)));
    assert_eq!(col(perm_b, 0), col(base, 0), "column a untouched");
    let expected = |perm: &[(f64, f64)]| {
        base.iter()
            .zip(perm)
            .map(|(x, y)| (p(x.0, x.1) - p(y.0, y.1)).abs())
            .sum::<f64>()
            / base.len() as f64
    };
    let get = |f: &str| {
        report
            .features
            .iter()
            .find(|x| x.feature == f)
            .unwrap()
            .importance
    };
    assert!((get("a") - expected(perm_a)).abs() < 1e-12);
    assert_eq!(get("b"), 0.0);
    // Off by default: nothing was computed periodically.
    assert!(s.seen.explain.load(Ordering::SeqCst) == 3);
    s.running.shutdown();
    s.running.wait().await;
}

#[test]
fn explain_config_from_environment_and_refusals() {
    use mlmon::config::{Config, Overrides};
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    };
    let d = Config::load_from(None, &Overrides::default(), env(&[])).unwrap();
    assert!(d.explain.interval.is_zero(), "off by default");
    let c = Config::load_from(
        None,
        &Overrides::default(),
        env(&[
            ("MLMON_EXPLAIN__INTERVAL", "1m"),
            ("MLMON_EXPLAIN__MAX_ROWS", "16"),
        ]),
    )
    .unwrap();
    assert_eq!(c.explain.interval, Duration::from_secs(60));
    assert_eq!(c.explain.max_rows, 16);
    let err = Config::load_from(
        None,
        &Overrides::default(),
        env(&[("MLMON_EXPLAIN__MAX_ROWS", "1000")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("explain.max_rows"), "{err}");
    let err = Config::load_from(
        None,
        &Overrides::default(),
        env(&[("MLMON_EXPLAIN__TIMEOUT", "0s")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("explain.timeout"), "{err}");
}

fn feature<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == name)
        .unwrap_or_else(|| panic!("no feature {name} in {v}"))
}

/// KernelSHAP of one row with a supplied background, checked against the closed form (f
/// depends on `a` only: φ_a = f(x) − mean_b f(b), φ_b = 0), with the rows it sent: one
/// request of 1 + K × (C + 1) = 1 + 2 × 3 rows. With the baseline's background (captured
/// rows): efficiency to 1e-12 and φ_b = 0.
#[tokio::test]
async fn shap_explanation_is_exact_for_two_features_and_costs_one_request() {
    let s = setup_with(true, None, Duration::ZERO).await;
    traffic(&s, true).await;
    analysed(&s.running, 30).await;
    let before = s.seen.explain.load(Ordering::SeqCst);
    let body = r#"{"features": {"a": 1.0, "b": 2.0},
                   "background": [{"a": 0.0, "b": 0.0}, {"a": -1.0, "b": 1.0}]}"#;
    let (status, v) = post_explain_query(&s, "m", "?method=shap", body, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["method"], "shap");
    assert_eq!(v["exact"], true);
    assert_eq!(v["coalitions"], 2);
    assert_eq!(v["background"]["rows"], 2);
    let e = (p(0.0, 0.0) + p(-1.0, 1.0)) / 2.0;
    assert!(
        (v["expected_value"].as_f64().unwrap() - e).abs() < 1e-15,
        "{v}"
    );
    assert!((v["prediction"].as_f64().unwrap() - p(1.0, 2.0)).abs() < 1e-15);
    let phi_a = feature(&v, "a")["shap"].as_f64().unwrap();
    let phi_b = feature(&v, "b")["shap"].as_f64().unwrap();
    assert!((phi_a - (p(1.0, 2.0) - e)).abs() < 1e-12, "{v}");
    assert!(phi_b.abs() < 1e-12, "{v}");
    assert_eq!(v["model_rows"], 7);
    assert_eq!(v["requests"], 1);
    assert_eq!(s.seen.explain.load(Ordering::SeqCst) - before, 1);
    let log = s.seen.log.lock().unwrap().clone();
    let sent = log.last().unwrap();
    assert_eq!(sent.len(), 7);
    // v0 rows are the background; then the row; then each coalition × background.
    assert_eq!(&sent[..3], &[(0.0, 0.0), (-1.0, 1.0), (1.0, 2.0)]);
    let mut coalition_rows = sent[3..].to_vec();
    coalition_rows.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1)));
    assert_eq!(
        coalition_rows,
        vec![(-1.0, 2.0), (0.0, 2.0), (1.0, 0.0), (1.0, 1.0)]
    );

    // The baseline's own background (captured rows' joint sample, k-means summary).
    let (status, v) = post_explain_query(
        &s,
        "m",
        "?method=shap",
        r#"{"features": {"a": 0.7, "b": -0.2}}"#,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let k = v["background"]["rows"].as_u64().unwrap();
    assert!((1..=10).contains(&k), "{v}");
    let sum =
        feature(&v, "a")["shap"].as_f64().unwrap() + feature(&v, "b")["shap"].as_f64().unwrap();
    let diff = v["prediction"].as_f64().unwrap() - v["expected_value"].as_f64().unwrap();
    assert!((sum - diff).abs() < 1e-12, "{v}");
    assert!(feature(&v, "b")["shap"].as_f64().unwrap().abs() < 1e-12);
    assert_eq!(v["model_rows"], 1 + k * 3);

    // Bad requests.
    let (status, v) = post_explain_query(
        &s,
        "m",
        "?method=lime",
        r#"{"features": {"a": 1, "b": 2}}"#,
        None,
    )
    .await;
    assert_eq!(status, 422, "{v}");
    let (status, v) = post_explain_query(
        &s,
        "m",
        "?method=shap",
        r#"{"features": {"a": 1, "b": 2}, "background": [{"a": 1}]}"#,
        None,
    )
    .await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("background[0].b"),
        "{v}"
    );
    assert_eq!(s.seen.invalid.load(Ordering::SeqCst), 0);
    s.running.shutdown();
    s.running.wait().await;
}

/// Sensitivity: the central difference of sigmoid(2a) matches the analytic derivative
/// 2σ(2a)(1 − σ(2a)) to 1e-6 (relative), b's is exactly 0; 1 + 2F rows in one request.
#[tokio::test]
async fn sensitivity_is_the_analytic_gradient() {
    let s = setup_with(false, None, Duration::ZERO).await;
    traffic(&s, false).await;
    analysed(&s.running, 30).await;
    let (status, v) = post_explain_query(
        &s,
        "m",
        "?method=sensitivity",
        r#"{"features": {"a": 0.3, "b": 5.0}}"#,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let q = p(0.3, 0.0);
    let exact = 2.0 * q * (1.0 - q);
    let g = feature(&v, "a")["gradient"].as_f64().unwrap();
    assert!(((g - exact) / exact).abs() < 1e-6, "{g} vs {exact}");
    assert_eq!(feature(&v, "b")["gradient"].as_f64().unwrap(), 0.0);
    assert_eq!(v["model_rows"], 5);
    assert_eq!(v["requests"], 1);
    s.running.shutdown();
    s.running.wait().await;
}

/// Global importances by every method, with their request counts: permutation 1 + F
/// requests; KernelSHAP ⌈R (1 + K (C + 1)) / batch⌉ with R = explain.shap_rows; sensitivity
/// ⌈R' (1 + 2F) / batch⌉ with R' = explain.max_rows. The model server saw exactly those.
/// Live SHAP importance then weights the drift score.
#[tokio::test]
async fn global_importances_cost_the_documented_requests() {
    let s = setup_cfg(true, None, Duration::ZERO, |c| {
        c.explain.batch_rows = 50;
        c.explain.shap_rows = 4;
    })
    .await;
    traffic(&s, true).await;
    analysed(&s.running, 30).await;
    let explain = s.running.state.explain.clone();
    let before = s.seen.explain.load(Ordering::SeqCst);
    let shap = explain.compute_shap_importance("m").await.unwrap();
    let sent = s.seen.explain.load(Ordering::SeqCst) - before;
    let k = s
        .running
        .state
        .baselines
        .snapshot("m")
        .and_then(|b| b.joint_sample.as_ref().map(|j| j.rows.len().min(10)))
        .unwrap_or(1);
    let rows = 4 * (1 + k * 3);
    assert_eq!(shap.model_rows, rows);
    assert_eq!(shap.requests, rows.div_ceil(50));
    assert_eq!(sent, shap.requests);
    let imp = |r: &mlmon::explain::ImportanceReport, f: &str| {
        r.features
            .iter()
            .find(|x| x.feature == f)
            .unwrap()
            .importance
    };
    assert!(imp(&shap, "a") > 0.01, "{shap:?}");
    assert!(imp(&shap, "b") < 1e-12, "{shap:?}");

    let before = s.seen.explain.load(Ordering::SeqCst);
    let sens = explain.compute_sensitivity_importance("m").await.unwrap();
    assert_eq!(sens.model_rows, 60 * 5);
    assert_eq!(sens.requests, 300usize.div_ceil(50));
    assert_eq!(
        s.seen.explain.load(Ordering::SeqCst) - before,
        sens.requests
    );
    assert_eq!(imp(&sens, "b"), 0.0);
    // mean |∂f/∂a| × sd(a) over the 60 rows the server received.
    let log = s.seen.log.lock().unwrap().clone();
    let received: Vec<f64> = log[log.len() - sens.requests..]
        .iter()
        .flatten()
        .step_by(5)
        .map(|r| r.0)
        .collect();
    assert_eq!(received.len(), 60);
    let sd = s
        .running
        .state
        .baselines
        .snapshot("m")
        .unwrap()
        .features
        .get("a")
        .unwrap()
        .stats
        .std
        .unwrap();
    let expected = sd
        * received
            .iter()
            .map(|a| {
                let q = p(*a, 0.0);
                2.0 * q * (1.0 - q)
            })
            .sum::<f64>()
        / 60.0;
    assert!(((imp(&sens, "a") - expected) / expected).abs() < 1e-6);

    let m = scrape(s.running.admin_addr).await;
    for (method, f) in [("shap", "a"), ("sensitivity", "a")] {
        assert!(
            value(
                &m,
                "mlmon_feature_importance",
                &[("model", "m"), ("feature", f), ("method", method)]
            )
            .unwrap()
                > 0.0,
            "{method}"
        );
    }
    // `GET .../importance?method=shap`.
    let r = s
        .client
        .get(format!(
            "http://{}/api/v1/models/m/importance?method=shap",
            s.running.admin_addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["method"], "shap");
    assert_eq!(body["requests"], shap.requests);
    s.running.shutdown();
    s.running.wait().await;
}

/// A model server that fails or hangs: explanations answer 502 within explain.timeout, the
/// periodic refresh keeps going, failures are counted by result.
#[tokio::test]
async fn failing_and_slow_model_servers_are_counted_and_do_not_block() {
    let s = setup_cfg(true, None, Duration::from_millis(200), |c| {
        c.explain.timeout = Duration::from_millis(300);
    })
    .await;
    traffic(&s, true).await;
    analysed(&s.running, 30).await;
    s.seen.delay_ms.store(5_000, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let (status, v) = post_explain_query(
        &s,
        "m",
        "?method=shap",
        r#"{"features": {"a": 1, "b": 2}}"#,
        None,
    )
    .await;
    assert_eq!(status, 502, "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    s.seen.delay_ms.store(0, Ordering::SeqCst);
    s.seen.fail.store(true, Ordering::SeqCst);
    let (status, _) = post_explain_query(
        &s,
        "m",
        "?method=sensitivity",
        r#"{"features": {"a": 1, "b": 2}}"#,
        None,
    )
    .await;
    assert_eq!(status, 502);
    let admin = s.running.admin_addr;
    eventually("timeouts and errors counted", || async move {
        let m = scrape(admin).await;
        let t = value(
            &m,
            "mlmon_explain_requests_total",
            &[("model", "m"), ("result", "timeout")],
        );
        let e = value(
            &m,
            "mlmon_explain_requests_total",
            &[("model", "m"), ("result", "error")],
        );
        match (t, e) {
            (Some(t), Some(e)) if t >= 1.0 && e >= 2.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Analysis is not blocked: drift still answers, and the model server recovers.
    s.seen.fail.store(false, Ordering::SeqCst);
    let r = s
        .client
        .get(format!("http://{admin}/api/v1/models/m/drift"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("shap importance after recovery", || async move {
        let m = scrape(admin).await;
        value(
            &m,
            "mlmon_feature_importance",
            &[("model", "m"), ("feature", "a"), ("method", "shap")],
        )
        .map(|_| ())
        .ok_or_else(|| "none yet".to_string())
    })
    .await;
    s.running.shutdown();
    s.running.wait().await;
}
