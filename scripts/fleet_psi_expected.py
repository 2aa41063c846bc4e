#!/usr/bin/env python3
"""Expected values for the fleet-wide PSI / JS recording rules, computed with scipy.

The recording rules in prometheus/rules/mlmon-recording.yml pool the per-bin counters
of every replica and compare them with the baseline proportions in PromQL. This script
holds an explicit multi-replica scenario (per-minute counter increments per replica and
bin, baseline proportions per bin), computes the fleet PSI and JS independently with
numpy/scipy, and writes the `promtool test rules` file that feeds the same scenario to
Prometheus and expects these numbers:

    python3 scripts/fleet_psi_expected.py --write   # regenerate prometheus/tests/fleet-drift.test.yml
    python3 scripts/fleet_psi_expected.py --check   # exit 1 if the committed file differs
    python3 scripts/fleet_psi_expected.py           # print the expected values

Definitions (SPEC section 5):
  PSI = sum (a_i - e_i) * ln(a_i / e_i), proportions below 1e-4 set to 1e-4
  JS  = scipy.spatial.distance.jensenshannon(a, e, base=2) ** 2   (no floor)

promtool 2.42 compares samples exactly, so the test asks for round(x * 1e9), an integer
that Go and Python agree on unless x * 1e9 lies within 1e-3 of a .5 boundary, which this
script refuses.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy.spatial.distance import jensenshannon

FLOOR = 1e-4
WINDOW_MINUTES = 15
EVAL_MINUTES = 20
SERIES_MINUTES = 30
SCALE = 1e9

REPO = Path(__file__).resolve().parent.parent
TEST_FILE = REPO / "prometheus" / "tests" / "fleet-drift.test.yml"

# (job, model, feature, kind) -> {"baseline": {bin: e_i}, "replicas": {instance: {bin: per-minute increment}}}
# A bin missing from a replica's dict means that replica never created the counter.
SCENARIO: dict[tuple[str, str, str, str], dict] = {
    # Numeric feature over five baseline bins. Bin "3" is never hit (a = 0, floored);
    # bin "4" has no counter on any replica (filled from the baseline); bin "1" exists
    # on one replica only. The second replica runs with `drift.fleet_bins: counts`: it
    # exports no baseline ratios, the first one's (`full`) are enough.
    ("mlmon", "fraud", "amount", "input"): {
        "baseline": {"0": 0.1, "1": 0.2, "2": 0.3, "3": 0.3, "4": 0.1},
        "replicas": {
            "10.0.0.1:9464": {"0": 20, "1": 30, "2": 50, "3": 0},
            "10.0.0.2:9464": {"0": 10, "2": 40, "3": 0},
        },
        "counts_only": ["10.0.0.2:9464"],
    },
    # Categorical feature: `__other__` (unseen values) is observed but is not a baseline
    # category (e = 0, floored for PSI); `store` is in the baseline but never seen (a = 0).
    ("mlmon", "fraud", "channel", "input"): {
        "baseline": {"web": 0.5, "app": 0.3, "store": 0.2},
        "replicas": {
            "10.0.0.1:9464": {"web": 10, "app": 10, "__other__": 20},
            "10.0.0.2:9464": {"web": 0, "store": 0},
        },
    },
    # Output drift with a live distribution equal to the baseline: PSI = JS = 0.
    ("mlmon", "fraud", "prediction", "output"): {
        "baseline": {"0": 0.25, "1": 0.75},
        "replicas": {
            "10.0.0.1:9464": {"0": 10, "1": 20},
            "10.0.0.2:9464": {"0": 0, "1": 10},
        },
    },
    # No traffic in the window: no PSI/JS series at all.
    ("mlmon", "fraud", "idle", "input"): {
        "baseline": {"0": 0.5, "1": 0.5},
        "replicas": {
            "10.0.0.1:9464": {"0": 0, "1": 0},
        },
    },
    # Same model and feature name in another deployment (job): must not be pooled with
    # the first one. Its live distribution equals its baseline.
    ("mlmon-canary", "fraud", "amount", "input"): {
        "baseline": {"0": 0.1, "1": 0.2, "2": 0.3, "3": 0.3, "4": 0.1},
        "replicas": {
            "10.0.1.1:9464": {"0": 1, "1": 2, "2": 3, "3": 3, "4": 1},
        },
    },
}


def proportions(spec: dict) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    """Bins (baseline union observed), live a_i, baseline e_i, total window count."""
    bins = list(spec["baseline"])
    for counts in spec["replicas"].values():
        for b in counts:
            if b not in bins:
                bins.append(b)
    counts = np.array(
        [sum(r.get(b, 0) for r in spec["replicas"].values()) * WINDOW_MINUTES for b in bins],
        dtype=float,
    )
    total = float(counts.sum())
    a = counts / total if total > 0 else counts
    e = np.array([spec["baseline"].get(b, 0.0) for b in bins], dtype=float)
    return bins, a, e, total


def psi(a: np.ndarray, e: np.ndarray) -> float:
    """Population stability index with the 1e-4 floor of the sidecar."""
    fa = np.maximum(a, FLOOR)
    fe = np.maximum(e, FLOOR)
    return float(np.sum((fa - fe) * np.log(fa / fe)))


def js(a: np.ndarray, e: np.ndarray) -> float:
    """Jensen-Shannon divergence, base 2, without floor (scipy)."""
    return float(jensenshannon(a, e, base=2) ** 2)


def scaled(x: float) -> int:
    """round(x * 1e9), refusing values too close to a rounding boundary."""
    y = x * SCALE
    frac = y - math.floor(y)
    if abs(frac - 0.5) < 1e-3:
        raise SystemExit(f"value {x!r} is too close to a rounding boundary; change the scenario")
    return int(math.floor(y + 0.5))


def labels(job: str, model: str, feature: str, kind: str, **extra: str) -> str:
    pairs = {"job": job, "model": model, "feature": feature, "kind": kind, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def expected() -> dict[str, list[tuple[str, int]]]:
    """expr -> [(labels, value)] for every checked expression."""
    out: dict[str, list[tuple[str, int]]] = {
        "round(mlmon:feature_observations:fleet15m)": [],
        "round(mlmon:feature_psi:fleet15m * 1e9)": [],
        "round(mlmon:feature_js_divergence:fleet15m * 1e9)": [],
        'round(mlmon:feature_bin_ratio:fleet15m{feature="channel"} * 1e9)': [],
        'round(mlmon:baseline_bin_ratio:fleet15m{feature="channel"} * 1e9)': [],
        'round(mlmon:feature_bin_ratio:fleet15m{job="mlmon",feature="amount"} * 1e9)': [],
    }
    for (job, model, feature, kind), spec in SCENARIO.items():
        bins, a, e, total = proportions(spec)
        out["round(mlmon:feature_observations:fleet15m)"].append(
            (labels(job, model, feature, kind), int(round(total)))
        )
        if total == 0:
            continue
        out["round(mlmon:feature_psi:fleet15m * 1e9)"].append((labels(job, model, feature, kind), scaled(psi(a, e))))
        out["round(mlmon:feature_js_divergence:fleet15m * 1e9)"].append(
            (labels(job, model, feature, kind), scaled(js(a, e)))
        )
        if feature == "channel":
            for b, ai, ei in zip(bins, a, e):
                lab = labels(job, model, feature, kind, bin=b)
                out['round(mlmon:feature_bin_ratio:fleet15m{feature="channel"} * 1e9)'].append((lab, scaled(ai)))
                out['round(mlmon:baseline_bin_ratio:fleet15m{feature="channel"} * 1e9)'].append((lab, scaled(ei)))
        if job == "mlmon" and feature == "amount":
            for b, ai in zip(bins, a):
                out['round(mlmon:feature_bin_ratio:fleet15m{job="mlmon",feature="amount"} * 1e9)'].append(
                    (labels(job, model, feature, kind, bin=b), scaled(ai))
                )
    return out


def render() -> str:
    lines = [
        "# GENERATED by scripts/fleet_psi_expected.py from its SCENARIO; do not edit by hand.",
        "# Expected values are scipy's PSI (1e-4 floor) and jensenshannon(a, e, base=2)**2,",
        f"# scaled by 1e9 and rounded (promtool compares exactly). Window {WINDOW_MINUTES}m, evaluated at {EVAL_MINUTES}m.",
        "rule_files:",
        "  - ../rules/mlmon-recording.yml",
        "evaluation_interval: 1m",
        "tests:",
        "  - interval: 1m",
        "    input_series:",
    ]
    for (job, model, feature, kind), spec in SCENARIO.items():
        for instance, counts in spec["replicas"].items():
            for b, per_min in counts.items():
                start = 7 if per_min == 0 else 0  # a flat counter need not start at 0
                series = labels(job, model, feature, kind, bin=b, instance=instance)
                lines.append(f"      - series: 'mlmon_feature_bin_observations_total{series}'")
                lines.append(f"        values: '{start}+{per_min}x{SERIES_MINUTES}'")
            if instance in spec.get("counts_only", []):
                continue
            for b, ratio in spec["baseline"].items():
                series = labels(job, model, feature, kind, bin=b, instance=instance)
                lines.append(f"      - series: 'mlmon_baseline_bin_ratio{series}'")
                lines.append(f"        values: '{ratio}x{SERIES_MINUTES}'")
    lines.append("    promql_expr_test:")
    for expr, samples in expected().items():
        lines.append(f"      - expr: '{expr}'")
        lines.append(f"        eval_time: {EVAL_MINUTES}m")
        lines.append("        exp_samples:")
        for lab, value in samples:
            lines.append(f"          - labels: '{lab}'")
            lines.append(f"            value: {value}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {TEST_FILE.relative_to(REPO)}")
    group.add_argument("--check", action="store_true", help="fail if the committed test file is out of date")
    args = parser.parse_args()
    text = render()
    if args.write:
        TEST_FILE.write_text(text)
        print(f"wrote {TEST_FILE}")
        return 0
    if args.check:
        if not TEST_FILE.exists() or TEST_FILE.read_text() != text:
            print(f"{TEST_FILE} is out of date: run scripts/fleet_psi_expected.py --write", file=sys.stderr)
            return 1
        return 0
    for (job, model, feature, kind), spec in SCENARIO.items():
        bins, a, e, total = proportions(spec)
        if total == 0:
            print(f"{job}/{model}/{feature}/{kind}: no observations")
            continue
        print(f"{job}/{model}/{feature}/{kind}: n={total:.0f} bins={bins} a={a.tolist()} e={e.tolist()} "
              f"PSI={psi(a, e):.12f} JS={js(a, e):.12f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
