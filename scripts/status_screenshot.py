#!/usr/bin/env python3
"""`make screenshot`: regenerates docs/status-page.png, the status page of `mlmon demo` once its
drift has set in, taken by Debian's headless Chromium (tests/py/webdriver.py; standard library
only, so any python3 runs it).

It starts the demo on free 127.0.0.1 ports with a short `--drift-after`, opens the page,
waits until income and debt_ratio are critical and the charts hold `--points` history points,
then saves a screenshot of the whole page.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "py"))
from webdriver import Browser  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(REPO / "target" / "debug" / "mlmon"))
    ap.add_argument("--output", default=str(REPO / "docs" / "status-page.png"))
    ap.add_argument("--drift-after", type=int, default=45, help="seconds of normal traffic first")
    ap.add_argument("--points", type=int, default=24, help="history points (5 s apart) to wait for")
    ap.add_argument("--width", type=int, default=1280)
    args = ap.parse_args()

    admin = f"127.0.0.1:{free_port()}"
    demo = subprocess.Popen(
        [args.binary, "demo", "--duration", "1200", "--drift-after", str(args.drift_after),
         "--listen", f"127.0.0.1:{free_port()}", "--admin-listen", admin],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                        f"http://{admin}/healthz", timeout=2):
                    break
            except OSError:
                if demo.poll() is not None or time.monotonic() > deadline:
                    print("mlmon demo did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        with Browser(width=args.width, height=1600) as b:
            b.get(f"http://{admin}/?refresh=2")
            timeout = args.drift_after + 60 + args.points * 5 + 120
            print(f"waiting up to {timeout} s for the drift and {args.points} history points ...", flush=True)
            b.wait("""
                const s = (n) => { const tr = document.querySelector(`#drift tbody tr[data-feature="${n}"]`);
                                   return tr && tr.dataset.status; };
                const poly = document.querySelector('#chart-drift polyline');
                const n = poly ? poly.getAttribute('points').split(' ').length : 0;
                return s('income') === 'critical' && s('debt_ratio') === 'critical' && n >= arguments[0];""",
                   timeout, "the drift and the history", args.points, poll=2)
            b.execute("window.scrollTo(0, 0)")
            b.fit_to_page()
            time.sleep(1)
            out = b.screenshot(Path(args.output))
            errors = [e for e in b.console() if e.get("level") == "SEVERE"]
            if errors:
                print(f"console errors: {errors}", file=sys.stderr)
                return 1
        print(f"wrote {out} ({out.stat().st_size} bytes)")
        return 0
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(timeout=20)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
