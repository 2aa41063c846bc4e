#!/usr/bin/env python3
"""Fixtures for the baseline snapshot tests (src/baseline/tests.rs).

Writes into tests/fixtures/baseline/:
  data.csv, data.jsonl, data.parquet (snappy), data_zstd.parquet,
  data_gzip.parquet, data_lz4.parquet
      the same 2000-row table in each format (missing values spelled
      differently per format, a nested column in the Parquet files only);
  expected.json
      what a baseline of that table must contain, computed independently
      with numpy/pandas: counts, missing ratios, mean, std (ddof=1),
      min, max, quantiles (numpy 'linear'), quantile bin edges and
      bin proportions, category proportions (also with a cap of 3);
  python_snapshot.json
      a snapshot produced by `snapshot_from_dataframe` below, the example
      of docs/baseline.md for users who build snapshots in their own
      pipeline; the Rust tests load it and check it against the schema.

With --big PATH it instead writes a 1,000,000-row, 20-column CSV for the
build benchmark (not committed).

Usage:
  python scripts/gen/baseline.py            # regenerate fixtures
  python scripts/gen/baseline.py --big /tmp/big.csv [--rows N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
from datetime import date, datetime, timezone

# Same OpenBLAS kernels on every x86-64 machine (AVX2): the default picks them per CPU, and
# linear algebra then differs in the last bits between, say, AMD and Intel AVX-512 hosts.
os.environ["OPENBLAS_CORETYPE"] = "Haswell"
# numpy's own SIMD loops differ in the last bits between AVX2 and AVX-512 hosts: AVX2 everywhere.
os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# Output root: the repository, or $MLMON_GEN_ROOT (`make check-generated` writes to a temp dir).
ROOT = os.environ.get("MLMON_GEN_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "baseline")
N = 2000
BINS = 10
QUANTILES = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}


def make_table(rng: np.random.Generator) -> dict:
    """The fixture table as Python values (None = missing)."""
    n = N
    age = rng.integers(18, 91, n).astype(float)
    age[rng.random(n) < 0.03] = np.nan
    income = rng.lognormal(10.0, 0.8, n)
    income[rng.random(n) < 0.01] = np.nan
    score = np.round(rng.normal(0.0, 1.0, n), 1)  # many ties
    constant = np.full(n, 7.0)
    flag = rng.random(n) < 0.3  # a boolean column: one categorical type in every format
    countries = ["US", "DE", "FR", "GB", "IN", "Korea, Republic of", "JP"]
    country = list(rng.choice(countries, n, p=[0.40, 0.20, 0.15, 0.10, 0.07, 0.05, 0.03]))
    for i in np.nonzero(rng.random(n) < 0.02)[0]:
        country[i] = None
    zips = ["10115", "20095", "80331", "50667", "01067"]
    zip_ = list(rng.choice(zips, n))
    # Numbers for 1500 rows, then text appears: pass 1 must switch the
    # column to categorical after having counted it as numeric.
    mixed = [str(v) for v in rng.integers(1, 6, 1500)] + list(rng.choice(["1", "2", "x", "y"], n - 1500))
    early_text = list(rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]))
    days = [date(2024, 1, d) for d in rng.integers(1, 6, n)]
    pred = rng.random(n)
    label = (rng.random(n) < pred).astype(float)
    dropme = [f"id-{i}" for i in range(n)]
    return {
        "age": age,
        "income": income,
        "score": score,
        "constant": constant,
        "flag": flag,
        "country": country,
        "zip": zip_,
        "mixed": mixed,
        "early_text": early_text,
        "day": days,
        "all_missing": np.full(n, np.nan),
        "pred": pred,
        "label": label,
        "dropme": dropme,
    }


NUMERIC = ["age", "income", "score", "constant", "all_missing", "pred", "label"]
CATEGORICAL = ["country", "zip", "mixed", "early_text", "day", "flag"]
# CSV spellings of booleans, cycled by row: pandas writes True/False, other tools true/TRUE.
CSV_BOOL = [("True", "False"), ("true", "false"), ("TRUE", "FALSE")]


def fmt_float(v: float) -> str:
    """Shortest round-trip text of a float, integers without '.0'."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def write_csv(t: dict, path: str) -> None:
    # Missing values spelled in several of pandas' NA spellings.
    na_spellings = {"age": "", "income": "NA", "score": "nan", "all_missing": "", "country": ""}
    cols = list(t)
    lines = [",".join(cols)]
    for i in range(N):
        cells = []
        for c in cols:
            v = t[c][i]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append(na_spellings.get(c, ""))
            elif c in NUMERIC:
                cells.append(fmt_float(v))
            elif isinstance(v, (bool, np.bool_)):
                cells.append(CSV_BOOL[i % 3][0 if v else 1])
            elif isinstance(v, date):
                cells.append(v.isoformat())
            else:
                s = str(v)
                cells.append(f'"{s}"' if "," in s else s)
        lines.append(",".join(cells))
    with open(path, "w", newline="") as f:
        f.write("\n".join(lines) + "\n")


def write_jsonl(t: dict, path: str) -> None:
    with open(path, "w") as f:
        for i in range(N):
            obj = {}
            for c in t:
                v = t[c][i]
                missing = v is None or (isinstance(v, float) and math.isnan(v))
                if missing:
                    # Alternate between null and an absent key.
                    if i % 2 == 0:
                        obj[c] = None
                    continue
                if c in NUMERIC:
                    obj[c] = int(v) if float(v).is_integer() else float(v)
                elif c == "mixed":
                    # Numbers as JSON numbers, text as strings.
                    obj[c] = int(v) if v.isdigit() else v
                elif isinstance(v, (bool, np.bool_)):
                    obj[c] = bool(v)  # JSON true/false
                elif isinstance(v, date):
                    obj[c] = v.isoformat()
                else:
                    obj[c] = str(v)
            f.write(json.dumps(obj) + "\n")
            if i == 10:
                f.write("\n")  # blank lines are skipped


def write_parquet(t: dict, path: str, compression: str) -> None:
    df = pd.DataFrame(
        {
            "age": pd.array([None if math.isnan(v) else int(v) for v in t["age"]], dtype="Int64"),
            "income": t["income"],
            "score": t["score"],
            "constant": t["constant"],
            "flag": t["flag"].astype(bool),
            "country": pd.array(t["country"], dtype="string"),
            "zip": t["zip"],
            "mixed": t["mixed"],
            "early_text": pd.Categorical(t["early_text"]),
            "day": t["day"],
            "all_missing": t["all_missing"],
            "pred": t["pred"],
            "label": t["label"].astype(np.int64),
            "dropme": t["dropme"],
        }
    )
    table = pa.Table.from_pandas(df, preserve_index=False)
    day_idx = table.schema.get_field_index("day")
    table = table.set_column(day_idx, "day", pa.array(t["day"], type=pa.date32()))
    tags = pa.array([["t1", "t2"][: i % 3] for i in range(N)], type=pa.list_(pa.string()))
    table = table.append_column("tags", tags)  # nested: skipped by the reader
    pq.write_table(table, path, compression=compression, row_group_size=700)


def numeric_expectation(values: np.ndarray, n_rows: int) -> dict:
    v = values[~np.isnan(values)]
    out = {"type": "numeric", "count": int(v.size), "missing_ratio": float(1 - v.size / n_rows)}
    if v.size == 0:
        return out
    out.update(
        mean=float(np.mean(v)),
        std=float(np.std(v, ddof=1)) if v.size >= 2 else None,
        min=float(np.min(v)),
        max=float(np.max(v)),
        quantiles={k: float(np.quantile(v, q)) for k, q in QUANTILES.items()},
    )
    edges = np.unique(np.quantile(v, np.arange(1, BINS) / BINS))
    # Bin i holds edges[i-1] < x <= edges[i]: searchsorted side='left'.
    idx = np.searchsorted(edges, v, side="left")
    out["edges"] = [float(e) for e in edges]
    out["proportions"] = [float(p) for p in np.bincount(idx, minlength=edges.size + 1) / v.size]
    return out


def canonical_key(s: str) -> str:
    """The documented category key: text that is a number becomes the
    number's shortest decimal form ("01067" -> "1067"); booleans, and text equal
    to true/false in any case, become "true" / "false"."""
    if s.strip().lower() in ("true", "false"):
        return s.strip().lower()
    try:
        f = float(s)
    except ValueError:
        return s
    return fmt_float(f)


def categorical_expectation(values: list, n_rows: int) -> dict:
    s = pd.Series([None if v is None else canonical_key(str(v)) for v in values], dtype="object")
    present = s.dropna()
    counts = present.value_counts()
    out = {
        "type": "categorical",
        "count": int(present.size),
        "missing_ratio": float(s.isna().mean()),
        "distinct": int(counts.size),
        "categories": {str(k): float(c / present.size) for k, c in counts.items()},
    }
    if counts.size > 3:
        top = counts.iloc[:3]
        assert counts.iloc[2] != counts.iloc[3], "tie at the cap boundary; change the seed"
        capped = {str(k): float(c / present.size) for k, c in top.items()}
        capped["__other__"] = float(counts.iloc[3:].sum() / present.size)
        out["categories_cap3"] = capped
    return out


def snapshot_from_dataframe(
    df: pd.DataFrame,
    model: str,
    prediction: str | None = None,
    target: str | None = None,
    bins: int = 10,
    sample_size: int = 5000,
    seed: int = 0,
    created_at: str | None = None,
) -> dict:
    """A format_version 1 baseline snapshot of a DataFrame (docs/baseline.md).

    Numeric columns get stats, quantile bins and a reference sample;
    everything else is categorical.
    """
    rng = np.random.default_rng(seed)

    def entry(col: pd.Series) -> dict:
        rows = len(col)
        present = col.dropna()
        missing_ratio = float(1 - len(present) / rows) if rows else 0.0
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            v = present.to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if v.size == 0:
                return {"type": "numeric", "stats": {"count": 0, "missing_ratio": 1.0},
                        "bins": {"edges": [], "proportions": [1.0]}}
            edges = np.unique(np.quantile(v, np.arange(1, bins) / bins))
            counts = np.bincount(np.searchsorted(edges, v, side="left"), minlength=edges.size + 1)
            sample = np.sort(rng.choice(v, size=min(sample_size, v.size), replace=False))
            stats = {
                "count": int(v.size),
                "missing_ratio": missing_ratio,
                "mean": float(v.mean()),
                "min": float(v.min()),
                "max": float(v.max()),
                "quantiles": {k: float(np.quantile(v, q)) for k, q in QUANTILES.items()},
            }
            if v.size >= 2:
                stats["std"] = float(v.std(ddof=1))
            return {
                "type": "numeric",
                "stats": stats,
                "bins": {"edges": edges.tolist(), "proportions": (counts / v.size).tolist()},
                "sample": sample.tolist(),
            }
        shares = present.astype(str).value_counts(normalize=True)
        return {
            "type": "categorical",
            "stats": {"count": int(len(present)), "missing_ratio": missing_ratio,
                      "distinct": int(shares.size)},
            "categories": {str(k): float(p) for k, p in shares.items()},
        }

    features = {c: entry(df[c]) for c in df.columns if c not in (prediction, target)}
    snap = {
        "format_version": 1,
        "model": {"name": model},
        "created_at": created_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": "pandas DataFrame",
        "row_count": int(len(df)),
        "features": features,
    }
    if prediction is not None:
        snap["prediction"] = entry(df[prediction])
    if target is not None:
        snap["target"] = entry(df[target])
    body = json.dumps(snap, sort_keys=True).encode()
    snap["id"] = hashlib.sha256(body).hexdigest()[:16]
    return snap


def write_big(path: str, rows: int) -> None:
    """A rows x 20 CSV: 16 numeric columns (1% missing), 4 categorical with
    5, 50, 500 and 5000 distinct values. Written in chunks."""
    rng = np.random.default_rng(7)
    chunk = 100_000
    first = True
    for start in range(0, rows, chunk):
        m = min(chunk, rows - start)
        data = {}
        for j in range(16):
            if j % 4 == 0:
                col = rng.normal(j, 1 + j, m)
            elif j % 4 == 1:
                col = rng.lognormal(1, 0.5, m)
            elif j % 4 == 2:
                col = rng.integers(0, 100, m).astype(float)
            else:
                col = rng.exponential(3.0, m)
            col[rng.random(m) < 0.01] = np.nan
            data[f"num{j}"] = col
        for j, card in enumerate([5, 50, 500, 5000]):
            data[f"cat{j}"] = np.char.add("v", rng.zipf(1.5, m).clip(1, card).astype(str))
        pd.DataFrame(data).to_csv(path, mode="w" if first else "a", header=first, index=False,
                                  float_format="%.6g")
        first = False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big", help="write the benchmark CSV here instead of the fixtures")
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    if args.big:
        write_big(args.big, args.rows)
        return

    os.makedirs(OUT, exist_ok=True)
    t = make_table(np.random.default_rng(20240601))
    write_csv(t, os.path.join(OUT, "data.csv"))
    write_jsonl(t, os.path.join(OUT, "data.jsonl"))
    write_parquet(t, os.path.join(OUT, "data.parquet"), "snappy")
    write_parquet(t, os.path.join(OUT, "data_zstd.parquet"), "zstd")
    write_parquet(t, os.path.join(OUT, "data_gzip.parquet"), "gzip")
    write_parquet(t, os.path.join(OUT, "data_lz4.parquet"), "lz4")

    columns = {}
    for c in NUMERIC:
        columns[c] = numeric_expectation(np.asarray(t[c], dtype=float), N)
    income = np.asarray(t["income"], dtype=float)
    columns["income"]["sorted_values"] = np.sort(income[~np.isnan(income)]).tolist()
    for c in CATEGORICAL:
        values = [
            None if v is None
            else v.isoformat() if isinstance(v, date)
            else str(bool(v)).lower() if isinstance(v, (bool, np.bool_))
            else v
            for v in t[c]
        ]
        columns[c] = categorical_expectation(values, N)
    expected = {"rows": N, "bins": BINS, "columns": columns}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)

    df = pd.DataFrame({c: t[c] for c in ["age", "income", "score", "country", "pred", "label"]})
    snap = snapshot_from_dataframe(df, model="credit-risk", prediction="pred", target="label",
                                   sample_size=300, created_at="2024-06-01T00:00:00+00:00")
    with open(os.path.join(OUT, "python_snapshot.json"), "w") as f:
        json.dump(snap, f, indent=1)


if __name__ == "__main__":
    main()
