//! Streaming against real brokers on 127.0.0.1 (docs/streaming.md): Debian's `nats-server`
//! with JetStream and Tansu, a Kafka-compatible broker (`scripts/test-env.sh` installs both).
//! The capture stream arrives complete and in order per model; a stopped broker never
//! slows the proxy and what is lost is counted; ground truth from a topic or subject gives
//! the same metrics as the HTTP API.
//!
//! Without the brokers installed these tests say so and pass, except under CI (`CI` set) or
//! with `MLMON_REQUIRE_BROKERS=1`, where a missing broker fails them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

use crate::common::{analysed, config, eventually, records_model, scrape, upstream, value, WAIT};
use mlmon::config::{KafkaSinkConfig, KafkaSourceConfig, NatsSinkConfig, NatsSourceConfig};

/// The broker binary `name`: `.tools/bin/<name>`, then `PATH`, then `/usr/sbin`.
fn find(name: &str) -> Option<PathBuf> {
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".tools/bin")
        .join(name);
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(tools)
        .chain(std::env::split_paths(&path).map(|d| d.join(name)))
        .chain(std::iter::once(PathBuf::from("/usr/sbin").join(name)))
        .find(|p| p.is_file())
}

/// The broker binary, or `None` (the test is skipped) when it is missing outside CI.
fn broker_bin(name: &str) -> Option<PathBuf> {
    let found = find(name);
    if found.is_none() {
        let required = std::env::var_os("CI").is_some()
            || std::env::var("MLMON_REQUIRE_BROKERS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{name} is not installed: run scripts/test-env.sh"
        );
        eprintln!("skipped: {name} is not installed (scripts/test-env.sh installs it)");
    }
    found
}

/// A port free at the time of asking.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A broker process, stopped (by its PID) when dropped.
struct Broker {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    async fn start(bin: &PathBuf, args: impl Fn(u16, &std::path::Path) -> Vec<String>) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .args(args(port, dir.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let b = Broker {
            child: Some(child),
            port,
            _dir: dir,
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        eventually(
            &format!("{} listening on {addr}", bin.display()),
            || async move {
                tokio::net::TcpStream::connect(addr)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )
        .await;
        b
    }

    async fn nats(bin: &PathBuf) -> Broker {
        Broker::start(bin, |port, dir| {
            vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-js".into(),
                "-sd".into(),
                dir.display().to_string(),
            ]
        })
        .await
    }

    async fn tansu(bin: &PathBuf) -> Broker {
        Broker::start(bin, |port, _| {
            let url = format!("tcp://127.0.0.1:{port}");
            vec![
                "broker".into(),
                "--listener-url".into(),
                url.clone(),
                "--advertised-listener-url".into(),
                url,
                "--storage-engine".into(),
                "memory://tansu/".into(),
            ]
        })
        .await
    }

    fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn kafka(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates a Kafka topic on a Tansu broker (its own CLI).
fn create_topic(tansu: &PathBuf, broker: &Broker, topic: &str, partitions: u32) {
    let status = Command::new(tansu)
        .args([
            "topic",
            "create",
            "--broker",
            &format!("tcp://127.0.0.1:{}", broker.port),
            "--partitions",
            &partitions.to_string(),
            topic,
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "tansu topic create {topic}: {status}");
}

/// Consumer settings for Tansu, which completes a group join only after the rebalance
/// timeout (`max.poll.interval.ms`, 5 minutes by default; Kafka answers a lone member
/// after `group.initial.rebalance.delay.ms`, 3 s).
fn quick_join() -> std::collections::BTreeMap<String, String> {
    [
        ("session.timeout.ms", "3000"),
        ("max.poll.interval.ms", "3000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

const MODELS: [&str; 2] = ["alpha", "beta"];

/// Sends `n` requests per model through the proxy, interleaved, each with its own id
/// (`{model}-{i}`) and `x = i - 1` (prediction 1 for i ≥ 2); returns each latency.
async fn traffic(proxy: SocketAddr, n: usize) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut took = Vec::new();
    for i in 0..n {
        for m in MODELS {
            let t = Instant::now();
            let r = client
                .post(format!("http://{proxy}/predictions/{m}/v1"))
                .header("x-request-id", format!("{m}-{i}"))
                .json(&json!([{ "x": i as f64 - 1.0, "city": format!("c{}", i % 3) }]))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            took.push(t.elapsed());
        }
    }
    took
}

/// Checks that `records` (in arrival order) are the `n` records per model `traffic` sent,
/// complete and in order per model.
fn check_records(records: &[Value], n: usize) {
    assert_eq!(records.len(), n * MODELS.len(), "{records:?}");
    for m in MODELS {
        let mine: Vec<&Value> = records.iter().filter(|r| r["model"] == m).collect();
        assert_eq!(mine.len(), n, "{m}");
        for (i, r) in mine.iter().enumerate() {
            assert_eq!(r["request_id"], format!("{m}-{i}"), "order of {m}: {r}");
            assert_eq!(r["version"], "v1", "{r}");
            assert_eq!(r["row"], 0);
            assert_eq!(r["features"]["x"], json!(i as f64 - 1.0), "{r}");
            assert_eq!(r["features"]["city"], format!("c{}", i % 3), "{r}");
            assert_eq!(
                r["prediction"].as_f64(),
                Some(f64::from(u8::from(i >= 2))),
                "{r}"
            );
            assert_eq!(r["status"], 200, "{r}");
            assert_eq!(r["redacted"], false);
            let latency = r["latency_seconds"].as_f64().unwrap();
            assert!(latency > 0.0 && latency < 10.0, "{r}");
            let time = r["time"].as_str().unwrap();
            let t = humantime::parse_rfc3339(time).unwrap();
            let age = std::time::SystemTime::now().duration_since(t).unwrap();
            assert!(age < Duration::from_secs(120), "{time}");
        }
    }
}

async fn sink_count(admin: SocketAddr, sink: &str, result: &str) -> f64 {
    let m = scrape(admin).await;
    value(
        &m,
        "mlmon_sink_records_total",
        &[("sink", sink), ("result", result)],
    )
    .unwrap_or(-1.0)
}

/// Waits until `total` records of `sink` are counted (sent, dropped or failed); returns
/// the three counts.
async fn counted(admin: SocketAddr, sink: &str, total: usize) -> (f64, f64, f64) {
    eventually(&format!("{total} {sink} records counted"), || async {
        let sent = sink_count(admin, sink, "sent").await;
        let dropped = sink_count(admin, sink, "dropped").await;
        let failed = sink_count(admin, sink, "failed").await;
        if sent + dropped + failed == total as f64 {
            Ok((sent, dropped, failed))
        } else {
            Err(format!(
                "sent {sent} dropped {dropped} failed {failed} of {total}"
            ))
        }
    })
    .await
}

async fn wait_sink(admin: SocketAddr, sink: &str, result: &str, n: usize) {
    eventually(&format!("{sink} {result} = {n}"), || async {
        match sink_count(admin, sink, result).await {
            v if v == n as f64 => Ok(()),
            v => Err(format!("{v}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_sink_delivers_complete_records_in_order_per_model() {
    let Some(bin) = broker_bin("nats-server") else {
        return;
    };
    let broker = Broker::nats(&bin).await;
    let client = async_nats::connect(broker.nats_url()).await.unwrap();
    let js = jetstream::new(client);
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: "CAPTURE".into(),
            subjects: vec!["mlmon.capture".into()],
            ..Default::default()
        })
        .await
        .unwrap();

    let up = upstream(records_model).await;
    let mut cfg = config(up);
    cfg.privacy.log_values = true;
    cfg.sink.linger = Duration::from_millis(20);
    cfg.sink.nats = Some(NatsSinkConfig {
        url: broker.nats_url(),
        subject: "mlmon.capture".into(),
        jetstream: true,
        credentials: None,
    });
    let running = mlmon::server::start(cfg).await.unwrap();
    let n = 30;
    traffic(running.proxy_addr, n).await;
    analysed(&running, (n * MODELS.len()) as u64).await;
    wait_sink(running.admin_addr, "nats", "sent", n * MODELS.len()).await;

    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("reader".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut records = Vec::new();
    while records.len() < n * MODELS.len() {
        let m = tokio::time::timeout(WAIT, messages.next())
            .await
            .expect("JetStream messages")
            .unwrap()
            .unwrap();
        records.push(serde_json::from_slice::<Value>(&m.payload).unwrap());
        m.ack().await.unwrap();
    }
    check_records(&records, n);
    assert_eq!(sink_count(running.admin_addr, "nats", "dropped").await, 0.0);
    assert_eq!(sink_count(running.admin_addr, "nats", "failed").await, 0.0);
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sink_delivers_complete_records_in_order_per_model() {
    let Some(bin) = broker_bin("tansu") else {
        return;
    };
    let broker = Broker::tansu(&bin).await;
    create_topic(&bin, &broker, "capture", 3);

    let up = upstream(records_model).await;
    let mut cfg = config(up);
    cfg.privacy.log_values = true;
    cfg.sink.linger = Duration::from_millis(20);
    cfg.sink.kafka = Some(KafkaSinkConfig {
        brokers: broker.kafka(),
        topic: "capture".into(),
        options: Default::default(),
    });
    let running = mlmon::server::start(cfg).await.unwrap();
    let n = 30;
    traffic(running.proxy_addr, n).await;
    analysed(&running, (n * MODELS.len()) as u64).await;
    wait_sink(running.admin_addr, "kafka", "sent", n * MODELS.len()).await;

    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", broker.kafka())
        .set("group.id", "reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    for (k, v) in quick_join() {
        cc.set(k, v);
    }
    let consumer: StreamConsumer = cc.create().unwrap();
    consumer.subscribe(&["capture"]).unwrap();
    let mut records = Vec::new();
    let mut partition_of = std::collections::HashMap::new();
    while records.len() < n * MODELS.len() {
        let m = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .expect("Kafka records")
            .unwrap();
        let r: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        assert_eq!(r["model"], key.as_str(), "keyed by model");
        // One model, one partition: that is what keeps its records in order.
        let p = *partition_of.entry(key.clone()).or_insert(m.partition());
        assert_eq!(p, m.partition(), "{key}");
        records.push(r);
    }
    check_records(&records, n);
    running.shutdown();
    running.wait().await;
}

/// With the broker gone, requests through the proxy take no longer than before, the
/// analysis goes on, and every record is counted: sent, dropped or failed.
async fn stopped_broker(
    sink: &'static str,
    mut broker: Broker,
    set: impl Fn(&mut mlmon::config::Config),
) {
    let up = upstream(records_model).await;
    let mut cfg = config(up);
    cfg.sink.queue = 20;
    cfg.sink.batch = 10;
    cfg.sink.linger = Duration::from_millis(10);
    cfg.sink.timeout = Duration::from_secs(2);
    set(&mut cfg);
    let running = mlmon::server::start(cfg).await.unwrap();
    let (proxy, admin) = (running.proxy_addr, running.admin_addr);
    let warm = 10;
    traffic(proxy, warm / 2).await;
    wait_sink(admin, sink, "sent", warm).await;
    // The queue holds 20 records: what the broker does not take fast enough is dropped.
    let before = traffic(proxy, 20).await;
    let offered = warm + 40;
    analysed(&running, offered as u64).await;
    let counted_before = counted(admin, sink, offered).await;
    assert!(counted_before.0 >= warm as f64, "{counted_before:?}");

    broker.stop();
    let n = 100;
    let after = traffic(proxy, n).await;
    let total = offered + n * MODELS.len();
    analysed(&running, total as u64).await;
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    let (m_before, m_after) = (median(&before), median(&after));
    // A proxy waiting on the sink would take up to sink.timeout (2 s) per request.
    assert!(
        m_after < Duration::from_millis(100) && m_after < m_before * 5 + Duration::from_millis(20),
        "median latency {m_before:?} with the broker, {m_after:?} without"
    );
    // Every record is accounted for: nothing more is sent, the rest dropped or failed.
    let counts = counted(admin, sink, total).await;
    assert!(counts.0 >= counted_before.0, "{counts:?}");
    assert!(
        counts.1 > counted_before.1,
        "a full queue drops: {counts:?}"
    );
    assert!(
        counts.2 > counted_before.2,
        "undeliverable batches fail: {counts:?}"
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_nats_server_never_slows_the_proxy_and_losses_are_counted() {
    let Some(bin) = broker_bin("nats-server") else {
        return;
    };
    let broker = Broker::nats(&bin).await;
    let url = broker.nats_url();
    stopped_broker("nats", broker, move |cfg| {
        cfg.sink.nats = Some(NatsSinkConfig {
            url: url.clone(),
            subject: "mlmon.capture".into(),
            jetstream: false,
            credentials: None,
        });
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_kafka_broker_never_slows_the_proxy_and_losses_are_counted() {
    let Some(bin) = broker_bin("tansu") else {
        return;
    };
    let broker = Broker::tansu(&bin).await;
    create_topic(&bin, &broker, "capture", 1);
    let brokers = broker.kafka();
    stopped_broker("kafka", broker, move |cfg| {
        cfg.sink.kafka = Some(KafkaSinkConfig {
            brokers: brokers.clone(),
            topic: "capture".into(),
            options: Default::default(),
        });
    })
    .await;
}

/// Ground truth for the `toy` model's predictions: 5 records, 3 right.
fn truth() -> Vec<Value> {
    vec![
        json!({"request_id": "req-a", "actual": 1}),
        json!({"request_id": "req-b", "row": 0, "actual": true}),
        json!({"request_id": "req-b", "row": 1, "actual": "1"}),
        json!({"request_id": "req-b", "row": 2, "actual": 0}),
        json!({"request_id": "req-c", "actual": 0.0}),
    ]
}

/// A sidecar with `toy`'s predictions analysed: req-a [0.5], req-b [-1, 2, 3], req-c [-0.5].
async fn sidecar_with_predictions(
    set: impl Fn(&mut mlmon::config::Config),
) -> mlmon::server::Running {
    let up = upstream(records_model).await;
    let mut cfg = config(up);
    cfg.model.name = "toy".into();
    cfg.drift.interval = Duration::from_millis(50);
    set(&mut cfg);
    let running = mlmon::server::start(cfg).await.unwrap();
    let client = reqwest::Client::new();
    for (id, xs) in [
        ("req-a", vec![0.5]),
        ("req-b", vec![-1.0, 2.0, 3.0]),
        ("req-c", vec![-0.5]),
    ] {
        let rows: Vec<Value> = xs.iter().map(|x| json!({ "x": x })).collect();
        let r = client
            .post(format!("http://{}/predict", running.proxy_addr))
            .header("x-request-id", id)
            .json(&rows)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    analysed(&running, 3).await;
    running
}

/// The feedback and performance series of `toy`, once `n` pairs are matched and the
/// performance gauges have been refreshed since: the refresh runs on its own timer
/// (`drift.interval`, 50 ms here), so the first scrape that counts `n` matches may still
/// show gauges computed from fewer pairs. Two scrapes 300 ms apart (several refreshes)
/// that agree are taken as settled.
async fn feedback_series(admin: SocketAddr, n: u64) -> Vec<(String, f64)> {
    let mut last = matched_series(admin, n).await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = matched_series(admin, n).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the performance series of `toy` did not settle: last seen {last:?}");
}

/// The feedback and performance series of `toy` as soon as `n` pairs are matched.
async fn matched_series(admin: SocketAddr, n: u64) -> Vec<(String, f64)> {
    eventually(&format!("{n} pairs matched"), || async {
        let m = scrape(admin).await;
        let matched = value(
            &m,
            "mlmon_feedback_total",
            &[("model", "toy"), ("result", "matched")],
        );
        let accuracy = value(
            &m,
            "mlmon_performance",
            &[("model", "toy"), ("metric", "accuracy")],
        );
        if matched != Some(n as f64) || accuracy.is_none() {
            return Err(format!("matched {matched:?}, accuracy {accuracy:?}"));
        }
        Ok(m.iter()
            .filter(|s| {
                (s.name == "mlmon_feedback_total" || s.name == "mlmon_performance")
                    && s.labels.get("model").map(String::as_str) == Some("toy")
            })
            .map(|s| (format!("{}{:?}", s.name, s.labels), s.value))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect())
    })
    .await
}

/// Messages [`feedback_matches_api`] sends to the broker.
const FEEDBACK_MESSAGES: usize = 6;

/// The same ground truth through the HTTP API and through a broker: the same metrics; bad
/// records from the broker are counted and skipped.
async fn feedback_matches_api(
    source: &'static str,
    set: impl Fn(&mut mlmon::config::Config),
    send: impl AsyncFnOnce(Vec<Vec<u8>>),
) {
    let api = sidecar_with_predictions(|_| {}).await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/feedback/toy", api.admin_addr))
        .json(&Value::Array(truth()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let via_api = feedback_series(api.admin_addr, 5).await;

    let streamed = sidecar_with_predictions(set).await;
    let mut messages: Vec<Vec<u8>> = Vec::new();
    // A bad record first: it must not stop what follows.
    messages.push(b"{not json".to_vec());
    messages.push(
        json!({"model": "nope", "request_id": "req-a", "actual": 1})
            .to_string()
            .into_bytes(),
    );
    messages.push(
        json!({"request_id": "req-a", "actual": 1})
            .to_string()
            .into_bytes(),
    );
    let mut records = truth();
    for r in &mut records {
        r["model"] = json!("toy");
    }
    // Two records one by one, three as one array message.
    let rest = records.split_off(2);
    for r in records {
        messages.push(r.to_string().into_bytes());
    }
    messages.push(Value::Array(rest).to_string().into_bytes());
    assert_eq!(messages.len(), FEEDBACK_MESSAGES);
    send(messages).await;
    let via_stream = feedback_series(streamed.admin_addr, 5).await;
    assert_eq!(via_stream, via_api);
    let m = scrape(streamed.admin_addr).await;
    let count = |result| {
        value(
            &m,
            "mlmon_feedback_source_records_total",
            &[("source", source), ("result", result)],
        )
    };
    assert_eq!(count("applied"), Some(5.0));
    assert_eq!(count("invalid"), Some(2.0));
    assert_eq!(count("unknown_model"), Some(1.0));
    for r in [api, streamed] {
        r.shutdown();
        r.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_from_a_kafka_topic_gives_the_same_metrics_as_the_api() {
    let Some(bin) = broker_bin("tansu") else {
        return;
    };
    let broker = Broker::tansu(&bin).await;
    create_topic(&bin, &broker, "feedback", 1);
    let brokers = broker.kafka();
    let b2 = brokers.clone();
    feedback_matches_api(
        "kafka",
        move |cfg| {
            cfg.feedback.kafka = Some(KafkaSourceConfig {
                brokers: brokers.clone(),
                topic: "feedback".into(),
                options: quick_join(),
                ..Default::default()
            });
        },
        async move |messages| {
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", &b2)
                .create()
                .unwrap();
            for m in messages {
                producer
                    .send(FutureRecord::<(), _>::to("feedback").payload(&m), WAIT)
                    .await
                    .unwrap();
            }
        },
    )
    .await;
    // Every message was committed to the group once applied (or skipped): a restart
    // resumes after them.
    let group: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.kafka())
        .set("group.id", "mlmon")
        .create()
        .unwrap();
    eventually("offsets committed", || async {
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition("feedback", 0);
        let committed = group
            .committed_offsets(tpl, Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        match committed.find_partition("feedback", 0).map(|p| p.offset()) {
            Some(rdkafka::Offset::Offset(o)) if o == FEEDBACK_MESSAGES as i64 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_from_a_nats_jetstream_subject_gives_the_same_metrics_as_the_api() {
    let Some(bin) = broker_bin("nats-server") else {
        return;
    };
    let broker = Broker::nats(&bin).await;
    let client = async_nats::connect(broker.nats_url()).await.unwrap();
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "FEEDBACK".into(),
        subjects: vec!["feedback.toy".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let url = broker.nats_url();
    feedback_matches_api(
        "nats",
        move |cfg| {
            cfg.feedback.nats = Some(NatsSourceConfig {
                url: url.clone(),
                subject: "feedback.toy".into(),
                stream: Some("FEEDBACK".into()),
                ..Default::default()
            });
        },
        async move |messages| {
            for m in messages {
                js.publish("feedback.toy", m.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        },
    )
    .await;
    // Every message was acknowledged once applied (or skipped); none is pending.
    let client = async_nats::connect(broker.nats_url()).await.unwrap();
    let js = jetstream::new(client);
    eventually("messages acknowledged", || {
        let js = js.clone();
        async move {
            let mut consumer: jetstream::consumer::PullConsumer = js
                .get_stream("FEEDBACK")
                .await
                .map_err(|e| e.to_string())?
                .get_consumer("mlmon")
                .await
                .map_err(|e| e.to_string())?;
            let info = consumer.info().await.map_err(|e| e.to_string())?;
            if info.ack_floor.stream_sequence == FEEDBACK_MESSAGES as u64
                && info.num_ack_pending == 0
            {
                Ok(())
            } else {
                Err(format!("{info:?}"))
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_from_a_plain_nats_subject_gives_the_same_metrics_as_the_api() {
    let Some(bin) = broker_bin("nats-server") else {
        return;
    };
    // The monitoring port shows when mlmon has subscribed: a plain subscription sees only
    // what is published after it.
    let monitor = free_port();
    let broker = Broker::start(&bin, move |port, _| {
        vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-m".into(),
            monitor.to_string(),
        ]
    })
    .await;
    let url = broker.nats_url();
    let client = async_nats::connect(broker.nats_url()).await.unwrap();
    feedback_matches_api(
        "nats",
        move |cfg| {
            cfg.feedback.nats = Some(NatsSourceConfig {
                url: url.clone(),
                subject: "feedback.core".into(),
                ..Default::default()
            });
        },
        async move |messages| {
            eventually("mlmon subscribed", || async {
                let connz = reqwest::get(format!("http://127.0.0.1:{monitor}/connz?subs=1"))
                    .await
                    .map_err(|e| e.to_string())?
                    .text()
                    .await
                    .map_err(|e| e.to_string())?;
                if connz.contains("\"feedback.core\"") {
                    Ok(())
                } else {
                    Err(connz)
                }
            })
            .await;
            for m in messages {
                client.publish("feedback.core", m.into()).await.unwrap();
            }
            client.flush().await.unwrap();
        },
    )
    .await;
}
