//! The `server`, `admin` and `events` sections: limits that keep either port answering under
//! slow or hostile clients, and who may call the admin API (SPEC section 9).

use std::time::Duration;

use serde::Deserialize;

use super::{count_between, positive_duration, Invalid};

/// Longest `server.header_timeout` / `server.body_timeout` accepted: past an hour a stalled
/// client is not a slow one.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The `server` section: limits of both listening ports (proxy and admin).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// How long a connection may take to send a request's headers (both ports); slower
    /// clients are disconnected.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Longest pause between two chunks of a request body (both ports); a body that stalls
    /// longer is abandoned.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Open connections on the proxy port at most; past it new ones wait or are refused.
    pub max_connections: usize,
    /// Open connections on the admin port at most; `/healthz` keeps answering past it.
    pub admin_max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            admin_max_connections: 256,
        }
    }
}

impl ServerConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        positive_duration(
            "server.header_timeout",
            self.header_timeout,
            Some(MAX_TIMEOUT),
        )?;
        positive_duration("server.body_timeout", self.body_timeout, Some(MAX_TIMEOUT))?;
        count_between("server.max_connections", self.max_connections, 1, 1_000_000)?;
        count_between(
            "server.admin_max_connections",
            self.admin_max_connections,
            1,
            100_000,
        )
    }
}

/// The `admin` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token required by every `/api/v1` call (unset: reads are open and mutating
    /// calls are refused unless `allow_unauthenticated`).
    pub token: Option<String>,
    /// Without a token, let mutating `/api/v1` calls through unauthenticated (the demo sets
    /// it); ignored when `token` is set.
    pub allow_unauthenticated: bool,
}

impl AdminConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if self.token.as_deref().is_some_and(str::is_empty) {
            return Err(Invalid::new("admin.token", "is set but empty".into()));
        }
        Ok(())
    }
}

/// The `events` section: the store that pairs CloudEvents request and response halves
/// (`POST /api/v1/events`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Bytes of unpaired halves held at most; past it the oldest halves make room (a
    /// request is then analysed alone, a lone response dropped and counted).
    pub max_bytes: usize,
    /// How long a half waits for its partner; expired halves are evicted on a timer.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            max_bytes: 64 * 1024 * 1024,
            ttl: Duration::from_secs(60),
        }
    }
}

impl EventsConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        // 1 KiB holds a small pair; past 16 GiB the store is no longer a bound.
        count_between("events.max_bytes", self.max_bytes, 1024, 16 << 30)?;
        positive_duration("events.ttl", self.ttl, Some(Duration::from_secs(24 * 3600)))
    }
}
