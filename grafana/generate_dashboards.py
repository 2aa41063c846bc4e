#!/usr/bin/env python3
"""Generate the mlmon Grafana dashboards in grafana/dashboards/*.json.

The JSON files are what users import (and what the Helm chart ships); this script is
their source so that layout, ids, datasource references and variables stay consistent:

    python3 grafana/generate_dashboards.py           # rewrite grafana/dashboards/*.json
    python3 grafana/generate_dashboards.py --check   # exit 1 if a committed file differs

Standard library only. Conventions (checked by tests/py/test_dashboards.py):
- every panel and every query uses the `${datasource}` variable (a Prometheus datasource);
- `job` and `model` variables on every dashboard, `feature` where features are shown;
  all are multi-value with "All", so queries match them with `=~`;
- panels are laid out left to right in rows of 24 grid columns, ids are sequential.
Query metric names are those of SPEC section 6 and the recording rules in
prometheus/rules/mlmon-recording.yml.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", model=~"$model"'
FSEL = 'job=~"$job", model=~"$model", feature=~"$feature"'
RI = "$__rate_interval"
TAGS = ["mlmon"]


# --------------------------------------------------------------------------- variables
def var_datasource() -> dict:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def var_query(name: str, label: str, query: str) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 1,
        "hide": 0,
        "regex": "",
    }


def var_version(name: str, label: str) -> dict:
    """A single-valued version picker (the A and B of the Versions dashboard)."""
    query = 'label_values(mlmon_version_requests_total{job=~"$job", model=~"$model"}, version)'
    return dict(var_query(name, label, query), multi=False, includeAll=False,
                current={"selected": False, "text": "", "value": ""})


def variables(feature: bool, versions: bool = False) -> list[dict]:
    out = [
        var_datasource(),
        var_query("job", "Job", "label_values(mlmon_build_info, job)"),
        var_query("model", "Model", 'label_values(mlmon_predictions_total{job=~"$job"}, model)'),
    ]
    if feature:
        out.append(
            var_query("feature", "Feature", 'label_values(mlmon_feature_psi{job=~"$job", model=~"$model"}, feature)')
        )
    if versions:
        out += [var_version("version_a", "Version A"), var_version("version_b", "Version B")]
    return out


# --------------------------------------------------------------------------- panels
def target(expr: str, legend: str = "", instant: bool = False, fmt: str = "time_series") -> dict:
    return {"expr": expr, "legendFormat": legend or "__auto", "instant": instant, "range": not instant, "format": fmt}


def panel(kind: str, title: str, targets: list[dict], w: int, h: int = 8, unit: str = "short",
          description: str = "", thresholds: list[tuple[float | None, str]] | None = None,
          threshold_line: bool = False, min_: float | None = None, max_: float | None = None,
          options: dict | None = None, transformations: list[dict] | None = None,
          mappings: list[dict] | None = None) -> dict:
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
    defaults: dict = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    if mappings:
        defaults["mappings"] = mappings
    if kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if threshold_line else "off"},
        }
    if kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [dict(t, refId=chr(ord("A") + i), datasource=DS) for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
        "_w": w,
        "_h": h,
    }
    if kind == "timeseries" and not options:
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    if kind == "stat" and not options:
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "area", "textMode": "auto"}
    if transformations:
        p["transformations"] = transformations
    return p


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_w": 24, "_h": 1}


def table_merge(title: str, targets: list[dict], w: int, h: int, description: str = "",
                rename: dict[str, str] | None = None, overrides: list[dict] | None = None) -> dict:
    p = panel("table", title, targets, w, h, description=description,
              options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
              transformations=[
                  {"id": "merge", "options": {}},
                  {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": rename or {}}},
              ])
    if overrides:
        p["fieldConfig"]["overrides"] = overrides
    return p


HEALTH_MAPPING = [{"type": "value", "options": {
    "0": {"text": "healthy", "color": "green", "index": 0},
    "1": {"text": "warning", "color": "orange", "index": 1},
    "2": {"text": "critical", "color": "red", "index": 2},
}}]
STATUS_MAPPING = [{"type": "value", "options": {
    "0": {"text": "ok", "color": "green", "index": 0},
    "1": {"text": "warning", "color": "orange", "index": 1},
    "2": {"text": "critical", "color": "red", "index": 2},
}}]
TRAFFIC_LIGHT = [(None, "green"), (1, "orange"), (2, "red")]


def layout(panels: list[dict]) -> list[dict]:
    """Flow panels left to right into 24-column rows; assign ids and gridPos."""
    x = y = row_h = 0
    out = []
    for i, p in enumerate(panels, start=1):
        w, h = p.pop("_w"), p.pop("_h")
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        p["id"] = i
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        row_h = max(row_h, h)
        out.append(p)
    return out


def dashboard(uid: str, title: str, description: str, panels: list[dict], feature: bool,
              versions: bool = False) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "browser",
        "time": {"from": "now-3h", "to": "now"},
        "refresh": "30s",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [{"title": "mlmon dashboards", "type": "dashboards", "tags": TAGS, "asDropdown": True,
                   "includeVars": True, "keepTime": True, "icon": "external link", "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
             "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"},
            {"name": "mlmon alerts", "datasource": DS, "enable": True, "hide": False, "iconColor": "red",
             "expr": 'ALERTS{alertstate="firing", alertname=~"Mlmon.*", job=~"$job", model=~"$model"}',
             "step": "60s", "titleFormat": "{{alertname}}", "tagKeys": "severity,event,model",
             "textFormat": "{{feature}}", "useValueForTime": False},
        ]},
        "templating": {"list": variables(feature, versions)},
        "panels": layout(panels),
    }


# --------------------------------------------------------------------------- dashboards
def overview() -> dict:
    panels = [
        panel("stat", "Models monitored", [target(f'count(max by (job, model) (mlmon_model_health{{{SEL}}}))', instant=True)],
              6, 4, description="Models with a health gauge on the selected jobs."),
        panel("stat", "Models critical", [target(f'count(max by (job, model) (mlmon_model_health{{{SEL}}}) == 2) or vector(0)', instant=True)],
              6, 4, thresholds=[(None, "green"), (1, "red")], description="Models whose mlmon health is critical."),
        panel("stat", "Firing mlmon alerts", [target(f'count(ALERTS{{alertstate="firing", alertname=~"Mlmon.*", job=~"$job"}}) or vector(0)', instant=True)],
              6, 4, thresholds=[(None, "green"), (1, "orange")]),
        panel("stat", "mlmon targets up", [target('sum(up{job=~"$job"}) / count(up{job=~"$job"})', instant=True)],
              6, 4, unit="percentunit", min_=0, max_=1, thresholds=[(None, "red"), (0.999, "green")],
              description="Share of the scraped mlmon sidecars that answer."),
        table_merge("Model health", [
            target(f'max by (job, model) (mlmon_model_health{{{SEL}}})', instant=True, fmt="table"),
            target(f'mlmon:requests:rate5m{{{SEL}}}', instant=True, fmt="table"),
            target(f'mlmon:request_duration_seconds:p95_rate5m{{{SEL}}}', instant=True, fmt="table"),
            target(f'mlmon:request_error_ratio:rate5m{{{SEL}}}', instant=True, fmt="table"),
            target(f'max by (job, model) (mlmon_model_drift_score{{{SEL}}})', instant=True, fmt="table"),
            target(f'min by (job, model) (mlmon_data_quality_score{{{SEL}}})', instant=True, fmt="table"),
            target(f'max by (job, model) (mlmon_anomaly_rate{{{SEL}}})', instant=True, fmt="table"),
        ], 24, 8, description="One line per model: health (worst replica), traffic, p95 latency, error ratio, drift score, data quality and anomaly rate.",
            rename={"Value #A": "health", "Value #B": "req/s", "Value #C": "p95 latency", "Value #D": "error ratio",
                    "Value #E": "drift score", "Value #F": "quality score", "Value #G": "anomaly rate"},
            overrides=[
                {"matcher": {"id": "byName", "options": "health"},
                 "properties": [{"id": "mappings", "value": HEALTH_MAPPING},
                                {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
                {"matcher": {"id": "byName", "options": "p95 latency"}, "properties": [{"id": "unit", "value": "s"}]},
                {"matcher": {"id": "byName", "options": "error ratio"}, "properties": [{"id": "unit", "value": "percentunit"}]},
                {"matcher": {"id": "byName", "options": "anomaly rate"}, "properties": [{"id": "unit", "value": "percentunit"}]},
            ]),
        panel("state-timeline", "Health over time", [target(f'max by (model) (mlmon_model_health{{{SEL}}})', "{{model}}")],
              24, 6, mappings=HEALTH_MAPPING, thresholds=TRAFFIC_LIGHT,
              options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                       "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}),
        panel("timeseries", "Requests per second", [target(f'sum by (model) (mlmon:requests:rate5m{{{SEL}}})', "{{model}}")],
              8, 8, unit="reqps"),
        panel("timeseries", "Drift score", [target(f'max by (model) (mlmon_model_drift_score{{{SEL}}})', "{{model}}")],
              8, 8, unit="percentunit", min_=0, max_=1,
              description="Share of features drifted (importance-weighted when known), worst replica."),
        panel("timeseries", "p95 latency", [target(f'max by (model) (mlmon:request_duration_seconds:p95_rate5m{{{SEL}}})', "{{model}}")],
              8, 8, unit="s", thresholds=[(None, "green"), (0.05, "orange"), (0.1, "red")], threshold_line=True),
        table_merge("Versions and baselines", [
            target('count by (job, version) (mlmon_build_info{job=~"$job"})', instant=True, fmt="table"),
        ], 12, 6, rename={"Value": "sidecars"}),
        table_merge("Baselines loaded", [
            target(f'count by (job, model, id) (mlmon_baseline_info{{{SEL}}})', instant=True, fmt="table"),
        ], 12, 6, rename={"Value": "sidecars"}),
    ]
    return dashboard("mlmon-overview", "mlmon / Overview",
                     "Health of every model behind mlmon sidecars.", panels, feature=False)


def performance() -> dict:
    panels = [
        row("Throughput"),
        panel("timeseries", "Requests per second by status class",
              [target(f'sum by (model, code) (rate(mlmon_requests_total{{{SEL}}}[{RI}]))', "{{model}} {{code}}")], 12, 8, unit="reqps"),
        panel("timeseries", "Predictions per second",
              [target(f'sum by (model) (rate(mlmon_predictions_total{{{SEL}}}[{RI}]))', "{{model}}")], 12, 8, unit="short",
              description="Rows predicted; a batch of N rows counts N."),
        row("Model performance"),
        panel("timeseries", "Performance against ground truth",
              [target(f'avg by (model, metric) (mlmon_performance{{{SEL}}})', "{{model}} {{metric}}")], 12, 8,
              description="accuracy/precision/recall/f1 for classifiers, mae/rmse/r2 for regressors, from feedback."),
        panel("timeseries", "Estimated performance (no ground truth)",
              [target(f'avg by (model, metric) (mlmon_estimated_performance{{{SEL}}})', "{{model}} {{metric}}")], 12, 8),
        panel("timeseries", "Feedback per second",
              [target(f'sum by (model, result) (rate(mlmon_feedback_total{{{SEL}}}[{RI}]))', "{{model}} {{result}}")], 12, 8,
              description="Ground truth matched to a prediction, unmatched, or arrived after feedback.ttl."),
        panel("bargauge", "Feature importance",
              [target(f'topk(20, avg by (model, feature, method) (mlmon_feature_importance{{{SEL}}}))', "{{model}} {{feature}} ({{method}})", instant=True)],
              12, 8, options={"orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
                              "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}),
        row("Resources"),
        panel("timeseries", "mlmon CPU", [target(f'rate(process_cpu_seconds_total{{job=~"$job"}}[{RI}])', "{{instance}}")], 8, 8,
              unit="percentunit", description="CPU used by the mlmon process (1 = one core)."),
        panel("timeseries", "mlmon resident memory", [target('process_resident_memory_bytes{job=~"$job"}', "{{instance}}")], 8, 8, unit="bytes"),
        panel("timeseries", "Captures dropped per second",
              [target(f'sum by (job, reason) (rate(mlmon_capture_dropped_total{{job=~"$job"}}[{RI}]))', "{{job}} {{reason}}")], 8, 8,
              description="Captures skipped because the analysis queue was full or the body too large; the request itself was proxied."),
        panel("timeseries", "Pod CPU (cAdvisor)",
              [target(f'sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{{container!="", container!="POD"}}[{RI}]))'
                      ' * on (namespace, pod) group_left () (max by (namespace, pod) (mlmon_build_info{job=~"$job"}) * 0 + 1)',
                      "{{pod}} {{container}}")], 12, 8, unit="percentunit",
              description="Needs cAdvisor (kubelet) metrics and a `pod` label on the mlmon scrape (as the Helm chart's ServiceMonitor sets); empty elsewhere."),
        panel("timeseries", "Pod memory working set (cAdvisor)",
              [target('sum by (namespace, pod, container) (container_memory_working_set_bytes{container!="", container!="POD"})'
                      ' * on (namespace, pod) group_left () (max by (namespace, pod) (mlmon_build_info{job=~"$job"}) * 0 + 1)',
                      "{{pod}} {{container}}")], 12, 8, unit="bytes",
              description="Needs cAdvisor (kubelet) metrics and a `pod` label on the mlmon scrape; empty elsewhere."),
        panel("timeseries", "Capture stream records per second",
              [target(f'sum by (job, sink, result) (rate(mlmon_sink_records_total{{job=~"$job"}}[{RI}]))', "{{job}} {{sink}} {{result}}")],
              12, 8, description="Records mlmon published to the Kafka/NATS capture stream (sent), or lost because the sink's queue was full (dropped) or the broker did not acknowledge in time (failed). Only sidecars with a sink (docs/streaming.md) export it."),
        panel("timeseries", "Ground truth from brokers per second",
              [target(f'sum by (job, source, result) (rate(mlmon_feedback_source_records_total{{job=~"$job"}}[{RI}]))', "{{job}} {{source}} {{result}}")],
              12, 8, description="Ground-truth records read from feedback.kafka / feedback.nats: applied, or skipped as invalid or for an unknown model. Only sidecars with a broker feedback source export it."),
    ]
    return dashboard("mlmon-performance", "mlmon / Performance",
                     "Traffic, model performance and resources of mlmon sidecars.", panels, feature=False)


def latency() -> dict:
    sla = [(None, "green"), (0.05, "orange"), (0.1, "red")]
    q = lambda p: (f'histogram_quantile({p}, sum by (model, le) (rate(mlmon_request_duration_seconds_bucket{{{SEL}}}[{RI}])))')
    panels = [
        panel("timeseries", "Latency p50 / p95 / p99 against the SLA",
              [target(q("0.5"), "{{model}} p50"), target(q("0.95"), "{{model}} p95"), target(q("0.99"), "{{model}} p99")],
              16, 9, unit="s", thresholds=sla, threshold_line=True,
              description="End-to-end latency through the proxy. Lines: 50ms warning, 100ms SLA (sla.latency)."),
        panel("stat", "p95 now (alert window 5m)",
              [target(f'max by (model) (mlmon:request_duration_seconds:p95_rate5m{{{SEL}}})', "{{model}}", instant=True)],
              8, 9, unit="s", thresholds=sla),
        panel("timeseries", "p95: proxy end-to-end vs model server",
              [target(q("0.95"), "{{model}} end-to-end"),
               target(f'histogram_quantile(0.95, sum by (model, le) (rate(mlmon_upstream_duration_seconds_bucket{{{SEL}}}[{RI}])))',
                      "{{model}} model server")],
              12, 8, unit="s", description="The gap is the time spent in mlmon and the network hop."),
        panel("timeseries", "Window quantiles reported by mlmon",
              [target(f'max by (model, quantile) (mlmon_latency_seconds{{{SEL}}})', "{{model}} q{{quantile}}")], 12, 8, unit="s",
              description="mlmon's own p50/p95/p99 over drift.window (worst replica)."),
        panel("timeseries", "Requests over the SLA latency",
              [target(f'(sum by (model) (rate(mlmon_sla_violations_total{{{SEL}}}[{RI}])) or 0 * sum by (model) (rate(mlmon_requests_total{{{SEL}}}[{RI}])))'
                      f' / sum by (model) (rate(mlmon_requests_total{{{SEL}}}[{RI}]))', "{{model}}")],
              12, 8, unit="percentunit", thresholds=[(None, "green"), (0.05, "red")], threshold_line=True,
              description="Share of requests slower than sla.latency; above 5% the p95 SLA (sla.quantile 0.95) is broken."),
        panel("timeseries", "Error ratio (5xx + error)",
              [target(f'max by (model) (mlmon:request_error_ratio:rate5m{{{SEL}}})', "{{model}}")],
              12, 8, unit="percentunit", thresholds=[(None, "green"), (0.001, "orange"), (0.01, "red")], threshold_line=True),
        panel("heatmap", "Latency distribution",
              [target(f'sum by (le) (increase(mlmon_request_duration_seconds_bucket{{{SEL}}}[{RI}]))', "{{le}}", fmt="heatmap")],
              24, 8, unit="s",
              options={"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1,
                       "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64}}),
    ]
    return dashboard("mlmon-latency", "mlmon / Latency & SLA",
                     "Latency percentiles from mlmon histograms against the SLA.", panels, feature=False)


def drift() -> dict:
    psi_th = [(None, "green"), (0.1, "orange"), (0.2, "red")]
    panels = [
        panel("timeseries", "Model drift score",
              [target(f'max by (model) (mlmon_model_drift_score{{{SEL}}})', "{{model}}")], 8, 8,
              unit="percentunit", min_=0, max_=1),
        panel("timeseries", "Input feature PSI (worst replica)",
              [target(f'max by (model, feature) (mlmon_feature_psi{{{FSEL}, kind="input"}})', "{{model}} {{feature}}")],
              16, 8, thresholds=psi_th, threshold_line=True, description="Lines at the default PSI thresholds 0.1 and 0.2."),
        panel("timeseries", "Prediction (output) PSI",
              [target(f'max by (model, feature) (mlmon_feature_psi{{{SEL}, kind="output"}})', "{{model}} {{feature}}")],
              8, 8, thresholds=psi_th, threshold_line=True),
        panel("timeseries", "Fleet-wide PSI (all replicas pooled, 15m)",
              [target(f'mlmon:feature_psi:fleet15m{{{FSEL}}}', "{{model}} {{kind}} {{feature}}")],
              16, 8, thresholds=psi_th, threshold_line=True,
              description="Recording rule mlmon:feature_psi:fleet15m: PSI of the bin counts of all replicas over 15 minutes."),
        table_merge("Drift statistics per feature", [
            target(f'max by (job, model, feature, kind) (mlmon_feature_drift_status{{{FSEL}}})', instant=True, fmt="table"),
            target(f'max by (job, model, feature, kind) (mlmon_feature_psi{{{FSEL}}})', instant=True, fmt="table"),
            target(f'max by (job, model, feature, kind) (mlmon_feature_js_divergence{{{FSEL}}})', instant=True, fmt="table"),
            target(f'max by (job, model, feature, kind) (mlmon_feature_ks_statistic{{{FSEL}}})', instant=True, fmt="table"),
            target(f'min by (job, model, feature, kind) (mlmon_feature_ks_pvalue{{{FSEL}}})', instant=True, fmt="table"),
            target(f'max by (job, model, feature, kind) (mlmon_feature_wasserstein{{{FSEL}}})', instant=True, fmt="table"),
            target(f'min by (job, model, feature, kind) (mlmon_feature_chi2_pvalue{{{FSEL}}})', instant=True, fmt="table"),
            target(f'mlmon:feature_psi:fleet15m{{{FSEL}}}', instant=True, fmt="table"),
            target(f'mlmon:feature_js_divergence:fleet15m{{{FSEL}}}', instant=True, fmt="table"),
        ], 24, 10, description="Worst replica per feature; KS and Wasserstein for numeric features, chi-square for categorical ones; fleet columns pool all replicas.",
            rename={"Value #A": "status", "Value #B": "PSI", "Value #C": "JS", "Value #D": "KS D", "Value #E": "KS p",
                    "Value #F": "Wasserstein", "Value #G": "chi2 p", "Value #H": "fleet PSI", "Value #I": "fleet JS"},
            overrides=[{"matcher": {"id": "byName", "options": "status"},
                        "properties": [{"id": "mappings", "value": STATUS_MAPPING},
                                       {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]),
        panel("timeseries", "KS statistic",
              [target(f'max by (model, feature) (mlmon_feature_ks_statistic{{{FSEL}}})', "{{model}} {{feature}}")], 12, 8),
        panel("timeseries", "Fleet-wide JS divergence",
              [target(f'mlmon:feature_js_divergence:fleet15m{{{FSEL}}}', "{{model}} {{kind}} {{feature}}")], 12, 8),
        panel("barchart", "Live vs baseline distribution (fleet, 15m)", [
            target(f'sum by (feature, bin) (mlmon:feature_bin_ratio:fleet15m{{{FSEL}}})', "live", instant=True, fmt="table"),
            target(f'sum by (feature, bin) (mlmon:baseline_bin_ratio:fleet15m{{{FSEL}}})', "baseline", instant=True, fmt="table"),
        ], 12, 8, unit="percentunit",
            description="Per bin of the selected feature (select one feature): live share pooled over replicas vs the baseline share.",
            options={"xField": "bin", "orientation": "auto", "barWidth": 0.8, "groupWidth": 0.7, "showValue": "never",
                     "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
            transformations=[{"id": "merge", "options": {}},
                             {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                            "renameByName": {"Value #A": "live", "Value #B": "baseline"}}}]),
        panel("timeseries", "Feature mean and std (window)",
              [target(f'avg by (model, feature, stat) (mlmon_feature_stat{{{FSEL}, stat=~"mean|std"}})', "{{model}} {{feature}} {{stat}}")],
              12, 8),
        panel("timeseries", "Importance per feature (SHAP, mean |φ|)",
              [target(f'max by (model, feature) (mlmon_feature_importance{{{FSEL}, method="shap"}})', "{{model}} {{feature}}")],
              12, 8, min_=0,
              description="Mean absolute KernelSHAP value over recent rows, recomputed every explain.interval by re-sending rows to the model server; it also weights the model drift score (docs/explainability.md). Side by side with the drift of the same features on the right."),
        panel("timeseries", "Drift per feature (PSI), next to its importance",
              [target(f'max by (model, feature) (mlmon_feature_psi{{{FSEL}, kind="input"}})', "{{model}} {{feature}}")],
              12, 8, thresholds=psi_th, threshold_line=True,
              description="Input feature PSI (worst replica) of the same features as the importance panel on the left: a drifting feature that carries importance is what moves predictions."),
    ]
    return dashboard("mlmon-drift", "mlmon / Drift",
                     "Feature and prediction drift: per replica and fleet-wide.", panels, feature=True)


def quality() -> dict:
    panels = [
        row("Data quality"),
        panel("timeseries", "Data quality score",
              [target(f'min by (model) (mlmon_data_quality_score{{{SEL}}})', "{{model}}")], 12, 8, unit="percentunit",
              min_=0, max_=1, thresholds=[(None, "red"), (0.75, "orange"), (0.9, "green")], threshold_line=True),
        panel("timeseries", "Payload errors per second",
              [target(f'sum by (model, reason) (rate(mlmon_payload_errors_total{{{SEL}}}[{RI}]))', "{{model}} {{reason}}")], 12, 8,
              description="Bodies mlmon could not read; they were proxied but not analysed."),
        panel("timeseries", "Missing values",
              [target(f'max by (model, feature) (mlmon_feature_missing_ratio{{{FSEL}}})', "{{model}} {{feature}}")], 8, 8, unit="percentunit"),
        panel("timeseries", "Outliers",
              [target(f'max by (model, feature) (mlmon_feature_outlier_ratio{{{FSEL}}})', "{{model}} {{feature}}")], 8, 8, unit="percentunit"),
        panel("timeseries", "Out of baseline range",
              [target(f'max by (model, feature) (mlmon_feature_out_of_range_ratio{{{FSEL}}})', "{{model}} {{feature}}")], 8, 8, unit="percentunit"),
        panel("timeseries", "Feature errors per second by reason",
              [target(f'sum by (model, feature, reason) (rate(mlmon_feature_errors_total{{{FSEL}}}[{RI}]))', "{{model}} {{feature}} {{reason}}")],
              24, 8, description="missing, type mismatch, unseen category, out of range."),
        row("Anomalies"),
        panel("timeseries", "Anomaly rate",
              [target(f'max by (model) (mlmon_anomaly_rate{{{SEL}}})', "{{model}}")], 12, 8, unit="percentunit",
              thresholds=[(None, "green"), (0.005, "orange"), (0.01, "red")], threshold_line=True),
        panel("stat", "Anomaly trend",
              [target(f'max by (model) (mlmon_anomaly_trend{{{SEL}}})', "{{model}}", instant=True)], 12, 8,
              thresholds=[(None, "green"), (1, "orange")],
              mappings=[{"type": "value", "options": {"-1": {"text": "falling", "index": 0},
                                                      "0": {"text": "flat", "index": 1},
                                                      "1": {"text": "rising", "index": 2}}}]),
        panel("timeseries", "Anomalous rows per second",
              [target(f'sum by (model) (rate(mlmon_anomalies_total{{{SEL}}}[{RI}]))', "{{model}}")], 12, 8),
        panel("timeseries", "Anomaly score p50 / p95",
              [target(f'histogram_quantile(0.5, sum by (model, le) (rate(mlmon_anomaly_score_bucket{{{SEL}}}[{RI}])))', "{{model}} p50"),
               target(f'histogram_quantile(0.95, sum by (model, le) (rate(mlmon_anomaly_score_bucket{{{SEL}}}[{RI}])))', "{{model}} p95")],
              12, 8),
    ]
    return dashboard("mlmon-quality", "mlmon / Data quality & anomalies",
                     "Missing values, range and type errors, payload errors and anomalies.", panels, feature=True)


def alerts() -> dict:
    firing = 'ALERTS{alertstate="firing", alertname=~"Mlmon.*", job=~"$job"}'
    panels = [
        panel("stat", "Firing by severity", [target(f'count by (severity) ({firing})', "{{severity}}", instant=True)], 8, 5,
              thresholds=[(None, "orange")]),
        panel("stat", "Firing by event", [target(f'count by (event) ({firing})', "{{event}}", instant=True)], 16, 5,
              thresholds=[(None, "orange")]),
        table_merge("Firing and pending alerts", [
            target('ALERTS{alertname=~"Mlmon.*", job=~"$job", model=~"$model"}', instant=True, fmt="table"),
        ], 24, 10, rename={"Value": "active"},
            description="Straight from Prometheus' ALERTS series; silences and inhibitions live in Alertmanager."),
        panel("state-timeline", "Alert history", [
            target('max by (alertname, severity, model, feature) (ALERTS{alertstate="firing", alertname=~"Mlmon.*", job=~"$job", model=~"$model"})',
                   "{{alertname}} {{severity}} {{model}} {{feature}}")], 24, 10,
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                     "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False}},
            thresholds=[(None, "red")]),
        panel("timeseries", "Active alerts by state", [
            target('count by (alertstate) (ALERTS{alertname=~"Mlmon.*", job=~"$job"})', "{{alertstate}}")], 24, 7),
    ]
    return dashboard("mlmon-alerts", "mlmon / Alerts", "mlmon alerts as Prometheus evaluates them.", panels, feature=False)


VERDICT_MAPPING = [{"type": "value", "options": {
    "-1": {"text": "worse", "color": "red", "index": 0},
    "0": {"text": "no difference", "color": "green", "index": 1},
    "1": {"text": "better", "color": "blue", "index": 2},
}}]


def versions() -> dict:
    """Version A beside version B (docs/versions.md), then the shadow row (docs/shadow.md)."""
    def vsel(v: str) -> str:
        return f'{SEL}, version="${v}"'

    def side(v: str, name: str) -> list[dict]:
        s = vsel(v)
        return [
            panel("stat", f"{name}: requests/s", [target(f'sum(rate(mlmon_version_requests_total{{{s}}}[5m]))', instant=True)],
                  4, 4, unit="reqps"),
            panel("stat", f"{name}: error ratio",
                  [target(f'sum(rate(mlmon_version_errors_total{{{s}}}[5m])) / sum(rate(mlmon_version_requests_total{{{s}}}[5m]))',
                          instant=True)],
                  4, 4, unit="percentunit", thresholds=[(None, "green"), (0.001, "orange"), (0.01, "red")]),
            panel("stat", f"{name}: p95 latency", [target(f'max(mlmon_version_latency_seconds{{{s}, quantile="0.95"}})', instant=True)],
                  4, 4, unit="s", thresholds=[(None, "green"), (0.05, "orange"), (0.1, "red")]),
        ]

    both = f'{SEL}, version=~"$version_a|$version_b"'
    panels = [
        row("Version A vs version B"),
        *side("version_a", "A"), *side("version_b", "B"),
        panel("timeseries", "Requests per second", [
            target(f'sum by (version) (rate(mlmon_version_requests_total{{{both}}}[{RI}]))', "{{version}}")], 12, 8, unit="reqps"),
        panel("timeseries", "Error ratio", [
            target(f'sum by (version) (rate(mlmon_version_errors_total{{{both}}}[{RI}]))'
                   f' / sum by (version) (rate(mlmon_version_requests_total{{{both}}}[{RI}]))', "{{version}}")],
              12, 8, unit="percentunit", thresholds=[(None, "green"), (0.001, "orange"), (0.01, "red")], threshold_line=True,
              description="Server errors (5xx, or mlmon's own 502/504) over inference requests, per version."),
        panel("timeseries", "Latency over the drift window", [
            target(f'max by (version, quantile) (mlmon_version_latency_seconds{{{both}}})', "{{version}} q{{quantile}}")],
              12, 8, unit="s", description="mlmon's p50/p95/p99 of each version over drift.window (worst replica)."),
        panel("timeseries", "Performance against ground truth", [
            target(f'avg by (version, metric) (mlmon_version_performance{{{both}}})', "{{version}} {{metric}}")], 12, 8,
              description="accuracy for classifiers, mae for regressors, from feedback joined to the version that answered."),
        panel("timeseries", "Estimated accuracy (no ground truth)", [
            target(f'avg by (version, metric) (mlmon_version_estimated_performance{{{both}}})', "{{version}} {{metric}}")], 12, 8,
              unit="percentunit", description="CBPE from the class scores each version returned."),
        panel("timeseries", "Prediction PSI", [
            target(f'max by (version, against) (mlmon_version_prediction_psi{{{both}}})', "{{version}} vs {{against}}")], 12, 8,
              thresholds=[(None, "green"), (0.1, "orange"), (0.2, "red")], threshold_line=True,
              description="Output drift of each version against the baseline and against the reference version."),
        row("Each version against the reference"),
        table_merge("Comparison with the reference version", [
            target(f'max by (model, version, reference, metric) (mlmon_version_comparison_verdict{{{SEL}}})', instant=True, fmt="table"),
            target(f'max by (model, version, reference, metric) (mlmon_version_comparison_difference{{{SEL}}})', instant=True, fmt="table"),
            target(f'max by (model, version, reference, metric) (mlmon_version_comparison_p_value{{{SEL}}})', instant=True, fmt="table"),
        ], 24, 8, description="The reference is model.version when configured, else the version with most traffic. "
                               "Verdicts need significance at 5 % (two-proportion z-test, Welch's t-test, KS); "
                               "GET /api/v1/models/{model}/compare?a=..&b=.. has intervals and sample sizes.",
            rename={"Value #A": "verdict", "Value #B": "difference (version - reference)", "Value #C": "p-value"},
            overrides=[{"matcher": {"id": "byName", "options": "verdict"},
                        "properties": [{"id": "mappings", "value": VERDICT_MAPPING},
                                       {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]),
        panel("state-timeline", "Verdicts over time", [
            target(f'min by (version, metric) (mlmon_version_comparison_verdict{{{SEL}}})', "{{version}} {{metric}}")], 24, 8,
              mappings=VERDICT_MAPPING, thresholds=[(None, "red"), (0, "green"), (1, "blue")],
              options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                       "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}),
        *shadow_panels(),
    ]
    return dashboard("mlmon-versions", "mlmon / Versions",
                     "Model versions side by side: traffic, errors, latency, performance and output drift, "
                     "and each version's significance against the reference.", panels, feature=False, versions=True)


def shadow_panels() -> list[dict]:
    """The shadow row (docs/shadow.md): how a candidate model on copies of the traffic compares
    with the served one: the last row of the Versions dashboard."""
    ok_err = 'result=~"ok|error|timeout"'
    return [
        row("Shadow model (copies of the traffic, docs/shadow.md)"),
        panel("stat", "Label agreement", [target(f'min(mlmon_shadow_agreement{{{SEL}}})', instant=True)], 6, 4,
              unit="percentunit", thresholds=[(None, "red"), (0.9, "orange"), (0.95, "green")], min_=0, max_=1,
              description="Share of rows whose label is the same from the shadow and the served model over "
                          "drift.window (worst replica; classifiers). Alerts: < 95 % warning, < 90 % critical."),
        panel("stat", "Prediction PSI", [target(f'max(mlmon_shadow_prediction_psi{{{SEL}}})', instant=True)], 6, 4,
              thresholds=[(None, "green"), (0.1, "orange"), (0.2, "red")],
              description="PSI of the shadow's predictions against the served model's over drift.window."),
        panel("stat", "Copies failing", [target(
            f'sum(rate(mlmon_shadow_requests_total{{{SEL}, result=~"error|timeout"}}[5m]))'
            f' / sum(rate(mlmon_shadow_requests_total{{{SEL}, {ok_err}}}[5m]))', instant=True)], 6, 4,
              unit="percentunit", thresholds=[(None, "green"), (0.05, "orange"), (0.25, "red")],
              description="Copies that failed (unreachable, non-2xx) or timed out, over copies sent."),
        panel("stat", "Shadow p95 latency", [target(
            f'histogram_quantile(0.95, sum by (le) (rate(mlmon_shadow_duration_seconds_bucket{{{SEL}}}[5m])))',
            instant=True)], 6, 4, unit="s",
              description="The candidate's own latency; clients never wait for it."),
        panel("timeseries", "Agreement (classifiers) or mean |shadow - primary| (regressors)", [
            target(f'min by (model) (mlmon_shadow_agreement{{{SEL}}})'
                   f' or max by (model) (mlmon_shadow_mean_abs_diff{{{SEL}}})', "{{model}}")],
              12, 8, description="Per model, whichever it exports over drift.window: the share of rows whose labels "
                                 "agree (classifiers, 0..1), or the mean absolute difference of the predictions "
                                 "(regressors, in the model's units)."),
        panel("timeseries", "Prediction PSI, shadow vs primary", [
            target(f'max by (model) (mlmon_shadow_prediction_psi{{{SEL}}})', "{{model}}")], 12, 8,
              thresholds=[(None, "green"), (0.1, "orange"), (0.2, "red")], threshold_line=True),
        panel("timeseries", "Copies by result", [
            target(f'sum by (model, result) (rate(mlmon_shadow_requests_total{{{SEL}}}[{RI}]))', "{{model}} {{result}}")],
              12, 8, unit="reqps",
              description="ok, error (unreachable or non-2xx), timeout (past shadow.timeout), skipped (sampled "
                          "but not sent: shadow queue full, body not captured, primary failed)."),
        panel("timeseries", "Shadow latency", [
            target(f'histogram_quantile(0.5, sum by (model, le) (rate(mlmon_shadow_duration_seconds_bucket{{{SEL}}}[{RI}])))',
                   "{{model}} p50"),
            target(f'histogram_quantile(0.95, sum by (model, le) (rate(mlmon_shadow_duration_seconds_bucket{{{SEL}}}[{RI}])))',
                   "{{model}} p95"),
            target(f'histogram_quantile(0.95, sum by (model, le) (rate(mlmon_request_duration_seconds_bucket{{{SEL}}}[{RI}])))',
                   "{{model}} p95 served (through mlmon)"),
        ], 12, 8, unit="s", description="The candidate's latency beside the served model's, as clients see it."),
    ]



DASHBOARDS = {
    "mlmon-overview.json": overview,
    "mlmon-performance.json": performance,
    "mlmon-latency.json": latency,
    "mlmon-drift.json": drift,
    "mlmon-quality.json": quality,
    "mlmon-alerts.json": alerts,
    "mlmon-versions.json": versions,
}


def render_all() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, sort_keys=False) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a committed dashboard differs from the generator")
    args = parser.parse_args()
    stale = []
    for name, text in render_all().items():
        path = OUT_DIR / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run grafana/generate_dashboards.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
