"""End to end: an mlmon admin endpoint scraped by a real Prometheus (rules loaded, 1 s
intervals), alerts sent to a real Alertmanager running the shipped routing tree, and a
webhook receiver on 127.0.0.1 standing in for every receiver. Drifted traffic must make the
drift alert arrive at the webhook with its labels and annotations, and every PromQL
expression of every dashboard must return data from that Prometheus.

Beside the target, a real `mlmon serve` fronts tests/py/versioned_upstream.py (v1 good, v2
slower, failing and wrong more often) under versioned traffic with ground truth, scraped by
the same Prometheus: the candidate-worse alert (MlmonVersionWorse) must arrive too, and the
Versions dashboard has data.

Targets (E2E_TARGETS):
  "mlmon" - the real binary: `mlmon demo --drift-after $MLMON_E2E_DRIFT_AFTER` (default 10 s).
            Binary from the mlmon_bin fixture ($MLMON_BINARY, $MLMON_BIN, target/debug, target/release);
            missing binary = failure, not a skip.
  "fake"  - tests/py/fake_mlmon.py, a Python stand-in serving the SPEC metric
            names; it exists to develop the plumbing and is not evidence about mlmon.
The default is the real binary; MLMON_E2E_TARGETS=mlmon,fake runs both. MLMON_E2E_ALERT_TIMEOUT bounds the wait for
the drift alert (default 60 s for the fake, 300 s for mlmon demo).
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse

import pytest
import yaml

from fake_mlmon import FakeMlmon
from helpers import (REPO, ManagedProcess, dashboard_queries, dashboards, free_port, http_json, local_alertmanager_config,
                         substitute, wait_http_ok, wait_until, write_fast_rules)
from versioned_upstream import VersionedTraffic, VersionedUpstream
from webhook_receiver import WebhookReceiver

# The real sidecar is what the end-to-end test proves (`make test` builds it first).
E2E_TARGETS = os.environ.get("MLMON_E2E_TARGETS", "mlmon").split(",")

JOB = "mlmon"
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600"}
# Panels that need data from outside mlmon (cAdvisor/kubelet); they must run without error
# but may be empty outside Kubernetes.
EXTERNAL_METRICS = re.compile(r"\bcontainer_\w+")


@pytest.fixture(scope="module", params=E2E_TARGETS)
def target(request, tmp_path_factory, mlmon_bin):
    """(kind, host:port of the admin endpoint)."""
    kind = request.param
    if kind == "fake":
        fake = FakeMlmon(drift_after=3.0).start()
        yield kind, fake.address
        fake.stop()
    elif kind == "mlmon":
        logs = tmp_path_factory.mktemp("mlmon")
        admin = f"127.0.0.1:{free_port()}"
        drift_after = os.environ.get("MLMON_E2E_DRIFT_AFTER", "10")
        # --shadow: version 2 of the demo model on shadow traffic, disagreeing on ~8 % of rows.
        proc = ManagedProcess.launch("mlmon-demo", [str(mlmon_bin), "demo", "--shadow", "--duration", "900",
                                                    "--drift-after", drift_after,
                                         "--listen", f"127.0.0.1:{free_port()}", "--admin-listen", admin], logs)
        try:
            wait_http_ok(f"http://{admin}/healthz", timeout=60, proc=proc)
            yield kind, admin
        finally:
            proc.stop()
    else:
        pytest.fail(f"unknown E2E target {kind!r} (use mlmon or fake)")


VERSIONS_MODEL = "ab-model"


def nats_server_bin() -> str:
    found = shutil.which("nats-server") or next((p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server")
                                                   if os.access(p, os.X_OK)), None)
    if not found:
        pytest.fail("nats-server is not installed: run scripts/test-env.sh (make deps)")
    return found


@pytest.fixture(scope="module")
def versions_target(tmp_path_factory, mlmon_bin):
    """host:port of the admin endpoint of a real mlmon in front of two model versions. It also
    publishes its capture stream to, and reads ground truth from, a real NATS server, so the
    streaming panels and rules have data (docs/streaming.md)."""
    tmp = tmp_path_factory.mktemp("mlmon-versions")
    nats_port = free_port()
    nats_monitor = free_port()
    nats = ManagedProcess.launch("nats-server", [nats_server_bin(), "-a", "127.0.0.1", "-p", str(nats_port),
                                                 "-m", str(nats_monitor)], tmp)
    wait_http_ok(f"http://127.0.0.1:{nats_monitor}/healthz", timeout=30, proc=nats)
    upstream = VersionedUpstream().start()
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    cfg = tmp / "mlmon.yaml"
    nats_url = f"nats://127.0.0.1:{nats_port}"
    cfg.write_text(yaml.safe_dump({
        "model": {"name": VERSIONS_MODEL, "version": "v1", "task": "classification"},
        "payload": {"feature_names": ["x0", "x1"]},
        "drift": {"interval": "1s"},
        "admin": {"allow_unauthenticated": True},
        "sink": {"nats": {"url": nats_url, "subject": "mlmon.capture"}},
        "feedback": {"nats": {"url": nats_url, "subject": "mlmon.feedback"}},
    }))
    proc = ManagedProcess.launch("mlmon-versions", [str(mlmon_bin), "serve", "--config", str(cfg), "--listen", listen,
                                                    "--admin-listen", admin, "--upstream", upstream.url], tmp)
    traffic = None
    try:
        wait_http_ok(f"http://{admin}/readyz", timeout=60, proc=proc)
        traffic = VersionedTraffic(f"http://{listen}", f"http://{admin}", VERSIONS_MODEL).start()
        yield admin
    finally:
        if traffic:
            traffic.stop()
        proc.stop()
        upstream.stop()
        nats.stop()


@pytest.fixture(scope="module")
def stack(target, versions_target, prometheus_bin, alertmanager_bin, tmp_path_factory):
    kind, admin = target
    tmp = tmp_path_factory.mktemp("stack")
    hook = WebhookReceiver().start()
    procs: list[ManagedProcess] = []
    try:
        am_port = free_port()
        am_cfg = tmp / "alertmanager.yml"
        am_cfg.write_text(yaml.safe_dump(local_alertmanager_config(hook.url)))
        am = ManagedProcess.launch("alertmanager", [
            alertmanager_bin, f"--config.file={am_cfg}", f"--storage.path={tmp / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
        ], tmp)
        procs.append(am)
        wait_http_ok(f"http://127.0.0.1:{am_port}/-/ready", timeout=30, proc=am)

        rules = write_fast_rules(tmp / "rules", for_duration="1s")
        prom_cfg = tmp / "prometheus.yml"
        prom_cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rules],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [admin, versions_target]}]}],
        }))
        prom_port = free_port()
        prom = ManagedProcess.launch("prometheus", [
            prometheus_bin, f"--config.file={prom_cfg}", f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--rules.alert.resend-delay=1s",
        ], tmp)
        procs.append(prom)
        prom_url = f"http://127.0.0.1:{prom_port}"
        wait_http_ok(f"{prom_url}/-/ready", timeout=60, proc=prom)
        yield {"kind": kind, "prometheus": prom_url, "alertmanager": f"http://127.0.0.1:{am_port}", "hook": hook,
               "procs": procs}
    finally:
        for p in reversed(procs):
            p.stop()
        hook.stop()


def query(prom: str, expr: str) -> list[dict]:
    res = http_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert res["status"] == "success", res
    return res["data"]["result"]


@pytest.fixture(scope="module")
def drift_alert(stack):
    """The first MlmonFeatureDrift notification at the events webhook."""
    default = 60 if stack["kind"] == "fake" else 300
    timeout = float(os.environ.get("MLMON_E2E_ALERT_TIMEOUT", default))

    def arrived():
        for path, alert in stack["hook"].alerts("/mlmon-events"):
            if alert["labels"].get("alertname") == "MlmonFeatureDrift" and alert["status"] == "firing":
                return alert
        return None

    try:
        return wait_until(arrived, timeout=timeout, interval=1, what="MlmonFeatureDrift at the webhook")
    except TimeoutError:
        firing = query(stack["prometheus"], "ALERTS")
        logs = "\n".join(f"--- {p.name}\n{p.log_tail(15)}" for p in stack["procs"])
        pytest.fail(f"no drift alert within {timeout}s; ALERTS in Prometheus: {firing}\n{logs}")


def test_prometheus_scrapes_the_target_and_loads_the_rules(stack):
    prom = stack["prometheus"]
    wait_until(lambda: query(prom, f'up{{job="{JOB}"}} == 1'), timeout=30, what="up == 1")
    groups = http_json(f"{prom}/api/v1/rules")["data"]["groups"]
    names = {g["name"] for g in groups}
    assert {"mlmon-drift", "mlmon-fleet-drift", "mlmon-latency", "mlmon-requests"} <= names
    unhealthy = [(r.get("name"), r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") == "err"]
    assert not unhealthy, unhealthy


def test_drift_alert_arrives_at_the_webhook_with_labels_and_annotations(stack, drift_alert):
    labels, ann = drift_alert["labels"], drift_alert["annotations"]
    assert labels["event"] == "drift_detected"
    assert labels["severity"] in {"warning", "critical"}
    assert labels["job"] == JOB and labels["kind"] == "input"
    assert labels["model"] and labels["feature"]
    assert labels["feature"] in ann["summary"] and labels["model"] in ann["summary"]
    assert re.search(r"PSI \d+\.\d{3} ", ann["description"]), ann["description"]
    assert f"of model {labels['model']} (job {JOB})" in ann["description"]
    assert ann["recommendation"].startswith("Compare live and baseline distributions of " + labels["feature"])
    assert ann["runbook_url"].endswith("/docs/runbook.md#mlmonfeaturedrift")
    # routed to a human receiver as well, by severity
    human = "/oncall-critical" if labels["severity"] == "critical" else "/ml-team-slack"
    wait_until(lambda: any(a["labels"].get("alertname") == "MlmonFeatureDrift" for _, a in stack["hook"].alerts(human)),
               timeout=15, what=f"drift alert at {human}")
    # the notification is grouped per model and alert name
    bodies = [b for p, b in stack["hook"].notifications if p == "/mlmon-events"
              and b["groupLabels"].get("alertname") == "MlmonFeatureDrift"]
    assert bodies[0]["groupLabels"]["model"] == labels["model"]

    if stack["kind"] == "fake":
        # the stand-in jumps straight to critical on `amount` with PSI 0.35
        assert labels["feature"] == "amount" and labels["severity"] == "critical"
        assert "PSI 0.350 " in ann["description"]
        # the simultaneous warning is inhibited by the critical one at every receiver
        warnings = [a for _, a in stack["hook"].alerts() if a["labels"].get("alertname") == "MlmonFeatureDrift"
                    and a["labels"]["severity"] == "warning"]
        assert not warnings


def test_shadow_disagreement_alert_arrives_at_the_webhook(stack, drift_alert):
    """The demo's candidate (version 2) agrees on ~92 % of rows: below the 95 % warning."""
    if stack["kind"] == "fake":
        pytest.skip("the stand-in's agreement (0.92) is a constant, not evidence")

    def arrived():
        for _, alert in stack["hook"].alerts("/mlmon-events"):
            if alert["labels"].get("alertname") == "MlmonShadowDisagreement" and alert["status"] == "firing":
                return alert
        return None

    alert = wait_until(arrived, timeout=120, interval=1, what="MlmonShadowDisagreement at the webhook")
    labels, ann = alert["labels"], alert["annotations"]
    assert labels["event"] == "shadow_disagreement" and labels["job"] == JOB
    assert labels["model"] == "credit-risk"
    m = re.search(r"for only (\d+(?:\.\d+)?)% of the rows", ann["description"])
    assert m and 80 < float(m.group(1)) < 95, ann["description"]
    assert ann["runbook_url"].endswith("/docs/runbook.md#mlmonshadowdisagreement")
    # the same figure from the sidecar's API, computed from the rows both models answered
    value = query(stack["prometheus"], 'min(mlmon_shadow_agreement{model="credit-risk"})')
    assert value and 0.8 < float(value[0]["value"][1]) < 0.95


def promql_regex(value: str) -> str:
    """A literal label value as a regex inside a PromQL double-quoted string.

    `re.escape` writes `\\-` for `-`; PromQL strings need their backslashes doubled, or
    `"credit\\-risk"` is an invalid escape and Prometheus answers 400.
    """
    return re.escape(value).replace("\\", "\\\\")


@pytest.fixture(scope="module")
def version_alert(stack):
    """The first critical MlmonVersionWorse notification at the events webhook."""
    def arrived():
        for path, alert in stack["hook"].alerts("/mlmon-events"):
            labels = alert["labels"]
            if (labels.get("alertname") == "MlmonVersionWorse" and alert["status"] == "firing"
                    and labels.get("severity") == "critical"):
                return alert
        return None

    try:
        return wait_until(arrived, timeout=180, interval=1, what="MlmonVersionWorse at the webhook")
    except TimeoutError:
        verdicts = query(stack["prometheus"], "mlmon_version_comparison_verdict")
        logs = "\n".join(f"--- {p.name}\n{p.log_tail(15)}" for p in stack["procs"])
        pytest.fail(f"no version alert within 180s; verdicts in Prometheus: {verdicts}\n{logs}")


def test_candidate_worse_alert_arrives_at_the_webhook(stack, version_alert):
    labels, ann = version_alert["labels"], version_alert["annotations"]
    assert labels["model"] == VERSIONS_MODEL and labels["job"] == JOB
    assert (labels["version"], labels["reference"]) == ("v2", "v1")
    assert labels["metric"] in {"accuracy", "error_rate"}
    assert labels["event"] == "performance_degradation"
    assert f"Version v2 of model {VERSIONS_MODEL} is clearly worse than v1 on {labels['metric']}" == ann["summary"]
    assert re.search(r"p-value [0-9.e+-]+ below 0\.001", ann["description"]), ann["description"]
    assert ann["runbook_url"].endswith("/docs/runbook.md#mlmonversionworse")
    wait_until(lambda: any(a["labels"].get("alertname") == "MlmonVersionWorse" for _, a in stack["hook"].alerts("/oncall-critical")),
               timeout=15, what="version alert at /oncall-critical")


def dashboard_values(drift_alert) -> dict:
    """Variable values: the demo's drifting model and the versioned model, v1 against v2."""
    model = promql_regex(drift_alert["labels"]["model"]) + "|" + promql_regex(VERSIONS_MODEL)
    return {"job": JOB, "model": model, "feature": ".*", "version_a": "v1", "version_b": "v2"}


def test_every_dashboard_query_returns_data(stack, drift_alert, version_alert):
    prom = stack["prometheus"]
    values = {**dashboard_values(drift_alert), **BUILTINS}
    empty, checked = [], 0
    for name, dash in dashboards().items():
        for where, expr in dashboard_queries(dash):
            q = substitute(expr, values)
            result = query(prom, q)  # errors fail inside query()
            checked += 1
            if not result and not EXTERNAL_METRICS.search(q):
                empty.append(f"{name} {where}: {q}")
    assert checked > 50
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_every_dashboard_variable_query_returns_values(stack, drift_alert, version_alert):
    prom = stack["prometheus"]
    values = dashboard_values(drift_alert)
    for name, dash in dashboards().items():
        for var in dash["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.+), (\w+)\)", var["query"]["query"])
            assert m, var["query"]
            selector, label = substitute(m.group(1), values), m.group(2)
            res = http_json(f"{prom}/api/v1/series?" + urllib.parse.urlencode({"match[]": selector}))
            found = {s.get(label) for s in res["data"]} - {None}
            assert found, f"{name} variable {var['name']}: no {label} values for {selector}"
