//! End to end: a real model server on 127.0.0.1 (p = sigmoid(2·a + 0·b)) speaking OIP v2 or
//! KServe v1 and parsing every body strictly; live traffic through the proxy; permutation
//! importance and occlusion explanations computed by re-sending rows to it.

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
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let addr = upstream(move |req| serve(s.clone(), oip, req)).await;
    let mut cfg = config(addr);
    cfg.explain.interval = interval;
    cfg.explain.min_rows = 32;
    cfg.explain.max_rows = 64;
    cfg.baseline.capture_rows = 40;
    cfg.admin.token = token.map(str::to_string);
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
    let mut req = s
        .client
        .post(format!(
            "http://{}/api/v1/models/{model}/explain",
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
    check_importance(&s).await;
    check_explain(&s, None).await;
    s.running.shutdown();
    s.running.wait().await;
}

#[tokio::test]
async fn kserve_v1_model_importance_and_explanation_with_token() {
    let s = setup(false, Some("s3cret")).await;
    traffic(&s, false).await;
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
