//! The analyses as a registry: each one implements [`Analysis`], owns its state and its
//! config section, and is fed by the analysis side of the capture queue only
//! ([`crate::ingest`]). An analysis never holds another one; what it needs from outside
//! comes in the [`Exchange`] it is given (the model's baseline, the raw request) or from the
//! [`baseline::Registry`] at refresh time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::baseline::{self, Current};
use crate::record::ParsedExchange;

/// The raw request behind an exchange, for analyses that re-send rows in the model
/// server's own wire format (explainability), and how the upstream answered it (the
/// capture stream).
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// Request path (without query), e.g. `/v2/models/m/infer`.
    pub path: &'a str,
    /// The (decoded) request body.
    pub body: &'a [u8],
    /// Upstream response status; `None` when the upstream failed (502/504 from mlmon).
    pub status: Option<u16>,
    /// Time from request arrival to the end of the response body.
    pub duration: Duration,
}

/// One parsed exchange with everything an analysis may need about it.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The model (already folded to `__other__` past `model.max_models`).
    pub model: &'a str,
    /// Model version when known.
    pub version: Option<&'a str>,
    /// Request id (to join ground truth later).
    pub request_id: &'a str,
    /// When the request arrived (wall clock).
    pub received_at: SystemTime,
    /// When the analysis side took it (tokio clock: windows and TTLs use this).
    pub now: Instant,
    /// Rows and predictions.
    pub parsed: &'a ParsedExchange,
    /// The raw request, when the exchange was proxied or logged by KServe; `None` for
    /// records posted to `/api/v1/predictions`.
    pub request: Option<RawRequest<'a>>,
    /// The model's baseline at the time of the exchange.
    pub baseline: Option<&'a Arc<Current>>,
}

/// The fast path of an engine's `observe` for per-model state kept in `models`: runs `f`
/// on `model`'s state with one map lookup when that state follows the exchange's
/// baseline (`generation` of the state equals the baseline's; with no registry
/// (`registry` false) any state does). Returns `false`, without running `f`, when the
/// engine must first set up or refit the state (its `sync`) and look it up again.
pub(crate) fn observe_current<S>(
    models: &dashmap::DashMap<String, std::sync::Mutex<S>>,
    model: &str,
    registry: bool,
    current: Option<&Current>,
    generation: impl Fn(&S) -> Option<u64>,
    f: impl FnOnce(&mut S),
) -> bool {
    let Some(entry) = models.get(model) else {
        return false;
    };
    let Ok(mut guard) = entry.lock() else {
        return false;
    };
    let state = &mut *guard;
    if !registry || current.is_none_or(|c| generation(state) == Some(c.generation)) {
        f(state);
        true
    } else {
        false
    }
}

/// One analysis of the exchanges of every model.
pub trait Analysis: Send + Sync + 'static {
    /// Short name (`drift`, `quality`, …), also the API path segment of its report.
    fn name(&self) -> &'static str;

    /// Takes one exchange into the analysis' windows. Runs on the analysis side only.
    fn observe(&self, exchange: &Exchange<'_>);

    /// Recomputes window figures and exports them (every `drift.interval`). Models with a
    /// baseline but no traffic yet are in `baselines`.
    fn refresh(&self, baselines: &baseline::Registry);

    /// The analysis' current figures for one model as JSON, `None` when it has none.
    fn report(&self, model: &str) -> Option<serde_json::Value>;
}

/// The analyses of one sidecar, fed in order for every exchange.
#[derive(Clone, Default)]
pub struct Analyses(Vec<Arc<dyn Analysis>>);

impl std::fmt::Debug for Analyses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|a| a.name()))
            .finish()
    }
}

impl Analyses {
    /// The given analyses, fed in this order.
    pub fn new(analyses: Vec<Arc<dyn Analysis>>) -> Self {
        Analyses(analyses)
    }

    /// Feeds one exchange to every analysis.
    pub fn observe(&self, exchange: &Exchange<'_>) {
        for a in &self.0 {
            a.observe(exchange);
            crate::background::pause();
        }
    }

    /// Refreshes every analysis.
    pub fn refresh(&self, baselines: &baseline::Registry) {
        for a in &self.0 {
            a.refresh(baselines);
        }
    }

    /// The analysis called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Analysis>> {
        self.0.iter().find(|a| a.name() == name)
    }

    /// Names, in feeding order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|a| a.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// (model, baseline generation, request path) of each exchange seen.
    type Seen = (String, Option<u64>, Option<String>);

    #[derive(Default)]
    struct Recorder {
        name: &'static str,
        seen: Mutex<Vec<Seen>>,
    }

    impl Analysis for Recorder {
        fn name(&self) -> &'static str {
            self.name
        }
        fn observe(&self, ex: &Exchange<'_>) {
            if let Ok(mut s) = self.seen.lock() {
                s.push((
                    ex.model.to_string(),
                    ex.baseline.map(|b| b.generation),
                    ex.request.map(|r| r.path.to_string()),
                ));
            }
        }
        fn refresh(&self, _: &baseline::Registry) {}
        fn report(&self, model: &str) -> Option<serde_json::Value> {
            let s = self.seen.lock().ok()?;
            let n = s.iter().filter(|(m, _, _)| m == model).count();
            (n > 0).then(|| serde_json::json!({ "exchanges": n }))
        }
    }

    #[tokio::test]
    async fn every_analysis_sees_each_exchange_with_its_context() {
        let a = Arc::new(Recorder {
            name: "a",
            ..Default::default()
        });
        let b = Arc::new(Recorder {
            name: "b",
            ..Default::default()
        });
        let all = Analyses::new(vec![a.clone(), b.clone()]);
        assert_eq!(all.names(), ["a", "b"]);
        let parsed = ParsedExchange::default();
        let ex = Exchange {
            model: "m",
            version: None,
            request_id: "r1",
            received_at: SystemTime::now(),
            now: Instant::now(),
            parsed: &parsed,
            request: Some(RawRequest {
                path: "/v2/models/m/infer",
                body: b"{}",
                status: Some(200),
                duration: Duration::from_millis(3),
            }),
            baseline: None,
        };
        all.observe(&ex);
        all.observe(&Exchange {
            model: "n",
            request: None,
            ..ex
        });
        let seen = b.seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            vec![
                ("m".into(), None, Some("/v2/models/m/infer".into())),
                ("n".into(), None, None)
            ]
        );
        assert_eq!(
            all.get("a").and_then(|a| a.report("m")),
            Some(serde_json::json!({ "exchanges": 1 }))
        );
        assert!(all.get("a").and_then(|a| a.report("zzz")).is_none());
        assert!(all.get("c").is_none());
    }
}

/// Live SHAP importances shared by two analyses: the last mean |φ| per feature of each model,
/// published by the explain engine and read by the drift engine to weight the share of
/// drifted features (docs/explainability.md, "Drift × importance"). It lives here, in the
/// layer both depend on, so that no analysis names another.
/// The last SHAP importance per model (one entry per model the explain engine saw, which
/// the model registry bounds).
#[derive(Debug, Default)]
pub struct LiveImportance {
    models: RwLock<HashMap<String, Arc<HashMap<String, f64>>>>,
}

impl LiveImportance {
    /// Replaces the importances of `model`.
    pub fn set(&self, model: &str, features: HashMap<String, f64>) {
        self.models
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(model.to_string(), Arc::new(features));
    }

    /// The importances of `model`, when SHAP importance was computed for it and some
    /// feature has a positive one.
    pub fn get(&self, model: &str) -> Option<Arc<HashMap<String, f64>>> {
        self.models
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
            .filter(|m| m.values().any(|v| *v > 0.0))
            .cloned()
    }
}
