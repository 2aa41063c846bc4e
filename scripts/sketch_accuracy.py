#!/usr/bin/env python3
"""KS and Wasserstein of mlmon (live and offline) against scipy on all rows.

Builds a baseline with `mlmon baseline build`, then compares a window with it twice:
offline (`mlmon drift --output json`) and live (`mlmon serve`, the window's rows posted to
`POST /api/v1/predictions/{model}`, read back from `GET /api/v1/models/{model}/drift`).
Every number is checked against scipy's `ks_2samp` / `wasserstein_distance` on the full
baseline column and the full window (SPEC section 5: KS within 0.005, Wasserstein within
max(1 %, 0.002 σ of the baseline)). Data: RAND HIE columns bundled with statsmodels, and
synthetic normal / lognormal / Pareto / offset columns (2·10⁵ baseline rows, 10⁵ window
rows, seed 1). Prints one line per feature; exit 1 when a target is missed.

    cargo build --bin mlmon
    .venv/bin/python scripts/sketch_accuracy.py [target/debug/mlmon]

Binds 127.0.0.1:18480-18481 only; stops the sidecar it starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

MLMON = sys.argv[1] if len(sys.argv) > 1 else "target/debug/mlmon"
ADMIN = "127.0.0.1:18481"
missed = 0


def check(where: str, name: str, feature: dict, ref: pd.DataFrame, win: pd.DataFrame) -> None:
    global missed
    c = feature["feature"]
    a, b = ref[c].dropna().to_numpy(float), win[c].dropna().to_numpy(float)
    ks = stats.ks_2samp(b, a, method="asymp")
    w = stats.wasserstein_distance(b, a)
    ks_err, w_err = abs(feature["ks_statistic"] - ks.statistic), abs(feature["wasserstein"] - w)
    tol = max(0.01 * w, 0.002 * np.std(a))
    ok = ks_err <= 0.005 and w_err <= tol
    missed += not ok
    print(f"{where} {name}.{c}: n {len(a)}/{len(b)} KS {feature['ks_statistic']:.6f} (scipy {ks.statistic:.6f}, "
          f"error {ks_err:.1e}, bound {feature.get('ks_error_bound', float('nan')):.1e}) "
          f"W1 {feature['wasserstein']:.6g} (scipy {w:.6g}, error {w_err:.1e}, tolerance {tol:.1e}) "
          f"p {feature['ks_pvalue']:.3g} (scipy {ks.pvalue:.3g}) {'ok' if ok else 'MISSED'}")


def post(url: str, body: bytes) -> None:
    for _ in range(2000):
        req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"}, method="POST")
        try:
            urllib.request.urlopen(req, timeout=60).read()
            return
        except urllib.error.HTTPError as e:
            if e.code != 503:  # capture queue full: back off
                raise
            time.sleep(0.2)
    raise RuntimeError("capture queue stayed full")


def run(tmp: Path, name: str, ref: pd.DataFrame, win: pd.DataFrame) -> None:
    ref.to_csv(tmp / f"{name}_ref.csv", index=False)
    win.to_csv(tmp / f"{name}_win.csv", index=False)
    baseline = tmp / f"{name}.json"
    subprocess.run([MLMON, "baseline", "build", "--input", str(tmp / f"{name}_ref.csv"), "--output",
                    str(baseline), "--model", "m"], check=True, capture_output=True)
    out = subprocess.run([MLMON, "drift", "--baseline", str(baseline), "--input", str(tmp / f"{name}_win.csv"),
                          "--output", "json"], capture_output=True, text=True)
    for f in json.loads(out.stdout)["features"]:
        check("offline", name, f, ref, win)
    proc = subprocess.Popen([MLMON, "serve", "--listen", "127.0.0.1:18480", "--admin-listen", ADMIN,
                             "--upstream", "http://127.0.0.1:18482", "--baseline", str(baseline)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MLMON_ADMIN__ALLOW_UNAUTHENTICATED": "true"})
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{ADMIN}/api/v1/models", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        recs = [{"features": {c: float(r[c]) for c in win.columns}, "prediction": 0} for r in win.to_dict("records")]
        for i in range(0, len(recs), 2000):
            post(f"http://{ADMIN}/api/v1/predictions/m", json.dumps(recs[i:i + 2000]).encode())
        deadline = time.time() + 120
        while True:
            rep = json.loads(urllib.request.urlopen(f"http://{ADMIN}/api/v1/models/m/drift", timeout=30).read())
            if min(f["window"]["count"] for f in rep["features"]) >= len(recs) or time.time() > deadline:
                break
            time.sleep(1)
        for f in rep["features"]:
            check("live", name, f, ref, win)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    d = sm.datasets.randhie.load_pandas().data
    cols = ["mdvis", "lpi", "fmde", "disea"]
    rng = np.random.default_rng(1)
    n, m = 200_000, 100_000
    ref = pd.DataFrame({"x": rng.normal(size=n), "y": rng.lognormal(size=n), "z": rng.pareto(2.5, size=n),
                        "u": 1e6 + rng.normal(size=n)})
    win = pd.DataFrame({"x": rng.normal(size=m) + 0.05, "y": rng.lognormal(size=m) * 1.02,
                        "z": rng.pareto(2.5, size=m), "u": 1e6 + rng.normal(size=m)})
    with tempfile.TemporaryDirectory(prefix="mlmon-sketch-") as tmp:
        run(Path(tmp), "randhie", d[d.idp == 0][cols], d[d.idp == 1][cols])
        run(Path(tmp), "synthetic", ref, win)
    print("every target met" if missed == 0 else f"{missed} targets missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
