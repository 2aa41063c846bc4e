#!/usr/bin/env python3
"""Does an open status page slow the proxy? (issue 17: "refreshing it every 5 s does not change
the proxy's added latency"). Called by `make bench` (bench helper's hook), or alone:

    python3 bench/status/run.py --binary target/release/mlmon [--json OUT] [--markdown]

It starts `mlmon demo` (its model server, the sidecar with drift, quality, anomalies,
performance and permutation importance on, and a light background client), then measures in
interleaved rounds, `--rounds` times each:

- `off`: no page open;
- `on`: the page's refresh every `--page-interval` seconds (default 5). By default a poller
  sends exactly the requests the page sends per refresh (`/api/v1/models`, the model's
  `/history?since=`, `/drift`, `/quality`, `/anomalies?limit=10`, `/importance`; the page
  and its two assets once), so the browser's own CPU does not compete with the proxy on this
  machine (in production the browser runs on someone's laptop). `--browser` opens the real
  page in headless Chromium instead (tests/py/webdriver.py).

Each phase sends `--rate` inference requests/s (open loop, one keep-alive connection per
sender thread) through the proxy and, interleaved, straight to the model server; the proxy's
added latency is proxied minus direct, per quantile. Figures: p50 / p99 of both and of the
added latency, off vs on, and the difference; then mlmon's own CPU per page refresh (100
back-to-back refreshes minus the same time without, from /proc/PID/stat; the demo's model
server and client run in the same process and cancel out). Standard library only; every server binds
127.0.0.1; every process started here is stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
MODEL = "credit-risk"
BODY = json.dumps({"inputs": [
    {"name": "income", "shape": [2], "datatype": "FP64", "data": [52000.0, 61000.0]},
    {"name": "age", "shape": [2], "datatype": "FP64", "data": [41.0, 35.0]},
    {"name": "debt_ratio", "shape": [2], "datatype": "FP64", "data": [0.3, 0.42]},
    {"name": "num_accounts", "shape": [2], "datatype": "FP64", "data": [3.0, 5.0]},
    {"name": "region", "shape": [2], "datatype": "BYTES", "data": ["north", "south"]},
]}).encode()


def log(msg: str) -> None:
    print(f"[bench-status {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Sender:
    """Open-loop POSTs at a fixed rate over one keep-alive connection; latencies in seconds."""

    def __init__(self, url: str, rate: float):
        u = urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port, u.path
        self.period = 1.0 / rate
        self.lat: list[float] = []
        self.errors = 0

    def run(self, duration: float) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        start = time.perf_counter()
        n = 0
        while True:
            due = start + n * self.period
            now = time.perf_counter()
            if due - start >= duration:
                break
            if due > now:
                time.sleep(due - now)
            t0 = time.perf_counter()
            try:
                conn.request("POST", self.path, BODY, {"content-type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                n += 1
                continue
            # Latency from when the request was due (coordinated omission corrected).
            self.lat.append(time.perf_counter() - min(t0, max(due, start)))
            n += 1
        conn.close()


class PagePoller:
    """Sends the page's requests every `interval` seconds until stopped."""

    def __init__(self, admin: str, interval: float):
        u = urlsplit(admin)
        self.host, self.port = u.hostname, u.port
        self.interval = interval
        self.stop = threading.Event()
        self.refreshes = 0
        self.bytes = 0

    def get(self, conn: http.client.HTTPConnection, path: str) -> bytes:
        conn.request("GET", path, headers={"accept": "application/json"})
        r = conn.getresponse()
        body = r.read()
        self.bytes += len(body)
        return body

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        for p in ("/", "/status/status.js", "/status/status.css"):
            self.get(conn, p)
        since = None
        m = f"/api/v1/models/{MODEL}"
        while not self.stop.is_set():
            try:
                self.get(conn, "/api/v1/models")
                h = json.loads(self.get(conn, m + "/history" + (f"?since={since}" if since else "")))
                if h.get("t"):
                    since = h["t"][-1]
                for p in ("/drift", "/quality", "/anomalies?limit=10", "/importance"):
                    self.get(conn, m + p)
                self.refreshes += 1
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            self.stop.wait(self.interval)
        conn.close()


class BrowserPage:
    """The real page in headless Chromium, refreshing every `interval` seconds."""

    def __init__(self, admin: str, interval: float):
        sys.path.insert(0, str(REPO / "tests" / "py"))
        from webdriver import Browser  # noqa: PLC0415
        self.browser = Browser(width=1280, height=1600).__enter__()
        self.browser.get(f"{admin}/?refresh={interval:g}")
        self.refreshes = 0

    def close(self) -> None:
        try:
            self.refreshes = int(self.browser.execute("return Number(document.body.dataset.refreshes) || 0"))
        finally:
            self.browser.close()


def phase(proxy: str, direct: str, rate: float, duration: float) -> dict:
    """Proxy and direct senders side by side for `duration` s."""
    senders = {"proxy": Sender(proxy, rate), "direct": Sender(direct, rate)}
    threads = [threading.Thread(target=s.run, args=(duration,)) for s in senders.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 60)
    return {k: s.lat for k, s in senders.items()} | {"errors": sum(s.errors for s in senders.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "mlmon"))
    ap.add_argument("--rate", type=float, default=200.0, help="inference requests/s per target")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--page-interval", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds before the first phase")
    ap.add_argument("--browser", action="store_true", help="open the real page in headless Chromium")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table on stdout")
    args = ap.parse_args()

    admin_addr = f"127.0.0.1:{free_port()}"
    logf = open(Path("/tmp") / f"bench-status-demo-{admin_addr.split(':')[1]}.log", "w+")
    demo = subprocess.Popen([args.binary, "demo", "--rps", "5", "--drift-after", "60", "--duration", "7200",
                             "--listen", f"127.0.0.1:{free_port()}", "--admin-listen", admin_addr],
                            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)

    def stop_demo(*_):
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(timeout=20)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait(timeout=10)

    signal.signal(signal.SIGTERM, lambda *a: (stop_demo(), sys.exit(143)))
    try:
        deadline = time.monotonic() + 60
        text = ""
        while not re.search(r"model server \(direct\):\s+(\S+)", text) or "proxy (send traffic):" not in text:
            if demo.poll() is not None or time.monotonic() > deadline:
                log("mlmon demo did not start:\n" + text)
                return 1
            time.sleep(0.2)
            logf.seek(0)
            text = logf.read()
        direct = re.search(r"model server \(direct\):\s+(\S+)", text).group(1)
        proxy = re.search(r"proxy \(send traffic\):\s+(\S+)", text).group(1)
        admin = f"http://{admin_addr}"
        log(f"demo up: proxy {proxy}, direct {direct}; warming up {args.warmup:.0f} s")
        phase(proxy, direct, args.rate, args.warmup)

        samples: dict[str, dict[str, list[float]]] = {"off": {"proxy": [], "direct": []}, "on": {"proxy": [], "direct": []}}
        per_round = []
        refreshes = 0
        errors = 0
        for r in range(args.rounds):
            for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                page = None
                if mode == "on":
                    if args.browser:
                        page = BrowserPage(admin, args.page_interval)
                    else:
                        page = PagePoller(admin, args.page_interval)
                        threading.Thread(target=page.run, daemon=True).start()
                res = phase(proxy, direct, args.rate, args.duration)
                if page is not None:
                    if args.browser:
                        page.close()
                    else:
                        page.stop.set()
                    refreshes += page.refreshes
                errors += res["errors"]
                for k in ("proxy", "direct"):
                    samples[mode][k].extend(res[k])
                added = {q: quantile(res["proxy"], q) - quantile(res["direct"], q) for q in (0.5, 0.99)}
                per_round.append({"round": r, "mode": mode, "added_p50_ms": added[0.5] * 1e3, "added_p99_ms": added[0.99] * 1e3})
                log(f"round {r} {mode:>3}: added p50 {added[0.5] * 1e3:.3f} ms, p99 {added[0.99] * 1e3:.3f} ms")

        # mlmon's own CPU per page refresh: back-to-back refreshes vs the same time without.
        def cpu() -> float:
            with open(f"/proc/{demo.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        poller = PagePoller(admin, 0)
        conn = http.client.HTTPConnection(poller.host, poller.port, timeout=10)
        n_cpu = 100
        c0, t0 = cpu(), time.monotonic()
        for _ in range(n_cpu):
            for p in ("/api/v1/models", f"/api/v1/models/{MODEL}/history?since={time.time() - 10}",
                      f"/api/v1/models/{MODEL}/drift", f"/api/v1/models/{MODEL}/quality",
                      f"/api/v1/models/{MODEL}/anomalies?limit=10", f"/api/v1/models/{MODEL}/importance"):
                poller.get(conn, p)
        busy, wall = cpu() - c0, time.monotonic() - t0
        c1 = cpu()
        time.sleep(wall)
        idle = cpu() - c1
        conn.close()
        refresh_cpu_ms = max(busy - idle, 0.0) / n_cpu * 1e3

        out = {"refresh_cpu_ms": refresh_cpu_ms,
               "refresh_cpu_share_of_a_core_at_interval": refresh_cpu_ms / 1e3 / args.page_interval,
               "rate": args.rate, "duration_per_phase": args.duration, "rounds": args.rounds,
               "page_interval": args.page_interval, "page": "browser" if args.browser else "poller",
               "page_refreshes": refreshes, "errors": errors, "per_round": per_round}
        for mode in ("off", "on"):
            s = samples[mode]
            out[mode] = {
                "requests": len(s["proxy"]),
                "proxy_p50_ms": quantile(s["proxy"], 0.5) * 1e3, "proxy_p99_ms": quantile(s["proxy"], 0.99) * 1e3,
                "direct_p50_ms": quantile(s["direct"], 0.5) * 1e3, "direct_p99_ms": quantile(s["direct"], 0.99) * 1e3,
            }
            out[mode]["added_p50_ms"] = out[mode]["proxy_p50_ms"] - out[mode]["direct_p50_ms"]
            out[mode]["added_p99_ms"] = out[mode]["proxy_p99_ms"] - out[mode]["direct_p99_ms"]
        out["page_effect_p50_ms"] = out["on"]["added_p50_ms"] - out["off"]["added_p50_ms"]
        out["page_effect_p99_ms"] = out["on"]["added_p99_ms"] - out["off"]["added_p99_ms"]
        rounds = {m: [x["added_p99_ms"] for x in per_round if x["mode"] == m] for m in ("off", "on")}
        out["added_p99_ms_round_spread"] = {m: [min(v), max(v)] for m, v in rounds.items() if v}
        out["added_p99_ms_round_median"] = {m: statistics.median(v) for m, v in rounds.items() if v}
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        if args.markdown:
            print("| status page | requests | proxy p50 / p99 (ms) | direct p50 / p99 (ms) | added p50 / p99 (ms) |")
            print("|---|---|---|---|---|")
            for mode, label in (("off", "closed"), ("on", f"refreshing every {args.page_interval:g} s")):
                o = out[mode]
                print(f"| {label} | {o['requests']} | {o['proxy_p50_ms']:.3f} / {o['proxy_p99_ms']:.3f} | "
                      f"{o['direct_p50_ms']:.3f} / {o['direct_p99_ms']:.3f} | {o['added_p50_ms']:.3f} / {o['added_p99_ms']:.3f} |")
            print(f"\nPage effect on the added latency: p50 {out['page_effect_p50_ms']:+.3f} ms, "
                  f"p99 {out['page_effect_p99_ms']:+.3f} ms ({refreshes} page refreshes, {errors} failed requests).")
            print(f"mlmon CPU per page refresh: {refresh_cpu_ms:.2f} ms "
                  f"({out['refresh_cpu_share_of_a_core_at_interval'] * 100:.3f} % of a core at one refresh every {args.page_interval:g} s).")
        else:
            print(json.dumps(out, indent=2))
        return 0
    finally:
        stop_demo()


if __name__ == "__main__":
    sys.exit(main())
