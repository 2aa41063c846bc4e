//! Fuzz targets on stable Rust (cargo-fuzz needs nightly): proptest drives the payload
//! adapters, the baseline loader, the CloudEvents reader and the config loader with
//! arbitrary and mutated inputs. No input may panic; every input ends in a value or in a
//! counted reason / a clear error.
//!
//! `cargo test --test fuzz` runs a short pass (256 cases per target);
//! `make fuzz` runs `MLMON_FUZZ_CASES=20000` in release mode.

use std::path::PathBuf;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PtConfig, TestRunner};

use mlmon::api::events::{EventPairing, Kind, EVENT_TTL, MAX_PENDING_EVENTS};
use mlmon::payload::{PayloadConfig, PayloadFormat};

fn cases() -> u32 {
    std::env::var("MLMON_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn runner() -> TestRunner {
    TestRunner::new(PtConfig {
        cases: cases(),
        failure_persistence: None,
        ..PtConfig::default()
    })
}

fn fixtures(dir: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .filter_map(|p| std::fs::read(p).ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A mutation of `seed`: bytes flipped, cut, spliced with hostile tokens.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let tokens: Vec<&'static [u8]> = vec![
        b"1e400",
        b"-1e400",
        b"NaN",
        b"null",
        b"[]",
        b"{}",
        b"\"",
        b"\\",
        b"[[[[[[[[",
        b"]]]]",
        b"-0",
        b"18446744073709551616",
        b"\"\\u0000\"",
        b"\"x # {y\"",
        b"true",
        b"1.7976931348623157e309",
        b"\"\\ud800\"",
    ];
    let n = seeds.len().max(1);
    (
        0..n,
        proptest::collection::vec((any::<u16>(), 0usize..tokens.len(), 0u8..4), 0..6),
    )
        .prop_map(move |(i, edits)| {
            let mut b = seeds.get(i).cloned().unwrap_or_default();
            for (pos, tok, op) in edits {
                let at = if b.is_empty() {
                    0
                } else {
                    pos as usize % b.len()
                };
                match op {
                    0 => {
                        let t = tokens[tok];
                        b.splice(at..at, t.iter().copied());
                    }
                    1 => b.truncate(at),
                    2 => {
                        let end = (at + 1 + tok).min(b.len());
                        let t = tokens[tok];
                        b.splice(at..end, t.iter().copied());
                    }
                    _ => {
                        if let Some(x) = b.get_mut(at) {
                            *x ^= 1 << (tok % 8);
                        }
                    }
                }
            }
            b
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        mutated(fixtures("payload")),
    ]
}

const FORMATS: [PayloadFormat; 7] = [
    PayloadFormat::Auto,
    PayloadFormat::KserveV1,
    PayloadFormat::OipV2,
    PayloadFormat::Mlflow,
    PayloadFormat::Seldon,
    PayloadFormat::Records,
    PayloadFormat::Pointer,
];

const PATHS: [&str; 6] = [
    "",
    "/v1/models/m:predict",
    "/v2/models/m/infer",
    "/invocations",
    "/api/v1.0/predictions",
    "/predict",
];

#[test]
fn payload_adapters_never_panic() {
    let mut runner = runner();
    let strategy = (
        0..FORMATS.len(),
        0..PATHS.len(),
        body(),
        proptest::option::of(body()),
        proptest::collection::vec("[a-z #{}\"]{0,6}", 0..4),
        proptest::option::of("(/[a-z0-9~]{0,4}){0,3}"),
    );
    runner
        .run(&strategy, |(f, p, req, resp, names, pointer)| {
            let cfg = PayloadConfig {
                format: FORMATS[f],
                feature_names: names.clone(),
                request_pointer: pointer.clone(),
                response_pointer: pointer,
            };
            match mlmon::payload::parse_lenient(&cfg, PATHS[p], &req, resp.as_deref(), &names) {
                Ok(parsed) => {
                    if let Some(e) = parsed.response_error {
                        prop_assert!(!e.reason().is_empty());
                    }
                }
                Err(e) => {
                    prop_assert!(!e.reason().is_empty());
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn baseline_loader_never_panics() {
    let mut runner = runner();
    let strategy = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        mutated(fixtures("baseline")),
    ];
    runner
        .run(&strategy, |bytes| {
            if let Err(e) = mlmon::baseline::Snapshot::from_json_bytes(&bytes, "fuzz input") {
                prop_assert!(!e.to_string().is_empty());
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn config_loader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = runner();
    let keys = prop_oneof![
        Just("listen".to_string()),
        Just("upstream".to_string()),
        Just("drift.window".to_string()),
        Just("model.max_models".to_string()),
        Just("capture.max_body_bytes".to_string()),
        Just("admin.token".to_string()),
        Just("payload.format".to_string()),
        Just("thresholds.psi.warning".to_string()),
        "[a-z_.]{1,12}",
    ];
    let values = prop_oneof![
        Just("1e400".to_string()),
        Just("-1".to_string()),
        Just("''".to_string()),
        Just("[1, 2]".to_string()),
        Just("{a: 1}".to_string()),
        Just("15m".to_string()),
        Just("http://[::1".to_string()),
        "[ -~]{0,12}",
    ];
    let strategy = (
        any::<bool>(),
        proptest::collection::vec((keys.clone(), values.clone()), 0..5),
        proptest::collection::vec((keys, values), 0..3),
        proptest::collection::vec(any::<u8>(), 0..64),
    );
    let n = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&strategy, |(toml, entries, env, junk)| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let mut text = String::new();
            for (k, v) in &entries {
                if toml {
                    text.push_str(&format!("{k} = {v}\n"));
                } else {
                    text.push_str(&format!("{k}: {v}\n"));
                }
            }
            if n.is_multiple_of(4) {
                text.push_str(&String::from_utf8_lossy(&junk));
            }
            let path = dir
                .path()
                .join(format!("c{n}.{}", if toml { "toml" } else { "yaml" }));
            std::fs::write(&path, text).unwrap();
            let env = env.into_iter().map(|(k, v)| {
                (
                    format!("MLMON_{}", k.to_ascii_uppercase().replace('.', "__")),
                    v,
                )
            });
            let overrides = mlmon::config::Overrides::default();
            if let Err(e) = mlmon::config::Config::load_from(Some(&path), &overrides, env) {
                prop_assert!(!e.to_string().is_empty());
            }
            Ok(())
        })
        .unwrap();
}

/// One operation on the pairing store.
#[derive(Debug, Clone)]
enum Op {
    Add { id: u8, response: bool, len: usize },
    Wait(u64),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..16, any::<bool>(), 0usize..3000).prop_map(|(id, response, len)| Op::Add { id, response, len }),
        1 => (0u64..90).prop_map(Op::Wait),
        1 => Just(Op::Expire),
    ]
}

#[test]
fn event_pairing_keeps_its_bounds() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let mut runner = runner();
    let strategy = (1000usize..20_000, proptest::collection::vec(op(), 0..64));
    runner
        .run(&strategy, |(max_bytes, ops)| {
            rt.block_on(async {
                let s = EventPairing::with_max_bytes(max_bytes);
                let t = std::time::SystemTime::now();
                let mut requests_in = 0usize;
                let mut out = 0usize;
                for op in ops {
                    match op {
                        Op::Add { id, response, len } => {
                            let kind = if response {
                                Kind::Response
                            } else {
                                Kind::Request
                            };
                            if !response {
                                requests_in += 1;
                            }
                            let body = Bytes::from(vec![b'x'; len]);
                            out += s
                                .add(
                                    &format!("id{id}"),
                                    kind,
                                    "m",
                                    t,
                                    body,
                                    tokio::time::Instant::now(),
                                )
                                .len();
                        }
                        Op::Wait(secs) => {
                            tokio::time::advance(std::time::Duration::from_secs(secs)).await
                        }
                        Op::Expire => out += s.expire(tokio::time::Instant::now()).len(),
                    }
                    prop_assert!(s.bytes() <= max_bytes, "{} > {max_bytes}", s.bytes());
                    prop_assert!(s.pending() <= MAX_PENDING_EVENTS);
                }
                // Everything left expires; no request is handed out twice or invented.
                tokio::time::advance(EVENT_TTL).await;
                out += s.expire(tokio::time::Instant::now()).len();
                prop_assert_eq!(s.pending(), 0);
                prop_assert_eq!(s.bytes(), 0);
                prop_assert!(out <= requests_in);
                Ok(())
            })
        })
        .unwrap();
}

/// The HTTP side of the CloudEvents reader: arbitrary `ce-*` headers, query and body
/// against a running sidecar; every answer is a JSON 2xx/4xx and the sidecar stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudevents_endpoint_answers_every_input() {
    let mut cfg = mlmon::config::Config {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        ..Default::default()
    };
    cfg.admin.token = Some("t".into());
    let running = mlmon::server::start(cfg).await.unwrap();
    let admin = running.admin_addr;
    let client = reqwest::Client::new();
    let header = "[ -~]{0,24}";
    let strategy = (
        proptest::option::of(prop_oneof![Just("1.0".to_string()), header.prop_map(|s| s)]),
        proptest::option::of(header),
        proptest::option::of(prop_oneof![
            Just("org.kubeflow.serving.inference.request".to_string()),
            Just("org.kubeflow.serving.inference.response".to_string()),
            header.prop_map(|s| s),
        ]),
        proptest::option::of(header),
        proptest::option::of(header),
        proptest::option::of(header),
        body(),
    );
    let inputs: Vec<_> = {
        let mut runner = runner();
        let n = cases().min(512);
        (0..n)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect()
    };
    for (spec, id, ty, svc, time, ct, body) in inputs {
        let mut req = client
            .post(format!("http://{admin}/api/v1/events?token=t"))
            .header("ce-source", "fuzz")
            .body(body);
        for (name, v) in [
            ("ce-specversion", spec),
            ("ce-id", id),
            ("ce-type", ty),
            ("ce-inferenceservicename", svc),
            ("ce-time", time),
            ("content-type", ct),
        ] {
            if let Some(v) = v {
                req = req.header(name, v.trim());
            }
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        assert!(
            (200..300).contains(&status) || (400..500).contains(&status),
            "{status}"
        );
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v.is_object());
    }
    let healthz = client
        .get(format!("http://{admin}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    running.shutdown();
    running.wait().await;
}
