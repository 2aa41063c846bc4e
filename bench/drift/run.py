#!/usr/bin/env python3
"""Drift engine and baseline benchmarks behind `make bench` (issue 3).

In one run it:

1. creates (once) the benchmark venv `.venv-bench` from `bench/drift/requirements.txt`
   (Evidently, pandas < 3, numpy) and builds the release `mlmon`;
2. generates (once per size, cached under the cargo target directory) a reference CSV and a
   drifted current CSV, 1,000,000 rows x 20 columns each (`bench/drift/gen_data.py`);
3. runs the criterion benchmarks `cargo bench --bench drift` (`bench/drift/drift.rs`):
   ingestion throughput of `DriftEngine::observe`, `report()` time for 100 features at a
   full window, the pieces of one feature's report, and memory per feature;
4. runs, interleaved, `mlmon baseline build` on the reference CSV, `mlmon drift` of the
   current CSV against that baseline, and the same job in Evidently (`DataDriftPreset` on
   the two CSVs, `bench/drift/evidently_drift.py`), recording each process's wall time and
   peak resident memory (ru_maxrss from wait4, what `/usr/bin/time -v` reports);
5. writes the figures, the exact command, date, machine and a met/not-met line per goal
   of issue 3 to the `## Drift engine and baselines` section of docs/performance.md,
   leaving other sections alone, and the raw figures as JSON under the target directory.

Every child process has a time limit and is stopped by its PID when it overruns or when
this script is interrupted. Python standard library only; Linux only (/proc).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Drift engine and baselines"
GOAL_INGEST = 5_000_000  # feature values per second per core
WHYLOGS_INGEST = 600_000  # whylogs' published figure, per core
GOAL_REPORT_MS = 10.0  # report() for 100 features at a full window

CHILDREN: set[int] = set()


def log(msg: str) -> None:
    print(f"[bench_drift {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stop_children(*_: object) -> None:
    for pid in list(CHILDREN):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def on_signal(signum: int, _frame: object) -> None:
    stop_children()
    sys.exit(128 + signum)


def run_measured(cmd: list[str], timeout: float, env: dict | None = None, cwd: Path = REPO,
                 ok_codes: tuple[int, ...] = (0,)) -> dict:
    """Runs `cmd`, returns its stdout, stderr, exit code, wall time and peak RSS (wait4)."""
    log("$ " + shlex.join(cmd))
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_drift.{os.getpid()}.out"
    err_path = out_path.with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd,
                                start_new_session=True)
        CHILDREN.add(proc.pid)
        timer = threading.Timer(timeout, kill_group, args=(proc.pid,))
        timer.start()
        try:
            _, status, rusage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            CHILDREN.discard(proc.pid)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    if proc.returncode not in ok_codes:
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        killed = " (killed: over its time limit)" if wall >= timeout else ""
        raise SystemExit(f"bench_drift: {shlex.join(cmd)} exited {proc.returncode}{killed}\n{tail}")
    return {
        "cmd": shlex.join(cmd),
        "code": proc.returncode,
        "wall_seconds": wall,
        "cpu_seconds": rusage.ru_utime + rusage.ru_stime,
        "max_rss_bytes": rusage.ru_maxrss * 1024,
        "stdout": stdout,
        "stderr": stderr,
    }


def machine() -> dict:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    os_name = platform.system()
    try:
        pretty = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text())
        os_name = pretty.group(1) if pretty else os_name
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count(), "memory": mem, "os": os_name,
            "kernel": platform.release()}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        if not rev:
            return "unknown revision (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "bench/drift", "Cargo.toml"],
                               cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"


def target_dir() -> Path:
    t = os.environ.get("CARGO_TARGET_DIR")
    return Path(t) if t else REPO / "target"


def ensure_venv(venv: Path) -> Path:
    """Creates `venv` and installs the requirements when they changed since the last install."""
    req = REPO / "bench" / "drift" / "requirements.txt"
    stamp = venv / ".requirements.sha256"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    py = venv / "bin" / "python"
    if py.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return py
    if not py.exists():
        log(f"creating {venv}")
        run_measured([sys.executable, "-m", "venv", str(venv)], timeout=300)
    log(f"installing {req.relative_to(REPO)} into {venv} (once)")
    run_measured([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(req)],
                 timeout=1200)
    stamp.write_text(digest + "\n")
    return py


def ensure_data(py: Path, rows: int, out: Path) -> tuple[Path, Path]:
    gen = REPO / "bench" / "drift" / "gen_data.py"
    key = hashlib.sha256(gen.read_bytes() + str(rows).encode()).hexdigest()[:16]
    stamp = out / ".generated"
    ref, cur = out / "reference.csv", out / "current.csv"
    if not (ref.exists() and cur.exists() and stamp.exists() and stamp.read_text().strip() == key):
        run_measured([str(py), str(gen), "--rows", str(rows), "--out", str(out)], timeout=900)
        stamp.write_text(key + "\n")
    return ref, cur


def criterion_estimate(home: Path, group: str, name: str) -> dict:
    base = home / group / name / "new"
    est = json.loads((base / "estimates.json").read_text())
    bench = json.loads((base / "benchmark.json").read_text())
    return {
        "mean_ns": est["mean"]["point_estimate"],
        "mean_lo_ns": est["mean"]["confidence_interval"]["lower_bound"],
        "mean_hi_ns": est["mean"]["confidence_interval"]["upper_bound"],
        "median_ns": est["median"]["point_estimate"],
        "throughput": bench.get("throughput"),
    }


def run_criterion(home: Path, timeout: float) -> dict:
    toml = (REPO / "Cargo.toml").read_text()
    if not re.search(r'\[\[bench\]\]\s*\nname\s*=\s*"drift"', toml) or "criterion" not in toml:
        raise SystemExit("bench_drift: Cargo.toml lacks the criterion dev-dependency or the "
                         "[[bench]] name = \"drift\" (harness = false) entry")
    env = dict(os.environ, CRITERION_HOME=str(home))
    r = run_measured(["cargo", "bench", "--bench", "drift", "--", "--noplot"],
                     timeout=timeout, env=env)
    line = next((l for l in r["stdout"].splitlines() if l.startswith("MLMON_DRIFT_BENCH ")), None)
    if line is None:
        raise SystemExit("bench_drift: bench/drift/drift.rs printed no MLMON_DRIFT_BENCH line")
    figures = json.loads(line.split(" ", 1)[1])
    ingest = ["numeric_20", "mixed_15n_5c", "numeric_20_rotating"]
    names = {
        "ingest": ingest,
        "ingest_cpu": ingest,
        "report": ["numeric_100_full_window", "refresh_numeric_100_full_window"],
        "report_cpu": ["numeric_100_full_window"],
        "parts": ["window_view_one_feature", "ks_2samp_sorted_one_feature",
                  "ks_statistic_sorted_one_feature", "wasserstein_sorted_one_feature"],
    }
    figures["criterion"] = {g: {n: criterion_estimate(home, g, n) for n in ns} for g, ns in names.items()}
    return figures


def cli_round(mlmon: Path, py: Path, ref: Path, cur: Path, work: Path, timeout: float) -> dict:
    baseline = work / "baseline.json"
    build = run_measured([str(mlmon), "baseline", "build", "--input", str(ref), "--output", str(baseline),
                          "--model", "bench", "--prediction", "prediction"], timeout=timeout)
    drift = run_measured([str(mlmon), "drift", "--baseline", str(baseline), "--input", str(cur),
                          "--output", "json"], timeout=timeout, ok_codes=(0, 1, 2))
    report = json.loads(drift["stdout"])
    drift["report"] = {
        "status": report.get("status"),
        "drift_score": report.get("drift_score"),
        "features": {f["feature"]: {k: f.get(k) for k in ("status", "psi", "ks_statistic", "wasserstein",
                                                           "chi2_pvalue")}
                     for f in report.get("features", [])},
    }
    evid = run_measured([str(py), str(REPO / "bench" / "drift" / "evidently_drift.py"),
                         "--reference", str(ref), "--current", str(cur)], timeout=timeout)
    evid["report"] = json.loads(evid["stdout"].strip().splitlines()[-1])
    for r in (build, drift, evid):
        r.pop("stdout")
        r["stderr"] = r["stderr"][-2000:]
    return {"baseline_build": build, "drift": drift, "evidently": evid}


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def rate(est: dict) -> dict:
    """Feature values per second (and its 95 % interval) from a criterion estimate."""
    elements = est["throughput"]["Elements"]
    return {
        "per_s": elements / (est["mean_ns"] * 1e-9),
        "per_s_lo": elements / (est["mean_hi_ns"] * 1e-9),
        "per_s_hi": elements / (est["mean_lo_ns"] * 1e-9),
        "ns_per_value": est["mean_ns"] / elements,
        "elements": elements,
    }


def millions(r: dict) -> str:
    return f"{r['per_s'] / 1e6:.2f} M ({r['per_s_lo'] / 1e6:.2f}–{r['per_s_hi'] / 1e6:.2f})"


def ms(est: dict) -> str:
    return f"{est['mean_ns'] / 1e6:.2f} ms ({est['mean_lo_ns'] / 1e6:.2f}–{est['mean_hi_ns'] / 1e6:.2f})"


def render(res: dict) -> str:
    m = res["machine"]
    c = res["criterion"]["criterion"]
    mem = res["criterion"]["memory"]
    allocs = res["criterion"]["allocations_per_batch"]
    wall = {n: rate(e) for n, e in c["ingest"].items()}
    cpu = {n: rate(e) for n, e in c["ingest_cpu"].items()}
    rep_wall = c["report"]["numeric_100_full_window"]
    rep_cpu = c["report_cpu"]["numeric_100_full_window"]
    rep_wall_ms, rep_cpu_ms = rep_wall["mean_ns"] / 1e6, rep_cpu["mean_ns"] / 1e6
    busy = float(res["loadavg_before"].split()[0]) > 0.5 * (m["nproc"] or 1)
    rounds = res["cli"]
    agg = {}
    for key in ("baseline_build", "drift", "evidently"):
        agg[key] = {
            "wall": median([r[key]["wall_seconds"] for r in rounds]),
            "cpu": median([r[key]["cpu_seconds"] for r in rounds]),
            "rss": max(r[key]["max_rss_bytes"] for r in rounds),
        }
    ev = [r["evidently"]["report"] for r in rounds]
    ev_inner = median([e["load_and_report_seconds"] for e in ev])
    ev_load = median([e["load_seconds"] for e in ev])
    ev_rep = median([e["report_seconds"] for e in ev])
    mlmon_wall = agg["baseline_build"]["wall"] + agg["drift"]["wall"]
    mlmon_cpu = agg["baseline_build"]["cpu"] + agg["drift"]["cpu"]
    mlmon_rss = max(agg["baseline_build"]["rss"], agg["drift"]["rss"])
    last = rounds[-1]
    ev_last = last["evidently"]["report"]
    ev_versions = ev_last["versions"]
    ev_cols = sorted(k for k, v in ev_last["per_column"].items()
                     if isinstance(v.get("value"), (int, float)) and isinstance(v.get("threshold"), (int, float))
                     and v["value"] >= v["threshold"])
    ml_cols = sorted(k for k, v in last["drift"]["report"]["features"].items()
                     if v["status"] in ("warning", "critical"))
    rows = res["settings"]["rows"]
    kib = lambda b: f"{b / 1024:.0f} KiB"  # noqa: E731
    lines = [
        SECTION,
        "",
        "Generated by `bench/drift/run.py` (part of `make bench`); rerun it to refresh this section.",
        "",
        f"- **Command**: `{res['command']}`",
        f"- **Date**: {res['date']} (the whole run took {res['elapsed_seconds'] / 60:.1f} min, "
        f"builds included)",
        f"- **Machine**: {m['cpu']}, nproc {m['nproc']}, {m['memory']} RAM, {m['os']}, Linux {m['kernel']}",
        f"- **Load average** (1, 5, 15 min) before: {res['loadavg_before']}; after: {res['loadavg_after']}",
        f"- **mlmon**: `{res['git']}`, release profile; micro-benchmarks with criterion "
        "(`bench/drift/drift.rs`) at the default drift settings (15 min window in 10 buckets, "
        "`drift.sample_size` 5000, 10 bins). Each micro-benchmark is timed twice: wall time "
        "(criterion's default) and the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), which leaves "
        "out time spent waiting for a CPU and so is the better estimate of one dedicated core on a "
        "shared machine. Figures are means with criterion's 95 % confidence interval.",
        "",
    ]
    if busy:
        lines += [
            f"> **Noisy run**: the machine was busy (load average {res['loadavg_before']} on "
            f"{m['nproc']} CPUs, other jobs compiling), so wall times here are inflated by an unknown "
            "amount; CPU times are less affected but still share caches and memory bandwidth. The "
            "comparison with Evidently is indicative only. Rerun `make bench` on a quiet machine.",
            "",
        ]
    n20, mix, rot = cpu["numeric_20"], cpu["mixed_15n_5c"], cpu["numeric_20_rotating"]
    lines += [
        "### Goals (issue 3)",
        "",
        "| goal | measured (CPU time; wall time) | |",
        "|---|---|---|",
        f"| ingestion ≥ {GOAL_INGEST / 1e6:.0f} million feature values/s per core, 20 numeric features "
        f"| {n20['per_s'] / 1e6:.1f} M/s; {wall['numeric_20']['per_s'] / 1e6:.1f} M/s "
        f"| {verdict(n20['per_s'] >= GOAL_INGEST)} |",
        f"| the same with 5 of the 20 features categorical "
        f"| {mix['per_s'] / 1e6:.1f} M/s; {wall['mixed_15n_5c']['per_s'] / 1e6:.1f} M/s "
        f"| {verdict(mix['per_s'] >= GOAL_INGEST)} |",
        f"| the same, 20 numeric, while the buckets' samples are still filling (worst case per value, "
        f"met only at about 110 rows/s of traffic, see below) "
        f"| {rot['per_s'] / 1e6:.1f} M/s; {wall['numeric_20_rotating']['per_s'] / 1e6:.1f} M/s "
        f"| {verdict(rot['per_s'] >= GOAL_INGEST)} |",
        f"| drift computation (`report()`) for 100 features at a full window ≤ {GOAL_REPORT_MS:.0f} ms "
        f"| {rep_cpu_ms:.1f} ms; {rep_wall_ms:.1f} ms "
        f"| {verdict(rep_cpu_ms <= GOAL_REPORT_MS)} |",
        f"| memory per feature at a full window (no goal set) "
        f"| {kib(mem['engine_full_bytes_per_feature'])} per numeric feature | reported |",
        f"| `mlmon baseline build` + `mlmon drift` beside Evidently, {rows:,}-row x 20-column CSVs "
        "(no goal set) "
        f"| mlmon {mlmon_wall:.1f} s, {mlmon_rss / 1e6:.0f} MB; Evidently {agg['evidently']['wall']:.1f} s, "
        f"{agg['evidently']['rss'] / 1e6:.0f} MB (wall, peak RSS) | reported |",
        "",
        "### Ingestion throughput (one thread)",
        "",
        f"Pre-parsed batches of {res['criterion']['batch_rows']} rows (named values, as the payload "
        "adapters produce them) pushed through `DriftEngine::observe` (the pipeline's `Sink`) with a "
        "baseline installed, on one thread; JSON parsing is not included (the proxy benchmark covers "
        "the whole path). Every tenth numeric feature is drifted. Steady state: real clock, windows "
        "warm, each bucket's 5000-value sample already full, so most values only update the bin "
        "counts, the moments and one priority comparison (traffic well above 5000 values per feature "
        "per 90 s bucket). Buckets filling: the paused clock moves one bucket every 10 batches, so "
        "each bucket gets 10,000 values per feature (2 x the sample size), most of which go through "
        "the sample's heap, and each bucket change prunes the older buckets' samples. That is the "
        "highest cost per value, and it is met at about 110 rows/s, where the engine has only a few "
        "thousand values per second to take; as traffic grows, the share of values that enter a "
        "bucket's sample falls (about k (1 + ln(n/k)) of n values, k = 5000) and the cost per value "
        "approaches the steady state. "
        f"For scale, whylogs publishes about {WHYLOGS_INGEST / 1e6:.1f} million values/s per core.",
        "",
        "| workload | values per batch | feature values/s, CPU time (95 % CI) | ns per value (CPU) "
        "| feature values/s, wall time (95 % CI) | heap allocations per batch |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in [("numeric_20", "20 numeric, steady state"),
                        ("mixed_15n_5c", "15 numeric + 5 categorical (8 categories, 1 % unseen), steady state"),
                        ("numeric_20_rotating", "20 numeric, buckets filling")]:
        alloc = allocs.get(name)
        lines.append(
            f"| {label} | {cpu[name]['elements']:,} | {millions(cpu[name])} | {cpu[name]['ns_per_value']:.0f} "
            f"| {millions(wall[name])} | {f'{alloc:.0f}' if alloc is not None else '–'} |")
    parts = c["parts"]
    rf = c["report"]["refresh_numeric_100_full_window"]
    lines += [
        "",
        "### Drift computation",
        "",
        "`DriftEngine::report()` for 100 numeric features (10 of them drifted) whose windows are "
        f"full: 15 minutes of traffic on tokio's paused clock, {mem['rows_per_bucket']:,} values per "
        f"feature per 90 s bucket, so each feature's KS/Wasserstein sample holds "
        f"{mem['report_sample_min']:,} values, compared with a 5000-value reference sample. "
        "`refresh()` is what runs every `drift.interval`: `report()` plus updating the gauges and the "
        "bin counters. The one-feature rows show where the time goes (wall time, a drifted feature).",
        "",
        "| operation | CPU time (95 % CI) | wall time (95 % CI) |",
        "|---|---|---|",
        f"| `report()`, 100 features | {ms(rep_cpu)} | {ms(rep_wall)} |",
        f"| `refresh()`, 100 features | – | {ms(rf)} |",
    ]
    for name, label in [("window_view_one_feature", "one feature: window view (merge the buckets, pick the sample, sort it)"),
                        ("ks_2samp_sorted_one_feature", "one feature: KS statistic and p-value"),
                        ("ks_statistic_sorted_one_feature", "one feature: KS statistic alone"),
                        ("wasserstein_sorted_one_feature", "one feature: Wasserstein-1")]:
        p = parts[name]
        lines.append(f"| {label} | – | {p['mean_ns'] / 1e3:.0f} µs "
                     f"({p['mean_lo_ns'] / 1e3:.0f}–{p['mean_hi_ns'] / 1e3:.0f}) |")
    rss = mem.get("rss_engine_full_bytes_per_feature")
    lines += [
        "",
        "### Memory per feature at a full window",
        "",
        "Measured inside the benchmark with a counting global allocator (live heap bytes, capacity "
        f"included) for {mem['features']} numeric features filled as above, at the end of a bucket "
        "(the fullest point), and cross-checked with the growth of the process's resident set size "
        "(VmRSS) over the same steps; the held-value counts come from one window "
        "(`FeatureWindow::held_values`) fed the same traffic.",
        "",
        "| | per feature |",
        "|---|---|",
        f"| engine state with the baseline installed, windows empty (a copy of the baseline entry, "
        f"the sorted reference sample, bin labels, metric series) | {kib(mem['engine_installed_bytes_per_feature'])} |",
        f"| added by 15 minutes of traffic (11 buckets) | {kib(mem['window_fill_bytes_per_feature'])} |",
        f"| **total at a full window** | **{kib(mem['engine_full_bytes_per_feature'])}** |",
        f"| VmRSS growth over the same steps (cross-check) | {kib(rss) if rss is not None else 'n/a'} |",
        f"| values held by one window's samples at the end of a bucket / just after a bucket change "
        f"| {mem['one_window_held_values_end_of_bucket']:,} / {mem['one_window_held_values_after_rotation']:,} "
        f"(16 bytes each: value and priority) |",
        f"| heap bytes of that window at the same two points | {kib(mem['one_window_bytes_end_of_bucket'])} / "
        f"{kib(mem['one_window_bytes_after_rotation'])} |",
        "",
        f"A categorical feature keeps counts only (no sample). At the default `limits.max_features` of "
        f"256 numeric features, one model's drift state is about "
        f"{256 * mem['engine_full_bytes_per_feature'] / 1e6:.0f} MB.",
        "",
        f"### `mlmon baseline build`, `mlmon drift` and Evidently on {rows:,}-row x 20-column CSVs",
        "",
        f"`reference.csv` and `current.csv`, {rows:,} rows each ({res['data_mb']:.0f} MB per file, "
        "`bench/drift/gen_data.py`): 16 numeric columns (normal, log-normal, uniform, Poisson counts "
        "with many ties; one with 1 % missing), 3 categorical (4, 12 and 50 values) and a "
        "`prediction` probability; the current batch is drifted in 6 columns. The same two files go "
        "to both tools: mlmon builds a baseline from the reference and checks the current batch "
        "against it; Evidently (`bench/drift/evidently_drift.py`) loads both CSVs with pandas and runs "
        "a `DataDriftPreset` report, timed including the CSV load. Release binary; "
        f"{len(rounds)} round(s) (interleaved, median when more than one); peak RSS is `ru_maxrss` of the process (what "
        "`/usr/bin/time -v` reports).",
        "",
        "| job | wall time | CPU time | peak RSS |",
        "|---|---|---|---|",
        "| `mlmon baseline build --input reference.csv --output baseline.json --model bench "
        f"--prediction prediction` | {agg['baseline_build']['wall']:.1f} s | {agg['baseline_build']['cpu']:.1f} s "
        f"| {agg['baseline_build']['rss'] / 1e6:.0f} MB |",
        f"| `mlmon drift --baseline baseline.json --input current.csv --output json` "
        f"| {agg['drift']['wall']:.1f} s | {agg['drift']['cpu']:.1f} s | {agg['drift']['rss'] / 1e6:.0f} MB |",
        f"| **mlmon, both steps** | **{mlmon_wall:.1f} s** | {mlmon_cpu:.1f} s | **{mlmon_rss / 1e6:.0f} MB** |",
        f"| **Evidently {ev_versions['evidently']} `DataDriftPreset`**, whole process (interpreter start, "
        f"imports, CSV load, report) | **{agg['evidently']['wall']:.1f} s** | {agg['evidently']['cpu']:.1f} s "
        f"| **{agg['evidently']['rss'] / 1e6:.0f} MB** |",
        f"| Evidently, CSV load + report only, timed inside the process | {ev_inner:.1f} s "
        f"(load {ev_load:.1f} s, report {ev_rep:.1f} s) | | |",
        "",
        f"Both flag the same columns. `mlmon drift` exited {last['drift']['code']} (status "
        f"`{last['drift']['report']['status']}`), features at warning or critical: "
        f"{', '.join(f'`{x}`' for x in ml_cols) or 'none'}. Evidently "
        f"(pandas {ev_versions['pandas']}, numpy {ev_versions['numpy']}, scipy {ev_versions['scipy']}) found "
        f"{ev_last['drifted'].get('count', 0):.0f} of {ev_last['columns']} columns drifted: "
        f"{', '.join(f'`{x}`' for x in ev_cols) or 'none'}. The jobs are comparable, not identical: "
        "mlmon computes PSI, JS, KS and Wasserstein-1 per numeric column (PSI, JS and chi-square per "
        "categorical one) against binned baseline statistics and a 5000-value reference sample, "
        "streaming each file in bounded memory; Evidently holds both files in memory and computes one "
        "test per column on all rows (normed Wasserstein for numeric columns and Jensen-Shannon for "
        "categorical ones at this size, its defaults).",
        "",
        "Raw figures of this run: `" + res["raw_path"] + "` (not committed); "
        "`bench/drift/run.py --from-json` renders this section again from them.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replaces this section (up to the next `## ` heading) or appends it."""
    text = path.read_text() if path.exists() else "# Performance\n\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == SECTION), None)
    if start is None:
        if not text.endswith("\n"):
            text += "\n"
        text += ("\n" if not text.endswith("\n\n") else "") + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        rest = "".join(lines[end:])
        text = "".join(lines[:start]) + section + ("\n" + rest if rest else "")
    path.write_text(text)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows per CSV (default 1,000,000)")
    p.add_argument("--rounds", type=int, default=1, help="interleaved CLI/Evidently rounds (default 1)")
    p.add_argument("--venv", type=Path, default=REPO / ".venv-bench", help="benchmark venv")
    p.add_argument("--output", type=Path, default=REPO / "docs" / "performance.md", help="markdown file to update")
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    p.add_argument("--skip-criterion", action="store_true",
                   help="reuse the last criterion results (from the raw JSON) instead of rerunning")
    p.add_argument("--timeout", type=float, default=900, help="time limit per child process, seconds")
    p.add_argument("--from-json", type=Path, metavar="RESULTS",
                   help="only render the section again from a previous run's results.json")
    args = p.parse_args()
    if not 1000 <= args.rows <= 10_000_000:
        p.error("--rows must be within 1000..10000000")
    if not 1 <= args.rounds <= 5:
        p.error("--rounds must be within 1..5")
    return args


def main() -> None:
    args = parse_args()
    if args.from_json:
        section = render(json.loads(args.from_json.read_text()))
        if args.no_write:
            print(section)
        else:
            write_section(args.output, section)
            log(f"wrote the {SECTION!r} section of {args.output} from {args.from_json}")
        return
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.perf_counter()
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = loadavg()
    target = target_dir()
    work = target / "bench-drift"
    work.mkdir(parents=True, exist_ok=True)
    raw_path = work / "results.json"

    py = ensure_venv(args.venv)
    log("building the release binary")
    run_measured(["cargo", "build", "--release", "--bin", "mlmon"], timeout=args.timeout)
    mlmon = target / "release" / "mlmon"
    ref, cur = ensure_data(py, args.rows, work / f"data-{args.rows}")

    if args.skip_criterion:
        crit = json.loads(raw_path.read_text())["criterion"]
    else:
        crit = run_criterion(work / "criterion", timeout=args.timeout)

    rounds = []
    for i in range(args.rounds):
        log(f"CLI/Evidently round {i + 1}/{args.rounds}")
        rounds.append(cli_round(mlmon, py, ref, cur, work, timeout=args.timeout))

    res = {
        "command": shlex.join(["bench/drift/run.py", *sys.argv[1:]]),
        "date": date,
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "git": git_rev(),
        "settings": {"rows": args.rows, "rounds": args.rounds},
        "data_mb": ref.stat().st_size / 1e6,
        "criterion": crit,
        "cli": rounds,
        "elapsed_seconds": time.perf_counter() - started,
        "raw_path": (str(raw_path.relative_to(REPO)) if raw_path.is_relative_to(REPO)
                     else "$CARGO_TARGET_DIR/bench-drift/results.json"),
    }
    raw_path.write_text(json.dumps(res, indent=2))
    section = render(res)
    if args.no_write:
        print(section)
    else:
        write_section(args.output, section)
        log(f"wrote the {SECTION!r} section of {args.output}")
        print(section.split("### Ingestion")[0])


if __name__ == "__main__":
    try:
        main()
    finally:
        stop_children()
