"""alertmanager/alertmanager.yml: amtool validation, the routing table, grouping,
cool-down and inhibition settings."""

from __future__ import annotations

import pytest
import yaml

from helpers import ALERTMANAGER_CONFIG, EVENTS, alert_rules, run

CONFIG = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())


def test_amtool_check_config_accepts_the_example(amtool):
    res = run([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout
    assert "5 receivers" in res.stdout


ROUTES = [
    # labels -> receivers, in order
    ({"alertname": "MlmonFeatureDrift", "severity": "critical", "event": "drift_detected", "model": "fraud"},
     "mlmon-events,mlmon-retrain,oncall-critical"),
    ({"alertname": "MlmonFeatureDrift", "severity": "warning", "event": "drift_detected", "model": "fraud"},
     "mlmon-events,ml-team-slack"),
    ({"alertname": "MlmonPerformanceDrop", "severity": "warning", "event": "performance_degradation", "model": "m"},
     "mlmon-events,mlmon-retrain,ml-team-slack"),
    ({"alertname": "MlmonDataQualityLow", "severity": "warning", "event": "data_quality", "model": "m"},
     "mlmon-events,ml-team-slack"),
    ({"alertname": "MlmonAnomalyRateHigh", "severity": "warning", "event": "anomaly_spike", "model": "m"},
     "mlmon-events,ml-team-slack"),
    ({"alertname": "MlmonLatencyP95High", "severity": "warning", "event": "sla_violation", "model": "m"},
     "mlmon-events,sre-slack"),
    ({"alertname": "MlmonTrafficStale", "severity": "warning", "event": "traffic_stale", "model": "m"},
     "mlmon-events,sre-slack"),
    ({"alertname": "MlmonErrorRateHigh", "severity": "critical", "event": "sla_violation", "model": "m"},
     "mlmon-events,oncall-critical"),
    ({"alertname": "MlmonTargetDown", "severity": "critical", "event": "traffic_stale", "job": "mlmon"},
     "mlmon-events,oncall-critical"),
    ({"alertname": "MlmonStreamRecordsLost", "severity": "warning", "event": "stream_loss", "job": "mlmon"},
     "mlmon-events,sre-slack"),
    ({"alertname": "MlmonFeedbackRecordsSkipped", "severity": "warning", "event": "stream_loss", "job": "mlmon"},
     "mlmon-events,sre-slack"),
    # an alert that is not mlmon's (no event label) is not sent to the automation webhook
    ({"alertname": "SomethingElse", "severity": "critical"}, "oncall-critical"),
    ({"alertname": "SomethingElse"}, "ml-team-slack"),
]


@pytest.mark.parametrize("labels,receivers", ROUTES, ids=[f"{l['alertname']}-{l.get('severity', 'none')}" for l, _ in ROUTES])
def test_amtool_routes(amtool, labels, receivers):
    args = [f"{k}={v}" for k, v in labels.items()]
    res = run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
               f"--verify.receivers={receivers}", *args])
    assert res.returncode == 0, f"expected {receivers}, got: {res.stdout.strip()} {res.stderr.strip()}"
    assert res.stdout.strip() == receivers


def test_amtool_routes_test_detects_a_wrong_expectation(amtool):
    res = run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
               "--verify.receivers=sre-slack", "severity=critical", "event=drift_detected", "model=m"])
    assert res.returncode != 0


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_alert_reaches_the_events_webhook_and_a_human(amtool, rule):
    labels = {"alertname": rule["alert"], **rule["labels"], "model": "m", "job": "mlmon"}
    res = run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
               *[f"{k}={v}" for k, v in labels.items()]])
    receivers = res.stdout.strip().split(",")
    # the retraining trigger gets critical feature drift and every performance drop, as well
    retrain = rule["alert"] == "MlmonPerformanceDrop" or (
        rule["alert"] == "MlmonFeatureDrift" and rule["labels"]["severity"] == "critical")
    assert ("mlmon-retrain" in receivers) == retrain, receivers
    receivers = [r for r in receivers if r != "mlmon-retrain"]
    assert receivers[0] == "mlmon-events"
    assert len(receivers) == 2 and receivers[1] in {"oncall-critical", "ml-team-slack", "sre-slack"}
    if rule["labels"]["severity"] == "critical":
        assert receivers[1] == "oncall-critical"


def test_grouping_per_model_and_alert_with_cool_down():
    route = CONFIG["route"]
    assert {"alertname", "model"} <= set(route["group_by"])
    assert route["repeat_interval"] == "4h"
    critical = next(r for r in route["routes"] if r["receiver"] == "oncall-critical")
    assert critical["repeat_interval"] == "1h"
    events = route["routes"][0]
    assert events["receiver"] == "mlmon-events" and events["continue"] is True
    assert set(events["matchers"][0].split("=~")[1].strip('"').split("|")) == EVENTS


def test_warnings_are_inhibited_by_criticals_of_the_same_model_and_event():
    (rule,) = CONFIG["inhibit_rules"]
    assert rule["source_matchers"] == ['severity="critical"']
    assert rule["target_matchers"] == ['severity="warning"']
    assert {"model", "event", "job", "namespace"} == set(rule["equal"])


def test_receivers_cover_slack_email_and_webhook():
    kinds = {k for r in CONFIG["receivers"] for k in r if k.endswith("_configs")}
    assert {"slack_configs", "email_configs", "webhook_configs"} <= kinds
    assert CONFIG["global"]["smtp_smarthost"] and CONFIG["global"]["smtp_from"]
