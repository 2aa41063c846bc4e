#!/usr/bin/env python3
"""Shadow traffic overhead: the proxy's latency at a fixed rate with shadow on vs off.

Issue 15's target: at 1 000 requests/s, mlmon's p99 with `shadow.upstream` set (every
request copied, `shadow.sample` 1) stays within 100 µs of its p99 without shadow traffic.

In one run it:

1. builds `mlmon`, the minimal model server (`bench/proxy/upstream.rs`) and the open-loop
   load generator (`bench/shadow/load.rs`) in release mode;
2. starts two model servers, the primary and the candidate (the shadow), and two `mlmon
   serve` in front of the primary with the benchmark's config (`bench/proxy/mlmon.yaml`,
   capture on): `off` without shadow, `on` with `shadow.upstream` = the candidate;
3. measures, in interleaved rounds (the order alternates), the latency of each at a fixed
   rate (open loop, corrected for coordinated omission: `oha -q RATE
   --latency-correction` when `oha` is installed, else `bench/shadow/load.rs`), and each
   mlmon's CPU seconds per 1 000 requests;
4. checks from `on`'s own `/metrics` that the copies were really sent (`ok` ≈ requests,
   none `skipped`, `error` or `timeout`), and prints the figures as JSON (and, with
   `--markdown`, as a table for docs/performance.md).

Placement: mlmon and the primary run pinned to `--server-cpus` (the pod); the candidate
runs on `--shadow-cpus` (default: the load generator's CPUs), as it would in a pod of its
own: what is measured is what the copies cost the proxy, not a model server's CPU.

Every server binds 127.0.0.1; every process started here is stopped by its PID on exit.
Python standard library only; Linux only (/proc, taskset).

    python3 bench/shadow/run.py                      # 3 rounds × 15 s at 1000 rps
    python3 bench/shadow/run.py --duration 5 --rounds 2 --no-build
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET_ADDED_P99_MS = 0.1  # issue 15: within 100 µs of shadow off

# The proxy benchmark's process helpers (spawn/stop by PID, taskset, CPU time, oha).
_spec = importlib.util.spec_from_file_location("proxy_bench", REPO / "bench" / "proxy" / "run.py")
pb = importlib.util.module_from_spec(_spec)
assert _spec.loader is not None
sys.modules["proxy_bench"] = pb  # its dataclasses look their module up
_spec.loader.exec_module(pb)

INFER_PATH = pb.INFER_PATH


def build(no_build: bool) -> Path:
    if not no_build:
        pb.log("cargo build --release --bin mlmon --example bench_upstream --example shadow_load")
        cmd = ["cargo", "build", "--release", "--bin", "mlmon",
               "--example", "bench_upstream", "--example", "shadow_load"]  # fmt: skip
        r = subprocess.run(cmd, cwd=REPO, timeout=3600)
        if r.returncode != 0:
            raise pb.BenchError("cargo build failed")
    meta = pb.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], timeout=120)
    release = Path(json.loads(meta.stdout)["target_directory"]) / "release"
    for exe in ("mlmon", "examples/bench_upstream", "examples/shadow_load"):
        if not (release / exe).exists():
            raise pb.BenchError(f"{release / exe} is missing (build first, or drop --no-build)")
    return release


def start(args, release: Path, logs: Path) -> dict:
    """Starts the primary, the candidate and both mlmons; returns PIDs and URLs."""
    procs: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    body = args.body.read_bytes()
    for name, cpus in (("primary", args.server_cpus), ("candidate", args.shadow_cpus)):
        log = logs / f"{name}.log"
        procs[name] = pb.spawn(
            pb.taskset(cpus, [str(release / "examples/bench_upstream"), "--listen", "127.0.0.1:0"]), log
        )
        urls[name] = pb.wait_listening(log, procs[name])
    admin: dict[str, str] = {}
    for name in ("off", "on"):
        listen, adm = pb.free_port(), pb.free_port()
        cmd = [
            str(release / "mlmon"), "serve", "--config", str(REPO / "bench" / "proxy" / "mlmon.yaml"),
            "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{adm}",
            "--upstream", f"http://{urls['primary']}",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLMON_")}
        if name == "on":
            env["MLMON_SHADOW__UPSTREAM"] = f"http://{urls['candidate']}"
            env["MLMON_SHADOW__SAMPLE"] = str(args.sample)
        procs[name] = pb.spawn(pb.taskset(args.server_cpus, cmd), logs / f"mlmon-{name}.log", env=env)
        urls[name] = f"http://127.0.0.1:{listen}{INFER_PATH}"
        admin[name] = f"http://127.0.0.1:{adm}"
        pb.wait_ok(urls[name], body, procs[name], f"mlmon ({name})")
    return {"procs": procs, "urls": urls, "admin": admin}


def load(args, tools: dict, url: str, duration: float) -> dict:
    if tools.get("oha"):
        return pb.oha(args, tools, url, duration, rate=args.rate,
                      connections=args.connections, rt=args.realtime)  # fmt: skip
    cmd = [str(tools["load"]), "--url", url, "--body", str(args.body), "--rate", str(args.rate),
           "--duration", str(duration), "--connections", str(args.connections)]  # fmt: skip
    r = pb.run(pb.realtime(args.realtime, pb.taskset(args.loadgen_cpus, cmd)), timeout=duration + 60)
    if r.returncode != 0:
        raise pb.BenchError(f"shadow_load failed against {url}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def shadow_counts(admin_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{admin_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("mlmon_shadow_requests_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            out[result] = out.get(result, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def main() -> int:
    n = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=15, help="seconds per measurement (15)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    p.add_argument("--rate", type=int, default=1000, help="fixed request rate (1000)")
    p.add_argument("--connections", type=int, default=16, help="connections (16)")
    p.add_argument("--sample", type=float, default=1.0, help="shadow.sample of the `on` sidecar (1)")
    p.add_argument("--loadgen-cpus", default="0" if n >= 2 else None, help="taskset list, load generator (0)")
    p.add_argument("--server-cpus", default="1" if n >= 2 else None, help="taskset list, mlmon + primary (1)")
    p.add_argument("--shadow-cpus", default=None, help="taskset list, candidate (default: --loadgen-cpus)")
    p.add_argument("--body", type=Path, default=REPO / "bench" / "proxy" / "infer_request.json")
    p.add_argument("--tool", choices=["auto", "oha", "builtin"], default="auto",
                   help="load generator: oha when found (auto), else bench/shadow/load.rs")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction,
                   default=os.geteuid() == 0 and shutil.which("chrt") is not None,
                   help="SCHED_FIFO 1 for servers and load generator during measurements (root)")
    p.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    p.add_argument("--logs", type=Path, default=None, help="log directory (default: target dir)")
    p.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = p.parse_args()
    if args.shadow_cpus is None:
        args.shadow_cpus = args.loadgen_cpus

    atexit.register(pb._stop_children)
    signal.signal(signal.SIGTERM, pb._on_signal)
    signal.signal(signal.SIGINT, pb._on_signal)
    try:
        release = build(args.no_build)
        logs = args.logs or (release.parent / "bench-shadow")
        logs.mkdir(parents=True, exist_ok=True)
        tools: dict = {"load": release / "examples" / "shadow_load"}
        if args.tool != "builtin":
            oha = shutil.which("oha")
            if oha:
                tools["oha"] = oha
            elif args.tool == "oha":
                raise pb.BenchError("--tool oha: oha not on PATH")
        s = start(args, release, logs)
        pids = {k: s["procs"][k].pid for k in ("off", "on", "primary", "candidate")}
        if args.realtime:
            for pid in pids.values():
                pb.set_realtime(pid, True)
        rounds: dict[str, list[dict]] = {"off": [], "on": []}
        before_counts = shadow_counts(s["admin"]["on"])
        for r in range(args.rounds):
            for target in (("off", "on") if r % 2 == 0 else ("on", "off")):
                cpu0 = pb.cpu_seconds(pids[target])
                res = load(args, tools, s["urls"][target], args.duration)
                res["mlmon_cpu_s_per_1k"] = (pb.cpu_seconds(pids[target]) - cpu0) * 1000 / max(res["completed"], 1)
                rounds[target].append(res)
                pb.log(f"round {r + 1} {target}: p50 {res['p50_ms']:.3f} ms, p99 {res['p99_ms']:.3f} ms, "
                       f"{res['rps']:.0f} rps, {res['errors']} errors")  # fmt: skip
        time.sleep(1)
        after = shadow_counts(s["admin"]["on"])
        copies = {k: after.get(k, 0.0) - before_counts.get(k, 0.0) for k in ("ok", "error", "timeout", "skipped")}
        sent_on = sum(x["completed"] for x in rounds["on"])
        med = {t: {k: statistics.median(x[k] for x in rounds[t])
                   for k in ("p50_ms", "p99_ms", "p999_ms", "rps", "mlmon_cpu_s_per_1k")} for t in rounds}  # fmt: skip
        added = med["on"]["p99_ms"] - med["off"]["p99_ms"]
        out = {
            "rate": args.rate,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "sample": args.sample,
            "tool": "oha" if tools.get("oha") else "bench/shadow/load.rs",
            "realtime": args.realtime,
            "median": med,
            "added_p99_ms": added,
            "target_added_p99_ms": TARGET_ADDED_P99_MS,
            "met": added <= TARGET_ADDED_P99_MS,
            "copies": copies,
            "requests_on": sent_on,
            "all_rounds": rounds,
        }
        print(json.dumps(out, indent=2))
        (logs / "result.json").write_text(json.dumps(out, indent=2))
        if args.markdown:
            print()
            print("| mlmon | p50 | p99 | p99.9 | CPU s / 1k req |")
            print("|---|---|---|---|---|")
            for t, label in (("off", "shadow off"), ("on", f"shadow on (sample {args.sample})")):
                m = med[t]
                print(f"| {label} | {m['p50_ms']:.3f} ms | {m['p99_ms']:.3f} ms | {m['p999_ms']:.3f} ms "
                      f"| {m['mlmon_cpu_s_per_1k']:.3f} |")  # fmt: skip
            print(f"\nadded p99: {added * 1000:+.0f} µs (target ≤ {TARGET_ADDED_P99_MS * 1000:.0f} µs: "
                  f"{'met' if out['met'] else 'NOT met'}); copies: {copies} of {sent_on} requests")  # fmt: skip
        if copies["ok"] < 0.99 * sent_on * args.sample:
            pb.log(f"warning: only {copies['ok']:.0f} of {sent_on} requests reached the shadow: {copies}")
        return 0
    except pb.BenchError as e:
        pb.log(f"error: {e}")
        return 1
    finally:
        pb._stop_children()


if __name__ == "__main__":
    sys.exit(main())
