//! Prometheus metrics: one group struct per area, each built by `register(registry)`.
//!
//! Exposition: [`Metrics::encode`] writes OpenMetrics for scrapers that ask for
//! `application/openmetrics-text` and the Prometheus text format 0.0.4 for everyone else
//! (curl, older Prometheus, most tools), each with its own encoder and escaping rules.

pub mod anomaly;
pub mod drift;
pub mod explain;
#[cfg(test)]
mod exposition_tests;
pub mod health;
pub mod labels;
pub mod performance;
pub mod process;
pub mod proxy;
pub mod quality;
pub mod shadow;
pub mod sink;
pub mod versions;

use std::sync::Arc;

use prometheus_client::registry::Registry;

pub use proxy::ProxyMetrics;

/// A family of float gauges.
pub type F64Family<L> = prometheus_client::metrics::family::Family<
    L,
    prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
>;

/// Sets the series of `labels` to `value`, or removes it when there is no value: an empty
/// window exports nothing, never a misleading 0.
///
/// A series that is absent stays absent under the family's read lock: `remove` takes the
/// write lock, which a scrape encoding the family holds off (and which would hold off the
/// scrape while the low-priority analysis thread waits for a CPU), and most absent values
/// stay absent at every refresh (the chi-square p-value of every numeric feature).
pub fn set_or_remove<L>(family: &F64Family<L>, labels: &L, value: Option<f64>)
where
    L: Clone + std::hash::Hash + Eq,
{
    match value {
        Some(v) => {
            family.get_or_create(labels).set(v);
        }
        None => {
            if family.get(labels).is_some() {
                family.remove(labels);
            }
        }
    }
}

/// Content type of the OpenMetrics text exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text exposition.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Something that writes its own families at scrape time, for what prometheus-client cannot
/// encode (the latency summary). It writes complete `# HELP`/`# TYPE` blocks.
pub trait ScrapeWriter: Send + Sync + std::fmt::Debug {
    /// Appends this writer's families; `openmetrics` tells which format is being written.
    fn write(&self, out: &mut String, openmetrics: bool);
}

/// Escapes a label value for the text formats (Prometheus 0.0.4 and OpenMetrics share the
/// rule: backslash, double quote and line feed are escaped).
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value as both text formats write it (`NaN`, `+Inf`, `-Inf`, else Rust's
/// shortest round-trip form).
pub fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Families whose owner tells when they change ([`CachedFamilies::changed`]), such as the
/// per-feature drift gauges set once per `drift.interval`: encoded once per change and format
/// and copied into every page until the next change, instead of encoded at every scrape.
///
/// A page never shows a state older than the last `changed()` before the scrape: the epoch
/// is read before encoding and stored with the text, so a change during an encoding makes
/// the next scrape encode again. The owner can encode ahead ([`CachedFamilies::prepare`],
/// after its refresh, on its own thread), so that a scrape only copies bytes and never
/// waits on the families' locks; a scrape never waits for an encoding either (the slot is
/// locked only to swap or clone a pointer).
#[derive(Debug)]
pub struct CachedFamilies {
    registry: Registry,
    epoch: std::sync::atomic::AtomicU64,
    /// `[Prometheus text, OpenMetrics]`: the epoch encoded and its text (no `# EOF`).
    pages: [std::sync::Mutex<Option<Page>>; 2],
    /// Whether a scrape wrote each format since the last [`CachedFamilies::prepare`].
    read: [std::sync::atomic::AtomicBool; 2],
}

/// An encoded text and the epoch it shows.
type Page = (u64, Arc<String>);

impl Default for CachedFamilies {
    fn default() -> Self {
        CachedFamilies::new(Registry::default())
    }
}

impl CachedFamilies {
    /// Caches the families of `registry` (register them before, with their prefix).
    pub fn new(registry: Registry) -> Self {
        CachedFamilies {
            registry,
            epoch: std::sync::atomic::AtomicU64::new(0),
            pages: [std::sync::Mutex::new(None), std::sync::Mutex::new(None)],
            read: [
                std::sync::atomic::AtomicBool::new(false),
                std::sync::atomic::AtomicBool::new(false),
            ],
        }
    }

    /// Marks the families changed: call after every change (set, add, remove).
    pub fn changed(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Encodes now each format scraped since the last call whose text is out of date, so
    /// that the next scrape only copies it (for the owner's thread, after a refresh). A
    /// format nobody scraped meanwhile is left to the next scrape: refreshes more frequent
    /// than scrapes encode nothing in vain.
    pub fn prepare(&self) {
        for (i, (slot, openmetrics)) in self.pages.iter().zip([false, true]).enumerate() {
            if !self.read[i].swap(false, std::sync::atomic::Ordering::AcqRel) {
                continue;
            }
            let stale = slot.lock().ok().and_then(|s| {
                s.as_ref()
                    .map(|(e, _)| *e != self.epoch.load(std::sync::atomic::Ordering::Acquire))
            });
            if stale == Some(true) {
                self.encode_and_store(openmetrics);
            }
        }
    }

    /// Appends the families in the given format (`# HELP`/`# TYPE` blocks, no `# EOF`).
    pub fn write(&self, out: &mut String, openmetrics: bool) {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        self.read[usize::from(openmetrics)].store(true, std::sync::atomic::Ordering::Release);
        let cached = self.pages[usize::from(openmetrics)]
            .lock()
            .ok()
            .and_then(|s| {
                s.as_ref()
                    .filter(|(e, _)| *e == epoch)
                    .map(|(_, t)| t.clone())
            });
        match cached {
            Some(text) => out.push_str(&text),
            None => out.push_str(&self.encode_and_store(openmetrics)),
        }
    }

    /// Encodes the families as of now and keeps the text unless a newer one is stored.
    fn encode_and_store(&self, openmetrics: bool) -> Arc<String> {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Acquire);
        let slot = &self.pages[usize::from(openmetrics)];
        let last = slot
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|(_, t)| t.len()))
            .unwrap_or(0);
        let mut text = String::with_capacity(last + last / 8);
        let written = if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        };
        if written.is_err() {
            text.clear();
        }
        if openmetrics && text.ends_with("# EOF\n") {
            text.truncate(text.len() - "# EOF\n".len());
        }
        let text = Arc::new(text);
        if let Ok(mut s) = slot.lock() {
            if s.as_ref().is_none_or(|(e, _)| *e <= epoch) {
                *s = Some((epoch, text.clone()));
            }
        }
        text
    }
}

/// Every metric group, and the registry they are registered in.
#[derive(Debug)]
pub struct Metrics {
    /// The registry encoded at `/metrics`.
    pub registry: Registry,
    /// Proxy traffic, latency and capture.
    pub proxy: Arc<ProxyMetrics>,
    /// Drift statistics, bins and baselines.
    pub drift: Arc<drift::DriftMetrics>,
    /// Data quality per feature and the data quality score.
    pub quality: Arc<quality::QualityMetrics>,
    /// Anomalies: counts, rate, trend and score histogram.
    pub anomaly: Arc<anomaly::AnomalyMetrics>,
    /// Performance against ground truth, estimates and feedback.
    pub performance: Arc<performance::PerformanceMetrics>,
    /// Model health.
    pub health: Arc<health::HealthMetrics>,
    /// Feature importance (explainability).
    pub explain: Arc<explain::ExplainMetrics>,
    /// Per-version performance, output drift and comparisons (SPEC 10).
    pub versions: Arc<versions::VersionMetrics>,
    /// The capture stream and the feedback sources (docs/streaming.md).
    pub sink: Arc<sink::SinkMetrics>,
    /// Shadow traffic: requests, latency, agreement with the primary.
    pub shadow: Arc<shadow::ShadowMetrics>,
    /// Families written at scrape time by their owners.
    scrape: std::sync::RwLock<Vec<Arc<dyn ScrapeWriter>>>,
    /// Length of the last page, to size the next one at once (a 32-model sidecar writes
    /// megabytes: no regrowth and copying while encoding).
    last_len: std::sync::atomic::AtomicUsize,
}

impl Metrics {
    /// Registers every group. `build_version` goes into `mlmon_build_info{version}`.
    pub fn new(build_version: &str) -> Metrics {
        let mut registry = Registry::default();
        let mlmon = registry.sub_registry_with_prefix("mlmon");
        let proxy = Arc::new(ProxyMetrics::register(mlmon, build_version));
        // Set once per drift.interval: encoded once per refresh, copied at scrapes.
        let drift = Arc::new(drift::DriftMetrics::cached());
        let quality = Arc::new(quality::QualityMetrics::register(mlmon));
        let anomaly = Arc::new(anomaly::AnomalyMetrics::register(mlmon));
        let performance = Arc::new(performance::PerformanceMetrics::register(mlmon));
        let health = Arc::new(health::HealthMetrics::register(mlmon));
        let explain = Arc::new(explain::ExplainMetrics::register(mlmon));
        let versions = Arc::new(versions::VersionMetrics::register(mlmon));
        let sink = Arc::new(sink::SinkMetrics::register(mlmon));
        let shadow = Arc::new(shadow::ShadowMetrics::register(mlmon));
        // Unprefixed: process_* names are the same in every Prometheus client.
        registry.register_collector(Box::new(process::ProcessCollector::new()));
        Metrics {
            registry,
            proxy,
            drift,
            quality,
            anomaly,
            performance,
            health,
            explain,
            versions,
            sink,
            shadow,
            scrape: std::sync::RwLock::new(Vec::new()),
            last_len: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Adds a family written at every scrape.
    pub fn add_scrape_writer(&self, writer: Arc<dyn ScrapeWriter>) {
        if let Ok(mut w) = self.scrape.write() {
            w.push(writer);
        }
    }

    fn write_scraped(&self, out: &mut String, openmetrics: bool) {
        self.drift.cache.write(out, openmetrics);
        if let Ok(writers) = self.scrape.read() {
            for w in writers.iter() {
                w.write(out, openmetrics);
            }
        }
    }

    /// Encodes the registry for a scraper sending `accept`.
    /// Returns the body and its content type.
    ///
    /// Each format is written by its own encoder, with its own label-value escaping:
    /// converting one text into the other means re-parsing label values, and a value such
    /// as `x # {y` (OpenMetrics' exemplar marker) once cut a line in half that way.
    pub fn encode(&self, accept: Option<&str>) -> (String, &'static str) {
        let last = self.last_len.load(std::sync::atomic::Ordering::Relaxed);
        // The last page plus an eighth for growth; bounded so one odd page cannot pin memory.
        let mut out = String::with_capacity((last + last / 8).clamp(16 * 1024, 64 << 20));
        let openmetrics = wants_openmetrics(accept);
        let written = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        // Writing into a String cannot fail; an error here would be a bug in an encoder,
        // and an empty exposition (plus the OpenMetrics terminator) is the honest answer.
        if written.is_err() {
            out.clear();
            if openmetrics {
                out.push_str("# EOF\n");
            }
        }
        if openmetrics {
            // Scrape-time families go before the closing `# EOF`.
            if out.ends_with("# EOF\n") {
                out.truncate(out.len() - "# EOF\n".len());
            }
            self.write_scraped(&mut out, true);
            out.push_str("# EOF\n");
            self.last_len
                .store(out.len(), std::sync::atomic::Ordering::Relaxed);
            (out, OPENMETRICS_CONTENT_TYPE)
        } else {
            self.write_scraped(&mut out, false);
            self.last_len
                .store(out.len(), std::sync::atomic::Ordering::Relaxed);
            (out, PROMETHEUS_CONTENT_TYPE)
        }
    }
}

/// Whether an `Accept` header prefers OpenMetrics (as Prometheus sends it when
/// OpenMetrics scraping is on) over the classic text format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut best_om = -1.0_f64;
    let mut best_text = -1.0_f64;
    for part in accept.split(',') {
        let mut fields = part.split(';');
        let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = fields
            .filter_map(|f| f.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        if media == "application/openmetrics-text" {
            best_om = best_om.max(q);
        } else if media == "text/plain" || media == "*/*" {
            best_text = best_text.max(q);
        }
    }
    best_om > 0.0 && best_om >= best_text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text;q=0.2,text/plain;q=0.9"
        )));
    }
}
