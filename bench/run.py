#!/usr/bin/env python3
"""`make bench`: every target of issue 13 (Performance v2) measured in one run.

One run starts, pinned with `taskset` (load generator on CPU 0, servers on the other CPUs):
a minimal hyper model server (`bench/proxy/upstream.rs`), a naive pooled hyper reverse proxy
with no monitoring (`bench/proxy/plain_proxy.rs`) and `mlmon serve` with the default
configuration and a 10-feature baseline loaded (every analysis on), and drives them with the
open/closed-loop load generator `bench/loadgen.rs` (fixed rates are wrk2-style: latency from
each request's due time). Phases:

A. OIP v2, 8 rows x 10 FP64 features, 8 predictions + probabilities: the naive proxy's
   maximum throughput (closed loop); mlmon's capacity, the highest fixed rate at which no
   capture is dropped (`mlmon_capture_dropped_total`), found by bisection; CPU per request
   at 1 000 rps for both; analysis values per analysis-thread CPU second.
B. A 1-row records payload (10 features): maximum throughput and CPU per request at 1 000 rps
   for both; mlmon's RSS after phases A and B.
C. Large bodies: analysis CPU per 100 000-row body, and a steady 8x10 stream of another model
   with 3 such bodies per second beside it (no capture may be dropped).
D. Cardinality and scrape: 32 models x 100 features under load; `/metrics` series and bytes
   of one 100-feature model; scrape time under load.
E. Drift `report()` for 100 features at a full window and memory per feature (the criterion
   bench `bench/drift/drift.rs`, filtered).
F. Offline: `mlmon baseline build` + `mlmon drift` on 200k + 100k rows x 20 columns beside
   Evidently's DataDriftPreset (its own venv `.venv-bench`, created when missing).
G. Hooks: proxy overhead with shadow traffic on vs off and the status page refreshing every
   5 s vs not, measured once `mlmon serve` supports them.

It prints every target as `met` / `not met` with the measured figure, writes the
`## Performance v2 (issue 13)` section of docs/performance.md (figures, command, machine,
date, commit) and the raw figures to target/bench-v2/results.json.

`--short` (what `make bench` runs) keeps the whole run within about 15 minutes on 2 cores
(builds warm); without it every measurement runs longer. Every server binds 127.0.0.1;
every process started here is stopped by its PID; every wait is bounded in time.
Python standard library only (Evidently runs in its own venv); Linux only (/proc, taskset).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Performance v2 (issue 13)"

_spec = importlib.util.spec_from_file_location("bench_drift_run", REPO / "bench" / "drift" / "run.py")
drift_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drift_run)  # helpers only: machine(), ensure_venv(), run_measured()

# Targets (issue 13).
MAX_RUNS = 3  # closed-loop maximum runs per target (median), see max_pair
OFFLINE_RUNS = 3  # offline rounds (mlmon build + drift, Evidently), median of each side
T_CAPACITY = 0.5  # capacity / naive max throughput, 8x10
T_VALUES_PER_CORE = 5e6  # feature values per analysis-thread CPU second
T_CPU_1ROW = 1.5
T_CPU_8X10 = 2.5
T_THROUGHPUT = 0.8  # 1-row
T_RSS = 24e6
T_RSS_32X100 = 256e6  # a 32-model x 100-feature sidecar
T_BIG_MS = 50.0
T_REPORT_MS = 10.0
T_SERIES = 1500
T_BYTES = 120_000
T_SCRAPE_MS = 50.0
T_MEM_FEATURE = 64 * 1024
T_OFFLINE = 100.0

FEATURES = [f"f{i}" for i in range(10)]
OIP_PATH = "/v2/models/bench/infer"
RECORDS_PATH = "/predict"
BIG_PATH = "/v2/models/big/infer"
BIG_ROWS = 100_000


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ------------------------------------------------------------------------------ processes

CHILDREN: list[subprocess.Popen] = []


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    if p in CHILDREN:
        CHILDREN.remove(p)


def stop_all() -> None:
    while CHILDREN:
        stop(CHILDREN[-1])
    drift_run.stop_children()


def on_signal(signum, _frame) -> None:
    stop_all()
    sys.exit(128 + signum)


def spawn(cmd: list[str], logfile: Path) -> subprocess.Popen:
    with open(logfile, "wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    CHILDREN.append(p)
    return p


def pin(cpus: str | None, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def wait_listening(logfile: Path, p: subprocess.Popen, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise BenchError(f"{logfile.name}: exited early: {logfile.read_text()[-2000:]}")
        m = re.search(r"listening on (127\.0\.0\.1:\d+)", logfile.read_text())
        if m:
            return m.group(1)
        time.sleep(0.05)
    raise BenchError(f"{logfile.name}: not listening within {timeout:.0f} s")


def http(url: str, body: bytes | None = None, timeout: float = 10) -> tuple[int, bytes, str]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type", "")


def wait_http_ok(url: str, body: bytes | None, p: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise BenchError(f"{p.args}: exited early (code {p.returncode})")
        try:
            code, _, _ = http(url, body, timeout=2)
            if code == 200:
                return
            last = f"HTTP {code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.1)
    raise BenchError(f"{url}: no 200 within {timeout:.0f} s ({last})")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, all threads, seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    f = stat[stat.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def analysis_cpu(pid: int) -> float:
    """CPU seconds of mlmon's analysis threads: those named `mlmon-*` (parser, workers) and
    those running at the lowest priority (nice >= 10: the analysis thread lowers itself)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        f = stat[stat.rindex(")") + 2:].split()
        nice = int(f[16])
        if comm.startswith("mlmon-") or nice >= 10:
            total += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) * 1024
    return out


# ------------------------------------------------------------------------------ metrics

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(admin: str) -> str:
    code, body, _ = http(f"http://{admin}/metrics", timeout=10)
    if code != 200:
        raise BenchError(f"/metrics answered {code}")
    return body.decode()


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m or m.group(1) != name:
            continue
        lab = m.group(2) or ""
        if all(f'{k}="{v}"' in lab for k, v in labels.items()):
            try:
                total += float(m.group(3))
            except ValueError:
                pass
    return total


def dropped(admin: str) -> float:
    return metric(scrape(admin), "mlmon_capture_dropped_total")


def dropped_captures(admin: str) -> float:
    """Captures skipped whole (queue full, body too large, ...): every reason but
    `row_budget`, which counts a large body analysed on an even sample of its rows."""
    text = scrape(admin)
    return metric(text, "mlmon_capture_dropped_total") - metric(text, "mlmon_capture_dropped_total",
                                                               reason="row_budget")


def wait_drained(admin: str, timeout: float = 20) -> None:
    """Waits until the capture queue is empty (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(scrape(admin), "mlmon_capture_queue_length") == 0:
            return
        time.sleep(0.2)


# ------------------------------------------------------------------------------ workloads

def oip_request(rows: int, rng: random.Random) -> dict:
    return {
        "id": "bench",
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": f, "shape": [rows], "datatype": "FP64",
             "data": [round(rng.gauss(i, 1 + i / 10), 4) for _ in range(rows)]}
            for i, f in enumerate(FEATURES)
        ],
    }


def oip_response(rows: int, rng: random.Random) -> dict:
    probs = []
    classes = []
    for _ in range(rows):
        p = round(rng.random(), 4)
        probs += [round(1 - p, 4), p]
        classes.append(int(p > 0.5))
    return {
        "model_name": "bench", "model_version": "1", "id": "bench",
        "parameters": {"content_type": "np"},
        "outputs": [
            {"name": "predict", "shape": [rows, 1], "datatype": "INT64", "data": classes},
            {"name": "predict_proba", "shape": [rows, 2], "datatype": "FP64", "data": probs},
        ],
    }


def write_workloads(work: Path, rng: random.Random) -> dict[str, Path]:
    files = {}

    def put(name: str, doc) -> None:
        p = work / name
        p.write_text(json.dumps(doc, separators=(",", ":")))
        files[name] = p

    put("oip_8x10_req.json", oip_request(8, rng))
    put("oip_8x10_resp.json", oip_response(8, rng))
    put("records_1_req.json", {f: round(rng.gauss(i, 1 + i / 10), 4) for i, f in enumerate(FEATURES)})
    put("records_1_resp.json", {"predictions": [1]})
    # 100 000 rows of one feature, like the 300 KB body.
    put("big_req.json", {"inputs": [{"name": "x", "shape": [BIG_ROWS], "datatype": "INT64",
                                     "data": [rng.randrange(100) for _ in range(BIG_ROWS)]}]})
    put("big_resp.json", {"outputs": [{"name": "predict", "shape": [BIG_ROWS, 1], "datatype": "INT64",
                                       "data": [rng.randrange(2) for _ in range(BIG_ROWS)]}]})
    wide = [f"f{i:03d}" for i in range(100)]
    put("oip_1x100_req.json", {"inputs": [{"name": f, "shape": [1], "datatype": "FP64",
                                           "data": [round(rng.gauss(0, 1), 4)]} for f in wide]})
    put("oip_1_resp.json", oip_response(1, rng))
    return files


def write_csv(path: Path, columns: list[str], rows: int, rng: random.Random, pred: bool) -> None:
    with open(path, "w") as f:
        f.write(",".join(columns + (["prediction"] if pred else [])) + "\n")
        for _ in range(rows):
            vals = [f"{rng.gauss(i % 10, 1 + (i % 10) / 10):.4f}" for i in range(len(columns))]
            if pred:
                vals.append(str(rng.randrange(2)))
            f.write(",".join(vals) + "\n")


def build_baseline(mlmon: Path, csv: Path, model: str, out: Path, pred: bool) -> Path:
    cmd = [str(mlmon), "baseline", "build", "--input", str(csv), "--output", str(out), "--model", model]
    if pred:
        cmd += ["--prediction", "prediction"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise BenchError(f"baseline build {model}: {r.stderr.strip()[-1000:]}")
    return out


# ------------------------------------------------------------------------------ load

class Loadgen:
    def __init__(self, exe: Path, cpus: str | None):
        self.exe, self.cpus = exe, cpus

    def run(self, urls: list[str], body: Path, duration: float, rate: float | None = None,
            connections: int = 32) -> dict:
        cmd = [str(self.exe), "--body", str(body), "--duration", f"{duration}",
               "--connections", str(connections)]
        for u in urls:
            cmd += ["--url", u]
        if rate:
            cmd += ["--rate", f"{rate:.0f}"]
        r = subprocess.run(pin(self.cpus, cmd), cwd=REPO, capture_output=True, text=True,
                           timeout=duration + 60)
        if r.returncode != 0:
            raise BenchError(f"loadgen: {r.stderr.strip()[-1000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])


class Servers:
    """The upstream, the naive proxy and mlmon of one phase."""

    def __init__(self, exes: dict, work: Path, cpus: str | None, responses: dict[str, Path],
                 baselines: list[Path], name: str, config: Path, extra_config: str = ""):
        self.work = work
        up_log = work / f"{name}-upstream.log"
        cmd = [str(exes["upstream"]), "--listen", "127.0.0.1:0"]
        for prefix, f in responses.items():
            cmd += ["--response", f"{prefix}={f}"]
        self.upstream = spawn(pin(cpus, cmd), up_log)
        self.up_addr = wait_listening(up_log, self.upstream)
        pl = work / f"{name}-plain.log"
        self.plain = spawn(pin(cpus, [str(exes["plain"]), "--listen", "127.0.0.1:0", "--upstream",
                                      f"http://{self.up_addr}"]), pl)
        self.plain_addr = wait_listening(pl, self.plain)
        if extra_config:
            merged = work / f"{name}-mlmon.yaml"
            merged.write_text(config.read_text() + "\n" + extra_config.replace("{upstream}", f"http://{self.up_addr}"))
            config = merged
        self.addr = f"127.0.0.1:{free_port()}"
        self.admin = f"127.0.0.1:{free_port()}"
        cmd = [str(exes["mlmon"]), "serve", "--config", str(config), "--listen", self.addr,
               "--admin-listen", self.admin, "--upstream", f"http://{self.up_addr}", "--model", "bench"]
        for b in baselines:
            cmd += ["--baseline", str(b)]
        self.mlmon = spawn(pin(cpus, cmd), work / f"{name}-mlmon.log")
        wait_http_ok(f"http://{self.admin}/metrics", None, self.mlmon, timeout=60)

    def url(self, target: str, path: str) -> str:
        return f"http://{self.plain_addr if target == 'plain' else self.addr}{path}"

    def pid(self, target: str) -> int:
        return (self.plain if target == "plain" else self.mlmon).pid

    def close(self) -> None:
        for p in (self.mlmon, self.plain, self.upstream):
            stop(p)


def cpu_per_request(s: Servers, lg: Loadgen, target: str, path: str, body: Path, seconds: float,
                    rate: float = 1000) -> dict:
    pid = s.pid(target)
    c0 = proc_cpu(pid)
    r = lg.run([s.url(target, path)], body, seconds, rate=rate, connections=16)
    if target == "mlmon":
        wait_drained(s.admin)
    c1 = proc_cpu(pid)
    return {"cpu_ms_per_request": (c1 - c0) * 1000 / max(r["completed"], 1), "load": r}


def median_by(items: list, key):
    """The item with the median `key(item)` (the upper one of an even count)."""
    return sorted(items, key=key)[len(items) // 2]


def median_run(runs: list[dict], field: str = "rps") -> dict:
    """The run with the median `field`, every run's value beside it (`<field>_runs`)."""
    return {**median_by(runs, lambda r: r[field]), f"{field}_runs": [r[field] for r in runs]}


def max_pair(s: "Servers", lg: Loadgen, path: str, body: Path, seconds: float) -> tuple[dict, dict]:
    """Closed-loop maximum of the naive proxy and of mlmon: MAX_RUNS runs of each, interleaved
    (naive, mlmon, naive, ...) so that a slow spell of the machine hits both; the median of each.
    A single run of the naive proxy moved by up to 38 % between runs on one quiet host, and the
    capacity and throughput targets are ratios to it."""
    naive, ml = [], []
    for _ in range(MAX_RUNS):
        naive.append(lg.run([s.url("plain", path)], body, seconds))
        ml.append(lg.run([s.url("mlmon", path)], body, seconds))
        wait_drained(s.admin)
    return median_run(naive), median_run(ml)


def cpu_pair(s: "Servers", lg: Loadgen, path: str, body: Path, seconds: float) -> dict:
    """CPU per request at 1 000 rps of the naive proxy and of mlmon: MAX_RUNS runs of each,
    interleaved; the median of each (`cpu_ms_per_request_runs` lists every run). One run of the 1-row pair
    gave ratios from 1.10x to 1.65x on one quiet host."""
    runs: dict[str, list[dict]] = {"plain": [], "mlmon": []}
    for _ in range(MAX_RUNS):
        for t in ("plain", "mlmon"):
            runs[t].append(cpu_per_request(s, lg, t, path, body, seconds))
    return {t: median_run(rs, "cpu_ms_per_request") for t, rs in runs.items()}


# ------------------------------------------------------------------------------ phases

def phase_ab(exes, work, cpus, lg: Loadgen, files, baseline, config, dur) -> dict:
    out: dict = {}
    s = Servers(exes, work, cpus, {OIP_PATH: files["oip_8x10_resp.json"],
                                   RECORDS_PATH: files["records_1_resp.json"]},
                [baseline], "ab", config)
    try:
        wait_http_ok(s.url("mlmon", OIP_PATH), files["oip_8x10_req.json"].read_bytes(), s.mlmon)
        wait_http_ok(s.url("mlmon", RECORDS_PATH), files["records_1_req.json"].read_bytes(), s.mlmon)
        # The resident set before any load: what the binary's mapped pages and start-up cost.
        out["rss_start"] = rss(s.mlmon.pid)
        req = files["oip_8x10_req.json"]
        # --- A: 8x10
        log(f"A: 8x10 max throughput, naive proxy and mlmon (closed loop, {MAX_RUNS} interleaved runs each)")
        naive, ml = max_pair(s, lg, OIP_PATH, req, dur["max"])
        out["oip_naive_max"] = naive
        out["oip_mlmon_max"] = ml
        # Capacity: bisection on the fixed rate with zero captures dropped.
        text0 = scrape(s.admin)
        rows0 = metric(text0, "mlmon_predictions_total", model="bench")
        acpu0 = analysis_cpu(s.mlmon.pid)
        hi = max(naive["rps"], ml["rps"]) * 1.05
        lo = 0.0
        rate = T_CAPACITY * naive["rps"]
        steps = []
        for _ in range(dur["capacity_steps"]):
            d0 = dropped(s.admin)
            r = lg.run([s.url("mlmon", OIP_PATH)], req, dur["fixed"], rate=rate, connections=64)
            wait_drained(s.admin)
            d = dropped(s.admin) - d0
            # Held: the requests due in the run were answered (2xx) within about its length.
            held = r["rps"] >= 0.9 * rate and r["errors"] == 0 and r["non_2xx"] == 0
            ok = held and d == 0
            steps.append({"rate": rate, "dropped": d, "held": held, "ok": ok, "load": r})
            log(f"A: capacity step {rate:.0f} rps: dropped {d:.0f}, held {held}")
            if ok:
                lo = rate
            else:
                hi = rate
            rate = (lo + hi) / 2
        text1 = scrape(s.admin)
        rows1 = metric(text1, "mlmon_predictions_total", model="bench")
        acpu1 = analysis_cpu(s.mlmon.pid)
        out["capacity"] = {"rps": lo, "steps": steps}
        out["analysis"] = {"rows": rows1 - rows0, "values": (rows1 - rows0) * len(FEATURES),
                           "cpu_seconds": acpu1 - acpu0}
        log("A: CPU per request at 1000 rps")
        out["oip_cpu"] = cpu_pair(s, lg, OIP_PATH, req, dur["cpu"])
        # --- B: 1-row records
        rec = files["records_1_req.json"]
        log(f"B: 1-row records max throughput (closed loop, {MAX_RUNS} interleaved runs each)")
        out["rec_naive_max"], out["rec_mlmon_max"] = max_pair(s, lg, RECORDS_PATH, rec, dur["max"])
        log("B: CPU per request at 1000 rps")
        out["rec_cpu"] = cpu_pair(s, lg, RECORDS_PATH, rec, dur["cpu"])
        out["rss"] = rss(s.mlmon.pid)
        out["rss_plain"] = rss(s.plain.pid)
        out["dropped_total"] = dropped(s.admin)
    finally:
        s.close()
    return out


def phase_c(exes, work, cpus, lg: Loadgen, files, baseline, big_baseline, config, dur, rate) -> dict:
    out: dict = {}
    s = Servers(exes, work, cpus, {OIP_PATH: files["oip_8x10_resp.json"], BIG_PATH: files["big_resp.json"]},
                [baseline, big_baseline], "c", config)
    try:
        big = files["big_req.json"].read_bytes()
        wait_http_ok(s.url("mlmon", OIP_PATH), files["oip_8x10_req.json"].read_bytes(), s.mlmon)
        log("C: 100 000-row bodies, one at a time")
        per = []
        for _ in range(dur["big_bodies"]):
            before = metric(scrape(s.admin), "mlmon_predictions_total", model="big")
            c0 = analysis_cpu(s.mlmon.pid)
            t0 = time.perf_counter()
            code, _, _ = http(s.url("mlmon", BIG_PATH), big, timeout=30)
            if code != 200:
                raise BenchError(f"big body: HTTP {code}")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                text = scrape(s.admin)
                if metric(text, "mlmon_predictions_total", model="big") >= before + BIG_ROWS:
                    break
                time.sleep(0.005)
            else:
                per.append({"analysed": False})
                continue
            wall = time.perf_counter() - t0
            wait_drained(s.admin)
            per.append({"analysed": True, "wall_ms": wall * 1000,
                        "analysis_cpu_ms": (analysis_cpu(s.mlmon.pid) - c0) * 1000})
        out["big"] = per
        log(f"C: 8x10 at {rate:.0f} rps beside 3 big bodies/s")
        stop_evt = threading.Event()
        sent = [0]

        def bigs() -> None:
            while not stop_evt.is_set():
                t = time.monotonic()
                try:
                    http(s.url("mlmon", BIG_PATH), big, timeout=10)
                    sent[0] += 1
                except OSError:
                    pass
                stop_evt.wait(max(0.0, 1 / 3 - (time.monotonic() - t)))

        d0 = dropped_captures(s.admin)
        rows0 = metric(scrape(s.admin), "mlmon_predictions_total", model="bench")
        th = threading.Thread(target=bigs, daemon=True)
        th.start()
        r = lg.run([s.url("mlmon", OIP_PATH)], files["oip_8x10_req.json"], dur["fixed"], rate=rate, connections=32)
        stop_evt.set()
        th.join(timeout=15)
        wait_drained(s.admin, timeout=30)
        text = scrape(s.admin)
        out["fairness"] = {"rate": rate, "big_sent": sent[0], "dropped": dropped_captures(s.admin) - d0,
                           "bench_rows": metric(text, "mlmon_predictions_total", model="bench") - rows0,
                           "load": r}
    finally:
        s.close()
    return out


def phase_d(exes, work, cpus, lg: Loadgen, files, mlmon: Path, config, dur, rng) -> dict:
    out: dict = {}
    wide = [f"f{i:03d}" for i in range(100)]
    csv = work / "wide.csv"
    write_csv(csv, wide, 2000, rng, pred=True)
    models = [f"m{i:02d}" for i in range(32)]
    baselines = [build_baseline(mlmon, csv, m, work / f"wide-{m}.json", True) for m in models]
    s = Servers(exes, work, cpus, {"/v2/models/": files["oip_1_resp.json"]}, baselines, "d", config)
    try:
        urls = [s.url("mlmon", f"/v2/models/{m}/infer") for m in models]
        body = files["oip_1x100_req.json"]
        wait_http_ok(urls[0], body.read_bytes(), s.mlmon)
        log("D: 32 models x 100 features: warm-up traffic, then a refresh")
        lg.run(urls, body, dur["fixed"], rate=1000, connections=32)
        time.sleep(11)  # one drift.interval (10 s by default): every series exported
        text = scrape(s.admin)
        lines = [l for l in text.splitlines() if l and not l.startswith("#")]
        mine = [l for l in lines if 'model="m00"' in l]
        out["page"] = {"series": len(lines), "bytes": len(text.encode())}
        out["model"] = {"series": len(mine), "bytes": sum(len(l) + 1 for l in mine)}
        log("D: scrapes under load")
        times = []
        stop_evt = threading.Event()

        def scraper() -> None:
            while not stop_evt.is_set():
                t = time.perf_counter()
                try:
                    scrape(s.admin)
                    times.append((time.perf_counter() - t) * 1000)
                except (OSError, BenchError):
                    pass
                stop_evt.wait(0.5)

        th = threading.Thread(target=scraper, daemon=True)
        th.start()
        r = lg.run(urls, body, dur["fixed"] + 2, rate=2000, connections=32)
        stop_evt.set()
        th.join(timeout=15)
        times.sort()
        out["scrape"] = {"count": len(times), "p50_ms": times[len(times) // 2] if times else None,
                         "max_ms": times[-1] if times else None, "load": r}
        out["rss_32x100"] = rss(s.mlmon.pid)
    finally:
        s.close()
    return out


def phase_e(work: Path, dur) -> dict:
    """criterion bench bench/drift/drift.rs, filtered to report() at 100 features."""
    home = work / "criterion"
    env = dict(os.environ, CRITERION_HOME=str(home))
    cmd = ["cargo", "bench", "--bench", "drift", "--", "^report(_cpu)?/numeric_100_full_window$",
           "--noplot", "--warm-up-time", "1", "--measurement-time", str(dur["criterion"])]
    r = drift_run.run_measured(cmd, timeout=dur["criterion_timeout"], env=env)
    line = next((l for l in r["stdout"].splitlines() if l.startswith("MLMON_DRIFT_BENCH ")), None)
    figures = json.loads(line.split(" ", 1)[1]) if line else {}
    cpu = drift_run.criterion_estimate(home, "report_cpu", "numeric_100_full_window")
    wall = drift_run.criterion_estimate(home, "report", "numeric_100_full_window")
    return {"report_ms": wall["mean_ns"] / 1e6, "report_cpu_ms": cpu["mean_ns"] / 1e6,
            "memory": figures.get("memory")}


def phase_f(mlmon: Path, work: Path, venv: Path, ref_rows: int, cur_rows: int) -> dict:
    try:
        py = drift_run.ensure_venv(venv)
    except SystemExit as e:
        return {"skipped": f"Evidently could not be installed: {str(e).strip().splitlines()[0][:200]}"}
    data = work / f"offline-{ref_rows}-{cur_rows}"
    data.mkdir(exist_ok=True)
    ref, cur = data / "reference.csv", data / "current.csv"
    if not (ref.exists() and cur.exists()):
        drift_run.run_measured([str(py), str(REPO / "bench" / "drift" / "gen_data.py"), "--rows", str(ref_rows),
                                "--current-rows", str(cur_rows), "--out", str(data)], timeout=900)
    baseline = data / "baseline.json"
    # OFFLINE_RUNS rounds of (mlmon build + drift, Evidently), the median of each side: a single
    # Evidently run took 14.8 s warm and 29.3 s cold (Python's import cache) on one host.
    rounds = []
    for _ in range(OFFLINE_RUNS):
        build = drift_run.run_measured([str(mlmon), "baseline", "build", "--input", str(ref), "--output",
                                        str(baseline), "--model", "bench", "--prediction", "prediction"],
                                       timeout=600)
        drift = drift_run.run_measured([str(mlmon), "drift", "--baseline", str(baseline), "--input", str(cur),
                                        "--output", "json"], timeout=600, ok_codes=(0, 1, 2))
        evid = drift_run.run_measured([str(py), str(REPO / "bench" / "drift" / "evidently_drift.py"),
                                       "--reference", str(ref), "--current", str(cur)], timeout=1200)
        rounds.append({"build": build, "drift": drift, "evid": evid,
                       "mlmon_s": build["wall_seconds"] + drift["wall_seconds"]})
    ml = median_by(rounds, lambda r: r["mlmon_s"])
    evid = median_by(rounds, lambda r: r["evid"]["wall_seconds"])["evid"]
    ev = json.loads(evid["stdout"].strip().splitlines()[-1])
    mlmon_wall = ml["mlmon_s"]
    return {"build_s": ml["build"]["wall_seconds"], "drift_s": ml["drift"]["wall_seconds"], "mlmon_s": mlmon_wall,
            "mlmon_cpu_s": ml["build"]["cpu_seconds"] + ml["drift"]["cpu_seconds"],
            "evidently_s": evid["wall_seconds"], "evidently_cpu_s": evid["cpu_seconds"],
            "evidently_version": ev["versions"]["evidently"],
            "mlmon_runs_s": [r["mlmon_s"] for r in rounds],
            "evidently_runs_s": [r["evid"]["wall_seconds"] for r in rounds],
            "ratio": evid["wall_seconds"] / mlmon_wall, "rows": [ref_rows, cur_rows]}


SHADOW_CONFIG = """shadow:
  upstream: "{upstream}"
  sample: 1.0
"""

STATUS_POLLS = ["/api/v1/models", "/api/v1/models/bench/history", "/api/v1/models/bench/drift",
                "/api/v1/models/bench/quality", "/api/v1/models/bench/anomalies?limit=10",
                "/api/v1/models/bench/importance"]


def shadow_supported(mlmon: Path, work: Path, config: Path) -> str | None:
    """None when `mlmon check-config` accepts a `shadow.upstream`, else why not."""
    probe = work / "shadow-probe.yaml"
    probe.write_text(config.read_text() + "\n" + SHADOW_CONFIG.replace("{upstream}", "http://127.0.0.1:9"))
    r = subprocess.run([str(mlmon), "check-config", "--config", str(probe)], capture_output=True,
                       text=True, timeout=60)
    if r.returncode == 0:
        return None
    return "feature not on this branch (`mlmon check-config` refuses a `shadow.upstream` key)"


def phase_g(exes, work, cpus, lg: Loadgen, files, baseline, config, dur) -> dict:
    """Hooks for features other branches add (status page, shadow traffic): measured once
    `mlmon serve` has them, `not measured: feature not on this branch` until then."""
    out: dict = {}
    req = files["oip_8x10_req.json"]
    s = Servers(exes, work, cpus, {OIP_PATH: files["oip_8x10_resp.json"]}, [baseline], "g", config)
    try:
        wait_http_ok(s.url("mlmon", OIP_PATH), req.read_bytes(), s.mlmon)
        try:
            code, _, ctype = http(f"http://{s.admin}/", timeout=5)
        except (OSError, urllib.error.URLError):
            code, ctype = 0, ""
        if code == 200 and "html" in ctype:
            log("G: status page refreshing every 5 s vs not")
            off = cpu_per_request(s, lg, "mlmon", OIP_PATH, req, dur["cpu"])
            stop_evt = threading.Event()

            def poll() -> None:
                # What the page's script fetches on each refresh (src/status/page).
                while not stop_evt.is_set():
                    for path in STATUS_POLLS:
                        try:
                            http(f"http://{s.admin}{path}", timeout=5)
                        except (OSError, urllib.error.URLError):
                            pass
                    stop_evt.wait(5)

            th = threading.Thread(target=poll, daemon=True)
            th.start()
            on = cpu_per_request(s, lg, "mlmon", OIP_PATH, req, dur["cpu"])
            stop_evt.set()
            th.join(timeout=10)
            # Off, on, off again: the windows fill during the runs, so a later run costs a
            # little more by itself; the two "off" runs bracket the "on" one.
            off2 = cpu_per_request(s, lg, "mlmon", OIP_PATH, req, dur["cpu"])
            off = {**off, "cpu_ms_per_request": (off["cpu_ms_per_request"] + off2["cpu_ms_per_request"]) / 2,
                   "runs_cpu_ms_per_request": [off["cpu_ms_per_request"], off2["cpu_ms_per_request"]]}
            out["status"] = {"off": off, "on": on,
                             "ratio": on["cpu_ms_per_request"] / max(off["cpu_ms_per_request"], 1e-9)}
        else:
            out["status"] = {"skipped": "feature not on this branch (the admin port's GET / is no HTML page)"}
        why = shadow_supported(exes["mlmon"], work, config)
        if why:
            out["shadow"] = {"skipped": why}
            return out
        log("G: proxy overhead with shadow traffic off (this instance)")
        off = cpu_per_request(s, lg, "mlmon", OIP_PATH, req, dur["cpu"])
        plain = cpu_per_request(s, lg, "plain", OIP_PATH, req, dur["cpu"])
    finally:
        s.close()
    log("G: proxy overhead with shadow traffic on (every request copied to the same stub upstream)")
    s = Servers(exes, work, cpus, {OIP_PATH: files["oip_8x10_resp.json"]}, [baseline], "g-shadow", config,
                extra_config=SHADOW_CONFIG)
    try:
        wait_http_ok(s.url("mlmon", OIP_PATH), req.read_bytes(), s.mlmon)
        on = cpu_per_request(s, lg, "mlmon", OIP_PATH, req, dur["cpu"])
    finally:
        s.close()
    out["shadow"] = {"on": on, "off": off, "plain": plain,
                     "ratio": on["cpu_ms_per_request"] / max(off["cpu_ms_per_request"], 1e-9)}
    return out


# ------------------------------------------------------------------------------ report

# A row with a figure but no issue 13 target (status page, shadow): shown, never judged.
INFO = "info"


def verdict(ok: bool | str | None) -> str:
    if ok == INFO:
        return "figure only (no target)"
    return "not measured" if ok is None else ("**met**" if ok else "**not met**")


def rss_parts(ab: dict) -> str:
    """Where mlmon's resident set is: heap and stacks (RssAnon) against the mapped binary and
    libraries (RssFile), after the runs and right after start-up."""
    end, start = ab["rss"], ab.get("rss_start") or {}
    if "RssAnon" not in end or "RssFile" not in end or "VmRSS" not in start:
        return ""
    return (f"; of it {end['RssAnon'] / 1e6:.1f} MB anonymous (heap, stacks) and "
            f"{end['RssFile'] / 1e6:.1f} MB mapped from the binary and libraries; "
            f"{start['VmRSS'] / 1e6:.1f} MB right after start-up")


def median_of(values: list[float] | None, spec: str, before: str = " (", after: str = ")") -> str:
    """`before + "median of 23,855, 30,112, 32,937" + after` (values sorted, each formatted
    with `spec`) when a figure is the median of several runs, else nothing."""
    if not values or len(values) < 2:
        return ""
    return f"{before}median of " + ", ".join(format(v, spec) for v in sorted(values)) + after


def runs_of(run: dict) -> str:
    """The rates a closed-loop maximum is the median of."""
    return median_of(run.get("rps_runs"), ",.0f")


def ms_of(run: dict) -> str:
    """The CPU per request (ms) figures a CPU run is the median of."""
    return median_of(run.get("cpu_ms_per_request_runs"), ".3f")


def secs_of(runs: list[float] | None, digits: int) -> str:
    """The wall times (s) an offline figure is the median of."""
    return median_of(runs, f".{digits}f", "; ", " s")


def rows_of(res: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, ok) for every target of issue 13."""
    rows: list[tuple[str, str, bool | None]] = []
    ab = res.get("ab")
    if ab:
        naive = ab["oip_naive_max"]["rps"]
        cap = ab["capacity"]["rps"]
        rows.append(("Capacity, OIP 8x10: highest fixed rate with 0 captures dropped >= 0.5x naive max",
                     f"{cap:,.0f} rps vs naive {naive:,.0f} rps{runs_of(ab['oip_naive_max'])} = {cap / naive:.2f}x",
                     cap / naive >= T_CAPACITY))
        a = ab["analysis"]
        vps = a["values"] / a["cpu_seconds"] if a["cpu_seconds"] > 0 else 0.0
        rows.append(("End-to-end analysis >= 5 M feature values/s per analysis core",
                     f"{vps / 1e6:.2f} M/s ({a['values'] / 1e6:.1f} M values in {a['cpu_seconds']:.1f} s of "
                     f"analysis-thread CPU)", vps >= T_VALUES_PER_CORE))
        for key, label, target in (("rec_cpu", "1-row", T_CPU_1ROW), ("oip_cpu", "8x10", T_CPU_8X10)):
            c = ab[key]
            ratio = c["mlmon"]["cpu_ms_per_request"] / max(c["plain"]["cpu_ms_per_request"], 1e-9)
            rows.append((f"CPU per request at 1 000 rps, {label} <= {target}x naive",
                         f"{c['mlmon']['cpu_ms_per_request']:.3f} ms{ms_of(c['mlmon'])} vs "
                         f"{c['plain']['cpu_ms_per_request']:.3f} ms{ms_of(c['plain'])} = {ratio:.2f}x",
                         ratio <= target))
        m, n = ab["rec_mlmon_max"]["rps"], ab["rec_naive_max"]["rps"]
        rows.append(("Max throughput, 1-row records >= 0.8x naive",
                     f"{m:,.0f}{runs_of(ab['rec_mlmon_max'])} vs {n:,.0f}{runs_of(ab['rec_naive_max'])} rps "
                     f"= {m / n:.2f}x", m / n >= T_THROUGHPUT))
        r = ab["rss"]["VmRSS"]
        custom = res.get("config")
        rows.append(("RSS after the saturating runs <= 24 MB (default config, one 10-feature baseline)",
                     f"{r / 1e6:.1f} MB (peak {ab['rss']['VmHWM'] / 1e6:.1f} MB; naive proxy "
                     f"{ab['rss_plain']['VmRSS'] / 1e6:.1f} MB){rss_parts(ab)}"
                     + (f"; with `{custom}`, not the defaults" if custom else ""),
                     INFO if custom else r <= T_RSS))
    else:
        rows.append(("Proxy phases (capacity, analysis rate, CPU, throughput, RSS)",
                     f"not measured: {res.get('ab_error', 'skipped')}", None))
    c = res.get("c")
    if c:
        done = [b for b in c["big"] if b.get("analysed")]
        if done:
            cpu = sorted(b["analysis_cpu_ms"] for b in done)[len(done) // 2]
            wall = sorted(b["wall_ms"] for b in done)[len(done) // 2]
            rows.append(("A 100 000-row body analysed in <= 50 ms",
                         f"{cpu:.0f} ms analysis CPU ({wall:.0f} ms from send to counted; median of {len(done)})",
                         cpu <= T_BIG_MS))
        else:
            rows.append(("A 100 000-row body analysed in <= 50 ms", "not analysed within 20 s", False))
        f = c["fairness"]
        # Every 8x10 request answered must have had its 8 rows analysed, and no capture may be
        # skipped whole (the big bodies' own row_budget sampling is not a dropped capture).
        answered = f["load"]["completed"] - f["load"]["errors"] - f["load"]["non_2xx"]
        rows.append(("Large bodies never starve another model's captures",
                     f"{f['dropped']:.0f} captures dropped, {f['bench_rows']:.0f} of {answered * 8} rows analysed: "
                     f"8x10 at {f['rate']:.0f} rps with {f['big_sent']} 100 000-row bodies beside it",
                     f["dropped"] == 0 and f["bench_rows"] >= answered * 8))
    else:
        rows.append(("Large bodies", f"not measured: {res.get('c_error', 'skipped')}", None))
    e = res.get("e")
    if e:
        rows.append(("Drift report() <= 10 ms, 100 features, full window",
                     f"{e['report_ms']:.1f} ms wall, criterion mean (features on both CPUs; CPU of all "
                     f"its threads {e.get('report_cpu_ms', float('nan')):.1f} ms)", e["report_ms"] <= T_REPORT_MS))
        mem = (e.get("memory") or {})
        per = mem.get("engine_full_bytes_per_feature")
        if per:
            rows.append(("Memory per numeric feature at a full window <= 64 KiB",
                         f"{per / 1024:.0f} KiB", per <= T_MEM_FEATURE))
    else:
        rows.append(("Drift report() <= 10 ms", f"not measured: {res.get('e_error', 'skipped')}", None))
    d = res.get("d")
    if d:
        rows.append(("/metrics series for a 100-feature model <= 1 500",
                     f"{d['model']['series']:,} (whole page, 32 models: {d['page']['series']:,})",
                     d["model"]["series"] <= T_SERIES))
        rows.append(("/metrics bytes for a 100-feature model <= 120 KB",
                     f"{d['model']['bytes'] / 1e3:.0f} KB (whole page: {d['page']['bytes'] / 1e6:.2f} MB)",
                     d["model"]["bytes"] <= T_BYTES))
        sc = d["scrape"]
        if sc["count"]:
            rows.append(("Scrape of a 32-model sidecar under load <= 50 ms",
                         f"max {sc['max_ms']:.0f} ms, median {sc['p50_ms']:.0f} ms ({sc['count']} scrapes, "
                         f"{sc['load']['rps']:,.0f} rps)", sc["max_ms"] <= T_SCRAPE_MS))
        r32 = d.get("rss_32x100")
        if r32:
            rows.append(("Sidecar of 32 models x 100 features < 256 MB (VmRSS after its traffic and scrapes)",
                         f"{r32['VmRSS'] / 1e6:.0f} MB (peak {r32['VmHWM'] / 1e6:.0f} MB)",
                         r32["VmRSS"] < T_RSS_32X100))
    else:
        rows.append(("Cardinality and scrape", f"not measured: {res.get('d_error', 'skipped')}", None))
    f = res.get("f")
    if f and "skipped" not in f:
        rows.append(("Offline baseline build + drift, 200k + 100k rows x 20 columns >= 100x Evidently",
                     f"mlmon {f['mlmon_s']:.2f} s (build {f['build_s']:.2f} + drift {f['drift_s']:.2f}"
                     f"{secs_of(f.get('mlmon_runs_s'), 2)}), "
                     f"Evidently {f['evidently_version']} {f['evidently_s']:.1f} s{secs_of(f.get('evidently_runs_s'), 1)} "
                     f"= {f['ratio']:.0f}x "
                     f"(wall; CPU time mlmon {f['mlmon_cpu_s']:.2f} s, Evidently {f['evidently_cpu_s']:.1f} s = "
                     f"{f['evidently_cpu_s'] / max(f['mlmon_cpu_s'], 1e-9):.0f}x)",
                     f["ratio"] >= T_OFFLINE))
    else:
        why = (f or {}).get("skipped") or res.get("f_error", "skipped")
        rows.append(("Offline >= 100x Evidently", f"not measured: {why}", None))
    g = res.get("g") or {}
    st = g.get("status") or {"skipped": res.get("g_error", "skipped")}
    if "skipped" in st:
        rows.append(("Status page refreshing every 5 s vs not (CPU per request)", f"not measured: {st['skipped']}", None))
    else:
        rows.append(("Status page refreshing every 5 s vs not (CPU per request)",
                     f"{st['on']['cpu_ms_per_request']:.3f} vs {st['off']['cpu_ms_per_request']:.3f} ms = "
                     f"{st['ratio']:.2f}x", INFO))
    sh = g.get("shadow") or {"skipped": res.get("g_error", "skipped")}
    if "skipped" in sh:
        rows.append(("Proxy overhead with shadow on vs off", f"not measured: {sh['skipped']}", None))
    else:
        on, off = sh["on"]["cpu_ms_per_request"], sh["off"]["cpu_ms_per_request"]
        rows.append(("Proxy overhead with shadow on vs off (CPU per request, 8x10, 1 000 rps, every request copied)",
                     f"on {on:.3f} ms vs off {off:.3f} ms = {sh['ratio']:.2f}x (naive proxy "
                     f"{sh['plain']['cpu_ms_per_request']:.3f} ms)", INFO))
    return rows


def cpu_times() -> list[int]:
    """The machine's CPU time counters (the `cpu` line of /proc/stat, in clock ticks)."""
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def steal_percent(before: list[int], after: list[int]) -> float | None:
    """Share of the CPU time between two `cpu_times()` that the hypervisor gave to other
    guests (`steal`, the 8th counter): throughputs and wall times are depressed by it."""
    if len(before) < 8 or len(after) < 8:
        return None
    total = sum(after[:8]) - sum(before[:8])
    return 100.0 * (after[7] - before[7]) / total if total > 0 else None


def _load1(loadavg: str) -> float:
    try:
        return float(loadavg.split()[0])
    except (ValueError, IndexError):
        return 0.0


def render(res: dict, rows) -> str:
    m = res["machine"]
    met = sum(1 for r in rows if r[2] is True)
    judged = sum(1 for r in rows if isinstance(r[2], bool))
    lines = [
        SECTION,
        "",
        "Generated by `make bench` (`bench/run.py`); rerun it to refresh this section. Every ratio",
        "below comes from this one run: mlmon, a naive pooled hyper reverse proxy with no monitoring",
        "(`bench/proxy/plain_proxy.rs`) and a minimal hyper upstream (`bench/proxy/upstream.rs`)",
        "side by side, load from `bench/loadgen.rs` (closed loop for maximum throughput, open loop",
        "at a fixed rate, wrk2-style, for capacity and CPU).",
        "",
        f"- **Command**: `{res['command']}`",
        f"- **Date**: {res['date']} (the run took {res['elapsed_seconds'] / 60:.1f} min)",
        f"- **Machine**: {m['cpu']}, nproc {m['nproc']}, {m['memory']} RAM, {m['os']}, Linux {m['kernel']}",
        f"- **Load average** before: {res['loadavg_before']}; after: {res['loadavg_after']}",
        *([f"- **CPU steal** during the run: {res['steal_percent']:.1f} % of the machine's CPU time "
           "(given by the hypervisor to other guests)"] if res.get("steal_percent") is not None else []),
        f"- **mlmon**: `{res['git']}`, release profile; default configuration (log level warn), "
        "one 10-feature baseline (`f0`..`f9` + prediction), so every analysis runs",
        *([f"- **Link layout** (build.rs): {link_layout(res['link_layout'])}"] if res.get("link_layout") else []),
        f"- **CPU placement**: load generator on CPU {res['cpus']['load']}, upstream, naive proxy and "
        f"mlmon on CPU {res['cpus']['servers']}",
        f"- **Mode**: {'short' if res['short'] else 'full'} ({res['durations']})",
        *([f"- **Configuration**: `{res['config']}` (not the defaults of `bench/mlmon.yaml`)"]
          if res.get("config") else []),
        "",
        *([f"> **Noisy run**: load average {res['loadavg_before']} on {m['nproc']} CPUs before the run "
            "(other work on the machine): throughputs and wall times are depressed by an unknown amount; "
            "the CPU-time figures (analysis values/s, CPU per request, report(), offline CPU) are less "
            "affected. Rerun `make bench` on a quiet machine for a verdict.", ""]
          if _load1(res["loadavg_before"]) > (m["nproc"] or 1) else []),
        *([f"> **Stolen run**: the hypervisor took {res['steal_percent']:.1f} % of the CPU time during "
            "the run: throughputs and wall times, and the ratios built on them, are depressed by an "
            "unknown and uneven amount. Rerun `make bench` when the machine is not stolen from.", ""]
          if (res.get("steal_percent") or 0.0) > 3.0 else []),
        f"**{met} of {judged} targets met.**",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    for name, measured, ok in rows:
        lines.append(f"| {name} | {measured} | {verdict(ok)} |")
    lines += [
        "",
        "How each row is measured:",
        "",
        "- *Capacity*: the naive proxy's closed-loop maximum on the OIP v2 workload (8 rows x 10 FP64",
        f"  features in, 8 classes + 8x2 probabilities out; the median of {MAX_RUNS} runs interleaved with",
        "  mlmon's, as for the 1-row maximum throughput), then fixed rates for mlmon starting at",
        "  0.5x that maximum, bisected: a rate passes when the load generator held it (95 % of the",
        "  requests answered 2xx) and `mlmon_capture_dropped_total` did not move (the queue is drained",
        "  before the counter is read).",
        "- *Analysis values/s*: input feature values analysed (`mlmon_predictions_total` rows x 10)",
        "  during the capacity steps, divided by the CPU time of mlmon's analysis threads over the",
        "  same span (threads named `mlmon-*` or running at the lowest priority, from",
        "  /proc/PID/task/TID/stat).",
        "- *CPU per request*: utime + stime of the whole proxy process (all threads, analysis",
        "  included for mlmon) over a fixed 1 000 rps run, divided by the requests answered;",
        f"  the median of {MAX_RUNS} runs of each, interleaved.",
        "- *RSS*: mlmon's VmRSS after every run above (closed-loop saturation included).",
        "- *Large bodies*: one OIP body of 100 000 rows x 1 feature for a second model with its own",
        "  baseline, sent alone: analysis-thread CPU per body (clock ticks of 10 ms: the median of",
        "  several bodies is read to +-10 ms); then the 8x10 stream of the first model",
        "  at a fixed rate with three such bodies per second beside it; no capture may be dropped.",
        "- *Drift report*: `report()` of the criterion bench `bench/drift/drift.rs` (100 numeric",
        "  features at a full window): wall time of one report (what a refresh waits; the features",
        "  are split over two threads on this 2-CPU machine), with the CPU time of all its threads",
        "  beside it; memory per feature from the same bench.",
        "- *Cardinality*: 32 models with 100-feature baselines, after traffic and one drift refresh;",
        "  series and bytes are the `/metrics` lines labelled with one of the models; scrape times",
        "  are measured every 0.5 s while 2 000 rps go through.",
        "- *Offline*: `bench/drift/gen_data.py` data (16 numeric, 3 categorical columns and a",
        "  prediction); wall time of `mlmon baseline build` + `mlmon drift` vs the whole Evidently",
        "  process (`bench/drift/evidently_drift.py`: import, CSV load, DataDriftPreset report);",
        f"  {OFFLINE_RUNS} interleaved rounds, the median of each side.",
        "",
        "Raw figures: `target/bench-v2/results.json` (not committed).",
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Performance\n"
    start = text.find(SECTION)
    if start >= 0:
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("\n" + text[nxt + 1:] if nxt >= 0 else "")
    else:
        head = text.find("\n## ")
        if head < 0:
            text = text.rstrip("\n") + "\n\n" + section
        else:
            text = text[:head + 1] + section + "\n" + text[head + 1:]
    path.write_text(text)


# ------------------------------------------------------------------------------ main

def link_layout_of(binary: Path) -> dict:
    """How much of link/symbol-order.txt the release binary still has (build.rs lays those
    functions out first; a change of the crate's build metadata renames mlmon's own symbols,
    and `make link-order` regenerates the list), and whether its relative relocations are
    packed (DT_RELR)."""
    out: dict = {}
    order = REPO / "link" / "symbol-order.txt"
    try:
        # The names of the profiled release binary come first; after a "# translated" line,
        # those of another build (the static binary, `make link-order`).
        text = order.read_text().split("\n# translated", 1)[0]
        listed = {line.strip() for line in text.splitlines() if line.strip().startswith("_ZN")}
        nm = subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True, text=True,
                            timeout=120)
        defined = {parts[2] for parts in (line.split() for line in nm.stdout.splitlines()) if len(parts) == 3}
        out["rust_listed"], out["rust_found"] = len(listed), len(listed & defined)
        dyn = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, timeout=60)
        out["relr"] = "(RELR)" in dyn.stdout
    except (OSError, subprocess.SubprocessError) as e:
        out["error"] = str(e)[:200]
    return out


def link_layout(ll: dict) -> str:
    if "error" in ll:
        return f"not read ({ll['error']})"
    found, listed = ll.get("rust_found", 0), ll.get("rust_listed", 0)
    # A code change moves LTO's inlining and renames a few functions: each one missing is
    # placed in the default layout, and its page faults map 64 KiB of cold code around it
    # (2 258 of 2 316 found cost 2.4 MB of resident code at start-up). So 99 %.
    stale = "" if listed and found >= 0.99 * listed else " (stale: run `make link-order`)"
    return (f"{found:,} of the {listed:,} Rust functions of `link/symbol-order.txt` found in the binary"
            f"{stale}; relative relocations {'packed (DT_RELR)' if ll.get('relr') else 'not packed'}")


def build(short: bool) -> dict[str, Path]:
    log("building release binaries (mlmon, bench_upstream, plain_proxy, bench_loadgen)")
    # mlmon alone, as `cargo build --release` builds it: built together with the examples,
    # the dev-dependencies' features (tokio's test-util) would give its dependencies, and so
    # its own symbols, other hashes than the binary users build, and the link order
    # (link/symbol-order.txt, build.rs) would not match it.
    for cmd in (["cargo", "build", "--release", "--bin", "mlmon"],
                ["cargo", "build", "--release", "--example", "bench_upstream", "--example", "plain_proxy",
                 "--example", "bench_loadgen"]):
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise BenchError(f"cargo build failed:\n{r.stderr[-3000:]}")
    t = drift_run.target_dir() / "release"
    return {"mlmon": t / "mlmon", "upstream": t / "examples" / "bench_upstream",
            "plain": t / "examples" / "plain_proxy", "loadgen": t / "examples" / "bench_loadgen"}


def cpu_placement() -> dict[str, str | None]:
    """taskset CPU lists: the load generator on CPU 0, the servers on the others (unpinned on
    a single CPU)."""
    ncpu = len(os.sched_getaffinity(0))
    if ncpu < 2:
        return {"load": None, "servers": None}
    return {"load": "0", "servers": "1" if ncpu == 2 else f"1-{ncpu - 1}"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--short", action="store_true", help="short runs (make bench): about 15 min on 2 cores")
    p.add_argument("--output", type=Path, default=REPO / "docs" / "performance.md")
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    p.add_argument("--venv", type=Path, default=REPO / ".venv-bench", help="Evidently's venv")
    p.add_argument("--only", default="abcdefg", help="phases to run (letters a-g; default all)")
    p.add_argument("--config", type=Path, default=REPO / "bench" / "mlmon.yaml",
                   help="mlmon's configuration (default: bench/mlmon.yaml, the defaults); with another "
                        "one the RSS target, which is about the defaults, is shown as a figure only")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.perf_counter()
    cpus = cpu_placement()
    dur = ({"max": 5, "fixed": 5, "cpu": 8, "capacity_steps": 5, "big_bodies": 5, "criterion": 3,
            "criterion_timeout": 900} if args.short else
           {"max": 15, "fixed": 10, "cpu": 20, "capacity_steps": 7, "big_bodies": 10, "criterion": 8,
            "criterion_timeout": 1800})
    res: dict = {
        "command": "make bench" if args.short else "python3 bench/run.py",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": drift_run.machine(),
        "loadavg_before": drift_run.loadavg(),
        "cpu_times_before": cpu_times(),
        "git": drift_run.git_rev(),
        "cpus": cpus,
        "short": args.short,
        "durations": ", ".join(f"{k} {v}" for k, v in dur.items() if k in ("max", "fixed", "cpu"))
        + " s per run",
    }
    if args.short:
        res["command"] = "make bench (python3 bench/run.py --short)"
    work = drift_run.target_dir() / "bench-v2"
    work.mkdir(parents=True, exist_ok=True)
    exes = build(args.short)
    # A copy of the binary as `cargo build --release` made it: phase e's `cargo bench`
    # builds mlmon again with the dev-dependencies' features (other symbol hashes, so the
    # link order does not match) and puts that build at target/release/mlmon.
    kept = work / "mlmon"
    shutil.copy2(exes["mlmon"], kept)
    exes["mlmon"] = kept
    res["link_layout"] = link_layout_of(exes["mlmon"])
    rng = random.Random(13)
    files = write_workloads(work, rng)
    lg = Loadgen(exes["loadgen"], cpus["load"])
    config = args.config.resolve()
    if config != (REPO / "bench" / "mlmon.yaml").resolve():
        res["config"] = str(config)
    csv = work / "bench.csv"
    write_csv(csv, FEATURES, 20_000, rng, pred=True)
    baseline = build_baseline(exes["mlmon"], csv, "bench", work / "bench-baseline.json", True)
    big_csv = work / "big.csv"
    with open(big_csv, "w") as f:
        f.write("x,prediction\n" + "".join(f"{rng.randrange(100)},{rng.randrange(2)}\n" for _ in range(20_000)))
    big_baseline = build_baseline(exes["mlmon"], big_csv, "big", work / "big-baseline.json", True)
    cpu_s = cpus["servers"]

    def phase(key: str, fn) -> None:
        if key not in args.only:
            res[f"{key}_error"] = "skipped (--only)"
            return
        try:
            res[key] = fn()
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a failed phase is reported, the others still run
            import traceback

            log(f"phase {key} failed: {e!r}\n{traceback.format_exc()}")
            res[f"{key}_error"] = f"phase failed: {str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__}"
        finally:
            stop_all()

    phase("ab", lambda: phase_ab(exes, work, cpu_s, lg, files, baseline, config, dur))
    if "a" in args.only and "b" not in args.only:
        pass
    cap = (res.get("ab") or {}).get("capacity", {}).get("rps") or 4000
    phase("c", lambda: phase_c(exes, work, cpu_s, lg, files, baseline, big_baseline, config, dur,
                               min(2000.0, max(500.0, 0.5 * cap))))
    phase("d", lambda: phase_d(exes, work, cpu_s, lg, files, exes["mlmon"], config, dur, rng))
    phase("e", lambda: phase_e(work, dur))
    phase("f", lambda: phase_f(exes["mlmon"], work, args.venv, 200_000, 100_000))
    phase("g", lambda: phase_g(exes, work, cpu_s, lg, files, baseline, config, dur))
    res["loadavg_after"] = drift_run.loadavg()
    res["steal_percent"] = steal_percent(res["cpu_times_before"], cpu_times())
    res["elapsed_seconds"] = time.perf_counter() - started
    (work / "results.json").write_text(json.dumps(res, indent=2, default=str))
    rows = rows_of(res)
    print("\nIssue 13 targets (one run):")
    width = max(len(r[0]) for r in rows)
    for name, measured, ok in rows:
        v = verdict(ok).strip("*")
        print(f"  {name:<{width}}  {v:<12}  {measured}")
    section = render(res, rows)
    if args.no_write:
        print(section)
    else:
        write_section(args.output, section)
        log(f"wrote the {SECTION!r} section of {args.output}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        stop_all()
        sys.exit(f"bench: {e}")
    finally:
        stop_all()
