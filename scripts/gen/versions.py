#!/usr/bin/env python3
"""Generate reference fixtures for the version comparison tests (src/versions/significance.rs).

Every expected number comes from scipy or statsmodels, never from mlmon:

- two-proportion z-test: statsmodels proportions_ztest([x_b, x_a], [n_b, n_a]) (pooled),
  interval confint_proportions_2indep(x_b, n_b, x_a, n_a, method="wald", compare="diff");
- Welch's t-test: scipy.stats.ttest_ind(b, a, equal_var=False) and its confidence_interval();
- KS: scipy.stats.ks_2samp(b, a, method="asymp");
- chi-square homogeneity: scipy.stats.chi2_contingency([a, b], correction=False);
- sample sizes: statsmodels NormalIndPower().solve_power(effect, alpha=.05, power=.8, ratio=1)
  with Cohen's h (proportion_effectsize) or d.

    .venv/bin/python scripts/gen/versions.py    # writes tests/fixtures/versions/significance.json

Samples are written as Python's shortest repr strings (exact round trip). Fixed seed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["OPENBLAS_CORETYPE"] = "Haswell"
# numpy's own SIMD loops differ in the last bits between AVX2 and AVX-512 hosts: AVX2 everywhere.
os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_effectsize,
                                          proportions_ztest)

ROOT = Path(os.environ.get("MLMON_GEN_ROOT") or Path(__file__).resolve().parents[2])
OUT = ROOT / "tests" / "fixtures" / "versions"
GENERATOR = (f"scripts/gen/versions.py (numpy {np.__version__}, scipy {scipy.__version__}, "
             f"statsmodels {statsmodels.__version__})")
ALPHA, POWER = 0.05, 0.8


def enc(values) -> list[str]:
    return [repr(float(v)) for v in values]


def proportions(x_a: int, n_a: int, x_b: int, n_b: int) -> dict:
    z, p = proportions_ztest([x_b, x_a], [n_b, n_a])
    lo, hi = confint_proportions_2indep(x_b, n_b, x_a, n_a, method="wald", compare="diff", alpha=ALPHA)
    pa, pb = x_a / n_a, x_b / n_b
    h = proportion_effectsize(pb, pa)
    n_needed = NormalIndPower().solve_power(abs(h), alpha=ALPHA, power=POWER, ratio=1.0) if h != 0 else None
    return {"x_a": x_a, "n_a": n_a, "x_b": x_b, "n_b": n_b, "difference": pb - pa, "statistic": float(z),
            "p_value": float(p), "ci_low": float(lo), "ci_high": float(hi), "cohens_h": float(h),
            "sample_size": None if n_needed is None else float(n_needed)}


def welch(a: np.ndarray, b: np.ndarray) -> dict:
    r = stats.ttest_ind(b, a, equal_var=False)
    ci = r.confidence_interval(1 - ALPHA)
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    d = (b.mean() - a.mean()) / pooled
    n_needed = NormalIndPower().solve_power(abs(d), alpha=ALPHA, power=POWER, ratio=1.0)
    return {"a": enc(a), "b": enc(b), "difference": float(b.mean() - a.mean()), "statistic": float(r.statistic),
            "p_value": float(r.pvalue), "df": float(r.df), "ci_low": float(ci.low), "ci_high": float(ci.high),
            "cohens_d": float(d), "sample_size": float(n_needed)}


def ks(a: np.ndarray, b: np.ndarray) -> dict:
    r = stats.ks_2samp(b, a, method="asymp")
    return {"a": enc(a), "b": enc(b), "statistic": float(r.statistic), "p_value": float(r.pvalue)}


def chi2(a: list[int], b: list[int]) -> dict:
    keep = [i for i in range(len(a)) if a[i] + b[i] > 0]
    table = np.array([[a[i] for i in keep], [b[i] for i in keep]])
    stat, p, dof, _ = stats.chi2_contingency(table, correction=False)
    return {"a": a, "b": b, "statistic": float(stat), "p_value": float(p), "df": int(dof)}


def main() -> int:
    rng = np.random.default_rng(20261202)
    out = {
        "generator": GENERATOR,
        "alpha": ALPHA,
        "power": POWER,
        "proportions": [proportions(*c) for c in [
            (90, 100, 80, 100), (450, 500, 470, 500), (7, 30, 9, 25), (1000, 1200, 1001, 1200), (5, 5, 4, 10),
            (9500, 10000, 9400, 10000),
        ]],
        "welch": [
            welch(rng.normal(0.5, 0.2, 40), rng.normal(0.6, 0.35, 55)),
            welch(rng.exponential(0.01, 500), rng.exponential(0.012, 300)),
            welch(np.abs(rng.normal(0, 1, 12)), np.abs(rng.normal(0, 1, 9))),
            welch(rng.normal(100, 5, 3), rng.normal(100, 5, 2000)),
        ],
        "ks": [
            ks(rng.normal(0, 1, 200), rng.normal(0.3, 1, 150)),
            ks(rng.integers(0, 3, 120).astype(float), rng.integers(0, 3, 90).astype(float)),
            ks(rng.uniform(0, 1, 1000), rng.uniform(0, 1, 1000)),
        ],
        "chi2": [chi2([50, 30, 20], [40, 45, 15]), chi2([10, 0, 5, 0], [12, 3, 0, 0]), chi2([100, 100], [90, 110])],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "significance.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
