#!/usr/bin/env python3
"""Reliability probes for mlmon (issue 11): hostile and unlucky traffic against the release
binary in front of a real upstream, everything on 127.0.0.1 and bounded in time.

    python3 tests/reliability/probes.py --binary target/release/mlmon            # short (make test)
    python3 tests/reliability/probes.py --binary target/release/mlmon --long     # longer floods
    python3 tests/reliability/probes.py --binary target/release/mlmon --soak 600 # + 10-min soak

Each probe runs while a well-behaved client sends OIP v2 inference requests through the
proxy, and asserts afterwards: that client saw no error (except while the probe itself
stops the upstream), /healthz answered within 1 s throughout, the sidecar's RSS stayed
under the bound printed with the probe, and /metrics parses (prometheus_client's parser
and `promtool check metrics` when promtool is installed). Figures go to stdout and, with
--json FILE, to a JSON file (docs/reliability.md quotes the last run).

Needs Python 3.9+ and prometheus_client (the test venv has it); nothing else.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as om_families,
    )
except ImportError:  # pragma: no cover - reported clearly below
    text_string_to_metric_families = None
    om_families = None

TOKEN = "reliability-token"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# The upstream: a small OIP v2 model server (ThreadingHTTPServer), plus an endless
# server-sent-events endpoint for the shutdown probe.


class Model(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        if self.path.startswith("/stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            try:
                while not self.server.stopping:
                    chunk = b"data: tick\n\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            return
        body = b'{"ready": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        rows = 1
        try:
            req = json.loads(raw or b"{}")
            for inp in req.get("inputs", []):
                shape = inp.get("shape") or [1]
                rows = max(rows, int(shape[0]))
        except (ValueError, TypeError, AttributeError):
            pass
        out = {
            "model_name": "iris",
            "outputs": [
                {
                    "name": "predict",
                    "shape": [rows],
                    "datatype": "INT64",
                    "data": [i % 3 for i in range(rows)],
                }
            ],
        }
        body = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Upstream:
    """The model server, in a process of its own so that stopping it closes every
    connection (a restart, as an orchestrator would do it)."""

    def __init__(self, port: int):
        self.port = port
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve-upstream", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("probes: the upstream did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def serve_upstream(port: int):
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((HOST, port), Model)
    server.daemon_threads = True
    server.stopping = False
    server.serve_forever()


# ---------------------------------------------------------------------------------------
# The sidecar.


class Sidecar:
    def __init__(self, binary: str, upstream_port: int, workdir: str, extra_env=None):
        self.binary = binary
        self.proxy = free_port()
        self.admin = free_port()
        self.upstream_port = upstream_port
        self.workdir = workdir
        self.extra_env = extra_env or {}
        self.proc = None
        self.log = None

    def start(self):
        env = dict(os.environ)
        env.update(
            {
                "MLMON_ADMIN__TOKEN": TOKEN,
                "MLMON_PROXY__SHUTDOWN_GRACE": "3s",
                "MLMON_DRIFT__INTERVAL": "1s",
                "MLMON_MODEL__NAME": "iris",
                "MLMON_LOG__LEVEL": "warn",
            }
        )
        env.update(self.extra_env)
        self.log = open(os.path.join(self.workdir, f"mlmon-{self.proxy}.log"), "wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "serve",
                "--listen",
                f"{HOST}:{self.proxy}",
                "--admin-listen",
                f"{HOST}:{self.admin}",
                "--upstream",
                f"http://{HOST}:{self.upstream_port}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            if healthz(self.admin, 0.5) is not None:
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"mlmon exited at start: see {self.log.name}")
            time.sleep(0.05)
        raise SystemExit("mlmon did not answer /healthz within 20 s")

    def rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return float("nan")

    def stop(self, timeout=10.0) -> float:
        """SIGTERM; returns seconds until exit (raises if it does not exit)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"mlmon did not exit within {timeout} s of SIGTERM")
        return time.time() - t0


def healthz(admin_port: int, timeout: float):
    """Seconds /healthz took, or None."""
    t0 = time.time()
    try:
        c = http.client.HTTPConnection(HOST, admin_port, timeout=timeout)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        c.close()
        return time.time() - t0 if r.status == 200 else None
    except OSError:
        return None


def request(port, method, path, body=None, headers=None, timeout=5.0):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def auth(extra=None):
    h = {"authorization": f"Bearer {TOKEN}"}
    h.update(extra or {})
    return h


def oip(rows=4, names=("sepal_length", "sepal_width", "petal_length", "petal_width")):
    return json.dumps(
        {
            "inputs": [
                {"name": n, "shape": [rows], "datatype": "FP64", "data": [1.0 + i * 0.1 for i in range(rows)]}
                for n in names
            ]
        }
    ).encode()


def scrape(admin_port, openmetrics=False) -> str:
    headers = {"accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    status, body = request(admin_port, "GET", "/metrics", headers=headers, timeout=10)
    assert status == 200, status
    return body.decode()


def check_metrics(admin_port) -> dict:
    """Both formats parse; promtool agrees when installed. Returns the text samples."""
    text = scrape(admin_port)
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples.setdefault(s.name, []).append((dict(s.labels), s.value))
    om = scrape(admin_port, openmetrics=True)
    for _ in om_families(om):
        pass
    if shutil.which("promtool"):
        p = subprocess.run(
            ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
        )
        # promtool exits 3 for lint warnings (naming advice), 1 for unparsable pages.
        if p.returncode not in (0, 3):
            raise AssertionError("promtool check metrics: " + (p.stderr or p.stdout).decode()[:500])
    return {"samples": samples, "bytes": len(text)}


def metric(samples, name, **labels):
    for lab, v in samples.get(name, []):
        if all(lab.get(k) == v2 for k, v2 in labels.items()):
            return v
    return None


# ---------------------------------------------------------------------------------------
# The well-behaved client and the health watcher running beside every probe.


class Background:
    def __init__(self, sidecar: Sidecar, rate: float):
        self.sidecar = sidecar
        self.rate = rate
        self.stop_flag = threading.Event()
        self.ok = 0
        self.errors = []
        self.latencies = []
        self.health_worst = 0.0
        self.health_failures = 0
        self.rss_max = 0.0
        self.threads = []

    def _traffic(self):
        conn = None
        body = oip()
        interval = 1.0 / self.rate
        next_t = time.time()
        while not self.stop_flag.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, self.sidecar.proxy, timeout=5)
                t0 = time.time()
                conn.request("POST", "/v2/models/iris/infer", body=body, headers={"content-type": "application/json"})
                r = conn.getresponse()
                r.read()
                self.latencies.append(time.time() - t0)
                if r.status == 200:
                    self.ok += 1
                else:
                    self.errors.append(f"status {r.status}")
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
                conn = None
            next_t += interval
            time.sleep(max(0.0, next_t - time.time()))

    def _watch(self):
        while not self.stop_flag.is_set():
            took = healthz(self.sidecar.admin, 1.0)
            if took is None:
                self.health_failures += 1
            else:
                self.health_worst = max(self.health_worst, took)
            self.rss_max = max(self.rss_max, self.sidecar.rss_mb())
            time.sleep(0.25)

    def __enter__(self):
        for f in (self._traffic, self._watch):
            t = threading.Thread(target=f, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=10)

    def p99_ms(self):
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return 1000 * xs[min(len(xs) - 1, int(0.99 * len(xs)))]


# ---------------------------------------------------------------------------------------
# Probes. Each returns a dict of figures; assertions raise AssertionError.


def hold_sockets(port, n, payload=b"", drip=None):
    """Opens n connections sending `payload` (then a byte every `drip` s if given)."""
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection((HOST, port), timeout=2)
            if payload:
                s.sendall(payload)
            socks.append(s)
        except OSError:
            break
    return socks


def count_closed(socks, wait):
    """How many of `socks` the server closed within `wait` seconds."""
    deadline = time.time() + wait
    closed = set()
    while time.time() < deadline and len(closed) < len(socks):
        for i, s in enumerate(socks):
            if i in closed:
                continue
            s.setblocking(False)
            try:
                if s.recv(1024) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.2)
    for s in socks:
        s.close()
    return len(closed)


def probe_slowloris(sc, long):
    n = 2000 if long else 400
    socks = hold_sockets(sc.proxy, n, b"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\n")
    socks += hold_sockets(sc.admin, 200, b"GET /metrics HTTP/1.1\r\nhost: x\r\n")
    opened = len(socks)
    closed = count_closed(socks, 25)
    assert closed >= 0.95 * opened, f"only {closed}/{opened} half-sent requests were closed"
    return {"connections": opened, "closed_by_server_within_25s": closed}


def probe_idle_flood(sc, long):
    n_proxy = 8000 if long else 2000
    proxy = hold_sockets(sc.proxy, n_proxy)
    admin = hold_sockets(sc.admin, 300)
    time.sleep(1)
    took = healthz(sc.admin, 2.0)
    assert took is not None, "/healthz did not answer during an idle flood of the admin port"
    rss = sc.rss_mb()
    closed = count_closed(proxy + admin, 25)
    return {
        "idle_connections": len(proxy) + len(admin),
        "healthz_s_during_flood": round(took, 3),
        "rss_mb_during_flood": round(rss, 1),
        "closed_by_server_within_25s": closed,
    }


def probe_preauth_uploads(sc, long):
    before = sc.rss_mb()
    socks = []
    answered = 0
    for _ in range(20 if long else 10):
        s = socket.create_connection((HOST, sc.admin), timeout=5)
        s.sendall(
            b"PUT /api/v1/models/iris/baseline HTTP/1.1\r\nhost: x\r\n"
            b"content-type: application/json\r\ncontent-length: 60000000\r\n\r\n"
        )
        try:
            s.sendall(b"{" + b" " * (1 << 20))
        except OSError:
            pass
        s.settimeout(3)
        try:
            if s.recv(64).startswith(b"HTTP/1.1 401"):
                answered += 1
        except OSError:
            pass
        socks.append(s)
    grew = sc.rss_mb() - before
    for s in socks:
        s.close()
    assert answered == len(socks), f"{answered}/{len(socks)} unauthenticated uploads answered 401"
    assert grew < 40, f"RSS grew {grew:.0f} MB on unauthenticated uploads"
    return {"uploads": len(socks), "answered_401": answered, "rss_growth_mb": round(grew, 1)}


def probe_event_flood(sc, long):
    before = sc.rss_mb()
    body = b"{" + b" " * (15 << 20) + b"}"
    n = 30
    for i in range(n):
        status, _ = request(
            sc.admin,
            "POST",
            f"/api/v1/events?token={TOKEN}",
            body=body,
            headers={
                "ce-specversion": "1.0",
                "ce-id": f"lone-{i}-{time.time()}",
                "ce-source": "probe",
                "ce-type": "org.kubeflow.serving.inference.response",
                "content-type": "application/json",
            },
            timeout=30,
        )
        assert status == 202, status
    grew = sc.rss_mb() - before
    # events.max_bytes is 64 MiB (67 MB) of lone events kept; a body passes through a 16 MiB
    # request buffer too. What is freed goes back to the OS at once (`serve` runs with
    # MIMALLOC_PURGE_DELAY=0, docs/reliability.md "Memory after bursts"): 65-71 MB measured;
    # with mimalloc's 1 s delay this grew 130-171 MB.
    assert grew < 100, f"RSS grew {grew:.0f} MB on lone events"
    return {"lone_15mib_responses": n, "rss_growth_mb": round(grew, 1)}


INJECTED = ['x # {y', 'a"b\\c', "new\nline", "}{,=", "é # EOF"]


def probe_label_injection(sc, long):
    body = json.dumps(
        {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]} for n in INJECTED]}
    ).encode()
    status, _ = request(sc.proxy, "POST", "/v2/models/iris/infer", body=body, headers={"content-type": "application/json"})
    assert status == 200, status
    # A model name from the ingestion API's path (percent-decoded by the router).
    status, _ = request(
        sc.admin,
        "POST",
        "/api/v1/predictions/x%20%23%20%7By",
        body=json.dumps({"features": {n: 1.0 for n in INJECTED}, "prediction": 1}).encode(),
        headers=auth({"content-type": "application/json"}),
    )
    assert status in (200, 202), status
    response = json.dumps(
        {"outputs": [{"name": "predict", "shape": [4], "datatype": "INT64", "data": [0, 1, 2, 0]}]}
    ).encode()
    for kind, payload in (("request", oip()), ("response", response)):
        status, _ = request(
            sc.admin,
            "POST",
            f"/api/v1/events?token={TOKEN}",
            body=payload,
            headers={
                "ce-specversion": "1.0",
                "ce-id": "inj-1",
                "ce-source": "probe",
                "ce-type": f"org.kubeflow.serving.inference.{kind}",
                "ce-inferenceservicename": 'svc # {"x"}',
                "content-type": "application/json",
            },
        )
        assert status == 202, status
    # Random hostile names (a property check from the outside): model names through the
    # ingestion API's path, feature names through the proxy.
    rng = random.Random(11)
    alphabet = ['"', "\\", "#", "{", "}", " ", ",", "=", "é", "\u2028", "a", "z", "0"]

    def name(allow_newline):
        chars = alphabet + (["\n"] if allow_newline else [])
        out = "".join(rng.choice(chars) for _ in range(rng.randint(1, 12)))
        return out + chr(rng.randint(0x4E00, 0x9FFF))

    models_sent = [name(False) for _ in range(12)]
    features_sent = sorted({name(True) for _ in range(40)})
    for model in models_sent:
        status, _ = request(
            sc.admin,
            "POST",
            "/api/v1/predictions/" + urllib.parse.quote(model, safe=""),
            body=json.dumps({"features": {"x": 1.0}, "prediction": 1}).encode(),
            headers=auth({"content-type": "application/json"}),
        )
        assert status in (200, 202), (status, model)
    body = json.dumps(
        {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]} for n in features_sent]}
    ).encode()
    status, _ = request(sc.proxy, "POST", "/v2/models/iris/infer", body=body, headers={"content-type": "application/json"})
    assert status == 200, status
    time.sleep(2.5)
    m = check_metrics(sc.admin)
    models = {lab.get("model") for series in m["samples"].values() for lab, _ in series}
    features = {lab.get("feature") for series in m["samples"].values() for lab, _ in series}
    assert "x # {y" in models, f"the model name did not read back: {models}"
    assert 'svc # {"x"}' in models, f"the event's model name did not read back: {models}"
    missing = [n for n in models_sent if n not in models]
    assert not missing, f"model names not read back: {missing}"
    missing = [n for n in features_sent + INJECTED if n not in features]
    assert not missing, f"feature names not read back: {missing[:5]}"
    return {
        "names": len(INJECTED) + 2 + len(models_sent) + len(features_sent),
        "metrics_bytes": m["bytes"],
    }


def probe_name_flood(sc, long):
    names = [f"f{i}_" + "n" * 3500 for i in range(300)]
    body = json.dumps(
        {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]} for n in names]}
    ).encode()
    for _ in range(20 if long else 5):
        request(sc.proxy, "POST", "/v2/models/iris/infer", body=body)
    time.sleep(2.5)
    m = check_metrics(sc.admin)
    longest = max(
        (len(v) for series in m["samples"].values() for lab, _ in series for v in lab.values()),
        default=0,
    )
    assert m["bytes"] < 8 << 20, f"/metrics is {m['bytes']} bytes after a name flood"
    return {"names": len(names), "name_bytes": 3500, "metrics_bytes": m["bytes"], "longest_label_value": longest}


def probe_slot_flood(sc, long):
    for i in range(40):
        request(sc.proxy, "POST", f"/v2/models/junk{i}/infer", body=oip())
    status, _ = request(sc.proxy, "POST", "/invocations", body=oip())
    time.sleep(1.5)
    m = check_metrics(sc.admin)
    models = {lab.get("model") for lab, _ in m["samples"].get("mlmon_requests_total", [])}
    assert "iris" in models, models
    assert len(models) <= 34, f"{len(models)} model labels"
    return {"junk_names": 40, "model_labels": len(models)}


def probe_client_aborts(sc, long):
    n = 50
    before = check_metrics(sc.admin)["samples"]
    canceled0 = metric(before, "mlmon_requests_total", model="iris", code="canceled") or 0
    error0 = metric(before, "mlmon_requests_total", model="iris", code="error") or 0
    for _ in range(n):
        s = socket.create_connection((HOST, sc.proxy))
        s.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n{\"inputs\"")
        time.sleep(0.01)
        s.close()
    time.sleep(1.5)
    m = check_metrics(sc.admin)
    canceled = (metric(m["samples"], "mlmon_requests_total", model="iris", code="canceled") or 0) - canceled0
    error = (metric(m["samples"], "mlmon_requests_total", model="iris", code="error") or 0) - error0
    assert error == 0, f"{error} aborted uploads counted as upstream errors"
    assert canceled >= n * 0.9, f"only {canceled}/{n} aborts counted as canceled"
    return {"aborted_uploads": n, "counted_canceled": canceled, "counted_error": error}


def probe_upstream_restart(sc, upstream, long):
    upstream.stop()
    time.sleep(1.0)
    status, _ = request(sc.proxy, "POST", "/v2/models/iris/infer", body=oip())
    assert status == 502, status
    upstream.start()
    time.sleep(0.5)
    status, _ = request(sc.proxy, "POST", "/v2/models/iris/infer", body=oip())
    assert status == 200, status
    return {"while_down": 502, "after_restart": 200}


def probe_sigterm_with_open_streams(binary, upstream_port, workdir):
    sc = Sidecar(binary, upstream_port, workdir)
    sc.start()
    streams = []
    for _ in range(3):
        s = socket.create_connection((HOST, sc.proxy))
        s.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        s.settimeout(3)
        assert s.recv(64).startswith(b"HTTP/1.1 200")
        streams.append(s)
    up = socket.create_connection((HOST, sc.admin))
    up.sendall(
        (
            "PUT /api/v1/models/iris/baseline HTTP/1.1\r\nhost: x\r\n"
            f"authorization: Bearer {TOKEN}\r\ncontent-length: 1000000\r\n\r\n{{"
        ).encode()
    )
    time.sleep(0.3)
    took = sc.stop(timeout=10)
    for s in streams + [up]:
        s.close()
    assert took < 3 + 2, f"exit took {took:.1f} s with proxy.shutdown_grace 3s"
    return {"open_streams": 3, "stalled_uploads": 1, "grace_s": 3, "exit_s": round(took, 2)}


# ---------------------------------------------------------------------------------------


def soak(sc, seconds, rate):
    samples = []
    with Background(sc, rate) as bg:
        t0 = time.time()
        while time.time() - t0 < seconds:
            samples.append((time.time() - t0, sc.rss_mb()))
            time.sleep(10)
    m = check_metrics(sc.admin)
    xs = [t / 60 for t, _ in samples]
    ys = [r for _, r in samples]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs) or 1.0
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var
    # Slope over the second half: the first minutes fill the 15-minute windows.
    half = [(x, y) for x, y in zip(xs, ys) if x >= xs[-1] / 2] or list(zip(xs, ys))
    hx = sum(x for x, _ in half) / len(half)
    hy = sum(y for _, y in half) / len(half)
    hvar = sum((x - hx) ** 2 for x, _ in half) or 1.0
    hslope = sum((x - hx) * (y - hy) for x, y in half) / hvar
    dropped = sum(v for _, v in m["samples"].get("mlmon_capture_dropped_total", []))
    result = {
        "seconds": seconds,
        "rate_per_s": rate,
        "requests_ok": bg.ok,
        "proxied_errors": len(bg.errors),
        "p99_ms": round(bg.p99_ms(), 2),
        "rss_start_mb": round(ys[0], 1),
        "rss_end_mb": round(ys[-1], 1),
        "rss_max_mb": round(max(ys), 1),
        "rss_slope_mb_per_min": round(slope, 3),
        "rss_slope_second_half_mb_per_min": round(hslope, 3),
        "capture_dropped": dropped,
        "healthz_failures": bg.health_failures,
    }
    assert not bg.errors, bg.errors[:5]
    return result


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-upstream":
        serve_upstream(int(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/mlmon")
    ap.add_argument("--long", action="store_true", help="larger floods")
    ap.add_argument("--soak", type=int, default=0, metavar="SECONDS", help="then a steady soak")
    ap.add_argument("--rate", type=float, default=50.0, help="background requests per second")
    ap.add_argument("--rss-bound", type=float, default=300.0, help="RSS bound in MB")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--only", help="comma-separated probe names")
    args = ap.parse_args()
    if text_string_to_metric_families is None:
        raise SystemExit("probes: prometheus_client is not installed (pip install prometheus-client)")
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"probes: no binary at {args.binary} (cargo build --release)")

    workdir = tempfile.mkdtemp(prefix="mlmon-probes-")
    upstream = Upstream(free_port())
    upstream.start()
    sc = Sidecar(args.binary, upstream.port, workdir)
    sc.start()
    figures = {"binary": args.binary, "mode": "long" if args.long else "short", "rss_bound_mb": args.rss_bound}
    failures = []
    probes = [
        ("label_injection", lambda: probe_label_injection(sc, args.long)),
        ("slowloris", lambda: probe_slowloris(sc, args.long)),
        ("idle_flood", lambda: probe_idle_flood(sc, args.long)),
        ("preauth_uploads", lambda: probe_preauth_uploads(sc, args.long)),
        ("event_flood", lambda: probe_event_flood(sc, args.long)),
        ("name_flood", lambda: probe_name_flood(sc, args.long)),
        ("slot_flood", lambda: probe_slot_flood(sc, args.long)),
        ("client_aborts", lambda: probe_client_aborts(sc, args.long)),
        ("upstream_restart", lambda: probe_upstream_restart(sc, upstream, args.long)),
    ]
    only = set(args.only.split(",")) if args.only else None
    figures["rss_start_mb"] = round(sc.rss_mb(), 1)
    for name, run in probes:
        if only and name not in only:
            continue
        t0 = time.time()
        with Background(sc, args.rate) as bg:
            try:
                out = run()
                err = None
            except (AssertionError, OSError, http.client.HTTPException) as e:
                out, err = {}, f"{type(e).__name__}: {e}"
        # The restart probe stops the upstream on purpose: its own 502s are expected.
        unexpected = [] if name == "upstream_restart" else bg.errors
        try:
            check_metrics(sc.admin)
        except Exception as e:  # noqa: BLE001 - any parse failure is the finding
            err = err or f"/metrics does not parse: {e}"
        if err is None and unexpected:
            err = f"proxied traffic affected: {len(unexpected)} errors, e.g. {unexpected[:3]}"
        if err is None and bg.health_failures:
            err = f"/healthz failed {bg.health_failures} times"
        if err is None and bg.rss_max > args.rss_bound:
            err = f"RSS {bg.rss_max:.0f} MB over the {args.rss_bound:.0f} MB bound"
        out.update(
            {
                "seconds": round(time.time() - t0, 1),
                "background_ok": bg.ok,
                "background_errors": len(bg.errors),
                "background_p99_ms": round(bg.p99_ms(), 2),
                "healthz_worst_s": round(bg.health_worst, 3),
                "rss_max_mb": round(bg.rss_max, 1),
            }
        )
        if err:
            out["error"] = err
            failures.append(f"{name}: {err}")
        figures[name] = out
        print(f"{'FAIL' if err else 'ok  '} {name}: {json.dumps(out)}", flush=True)
        if sc.proc.poll() is not None:
            failures.append(f"mlmon exited during {name}")
            break
    if args.soak and sc.proc.poll() is None:
        try:
            figures["soak"] = soak(sc, args.soak, args.rate)
            print(f"ok   soak: {json.dumps(figures['soak'])}", flush=True)
        except AssertionError as e:
            failures.append(f"soak: {e}")
    try:
        sc.stop()
    except AssertionError as e:
        failures.append(str(e))
    if not only or "sigterm" in only:
        try:
            figures["sigterm_open_streams"] = probe_sigterm_with_open_streams(args.binary, upstream.port, workdir)
            print(f"ok   sigterm_open_streams: {json.dumps(figures['sigterm_open_streams'])}", flush=True)
        except AssertionError as e:
            failures.append(f"sigterm_open_streams: {e}")
            print(f"FAIL sigterm_open_streams: {e}", flush=True)
    upstream.stop()
    figures["failures"] = failures
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    if failures:
        print("probes: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        print(f"probes: logs in {workdir}", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)
    print("probes: all passed")


if __name__ == "__main__":
    main()
