#!/usr/bin/env python3
"""Label-free performance estimation: mlmon vs NannyML's CBPE on the same chunks.

For each scenario the script generates a reference set (model scores, predicted labels,
targets) and an analysis set in chunks with growing covariate shift (the inputs move,
P(y | x) does not: CBPE's assumption of no concept drift holds). It then

- runs NannyML 0.13's CBPE (fitted on the reference, estimating the analysis chunks);
- builds an mlmon baseline from the same reference (`mlmon baseline build`) and runs
  `mlmon performance --output json` on the analysis file with the same chunk size;
- computes the realized metrics of every chunk with scikit-learn;

and prints, per scenario and metric, the mean absolute error of each tool's estimate
against the realized value over the chunks (and the overall MAE per metric).

    scripts/test-env.sh   # or: python3 -m venv .venv-nannyml && .venv-nannyml/bin/pip install -r scripts/nannyml-requirements.txt
    cargo build --release
    NML_DISABLE_USAGE_LOGGING=1 .venv-nannyml/bin/python scripts/compare_nannyml.py \\
        --mlmon target/release/mlmon [--markdown]

`--json FILE` writes the overall MAE per metric of both tools (the test suite,
tests/py/test_statistics_reference.py, runs this script and reads it; ~50 s on 2 cores).
`--chunks N` draws N analysis chunks (same shift range) instead of 20: other data, so other
figures (with 6, mlmon picks logistic scaling for the p^3 scores and loses to NannyML).

Fixed seeds: re-running gives the same data; the figures depend only on the two tools.
Its own venv: NannyML 0.13 needs pandas < 3, the test venv (tests/py) pins pandas 3.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
# NannyML warns that a 20 000-row reference makes few 5 000-row chunks; harmless here.
warnings.filterwarnings("ignore", message="The resulting number of chunks is too low")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

import nannyml as nml  # noqa: E402

METRICS = ["accuracy", "precision", "recall", "f1", "specificity", "roc_auc"]
REF_ROWS = 20_000
CHUNK = 5_000
CHUNKS = 20


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logit(p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def binary_data(rng, n, shift, distort, threshold, power=None):
    """Two inputs; true P(y=1|x) = sigmoid(1.2 x1 - 0.8 x2 - 0.3); the model reports
    sigmoid(distort * logit(p_true)) (distort 1 = calibrated, > 1 overconfident, < 1
    underconfident), or p_true ** power (a distortion that is not logistic), and predicts 1
    at score >= threshold."""
    x1 = rng.normal(shift, 1.0, n)
    x2 = rng.normal(-0.5 * shift, 1.0, n)
    p = sigmoid(1.2 * x1 - 0.8 * x2 - 0.3)
    y = (rng.random(n) < p).astype(int)
    score = sigmoid(distort * logit(p)) if power is None else p ** power
    y_pred = (score >= threshold).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "score": score, "y_pred": y_pred, "y": y})


def multiclass_data(rng, n, shift, temperature, k=3):
    """Two inputs; true class probabilities softmax(W x + b); the model reports
    softmax((W x + b) * temperature) and predicts its highest score."""
    x1 = rng.normal(shift, 1.0, n)
    x2 = rng.normal(0.7 * shift, 1.0, n)
    w = np.array([[1.0, -0.5], [-0.8, 1.1], [0.1, -0.9]])[:k]
    b = np.array([0.2, -0.1, 0.0])[:k]
    z = np.stack([x1, x2], axis=1) @ w.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(n)
    y = np.minimum((u[:, None] > np.cumsum(p, axis=1)).sum(axis=1), k - 1)
    zs = z * temperature
    s = np.exp(zs - zs.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    df = pd.DataFrame({"x1": x1, "x2": x2})
    for c in range(k):
        df[f"p{c}"] = s[:, c]
    df["y_pred"] = s.argmax(axis=1)
    df["y"] = y
    return df


SCENARIOS = [
    # name, kind, params
    ("binary calibrated t=0.5", "binary", dict(distort=1.0, threshold=0.5)),
    ("binary calibrated t=0.65", "binary", dict(distort=1.0, threshold=0.65)),
    ("binary overconfident t=0.65", "binary", dict(distort=2.5, threshold=0.65)),
    ("binary underconfident t=0.3", "binary", dict(distort=0.5, threshold=0.3)),
    ("binary overconfident t=0.8", "binary", dict(distort=1.8, threshold=0.8)),
    ("binary scores p^3 t=0.4", "binary", dict(distort=1.0, threshold=0.4, power=3.0)),
    ("3-class calibrated", "multiclass", dict(temperature=1.0)),
    ("3-class overconfident", "multiclass", dict(temperature=2.0)),
]


def make(kind, params, rng, n, shift):
    if kind == "binary":
        return binary_data(rng, n, shift, params["distort"], params["threshold"],
                           params.get("power"))
    return multiclass_data(rng, n, shift, params["temperature"])


def realized(kind, chunk, classes):
    y, yp = chunk["y"].to_numpy(), chunk["y_pred"].to_numpy()
    if kind == "binary":
        return {
            "accuracy": skm.accuracy_score(y, yp),
            "precision": skm.precision_score(y, yp, zero_division=0),
            "recall": skm.recall_score(y, yp, zero_division=0),
            "f1": skm.f1_score(y, yp, zero_division=0),
            "specificity": skm.recall_score(y, yp, pos_label=0, zero_division=0),
            "roc_auc": skm.roc_auc_score(y, chunk["score"]),
        }
    mcm = skm.multilabel_confusion_matrix(y, yp, labels=classes)
    spec = np.mean([m[0, 0] / (m[0, 0] + m[0, 1]) for m in mcm])
    proba = chunk[[f"p{c}" for c in classes]].to_numpy()
    return {
        "accuracy": skm.accuracy_score(y, yp),
        "precision": skm.precision_score(y, yp, average="macro", labels=classes, zero_division=0),
        "recall": skm.recall_score(y, yp, average="macro", labels=classes, zero_division=0),
        "f1": skm.f1_score(y, yp, average="macro", labels=classes, zero_division=0),
        "specificity": spec,
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes),
    }


def run_nannyml(kind, reference, analysis, classes):
    if kind == "binary":
        est = nml.CBPE(
            problem_type="classification_binary",
            y_pred_proba="score",
            y_pred="y_pred",
            y_true="y",
            metrics=METRICS,
            chunk_size=CHUNK,
        )
    else:
        est = nml.CBPE(
            problem_type="classification_multiclass",
            y_pred_proba={c: f"p{c}" for c in classes},
            y_pred="y_pred",
            y_true="y",
            metrics=METRICS,
            chunk_size=CHUNK,
        )
    est.fit(reference)
    res = est.estimate(analysis.drop(columns=["y"])).filter(period="analysis").to_df()
    out = []
    for i in range(len(res)):
        row = {}
        for m in METRICS:
            row[m] = float(res[(m, "value")].iloc[i])
        out.append(row)
    return out


def run_mlmon(mlmon, kind, reference, analysis, classes, tmp):
    ref_csv = tmp / "reference.csv"
    ana_csv = tmp / "analysis.csv"
    base = tmp / "baseline.json"
    reference.to_csv(ref_csv, index=False)
    analysis.drop(columns=["y"]).to_csv(ana_csv, index=False)
    probability = ["score"] if kind == "binary" else [f"p{c}" for c in classes]
    build = [mlmon, "baseline", "build", "--input", str(ref_csv), "--output", str(base),
             "--prediction", "y_pred", "--target", "y", "--sample-size", str(REF_ROWS)]
    for col in probability:
        build += ["--probability", col]
    subprocess.run(build, check=True, capture_output=True)
    out = subprocess.run(
        [mlmon, "performance", "--baseline", str(base), "--input", str(ana_csv),
         "--prediction", "y_pred", "--probability", ",".join(probability),
         "--target", "y", "--chunk-size", str(CHUNK), "--output", "json"],
        capture_output=True, text=True,
    )
    if out.returncode not in (0, 1, 2):
        sys.exit(f"mlmon performance failed: {out.stderr}")
    doc = json.loads(out.stdout)
    run_mlmon.calibration = doc.get("calibration")
    return [{m: c["estimated"].get(m, float("nan")) for m in METRICS} for c in doc["chunks"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mlmon", default="target/release/mlmon")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--chunks", type=int, default=CHUNKS,
                    help=f"analysis chunks of {CHUNK} rows per scenario (default {CHUNKS})")
    ap.add_argument("--json", type=Path,
                    help="write {metric: {mlmon, nannyml}} overall MAEs to this file")
    args = ap.parse_args()
    chunks = args.chunks
    if chunks < 2:
        ap.error("--chunks must be at least 2")

    rng = np.random.default_rng(20261201)
    rows = []
    totals = {m: {"mlmon": [], "nannyml": []} for m in METRICS}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, kind, params in SCENARIOS:
            classes = [0, 1] if kind == "binary" else [0, 1, 2]
            reference = make(kind, params, rng, REF_ROWS, 0.0)
            analysis = pd.concat(
                [make(kind, params, rng, CHUNK, 1.5 * i / (chunks - 1)) for i in range(chunks)],
                ignore_index=True,
            )
            truth = [realized(kind, analysis.iloc[i * CHUNK:(i + 1) * CHUNK], classes)
                     for i in range(chunks)]
            nml_est = run_nannyml(kind, reference, analysis, classes)
            mlm_est = run_mlmon(args.mlmon, kind, reference, analysis, classes, tmp)
            assert len(nml_est) == len(mlm_est) == chunks, (len(nml_est), len(mlm_est))
            for m in METRICS:
                e_mlmon = [abs(mlm_est[i][m] - truth[i][m]) for i in range(chunks)]
                e_nml = [abs(nml_est[i][m] - truth[i][m]) for i in range(chunks)]
                totals[m]["mlmon"].extend(e_mlmon)
                totals[m]["nannyml"].extend(e_nml)
                rows.append((name, m, float(np.mean(e_mlmon)), float(np.mean(e_nml))))
            print(f"{name}: mlmon calibration {run_mlmon.calibration}", file=sys.stderr)
    if args.markdown:
        print("| scenario | metric | mlmon MAE | NannyML MAE |")
        print("|---|---|---:|---:|")
        for name, m, a, b in rows:
            print(f"| {name} | {m} | {a:.4f} | {b:.4f} |")
        for m in METRICS:
            a = float(np.mean(totals[m]["mlmon"]))
            b = float(np.mean(totals[m]["nannyml"]))
            print(f"| **all** | **{m}** | **{a:.4f}** | **{b:.4f}** |")
    else:
        print(f"{'scenario':32} {'metric':12} {'mlmon':>8} {'nannyml':>8}")
        for name, m, a, b in rows:
            flag = "" if a <= b + 1e-4 else "  <- mlmon worse"
            print(f"{name:32} {m:12} {a:8.4f} {b:8.4f}{flag}")
        for m in METRICS:
            a = float(np.mean(totals[m]["mlmon"]))
            b = float(np.mean(totals[m]["nannyml"]))
            print(f"{'ALL':32} {m:12} {a:8.4f} {b:8.4f}")
    if args.json:
        args.json.write_text(json.dumps({
            m: {"mlmon": float(np.mean(totals[m]["mlmon"])),
                "nannyml": float(np.mean(totals[m]["nannyml"])),
                "chunks": len(totals[m]["mlmon"])}
            for m in METRICS}, indent=2))
    worse = [m for m in METRICS
             if np.mean(totals[m]["mlmon"]) > np.mean(totals[m]["nannyml"]) + 1e-4]
    if worse:
        print(f"mlmon's MAE is worse than NannyML's on: {', '.join(worse)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
