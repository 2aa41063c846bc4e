//! `mlmon trigger`: a small, optional receiver that turns Alertmanager webhook notifications
//! (e.g. `MlmonFeatureDrift` critical, `MlmonPerformanceDrop`) into a configured action — an
//! HTTP call with a templated JSON body (Argo Workflows, Kubeflow Pipelines, GitHub
//! `repository_dispatch`, an MLflow run) or a command — with a cooldown and deduplication
//! per action and key, HMAC-signed calls, a dry-run mode and a record of every decision.
//! docs/retraining.md is the user's guide.

pub mod config;
pub mod template;

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::{mpsc, Semaphore};

use self::config::{Resolved, TriggerConfig};
use self::template::{Rendered, Templates};

/// Decisions kept in memory for `GET /triggers`.
const RECENT: usize = 1000;
/// Deduplication keys remembered; the oldest is forgotten past this.
const MAX_KEYS: usize = 10_000;
/// The record file is renamed to `<file>.1` past this size.
const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;
/// At start, only the record file's tail is read to restore cooldowns.
const RESTORE_BYTES: u64 = 4 * 1024 * 1024;
/// Stderr kept from a failed command.
const STDERR_TAIL: usize = 1024;

/// `mlmon trigger` flags.
#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// The receiver's configuration (YAML or TOML): actions, matchers, cooldowns.
    #[arg(long)]
    pub config: PathBuf,
    /// Listen address (overrides `listen` in the file).
    #[arg(long)]
    pub listen: Option<String>,
    /// Record what would be done without doing it (overrides `dry_run`).
    #[arg(long)]
    pub dry_run: bool,
    /// Check the configuration and exit.
    #[arg(long)]
    pub check: bool,
}

/// Runs the receiver until SIGTERM/SIGINT.
pub fn run(args: TriggerArgs) -> ExitCode {
    let mut resolved = match TriggerConfig::load(&args.config) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if let Some(listen) = &args.listen {
        match listen.parse() {
            Ok(addr) => resolved.listen = addr,
            Err(e) => return fail(&format!("--listen: {listen:?} is not an address: {e}")),
        }
    }
    if args.dry_run {
        resolved.config.dry_run = true;
    }
    if args.check {
        println!(
            "trigger configuration ok: {} action(s), listening on {}{}",
            resolved.config.actions.len(),
            resolved.listen,
            if resolved.config.dry_run {
                " (dry run)"
            } else {
                ""
            }
        );
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match rt.block_on(serve(resolved, crate::shutdown::os_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("mlmon: error: {e}");
    ExitCode::from(1)
}

/// Binds and serves until `stop` resolves.
pub async fn serve(
    resolved: Resolved,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(resolved.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", resolved.listen))?;
    let app = Receiver::start(resolved)?;
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        actions = app.cfg.config.actions.len(),
        dry_run = app.cfg.config.dry_run,
        "mlmon trigger: waiting for Alertmanager notifications"
    );
    axum::serve(listener, router(app))
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| e.to_string())
}

/// The HTTP routes.
pub fn router(app: Arc<Receiver>) -> Router {
    let limit = app.cfg.config.max_body_bytes;
    Router::new()
        .route("/alertmanager", post(notify))
        .route("/triggers", get(recent))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

/// One decision, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// RFC 3339.
    pub time: String,
    /// Seconds since the epoch (cooldowns are restored from it).
    pub unix: f64,
    /// Action name.
    pub action: String,
    /// Deduplication key.
    pub key: String,
    /// `triggered`, `failed`, `suppressed`, `dry_run` or `dropped`.
    pub result: String,
    /// The alert's name, status and fingerprint.
    pub alertname: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// Alertmanager's fingerprint of the alert.
    #[serde(default)]
    pub fingerprint: String,
    /// What went wrong, or why it was suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The HTTP status the action's endpoint answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The rendered request (method, url, body) or command; headers are never recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// `X-Mlmon-Delivery` of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

impl Record {
    /// A decision about `action` for one alert, stamped now; `result` is filled in later.
    fn new(action: &str, key: &str, alertname: &str, status: &str, fingerprint: &str) -> Self {
        let unix = now_unix();
        Record {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            unix,
            action: action.to_string(),
            key: key.to_string(),
            result: String::new(),
            alertname: alertname.to_string(),
            status: status.to_string(),
            fingerprint: fingerprint.to_string(),
            detail: None,
            http_status: None,
            request: None,
            delivery: None,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// One action to run for one alert.
struct Job {
    action: usize,
    key: String,
    ctx: Value,
    alertname: String,
    status: String,
    fingerprint: String,
}

/// The receiver's state.
pub struct Receiver {
    cfg: Resolved,
    templates: Vec<Templates>,
    last: Mutex<Cooldowns>,
    recent: Mutex<VecDeque<Record>>,
    record_file: Option<Mutex<RecordFile>>,
    jobs: mpsc::Sender<Job>,
    client: reqwest::Client,
    registry: Registry,
    actions_total: Family<ActionLabels, Counter>,
    notifications_total: Family<ResultLabels, Counter>,
}

/// When each key last triggered, bounded.
#[derive(Default)]
struct Cooldowns {
    at: HashMap<String, f64>,
    order: VecDeque<String>,
}

impl Cooldowns {
    fn set(&mut self, key: &str, unix: f64) {
        if self.at.insert(key.to_string(), unix).is_none() {
            self.order.push_back(key.to_string());
            while self.order.len() > MAX_KEYS {
                if let Some(old) = self.order.pop_front() {
                    self.at.remove(&old);
                }
            }
        }
    }
    fn clear(&mut self, key: &str, unix: f64) {
        // Only the mark this job set: a later trigger of the same key stays.
        if self.at.get(key) == Some(&unix) {
            self.at.remove(key);
            self.order.retain(|k| k != key);
        }
    }
}

struct RecordFile {
    path: PathBuf,
    file: std::fs::File,
}

impl RecordFile {
    fn open(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("record_file {}: {e}", path.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| format!("record_file {}: {e}", path.display()))?;
        Ok(RecordFile {
            path: path.to_path_buf(),
            file,
        })
    }

    fn append(&mut self, record: &Record) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        if self.file.metadata().map(|m| m.len()).unwrap_or(0) > MAX_RECORD_BYTES {
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            let _ = std::fs::rename(&self.path, &rotated);
            if let Ok(f) = RecordFile::open(&self.path) {
                *self = f;
            }
        }
        if let Err(e) = self.file.write_all(&line).and_then(|_| self.file.flush()) {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot write the trigger record");
        }
    }

    /// Records in the file's tail (bounded), oldest first.
    fn tail(&mut self) -> Vec<Record> {
        let len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(RESTORE_BYTES);
        let mut text = String::new();
        if self.file.seek(SeekFrom::Start(start)).is_err()
            || (&self.file)
                .take(RESTORE_BYTES)
                .read_to_string(&mut text)
                .is_err()
        {
            return Vec::new();
        }
        let _ = self.file.seek(SeekFrom::End(0));
        let mut lines = text.lines();
        if start > 0 {
            lines.next(); // a partial line
        }
        lines
            .filter_map(|l| serde_json::from_str::<Record>(l).ok())
            .collect()
    }
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Receiver {
    /// Builds the state, restores cooldowns from the record file and starts the workers.
    pub fn start(cfg: Resolved) -> Result<Arc<Self>, String> {
        let templates = cfg
            .config
            .actions
            .iter()
            .map(Templates::compile)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|(k, m)| format!("{k}: {m}"))?;
        let mut record_file = match &cfg.config.record_file {
            Some(p) => Some(RecordFile::open(p)?),
            None => None,
        };
        let mut cooldowns = Cooldowns::default();
        let mut recent = VecDeque::new();
        if let Some(f) = record_file.as_mut() {
            for r in f.tail() {
                if r.result == "triggered" || (cfg.config.dry_run && r.result == "dry_run") {
                    cooldowns.set(&r.key, r.unix);
                }
                recent.push_back(r);
                if recent.len() > RECENT {
                    recent.pop_front();
                }
            }
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("mlmon-trigger/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut registry = Registry::default();
        let actions_total = Family::<ActionLabels, Counter>::default();
        let notifications_total = Family::<ResultLabels, Counter>::default();
        registry.register(
            "mlmon_trigger_actions",
            "Action decisions by result: triggered, failed, suppressed (cooldown), dry_run, dropped (queue full)",
            actions_total.clone(),
        );
        registry.register(
            "mlmon_trigger_notifications",
            "Alertmanager notifications by result: accepted, unauthorized, invalid",
            notifications_total.clone(),
        );
        let (tx, rx) = mpsc::channel(cfg.config.queue);
        let app = Arc::new(Receiver {
            templates,
            last: Mutex::new(cooldowns),
            recent: Mutex::new(recent),
            record_file: record_file.map(Mutex::new),
            jobs: tx,
            client,
            registry,
            actions_total,
            notifications_total,
            cfg,
        });
        let slots = Arc::new(Semaphore::new(app.cfg.config.max_concurrent));
        let weak = Arc::downgrade(&app);
        tokio::spawn(dispatch(weak, rx, slots));
        Ok(app)
    }

    fn record(&self, r: Record) {
        self.actions_total
            .get_or_create(&ActionLabels {
                action: r.action.clone(),
                result: r.result.clone(),
            })
            .inc();
        tracing::info!(action = %r.action, key = %r.key, result = %r.result,
            detail = r.detail.as_deref().unwrap_or(""), "trigger decision");
        if let Some(f) = &self.record_file {
            if let Ok(mut f) = f.lock() {
                f.append(&r);
            }
        }
        if let Ok(mut recent) = self.recent.lock() {
            recent.push_back(r);
            while recent.len() > RECENT {
                recent.pop_front();
            }
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.cfg.token else {
            return true;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Constant-time comparison of the two digests.
        let a = <Sha256 as sha2::Digest>::digest(given.as_bytes());
        let b = <Sha256 as sha2::Digest>::digest(token.as_bytes());
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }

    /// Decides what to do with one notification; returns (jobs queued, suppressed, dropped).
    fn decide(&self, note: &Notification) -> (usize, usize, usize) {
        let (mut queued, mut suppressed, mut dropped) = (0, 0, 0);
        for alert in &note.alerts {
            for (i, action) in self.cfg.config.actions.iter().enumerate() {
                if alert.status == "resolved" && !action.on_resolved {
                    continue;
                }
                let matches = action.matchers.iter().all(|(label, want)| {
                    alert
                        .labels
                        .get(label)
                        .and_then(Value::as_str)
                        .is_some_and(|v| want.accepts(v))
                });
                if !matches {
                    continue;
                }
                let key = dedup_key(&action.name, &action.dedup_by, &alert.labels);
                let alertname = label(&alert.labels, "alertname");
                let cooldown = action.cooldown.unwrap_or(self.cfg.config.cooldown);
                let base = Record::new(
                    &action.name,
                    &key,
                    &alertname,
                    &alert.status,
                    &alert.fingerprint,
                );
                let now = base.unix;
                {
                    let Ok(mut last) = self.last.lock() else {
                        continue;
                    };
                    if let Some(at) = last.at.get(&key).copied() {
                        let left = at + cooldown.as_secs_f64() - now;
                        if left > 0.0 {
                            drop(last);
                            suppressed += 1;
                            self.record(Record {
                                result: "suppressed".into(),
                                detail: Some(format!(
                                    "cooldown: triggered {:.0}s ago, {:.0}s left",
                                    now - at,
                                    left
                                )),
                                ..base
                            });
                            continue;
                        }
                    }
                    last.set(&key, now);
                }
                let ctx = json!({
                    "alert": alert.raw,
                    "labels": alert.labels,
                    "annotations": alert.annotations,
                    "status": alert.status,
                    "receiver": note.receiver,
                    "externalURL": note.external_url,
                    "groupKey": note.group_key,
                    "action": action.name,
                });
                let job = Job {
                    action: i,
                    key: key.clone(),
                    ctx,
                    alertname,
                    status: alert.status.clone(),
                    fingerprint: alert.fingerprint.clone(),
                };
                let marked = now;
                if self.jobs.try_send(job).is_ok() {
                    queued += 1;
                } else {
                    if let Ok(mut last) = self.last.lock() {
                        last.clear(&key, marked);
                    }
                    dropped += 1;
                    self.record(Record {
                        result: "dropped".into(),
                        detail: Some(format!(
                            "{} actions already queued; Alertmanager will send it again",
                            self.cfg.config.queue
                        )),
                        ..base
                    });
                }
            }
        }
        (queued, suppressed, dropped)
    }

    async fn execute(&self, job: Job) {
        let action = &self.cfg.config.actions[job.action];
        let mut rec = Record::new(
            &action.name,
            &job.key,
            &job.alertname,
            &job.status,
            &job.fingerprint,
        );
        let rendered = match self.templates[job.action].render(action, &job.ctx) {
            Ok(r) => r,
            Err(e) => {
                self.forget(&job.key);
                rec.result = "failed".into();
                rec.detail = Some(e);
                return self.record(rec);
            }
        };
        rec.request = Some(match &rendered {
            Rendered::Http { method, url, body } => {
                json!({"method": method, "url": url, "body": serde_json::from_str::<Value>(body).unwrap_or(Value::Null)})
            }
            Rendered::Command(args) => json!({ "command": args }),
        });
        if self.cfg.config.dry_run {
            rec.result = "dry_run".into();
            return self.record(rec);
        }
        let outcome = match rendered {
            Rendered::Http { method, url, body } => {
                let delivery = uuid::Uuid::new_v4().to_string();
                rec.delivery = Some(delivery.clone());
                self.call(job.action, &method, &url, body, &delivery, action.timeout)
                    .await
            }
            Rendered::Command(args) => run_command(&args, &job.ctx, action.timeout).await,
        };
        match outcome {
            Ok(status) => {
                rec.result = "triggered".into();
                rec.http_status = status;
            }
            Err((status, detail)) => {
                // A failed action does not use up the cooldown: the next notification retries.
                self.forget(&job.key);
                rec.result = "failed".into();
                rec.http_status = status;
                rec.detail = Some(detail);
            }
        }
        self.record(rec);
    }

    fn forget(&self, key: &str) {
        if let Ok(mut last) = self.last.lock() {
            if let Some(at) = last.at.get(key).copied() {
                last.clear(key, at);
            }
        }
    }

    async fn call(
        &self,
        action: usize,
        method: &str,
        url: &str,
        body: String,
        delivery: &str,
        timeout: Duration,
    ) -> Result<Option<u16>, (Option<u16>, String)> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| (None, format!("bad method {method}")))?;
        let secrets = &self.cfg.secrets[action];
        let timestamp = format!("{}", now_unix() as u64);
        let mut req = self
            .client
            .request(method, url)
            .timeout(timeout)
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-Mlmon-Delivery", delivery)
            .header("X-Mlmon-Timestamp", &timestamp);
        for (name, value) in &secrets.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        if let Some(key) = &secrets.hmac_key {
            req = req.header("X-Mlmon-Signature-256", sign(key, &timestamp, &body));
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| (None, format!("{url}: {}", crate::error::error_chain(&e))))?;
        let status = resp.status();
        if status.is_success() {
            Ok(Some(status.as_u16()))
        } else {
            let text = resp.text().await.unwrap_or_default();
            let text: String = text.chars().take(STDERR_TAIL).collect();
            Err((
                Some(status.as_u16()),
                format!("{url} answered {status}: {text}"),
            ))
        }
    }
}

/// `sha256=<hex of HMAC-SHA256(key, timestamp + "." + body)>`: what a receiver recomputes
/// to check the call came from this trigger and was not replayed later (it checks the
/// timestamp is recent).
pub fn sign(key: &[u8], timestamp: &str, body: &str) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length; this cannot fail.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn run_command(
    args: &[String],
    ctx: &Value,
    timeout: Duration,
) -> Result<Option<u16>, (Option<u16>, String)> {
    let Some((program, rest)) = args.split_first() else {
        return Err((None, "empty command".into()));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest)
        .env(
            "MLMON_ALERT",
            ctx.get("alert").unwrap_or(&Value::Null).to_string(),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| (None, format!("cannot run {program}: {e}")))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err((None, format!("{program} did not finish within {timeout:?}"))),
        Ok(Err(e)) => Err((None, format!("{program}: {e}"))),
        Ok(Ok(out)) if out.status.success() => Ok(None),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: String = stderr
                .chars()
                .rev()
                .take(STDERR_TAIL)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err((
                None,
                format!("{program} exited with {}: {tail}", out.status),
            ))
        }
    }
}

async fn dispatch(
    app: std::sync::Weak<Receiver>,
    mut rx: mpsc::Receiver<Job>,
    slots: Arc<Semaphore>,
) {
    while let Some(job) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(app) = app.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            app.execute(job).await;
            drop(permit);
        });
    }
}

fn dedup_key(action: &str, by: &[String], labels: &serde_json::Map<String, Value>) -> String {
    let mut key = action.to_string();
    for name in by {
        key.push('|');
        key.push_str(name);
        key.push('=');
        key.push_str(&label(labels, name));
    }
    key
}

fn label(labels: &serde_json::Map<String, Value>, name: &str) -> String {
    labels
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The parts of Alertmanager's webhook payload (version 4) the receiver reads.
#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(default)]
    receiver: String,
    #[serde(default, rename = "externalURL")]
    external_url: String,
    #[serde(default, rename = "groupKey")]
    group_key: String,
    alerts: Vec<AlertIn>,
}

#[derive(Debug)]
struct AlertIn {
    status: String,
    labels: serde_json::Map<String, Value>,
    annotations: serde_json::Map<String, Value>,
    fingerprint: String,
    raw: Value,
}

impl<'de> Deserialize<'de> for AlertIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let obj = raw
            .as_object()
            .ok_or_else(|| serde::de::Error::custom("an alert must be an object"))?;
        let map = |k: &str| {
            obj.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Ok(AlertIn {
            status: text("status"),
            labels: map("labels"),
            annotations: map("annotations"),
            fingerprint: text("fingerprint"),
            raw,
        })
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

async fn notify(State(app): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let count = |result: &str| {
        app.notifications_total
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    };
    if !app.authorized(&headers) {
        count("unauthorized");
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let note: Notification = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            count("invalid");
            return error(
                StatusCode::BAD_REQUEST,
                format!("not an Alertmanager webhook notification: {e}"),
            );
        }
    };
    count("accepted");
    let (queued, suppressed, dropped) = app.decide(&note);
    let body = json!({"queued": queued, "suppressed": suppressed, "dropped": dropped});
    if dropped > 0 {
        // Alertmanager retries a notification answered 5xx.
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    } else {
        (StatusCode::OK, Json(body)).into_response()
    }
}

async fn recent(State(app): State<Arc<Receiver>>, headers: HeaderMap) -> Response {
    if !app.authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let records: Vec<Record> = app
        .recent
        .lock()
        .map(|r| r.iter().cloned().collect())
        .unwrap_or_default();
    Json(json!({"dry_run": app.cfg.config.dry_run, "records": records})).into_response()
}

async fn metrics(State(app): State<Arc<Receiver>>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &app.registry) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
