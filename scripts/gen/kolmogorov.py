#!/usr/bin/env python3
"""Reference values of the Kolmogorov-Smirnov distributions behind mlmon's KS p-value
(src/stats/kolmogorov.rs), from scipy: a dense grid over the effective sizes and statistics
a drift report meets.

    .venv/bin/python scripts/gen/kolmogorov.py   # writes tests/fixtures/kolmogorov/*.json

- kstwo.json: scipy.stats.kstwo.sf(d, n) (what ks_2samp(method='asymp') reports) for
  n = 100 .. 10^6 (half-decades, plus the sizes where scipy switches method) and d from below
  1/(2n) to 1: n*d^2 on a log grid from 1e-4 to 400, n*d around 1, n*d^1.5 around 1.4, and
  large d.
- smirnov.json: scipy.special.smirnov(n, d) (the one-sided sf; kstwo.sf = 2*smirnov where
  n*d^2 >= 2.2 and n > 140) on the Birnbaum-Tingey range n*d^2 = 2 .. 370, n = 100 .. 10^6,
  where mlmon sums a sample of the terms (scipy: every term, in double-double).

Deterministic: fixed grids and seed, scipy version recorded in the "generator" field. The Rust
test compares relative errors (stats::kolmogorov::tests::*_match_scipy_dense_grid).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

# numpy's own SIMD loops differ in the last bits between AVX2 and AVX-512 hosts: AVX2 everywhere.
os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"

import numpy as np
import scipy
from scipy import special, stats

ROOT = Path(os.environ.get("MLMON_GEN_ROOT") or Path(__file__).resolve().parents[2])
OUT = ROOT / "tests" / "fixtures" / "kolmogorov"
GENERATOR = f"scripts/gen/kolmogorov.py (numpy {np.__version__}, scipy {scipy.__version__})"


def sizes() -> list[int]:
    grid = np.unique(np.round(np.logspace(2, 6, 9)).astype(int)).tolist()
    # scipy's method switches (140/141, 100000/100001) and the bench's effective size
    # (100 000 window values x 20 000 baseline values -> 16 667).
    return sorted(set(grid) | {139, 140, 141, 16667, 99999, 100000, 100001, 999999})


def write(name: str, cases: list) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {"generator": GENERATOR, "cases": cases}
    # One case per line.
    lines = ",\n".join(json.dumps(c) for c in cases)
    with open(OUT / f"{name}.json", "w") as f:
        f.write(f'{{"generator": {json.dumps(GENERATOR)},\n"cases": [\n{lines}\n]}}\n')


def gen_kstwo(rng: np.random.Generator) -> None:
    cases = []
    for n in sizes():
        ds = set()
        for c in np.logspace(-4, math.log10(400), 28):
            ds.add(math.sqrt(c / n))
        for t in [0.4, 0.5, 0.75, 1.0, 1.25, 2.0]:
            ds.add(t / n)
        for c in [1.0, 1.4, 2.0]:
            ds.add((c / n) ** (2.0 / 3.0))
        ds.update([0.3, 0.5, 0.7, 0.9])
        ds.update((rng.uniform(0.5, 3.0, 4) / math.sqrt(n)).tolist())
        for d in sorted(ds):
            if 0.0 < d <= 1.0:
                cases.append({"n": n, "d": d, "sf": float(stats.kstwo.sf(d, n))})
    write("kstwo", cases)


def gen_smirnov(rng: np.random.Generator) -> None:
    cases = []
    for n in sizes():
        cs = set(np.logspace(math.log10(2.0), math.log10(370.0), 14).tolist())
        cs.update(rng.uniform(2.0, 40.0, 4).tolist())
        for c in sorted(cs):
            d = math.sqrt(c / n)
            if d < 1.0:
                cases.append({"n": n, "d": d, "sf": float(special.smirnov(n, d))})
    write("smirnov", cases)


def main() -> int:
    gen_kstwo(np.random.default_rng(13))
    gen_smirnov(np.random.default_rng(14))
    return 0


if __name__ == "__main__":
    sys.exit(main())
