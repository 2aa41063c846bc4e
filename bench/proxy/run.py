#!/usr/bin/env python3
"""Proxy overhead benchmark behind `make bench`.

In one run it:

1. builds `mlmon` and the two benchmark examples in release mode;
2. starts, pinned with `taskset`, a minimal model server (`bench/proxy/upstream.rs`),
   `mlmon serve` in front of it with capture on (`bench/proxy/mlmon.yaml`) and a plain hyper
   reverse proxy with no monitoring (`bench/proxy/plain_proxy.rs`) as the baseline;
3. measures, in interleaved rounds (direct, plain proxy, mlmon; the order rotates):
   - maximum throughput (closed loop: `wrk`, or `oha` when wrk is missing);
   - latency at a fixed request rate (open loop, latency corrected for coordinated
     omission: `oha -q RATE --latency-correction`), and the CPU seconds that each proxy
     process spends per 1000 requests at that rate (utime + stime from /proc/PID/stat);
   - mlmon's resident memory (VmRSS, and VmHWM, the peak) after all of it;
4. writes the figures, the exact command, date, machine and the targets of issue 2 (met or
   not) to the `## Proxy overhead` section of docs/performance.md, leaving other sections
   alone, and the raw figures as JSON under the cargo target directory.

Every server binds 127.0.0.1; every process started here is stopped by its PID on exit,
on Ctrl-C and on SIGTERM. Every wait is bounded in time.

Scheduling: on a machine with other work running, sub-millisecond tail latencies mostly
measure how long a woken process waits for a CPU. By default (`--realtime latency`, when
run as root with `chrt`) the servers and the load generator run under SCHED_FIFO priority 1
for the fixed-rate phase only: at 1000 requests/s they use a fraction of a CPU, and the
kernel's real-time throttling keeps 5 % for everything else anyway. `--realtime all` also
covers the max-throughput phase (which then starves other work on the machine while it
runs); `--realtime none` never does it.

Tools: `oha` is taken from PATH or from the tools directory (default
~/.cache/mlmon/bench-tools), and installed there with `cargo install` when absent (several
minutes, once). `wrk` is taken from PATH, or installed with apt-get when running as root
(`--no-install` turns both installs off; without wrk, oha measures max throughput too).

Python standard library only; Linux only (/proc, taskset).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OHA_VERSION = "1.16.0"
SECTION = "## Proxy overhead"

# Targets from issue 2.
TARGET_ADDED_P99_MS = 0.5
TARGET_THROUGHPUT_RATIO = 0.8
TARGET_CPU_RATIO = 1.5
TARGET_RSS_BYTES = 20_000_000  # 20 MB

INFER_PATH = "/v2/models/bench/infer"
TARGETS = ("direct", "plain", "mlmon")
LABELS = {
    "direct": "direct (no proxy)",
    "plain": "plain hyper proxy",
    "mlmon": "mlmon (capture on)",
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A failure that ends the benchmark with a one-line message."""


# --------------------------------------------------------------------------- processes

_children: list[subprocess.Popen] = []


def _stop_children() -> None:
    """Stops every process this script started, by PID: SIGTERM, then SIGKILL after 5 s."""
    while _children:
        p = _children.pop()
        if p.poll() is not None:
            continue
        try:
            p.terminate()
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        except ProcessLookupError:
            pass


def _on_signal(signum, _frame) -> None:
    _stop_children()
    sys.exit(128 + signum)


def spawn(cmd: list[str], logfile: Path, env: dict | None = None) -> subprocess.Popen:
    out = open(logfile, "wb")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    out.close()
    _children.append(p)
    return p


def run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs a command to its end (bounded), capturing its output."""
    try:
        return subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{cmd[0]} did not finish within {timeout:.0f} s") from e


def taskset(cpus: str | None, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def realtime(on: bool, cmd: list[str]) -> list[str]:
    """Runs a command under SCHED_FIFO priority 1 when `on`."""
    return ["chrt", "-f", "1", *cmd] if on else cmd


def set_realtime(pid: int, on: bool) -> None:
    """Moves every thread of a running process to SCHED_FIFO 1 (`on`) or SCHED_OTHER."""
    cmd = ["chrt", "-a", "-f", "-p", "1", str(pid)] if on else ["chrt", "-a", "-o", "-p", "0", str(pid)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads, live and exited), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(logfile: Path, proc: subprocess.Popen, timeout: float = 20) -> str:
    """Waits for the `listening on ADDR` line of a benchmark example and returns ADDR."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{logfile.stem} exited early: {logfile.read_text().strip()}")
        m = re.search(r"listening on (127\.0\.0\.1:\d+)", logfile.read_text())
        if m:
            return m.group(1)
        time.sleep(0.05)
    raise BenchError(f"{logfile.stem} did not start listening within {timeout:.0f} s")


def wait_ok(url: str, body: bytes, proc: subprocess.Popen, name: str, timeout: float = 30) -> None:
    """Waits until an inference POST to `url` answers 200."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited early (code {proc.returncode})")
        req = urllib.request.Request(
            url, data=body, method="POST", headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
                last = f"status {resp.status}"
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.1)
    raise BenchError(f"{name} at {url} not ready within {timeout:.0f} s: {last}")


# --------------------------------------------------------------------------- tools


def find_oha(tools: Path, install: bool) -> str:
    found = shutil.which("oha") or (
        str(tools / "bin" / "oha") if (tools / "bin" / "oha").exists() else None
    )
    if found:
        return found
    if not install:
        raise BenchError("oha not found (PATH or tools dir) and --no-install given")
    log(f"oha not found: cargo install oha {OHA_VERSION} into {tools} (several minutes, once)")
    cmd = ["cargo", "install", "oha", "--locked", "--version", OHA_VERSION, "--root", str(tools)]
    # Only plain HTTP is used. oha needs one TLS backend to compile; the system OpenSSL one
    # builds much faster than the default (rustls on aws-lc, a large C build).
    has_openssl = shutil.which("pkg-config") and (
        subprocess.run(["pkg-config", "--exists", "openssl"], timeout=30).returncode == 0
    )
    if has_openssl:
        cmd += ["--no-default-features", "--features", "native-tls"]
    r = run(cmd, timeout=3600)
    if r.returncode != 0 or not (tools / "bin" / "oha").exists():
        raise BenchError(f"cargo install oha failed:\n{r.stderr[-3000:]}")
    return str(tools / "bin" / "oha")


def find_wrk(install: bool) -> str | None:
    found = shutil.which("wrk")
    if found or not install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    log("wrk not found: apt-get install wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    r = run(["apt-get", "install", "-y", "-q", "wrk"], timeout=600, env=env)
    if r.returncode != 0:
        run(["apt-get", "update", "-q"], timeout=600, env=env)
        run(["apt-get", "install", "-y", "-q", "wrk"], timeout=600, env=env)
    return shutil.which("wrk")


def tool_version(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (r.stdout + r.stderr).strip().splitlines()
    return text[0] if text else "unknown"


# --------------------------------------------------------------------------- load


@dataclass
class Servers:
    """The running servers: PIDs and URLs."""

    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    admin_url: str = ""

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise BenchError(f"{name} died during the benchmark (exit code {p.returncode})")


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def server_pids(servers: Servers, target: str) -> list[int]:
    """The processes doing the serving work for a target: upstream, plus the proxy."""
    pids = [servers.pid("upstream")]
    if target != "direct":
        pids.append(servers.pid(target))
    return pids


def max_throughput(args, tools, servers: Servers, target: str, duration: float) -> dict:
    """Closed-loop maximum throughput against one target."""
    url = servers.urls[target]
    pids = server_pids(servers, target)
    before = [cpu_seconds(p) for p in pids]
    gen_before = children_cpu()
    t0 = time.monotonic()
    if tools["max"] == "wrk":
        cmd = realtime(args.rt_max, taskset(args.loadgen_cpus, [
            tools["wrk"], "-t", str(args.wrk_threads), "-c", str(args.connections),
            "-d", f"{duration:.0f}s", "--timeout", "5s", "-s", str(REPO / "bench" / "proxy" / "post.lua"),
            url,
        ]))  # fmt: skip
        env = {**os.environ, "MLMON_BENCH_BODY": str(args.body)}
        r = run(cmd, timeout=duration + 60, env=env)
        wall = time.monotonic() - t0
        if r.returncode != 0:
            raise BenchError(f"wrk failed against {target}: {r.stderr.strip() or r.stdout}")
        m = re.search(
            r"bench: completed=(\d+) errors_connect=(\d+) errors_read=(\d+) "
            r"errors_write=(\d+) errors_status=(\d+) errors_timeout=(\d+)",
            r.stdout,
        )
        rps = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
        if not m or not rps:
            raise BenchError(f"cannot read wrk output for {target}:\n{r.stdout}")
        completed = int(m.group(1))
        errors = sum(int(m.group(i)) for i in range(2, 7))
        throughput = float(rps.group(1))
    else:
        result = oha(
            args, tools, url, duration, rate=None, connections=args.connections, rt=args.rt_max
        )
        wall = time.monotonic() - t0
        completed = result["completed"]
        errors = result["errors"]
        throughput = result["rps"]
    server_cpu = sum(cpu_seconds(p) for p in pids) - sum(before)
    gen_cpu = children_cpu() - gen_before
    if errors > max(10, completed // 1000):
        raise BenchError(f"{target}: {errors} errors out of {completed} requests at max load")
    return {
        "rps": throughput,
        "completed": completed,
        "errors": errors,
        "server_cores": server_cpu / wall,
        "loadgen_cores": gen_cpu / wall,
    }


def oha(
    args, tools, url: str, duration: float, rate: int | None, connections: int, rt: bool
) -> dict:
    cmd = [
        tools["oha"], "-z", f"{duration:.0f}s", "-c", str(connections), "--no-tui",
        "--output-format", "json", "-m", "POST", "-T", "application/json",
        "-D", str(args.body), "--disable-compression",
    ]  # fmt: skip
    if rate is not None:
        cmd += ["-q", str(rate), "--latency-correction"]
    cmd.append(url)
    r = run(realtime(rt, taskset(args.loadgen_cpus, cmd)), timeout=duration + 60)
    if r.returncode != 0:
        raise BenchError(f"oha failed against {url}: {r.stderr.strip()}")
    try:
        out = json.loads(r.stdout)
    except json.JSONDecodeError as e:
        raise BenchError(f"cannot read oha output for {url}: {e}: {r.stdout[:500]}") from e
    codes = {int(k): v for k, v in out.get("statusCodeDistribution", {}).items()}
    ok = codes.get(200, 0)
    errors = sum(codes.values()) - ok + sum(out.get("errorDistribution", {}).values())
    pct = out["latencyPercentiles"]
    return {
        "completed": ok,
        "errors": errors,
        "rps": out["summary"]["requestsPerSec"],
        "p50_ms": pct["p50"] * 1000,
        "p90_ms": pct["p90"] * 1000,
        "p99_ms": pct["p99"] * 1000,
        "p999_ms": pct["p99.9"] * 1000,
        "max_ms": out["summary"]["slowest"] * 1000,
    }


def fixed_rate(args, tools, servers: Servers, target: str, duration: float) -> dict:
    """Open-loop run at `args.rate` against one target, with the proxy's CPU time."""
    pids = server_pids(servers, target)
    before = {p: cpu_seconds(p) for p in pids}
    result = oha(
        args, tools, servers.urls[target], duration, rate=args.rate,
        connections=args.rate_connections, rt=args.rt_rate,
    )  # fmt: skip
    used = {p: cpu_seconds(p) - before[p] for p in pids}
    # A target that cannot keep up times requests out: that is a result (rate not held,
    # errors counted in the report), not a failure of the benchmark.
    if result["completed"] == 0:
        raise BenchError(f"{target}: no request succeeded at {args.rate} rps")
    per_k = 1000 / max(result["completed"], 1)
    result["upstream_cpu_s_per_1k"] = used[servers.pid("upstream")] * per_k
    if target != "direct":
        result["proxy_cpu_s_per_1k"] = used[servers.pid(target)] * per_k
    result["rate_held"] = (
        result["rps"] >= 0.97 * args.rate and result["errors"] <= result["completed"] // 1000
    )
    return result


# --------------------------------------------------------------------------- main flow


def build(args) -> Path:
    if not args.no_build:
        log("cargo build --release --bin mlmon --example bench_upstream --example plain_proxy")
        cmd = [
            "cargo", "build", "--release", "--bin", "mlmon",
            "--example", "bench_upstream", "--example", "plain_proxy",
        ]  # fmt: skip
        try:
            r = subprocess.run(cmd, cwd=REPO, timeout=3600)
        except subprocess.TimeoutExpired as e:
            raise BenchError("cargo build did not finish within an hour") from e
        if r.returncode != 0:
            raise BenchError("cargo build failed")
    meta = run(["cargo", "metadata", "--format-version", "1", "--no-deps"], timeout=120)
    if meta.returncode != 0:
        raise BenchError(f"cargo metadata failed: {meta.stderr.strip()}")
    release = Path(json.loads(meta.stdout)["target_directory"]) / "release"
    for exe in ("mlmon", "examples/bench_upstream", "examples/plain_proxy"):
        if not (release / exe).exists():
            raise BenchError(f"{release / exe} is missing (build first, or drop --no-build)")
    return release


def start_servers(args, release: Path, logs: Path) -> Servers:
    s = Servers()
    body = args.body.read_bytes()
    cpus = args.server_cpus

    up_log = logs / "upstream.log"
    s.procs["upstream"] = spawn(
        taskset(cpus, [str(release / "examples/bench_upstream"), "--listen", "127.0.0.1:0"]),
        up_log,
    )
    upstream = wait_listening(up_log, s.procs["upstream"])
    s.urls["direct"] = f"http://{upstream}{INFER_PATH}"

    pp_log = logs / "plain.log"
    s.procs["plain"] = spawn(
        taskset(cpus, [
            str(release / "examples/plain_proxy"), "--listen", "127.0.0.1:0",
            "--upstream", f"http://{upstream}",
        ]),
        pp_log,
    )  # fmt: skip
    s.urls["plain"] = f"http://{wait_listening(pp_log, s.procs['plain'])}{INFER_PATH}"

    listen, admin = free_port(), free_port()
    s.procs["mlmon"] = spawn(
        taskset(cpus, [
            str(release / "mlmon"), "serve", "--config", str(REPO / "bench" / "proxy" / "mlmon.yaml"),
            "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}",
            "--upstream", f"http://{upstream}",
        ]),
        logs / "mlmon.log",
    )  # fmt: skip
    s.urls["mlmon"] = f"http://127.0.0.1:{listen}{INFER_PATH}"
    s.admin_url = f"http://127.0.0.1:{admin}"

    for name in TARGETS:
        proc = s.procs["upstream" if name == "direct" else name]
        wait_ok(s.urls[name], body, proc, name)
    return s


def scrape(admin_url: str) -> dict[str, float]:
    """A few of mlmon's own counters, to show capture and parsing really happened."""
    with urllib.request.urlopen(f"{admin_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    wanted = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^(mlmon_[a-z_]+)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) not in (
            "mlmon_requests_total", "mlmon_predictions_total", "mlmon_capture_dropped_total",
            "mlmon_payload_errors_total",
        ):  # fmt: skip
            continue
        key = m.group(1) + (m.group(2) or "")
        wanted[key] = float(m.group(3))
    return wanted


def make_body(rows: int, path: Path) -> Path:
    """Writes an Open Inference Protocol v2 request of `rows` rows x 4 features (seeded)."""
    import random

    rng = random.Random(20261129)
    features = [("age", 18, 90), ("income", 1e4, 2e5), ("tenure_months", 0, 120), ("num_products", 1, 5)]
    body = {
        "inputs": [
            {
                "name": name, "shape": [rows], "datatype": "FP64",
                "data": [round(rng.uniform(lo, hi), 3) for _ in range(rows)],
            }  # fmt: skip
            for name, lo, hi in features
        ]
    }
    path.write_text(json.dumps(body, separators=(",", ":")))
    return path


def body_shape(path: Path) -> str:
    """`R rows x F features` of an OIP v2 request with one input per feature."""
    try:
        inputs = json.loads(path.read_text())["inputs"]
        return f"{inputs[0]['shape'][0]} rows x {len(inputs)} features"
    except (ValueError, KeyError, IndexError, TypeError):
        return "custom body"


def rotate(seq, n):
    n %= len(seq)
    return list(seq[n:]) + list(seq[:n])


def median(values):
    return statistics.median(values) if values else float("nan")


def summarize(rounds_max, rounds_rate) -> dict:
    s: dict = {"max": {}, "rate": {}}
    for t in TARGETS:
        s["max"][t] = {
            k: median([r[t][k] for r in rounds_max])
            for k in ("rps", "server_cores", "loadgen_cores")
        }
        keys = ["p50_ms", "p90_ms", "p99_ms", "p999_ms", "rps", "upstream_cpu_s_per_1k"]
        if t != "direct":
            keys.append("proxy_cpu_s_per_1k")
        s["rate"][t] = {k: median([r[t][k] for r in rounds_rate]) for k in keys}
    # Added latency is taken within each round (same conditions), then the median of rounds.
    for t in ("plain", "mlmon"):
        for q in ("p50_ms", "p90_ms", "p99_ms", "p999_ms"):
            s["rate"][t][f"added_{q}"] = median(
                [r[t][q] - r["direct"][q] for r in rounds_rate]
            )
    for q in ("p50_ms", "p90_ms", "p99_ms", "p999_ms"):
        s["rate"]["mlmon"][f"over_plain_{q}"] = median(
            [r["mlmon"][q] - r["plain"][q] for r in rounds_rate]
        )
    s["ratios"] = {
        "mlmon_over_plain_rps": median(
            [r["mlmon"]["rps"] / r["plain"]["rps"] for r in rounds_max]
        ),
        "mlmon_over_direct_rps": median(
            [r["mlmon"]["rps"] / r["direct"]["rps"] for r in rounds_max]
        ),
        "plain_over_direct_rps": median(
            [r["plain"]["rps"] / r["direct"]["rps"] for r in rounds_max]
        ),
        "mlmon_over_plain_cpu": median(
            [
                r["mlmon"]["proxy_cpu_s_per_1k"] / r["plain"]["proxy_cpu_s_per_1k"]
                for r in rounds_rate
                if r["plain"]["proxy_cpu_s_per_1k"] > 0
            ]
        ),
    }
    return s


def machine_info() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "os": _os_name(),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def git_rev() -> str:
    r = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=12"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return r.stdout.strip() or "unknown"


def mib(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def latency_verdict(added: float, held: bool, rate: int) -> str:
    if not held:
        return f"**not met** (mlmon did not sustain {rate} requests/s in every round)"
    # Going through a proxy cannot make requests faster: a negative difference means the
    # direct run's tail was noise (scheduling), and says nothing about the target.
    if added < 0:
        return "**inconclusive** (direct tail worse than through a proxy: noise)"
    return verdict(added <= TARGET_ADDED_P99_MS)


def render(res: dict) -> str:
    s, m, mem = res["summary"], res["machine"], res["memory"]
    rate = res["settings"]["rate"]
    r = s["rate"]
    mx = s["max"]
    ratios = s["ratios"]
    added_p99 = r["mlmon"]["added_p99_ms"]
    hwm = mem["mlmon"]["VmHWM"]
    busy = float(res["loadavg_before"].split()[0]) > 0.5 * (m["nproc"] or 1)
    lines = [
        SECTION,
        "",
        "Generated by `make bench` (`bench/proxy/run.py`); rerun it to refresh this section.",
        "",
        f"- **Command**: `{res['command']}`",
        f"- **Date**: {res['date']}",
        f"- **Machine**: {m['cpu']}, nproc {m['nproc']}, {m['memory']} RAM, "
        f"{m['os']}, Linux {m['kernel']}",
        f"- **Load average** (1, 5, 15 min) before: {res['loadavg_before']}; "
        f"after: {res['loadavg_after']}",
        f"- **mlmon**: `{res['git']}`, release profile, `bench/proxy/mlmon.yaml` "
        "(capture on: 1 MiB per body, queue 10000)",
        f"- **Load generators**: {res['tools']['max_desc']} for max throughput; "
        f"{res['tools']['oha_version']} for the fixed rate "
        f"(open loop, `-q {rate} --latency-correction`, {res['settings']['rate_connections']} connections)",
        f"- **CPU placement**: {res['placement']}",
        f"- **Scheduling**: fixed-rate phase {res['scheduling']['latency']}, max-throughput phase "
        f"{res['scheduling']['max']} (servers and load generator; see `--realtime`)",
        f"- **Workload**: `POST {INFER_PATH}`, a {res['body_bytes']}-byte Open Inference Protocol v2 "
        f"request ({res['body_shape']}), a {res['response_bytes']}-byte response with classes and "
        "probabilities (always 4 rows), HTTP/1.1 keep-alive; "
        f"{res['settings']['rounds']} round(s) of {res['settings']['duration']:.0f} s per target and "
        "measurement, targets interleaved; figures are medians over rounds.",
        "",
    ]
    if busy:
        lines += [
            f"> **Noisy run**: the machine was busy when it started (load average "
            f"{res['loadavg_before']} on {m['nproc']} CPUs), so these figures are unreliable; "
            "rerun `make bench` on a quiet machine.",
            "",
        ]
    lines += [
        "### Targets (issue 2)",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| added p99 at {rate} rps with capture on ≤ {TARGET_ADDED_P99_MS} ms | "
        f"{added_p99:+.3f} ms | "
        f"{latency_verdict(added_p99, all(x['mlmon']['rate_held'] for x in res['rounds_rate']), rate)} |",
        f"| max throughput ≥ {TARGET_THROUGHPUT_RATIO}x the plain proxy | "
        f"{ratios['mlmon_over_plain_rps']:.2f}x | "
        f"{verdict(ratios['mlmon_over_plain_rps'] >= TARGET_THROUGHPUT_RATIO)} |",
        f"| CPU per request ≤ {TARGET_CPU_RATIO}x the plain proxy (at {rate} rps) | "
        f"{ratios['mlmon_over_plain_cpu']:.2f}x | "
        f"{verdict(ratios['mlmon_over_plain_cpu'] <= TARGET_CPU_RATIO)} |",
        f"| resident memory ≤ 20 MB (peak, VmHWM) | {hwm / 1e6:.1f} MB | "
        f"{verdict(hwm <= TARGET_RSS_BYTES)} |",
        "",
        "### Maximum throughput (closed loop)",
        "",
        "| target | requests/s | server CPU (cores) | load generator CPU (cores) |",
        "|---|---:|---:|---:|",
    ]
    for t in TARGETS:
        lines.append(
            f"| {LABELS[t]} | {mx[t]['rps']:,.0f} | {mx[t]['server_cores']:.2f} | "
            f"{mx[t]['loadgen_cores']:.2f} |"
        )
    lines += [
        "",
        f"Ratios: mlmon / plain proxy **{ratios['mlmon_over_plain_rps']:.2f}**, "
        f"mlmon / direct **{ratios['mlmon_over_direct_rps']:.2f}**, "
        f"plain proxy / direct {ratios['plain_over_direct_rps']:.2f}. "
        "Server CPU is the upstream's plus the proxy's, in cores. When it is near the number of "
        "server CPUs, the servers were the bottleneck; when the load generator's is near its "
        "CPUs, the figure is a floor set by the generator; when both are well below, the run was "
        "limited by waiting for CPUs that other work on the machine held.",
        "",
        f"### Latency at a fixed {rate} requests/s (open loop)",
        "",
        "| target | p50 | p90 | p99 | p99.9 | added p50 | added p99 | over plain p50 | over plain p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in TARGETS:
        x = r[t]
        added = (
            f"{x['added_p50_ms']:+.3f} ms | {x['added_p99_ms']:+.3f} ms"
            if t != "direct"
            else "– | –"
        )
        added += (
            f" | {x['over_plain_p50_ms']:+.3f} ms | {x['over_plain_p99_ms']:+.3f} ms"
            if t == "mlmon"
            else " | – | –"
        )
        lines.append(
            f"| {LABELS[t]} | {x['p50_ms']:.3f} ms | {x['p90_ms']:.3f} ms | {x['p99_ms']:.3f} ms | "
            f"{x['p999_ms']:.3f} ms | {added} |"
        )
    lines += [
        "",
        "Added latency is the proxy's percentile minus the direct percentile of the same round "
        "(not a percentile of per-request differences), median over rounds; it includes the "
        "extra loopback hop. \"Over plain\" is mlmon minus the plain proxy: the cost of "
        "monitoring alone.",
        "",
        f"### CPU per 1000 requests at {rate} requests/s",
        "",
        "| process | CPU seconds per 1000 requests |",
        "|---|---:|",
        f"| plain hyper proxy | {r['plain']['proxy_cpu_s_per_1k']:.4f} |",
        f"| mlmon (capture on, payloads parsed) | {r['mlmon']['proxy_cpu_s_per_1k']:.4f} |",
        f"| upstream (for scale) | {r['direct']['upstream_cpu_s_per_1k']:.4f} |",
        "",
        f"Ratio mlmon / plain: **{ratios['mlmon_over_plain_cpu']:.2f}**. utime + stime of the "
        "process (all threads) from /proc/PID/stat, in clock ticks of "
        f"{1000 / os.sysconf('SC_CLK_TCK'):.0f} ms, over the whole fixed-rate run.",
        "",
        "### Memory after the run",
        "",
        "| process | VmRSS | VmHWM (peak) |",
        "|---|---:|---:|",
    ]
    for name in ("mlmon", "plain", "upstream"):
        label = {"mlmon": "mlmon", "plain": "plain hyper proxy", "upstream": "upstream"}[name]
        lines.append(
            f"| {label} | {mib(mem[name]['VmRSS'])} | {mib(mem[name]['VmHWM'])} |"
        )
    counters = res["mlmon_counters"]
    preds = sum(v for k, v in counters.items() if k.startswith("mlmon_predictions_total"))
    dropped = sum(v for k, v in counters.items() if k.startswith("mlmon_capture_dropped_total"))
    perrs = sum(v for k, v in counters.items() if k.startswith("mlmon_payload_errors_total"))
    reqs = sum(v for k, v in counters.items() if k.startswith("mlmon_requests_total"))
    lines += [
        "",
        f"mlmon's own counters after the run: {reqs:,.0f} requests, {preds:,.0f} predicted rows, "
        f"{dropped:,.0f} captures dropped, {perrs:,.0f} payload errors "
        "(rows counted means the captures were taken and parsed).",
        "",
        "### Per round",
        "",
        "| round | target | max rps | p50 at rate | p99 at rate | rate held | errors at rate | proxy CPU s/1k |",
        "|---:|---|---:|---:|---:|---|---:|---:|",
    ]
    for i, (rm, rr) in enumerate(zip(res["rounds_max"], res["rounds_rate"]), start=1):
        for t in TARGETS:
            cpu = f"{rr[t]['proxy_cpu_s_per_1k']:.4f}" if t != "direct" else "–"
            lines.append(
                f"| {i} | {t} | {rm[t]['rps']:,.0f} | {rr[t]['p50_ms']:.3f} ms | "
                f"{rr[t]['p99_ms']:.3f} ms | {'yes' if rr[t]['rate_held'] else 'NO'} | "
                f"{rr[t]['errors']} | {cpu} |"
            )
    lines += [
        "",
        "### How to read this",
        "",
        "- The upstream is a stub that answers at once, so every microsecond of proxy work shows; "
        "with a real model (milliseconds per batch) the relative overhead is far smaller.",
        "- The upstream and the proxy under test share the server CPU(s), as a sidecar shares its "
        "pod's CPU; the load generator has its own. Idle servers (the other proxy) cost nothing.",
        "- mlmon's CPU includes parsing every captured payload on its pipeline task (off the "
        "request path but on the same runtime); the plain proxy does no such work.",
        "- Figures from a machine with other work running (see load average) are noisy; compare "
        "ratios from the same run rather than absolute numbers across runs.",
        f"- A {res['settings']['duration']:.0f}-s run at {rate} requests/s has "
        f"{res['settings']['duration'] * rate:,.0f} requests, so its p99 is set by its slowest "
        f"{res['settings']['duration'] * rate / 100:,.0f}: a few scheduling hiccups (a virtual CPU "
        "waking from idle, another process) move it by a millisecond either way, for direct "
        "traffic too. Look at the per-round rows; for a verdict on the p99 target use more "
        "and longer rounds (`python3 bench/proxy/run.py --rounds 5 --duration 30`).",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replaces the `## Proxy overhead` section (up to the next `## ` heading) or adds it."""
    text = path.read_text() if path.exists() else "# Performance\n\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == SECTION), None)
    if start is None:
        if not text.endswith("\n"):
            text += "\n"
        text += ("\n" if not text.endswith("\n\n") else "") + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
            len(lines),
        )
        rest = "".join(lines[end:])
        text = "".join(lines[:start]) + section + ("\n" + rest if rest else "")
    path.write_text(text)


def parse_args() -> argparse.Namespace:
    n = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=15, help="seconds per measurement (15)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    p.add_argument("--rate", type=int, default=1000, help="fixed request rate (1000)")
    p.add_argument("--connections", type=int, default=64, help="connections at max load (64)")
    p.add_argument("--rate-connections", type=int, default=16, help="connections at the fixed rate (16)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    p.add_argument("--loadgen-cpus", default="0" if n >= 2 else None, help="taskset list for the load generator (0)")
    p.add_argument("--server-cpus", default="1" if n >= 2 else None, help="taskset list for upstream and proxies (1)")
    p.add_argument("--body", type=Path, default=REPO / "bench" / "proxy" / "infer_request.json", help="request body")
    p.add_argument(
        "--rows", type=int, default=None,
        help="instead of --body, generate an OIP v2 request of this many rows x 4 features "
        "(a large-payload run; the stub's answer keeps 4 rows, so mlmon counts a "
        "prediction_count_mismatch payload error per request)",
    )  # fmt: skip
    p.add_argument("--output", type=Path, default=REPO / "docs" / "performance.md", help="markdown file to update")
    p.add_argument("--max-tool", choices=["auto", "wrk", "oha"], default="auto", help="max-throughput generator")
    p.add_argument("--tools-dir", type=Path, default=Path(os.environ.get("MLMON_BENCH_TOOLS", Path.home() / ".cache/mlmon/bench-tools")))
    p.add_argument(
        "--realtime", choices=["latency", "all", "none"], default="latency",
        help="SCHED_FIFO for servers and load generator: fixed-rate phase only (default), "
        "both phases, or never; needs root and chrt",
    )  # fmt: skip
    p.add_argument("--no-install", action="store_true", help="never install oha or wrk")
    p.add_argument("--no-build", action="store_true", help="use the binaries already built")
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    a = p.parse_args()
    a.body = a.body.resolve()
    if a.duration < 1 or a.rounds < 1 or a.rate < 1:
        p.error("--duration, --rounds and --rate must be positive")
    return a


def main() -> int:
    args = parse_args()
    if platform.system() != "Linux":
        raise BenchError("Linux only (/proc, taskset)")
    if (args.loadgen_cpus or args.server_cpus) and not shutil.which("taskset"):
        raise BenchError("taskset not found (util-linux)")
    if args.rows is None and not args.body.exists():
        raise BenchError(f"--body {args.body}: no such file")
    if args.rows is not None and args.rows < 1:
        raise BenchError("--rows must be positive")
    atexit.register(_stop_children)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    command = " ".join(["python3", "bench/proxy/run.py", *sys.argv[1:]])
    can_rt = os.geteuid() == 0 and shutil.which("chrt") is not None
    if args.realtime != "none" and not can_rt:
        log("not root or no chrt: running without SCHED_FIFO (--realtime none)")
        args.realtime = "none"
    args.rt_max = args.realtime == "all"
    args.rt_rate = args.realtime in ("latency", "all")
    load_before = loadavg()
    tools = {"oha": find_oha(args.tools_dir, not args.no_install)}
    wrk = find_wrk(not args.no_install) if args.max_tool in ("auto", "wrk") else None
    if args.max_tool == "wrk" and not wrk:
        raise BenchError("--max-tool wrk: wrk not found")
    tools["max"] = "wrk" if wrk else "oha"
    tools["wrk"] = wrk
    oha_version = tool_version([tools["oha"], "--version"])
    if wrk:
        wrk_version = tool_version([wrk, "--version"]).split(" Copyright")[0]
        max_desc = (
            f"{wrk_version} (closed loop, {args.wrk_threads} thread, {args.connections} connections, "
            "`bench/proxy/post.lua`)"
        )
    else:
        max_desc = f"{oha_version} (closed loop, {args.connections} connections)"

    release = build(args)
    bench_dir = release.parent / "bench"
    logs = bench_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if args.rows is not None:
        args.body = make_body(args.rows, bench_dir / f"request-{args.rows}-rows.json")

    if args.loadgen_cpus and args.server_cpus:
        placement = (
            f"load generator pinned to CPU {args.loadgen_cpus}; the upstream, the plain proxy and "
            f"mlmon pinned to CPU {args.server_cpus} (shared; each tokio runtime has one worker "
            "per CPU it may use)"
        )
    else:
        placement = "no pinning (one CPU, or pinning turned off): everything shares the machine"

    log("starting upstream, plain proxy and mlmon on 127.0.0.1")
    servers = start_servers(args, release, logs)
    response_bytes = len(
        urllib.request.urlopen(
            urllib.request.Request(
                servers.urls["direct"], data=args.body.read_bytes(), method="POST",
                headers={"content-type": "application/json"},
            ),
            timeout=5,
        ).read()
    )  # fmt: skip

    warm = min(3.0, args.duration)
    log(f"warm-up: {warm:.0f} s per target")
    for t in TARGETS:
        oha(args, tools, servers.urls[t], warm, rate=args.rate, connections=args.rate_connections, rt=False)

    rounds_max, rounds_rate = [], []
    if args.rt_max:
        for name in ("upstream", "plain", "mlmon"):
            set_realtime(servers.pid(name), True)
    for i in range(args.rounds):
        row = {}
        for t in rotate(TARGETS, i):
            log(f"round {i + 1}/{args.rounds}: max throughput, {t}")
            row[t] = max_throughput(args, tools, servers, t, args.duration)
            log(f"  {row[t]['rps']:,.0f} rps (server {row[t]['server_cores']:.2f} cores, "
                f"load generator {row[t]['loadgen_cores']:.2f})")  # fmt: skip
            servers.check_alive()
        rounds_max.append(row)
    if args.rt_rate and not args.rt_max:
        for name in ("upstream", "plain", "mlmon"):
            set_realtime(servers.pid(name), True)
    for i in range(args.rounds):
        row = {}
        for t in rotate(TARGETS, i):
            log(f"round {i + 1}/{args.rounds}: {args.rate} rps, {t}")
            row[t] = fixed_rate(args, tools, servers, t, args.duration)
            cpu = row[t].get("proxy_cpu_s_per_1k")
            log(f"  p50 {row[t]['p50_ms']:.3f} ms, p99 {row[t]['p99_ms']:.3f} ms, "
                f"{row[t]['rps']:.0f} rps"
                + (f", proxy CPU {cpu:.4f} s/1k" if cpu is not None else ""))  # fmt: skip
            servers.check_alive()
        rounds_rate.append(row)

    mem = {name: memory(servers.pid(name)) for name in ("mlmon", "plain", "upstream")}
    counters = scrape(servers.admin_url)
    _stop_children()

    res = {
        "command": command,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "git": git_rev(),
        "tools": {"max": tools["max"], "max_desc": max_desc, "oha_version": oha_version},
        "placement": placement,
        "scheduling": {
            "latency": "none" if args.realtime == "none" else "SCHED_FIFO 1",
            "max": "SCHED_FIFO 1" if args.rt_max else "normal (SCHED_OTHER)",
        },
        "settings": {
            "duration": args.duration, "rounds": args.rounds, "rate": args.rate,
            "connections": args.connections, "rate_connections": args.rate_connections,
        },  # fmt: skip
        "body_bytes": args.body.stat().st_size,
        "body_shape": body_shape(args.body),
        "response_bytes": response_bytes,
        "rounds_max": rounds_max,
        "rounds_rate": rounds_rate,
        "memory": mem,
        "mlmon_counters": counters,
    }
    res["summary"] = summarize(rounds_max, rounds_rate)
    raw = bench_dir / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.write_text(json.dumps(res, indent=2))
    section = render(res)
    if args.no_write:
        print(section)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_section(args.output, section)
        log(f"wrote {args.output} (raw figures: {raw})")
    print(section.split("### Maximum")[0])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        _stop_children()
        print(f"bench: error: {e}", file=sys.stderr)
        sys.exit(1)
