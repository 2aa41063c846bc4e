"""End to end, from drift to a retraining call: `mlmon demo` drifts → a real Prometheus (the
shipped rules, `for:` shortened) fires MlmonFeatureDrift → a real Alertmanager routes it with
the shipped routing tree to the `mlmon-retrain` receiver → `mlmon trigger` → the configured
retraining endpoint (a webhook receiver on 127.0.0.1 standing in for Argo/GitHub) receives
exactly ONE HMAC-signed call, and Alertmanager's repeats within the cooldown are suppressed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

import pytest
import requests
import yaml

from helpers import (ManagedProcess, free_port, local_alertmanager_config, wait_http_ok, wait_until,
                     write_fast_rules)
from webhook_receiver import WebhookReceiver

SECRET = "retrain-hmac-key"
AM_TOKEN = "alertmanager-to-trigger"


@pytest.fixture(scope="module")
def loop(mlmon_bin, prometheus_bin, alertmanager_bin, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trigger-loop")
    procs: list[ManagedProcess] = []
    endpoint = WebhookReceiver().start()
    try:
        admin = f"127.0.0.1:{free_port()}"
        demo = ManagedProcess.launch("mlmon-demo", [
            str(mlmon_bin), "demo", "--duration", "900", "--drift-after", "10",
            "--listen", f"127.0.0.1:{free_port()}", "--admin-listen", admin], tmp)
        procs.append(demo)
        wait_http_ok(f"http://{admin}/healthz", timeout=60, proc=demo)

        trigger_port = free_port()
        trigger_cfg = tmp / "trigger.yaml"
        trigger_cfg.write_text(yaml.safe_dump({
            "listen": f"127.0.0.1:{trigger_port}",
            "token_env": "TRIGGER_TOKEN",
            "record_file": str(tmp / "triggered.jsonl"),
            "cooldown": "1h",
            "actions": [{
                "name": "retrain",
                "match": {"alertname": ["MlmonFeatureDrift", "MlmonPerformanceDrop"]},
                "dedup_by": ["alertname", "model"],
                "http": {
                    "url": f"{endpoint.url}/retrain",
                    "hmac_secret_env": "TRIGGER_HMAC",
                    "body": '{"event_type": "retrain", "client_payload": {"model": {{ labels.model }}, '
                            '"feature": {{ labels.feature|default("") }}, "severity": {{ labels.severity }}}}',
                },
            }],
        }))
        trigger = ManagedProcess.launch("mlmon-trigger", [str(mlmon_bin), "trigger", "--config", str(trigger_cfg)],
                                        tmp, env={"TRIGGER_TOKEN": AM_TOKEN, "TRIGGER_HMAC": SECRET})
        procs.append(trigger)
        trigger_url = f"http://127.0.0.1:{trigger_port}"
        wait_http_ok(f"{trigger_url}/healthz", timeout=30, proc=trigger)

        # The shipped routing tree; the retrain receiver points at the trigger with its token,
        # every other receiver at the stand-in webhook. Repeats every 2 s to test the cooldown.
        am_cfg = local_alertmanager_config(endpoint.url, repeat_interval="2s")
        for receiver in am_cfg["receivers"]:
            if receiver["name"] == "mlmon-retrain":
                receiver["webhook_configs"] = [{
                    "url": f"{trigger_url}/alertmanager", "send_resolved": False,
                    "http_config": {"authorization": {"credentials": AM_TOKEN}},
                }]
        (tmp / "alertmanager.yml").write_text(yaml.safe_dump(am_cfg))
        am_port = free_port()
        am = ManagedProcess.launch("alertmanager", [
            alertmanager_bin, f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="], tmp)
        procs.append(am)
        wait_http_ok(f"http://127.0.0.1:{am_port}/-/ready", timeout=30, proc=am)

        rules = write_fast_rules(tmp / "rules", for_duration="1s")
        (tmp / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rules],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": "mlmon", "static_configs": [{"targets": [admin]}]}],
        }))
        prom_port = free_port()
        prom = ManagedProcess.launch("prometheus", [
            prometheus_bin, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--rules.alert.resend-delay=1s"], tmp)
        procs.append(prom)
        wait_http_ok(f"http://127.0.0.1:{prom_port}/-/ready", timeout=60, proc=prom)
        yield {"trigger": trigger_url, "endpoint": endpoint, "procs": procs, "record": tmp / "triggered.jsonl"}
    finally:
        for p in reversed(procs):
            p.stop()
        endpoint.stop()


def decisions(trigger_url: str) -> list[dict]:
    r = requests.get(f"{trigger_url}/triggers", headers={"Authorization": f"Bearer {AM_TOKEN}"}, timeout=5)
    r.raise_for_status()
    return r.json()["records"]


def test_drift_starts_one_signed_retraining_call_and_the_cooldown_holds(loop):
    timeout = float(os.environ.get("MLMON_E2E_ALERT_TIMEOUT", 300))

    def triggered():
        return [d for d in decisions(loop["trigger"]) if d["result"] == "triggered"] or None

    try:
        first = wait_until(triggered, timeout=timeout, interval=1, what="a triggered retraining call")[0]
    except TimeoutError:
        logs = "\n".join(f"--- {p.name}\n{p.log_tail(15)}" for p in loop["procs"])
        pytest.fail(f"no retraining call within {timeout}s; trigger records: {decisions(loop['trigger'])}\n{logs}")
    assert first["alertname"] == "MlmonFeatureDrift" and first["status"] == "firing"
    key = first["key"]

    # Alertmanager keeps re-sending (repeat_interval 2 s, new alerts for other features):
    # those reach the trigger and are suppressed by the 1 h cooldown of the same key.
    wait_until(lambda: any(d["result"] == "suppressed" and d["key"] == key for d in decisions(loop["trigger"])),
               timeout=60, interval=1, what="a suppressed repeat")
    time.sleep(3)
    calls = [(h, raw) for path, h, raw in loop["endpoint"].requests if path == "/retrain"]
    per_model = {}
    for headers, raw in calls:
        per_model.setdefault(json.loads(raw)["client_payload"]["model"], []).append((headers, raw))
    model = key.split("model=")[1]
    assert len(per_model[model]) == 1, f"{len(per_model[model])} calls for {model}: {calls}"

    headers, raw = per_model[model][0]
    expected = "sha256=" + hmac.new(SECRET.encode(), headers["x-mlmon-timestamp"].encode() + b"." + raw,
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-mlmon-signature-256"], expected)
    assert abs(int(headers["x-mlmon-timestamp"]) - time.time()) < 600
    body = json.loads(raw)
    assert body["event_type"] == "retrain"
    assert body["client_payload"]["severity"] == "critical"
    assert body["client_payload"]["feature"]

    # The record file holds the same decisions, one JSON object a line.
    lines = [json.loads(line) for line in loop["record"].read_text().splitlines()]
    assert [d["result"] for d in lines if d["key"] == key][:2] == ["triggered", "suppressed"]

    # Without the token, the trigger refuses the notification.
    r = requests.post(f"{loop['trigger']}/alertmanager", json={"alerts": []}, timeout=5)
    assert r.status_code == 401 and "token" in r.json()["error"]
