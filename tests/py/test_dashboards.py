"""Grafana dashboards: parsed with Grafana's generated models (grafana-foundation-sdk) and
checked for what makes them import and work: unique uids and panel ids, a grid that fits,
the `${datasource}` variable everywhere, defined variables, valid PromQL over SPEC metrics."""

from __future__ import annotations

import json
import re
import sys

import pytest
import yaml
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from helpers import (DASHBOARDS_DIR, REPO, all_panels, dashboard_queries, dashboards, promql_names,
                         recording_rules, run, spec_series_names, substitute)

register_default_plugins()
DASHES = dashboards()
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600"}
EXPECTED = {
    "mlmon-overview.json": "mlmon-overview",
    "mlmon-performance.json": "mlmon-performance",
    "mlmon-latency.json": "mlmon-latency",
    "mlmon-drift.json": "mlmon-drift",
    "mlmon-quality.json": "mlmon-quality",
    "mlmon-alerts.json": "mlmon-alerts",
    "mlmon-versions.json": "mlmon-versions",
}
ids = list(DASHES)


def test_the_dashboards_exist_with_unique_uids():
    assert {name: d["uid"] for name, d in DASHES.items()} == EXPECTED
    uids = [d["uid"] for d in DASHES.values()]
    assert len(set(uids)) == len(uids)
    titles = [d["title"] for d in DASHES.values()]
    assert len(set(titles)) == len(titles)
    for uid in uids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid)


def test_committed_json_is_the_generator_output():
    res = run([sys.executable, str(REPO / "grafana" / "generate_dashboards.py"), "--check"])
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("name", ids)
def test_dashboard_round_trips_through_grafana_models(name):
    """Every panel type is a known Grafana panel plugin, every query decodes as a Prometheus
    query, and nothing we wrote is dropped by the models (misspelt keys would be)."""
    dash = DASHES[name]
    model = Dashboard.from_json(dash)
    back = json.loads(json.dumps(model, cls=JSONEncoder))
    known_panels = set(cogruntime.Runtime().panelcfg_variants) | {"row"}
    assert back["uid"] == dash["uid"] and back["title"] == dash["title"]
    assert len(back["panels"]) == len(dash["panels"])
    for orig, rt, typed in zip(dash["panels"], back["panels"], model.panels):
        assert orig["type"] in known_panels, orig["type"]
        lost = set(orig) - set(rt)
        assert not lost, f"panel {orig['id']}: keys not in Grafana's panel schema: {lost}"
        assert rt["gridPos"] == orig["gridPos"]
        if orig["type"] == "row":
            continue
        for key in ("options", "fieldConfig"):
            lost = set(orig[key]) - set(rt[key])
            assert not lost, f"panel {orig['id']} {key}: keys unknown to the {orig['type']} schema: {lost}"
        lost = set(orig["fieldConfig"]["defaults"]) - set(rt["fieldConfig"]["defaults"])
        assert not lost, f"panel {orig['id']} fieldConfig.defaults: unknown keys {lost}"
        for t_orig, t_typed in zip(orig["targets"], typed.targets):
            assert type(t_typed).__module__.endswith("models.prometheus"), type(t_typed)
            assert t_typed.expr == t_orig["expr"] and t_typed.ref_id == t_orig["refId"]
    names = [v["name"] for v in back["templating"]["list"]]
    assert names == [v["name"] for v in dash["templating"]["list"]]


@pytest.mark.parametrize("name", ids)
def test_panel_ids_unique_and_grid_fits_without_overlap(name):
    panels = all_panels(DASHES[name])
    pids = [p["id"] for p in panels]
    assert len(set(pids)) == len(pids), "duplicate panel id"
    boxes = []
    for p in panels:
        g = p["gridPos"]
        assert g["w"] >= 1 and g["h"] >= 1 and g["x"] >= 0 and g["y"] >= 0, p["title"]
        assert g["x"] + g["w"] <= 24, f"panel {p['title']!r} exceeds 24 columns"
        for q, h in boxes:
            overlap = g["x"] < h["x"] + h["w"] and h["x"] < g["x"] + g["w"] and g["y"] < h["y"] + h["h"] and h["y"] < g["y"] + g["h"]
            assert not overlap, f"{p['title']!r} overlaps {q['title']!r}"
        boxes.append((p, g))


@pytest.mark.parametrize("name", ids)
def test_datasource_variable_is_used_everywhere(name):
    dash = DASHES[name]
    ds_var = [v for v in dash["templating"]["list"] if v["name"] == "datasource"]
    assert len(ds_var) == 1 and ds_var[0]["type"] == "datasource" and ds_var[0]["query"] == "prometheus"
    for p in all_panels(dash):
        if p["type"] == "row":
            continue
        assert p["datasource"] == DS_REF, p["title"]
        assert p["targets"], f"panel {p['title']!r} has no query"
        for t in p["targets"]:
            assert t["datasource"] == DS_REF, f"{p['title']} {t['refId']}"
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"] == DS_REF, v["name"]
    for a in dash["annotations"]["list"]:
        if a.get("expr"):
            assert a["datasource"] == DS_REF
    # no hard-coded datasource uid anywhere
    text = json.dumps(dash)
    uids = set(re.findall(r'"uid": "([^"]*)"', text)) - {dash["uid"], "${datasource}", "-- Grafana --"}
    assert not uids, f"hard-coded datasource uids: {uids}"


@pytest.mark.parametrize("name", ids)
def test_variables_exist_and_every_reference_is_defined(name):
    dash = DASHES[name]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert {"datasource", "job", "model"} <= set(variables)
    for var in ("job", "model", "feature"):
        if var in variables:
            v = variables[var]
            assert v["type"] == "query" and v["multi"] and v["includeAll"]
            assert re.fullmatch(rf"label_values\(.+, {var}\)", v["query"]["query"]), v["query"]
            assert v["definition"] == v["query"]["query"]
    exprs = [e for _, e in dashboard_queries(dash)] + [v["query"]["query"] for v in variables.values() if v["type"] == "query"]
    used = {m.group(1) or m.group(2) for e in exprs for m in re.finditer(r"\$(?:\{(\w+)\}|(\w+))", e)}
    assert used - set(BUILTINS) <= set(variables), f"undefined variables: {used - set(BUILTINS) - set(variables)}"
    if any("$feature" in e for e in exprs):
        assert "feature" in variables
    assert "model" in used, "the model variable must filter the queries"


@pytest.mark.parametrize("name", ids)
def test_queries_use_spec_metrics_or_recorded_series(name):
    known = spec_series_names() | {r["record"] for r in recording_rules()}
    for where, expr in dashboard_queries(DASHES[name]):
        for n in promql_names(expr):
            if n.startswith(("process_", "container_")) or n in {"ALERTS", "up"}:
                continue
            assert n in known, f"{name} {where}: unknown series {n}"


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    """promtool parses every expression (variables substituted) as a recording rule."""
    rules = []
    values = {"job": ".*", "model": ".*", "feature": ".*", "version_a": "v1", "version_b": "v2", "datasource": "x", **BUILTINS}
    for name, dash in DASHES.items():
        for i, (where, expr) in enumerate(dashboard_queries(dash)):
            rules.append({"record": f"check:{name.split('.')[0].replace('-', '_')}:q{i}", "expr": substitute(expr, values)})
    assert len(rules) > 50
    f = tmp_path / "dash.rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    res = run([promtool, "check", "rules", str(f)])
    assert res.returncode == 0, res.stdout + res.stderr


def test_dashboards_cover_the_required_views():
    def exprs(name):
        return " ".join(e for _, e in dashboard_queries(DASHES[name]))
    lat = exprs("mlmon-latency.json")
    assert all(f"histogram_quantile({q}, " in lat for q in ("0.5", "0.95", "0.99"))
    sla_panel = next(p for p in DASHES["mlmon-latency.json"]["panels"] if "SLA" in p["title"])
    steps = [s["value"] for s in sla_panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert 0.1 in steps and sla_panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    drift = exprs("mlmon-drift.json")
    for m in ("mlmon_feature_psi", "mlmon_feature_ks_statistic", "mlmon_feature_wasserstein",
              "mlmon_feature_js_divergence", "mlmon:feature_psi:fleet15m", "mlmon:feature_js_divergence:fleet15m"):
        assert m in drift, m
    perf = exprs("mlmon-performance.json")
    for m in ("process_cpu_seconds_total", "process_resident_memory_bytes", "container_cpu_usage_seconds_total",
              "container_memory_working_set_bytes", "mlmon_performance", "mlmon_requests_total"):
        assert m in perf, m
    assert "ALERTS" in exprs("mlmon-alerts.json")
    quality = exprs("mlmon-quality.json")
    assert "mlmon_data_quality_score" in quality and "mlmon_anomaly_rate" in quality
    assert "mlmon_model_health" in exprs("mlmon-overview.json")


def test_provisioning_files():
    ds = yaml.safe_load((REPO / "grafana/provisioning/datasources/mlmon-prometheus.yml").read_text())
    assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus"
    prov = yaml.safe_load((REPO / "grafana/provisioning/dashboards/mlmon.yml").read_text())
    assert prov["apiVersion"] == 1 and prov["providers"][0]["type"] == "file"
    assert prov["providers"][0]["options"]["path"]
