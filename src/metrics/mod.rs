//! Prometheus metrics: one group struct per area, each built by `register(registry)`.
//!
//! Exposition: prometheus-client encodes OpenMetrics; [`encode`] serves that to scrapers
//! that ask for `application/openmetrics-text` and converts it to the Prometheus text
//! format 0.0.4 for everyone else (curl, older Prometheus, most tools).

pub mod anomaly;
pub mod drift;
pub mod explain;
pub mod health;
pub mod labels;
pub mod performance;
pub mod process;
pub mod proxy;
pub mod quality;

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
pub fn set_or_remove<L>(family: &F64Family<L>, labels: &L, value: Option<f64>)
where
    L: Clone + std::hash::Hash + Eq,
{
    match value {
        Some(v) => {
            family.get_or_create(labels).set(v);
        }
        None => {
            family.remove(labels);
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
    /// Families written at scrape time by their owners.
    scrape: std::sync::RwLock<Vec<Arc<dyn ScrapeWriter>>>,
}

impl Metrics {
    /// Registers every group. `build_version` goes into `mlmon_build_info{version}`.
    pub fn new(build_version: &str) -> Metrics {
        let mut registry = Registry::default();
        let mlmon = registry.sub_registry_with_prefix("mlmon");
        let proxy = Arc::new(ProxyMetrics::register(mlmon, build_version));
        let drift = Arc::new(drift::DriftMetrics::register(mlmon));
        let quality = Arc::new(quality::QualityMetrics::register(mlmon));
        let anomaly = Arc::new(anomaly::AnomalyMetrics::register(mlmon));
        let performance = Arc::new(performance::PerformanceMetrics::register(mlmon));
        let health = Arc::new(health::HealthMetrics::register(mlmon));
        let explain = Arc::new(explain::ExplainMetrics::register(mlmon));
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
            scrape: std::sync::RwLock::new(Vec::new()),
        }
    }

    /// Adds a family written at every scrape.
    pub fn add_scrape_writer(&self, writer: Arc<dyn ScrapeWriter>) {
        if let Ok(mut w) = self.scrape.write() {
            w.push(writer);
        }
    }

    fn write_scraped(&self, out: &mut String, openmetrics: bool) {
        if let Ok(writers) = self.scrape.read() {
            for w in writers.iter() {
                w.write(out, openmetrics);
            }
        }
    }

    /// Encodes the registry for a scraper sending `accept`.
    /// Returns the body and its content type.
    pub fn encode(&self, accept: Option<&str>) -> (String, &'static str) {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail; an error here would be a bug in an encoder,
        // and an empty exposition is the honest answer to it.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        if wants_openmetrics(accept) {
            // Scrape-time families go before the closing `# EOF`.
            if out.ends_with("# EOF\n") {
                out.truncate(out.len() - "# EOF\n".len());
            }
            self.write_scraped(&mut out, true);
            out.push_str("# EOF\n");
            (out, OPENMETRICS_CONTENT_TYPE)
        } else {
            let mut text = openmetrics_to_prometheus(&out);
            self.write_scraped(&mut text, false);
            (text, PROMETHEUS_CONTENT_TYPE)
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

/// Converts an OpenMetrics text exposition into the Prometheus 0.0.4 text format:
/// counters are declared under their `_total` sample name, `info` becomes `gauge`,
/// `unknown` becomes `untyped`, and `# UNIT` / `# EOF` lines are dropped.
pub fn openmetrics_to_prometheus(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut counters = std::collections::HashSet::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, ty)) = rest.split_once(' ') {
                if ty == "counter" {
                    counters.insert(name.to_string());
                }
            }
        }
    }
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            match rest.split_once(' ') {
                Some((name, "counter")) => {
                    out.push_str(&format!("# TYPE {name}_total counter\n"));
                }
                Some((name, "info")) => out.push_str(&format!("# TYPE {name}_info gauge\n")),
                Some((name, "unknown")) => out.push_str(&format!("# TYPE {name} untyped\n")),
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, help)) = rest.split_once(' ') {
                if counters.contains(name) {
                    out.push_str(&format!("# HELP {name}_total {help}\n"));
                    continue;
                }
            }
        }
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        // Samples: drop `_created` series and exemplars, which 0.0.4 cannot carry.
        let sample = match line.find(" # {") {
            Some(i) => &line[..i],
            None => line,
        };
        let name_end = sample.find(['{', ' ']).unwrap_or(sample.len());
        if sample[..name_end].ends_with("_created")
            && counters.contains(sample[..name_end].trim_end_matches("_created"))
        {
            continue;
        }
        out.push_str(sample);
        out.push('\n');
    }
    out
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

    #[test]
    fn conversion_declares_counters_by_sample_name() {
        let om = "# HELP mlmon_requests Proxied requests.\n# TYPE mlmon_requests counter\nmlmon_requests_total{model=\"m\",code=\"2xx\"} 3\n# HELP mlmon_request_duration_seconds Latency.\n# TYPE mlmon_request_duration_seconds histogram\n# UNIT mlmon_request_duration_seconds seconds\nmlmon_request_duration_seconds_sum 0.1\n# EOF\n";
        let text = openmetrics_to_prometheus(om);
        assert!(text.contains("# TYPE mlmon_requests_total counter\n"));
        assert!(text.contains("# HELP mlmon_requests_total Proxied requests.\n"));
        assert!(text.contains("mlmon_requests_total{model=\"m\",code=\"2xx\"} 3\n"));
        assert!(!text.contains("# EOF"));
        assert!(!text.contains("# UNIT"));
        assert!(text.contains("# TYPE mlmon_request_duration_seconds histogram\n"));
    }
}
