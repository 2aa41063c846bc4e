//! Error types at module boundaries. Start-up errors name the file, key or value.

use std::path::PathBuf;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that does not exist.
    #[error("config file {0}: not found")]
    FileMissing(PathBuf),
    /// The file or environment could not be parsed or has an unknown key.
    #[error("{origin}: {message}")]
    Parse {
        /// The file (or "configuration" when only env/flags were used).
        origin: String,
        /// What the parser said, including the key.
        message: String,
    },
    /// A key has a value that parses but cannot be used.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// The file (or "configuration").
        origin: String,
        /// Dotted key path, e.g. `drift.window`.
        key: String,
        /// What is wrong with the value.
        message: String,
    },
}

impl ConfigError {
    /// Wraps an error from the `config` crate, keeping its key path.
    pub fn from_config(origin: &str, e: config::ConfigError) -> ConfigError {
        ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        }
    }
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
