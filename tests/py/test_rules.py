"""Prometheus rules: promtool validation and unit tests, and the alert contract
(labels, annotations, runbooks) that receivers and dashboards rely on."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from helpers import (EVENTS, PROM_TESTS_DIR, REPO, RULES_DIR, SEVERITIES, alert_rules, promql_names,
                         recording_rules, rule_files, run, runbook_anchors, spec_series_names)

RUNBOOK_PREFIX = "https://github.com/mlmon/mlmon/blob/main/docs/runbook.md#"


def test_promtool_check_rules_accepts_every_rule_file(promtool):
    files = rule_files()
    assert len(files) >= 2, "expected alerting and recording rule files"
    res = run([promtool, "check", "rules", *map(str, files)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == len(files), res.stdout


def test_promtool_unit_tests_pass(promtool):
    tests = sorted(p.name for p in PROM_TESTS_DIR.glob("*.test.yml"))
    assert {"alerts.test.yml", "fleet-drift.test.yml"} <= set(tests)
    res = run([promtool, "test", "rules", *tests], cwd=PROM_TESTS_DIR, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == len(tests), res.stdout


@pytest.mark.parametrize("rules_file,old,new,test_file", [
    # the PSI floor of the sidecar (1e-4) is what the fleet expectations assume
    ("mlmon-recording.yml", "1e-4", "1e-3", "fleet-drift.test.yml"),
    # 0 * log(0) handling in JS
    ("mlmon-recording.yml", "(mlmon:feature_bin_ratio:fleet15m > 0)", "(mlmon:feature_bin_ratio:fleet15m >= 0)",
     "fleet-drift.test.yml"),
    # pooling per deployment: dropping `job` merges mlmon and mlmon-canary
    ("mlmon-recording.yml", "sum by (namespace, job, model, feature, kind) (increase",
     "sum by (namespace, model, feature, kind) (increase", "fleet-drift.test.yml"),
    # the p95 critical threshold (the SLA)
    ("mlmon-alerts.yml", "p95_rate5m > 0.1", "p95_rate5m > 0.25", "alerts.test.yml"),
    # 4xx must not count as errors
    ("mlmon-recording.yml", 'code=~"5xx|error"', 'code=~"4xx|5xx|error"', "alerts.test.yml"),
    # a version rated better must not alert; the critical needs strong significance
    ("mlmon-versions.yml", "mlmon_version_comparison_verdict == -1", "mlmon_version_comparison_verdict != 0",
     "versions.test.yml"),
    ("mlmon-versions.yml", ") < 0.001", ") < 0.0001", "versions.test.yml"),
])
def test_promtool_unit_tests_catch_a_broken_rule(promtool, tmp_path, rules_file, old, new, test_file):
    """The unit tests can fail: a copy of the rules with one deliberate mistake must not pass."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for p in RULES_DIR.glob("*.yml"):
        text = p.read_text()
        if p.name == rules_file:
            assert old in text, f"{old!r} not in {rules_file}"
            text = text.replace(old, new)
        (tmp_path / "rules" / p.name).write_text(text)
    shutil.copy(PROM_TESTS_DIR / test_file, tmp_path / "tests" / test_file)
    res = run([promtool, "test", "rules", test_file], cwd=tmp_path / "tests", timeout=300)
    assert res.returncode != 0, f"broken rule ({old!r} -> {new!r}) still passes:\n{res.stdout}"
    assert "FAILED" in res.stdout + res.stderr


def test_fleet_drift_expectations_are_the_scipy_values():
    """prometheus/tests/fleet-drift.test.yml is exactly what scripts/fleet_psi_expected.py
    derives with scipy from its scenario."""
    res = run([sys.executable, str(REPO / "scripts" / "fleet_psi_expected.py"), "--check"])
    assert res.returncode == 0, res.stdout + res.stderr


def test_fleet_drift_test_covers_floor_union_and_js():
    """The scenario exercises what makes the PromQL tricky: zero bins (floor), bins without
    counters, categories outside the baseline, and a feature without traffic."""
    doc = yaml.safe_load((PROM_TESTS_DIR / "fleet-drift.test.yml").read_text())
    exprs = {t["expr"]: t for t in doc["tests"][0]["promql_expr_test"]}
    psi = exprs["round(mlmon:feature_psi:fleet15m * 1e9)"]["exp_samples"]
    features = {re.search(r'feature="(\w+)"', s["labels"]).group(1) for s in psi}
    assert features == {"amount", "channel", "prediction"}  # `idle` has no traffic -> no series
    channel_bins = exprs['round(mlmon:baseline_bin_ratio:fleet15m{feature="channel"} * 1e9)']["exp_samples"]
    assert any('bin="__other__"' in s["labels"] and s["value"] == 0 for s in channel_bins)
    js = exprs["round(mlmon:feature_js_divergence:fleet15m * 1e9)"]["exp_samples"]
    assert all(0 <= s["value"] <= 1e9 for s in js)


ALERTS = alert_rules()


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_carries_the_contract(rule):
    labels, ann = rule.get("labels", {}), rule.get("annotations", {})
    assert labels.get("severity") in SEVERITIES
    assert labels.get("event") in EVENTS
    assert rule["alert"].startswith("Mlmon")
    assert set(ann) >= {"summary", "description", "recommendation", "runbook_url"}
    assert "$value" in ann["description"], "description must show the value"
    assert "$labels." in ann["description"], "description must name the labels"
    assert len(ann["recommendation"]) > 60, "recommendation must say what to do"
    assert ann["runbook_url"].startswith(RUNBOOK_PREFIX)
    assert ann["runbook_url"][len(RUNBOOK_PREFIX):] in runbook_anchors(), "runbook anchor missing in docs/runbook.md"
    assert "for" in rule, "every alert needs a for: duration"


def test_every_alert_name_has_both_severities_or_a_reason():
    by_name: dict[str, set] = {}
    for r in ALERTS:
        by_name.setdefault(r["alert"], set()).add(r["labels"]["severity"])
    # Warning-only by design: fleet drift confirms per-replica drift, payload errors blind
    # monitoring but do not hurt users, skipped broker ground truth shrinks the sample that
    # realized performance is computed on (the applied records still count).
    warning_only = {"MlmonFleetFeatureDrift", "MlmonPayloadErrors", "MlmonFeedbackRecordsSkipped"}
    for name, sev in by_name.items():
        assert sev == ({"warning"} if name in warning_only else SEVERITIES), name


def test_every_alert_and_severity_is_unit_tested():
    docs = [yaml.safe_load(p.read_text()) for p in sorted(PROM_TESTS_DIR.glob("*.test.yml"))]
    fired, tested_names, silent = set(), set(), set()
    for t in (t for doc in docs for t in doc["tests"]):
        for case in t.get("alert_rule_test", []):
            tested_names.add(case["alertname"])
            if not case.get("exp_alerts"):
                silent.add(case["alertname"])
            for exp in case.get("exp_alerts") or []:
                fired.add((case["alertname"], exp["exp_labels"]["severity"]))
                assert set(exp["exp_annotations"]) == {"summary", "description", "recommendation", "runbook_url"}
    wanted = {(r["alert"], r["labels"]["severity"]) for r in ALERTS}
    assert wanted <= fired, f"never seen firing in a unit test: {sorted(wanted - fired)}"
    assert len(silent) >= 5, "explicit does-not-fire cases expected"


def test_rules_use_only_spec_metrics_and_recorded_series():
    known = spec_series_names() | {r["record"] for r in recording_rules()} | {"up"}
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for r in group["rules"]:
                unknown = promql_names(r["expr"]) - known
                assert not unknown, f"{path.name} {r.get('alert') or r.get('record')}: unknown series {unknown}"


def test_recording_rules_follow_level_metric_operation_naming():
    for r in recording_rules():
        assert re.fullmatch(r"mlmon:[a-z0-9_]+:[a-z0-9_]+", r["record"]), r["record"]


def test_up_is_selected_by_the_documented_job_convention():
    for r in ALERTS:
        for m in re.finditer(r"\bup\{([^}]*)\}", r["expr"]):
            assert m.group(1) == 'job=~".*mlmon.*"', r["alert"]
