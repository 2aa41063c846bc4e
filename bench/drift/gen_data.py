#!/usr/bin/env python3
"""Generates the reference and drifted CSVs of the drift benchmark (bench/drift/run.py).

Both files have the same columns (20) and, by default, 1,000,000 rows each:

- `num_00` … `num_15`: numeric features cycling through four shapes (normal, log-normal,
  uniform, Poisson counts with many ties); `num_01` has 1 % empty cells (missing);
- `cat_0` (4 values), `cat_1` (12 values), `cat_2` (50 values): categorical text;
- `prediction`: a probability computed from some of the features (the model's output).

`current.csv` is a drifted batch: `num_00` shifted by half a standard deviation, `num_04`
widened by 1.5x, `num_09` (log-normal) with a heavier tail, `cat_0` re-weighted, `cat_1`
with a value the reference never had, and the prediction moving as a consequence; the
other columns keep their distribution (fresh draws). Seeded: the same arguments and numpy
version give the same data.

Needs numpy and pandas (the benchmark venv has them through evidently).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC = 16
CATS = {"cat_0": 4, "cat_1": 12, "cat_2": 50}


def frame(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(NUMERIC):
        shape = i % 4
        if shape == 0:
            x = rng.normal(loc=i, scale=1.0 + i / 10, size=rows)
            if drifted and i == 0:
                x += 0.5 * (1.0 + i / 10)
            if drifted and i == 4:
                x = i + (x - i) * 1.5
        elif shape == 1:
            sigma = 0.5 + (0.3 if drifted and i == 9 else 0.0)
            x = rng.lognormal(mean=1.0, sigma=sigma, size=rows)
        elif shape == 2:
            x = rng.uniform(-i, i, size=rows)
        else:
            x = rng.poisson(lam=3 + i / 4, size=rows).astype(np.float64)
        if i == 1:
            x[rng.random(rows) < 0.01] = np.nan
        cols[f"num_{i:02d}"] = x
    for name, k in CATS.items():
        weights = 1.0 / np.arange(1, k + 1)
        values = [f"{name}_v{j:02d}" for j in range(k)]
        if drifted and name == "cat_0":
            weights = weights[::-1].copy()
        if drifted and name == "cat_1":
            values.append(f"{name}_new")
            weights = np.append(weights, weights.sum() * 0.1)
        weights = weights / weights.sum()
        cols[name] = np.asarray(values, dtype=object)[rng.choice(len(values), size=rows, p=weights)]
    z = 0.8 * (cols["num_00"] - 0.0) - 0.3 * (cols["num_04"] - 4.0) / 1.4 + 0.2 * np.log(cols["num_05"])
    cols["prediction"] = 1.0 / (1.0 + np.exp(-z))
    return pd.DataFrame(cols)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows per file")
    p.add_argument("--current-rows", type=int, default=None,
                   help="rows of current.csv (default: --rows)")
    p.add_argument("--out", type=Path, required=True, help="directory for reference.csv and current.csv")
    args = p.parse_args()
    if not 1 <= args.rows <= 50_000_000:
        p.error(f"--rows {args.rows} is outside 1..50000000")
    current_rows = args.rows if args.current_rows is None else args.current_rows
    if not 1 <= current_rows <= 50_000_000:
        p.error(f"--current-rows {current_rows} is outside 1..50000000")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, seed, drifted, rows in [("reference.csv", 11, False, args.rows),
                                      ("current.csv", 12, True, current_rows)]:
        path = args.out / name
        tmp = path.with_suffix(".csv.tmp")
        frame(rows, seed, drifted).to_csv(tmp, index=False, float_format="%.6g")
        tmp.replace(path)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
