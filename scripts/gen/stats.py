#!/usr/bin/env python3
"""Generate reference fixtures for mlmon's statistics module (src/stats/).

Every expected number comes from numpy / scipy (or, for the adaptive thresholds, from a
Monte-Carlo simulation with numpy), never from mlmon itself. The Rust tests in
tests/offline/stats.rs load these files and compare.

    make deps    # .venv from tests/py/requirements.txt
    .venv/bin/python scripts/gen/stats.py          # writes tests/fixtures/stats/*.json

Fixed seeds: re-running produces the same files (up to the numpy/scipy versions, which
are recorded in each file's "generator" field).

Encoding of sample *inputs*: each value is a decimal string (Python's shortest repr, so
it round-trips exactly; JSON number parsers are not all correctly rounded, and one ulp
matters for samples like 1e12 + noise), or "nan" / "inf" / "-inf" (JSON has no NaN/inf).
Expected outputs that do not exist (empty window, ...) are null.

mlmon's documented conventions that the expected values follow:
- NaN and +-inf in samples are dropped before KS / Wasserstein / quantiles / summary
  (scipy would propagate NaN); the expected values are scipy's on the finite values.
- PSI floors each proportion at 1e-4 without renormalising; an empty window has no PSI.
- chi-square: over the categories that occur (baseline proportion > 0 or window count > 0);
  their expected proportions floored at 1e-4, renormalised, times n.
- ks_2samp with n1 = n2 = 1: scipy's asymptotic p-value is NaN (effective n rounds to
  0); mlmon reports 1.0 (recorded here as "pvalue_mlmon").
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

# Same OpenBLAS kernels on every x86-64 machine (AVX2): the default picks them per CPU, and
# linear algebra then differs in the last bits between, say, AMD and Intel AVX-512 hosts.
os.environ["OPENBLAS_CORETYPE"] = "Haswell"
# numpy's own SIMD loops differ in the last bits between AVX2 and AVX-512 hosts: AVX2 everywhere.
os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"

import numpy as np
import scipy
from scipy import stats
from scipy.spatial.distance import jensenshannon

# Output root: the repository, or $MLMON_GEN_ROOT (`make check-generated` writes to a temp dir).
ROOT = Path(os.environ.get("MLMON_GEN_ROOT") or Path(__file__).resolve().parents[2])
OUT = ROOT / "tests" / "fixtures" / "stats"
PSI_FLOOR = 1e-4
GENERATOR = f"scripts/gen/stats.py (numpy {np.__version__}, scipy {scipy.__version__})"


def enc(values) -> list:
    """Encode a sample as exact decimal strings ("nan", "inf", "-inf" for non-finite)."""
    out = []
    for v in np.asarray(values, dtype=float).tolist():
        if math.isnan(v):
            out.append("nan")
        elif math.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(repr(v))
    return out


def finite(values) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


def num(x) -> float | None:
    """A finite float, or None for NaN / inf (JSON cannot carry them)."""
    x = float(x)
    return x if math.isfinite(x) else None


def write(name: str, cases: list, **extra) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {"generator": GENERATOR, **extra, "cases": cases}
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({len(cases)} cases)")


# ---------------------------------------------------------------------------------------
# bins: bin index = number of edges strictly below v = np.searchsorted(edges, v, 'left')


def gen_bins(rng: np.random.Generator) -> None:
    cases = []
    edges = [-1.0, 0.0, 0.5, 2.0]
    values = [-5.0, -1.0, -0.999, 0.0, 1e-12, 0.5, 0.75, 2.0, 2.0000001, 9.0,
              float("inf"), float("-inf")]
    cases.append({"name": "hand_edges_boundaries", "edges": enc(edges), "values": enc(values),
                  "indices": np.searchsorted(edges, values, side="left").tolist()})
    for i, k in enumerate([1, 3, 9, 19]):
        e = np.sort(rng.normal(size=k))
        v = np.concatenate([rng.normal(size=200), e])  # include exact edge hits
        cases.append({"name": f"random_edges_k{k}_{i}", "edges": enc(e), "values": enc(v),
                      "indices": np.searchsorted(e, v, side="left").tolist()})
    cases.append({"name": "no_edges_single_bin", "edges": [], "values": enc([1.0, -3.0]),
                  "indices": [0, 0]})
    write("bins", cases)


# ---------------------------------------------------------------------------------------
# quantile edges and quantiles (numpy 'linear')


def np_quantile_edges(values, n_bins: int) -> list:
    x = np.sort(finite(values))
    if x.size == 0 or n_bins < 2:
        return []
    qs = [i / n_bins for i in range(1, n_bins)]
    e = np.quantile(x, qs)  # default method='linear'
    e = e[np.isfinite(e)]
    return np.unique(e).tolist()


def gen_quantile_edges(rng: np.random.Generator) -> None:
    samples = {
        "normal_1000": rng.normal(10, 3, 1000),
        "lognormal_5000": rng.lognormal(0, 1, 5000),
        "integers_with_ties": rng.integers(0, 4, 500).astype(float),
        "mostly_zero": np.concatenate([np.zeros(700), rng.exponential(1, 300)]),
        "constant": np.full(50, 3.25),
        "single_value": np.array([7.0]),
        "two_values": np.array([1.0, 2.0]),
        "three_values": np.array([5.0, -1.0, 2.0]),
        "with_nan_and_inf": np.concatenate([rng.normal(size=100), [np.nan, np.inf, -np.inf]]),
        "empty": np.array([]),
        "all_nan": np.array([np.nan, np.nan]),
        "large_offset": 1e9 + rng.normal(0, 1e-3, 300),
    }
    cases = []
    for name, x in samples.items():
        cases.append({"name": name, "values": enc(x),
                      "edges_by_bins": {str(b): np_quantile_edges(x, b) for b in [1, 2, 4, 10, 20]}})
    write("quantile_edges", cases)


def gen_quantiles(rng: np.random.Generator) -> None:
    qs = [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]
    samples = {
        "latency_lognormal_5000": rng.lognormal(-4, 0.6, 5000),
        "latency_small_window_3": np.array([0.012, 0.009, 0.031]),
        "one_value": np.array([0.5]),
        "two_values": np.array([2.0, 1.0]),
        "ties": rng.integers(0, 3, 101).astype(float),
        "constant": np.full(20, 0.1),
        "uniform_1000": rng.uniform(-5, 5, 1000),
        "large_offset": 1e12 + rng.normal(0, 1, 400),
        "with_nan_and_inf": np.concatenate([rng.normal(size=50), [np.nan, np.inf, -np.inf, np.nan]]),
        "empty": np.array([]),
        "all_nan": np.array([np.nan]),
    }
    cases = []
    for name, x in samples.items():
        f = finite(x)
        if f.size == 0:
            cases.append({"name": name, "values": enc(x), "qs": qs, "quantiles": None,
                          "summary": None})
            continue
        cases.append({
            "name": name, "values": enc(x), "qs": qs,
            "quantiles": np.quantile(f, qs).tolist(),
            "summary": {"count": int(f.size), "mean": float(np.mean(f)),
                        "std": float(np.std(f)),  # ddof=0
                        "min": float(np.min(f)), "max": float(np.max(f))},
        })
    write("quantiles", cases)


# ---------------------------------------------------------------------------------------
# PSI / JS over bins


def np_psi(expected, actual) -> float:
    e = np.maximum(np.asarray(expected, float), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, float), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def bin_props(values, edges) -> np.ndarray:
    idx = np.searchsorted(edges, values, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return counts


def gen_psi_js(rng: np.random.Generator) -> None:
    psi_cases, js_cases = [], []

    def add(name, expected, counts):
        counts = [int(c) for c in counts]
        total = sum(counts)
        if total == 0:
            psi_v = js_v = None
        else:
            actual = np.asarray(counts, float) / total
            psi_v = np_psi(expected, actual)
            js_v = float(jensenshannon(expected, counts, base=2) ** 2)
        psi_cases.append({"name": name, "expected": list(map(float, expected)),
                          "actual_counts": counts, "psi": psi_v})
        js_cases.append({"name": name, "expected": list(map(float, expected)),
                         "actual_counts": counts, "js": js_v})

    # Baseline bins from a baseline sample, windows drawn from shifted distributions.
    base = rng.normal(0, 1, 20000)
    edges = np_quantile_edges(base, 10)
    expected = bin_props(base, edges) / base.size
    for shift, n in [(0.0, 5000), (0.0, 100), (0.1, 5000), (0.5, 1000), (2.0, 500),
                     (10.0, 5000), (-3.0, 200), (0.0, 1), (1.0, 2), (0.0, 3)]:
        w = rng.normal(shift, 1, n)
        add(f"normal_shift{shift}_n{n}", expected, bin_props(w, edges))
    add("identical_to_baseline", expected, np.round(expected * 1e6))
    add("empty_window", expected, [0] * len(expected))
    add("all_in_last_bin", expected, [0] * (len(expected) - 1) + [37])
    # A constant baseline feature: one edge, proportions [1, 0].
    add("constant_baseline_same", [1.0, 0.0], [50, 0])
    add("constant_baseline_shift_up", [1.0, 0.0], [10, 40])
    # Expected proportions below the floor.
    add("tiny_expected", [0.99995, 0.00005], [90, 10])
    add("two_bins_disjoint", [1.0, 0.0], [0, 5])
    write("psi", psi_cases, floor=PSI_FLOOR)
    # Direct proportion-vector cases for js (scipy normalises; inputs not summing to 1).
    for i in range(5):
        k = int(rng.integers(2, 12))
        p = rng.dirichlet(np.ones(k))
        q = rng.dirichlet(np.ones(k) * 0.3)
        q[rng.integers(0, k)] = 0.0
        js_cases.append({"name": f"dirichlet_{i}", "expected": p.tolist(),
                         "actual_weights": (q * 7.5).tolist(),
                         "js": float(jensenshannon(p, q * 7.5, base=2) ** 2)})
    write("js", js_cases)


# ---------------------------------------------------------------------------------------
# Two-sample: KS (statistic + scipy's asymptotic p-value) and Wasserstein, same inputs


def gen_two_sample(rng: np.random.Generator) -> None:
    cases = []

    def add(name, a, b):
        fa, fb = finite(a), finite(b)
        if fa.size == 0 or fb.size == 0:
            cases.append({"name": name, "a": enc(a), "b": enc(b), "ks_statistic": None,
                          "ks_pvalue": None, "ks_pvalue_mlmon": None, "wasserstein": None})
            return
        with np.errstate(divide="ignore", invalid="ignore"):  # n1 = n2 = 1 -> NaN
            r = stats.ks_2samp(fa, fb, method="asymp")
        p = num(r.pvalue)
        cases.append({"name": name, "a": enc(a), "b": enc(b),
                      "ks_statistic": float(r.statistic), "ks_pvalue": p,
                      "ks_pvalue_mlmon": p if p is not None else 1.0,
                      "wasserstein": float(stats.wasserstein_distance(fa, fb))})

    add("tiny_1_vs_1", [1.0], [2.0])
    add("tiny_1_vs_1_equal", [1.0], [1.0])
    add("tiny_1_vs_3", [0.5], [0.1, 0.7, 2.0])
    add("tiny_2_vs_3", [1.0, 2.0], [1.5, 2.5, 3.5])
    add("tiny_3_vs_3_ties", [1.0, 1.0, 2.0], [1.0, 2.0, 2.0])
    add("tiny_3_vs_2_disjoint", [1.0, 2.0, 3.0], [10.0, 11.0])
    add("ties_integers", rng.integers(0, 5, 300), rng.integers(0, 6, 200))
    add("ties_heavy", rng.integers(0, 2, 1000), rng.integers(0, 2, 1000))
    add("identical", np.arange(100.0), np.arange(100.0))
    add("constant_vs_constant", np.full(50, 3.0), np.full(70, 3.0))
    add("constant_vs_shifted_constant", np.full(50, 3.0), np.full(70, 4.0))
    add("normal_same_500", rng.normal(size=500), rng.normal(size=500))
    add("normal_shift_small", rng.normal(size=400), rng.normal(0.2, 1, 300))
    add("normal_scale", rng.normal(size=1000), rng.normal(0, 2, 800))
    add("widely_shifted", rng.normal(size=300), rng.normal(100, 1, 200))
    add("large_5000_vs_5000_same", rng.normal(size=5000), rng.normal(size=5000))
    add("large_5000_vs_5000_shift", rng.normal(size=5000), rng.normal(0.05, 1, 5000))
    add("large_5000_vs_120", rng.lognormal(size=5000), rng.lognormal(0.3, 1, 120))
    add("unequal_7_vs_5000", rng.normal(size=7), rng.normal(size=5000))
    add("with_nan_and_inf", np.concatenate([rng.normal(size=60), [np.nan, np.inf]]),
        np.concatenate([[np.nan, -np.inf], rng.normal(0.5, 1, 40)]))
    add("empty_a", [], [1.0, 2.0])
    add("empty_b", [1.0], [])
    add("all_nan_a", [np.nan, np.nan], [1.0])
    add("large_offset", 1e9 + rng.normal(0, 1, 200), 1e9 + rng.normal(0.5, 1, 150))
    for i in range(30):
        n1 = int(rng.integers(1, 60))
        n2 = int(rng.integers(1, 60))
        add(f"random_small_{i}_{n1}x{n2}", np.round(rng.normal(0, 1, n1), 1),
            np.round(rng.normal(rng.uniform(-1, 1), 1, n2), 1))
    write("two_sample", cases)


def gen_kstwo(rng: np.random.Generator) -> None:
    """kstwo.sf(d, n) over n = 1 .. 2e6 and d across every branch of scipy's algorithm,
    plus ks p-values from (d, n1, n2) triples."""
    cases = []
    ns = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 33, 50, 75, 100, 120, 139, 140, 141,
          150, 200, 300, 500, 750, 1000, 1500, 2500, 4000, 5000, 10000, 30000, 99999,
          100000, 100001, 300000, 1000000, 1000001, 2000000]
    nxsq = [0.05, 0.2, 0.5, 0.7, 0.754, 0.755, 1.0, 1.5, 2.0, 2.19, 2.21, 3.0, 3.9, 4.0,
            4.1, 6.0, 10.0, 17.9, 18.1, 50.0, 200.0, 369.0, 371.0]
    for n in ns:
        ds = set()
        for c in nxsq:
            ds.add(math.sqrt(c / n))
        for t in [0.5, 0.51, 0.75, 0.99, 1.0, 1.01, 1.5, 2.0, 3.0, n - 1.01, n - 1.0, n - 0.5]:
            ds.add(t / n)
        for c in [0.8, 1.0, 1.3, 1.4, 1.5]:  # n * d**1.5 around 1.4
            ds.add((c / n) ** (2.0 / 3.0))
        ds.update([0.25, 0.4999, 0.5, 0.6, 0.9, 0.999])
        ds.update(rng.uniform(0, 1, 6).tolist())
        ds.update((rng.uniform(0.3, 2.5, 6) / math.sqrt(n)).tolist())
        for d in sorted(ds):
            if not (0.0 <= d <= 1.0):
                continue
            cases.append({"n": n, "d": d, "sf": float(stats.kstwo.sf(d, n))})
    write("kstwo", cases)

    # p-values of ks_2samp(method='asymp') straight from (D, n1, n2): D is always a
    # difference of ECDF steps i/n1 - j/n2, so sample such D values.
    pv = []
    sizes = [(1, 1), (1, 2), (2, 2), (1, 5), (3, 3), (3, 4), (5, 5), (10, 7), (20, 20),
             (50, 49), (100, 3), (280, 280), (282, 282), (500, 5000), (5000, 5000),
             (5000, 10), (10000, 10000), (200000, 200000), (2000000, 2000000),
             (1000000, 50)]
    for n1, n2 in sizes:
        for _ in range(12):
            i = int(rng.integers(0, n1 + 1))
            j = int(rng.integers(0, n2 + 1))
            d = abs(i / n1 - j / n2)
            # Bias half of the draws towards the interesting small-D region.
            if rng.uniform() < 0.5:
                scale = rng.uniform(0.2, 2.5) * math.sqrt((n1 + n2) / (n1 * n2))
                j2 = int(round((i / n1 - min(scale, 1.0)) * n2))
                j2 = min(max(j2, 0), n2)
                d = abs(i / n1 - j2 / n2)
            # scipy's ks_2samp(method='asymp') two-sided branch, verbatim in numpy terms.
            m, n = sorted([float(n1), float(n2)], reverse=True)
            en = np.round(m * n / (m + n))
            sf = float(stats.kstwo.sf(d, en)) if en >= 1 else float("nan")  # scipy: NaN
            pv.append({"n1": n1, "n2": n2, "d": d, "pvalue": num(sf),
                       "pvalue_mlmon": num(sf) if math.isfinite(sf) else 1.0})
    write("ks_pvalue", pv)


# ---------------------------------------------------------------------------------------
# chi-square goodness of fit and categorical alignment


def chi2_case(name, observed, expected) -> dict:
    """scipy.stats.chisquare over the categories that occur (baseline proportion > 0 or
    window count > 0); a category with neither adds no term and no degree of freedom
    (f_exp 0 in the fixture). Occurring proportions are floored at 1e-4, renormalised."""
    observed = [int(o) for o in observed]
    e = np.asarray(expected, float)
    o = np.asarray(observed, float)
    mask = (o > 0) | (e != 0)
    n = sum(observed)
    none = {"name": name, "observed": observed, "expected": list(map(float, expected)),
            "f_exp": None, "statistic": None, "pvalue": None, "dof": None}
    if n == 0 or int(mask.sum()) < 2:
        return none
    p = np.where(mask, np.maximum(e, PSI_FLOOR), 0.0)
    p = p / p.sum()
    f_exp = p * n
    r = stats.chisquare(o[mask], f_exp[mask])
    return {"name": name, "observed": observed, "expected": list(map(float, expected)),
            "f_exp": f_exp.tolist(), "statistic": float(r.statistic),
            "pvalue": float(r.pvalue), "dof": int(mask.sum()) - 1}


def gen_chi2(rng: np.random.Generator) -> None:
    cases = []
    cases.append(chi2_case("perfect_fit", [25, 25, 50], [0.25, 0.25, 0.5]))
    cases.append(chi2_case("mild", [30, 20, 50], [0.25, 0.25, 0.5]))
    cases.append(chi2_case("strong", [80, 10, 10], [0.25, 0.25, 0.5]))
    cases.append(chi2_case("unseen_other", [50, 45, 5], [0.6, 0.4, 0.0]))
    cases.append(chi2_case("zero_expected_zero_observed", [50, 50, 0], [0.5, 0.5, 0.0]))
    cases.append(chi2_case("tiny_window_1", [1, 0, 0], [0.2, 0.3, 0.5]))
    cases.append(chi2_case("tiny_window_2", [0, 2], [0.9, 0.1]))
    cases.append(chi2_case("empty_window", [0, 0, 0], [0.2, 0.3, 0.5]))
    cases.append(chi2_case("single_category", [10], [1.0]))
    cases.append(chi2_case("huge_statistic", [0, 100000], [0.999, 0.001]))
    # An empty zero-expected category (the drift engine's `__other__`) anywhere in the
    # vector adds no term and no degree of freedom: identical data gives p = 1.
    cases.append(chi2_case("identical_50_50_empty_other", [50, 50, 0], [0.5, 0.5, 0.0]))
    cases.append(chi2_case("empty_zero_category_in_the_middle", [30, 0, 70], [0.3, 0.0, 0.7]))
    cases.append(chi2_case("baseline_category_absent_from_window", [100, 0, 0],
                           [0.5, 0.5, 0.0]))
    cases.append(chi2_case("one_occurring_category", [10, 0], [1.0, 0.0]))
    for i in range(12):
        k = int(rng.integers(2, 40))
        p = rng.dirichlet(np.ones(k) * rng.uniform(0.2, 3))
        n = int(rng.choice([5, 50, 500, 5000, 100000]))
        q = p if i % 3 == 0 else rng.dirichlet(np.ones(k))
        cases.append(chi2_case(f"random_{i}_k{k}_n{n}", rng.multinomial(n, q), p))
    write("chi2", cases, floor=PSI_FLOOR)


def gen_categorical(rng: np.random.Generator) -> None:
    """Alignment (independently re-implemented here) + PSI / JS / chi-square on it."""
    cases = []

    def add(name, baseline: list, window: list):
        labels = []
        expected = {}
        other_p, has_other = 0.0, False
        for lab, p in baseline:
            if lab == "__other__":
                other_p += p
                has_other = True
                continue
            if lab not in expected:
                labels.append(lab)
                expected[lab] = 0.0
            expected[lab] += p
        observed = {lab: 0 for lab in labels}
        other_n = 0
        for lab, c in window:
            if lab in observed:
                observed[lab] += c
            else:
                other_n += c
        e = [expected[lab] for lab in labels]
        o = [observed[lab] for lab in labels]
        if has_other or other_n > 0:
            labels.append("__other__")
            e.append(other_p)
            o.append(other_n)
        total = sum(o)
        psi_v = np_psi(e, np.asarray(o, float) / total) if total else None
        js_v = float(jensenshannon(e, o, base=2) ** 2) if total else None
        c = chi2_case(name, o, e)
        cases.append({"name": name, "baseline": baseline, "window": window,
                      "labels": labels, "expected": e, "observed": o, "psi": psi_v,
                      "js": js_v, "chi2_statistic": c["statistic"], "chi2_pvalue": c["pvalue"]})

    add("same_mix", [["a", 0.5], ["b", 0.3], ["c", 0.2]], [["a", 52], ["b", 29], ["c", 19]])
    add("shifted_mix", [["a", 0.5], ["b", 0.3], ["c", 0.2]], [["a", 10], ["b", 30], ["c", 60]])
    add("unseen_values", [["a", 0.5], ["b", 0.5]], [["a", 40], ["zz", 5], ["b", 40], ["yy", 15]])
    add("baseline_other", [["a", 0.6], ["b", 0.3], ["__other__", 0.1]],
        [["a", 55], ["new", 12], ["b", 30], ["__other__", 3]])
    add("missing_category_in_window", [["a", 0.7], ["b", 0.2], ["c", 0.1]], [["a", 9]])
    add("empty_window", [["a", 0.7], ["b", 0.3]], [])
    add("only_unseen", [["a", 0.7], ["b", 0.3]], [["q", 4]])
    labels = [f"cat{i}" for i in range(25)]
    p = rng.dirichlet(np.ones(25))
    w = rng.multinomial(3000, rng.dirichlet(np.ones(25) * 5))
    add("many_categories", [[lab, float(x)] for lab, x in zip(labels, p)],
        [[lab, int(c)] for lab, c in zip(labels, w) if c > 0] + [["unseen", 7]])
    write("categorical", cases, floor=PSI_FLOOR)


# ---------------------------------------------------------------------------------------
# Adaptive thresholds: empirical no-drift PSI quantiles by simulation


def gen_adaptive(rng: np.random.Generator) -> None:
    reps = 200_000
    cases = []
    configs = [
        ("uniform10", np.full(10, 0.1)),
        ("uniform5", np.full(5, 0.2)),
        ("uniform20", np.full(20, 0.05)),
        ("uniform2", np.array([0.5, 0.5])),
        ("skewed4", np.array([0.5, 0.3, 0.15, 0.05])),
        ("categorical8", np.array([0.4, 0.2, 0.12, 0.1, 0.08, 0.05, 0.03, 0.02])),
    ]
    for name, p in configs:
        for n in [50, 100, 200, 500, 1000, 5000]:
            for baseline_n in [None, 5000]:
                a = rng.multinomial(n, p, size=reps) / n
                e = (rng.multinomial(baseline_n, p, size=reps) / baseline_n
                     if baseline_n else np.broadcast_to(p, a.shape))
                ef = np.maximum(e, PSI_FLOOR)
                af = np.maximum(a, PSI_FLOOR)
                v = np.sum((af - ef) * np.log(af / ef), axis=1)
                q99, q999 = np.quantile(v, [0.99, 0.999])
                cases.append({"name": f"{name}_n{n}_N{baseline_n}", "expected": p.tolist(),
                              "window_n": n, "baseline_n": baseline_n, "reps": reps,
                              "min_expected_count": float(n * p.min()),
                              "q99": float(q99), "q999": float(q999)})
    write("adaptive", cases)


def gen_offline_drift(rng: np.random.Generator) -> None:
    """`mlmon drift` on all rows: a 4 000-row baseline file (its reference sample holds every
    value) and a 12 000-row batch (more than the 5 000-value live reservoir). KS and
    Wasserstein of all batch rows against the reference equal scipy's."""
    base_x = np.round(rng.normal(50.0, 10.0, 4000), 1)
    batch_x = np.round(rng.normal(52.0, 11.0, 12000), 1)
    base_w = np.round(rng.lognormal(1.0, 0.5, 4000), 2)
    batch_w = np.round(rng.lognormal(1.05, 0.5, 12000), 2)
    for name, cols in (("offline_baseline", (base_x, base_w)), ("offline_batch", (batch_x, batch_w))):
        lines = ["x,w"] + [f"{a!r},{b!r}" for a, b in zip(*(c.tolist() for c in cols))]
        (OUT / f"{name}.csv").write_text("\n".join(lines) + "\n")
    cases = []
    for col, base, batch in (("x", base_x, batch_x), ("w", base_w, batch_w)):
        r = stats.ks_2samp(batch, base, method="asymp")
        cases.append({"name": col, "feature": col, "window_count": int(batch.size),
                      "ks_statistic": float(r.statistic), "ks_pvalue": float(r.pvalue),
                      "wasserstein": float(stats.wasserstein_distance(batch, base))})
    write("offline_drift", cases, baseline="offline_baseline.csv", batch="offline_batch.csv")


def main() -> int:
    gen_bins(np.random.default_rng(1))
    gen_quantile_edges(np.random.default_rng(2))
    gen_quantiles(np.random.default_rng(3))
    gen_psi_js(np.random.default_rng(4))
    gen_two_sample(np.random.default_rng(5))
    gen_kstwo(np.random.default_rng(6))
    gen_chi2(np.random.default_rng(7))
    gen_categorical(np.random.default_rng(8))
    gen_adaptive(np.random.default_rng(9))
    gen_offline_drift(np.random.default_rng(10))
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
