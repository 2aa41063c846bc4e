//! `mlmon trigger --config FILE`: the receiver's configuration (YAML or TOML).
//!
//! ```yaml
//! listen: 0.0.0.0:9466
//! token_env: TRIGGER_TOKEN          # Alertmanager must send `Authorization: Bearer <token>`
//! record_file: /var/lib/mlmon-trigger/triggered.jsonl
//! cooldown: 6h                      # default for every action
//! actions:
//!   - name: retrain
//!     match: {alertname: [MlmonFeatureDrift, MlmonPerformanceDrop], severity: critical}
//!     dedup_by: [alertname, model]
//!     http:
//!       url: https://argo.example.com/api/v1/workflows/ml/submit
//!       headers: {Authorization: "Bearer ${ARGO_TOKEN}"}
//!       body: '{"resourceKind": "WorkflowTemplate", "resourceName": "retrain",
//!               "submitOptions": {"parameters": [{{ ("model=" ~ labels.model) }}]}}'
//!       hmac_secret_env: TRIGGER_HMAC_SECRET
//! ```
//!
//! Every start-up error names the file and the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Largest Alertmanager notification accepted (Alertmanager's own default `max_alerts` is 0 =
/// unlimited; 1 MiB holds thousands of alerts).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// Where the receiver listens (Alertmanager's webhook URL points here).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer token Alertmanager must send (`http_config.authorization.credentials`).
    #[serde(default)]
    pub token: Option<String>,
    /// Name of an environment variable holding that token (for a Kubernetes Secret).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Append-only JSON Lines record of every decision; also read at start so cooldowns
    /// survive a restart.
    #[serde(default)]
    pub record_file: Option<PathBuf>,
    /// Render and record the actions but never send or run them.
    #[serde(default)]
    pub dry_run: bool,
    /// Default cooldown of an action: after it triggers for a key, the same key is
    /// suppressed for this long.
    #[serde(default = "default_cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
    /// Largest notification body accepted.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Actions running at once; more wait in a queue of `queue` entries, past which a
    /// notification is answered 503 (Alertmanager retries it).
    #[serde(default = "default_concurrency")]
    pub max_concurrent: usize,
    /// Queue of actions waiting for a slot.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// What to do for which alerts.
    pub actions: Vec<ActionConfig>,
}

/// One action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    /// Name used in the record and in `mlmon_trigger_actions_total{action}`.
    pub name: String,
    /// Label matchers: every key must be present with one of the listed values.
    #[serde(default, rename = "match")]
    pub matchers: BTreeMap<String, OneOrMany>,
    /// Labels whose values make the deduplication key (default `alertname`, `model`).
    #[serde(default = "default_dedup")]
    pub dedup_by: Vec<String>,
    /// Overrides the file's `cooldown`.
    #[serde(default, with = "humantime_serde")]
    pub cooldown: Option<Duration>,
    /// Also act on resolved alerts (default: firing only).
    #[serde(default)]
    pub on_resolved: bool,
    /// Time limit of one run of the action.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// An HTTP call.
    #[serde(default)]
    pub http: Option<HttpAction>,
    /// A command (no shell): program and arguments, each a template.
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

/// An HTTP call made by an action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    /// URL template (values are not escaped: use `|urlencode`).
    pub url: String,
    /// Method, default POST.
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra headers; `${NAME}` is replaced by the environment variable NAME at start.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body template: every `{{ value }}` is written as a JSON value (strings quoted and
    /// escaped), so label values cannot break out of the document. Default: the alert.
    #[serde(default)]
    pub body: Option<String>,
    /// Environment variable holding the HMAC-SHA256 key; the call then carries
    /// `X-Mlmon-Signature-256: sha256=<hex of HMAC(key, timestamp + "." + body)>` and
    /// `X-Mlmon-Timestamp`.
    #[serde(default)]
    pub hmac_secret_env: Option<String>,
}

/// A matcher value: one string or a list of alternatives.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Any of these.
    Many(Vec<String>),
}

impl OneOrMany {
    /// Whether `value` is one of the alternatives.
    pub fn accepts(&self, value: &str) -> bool {
        match self {
            OneOrMany::One(v) => v == value,
            OneOrMany::Many(vs) => vs.iter().any(|v| v == value),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9466".into()
}
fn default_cooldown() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn default_concurrency() -> usize {
    4
}
fn default_queue() -> usize {
    64
}
fn default_dedup() -> Vec<String> {
    vec!["alertname".into(), "model".into()]
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_method() -> String {
    "POST".into()
}

/// Start-up errors: each names the file and, where it can, the key.
#[derive(Debug, thiserror::Error)]
pub enum TriggerConfigError {
    /// The file could not be read or parsed.
    #[error("{file}: {message}")]
    File {
        /// The config file.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// A value is wrong.
    #[error("{file}: {key}: {message}")]
    Key {
        /// The config file.
        file: String,
        /// Dotted key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The configuration with secrets resolved and templates compiled-checked.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The parsed file.
    pub config: TriggerConfig,
    /// The listen address.
    pub listen: SocketAddr,
    /// The bearer token, if any.
    pub token: Option<String>,
    /// Per action (same order): its header values and HMAC key with `${VAR}`s resolved.
    pub secrets: Vec<ActionSecrets>,
}

/// Secrets of one action, resolved from the environment at start.
#[derive(Debug, Clone, Default)]
pub struct ActionSecrets {
    /// Headers with `${VAR}` replaced.
    pub headers: Vec<(String, String)>,
    /// HMAC key.
    pub hmac_key: Option<Vec<u8>>,
}

impl TriggerConfig {
    /// Reads `file` (YAML or TOML by extension) and checks every value.
    pub fn load(file: &Path) -> Result<Resolved, TriggerConfigError> {
        Self::load_with_env(file, &|name| std::env::var(name).ok())
    }

    /// [`TriggerConfig::load`] with the environment given (tests).
    pub fn load_with_env(
        file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Resolved, TriggerConfigError> {
        let shown = file.display().to_string();
        let file_err = |message: String| TriggerConfigError::File {
            file: shown.clone(),
            message,
        };
        if !file.is_file() {
            return Err(file_err("no such file".into()));
        }
        let config: TriggerConfig = config::Config::builder()
            .add_source(config::File::from(file))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| file_err(e.to_string()))?;
        config.resolve(&shown, env)
    }

    fn resolve(
        self,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Resolved, TriggerConfigError> {
        let key_err = |key: String, message: String| TriggerConfigError::Key {
            file: file.to_string(),
            key,
            message,
        };
        let listen: SocketAddr = self.listen.parse().map_err(|e| {
            key_err(
                "listen".into(),
                format!("{:?} is not an address: {e}", self.listen),
            )
        })?;
        let token = match (&self.token, &self.token_env) {
            (Some(t), None) => Some(t.clone()),
            (None, Some(var)) => Some(
                env(var)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| key_err("token_env".into(), format!("{var} is not set")))?,
            ),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(key_err(
                    "token".into(),
                    "set token or token_env, not both".into(),
                ))
            }
        };
        if self.actions.is_empty() {
            return Err(key_err("actions".into(), "no action configured".into()));
        }
        if self.max_concurrent == 0 || self.queue == 0 {
            return Err(key_err(
                "max_concurrent".into(),
                "max_concurrent and queue must be at least 1".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        let mut secrets = Vec::new();
        for (i, action) in self.actions.iter().enumerate() {
            let at = format!("actions[{i}]");
            if action.name.is_empty() || action.name.len() > 64 {
                return Err(key_err(
                    format!("{at}.name"),
                    "must be 1 to 64 characters".into(),
                ));
            }
            if !names.insert(action.name.clone()) {
                return Err(key_err(
                    format!("{at}.name"),
                    format!("{:?} is used twice", action.name),
                ));
            }
            match (&action.http, &action.command) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(key_err(
                        at.clone(),
                        "give exactly one of `http` and `command`".into(),
                    ))
                }
            }
            if action.command.as_ref().is_some_and(|c| c.is_empty()) {
                return Err(key_err(format!("{at}.command"), "is empty".into()));
            }
            let mut resolved = ActionSecrets::default();
            if let Some(http) = &action.http {
                reqwest::Method::from_bytes(http.method.as_bytes()).map_err(|_| {
                    key_err(
                        format!("{at}.http.method"),
                        format!("{:?} is not an HTTP method", http.method),
                    )
                })?;
                for (name, value) in &http.headers {
                    let value = expand_env(value, env).map_err(|var| {
                        key_err(
                            format!("{at}.http.headers.{name}"),
                            format!("environment variable {var} is not set"),
                        )
                    })?;
                    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        key_err(
                            format!("{at}.http.headers.{name}"),
                            "not a header name".into(),
                        )
                    })?;
                    http::HeaderValue::from_str(&value).map_err(|_| {
                        key_err(
                            format!("{at}.http.headers.{name}"),
                            "not a header value".into(),
                        )
                    })?;
                    resolved.headers.push((name.clone(), value));
                }
                if let Some(var) = &http.hmac_secret_env {
                    let key = env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                        key_err(
                            format!("{at}.http.hmac_secret_env"),
                            format!("{var} is not set"),
                        )
                    })?;
                    resolved.hmac_key = Some(key.into_bytes());
                }
            }
            let templates = super::template::Templates::compile(action).map_err(|(k, m)| {
                key_err(
                    format!("{at}.{k}"),
                    format!("template does not compile: {m}"),
                )
            })?;
            drop(templates);
            secrets.push(resolved);
        }
        Ok(Resolved {
            config: self,
            listen,
            token,
            secrets,
        })
    }
}

/// Replaces every `${NAME}` by the variable's value; `Err(NAME)` when one is unset.
fn expand_env(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(&env(name).ok_or_else(|| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trigger.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "ARGO" => Some("s3cr3t".into()),
            "HMAC" => Some("key".into()),
            _ => None,
        }
    }

    #[test]
    fn a_full_config_resolves_secrets_from_the_environment() {
        let (_d, path) = write(
            "listen: 127.0.0.1:0\ncooldown: 2h\nactions:\n  - name: retrain\n    match: {alertname: [A, B], severity: critical}\n    http:\n      url: http://x/\n      headers: {Authorization: 'Bearer ${ARGO}'}\n      hmac_secret_env: HMAC\n",
        );
        let r = TriggerConfig::load_with_env(&path, &env).unwrap();
        assert_eq!(r.config.cooldown, Duration::from_secs(7200));
        assert_eq!(
            r.secrets[0].headers,
            [("Authorization".to_string(), "Bearer s3cr3t".to_string())]
        );
        assert_eq!(r.secrets[0].hmac_key.as_deref(), Some(&b"key"[..]));
        assert!(r.config.actions[0].matchers["alertname"].accepts("B"));
        assert!(!r.config.actions[0].matchers["severity"].accepts("warning"));
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        for (text, needle) in [
            ("actions: []\n", "actions: no action configured"),
            (
                "actions:\n  - name: a\n    http: {url: 'http://x/', headers: {X: '${NOPE}'}}\n",
                "actions[0].http.headers.X: environment variable NOPE is not set",
            ),
            (
                "actions:\n  - name: a\n    command: [echo]\n    http: {url: 'http://x/'}\n",
                "actions[0]: give exactly one",
            ),
            (
                "actions:\n  - name: a\n    http: {url: 'http://x/', body: '{{ labels.'}\n",
                "actions[0].http.body: template does not compile",
            ),
            (
                "listen: nowhere\nactions: []\n",
                "listen: \"nowhere\" is not an address",
            ),
            ("colour: red\nactions: []\n", "unknown field `colour`"),
            (
                "actions:\n  - {name: a, command: [x]}\n  - {name: a, command: [y]}\n",
                "actions[1].name: \"a\" is used twice",
            ),
        ] {
            let (_d, path) = write(text);
            let e = TriggerConfig::load_with_env(&path, &env)
                .unwrap_err()
                .to_string();
            assert!(e.contains("trigger.yaml"), "{e}");
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
