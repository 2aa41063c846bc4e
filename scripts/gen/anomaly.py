#!/usr/bin/env python3
"""Generate reference fixtures for mlmon's anomaly scoring (src/anomaly/).

Every expected number comes from numpy / scipy / scikit-learn, never from mlmon. The Rust
tests in tests/offline/anomaly/fixtures.rs load these files and compare.

    make deps    # .venv from tests/py/requirements.txt
    .venv/bin/python scripts/gen/anomaly.py   # writes tests/fixtures/anomaly/*.json

Fixed seeds: re-running produces the same files (up to library versions, recorded in
each file's "generator" field). Inputs are written as decimal strings (Python's shortest
repr) so they round-trip exactly.

What is checked:
- ledoit_wolf.json: sklearn.covariance.LedoitWolf (assume_centered=False): location,
  covariance, shrinkage, and squared Mahalanobis distances of test points
  (LedoitWolf.mahalanobis).
- sigma.json: two-sided sigma-equivalents norm.isf(tail / 2) and, for squared distances,
  norm.isf(chi2.sf(d2, dof) / 2).
- scorer.json: the whole per-row score of mlmon's documented method (docs/anomaly.md):
  baseline quantiles with numpy's default 'linear' method, skew-aware robust z per feature,
  Mahalanobis distance of (x - p50) / ((p75 - p25) / 1.349) under LedoitWolf fitted on the
  baseline rows, row score = max(max |z|, sigma of the distance).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Same OpenBLAS kernels on every x86-64 machine (AVX2): the default picks them per CPU, and
# linear algebra then differs in the last bits between, say, AMD and Intel AVX-512 hosts.
os.environ["OPENBLAS_CORETYPE"] = "Haswell"
# numpy's own SIMD loops differ in the last bits between AVX2 and AVX-512 hosts: AVX2 everywhere.
os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"

import numpy as np
import scipy
import sklearn
from scipy import stats
from sklearn.covariance import LedoitWolf

# Output root: the repository, or $MLMON_GEN_ROOT (`make check-generated` writes to a temp dir).
ROOT = Path(os.environ.get("MLMON_GEN_ROOT") or Path(__file__).resolve().parents[2])
OUT = ROOT / "tests" / "fixtures" / "anomaly"
GENERATOR = f"scripts/gen/anomaly.py numpy {np.__version__} scipy {scipy.__version__} sklearn {sklearn.__version__}"
Z99 = stats.norm.ppf(0.99)
IQR_NORMAL = stats.norm.ppf(0.75) - stats.norm.ppf(0.25)


def enc(a) -> list:
    return [[repr(float(v)) for v in row] for row in np.atleast_2d(a)]


def lw_case(name: str, x: np.ndarray, t: np.ndarray) -> dict:
    lw = LedoitWolf().fit(x)
    return {
        "name": name,
        "rows": enc(x),
        "points": enc(t),
        "location": lw.location_.tolist(),
        "covariance": lw.covariance_.tolist(),
        "shrinkage": float(lw.shrinkage_),
        "d2": lw.mahalanobis(t).tolist(),
    }


def ledoit_wolf() -> dict:
    rng = np.random.default_rng(20261129)
    cases = []
    cov = np.array([[1.0, 0.8, 0.2, 0.0], [0.8, 1.0, 0.1, 0.0], [0.2, 0.1, 2.0, 0.5], [0.0, 0.0, 0.5, 0.5]])
    x = rng.multivariate_normal([1.0, -2.0, 0.0, 10.0], cov, size=500)
    t = rng.multivariate_normal([1.0, -2.0, 0.0, 10.0], cov * 4, size=20)
    cases.append(lw_case("correlated_n500_p4", x, t))
    x = rng.normal(size=(12, 6)) * np.array([1, 2, 3, 0.5, 1, 10])
    t = rng.normal(size=(10, 6)) * 3
    cases.append(lw_case("few_rows_n12_p6", x, t))
    base = rng.normal(size=(200, 2))
    x = np.column_stack([base[:, 0], base[:, 1], base[:, 0] * 2 + base[:, 1]])  # collinear
    t = rng.normal(size=(10, 3)) * 2
    cases.append(lw_case("collinear_n200_p3", x, t))
    x = rng.standard_t(df=3, size=(1000, 5))
    t = rng.standard_t(df=3, size=(15, 5)) * 2
    cases.append(lw_case("heavy_tails_n1000_p5", x, t))
    return {"generator": GENERATOR, "cases": cases}


def sigma() -> dict:
    tails = [1.0, 0.5, 0.1, 0.05, 0.01, 1e-3, 6.334248366623996e-05, 1e-6, 1e-12, 1e-30, 1e-100]
    chi = [(0.5, 1), (3.84, 1), (10.0, 2), (28.0, 5), (90.0, 2), (150.0, 10), (400.0, 3), (1200.0, 64)]
    return {
        "generator": GENERATOR,
        "tails": [{"tail": p, "sigma": float(stats.norm.isf(p / 2))} for p in tails],
        "chi2": [
            {"d2": d2, "dof": k, "sf": float(stats.chi2.sf(d2, k)), "sigma": float(stats.norm.isf(stats.chi2.sf(d2, k) / 2))}
            for d2, k in chi
        ],
    }


def robust_z(x: float, q: dict) -> float:
    d = x - q["p50"]
    if d >= 0:
        s = (q["p99"] - q["p50"]) / Z99
    else:
        s = (q["p50"] - q["p01"]) / Z99
    return d / s


def scorer() -> dict:
    rng = np.random.default_rng(7)
    names = ["a", "b", "c"]
    cov = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.3], [0.0, 0.3, 4.0]])
    x = rng.multivariate_normal([5.0, -1.0, 100.0], cov, size=2000)
    # Make "c" skewed so the two sides of its robust scale differ.
    x[:, 2] = 100.0 + np.exp(x[:, 2] / 4.0 - 25.0 / 4.0 + 6.0) / 10.0
    tests = np.vstack([
        x[:5],
        [[5.0 + 6.0, -1.0, x[:, 2].mean()]],   # 6-sigma on a
        [[6.5, -2.5, x[:, 2].mean()]],         # correlation break between a and b
        rng.multivariate_normal([5.0, -1.0, 100.0], cov, size=5),
    ])
    qs = {}
    for j, n in enumerate(names):
        v = np.quantile(x[:, j], [0.01, 0.25, 0.5, 0.75, 0.99])
        qs[n] = dict(zip(["p01", "p25", "p50", "p75", "p99"], map(float, v)))
    scale = np.array([(qs[n]["p75"] - qs[n]["p25"]) / IQR_NORMAL for n in names])
    med = np.array([qs[n]["p50"] for n in names])
    u = (x - med) / scale
    lw = LedoitWolf().fit(u)
    ut = (tests - med) / scale
    d2 = lw.mahalanobis(ut)
    rows = []
    for i, t in enumerate(tests):
        z = [robust_z(float(t[j]), qs[n]) for j, n in enumerate(names)]
        mv = float(stats.norm.isf(stats.chi2.sf(d2[i], 3) / 2))
        rows.append({
            "values": [repr(float(v)) for v in t],
            "z": z,
            "d2": float(d2[i]),
            "multivariate": mv,
            "score": max(max(abs(v) for v in z), mv),
        })
    return {
        "generator": GENERATOR,
        "names": names,
        "baseline": enc(x),
        "quantiles": qs,
        "shrinkage": float(lw.shrinkage_),
        "rows": rows,
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, doc in [("ledoit_wolf", ledoit_wolf()), ("sigma", sigma()), ("scorer", scorer())]:
        (OUT / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {OUT / (name + '.json')}")


if __name__ == "__main__":
    main()
