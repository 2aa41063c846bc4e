//! Loading: defaults, precedence of the sources, and errors that name file, key and value.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::keys::{keys, ENTRY};
use super::*;

fn write(ext: &str, text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(ext)
        .tempfile()
        .expect("tempfile");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(file: Option<&Path>, o: &Overrides, e: &[(&str, &str)]) -> Result<Config, String> {
    Config::load_from(file, o, env(e).into_iter()).map_err(|e| e.to_string())
}

fn flags_model(name: &str) -> Overrides {
    Overrides {
        model: Some(name.into()),
        ..Default::default()
    }
}

#[test]
fn defaults_match_the_spec() {
    let c = load(None, &Overrides::default(), &[]).unwrap();
    assert_eq!(c.listen, "0.0.0.0:8000");
    assert_eq!(c.upstream, "http://127.0.0.1:8080");
    assert_eq!(c.admin_listen, "0.0.0.0:9464");
    assert_eq!(c.model.name, "default");
    assert_eq!(c.model.max_models, 32);
    assert_eq!(c.capture.max_body_bytes, 1 << 20);
    assert_eq!(c.capture.queue, 10_000);
    assert_eq!(c.drift.window, Duration::from_secs(900));
    assert_eq!(c.drift.interval, Duration::from_secs(10));
    assert_eq!(c.drift.sample_size, 5000);
    assert_eq!(c.sla.latency, Duration::from_millis(100));
    assert_eq!(c.sla.quantile, 0.95);
    assert_eq!(c.feedback.ttl, Duration::from_secs(3600));
    assert_eq!(c.feedback.max_pending, 100_000);
    assert_eq!(c.performance.positive_class, "1");
    assert_eq!(c.limits.max_features, 256);
    assert_eq!(c.thresholds.psi, Level::higher(0.1, 0.2));
    assert_eq!(c.thresholds.error_rate.warning, 0.001);
    assert_eq!(c.thresholds.data_quality, Level::lower(0.9, 0.75));
    // SPEC section 9.
    assert_eq!(c.server.header_timeout, Duration::from_secs(10));
    assert_eq!(c.server.body_timeout, Duration::from_secs(30));
    assert_eq!(c.server.max_connections, 10_000);
    assert_eq!(c.server.admin_max_connections, 256);
    assert_eq!(c.events.max_bytes, 64 << 20);
    assert_eq!(c.events.ttl, Duration::from_secs(60));
    assert!(!c.admin.allow_unauthenticated);
    assert_eq!(c.admin.token, None);
    assert_eq!(c.limits.max_name_bytes, 128);
}

// --- Precedence: flags > env > file > defaults, one test per pair. ---

#[test]
fn file_beats_defaults() {
    let f = write(".yaml", "drift:\n  window: 5m\n");
    let c = load(Some(f.path()), &Overrides::default(), &[]).unwrap();
    assert_eq!(c.drift.window, Duration::from_secs(300));
    assert_eq!(c.drift.interval, Duration::from_secs(10), "default kept");
}

#[test]
fn env_beats_file() {
    let f = write(
        ".yaml",
        "upstream: http://127.0.0.1:9000\ndrift:\n  window: 5m\n  interval: 20s\n",
    );
    let c = load(
        Some(f.path()),
        &Overrides::default(),
        &[
            ("MLMON_UPSTREAM", "http://127.0.0.1:7000"),
            ("MLMON_DRIFT__WINDOW", "1m"),
        ],
    )
    .unwrap();
    assert_eq!(c.upstream, "http://127.0.0.1:7000", "env beats file");
    assert_eq!(c.drift.window, Duration::from_secs(60), "env beats file");
    assert_eq!(
        c.drift.interval,
        Duration::from_secs(20),
        "the file's other keys of the section stay"
    );
}

#[test]
fn env_beats_defaults() {
    let c = load(
        None,
        &Overrides::default(),
        &[
            ("MLMON_DRIFT__INTERVAL", "3s"),
            ("MLMON_ADMIN__TOKEN", "s3cret"),
        ],
    )
    .unwrap();
    assert_eq!(c.drift.interval, Duration::from_secs(3));
    assert_eq!(c.admin.token.as_deref(), Some("s3cret"));
}

#[test]
fn flag_beats_env() {
    let c = load(
        None,
        &Overrides {
            upstream: Some("http://127.0.0.1:6000".into()),
            ..flags_model("flagmodel")
        },
        &[
            ("MLMON_MODEL__NAME", "envmodel"),
            ("MLMON_UPSTREAM", "http://127.0.0.1:7000"),
        ],
    )
    .unwrap();
    assert_eq!(c.model.name, "flagmodel");
    assert_eq!(c.upstream, "http://127.0.0.1:6000");
}

#[test]
fn flag_beats_file() {
    let f = write(
        ".yaml",
        "listen: 127.0.0.1:1111\nmodel:\n  name: filemodel\n  max_models: 5\nbaseline:\n  files: [a.json, b.json]\n",
    );
    let o = Overrides {
        listen: Some("127.0.0.1:2222".into()),
        baseline_files: vec!["c.json".into()],
        ..flags_model("flagmodel")
    };
    let c = load(Some(f.path()), &o, &[]).unwrap();
    assert_eq!(c.listen, "127.0.0.1:2222");
    assert_eq!(c.model.name, "flagmodel");
    assert_eq!(c.model.max_models, 5, "the file's other model keys stay");
    assert_eq!(
        c.baseline.files,
        vec![std::path::PathBuf::from("c.json")],
        "--baseline replaces the list"
    );
}

#[test]
fn all_three_sources_at_once() {
    let f = write(
        ".toml",
        "[model]\nname = \"filemodel\"\nmax_models = 7\n[drift]\nwindow = \"5m\"\nsample_size = 100\n",
    );
    let c = load(
        Some(f.path()),
        &flags_model("flagmodel"),
        &[
            ("MLMON_MODEL__NAME", "envmodel"),
            ("MLMON_DRIFT__WINDOW", "2m"),
        ],
    )
    .unwrap();
    assert_eq!(c.model.name, "flagmodel", "flag > env > file");
    assert_eq!(c.drift.window, Duration::from_secs(120), "env > file");
    assert_eq!(c.model.max_models, 7, "file > default");
    assert_eq!(c.drift.sample_size, 100, "file > default");
    assert_eq!(c.drift.interval, Duration::from_secs(10), "default");
}

// --- Every key can be set from the environment. ---

/// `MLMON_<SECTION>__<KEY>` for a dotted key.
fn env_name(key: &str) -> String {
    format!(
        "MLMON_{}",
        key.replace(ENTRY, "fraud")
            .replace('.', "__")
            .to_uppercase()
    )
}

#[test]
fn every_key_is_reachable_from_the_environment() {
    let all = keys().unwrap();
    assert!(all.len() > 60, "{} keys", all.len());
    for k in all {
        let key = k.path.replace(ENTRY, "fraud");
        let var = env_name(&k.path);
        let vars = super::load::tests_support::env_tree(&[(var.clone(), "7".to_string())]);
        let value = vars
            .get::<config::Value>(&key)
            .unwrap_or_else(|e| panic!("{var} does not reach {key}: {e}"));
        let text = match k.kind {
            keys::KeyKind::List => value.into_array().unwrap()[0].clone().into_string(),
            keys::KeyKind::Value => value.into_string(),
        };
        assert_eq!(text.unwrap(), "7", "{var}");
        // And the struct takes it: either it is used, or refused with the variable's name —
        // never an unknown key, never ignored.
        if let Err(e) = load(None, &Overrides::default(), &[(&var, "7")]) {
            assert!(!e.contains("unknown field"), "{var}: {e}");
            assert!(e.contains(&var), "{var}: {e}");
        }
    }
}

#[test]
fn explain_and_server_sections_are_read_from_the_environment() {
    // `MLMON_EXPLAIN__*` was once dropped by a hand-kept list of sections.
    let c = load(
        None,
        &Overrides::default(),
        &[
            ("MLMON_EXPLAIN__INTERVAL", "1m"),
            ("MLMON_SERVER__HEADER_TIMEOUT", "3s"),
            ("MLMON_EVENTS__MAX_BYTES", "1048576"),
            ("MLMON_ADMIN__ALLOW_UNAUTHENTICATED", "true"),
            ("MLMON_LIMITS__MAX_NAME_BYTES", "64"),
            ("MLMON_THRESHOLDS__DATA_QUALITY__WARNING", "0.95"),
            ("MLMON_THRESHOLDS__DATA_QUALITY__CRITICAL", "0.75"),
            ("MLMON_MODELS__FRAUD__THRESHOLDS__PSI__WARNING", "0.05"),
            ("MLMON_MODELS__FRAUD__THRESHOLDS__PSI__CRITICAL", "0.1"),
        ],
    )
    .unwrap();
    assert_eq!(c.explain.interval, Duration::from_secs(60));
    assert_eq!(c.server.header_timeout, Duration::from_secs(3));
    assert_eq!(c.events.max_bytes, 1 << 20);
    assert!(c.admin.allow_unauthenticated);
    assert_eq!(c.limits.max_name_bytes, 64);
    assert_eq!(c.thresholds.data_quality, Level::lower(0.95, 0.75));
    assert_eq!(c.thresholds_for("fraud").psi, Level::higher(0.05, 0.1));
}

#[test]
fn service_links_are_ignored_but_unknown_keys_of_a_section_are_refused() {
    load(
        None,
        &Overrides::default(),
        &[
            ("MLMON_PORT", "tcp://10.0.0.1:8000"),
            ("MLMON_SERVICE_HOST", "10.0.0.1"),
            ("MLMON_PORT_8000_TCP_ADDR", "10.0.0.1"),
            ("MLMON_ADMIN_SERVICE_PORT", "9464"),
        ],
    )
    .unwrap();
    let err = load(None, &Overrides::default(), &[("MLMON_DRIFT__WINDW", "5m")]).unwrap_err();
    assert!(
        err.contains("environment variable MLMON_DRIFT__WINDW"),
        "{err}"
    );
    assert!(err.contains("drift.windw"), "{err}");
}

// --- Start-up errors name the source, the key and the value. ---

#[test]
fn wrong_type_from_env_names_variable_key_and_value() {
    let f = write(".yaml", "drift:\n  window: 5m\n");
    let err = load(
        Some(f.path()),
        &Overrides::default(),
        &[("MLMON_DRIFT__SAMPLE_SIZE", "lots")],
    )
    .unwrap_err();
    assert!(
        err.starts_with("environment variable MLMON_DRIFT__SAMPLE_SIZE: "),
        "{err}"
    );
    assert!(err.contains("drift.sample_size"), "{err}");
    assert!(err.contains("\"lots\""), "{err}");
    assert!(
        !err.contains(&f.path().display().to_string()),
        "not the file: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let err = load(
        None,
        &Overrides::default(),
        &[("MLMON_DRIFT__ADAPTIVE", "maybe")],
    )
    .unwrap_err();
    assert!(err.contains("MLMON_DRIFT__ADAPTIVE"), "{err}");
    assert!(err.contains("drift.adaptive"), "{err}");
    assert!(err.contains("\"maybe\""), "{err}");
}

#[test]
fn wrong_type_from_the_file_names_file_key_and_value() {
    let f = write(
        ".yaml",
        "models:\n  fraud:\n    thresholds:\n      psi: {warning: high, critical: 0.2}\n",
    );
    let err = load(Some(f.path()), &Overrides::default(), &[]).unwrap_err();
    let path = f.path().display().to_string();
    assert!(err.starts_with(&format!("{path}: ")), "{err}");
    assert!(err.contains("models.fraud.thresholds.psi.warning"), "{err}");
    assert!(err.contains("\"high\""), "{err}");
    assert!(
        !err.contains("../"),
        "the path as given, not a relative one: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unknown_key_in_the_file_is_named_in_full() {
    let f = write(".yaml", "drift:\n  windw: 5m\n");
    let err = load(Some(f.path()), &Overrides::default(), &[]).unwrap_err();
    assert!(err.starts_with(&f.path().display().to_string()), "{err}");
    assert!(err.contains("drift.windw"), "{err}");
    assert!(err.contains("`window`"), "lists the keys that exist: {err}");
    let f = write(".toml", "listn = \"127.0.0.1:1\"\n");
    let err = load(Some(f.path()), &Overrides::default(), &[]).unwrap_err();
    assert!(err.contains(": listn: unknown field"), "{err}");
}

#[test]
fn bad_durations_are_named_with_their_source() {
    let f = write(".yaml", "drift:\n  window: forever\n");
    let err = load(Some(f.path()), &Overrides::default(), &[]).unwrap_err();
    assert!(err.starts_with(&f.path().display().to_string()), "{err}");
    assert!(err.contains("drift.window"), "{err}");
    assert!(err.contains("\"forever\""), "{err}");

    let err = load(
        Some(f.path()),
        &Overrides::default(),
        &[("MLMON_DRIFT__WINDOW", "10 parsecs")],
    )
    .unwrap_err();
    assert!(
        err.starts_with("environment variable MLMON_DRIFT__WINDOW: drift.window: "),
        "{err}"
    );
    assert!(err.contains("\"10 parsecs\""), "{err}");

    let err = load(
        None,
        &Overrides::default(),
        &[("MLMON_SERVER__BODY_TIMEOUT", "0s")],
    )
    .unwrap_err();
    assert_eq!(
        err,
        "environment variable MLMON_SERVER__BODY_TIMEOUT: server.body_timeout: 0s is not allowed; must be longer than 0s"
    );
}

#[test]
fn half_a_level_is_refused_naming_the_missing_half() {
    let err = load(
        None,
        &Overrides::default(),
        &[("MLMON_THRESHOLDS__PSI__WARNING", "0.15")],
    )
    .unwrap_err();
    assert_eq!(
        err,
        "environment variable(s) MLMON_THRESHOLDS__PSI__WARNING: thresholds.psi.critical: is missing; thresholds.psi is set as a whole (every one of its keys)"
    );
}

#[test]
fn bad_flags_are_named_as_flags() {
    let f = write(".yaml", "listen: 127.0.0.1:1\n");
    let o = Overrides {
        listen: Some("nowhere".into()),
        ..Default::default()
    };
    let err = load(Some(f.path()), &o, &[]).unwrap_err();
    assert!(
        err.starts_with("flag --listen: listen: \"nowhere\""),
        "{err}"
    );
}

#[test]
fn file_syntax_errors_name_the_file_once() {
    let f = write(".yaml", "drift: {window: 5m\n");
    let err = load(Some(f.path()), &Overrides::default(), &[]).unwrap_err();
    let path = f.path().display().to_string();
    assert!(err.starts_with(&format!("{path}: ")), "{err}");
    assert_eq!(err.matches(&path).count(), 1, "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn bad_values_are_named() {
    for (yaml, needle) in [
        ("listen: nowhere\n", "listen: \"nowhere\""),
        ("upstream: ftp://x\n", "upstream: \"ftp://x\""),
        ("upstream: \"::\"\n", "upstream"),
        ("sla:\n  quantile: 2\n", "sla.quantile: 2 is not"),
        (
            "thresholds:\n  psi: {warning: 0.3, critical: 0.2}\n",
            "thresholds.psi: warning 0.3 and critical 0.2",
        ),
        (
            "thresholds:\n  data_quality: {warning: 0.5, critical: 0.75}\n",
            "thresholds.data_quality: warning 0.5 and critical 0.75 do not work (lower is worse",
        ),
        (
            "models:\n  m:\n    thresholds:\n      latency_p95: {warning: 2s, critical: 1s}\n",
            "models.m.thresholds.latency_p95: warning 2s is longer than critical 1s",
        ),
        ("capture:\n  queue: 0\n", "capture.queue: 0 is not allowed"),
        ("drift:\n  sample_size: 0\n", "drift.sample_size: 0"),
        (
            "model:\n  task: regresion\n",
            "model.task: \"regresion\" is not one of: auto, classification, regression",
        ),
        (
            "payload:\n  format: grpc\n",
            "payload.format: \"grpc\" is not one of: auto,",
        ),
        (
            "payload:\n  request_pointer: rows\n",
            "payload.request_pointer: \"rows\" is not an RFC 6901",
        ),
        (
            "payload:\n  feature_names: [a, a]\n",
            "payload.feature_names: \"a\" appears more than once",
        ),
        (
            "explain:\n  max_rows: 1000\n",
            "explain.max_rows: 1000 is not between 1 and 256",
        ),
        ("log:\n  level: \"[\"\n", "log.level"),
        ("admin:\n  token: \"\"\n", "admin.token: is set but empty"),
        // SPEC section 9 keys: zero and absurd values.
        (
            "server:\n  header_timeout: 0s\n",
            "server.header_timeout: 0s is not allowed",
        ),
        (
            "server:\n  header_timeout: 2days\n",
            "server.header_timeout: 2days is too long; at most 1h",
        ),
        (
            "server:\n  body_timeout: 0ms\n",
            "server.body_timeout: 0s is not allowed",
        ),
        (
            "server:\n  max_connections: 0\n",
            "server.max_connections: 0 is not between 1 and 1000000",
        ),
        (
            "server:\n  max_connections: 50000000\n",
            "server.max_connections: 50000000 is not between",
        ),
        (
            "server:\n  admin_max_connections: 0\n",
            "server.admin_max_connections: 0 is not between",
        ),
        (
            "events:\n  max_bytes: 0\n",
            "events.max_bytes: 0 is not between 1024 and",
        ),
        (
            "events:\n  max_bytes: 99999999999999\n",
            "events.max_bytes: 99999999999999 is not between",
        ),
        ("events:\n  ttl: 0s\n", "events.ttl: 0s is not allowed"),
        (
            "limits:\n  max_name_bytes: 0\n",
            "limits.max_name_bytes: 0 is not between 16 and 4096",
        ),
        (
            "limits:\n  max_name_bytes: 100000\n",
            "limits.max_name_bytes: 100000 is not between",
        ),
        (
            "proxy:\n  connect_timeout: 0s\n",
            "proxy.connect_timeout: 0s is not allowed",
        ),
    ] {
        let f = write(".yaml", yaml);
        let err = load(Some(f.path()), &Overrides::default(), &[]).unwrap_err();
        assert!(err.contains(needle), "{yaml:?} gave {err}");
        assert!(
            err.starts_with(&f.path().display().to_string()),
            "{yaml:?} gave {err}"
        );
    }
}

#[test]
fn toml_and_env_lists() {
    let f = write(".toml", "[payload]\nformat = \"oip_v2\"\n");
    let c = load(
        Some(f.path()),
        &Overrides::default(),
        &[("MLMON_PAYLOAD__FEATURE_NAMES", "a, b,c")],
    )
    .unwrap();
    assert_eq!(c.payload.format, crate::payload::PayloadFormat::OipV2);
    assert_eq!(c.payload.feature_names, vec!["a", "b", "c"]);
    let c = load(
        None,
        &Overrides::default(),
        &[("MLMON_PAYLOAD__FEATURE_NAMES", "5")],
    )
    .unwrap();
    assert_eq!(
        c.payload.feature_names,
        vec!["5"],
        "one number is still a list"
    );
}

#[test]
fn per_model_thresholds() {
    let f = write(
        ".yaml",
        "models:\n  fraud:\n    thresholds:\n      psi: {warning: 0.05, critical: 0.1}\n",
    );
    let c = load(Some(f.path()), &Overrides::default(), &[]).unwrap();
    assert_eq!(c.thresholds_for("fraud").psi.warning, 0.05);
    assert_eq!(c.thresholds_for("other").psi.warning, 0.1);
    assert_eq!(
        c.thresholds_for("fraud").data_quality,
        Level::lower(0.9, 0.75),
        "a per-model section starts from the defaults"
    );
}

#[test]
fn missing_file_is_named() {
    let err = load(
        Some(Path::new("/nonexistent/mlmon.yaml")),
        &Overrides::default(),
        &[],
    )
    .unwrap_err();
    assert!(err.contains("/nonexistent/mlmon.yaml"), "{err}");
}

#[test]
fn unsupported_extension_is_named() {
    let f = write(".json", "{}");
    let err = load(Some(f.path()), &Overrides::default(), &[]).unwrap_err();
    assert!(err.contains("unsupported extension \"json\""), "{err}");
}

/// Awkward values for every key, from the environment and from a file: each either loads or
/// ends in one line naming the source and the key; nothing panics.
#[test]
fn hostile_values_end_in_one_line_errors() {
    let values = [
        "",
        " ",
        "-1",
        "0",
        "1e400",
        "nan",
        "-inf",
        "18446744073709551616",
        "99999999999999999999y",
        "true",
        "a,b",
        "[",
        "{x: 1}",
        "line\nbreak",
        "\u{1F4A5}",
        "x # {y",
    ];
    let long = "x".repeat(100_000);
    let mut checked = 0;
    for k in keys().unwrap() {
        let key = k.path.replace(ENTRY, "fraud");
        let var = env_name(&k.path);
        for v in values.iter().copied().chain([long.as_str()]) {
            if let Err(e) = load(None, &Overrides::default(), &[(&var, v)]) {
                assert_eq!(e.lines().count(), 1, "{var}={v:?}: {e}");
                assert!(e.contains(&var), "{var}={v:?}: {e}");
                assert!(e.len() < 1000, "{var}={v:?}: {e}");
            }
            if v.len() > 1000 {
                continue;
            }
            // The same value in a YAML file, as a quoted string and as YAML would read it.
            let mut yaml = String::new();
            let segments: Vec<&str> = key.split('.').collect();
            for (depth, s) in segments.iter().enumerate() {
                yaml.push_str(&"  ".repeat(depth));
                yaml.push_str(s);
                yaml.push(':');
                if depth + 1 < segments.len() {
                    yaml.push('\n');
                }
            }
            for text in [
                format!("{yaml} {}\n", serde_json::to_string(v).unwrap()),
                format!("{yaml} {}\n", v.replace('\n', " ")),
            ] {
                let f = write(".yaml", &text);
                if let Err(e) = load(Some(f.path()), &Overrides::default(), &[]) {
                    assert_eq!(e.lines().count(), 1, "{text:?}: {e}");
                    assert!(
                        e.starts_with(&f.path().display().to_string()),
                        "{text:?}: {e}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 2000, "{checked}");
}

/// The README documents every key: a level's `warning`/`critical` under its pair's name, a
/// per-model key under `models.<name>.thresholds`; never just under its section.
#[test]
fn readme_documents_every_key() {
    let readme = include_str!("../../README.md");
    let mut missing = Vec::new();
    for k in keys().unwrap() {
        let segments: Vec<&str> = k.path.split('.').collect();
        let shortest = segments.len().saturating_sub(2).max(2).min(segments.len());
        let documented = (shortest..=segments.len())
            .map(|n| segments[..n].join("."))
            .any(|prefix| {
                readme.contains(&format!("`{prefix}`")) || readme.contains(&format!("`{prefix}:"))
            });
        if !documented {
            missing.push(k.path.clone());
        }
    }
    assert!(missing.is_empty(), "not in README.md: {missing:?}");
}

#[test]
fn explain_methods_from_the_environment() {
    let c = load(
        None,
        &Overrides::default(),
        &[("MLMON_EXPLAIN__METHODS", "shap,sensitivity")],
    )
    .unwrap();
    assert_eq!(
        c.explain.methods,
        [
            crate::config::ImportanceMethod::Shap,
            crate::config::ImportanceMethod::Sensitivity
        ]
    );
    let e = load(
        None,
        &Overrides::default(),
        &[("MLMON_EXPLAIN__METHODS", "shap,lime")],
    )
    .unwrap_err();
    assert!(
        e.contains("explain.methods") && e.contains("\"lime\" is not one of"),
        "{e}"
    );
}
