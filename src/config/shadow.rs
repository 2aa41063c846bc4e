//! The `shadow` section: copies of sampled inference requests sent to a candidate model after
//! the primary has answered (docs/shadow.md).

use std::time::Duration;

use serde::Deserialize;

use super::{positive_duration, Invalid};

/// The `shadow` section: copies of sampled inference requests sent to a candidate model
/// after the primary has answered (docs/shadow.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShadowConfig {
    /// Base URL of the candidate model server (plain http); unset (the default) turns shadow
    /// traffic off.
    pub upstream: Option<String>,
    /// Share of inference requests copied to the shadow, 0..1 (deterministic: every
    /// `1/sample`-th request, not a random draw).
    pub sample: f64,
    /// Request path every copy is sent to (the query of the original is kept), e.g.
    /// `/v2/models/iris/versions/2/infer`; unset sends the client's own path.
    pub path: Option<String>,
    /// Time limit of one shadow request, response body included; past it the copy counts
    /// as `timeout`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Shadow requests in flight at most.
    pub concurrency: usize,
    /// Copies waiting for a free slot at most; past it copies are dropped as `skipped`.
    pub queue: usize,
    /// Body bytes held by copies waiting or in flight at most (request and primary
    /// response); past it copies are dropped as `skipped`.
    pub max_queue_bytes: usize,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            upstream: None,
            sample: 1.0,
            path: None,
            timeout: Duration::from_secs(5),
            concurrency: 16,
            queue: 256,
            max_queue_bytes: 8 * 1024 * 1024,
        }
    }
}

impl ShadowConfig {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        positive_duration("shadow.timeout", self.timeout, None)?;
        if !(0.0..=1.0).contains(&self.sample) {
            return Err(Invalid::new(
                "shadow.sample",
                format!("{} is not between 0 and 1", self.sample),
            ));
        }
        if self.concurrency == 0 {
            return Err(Invalid::new(
                "shadow.concurrency",
                "0 is not allowed; must be at least 1".into(),
            ));
        }
        if self.queue == 0 {
            return Err(Invalid::new(
                "shadow.queue",
                "0 is not allowed; must be at least 1".into(),
            ));
        }
        if let Some(p) = &self.path {
            if !p.starts_with('/')
                || p.parse::<http::uri::PathAndQuery>().is_err()
                || p.contains('?')
            {
                return Err(Invalid::new(
                    "shadow.path",
                    format!("{p:?} is not a request path (write /v2/models/NAME/infer)"),
                ));
            }
        }
        self.uri().map(|_| ())
    }

    /// The shadow base URL, when shadow traffic is on.
    pub fn uri(&self) -> Result<Option<http::Uri>, Invalid> {
        let Some(u) = self.upstream.as_deref() else {
            return Ok(None);
        };
        let bad = |m: String| Invalid::new("shadow.upstream", m);
        let uri: http::Uri = u
            .parse()
            .map_err(|e| bad(format!("{u:?} is not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad(format!(
                "{u:?}: only plain http://host:port is supported"
            )));
        }
        if uri.authority().is_none() {
            return Err(bad(format!("{u:?} has no host")));
        }
        Ok(Some(uri))
    }
}
