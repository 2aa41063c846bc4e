//! Bearer-token check for mutating endpoints (`admin.token`, `MLMON_ADMIN__TOKEN`).

use axum::http::{header, HeaderMap};

use super::ApiError;
use crate::config::Config;

/// Succeeds when no token is configured, or the request carries it as a bearer token.
pub fn require(cfg: &Config, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = cfg.admin.token.as_deref() else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_rules() {
        let mut cfg = Config::default();
        let mut h = HeaderMap::new();
        assert!(require(&cfg, &h).is_ok(), "no token configured");
        cfg.admin.token = Some("s3cret".into());
        assert!(require(&cfg, &h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer wrong!".parse().unwrap());
        assert!(require(&cfg, &h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(require(&cfg, &h).is_ok());
    }
}
