//! Label values cannot break the exposition: a strict reader of both text formats (the
//! grammar Prometheus' `expfmt` and the OpenMetrics spec accept) reads back every label
//! value mlmon wrote, whatever the value holds.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::labels::{ModelCodeLabels, ModelReasonLabels};
use super::Metrics;
use crate::metrics::drift::{BaselineLabels, BinLabels, FeatureLabels};

/// One sample line: metric name, labels in order, value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// Reads a whole exposition page, strictly. `openmetrics` selects the format's rules:
/// the `# EOF` terminator, exemplars, `# UNIT`.
pub(crate) fn parse_page(page: &str, openmetrics: bool) -> Result<Vec<Sample>, String> {
    let body = if openmetrics {
        page.strip_suffix("# EOF\n")
            .ok_or("OpenMetrics page does not end with # EOF")?
    } else {
        page
    };
    if !body.is_empty() && !body.ends_with('\n') {
        return Err("page does not end with a newline".into());
    }
    let mut samples = Vec::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    for (n, line) in body.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.strip_prefix(' ').ok_or_else(|| err("comment"))?;
            let mut parts = rest.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            let name = parts.next().unwrap_or("");
            let tail = parts.next();
            match kw {
                "HELP" | "TYPE" | "UNIT" => {
                    if !is_metric_name(name) {
                        return Err(err("metric name in comment"));
                    }
                    if kw == "UNIT" && !openmetrics {
                        return Err(err("# UNIT in the Prometheus text format"));
                    }
                    if kw == "TYPE" {
                        let t = tail.ok_or_else(|| err("type"))?;
                        let allowed: &[&str] = if openmetrics {
                            &[
                                "counter",
                                "gauge",
                                "histogram",
                                "summary",
                                "info",
                                "unknown",
                                "stateset",
                                "gaugehistogram",
                            ]
                        } else {
                            &["counter", "gauge", "histogram", "summary", "untyped"]
                        };
                        if !allowed.contains(&t) {
                            return Err(err("unknown type"));
                        }
                        if types.insert(name.to_string(), t.to_string()).is_some() {
                            return Err(err("second TYPE for a family"));
                        }
                    }
                }
                _ if openmetrics => return Err(err("OpenMetrics allows no free comments")),
                _ => {}
            }
            continue;
        }
        samples.push(parse_sample(line, openmetrics).map_err(|m| err(&m))?);
    }
    Ok(samples)
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Label pairs in page order.
type Labels = Vec<(String, String)>;

/// Reads `{name="value",...}` from the start of `s`; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().ok_or("unterminated label value")?;
            match c {
                '"' => break i,
                '\\' => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                '\n' => return Err("raw newline in a label value".into()),
                c => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ,".into());
        }
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

fn parse_sample(line: &str, openmetrics: bool) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (Vec::new(), &line[name_end..])
    };
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let (value_part, exemplar) = match rest.split_once(" # ") {
        Some((v, ex)) if openmetrics => (v, Some(ex)),
        Some(_) => return Err("exemplar in the Prometheus text format".into()),
        None => (rest, None),
    };
    let mut fields = value_part.split(' ');
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(ts) = fields.next() {
        parse_value(ts)?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    if let Some(ex) = exemplar {
        let (_, r) = parse_labels(ex)?;
        parse_value(r.trim_start())?;
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn label<'s>(s: &'s Sample, key: &str) -> Option<&'s str> {
    s.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Writes the four kinds of names into every family that carries them and checks both
/// pages read back the same values.
fn round_trip(model: &str, feature: &str, category: &str, version: &str) -> Result<(), String> {
    let metrics = Metrics::new(version);
    metrics
        .proxy
        .requests
        .get_or_create(&ModelCodeLabels {
            model: model.to_string(),
            code: "2xx",
        })
        .inc();
    metrics
        .proxy
        .payload_errors
        .get_or_create(&ModelReasonLabels {
            model: model.to_string(),
            reason: "invalid_json",
        })
        .inc();
    metrics
        .drift
        .psi
        .get_or_create(&FeatureLabels {
            model: model.to_string(),
            feature: feature.to_string(),
            kind: "input",
        })
        .set(0.25);
    metrics
        .drift
        .bin_observations
        .get_or_create(&BinLabels {
            model: model.to_string(),
            feature: feature.to_string(),
            kind: "input",
            bin: category.to_string(),
        })
        .inc_by(7);
    metrics
        .drift
        .baseline_info
        .get_or_create(&BaselineLabels {
            model: model.to_string(),
            id: version.to_string(),
        })
        .set(1);
    metrics
        .proxy
        .request_duration
        .get_or_create(&super::labels::ModelLabels {
            model: model.to_string(),
        })
        .observe(0.01);
    for (accept, openmetrics) in [
        (None, false),
        (Some("application/openmetrics-text; version=1.0.0"), true),
    ] {
        let (page, _) = metrics.encode(accept);
        let samples = parse_page(&page, openmetrics)?;
        let find = |name: &str| {
            samples
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| format!("no {name} in {page}"))
        };
        let req = find("mlmon_requests_total")?;
        if label(req, "model") != Some(model) || req.value != 1.0 {
            return Err(format!("model read back as {req:?}"));
        }
        let psi = find("mlmon_feature_psi")?;
        if label(psi, "feature") != Some(feature) || label(psi, "model") != Some(model) {
            return Err(format!("feature read back as {psi:?}"));
        }
        let bin = find("mlmon_feature_bin_observations_total")?;
        if label(bin, "bin") != Some(category) || bin.value != 7.0 {
            return Err(format!("category read back as {bin:?}"));
        }
        let info = find("mlmon_build_info")?;
        if label(info, "version") != Some(version) {
            return Err(format!("version read back as {info:?}"));
        }
        let base = find("mlmon_baseline_info")?;
        if label(base, "id") != Some(version) {
            return Err(format!("baseline id read back as {base:?}"));
        }
        let hist = samples
            .iter()
            .filter(|s| s.name == "mlmon_request_duration_seconds_bucket")
            .count();
        if hist == 0 {
            return Err("histogram buckets missing".into());
        }
    }
    Ok(())
}

#[test]
fn the_v1_injection_reads_back() {
    // The finding: an input named `x # {y` cut the Prometheus text line at `feature="x`.
    round_trip("m # {x", "x # {y", "c\" # {} 1\n", "v\\1").unwrap();
    round_trip("", "", "", "").unwrap();
}

#[test]
fn prometheus_text_declares_counters_by_sample_name() {
    let (page, ct) = Metrics::new("t").encode(None);
    assert!(ct.starts_with("text/plain; version=0.0.4"));
    assert!(page.contains("# TYPE mlmon_build_info gauge\n"), "{page}");
    assert!(!page.contains("# EOF"));
    assert!(!page.contains("# UNIT"));
    let m = Metrics::new("t");
    m.proxy
        .requests
        .get_or_create(&ModelCodeLabels {
            model: "m".into(),
            code: "2xx",
        })
        .inc();
    let (page, _) = m.encode(None);
    assert!(
        page.contains("# TYPE mlmon_requests_total counter\n"),
        "{page}"
    );
    assert!(page.contains("mlmon_requests_total{model=\"m\",code=\"2xx\"} 1\n"));
    let (om, _) = m.encode(Some("application/openmetrics-text"));
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE mlmon_requests counter\n"));
}

/// Names built from the characters that matter to the two grammars, and any Unicode.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\r'),
                Just('#'),
                Just('{'),
                Just('}'),
                Just(' '),
                Just(','),
                Just('='),
                Just('\t'),
                Just('\0'),
                Just('\u{2028}'),
                Just('é'),
                Just('n'),
                any::<char>(),
            ],
            0..24
        )
        .prop_map(|cs| cs.into_iter().collect()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_name_reads_back_from_both_formats(
        model in hostile(),
        feature in hostile(),
        category in hostile(),
        version in hostile(),
    ) {
        prop_assert_eq!(round_trip(&model, &feature, &category, &version), Ok(()));
    }
}

/// The drift families are encoded once per change: a page shows the values as of the
/// owner's last `changed()`, in both formats, inside one valid page (once each family).
#[test]
fn cached_drift_families_follow_every_change() {
    let metrics = Metrics::new("t");
    let labels = FeatureLabels {
        model: "m".into(),
        feature: "f".into(),
        kind: "input",
    };
    let psi = |page: &str, openmetrics: bool| -> Vec<f64> {
        parse_page(page, openmetrics)
            .unwrap()
            .into_iter()
            .filter(|s| s.name == "mlmon_feature_psi")
            .map(|s| s.value)
            .collect()
    };
    let om = Some("application/openmetrics-text; version=1.0.0");
    for (accept, openmetrics) in [(None, false), (om, true)] {
        assert_eq!(
            psi(&metrics.encode(accept).0, openmetrics),
            Vec::<f64>::new()
        );
    }
    for (i, value) in [0.25, 0.5, 0.75].into_iter().enumerate() {
        metrics.drift.psi.get_or_create(&labels).set(value);
        metrics.drift.cache.changed();
        if i == 1 {
            // Encoded ahead by the owner (the drift refresh does this on its thread).
            metrics.drift.cache.prepare();
        }
        for (accept, openmetrics) in [(None, false), (om, true)] {
            let (page, _) = metrics.encode(accept);
            assert_eq!(psi(&page, openmetrics), vec![value], "{page}");
            assert_eq!(page.matches("# TYPE mlmon_feature_psi gauge").count(), 1);
            assert_eq!(page.matches("# EOF").count(), usize::from(openmetrics));
        }
    }
    // Without `changed()` the text of the last change is copied, not encoded again.
    metrics.drift.psi.get_or_create(&labels).set(9.0);
    assert_eq!(psi(&metrics.encode(None).0, false), vec![0.75]);
    metrics.drift.psi.remove(&labels);
    metrics.drift.cache.changed();
    assert_eq!(psi(&metrics.encode(om).0, true), Vec::<f64>::new());
}
