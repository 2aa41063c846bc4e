//! Where the configuration comes from, in increasing precedence: defaults, the config file,
//! `MLMON_` environment variables, command-line flags (SPEC section 1, revision 2).
//!
//! Every start-up error names where the offending value came from — the file, the
//! environment variable or the flag — then the key, then what is wrong with the value.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::keys::{self, KeyKind, ENTRY};
use super::Config;
use crate::error::ConfigError;

/// Environment variable prefix: `MLMON_DRIFT__WINDOW=15m` sets `drift.window`.
pub const ENV_PREFIX: &str = "MLMON";

/// Separator of nested keys in environment variable names (`MLMON_DRIFT__WINDOW`).
const ENV_SEPARATOR: &str = "__";

/// Values given on the command line; they override everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--upstream`.
    pub upstream: Option<String>,
    /// `--admin-listen`.
    pub admin_listen: Option<String>,
    /// `--baseline` (repeatable); replaces `baseline.files` when non-empty.
    pub baseline_files: Vec<PathBuf>,
    /// `--model`.
    pub model: Option<String>,
}

impl Overrides {
    /// `(key, flag, value)` of every flag given.
    fn given(&self) -> Vec<(&'static str, &'static str, config::ValueKind)> {
        let mut out = Vec::new();
        for (key, flag, value) in [
            ("listen", "--listen", &self.listen),
            ("upstream", "--upstream", &self.upstream),
            ("admin_listen", "--admin-listen", &self.admin_listen),
            ("model.name", "--model", &self.model),
        ] {
            if let Some(v) = value {
                out.push((key, flag, config::ValueKind::String(v.clone())));
            }
        }
        if !self.baseline_files.is_empty() {
            let files = self
                .baseline_files
                .iter()
                .map(|p| config::Value::new(None, p.display().to_string()))
                .collect();
            out.push((
                "baseline.files",
                "--baseline",
                config::ValueKind::Array(files),
            ));
        }
        out
    }
}

/// One `MLMON_` variable that addresses a configuration key.
#[derive(Debug, Clone)]
struct EnvVar {
    /// Dotted key (`drift.window`).
    key: String,
    /// The variable's name as set (`MLMON_DRIFT__WINDOW`).
    name: String,
    /// Its value, unparsed: the target field's type decides (so a token `0123` stays a string).
    value: String,
    /// Comma-separated list key.
    list: bool,
}

/// The `MLMON_*` variables as a `config` source. Values stay strings; lists are split at
/// commas for the keys whose type is a list ([`KeyKind::List`]).
#[derive(Debug, Clone)]
struct EnvSource(Vec<EnvVar>);

impl config::Source for EnvSource {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        let mut m = config::Map::new();
        for v in &self.0 {
            let origin = format!("environment variable {}", v.name);
            let kind = if v.list {
                config::ValueKind::Array(
                    v.value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| config::Value::new(Some(&origin), s.to_string()))
                        .collect(),
                )
            } else {
                config::ValueKind::String(v.value.clone())
            };
            m.insert(v.key.clone(), config::Value::new(Some(&origin), kind));
        }
        Ok(m)
    }
}

/// Whether a key path matches a pattern from [`keys::keys`] (`<name>` matches any segment).
fn matches(pattern: &str, key: &str) -> bool {
    let (mut p, mut k) = (pattern.split('.'), key.split('.'));
    loop {
        match (p.next(), k.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == ENTRY || a == b => {}
            _ => return false,
        }
    }
}

/// The `MLMON_*` variables that configure mlmon. A variable whose first segment is not a
/// section of [`Config`] is ignored rather than refused: Kubernetes injects
/// `MLMON_SERVICE_HOST`, `MLMON_PORT`, … for a Service called `mlmon`, and those must not
/// stop the sidecar. The sections are read from the types ([`keys::sections`]).
fn env_vars(vars: impl Iterator<Item = (String, String)>) -> Result<Vec<EnvVar>, String> {
    let sections = keys::sections()?;
    let all = keys::keys()?;
    let prefix = format!("{ENV_PREFIX}_");
    let mut out: Vec<EnvVar> = vars
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(&prefix)?;
            let key = rest.to_ascii_lowercase().replace(ENV_SEPARATOR, ".");
            let first = key.split('.').next().unwrap_or_default();
            if !sections.contains(&first) {
                return None;
            }
            let list = all
                .iter()
                .any(|k| k.kind == KeyKind::List && matches(&k.path, &key));
            Some(EnvVar {
                key,
                name,
                value,
                list,
            })
        })
        .collect();
    // Deterministic order, so that two spellings of one key resolve the same way every run.
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Which source set a key, for error messages.
struct Origins<'a> {
    file: Option<&'a Path>,
    env: &'a [EnvVar],
    flags: Vec<(&'static str, &'static str)>,
}

impl Origins<'_> {
    /// The source whose value is in force for `key` (flags, then env, then the file).
    fn of(&self, key: &str) -> String {
        // `key` itself, or a list element / field below it.
        let covers = |k: &str| {
            key == k
                || key
                    .strip_prefix(k)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        };
        if let Some((_, flag)) = self.flags.iter().find(|(k, _)| covers(k)) {
            return format!("flag {flag}");
        }
        if let Some(v) = self.env.iter().find(|v| covers(&v.key)) {
            return format!("environment variable {}", v.name);
        }
        // A table assembled from several variables (a missing field, say).
        let below: Vec<&str> = self
            .env
            .iter()
            .filter(|v| v.key.starts_with(&format!("{key}.")))
            .map(|v| v.name.as_str())
            .collect();
        match (self.file, below.is_empty()) {
            (Some(p), true) => p.display().to_string(),
            (Some(p), false) => format!(
                "{} with environment variable(s) {}",
                p.display(),
                below.join(", ")
            ),
            (None, false) => format!("environment variable(s) {}", below.join(", ")),
            (None, true) => "configuration".to_string(),
        }
    }

    /// Turns a `config` crate error into one naming source, key and value.
    fn describe(&self, e: config::ConfigError) -> ConfigError {
        if let config::ConfigError::FileParse { cause, .. } = e {
            return ConfigError::Parse {
                origin: self.of(""),
                message: cause.to_string(),
            };
        }
        if let config::ConfigError::NotFound(key) = e {
            // A field without a default: the other half of a warning/critical pair.
            let parent = key.rsplit_once('.').map(|(p, _)| p).unwrap_or_default();
            return ConfigError::Invalid {
                origin: self.of(parent),
                message: format!(
                    "is missing; {} is set as a whole (every one of its keys)",
                    if parent.is_empty() { "this" } else { parent }
                ),
                key,
            };
        }
        let (key, message) = key_and_message(e);
        // serde names an unknown field in the message and the section as the key; name the
        // whole key instead (`drift.windw`), which is also what finds its source.
        let key = match unknown_field(&message) {
            Some(field) if key.is_empty() => field.to_string(),
            Some(field) => format!("{key}.{field}"),
            None => key,
        };
        let message = match unknown_variant(&message) {
            Some(value) => one_of(&key, value).unwrap_or(message),
            None => message,
        };
        if key.is_empty() {
            return ConfigError::Parse {
                origin: self.of(""),
                message,
            };
        }
        ConfigError::Invalid {
            origin: self.of(&key),
            key,
            message,
        }
    }
}

/// The key an error is about (empty when none) and what is wrong, without the crate's own
/// "for key … in …" suffix.
fn key_and_message(e: config::ConfigError) -> (String, String) {
    match e {
        config::ConfigError::Type {
            unexpected,
            expected,
            key,
            ..
        } => (
            key.unwrap_or_default(),
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        config::ConfigError::At { error, key, .. } => {
            let (inner, message) = key_and_message(*error);
            (key.unwrap_or(inner), message)
        }
        other => (String::new(), other.to_string()),
    }
}

/// `x` from serde's "unknown field `x`, expected one of …".
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
}

/// `y` from the `config` crate's "enum X does not have variant constructor y".
fn unknown_variant(message: &str) -> Option<&str> {
    message
        .split_once(" does not have variant constructor ")
        .map(|(_, value)| value)
}

/// `"x" is not one of: a, b, c` for an enumerated key.
fn one_of(key: &str, value: &str) -> Option<String> {
    let k = keys::keys()
        .ok()?
        .iter()
        .find(|k| !k.choices.is_empty() && matches(&k.path, key))?;
    Some(format!("{value:?} is not one of: {}", k.choices.join(", ")))
}

impl Config {
    /// Loads the configuration from an optional file, the process environment and flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            // Only our variables must be Unicode; anyone else's may hold anything.
            let Ok(name) = name.into_string() else {
                continue;
            };
            if !name.starts_with(ENV_PREFIX) {
                continue;
            }
            match value.into_string() {
                Ok(v) => env.push((name, v)),
                Err(v) => return Err(not_unicode(&name, &v)),
            }
        }
        Self::load_from(file, overrides, env.into_iter())
    }

    /// As [`Config::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        overrides: &Overrides,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::load_inner(file, overrides, env).map_err(shorten)
    }

    fn load_inner(
        file: Option<&Path>,
        overrides: &Overrides,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env = env_vars(env).map_err(|message| ConfigError::Parse {
            origin: "configuration keys".into(),
            message,
        })?;
        let flags = overrides.given();
        let origins = Origins {
            file,
            env: &env,
            flags: flags.iter().map(|(k, f, _)| (*k, *f)).collect(),
        };
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(file_source(path)?);
        }
        builder = builder.add_source(EnvSource(env.clone()));
        for (key, _, value) in flags {
            builder = builder
                .set_override(key, config::Value::new(None, value))
                .map_err(|e| origins.describe(e))?;
        }
        let cfg: Config = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| origins.describe(e))?;
        cfg.check().map_err(|i| ConfigError::Invalid {
            origin: origins.of(&i.key),
            key: i.key,
            message: i.message,
        })?;
        Ok(cfg)
    }
}

/// The config file as a source, its format from its extension.
fn file_source(
    path: &Path,
) -> Result<config::File<config::FileSourceFile, config::FileFormat>, ConfigError> {
    if !path.is_file() {
        return Err(ConfigError::FileMissing(path.to_path_buf()));
    }
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => config::FileFormat::Toml,
        Some("yaml" | "yml") => config::FileFormat::Yaml,
        other => {
            return Err(ConfigError::Invalid {
                origin: path.display().to_string(),
                key: "(file extension)".into(),
                message: format!(
                    "unsupported extension {:?}; use .yaml, .yml or .toml",
                    other.unwrap_or("")
                ),
            })
        }
    };
    Ok(config::File::from(path).format(format).required(true))
}

/// Longest error message kept whole; a pasted 100 kB value is cut, not echoed in full.
const MAX_MESSAGE: usize = 400;

/// Cuts an over-long message (it quotes the value) to a readable line.
fn shorten(e: ConfigError) -> ConfigError {
    let cut = |m: String| {
        if m.len() <= MAX_MESSAGE {
            return m;
        }
        let mut end = MAX_MESSAGE;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes in all)", &m[..end], m.len())
    };
    match e {
        ConfigError::Parse { origin, message } => ConfigError::Parse {
            origin,
            message: cut(message),
        },
        ConfigError::Invalid {
            origin,
            key,
            message,
        } => ConfigError::Invalid {
            origin,
            key,
            message: cut(message),
        },
        other => other,
    }
}

fn not_unicode(name: &str, value: &OsString) -> ConfigError {
    ConfigError::Parse {
        origin: format!("environment variable {name}"),
        message: format!("{value:?} is not valid UTF-8"),
    }
}

#[cfg(test)]
pub(super) mod tests_support {
    use super::*;

    /// The `config` crate's tree built from these variables alone, as the loader sees them.
    pub fn env_tree(vars: &[(String, String)]) -> config::Config {
        let env = env_vars(vars.iter().cloned()).expect("keys");
        config::Config::builder()
            .add_source(EnvSource(env))
            .build()
            .expect("env tree")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_map_entries() {
        assert!(matches("baseline.files", "baseline.files"));
        assert!(matches(
            "models.<name>.thresholds.psi.warning",
            "models.fraud.thresholds.psi.warning"
        ));
        assert!(!matches("baseline.files", "baseline.files.x"));
        assert!(!matches("baseline.files", "baseline"));
    }

    #[test]
    fn numeric_looking_env_values_keep_their_text() {
        let c = Config::load_from(
            None,
            &Overrides::default(),
            [
                ("MLMON_ADMIN__TOKEN".to_string(), "0123".to_string()),
                ("MLMON_MODEL__VERSION".to_string(), "1.0".to_string()),
                (
                    "MLMON_PERFORMANCE__POSITIVE_CLASS".to_string(),
                    "true".to_string(),
                ),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(c.admin.token.as_deref(), Some("0123"));
        assert_eq!(c.model.version.as_deref(), Some("1.0"));
        assert_eq!(c.performance.positive_class, "true");
    }
}
