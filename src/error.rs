//! Error types at module boundaries. Start-up errors name the file, key or value.

use std::path::PathBuf;

/// An error and its sources on one line (`outer: inner: innermost`), for messages that name
/// the cause a transport error wraps (connection refused, TLS, timeout).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that does not exist.
    #[error("config file {0}: not found")]
    FileMissing(PathBuf),
    /// The file could not be parsed, or an error not tied to one key.
    #[error("{origin}: {message}")]
    Parse {
        /// The file, `environment variable MLMON_…`, or "configuration".
        origin: String,
        /// What the parser said.
        message: String,
    },
    /// A key is unknown, or has a value of the wrong type or one that cannot be used.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// Where the value in force came from: the file, `environment variable MLMON_…`,
        /// `flag --…`, or "configuration".
        origin: String,
        /// Dotted key path, e.g. `drift.window`.
        key: String,
        /// What is wrong with the value.
        message: String,
    },
}

/// Why `mlmon serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listen address could not be bound.
    #[error("{key}: cannot listen on {addr}: {source}")]
    Bind {
        /// The config key (`listen` or `admin_listen`).
        key: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A baseline snapshot could not be loaded.
    #[error("baseline {path}: {message}")]
    Baseline {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Anything else at start-up.
    #[error("{0}")]
    Other(String),
}
