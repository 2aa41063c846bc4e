//! MLflow integration over the tracking server's REST API (no Python at run time):
//! - `mlmon baseline build --from-mlflow runs:/<run_id>/<path>` or
//!   `models:/<name>/<version>[/<path>]` (or `models:/<name>@<alias>[/<path>]`) downloads the
//!   dataset logged with the run and builds the snapshot from it; `--log-to-mlflow` logs the
//!   snapshot back to that run as `mlmon/<file>`;
//! - `mlmon drift --mlflow-run ID` and `mlmon performance --mlflow-run ID` log their figures as
//!   run metrics (and the JSON report as an artifact), so drift shows beside training metrics.
//!
//! The server comes from `--mlflow-tracking-uri` or `MLFLOW_TRACKING_URI`; credentials from
//! `MLFLOW_TRACKING_TOKEN` (bearer) or `MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD`
//! (basic), as MLflow's own clients read them. docs/mlflow.md is the user's guide.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Largest artifact downloaded (a training set for a baseline).
pub const MAX_DOWNLOAD_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// MLflow's `log-batch` limit of entities per call.
const BATCH: usize = 1000;
/// MLflow's metric key length limit.
const MAX_KEY: usize = 250;
/// Files looked at when a `models:/` URI names no artifact path.
const MAX_LISTED: usize = 1000;

/// Flags shared by the commands that talk to MLflow.
#[derive(Debug, Clone, clap::Args)]
pub struct TrackingArgs {
    /// MLflow tracking server URL (default: the MLFLOW_TRACKING_URI environment variable).
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub mlflow_tracking_uri: Option<String>,
}

/// What went wrong talking to MLflow; every message names the URL or the URI.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// No tracking server configured.
    #[error("no MLflow tracking server: give --mlflow-tracking-uri or set MLFLOW_TRACKING_URI")]
    NoServer,
    /// A URI or answer that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// The server answered an error.
    #[error("MLflow {url} answered {status}: {message}")]
    Http {
        /// The URL called (no credentials in it).
        url: String,
        /// The status.
        status: u16,
        /// MLflow's error message.
        message: String,
    },
    /// The server could not be reached.
    #[error("MLflow {url}: {message}")]
    Transport {
        /// The URL called.
        url: String,
        /// The error chain.
        message: String,
    },
    /// A local file could not be written or read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// A client of one tracking server.
#[derive(Debug, Clone)]
pub struct Client {
    base: reqwest::Url,
    http: reqwest::Client,
    token: Option<String>,
    basic: Option<(String, String)>,
}

/// A run's artifact and where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// The run holding it.
    pub run_id: String,
    /// Path inside the run's artifacts.
    pub path: String,
}

impl Client {
    /// A client of `uri` (or `MLFLOW_TRACKING_URI`), with MLflow's credential variables.
    pub fn new(uri: Option<&str>) -> Result<Self, MlflowError> {
        let uri = uri
            .map(str::to_string)
            .or_else(|| std::env::var("MLFLOW_TRACKING_URI").ok())
            .filter(|u| !u.is_empty())
            .ok_or(MlflowError::NoServer)?;
        let mut base = reqwest::Url::parse(&uri).map_err(|e| {
            MlflowError::Invalid(format!("MLflow tracking URI {uri:?} is not a URL: {e}"))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(MlflowError::Invalid(format!(
                "MLflow tracking URI {uri:?}: only an http(s) tracking server is supported"
            )));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("mlmon/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| MlflowError::Invalid(format!("HTTP client: {e}")))?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Ok(Client {
            base,
            http,
            token: env("MLFLOW_TRACKING_TOKEN"),
            basic: env("MLFLOW_TRACKING_USERNAME").zip(env("MLFLOW_TRACKING_PASSWORD")),
        })
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, MlflowError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| MlflowError::Invalid(format!("{path}: {e}")))
    }

    /// `…/api/2.0/mlflow-artifacts/artifacts/<root>/<path>`, each segment percent-encoded.
    fn artifact_url(&self, root: &str, path: &str) -> Result<reqwest::Url, MlflowError> {
        let mut url = self.url("api/2.0/mlflow-artifacts/artifacts")?;
        url.path_segments_mut()
            .map_err(|_| MlflowError::Invalid(format!("{}: not a base URL", self.base)))?
            .pop_if_empty()
            .extend(
                root.split('/')
                    .chain(path.split('/'))
                    .filter(|s| !s.is_empty()),
            );
        Ok(url)
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.token, &self.basic) {
            (Some(t), _) => req.bearer_auth(t),
            (None, Some((u, p))) => req.basic_auth(u, Some(p)),
            _ => req,
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &reqwest::Url,
    ) -> Result<reqwest::Response, MlflowError> {
        let shown = url.as_str().to_string();
        let resp = self
            .auth(req)
            .send()
            .await
            .map_err(|e| MlflowError::Transport {
                url: shown.clone(),
                message: crate::error::error_chain(&e),
            })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(300).collect());
        Err(MlflowError::Http {
            url: shown,
            status,
            message,
        })
    }

    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, MlflowError> {
        let url = self.url(path)?;
        let resp = self
            .send(self.http.get(url.clone()).query(query), &url)
            .await?;
        resp.json().await.map_err(|e| MlflowError::Transport {
            url: url.to_string(),
            message: format!("answer is not JSON: {e}"),
        })
    }

    async fn post_json(&self, path: &str, body: &Value) -> Result<Value, MlflowError> {
        let url = self.url(path)?;
        let resp = self
            .send(self.http.post(url.clone()).json(body), &url)
            .await?;
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// The run's artifact root (`runs/get`).
    pub async fn artifact_uri(&self, run_id: &str) -> Result<String, MlflowError> {
        let run = self
            .get_json("api/2.0/mlflow/runs/get", &[("run_id", run_id)])
            .await?;
        run.pointer("/run/info/artifact_uri")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| MlflowError::Invalid(format!("run {run_id} has no artifact_uri")))
    }

    /// Resolves `runs:/…` and `models:/…` to a run and an artifact path (listing the run's
    /// artifacts when a `models:/` URI names none).
    pub async fn locate(&self, source: &str) -> Result<Located, MlflowError> {
        if let Some(rest) = source.strip_prefix("runs:/") {
            let rest = rest.trim_start_matches('/');
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            if run_id.is_empty() || path.is_empty() {
                return Err(MlflowError::Invalid(format!(
                    "{source:?}: expected runs:/<run_id>/<artifact path>"
                )));
            }
            return Ok(Located {
                run_id: run_id.to_string(),
                path: path.trim_matches('/').to_string(),
            });
        }
        let Some(rest) = source.strip_prefix("models:/") else {
            return Err(MlflowError::Invalid(format!(
                "{source:?}: expected runs:/<run_id>/<path> or models:/<name>/<version>[/<path>]"
            )));
        };
        let rest = rest.trim_start_matches('/');
        let (name_ref, path) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
        let version = if let Some((name, alias)) = name_ref.split_once('@') {
            self.get_json(
                "api/2.0/mlflow/registered-models/alias",
                &[("name", name), ("alias", alias)],
            )
            .await?
        } else {
            let (version, path2) = path.split_once('/').unwrap_or((path, ""));
            if version.is_empty() {
                return Err(MlflowError::Invalid(format!(
                    "{source:?}: expected models:/<name>/<version>[/<path>] or models:/<name>@<alias>[/<path>]"
                )));
            }
            let mv = self
                .get_json(
                    "api/2.0/mlflow/model-versions/get",
                    &[("name", name_ref), ("version", version)],
                )
                .await?;
            return self.located_in(source, &mv, path2).await;
        };
        self.located_in(source, &version, path).await
    }

    async fn located_in(
        &self,
        source: &str,
        model_version: &Value,
        path: &str,
    ) -> Result<Located, MlflowError> {
        let run_id = model_version
            .pointer("/model_version/run_id")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                MlflowError::Invalid(format!(
                    "{source}: the model version is not linked to a run; use runs:/<run_id>/<path>"
                ))
            })?
            .to_string();
        let path = path.trim_matches('/');
        if !path.is_empty() {
            return Ok(Located {
                run_id,
                path: path.to_string(),
            });
        }
        let data = self.data_files(&run_id).await?;
        match data.as_slice() {
            [one] => Ok(Located {
                run_id,
                path: one.clone(),
            }),
            [] => Err(MlflowError::Invalid(format!(
                "{source}: run {run_id} has no .csv, .jsonl or .parquet artifact; name one: {source}/<path>"
            ))),
            many => Err(MlflowError::Invalid(format!(
                "{source}: run {run_id} has several data artifacts ({}); name one: {source}/<path>",
                many.join(", ")
            ))),
        }
    }

    /// Data files (.csv, .jsonl, .parquet) among the run's artifacts, at most three levels
    /// deep, outside the `mlmon/` folder mlmon logs to.
    async fn data_files(&self, run_id: &str) -> Result<Vec<String>, MlflowError> {
        let mut found = Vec::new();
        let mut dirs = vec![(String::new(), 0)];
        let mut seen = 0;
        while let Some((dir, depth)) = dirs.pop() {
            let mut query = vec![("run_id", run_id)];
            if !dir.is_empty() {
                query.push(("path", dir.as_str()));
            }
            let list = self
                .get_json("api/2.0/mlflow/artifacts/list", &query)
                .await?;
            for f in list
                .get("files")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                seen += 1;
                if seen > MAX_LISTED {
                    return Ok(found);
                }
                let Some(p) = f.get("path").and_then(Value::as_str) else {
                    continue;
                };
                if f.get("is_dir").and_then(Value::as_bool).unwrap_or(false) {
                    // mlmon's own artifacts (snapshots, reports) are not training data.
                    if depth < 2 && p != "mlmon" {
                        dirs.push((p.to_string(), depth + 1));
                    }
                } else if crate::baseline::InputFormat::from_path(Path::new(p)).is_some() {
                    found.push(p.to_string());
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Downloads one artifact into `dir` (keeping its file name, so the format is known from
    /// the extension); returns the file.
    pub async fn download(&self, at: &Located, dir: &Path) -> Result<PathBuf, MlflowError> {
        let root = self.artifact_uri(&at.run_id).await?;
        let name = Path::new(&at.path)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "artifact".into());
        let dest = dir.join(name);
        // A local artifact root (a file store on this machine) is read directly.
        if let Some(local) = local_root(&root) {
            let src = local.join(&at.path);
            std::fs::copy(&src, &dest).map_err(|e| MlflowError::Io {
                path: src.display().to_string(),
                message: e.to_string(),
            })?;
            return Ok(dest);
        }
        let url = match proxied_path(&root) {
            Some(p) => self.artifact_url(&p, &at.path)?,
            None => {
                let mut u = self.url("get-artifact")?;
                u.query_pairs_mut()
                    .append_pair("path", &at.path)
                    .append_pair("run_uuid", &at.run_id);
                u
            }
        };
        let mut resp = self.send(self.http.get(url.clone()), &url).await?;
        let mut file = std::fs::File::create(&dest).map_err(|e| MlflowError::Io {
            path: dest.display().to_string(),
            message: e.to_string(),
        })?;
        let mut written: u64 = 0;
        while let Some(chunk) = resp.chunk().await.map_err(|e| MlflowError::Transport {
            url: url.to_string(),
            message: crate::error::error_chain(&e),
        })? {
            written += chunk.len() as u64;
            if written > MAX_DOWNLOAD_BYTES {
                return Err(MlflowError::Invalid(format!(
                    "{url}: artifact larger than {MAX_DOWNLOAD_BYTES} bytes"
                )));
            }
            std::io::Write::write_all(&mut file, &chunk).map_err(|e| MlflowError::Io {
                path: dest.display().to_string(),
                message: e.to_string(),
            })?;
        }
        Ok(dest)
    }

    /// Logs `bytes` as the run's artifact `path` (through the server's artifact proxy, or
    /// into a local artifact root).
    pub async fn upload(
        &self,
        run_id: &str,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), MlflowError> {
        let root = self.artifact_uri(run_id).await?;
        if let Some(local) = local_root(&root) {
            let dest = local.join(path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| MlflowError::Io {
                    path: parent.display().to_string(),
                    message: e.to_string(),
                })?;
            }
            return std::fs::write(&dest, bytes).map_err(|e| MlflowError::Io {
                path: dest.display().to_string(),
                message: e.to_string(),
            });
        }
        let Some(p) = proxied_path(&root) else {
            return Err(MlflowError::Invalid(format!(
                "run {run_id}'s artifacts are in {root}, which mlmon can only reach through the \
                 tracking server's artifact proxy (start it with --serve-artifacts)"
            )));
        };
        let url = self.artifact_url(&p, path)?;
        self.send(self.http.put(url.clone()).body(bytes), &url)
            .await
            .map(|_| ())
    }

    /// Logs metrics `(key, value, step)` and tags to a run, in batches MLflow accepts.
    pub async fn log(
        &self,
        run_id: &str,
        metrics: &[(String, f64, i64)],
        tags: &[(String, String)],
    ) -> Result<(), MlflowError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let metrics: Vec<Value> = metrics
            .iter()
            .filter(|(_, v, _)| v.is_finite())
            .map(|(k, v, step)| json!({"key": metric_key(k), "value": v, "timestamp": timestamp, "step": step}))
            .collect();
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        for chunk in metrics.chunks(BATCH) {
            self.post_json(
                "api/2.0/mlflow/runs/log-batch",
                &json!({"run_id": run_id, "metrics": chunk}),
            )
            .await?;
        }
        if !tags.is_empty() {
            for chunk in tags.chunks(100) {
                self.post_json(
                    "api/2.0/mlflow/runs/log-batch",
                    &json!({"run_id": run_id, "tags": chunk}),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// A metric key MLflow accepts: letters, digits, `_ - . / ` and space; others become `_`.
pub fn metric_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_KEY)
        .collect()
}

/// `mlflow-artifacts:/0/<run>/artifacts` or `mlflow-artifacts://host:port/0/…` → `0/<run>/artifacts`.
fn proxied_path(root: &str) -> Option<String> {
    let rest = root.strip_prefix("mlflow-artifacts:")?;
    let rest = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
        None => rest,
    };
    Some(rest.trim_matches('/').to_string())
}

/// `file:///x` or `/x` that exists on this machine.
fn local_root(root: &str) -> Option<PathBuf> {
    let p = if let Some(rest) = root.strip_prefix("file://") {
        PathBuf::from(rest)
    } else if root.starts_with('/') {
        PathBuf::from(root)
    } else {
        return None;
    };
    p.is_dir().then_some(p)
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T, MlflowError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MlflowError::Invalid(format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(f))
}

/// A temporary directory removed when dropped.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, MlflowError> {
        let p = std::env::temp_dir().join(format!("mlmon-mlflow-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).map_err(|e| MlflowError::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Downloads the data behind `source` (`runs:/…`, `models:/…`); returns the scratch
/// directory (keep it alive while reading), the file and where it came from.
pub fn fetch(uri: Option<&str>, source: &str) -> Result<(Scratch, PathBuf, Located), MlflowError> {
    let client = Client::new(uri)?;
    let scratch = Scratch::new()?;
    let (file, at) = block_on(async {
        let at = client.locate(source).await?;
        let file = client.download(&at, &scratch.0).await?;
        Ok::<_, MlflowError>((file, at))
    })??;
    Ok((scratch, file, at))
}

/// Logs a baseline snapshot file to a run as `mlmon/<file name>`, with tags naming it.
pub fn log_baseline(
    uri: Option<&str>,
    run_id: &str,
    file: &Path,
    snapshot_id: &str,
    rows: u64,
) -> Result<String, MlflowError> {
    let client = Client::new(uri)?;
    let bytes = std::fs::read(file).map_err(|e| MlflowError::Io {
        path: file.display().to_string(),
        message: e.to_string(),
    })?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "baseline.json".into());
    let path = format!("mlmon/{name}");
    block_on(async {
        client.upload(run_id, &path, bytes).await?;
        client
            .log(
                run_id,
                &[],
                &[
                    ("mlmon.baseline_id".into(), snapshot_id.into()),
                    ("mlmon.baseline_rows".into(), rows.to_string()),
                    ("mlmon.baseline_artifact".into(), path.clone()),
                ],
            )
            .await
    })??;
    Ok(path)
}

/// Metrics of an offline drift report (`GET …/drift` JSON): `mlmon.drift.score`,
/// `mlmon.drift.status` (0 ok, 1 warning, 2 critical), `mlmon.drift.features_drifted`, and
/// per feature `mlmon.drift.<input|output>.<feature>.<statistic>` and `.status`.
pub fn drift_metrics(report: &Value) -> Vec<(String, f64, i64)> {
    let mut out = Vec::new();
    if let Some(s) = report.get("drift_score").and_then(Value::as_f64) {
        out.push(("mlmon.drift.score".into(), s, 0));
    }
    if let Some(s) = report.get("status").and_then(status_code) {
        out.push(("mlmon.drift.status".into(), s, 0));
    }
    let mut drifted = 0.0;
    for f in report
        .get("features")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(kind)) = (
            f.get("feature").and_then(Value::as_str),
            f.get("kind").and_then(Value::as_str),
        ) else {
            continue;
        };
        for stat in [
            "psi",
            "js_divergence",
            "ks_statistic",
            "ks_pvalue",
            "wasserstein",
            "chi2_pvalue",
        ] {
            if let Some(v) = f.get(stat).and_then(Value::as_f64) {
                out.push((format!("mlmon.drift.{kind}.{name}.{stat}"), v, 0));
            }
        }
        if let Some(s) = f.get("status").and_then(status_code) {
            if s > 0.0 {
                drifted += 1.0;
            }
            out.push((format!("mlmon.drift.{kind}.{name}.status"), s, 0));
        }
    }
    out.push(("mlmon.drift.features_drifted".into(), drifted, 0));
    out
}

/// Metrics of an offline performance report: per chunk (the step),
/// `mlmon.performance.<realized|estimated|sampling_error>.<metric>` and `.status`.
pub fn performance_metrics(report: &Value) -> Vec<(String, f64, i64)> {
    let mut out = Vec::new();
    for c in report
        .get("chunks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let step = c.get("index").and_then(Value::as_i64).unwrap_or(0);
        for part in ["realized", "estimated", "sampling_error"] {
            for (m, v) in c.get(part).and_then(Value::as_object).into_iter().flatten() {
                if let Some(v) = v.as_f64() {
                    out.push((format!("mlmon.performance.{part}.{m}"), v, step));
                }
            }
        }
        if let Some(s) = c.get("status").and_then(status_code) {
            out.push(("mlmon.performance.status".into(), s, step));
        }
        if let Some(r) = c.get("rows").and_then(Value::as_f64) {
            out.push(("mlmon.performance.rows".into(), r, step));
        }
    }
    out
}

fn status_code(v: &Value) -> Option<f64> {
    match v.as_str()? {
        "ok" => Some(0.0),
        "warning" => Some(1.0),
        "critical" => Some(2.0),
        _ => None,
    }
}

/// Logs a report's metrics (`metrics` of its JSON: [`drift_metrics`],
/// [`performance_metrics`]) to a run, and the report itself as `mlmon/<artifact>`.
pub fn log_report<T: serde::Serialize>(
    uri: Option<&str>,
    run_id: &str,
    report: &T,
    metrics: fn(&Value) -> Vec<(String, f64, i64)>,
    artifact: &str,
) -> Result<(), MlflowError> {
    let json =
        serde_json::to_value(report).map_err(|e| MlflowError::Invalid(format!("report: {e}")))?;
    let metrics = metrics(&json);
    let client = Client::new(uri)?;
    let bytes = serde_json::to_vec_pretty(&json)
        .map_err(|e| MlflowError::Invalid(format!("report: {e}")))?;
    block_on(async {
        client.log(run_id, &metrics, &[]).await?;
        client
            .upload(run_id, &format!("mlmon/{artifact}"), bytes)
            .await
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_roots_and_keys() {
        assert_eq!(
            proxied_path("mlflow-artifacts:/0/abc/artifacts").as_deref(),
            Some("0/abc/artifacts")
        );
        assert_eq!(
            proxied_path("mlflow-artifacts://127.0.0.1:5000/1/r/artifacts").as_deref(),
            Some("1/r/artifacts")
        );
        assert_eq!(proxied_path("s3://bucket/x"), None);
        assert_eq!(
            metric_key("mlmon.drift.input.mean radius (cm)²"),
            "mlmon.drift.input.mean radius _cm__"
        );
        assert_eq!(metric_key(&"x".repeat(400)).len(), 250);
        let c = Client::new(Some("http://127.0.0.1:5000/mlflow")).unwrap();
        assert_eq!(
            c.artifact_url("0/r/artifacts", "data/my file#1.csv").unwrap().as_str(),
            "http://127.0.0.1:5000/mlflow/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/data/my%20file%231.csv"
        );
    }

    #[test]
    fn drift_and_performance_reports_become_metrics() {
        let drift = json!({"drift_score": 0.5, "status": "critical", "features": [
            {"feature": "age", "kind": "input", "psi": 0.3, "ks_statistic": 0.2, "status": "critical"},
            {"feature": "prediction", "kind": "output", "psi": 0.01, "status": "ok"}]});
        let m = drift_metrics(&drift);
        assert!(m.contains(&("mlmon.drift.input.age.psi".into(), 0.3, 0)));
        assert!(m.contains(&("mlmon.drift.status".into(), 2.0, 0)));
        assert!(m.contains(&("mlmon.drift.features_drifted".into(), 1.0, 0)));
        let perf = json!({"chunks": [{"index": 3, "rows": 10, "realized": {"accuracy": 0.9},
                   "estimated": {"accuracy": 0.8}, "sampling_error": {"accuracy": 0.05}, "status": "warning"}]});
        let m = performance_metrics(&perf);
        assert!(m.contains(&("mlmon.performance.estimated.accuracy".into(), 0.8, 3)));
        assert!(m.contains(&("mlmon.performance.status".into(), 1.0, 3)));
    }

    #[test]
    fn uris_are_checked_before_any_call() {
        let c = Client::new(Some("http://127.0.0.1:9/")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for bad in ["runs:/", "runs:/abc", "s3://x", "models:/"] {
            let e = rt.block_on(c.locate(bad)).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        assert_eq!(
            rt.block_on(c.locate("runs:/abc/data/train.csv")).unwrap(),
            Located {
                run_id: "abc".into(),
                path: "data/train.csv".into()
            }
        );
        assert!(matches!(
            Client::new(Some("ftp://x")),
            Err(MlflowError::Invalid(_))
        ));
    }
}
