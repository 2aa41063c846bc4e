use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::config::TriggerConfig;
use super::*;

/// A local endpoint standing in for Argo/GitHub: records (headers, body) and answers `status`.
struct Endpoint {
    url: String,
    calls: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

async fn endpoint(status: u16) -> Endpoint {
    let calls: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let seen = calls.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push((headers, String::from_utf8_lossy(&body).into_owned()));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Endpoint { url, calls }
}

struct Running {
    url: String,
    app: Arc<Receiver>,
    _dir: tempfile::TempDir,
}

async fn receiver(yaml: &str, env: &[(&str, &str)], dir: Option<tempfile::TempDir>) -> Running {
    let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let path = dir.path().join("trigger.yaml");
    std::fs::write(&path, yaml).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let resolved = TriggerConfig::load_with_env(&path, &lookup).unwrap();
    let app = Receiver::start(resolved).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = router(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Running {
        url,
        app,
        _dir: dir,
    }
}

fn notification(alerts: &[(&str, &str, &str)]) -> Value {
    json!({
        "version": "4", "status": "firing", "receiver": "mlmon-retrain", "groupKey": "{}:{}",
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts.iter().map(|(name, model, severity)| json!({
            "status": "firing", "fingerprint": format!("fp-{model}"),
            "labels": {"alertname": name, "model": model, "severity": severity, "feature": "amount"},
            "annotations": {"summary": format!("drift on {model}")},
            "startsAt": "2026-12-02T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        })).collect::<Vec<_>>(),
    })
}

async fn post_note(url: &str, note: &Value, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/alertmanager"))
        .json(note);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn results(app: &Receiver) -> Vec<(String, String)> {
    app.recent
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.key.clone(), r.result.clone()))
        .collect()
}

fn http_action(url: &str, extra: &str) -> String {
    format!(
        "cooldown: 1h\nactions:\n  - name: retrain\n    match: {{alertname: [MlmonFeatureDrift, MlmonPerformanceDrop], severity: critical}}\n    http:\n      url: {url}\n      headers: {{Authorization: 'Bearer ${{ARGO}}'}}\n      hmac_secret_env: HMAC\n      body: '{{\"event_type\": \"retrain\", \"client_payload\": {{\"model\": {{{{ labels.model }}}}, \"alert\": {{{{ labels.alertname }}}}}}}}'\n{extra}"
    )
}

#[tokio::test]
async fn one_signed_call_per_key_then_the_cooldown_suppresses_repeats() {
    let hook = endpoint(200).await;
    let rx = receiver(
        &http_action(&hook.url, ""),
        &[("ARGO", "argo-token"), ("HMAC", "k3y")],
        None,
    )
    .await;
    let note = notification(&[
        ("MlmonFeatureDrift", "fraud", "critical"),
        ("MlmonFeatureDrift", "churn", "warning"), // not matched: warning
    ]);
    let (status, answer) = post_note(&rx.url, &note, None).await;
    assert_eq!(status, 200);
    assert_eq!(answer["queued"], 1);
    wait_for("the call", || hook.calls.lock().unwrap().len() == 1).await;

    let (headers, body) = hook.calls.lock().unwrap()[0].clone();
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc,
        json!({"event_type": "retrain", "client_payload": {"model": "fraud", "alert": "MlmonFeatureDrift"}})
    );
    assert_eq!(headers["authorization"], "Bearer argo-token");
    let ts = headers["x-mlmon-timestamp"].to_str().unwrap();
    assert_eq!(
        headers["x-mlmon-signature-256"].to_str().unwrap(),
        sign(b"k3y", ts, &body)
    );
    assert!(!headers["x-mlmon-delivery"].is_empty());

    // Alertmanager repeats the notification: suppressed, no second call.
    let (_, answer) = post_note(&rx.url, &note, None).await;
    assert_eq!(answer["suppressed"], 1);
    // Another model is another key.
    let other = notification(&[("MlmonPerformanceDrop", "churn", "critical")]);
    post_note(&rx.url, &other, None).await;
    wait_for("the second model's call", || {
        hook.calls.lock().unwrap().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hook.calls.lock().unwrap().len(), 2);
    let r = results(&rx.app);
    assert!(r.contains(&(
        "retrain|alertname=MlmonFeatureDrift|model=fraud".into(),
        "triggered".into()
    )));
    assert!(r.contains(&(
        "retrain|alertname=MlmonFeatureDrift|model=fraud".into(),
        "suppressed".into()
    )));
}

#[tokio::test]
async fn a_failed_call_does_not_use_up_the_cooldown() {
    let hook = endpoint(500).await;
    let rx = receiver(
        &http_action(&hook.url, ""),
        &[("ARGO", "t"), ("HMAC", "k")],
        None,
    )
    .await;
    let note = notification(&[("MlmonFeatureDrift", "fraud", "critical")]);
    post_note(&rx.url, &note, None).await;
    wait_for("a failure", || {
        results(&rx.app).iter().any(|(_, r)| r == "failed")
    })
    .await;
    post_note(&rx.url, &note, None).await;
    wait_for("the retry", || hook.calls.lock().unwrap().len() == 2).await;
    let rec = rx.app.recent.lock().unwrap()[0].clone();
    assert_eq!(rec.http_status, Some(500));
    assert!(rec.detail.unwrap().contains("500"));
}

#[tokio::test]
async fn dry_run_records_the_rendered_call_and_sends_nothing() {
    let hook = endpoint(200).await;
    let rx = receiver(
        &http_action(&hook.url, "dry_run: true\n"),
        &[("ARGO", "secret-token"), ("HMAC", "k")],
        None,
    )
    .await;
    post_note(
        &rx.url,
        &notification(&[("MlmonFeatureDrift", "fraud", "critical")]),
        None,
    )
    .await;
    wait_for("the dry run", || !results(&rx.app).is_empty()).await;
    let rec = rx.app.recent.lock().unwrap()[0].clone();
    assert_eq!(rec.result, "dry_run");
    let request = rec.request.unwrap();
    assert_eq!(request["body"]["client_payload"]["model"], "fraud");
    assert!(!request.to_string().contains("secret-token"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(hook.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bad_notifications_get_json_errors() {
    let rx = receiver(
        "token: tok\nmax_body_bytes: 2048\nactions:\n  - {name: a, command: [\"true\"]}\n",
        &[],
        None,
    )
    .await;
    let note = notification(&[("MlmonFeatureDrift", "fraud", "critical")]);
    assert_eq!(post_note(&rx.url, &note, None).await.0, 401);
    assert_eq!(post_note(&rx.url, &note, Some("nope")).await.0, 401);
    assert_eq!(post_note(&rx.url, &note, Some("tok")).await.0, 200);
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/alertmanager", rx.url))
        .bearer_auth("tok")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("not an Alertmanager"));
    let resp = client
        .post(format!("{}/alertmanager", rx.url))
        .bearer_auth("tok")
        .body(vec![b' '; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let metrics = client
        .get(format!("{}/metrics", rx.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("mlmon_trigger_notifications_total{result=\"unauthorized\"} 2"));
}

#[tokio::test]
async fn a_command_gets_the_alert_and_a_slow_one_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alert.json");
    let yaml = format!(
        "actions:\n  - name: write\n    match: {{model: fraud}}\n    command: [sh, -c, 'printf %s \"$MLMON_ALERT\" > {}; printf %s \"$0\" > {}.arg', '{{{{ labels.model }}}}']\n  - name: slow\n    match: {{model: slow}}\n    timeout: 200ms\n    command: [sleep, '5']\n",
        out.display(),
        out.display()
    );
    let rx = receiver(&yaml, &[], Some(dir)).await;
    post_note(
        &rx.url,
        &notification(&[
            ("MlmonFeatureDrift", "fraud", "critical"),
            ("MlmonFeatureDrift", "slow", "critical"),
        ]),
        None,
    )
    .await;
    wait_for("both commands", || results(&rx.app).len() == 2).await;
    let alert: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(alert["labels"]["model"], "fraud");
    let arg = std::fs::read_to_string(format!("{}.arg", out.display())).unwrap();
    assert_eq!(arg, "fraud");
    let recent = rx.app.recent.lock().unwrap().clone();
    let slow = recent.iter().find(|r| r.action == "slow").unwrap();
    assert_eq!(slow.result, "failed");
    assert!(slow.detail.as_ref().unwrap().contains("did not finish"));
}

#[tokio::test]
async fn cooldowns_survive_a_restart_through_the_record_file() {
    let hook = endpoint(200).await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("state/triggered.jsonl");
    let yaml = http_action(&hook.url, &format!("record_file: {}\n", record.display()));
    let env = [("ARGO", "t"), ("HMAC", "k")];
    let first = receiver(&yaml, &env, Some(dir)).await;
    let note = notification(&[("MlmonFeatureDrift", "fraud", "critical")]);
    post_note(&first.url, &note, None).await;
    wait_for("the call", || hook.calls.lock().unwrap().len() == 1).await;
    wait_for("the record", || {
        std::fs::read_to_string(&record)
            .map(|t| t.contains("\"triggered\""))
            .unwrap_or(false)
    })
    .await;
    let dir = first._dir;
    drop(first.app);
    let second = receiver(&yaml, &env, Some(dir)).await;
    let (_, answer) = post_note(&second.url, &note, None).await;
    assert_eq!(answer["suppressed"], 1);
    let lines: Vec<Record> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.iter().map(|r| r.result.as_str()).collect::<Vec<_>>(),
        ["triggered", "suppressed"]
    );
    assert_eq!(hook.calls.lock().unwrap().len(), 1);
}
