"""Helpers for the end-to-end tests: managed subprocesses, free ports, HTTP polling and
Prometheus scraping.

Every process is started in its own session (process group) and stopped by that group's id,
so the workers a model server forks (uvicorn, MLServer's inference pool) go with it. Every
address is 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

import requests
from prometheus_client.parser import text_string_to_metric_families

LOOPBACK = "127.0.0.1"

REPO_ROOT = Path(__file__).resolve().parents[2]


def mlmon_binary() -> Path:
    """The mlmon binary under test: `$MLMON_BINARY`, else `target/debug/mlmon` in this repo."""
    return Path(os.environ.get("MLMON_BINARY", REPO_ROOT / "target" / "debug" / "mlmon"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot bind :0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


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

    def start(self, cwd: Path, env: Mapping[str, str] | None = None) -> "ManagedProcess":
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


def wait_until(
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
