"""Helpers shared by the observability tests: tools, processes, HTTP, config rewriting.

Every server started here binds 127.0.0.1 and is stopped by its own PID.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "prometheus" / "rules"
PROM_TESTS_DIR = REPO / "prometheus" / "tests"
ALERTMANAGER_CONFIG = REPO / "alertmanager" / "alertmanager.yml"
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
RUNBOOK = REPO / "docs" / "runbook.md"

EVENTS = {"drift_detected", "performance_degradation", "sla_violation", "data_quality", "anomaly_spike", "traffic_stale"}
SEVERITIES = {"warning", "critical"}

# SPEC section 6, written out independently of the rules and dashboards under test.
SPEC_METRICS = {
    "mlmon_requests_total", "mlmon_request_duration_seconds", "mlmon_upstream_duration_seconds",
    "mlmon_latency_seconds", "mlmon_sla_violations_total", "mlmon_predictions_total",
    "mlmon_payload_errors_total", "mlmon_capture_dropped_total", "mlmon_feature_psi",
    "mlmon_feature_js_divergence", "mlmon_feature_ks_statistic", "mlmon_feature_ks_pvalue",
    "mlmon_feature_wasserstein", "mlmon_feature_chi2_pvalue", "mlmon_feature_drift_status",
    "mlmon_model_drift_score", "mlmon_feature_bin_observations_total", "mlmon_baseline_bin_ratio",
    "mlmon_feature_missing_ratio", "mlmon_feature_outlier_ratio", "mlmon_feature_out_of_range_ratio",
    "mlmon_feature_stat", "mlmon_feature_errors_total", "mlmon_data_quality_score",
    "mlmon_last_prediction_timestamp_seconds", "mlmon_anomalies_total", "mlmon_anomaly_rate",
    "mlmon_anomaly_trend", "mlmon_anomaly_score", "mlmon_performance", "mlmon_estimated_performance",
    "mlmon_feedback_total", "mlmon_feature_importance", "mlmon_model_health", "mlmon_build_info",
    "mlmon_baseline_info",
}
HISTOGRAMS = {"mlmon_request_duration_seconds", "mlmon_upstream_duration_seconds", "mlmon_anomaly_score"}


def spec_series_names() -> set[str]:
    """Every series name a scrape of mlmon may carry (histograms expanded)."""
    names = set(SPEC_METRICS)
    for h in HISTOGRAMS:
        names |= {f"{h}_bucket", f"{h}_sum", f"{h}_count"}
    return names


# --------------------------------------------------------------------------- tools
TOOL_CANDIDATES = {
    "promtool": ("PROMTOOL", ["promtool"]),
    "amtool": ("AMTOOL", ["amtool"]),
    "prometheus": ("PROMETHEUS", ["prometheus"]),
    "alertmanager": ("ALERTMANAGER", ["prometheus-alertmanager", "alertmanager"]),
}


def find_tool(name: str) -> str | None:
    env, candidates = TOOL_CANDIDATES[name]
    if os.environ.get(env):
        return os.environ[env]
    for c in candidates:
        path = shutil.which(c)
        if path:
            return path
    return None


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- network
def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (for servers that cannot bind :0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def http_json(url: str, payload=None, timeout: float = 5):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="POST" if payload is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
        return json.loads(body) if body else None


def wait_until(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError) as exc:  # server not up yet
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def wait_http_ok(url: str, timeout: float = 30, proc: "Proc | None" = None):
    def ok():
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        return http_get(url, timeout=2)[0] == 200
    return wait_until(ok, timeout, what=url)


# --------------------------------------------------------------------------- processes
@dataclass
class Proc:
    """A child process with its output in a log file; stopped by PID."""

    name: str
    popen: subprocess.Popen
    log: Path
    _fh: object = field(repr=False, default=None)

    @classmethod
    def start(cls, name: str, cmd: list[str], log_dir: Path, env: dict | None = None) -> "Proc":
        log = log_dir / f"{name}.log"
        fh = open(log, "wb")
        popen = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env={**os.environ, **(env or {})}, start_new_session=True)
        return cls(name=name, popen=popen, log=log, _fh=fh)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=timeout)
        if self._fh:
            self._fh.close()


# --------------------------------------------------------------------------- rules
def rule_files() -> list[Path]:
    return sorted(p for p in RULES_DIR.glob("*.yml"))


def alert_rules() -> list[dict]:
    out = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [dict(r, _group=group["name"], _file=path.name) for r in group["rules"] if "alert" in r]
    return out


def recording_rules() -> list[dict]:
    out = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [r for r in group["rules"] if "record" in r]
    return out


def write_fast_rules(dest: Path, for_duration: str = "1s") -> list[Path]:
    """Copies of the rule files with every `for:` shortened, for end-to-end runs."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for r in group["rules"]:
                if "alert" in r and "for" in r:
                    r["for"] = for_duration
        out = dest / path.name
        out.write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(out)
    return written


# --------------------------------------------------------------------------- alertmanager
def local_alertmanager_config(webhook_base: str, group_wait: str = "1s", group_interval: str = "1s",
                              repeat_interval: str = "1m") -> dict:
    """The shipped alertmanager.yml with its routing tree and inhibitions kept, but every
    receiver replaced by a webhook to `webhook_base/<receiver name>` on loopback and the
    timers shortened. Lets a test see which receivers an alert reaches."""
    cfg = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    cfg = copy.deepcopy(cfg)
    for receiver in cfg["receivers"]:
        name = receiver["name"]
        for key in [k for k in receiver if k.endswith("_configs")]:
            del receiver[key]
        receiver["webhook_configs"] = [{"url": f"{webhook_base}/{name}", "send_resolved": True}]

    def shorten(route: dict) -> None:
        for key, value in (("group_wait", group_wait), ("group_interval", group_interval),
                           ("repeat_interval", repeat_interval)):
            if key in route or route is cfg["route"]:
                route[key] = value
        for sub in route.get("routes", []):
            shorten(sub)

    shorten(cfg["route"])
    return cfg


# --------------------------------------------------------------------------- dashboards
def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def all_panels(dash: dict) -> list[dict]:
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out += p.get("panels", [])  # collapsed rows keep their panels inside
    return out


def dashboard_queries(dash: dict) -> list[tuple[str, str]]:
    """(where, expr) for every PromQL expression of a dashboard: panel targets and annotations."""
    out = []
    for p in all_panels(dash):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"panel {p['id']} {p['title']!r} target {t['refId']}", t["expr"]))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"annotation {a['name']!r}", a["expr"]))
    return out


VAR_RE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace $var / ${var} by the given values; fails on an unknown variable."""
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for variable ${name} in {expr!r}")
        return values[name]
    return VAR_RE.sub(repl, expr)


def promql_names(expr: str) -> set[str]:
    """Metric and recording-rule names an expression refers to (mlmon_*, mlmon:*, process_*...)."""
    cleaned = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # drop label values
    return set(re.findall(r"\b(?:mlmon[_:][A-Za-z0-9_:]*|process_\w+|container_\w+|ALERTS|up)\b", cleaned))


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


def runbook_anchors() -> set[str]:
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            anchors.add(github_anchor(m.group(1)))
    return anchors
