"""A real Alertmanager running the shipped routing tree and inhibitions (receivers swapped
for a loopback webhook per receiver): inhibition, grouping per model and routing as seen by
the receivers. Needs prometheus-alertmanager, not the mlmon binary."""

from __future__ import annotations

import time

import pytest
import yaml

from helpers import ManagedProcess, free_port, http_json, local_alertmanager_config, wait_http_ok, wait_until
from webhook_receiver import WebhookReceiver


@pytest.fixture
def alertmanager(alertmanager_bin, tmp_path):
    hook = WebhookReceiver().start()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(yaml.safe_dump(local_alertmanager_config(hook.url)))
    port = free_port()
    proc = ManagedProcess.launch("alertmanager", [
        alertmanager_bin, f"--config.file={cfg}", f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
    ], tmp_path)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/-/ready", timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}", hook
    finally:
        proc.stop()
        hook.stop()


def alert(**labels) -> dict:
    return {"labels": {"job": "mlmon", **labels},
            "annotations": {"summary": f"{labels['alertname']} {labels.get('model')}", "description": "d",
                            "recommendation": "r", "runbook_url": "https://example.invalid/runbook"}}


def test_inhibition_grouping_and_routing(alertmanager):
    url, hook = alertmanager
    http_json(f"{url}/api/v2/alerts", [
        # fraud: critical drift on `age` mutes the drift warning on `amount` (same model + event)
        alert(alertname="MlmonFeatureDrift", severity="critical", event="drift_detected", model="fraud", feature="age"),
        alert(alertname="MlmonFeatureDrift", severity="warning", event="drift_detected", model="fraud", feature="amount"),
        # ... but not a warning of another event kind for the same model
        alert(alertname="MlmonLatencyP95High", severity="warning", event="sla_violation", model="fraud"),
        # churn: two drift warnings, grouped into one notification
        alert(alertname="MlmonFeatureDrift", severity="warning", event="drift_detected", model="churn", feature="a"),
        alert(alertname="MlmonFeatureDrift", severity="warning", event="drift_detected", model="churn", feature="b"),
    ])

    def delivered():
        got = {(p, a["labels"]["model"], a["labels"].get("feature"), a["labels"]["severity"]) for p, a in hook.alerts()}
        return got if len(got) >= 6 else None

    wait_until(delivered, timeout=30, what="notifications at the webhook")
    time.sleep(3)  # several group intervals: anything inhibited would have arrived by now
    got = {(p, a["labels"]["model"], a["labels"].get("feature"), a["labels"]["severity"]) for p, a in hook.alerts()}
    assert got == {
        ("/mlmon-events", "fraud", "age", "critical"),
        ("/oncall-critical", "fraud", "age", "critical"),
        # critical drift also goes to the retraining trigger (docs/retraining.md)
        ("/mlmon-retrain", "fraud", "age", "critical"),
        ("/mlmon-events", "fraud", None, "warning"),
        ("/sre-slack", "fraud", None, "warning"),
        ("/mlmon-events", "churn", "a", "warning"),
        ("/mlmon-events", "churn", "b", "warning"),
        ("/ml-team-slack", "churn", "a", "warning"),
        ("/ml-team-slack", "churn", "b", "warning"),
    }
    # grouping by (alertname, namespace, job, model): churn's two features in one notification
    churn = [body for p, body in hook.notifications if p == "/ml-team-slack" and body["groupLabels"].get("model") == "churn"]
    assert churn and len(churn[0]["alerts"]) == 2
    assert churn[0]["groupLabels"] == {"alertname": "MlmonFeatureDrift", "job": "mlmon", "model": "churn"}
