#!/usr/bin/env python3
"""Generate reference fixtures for mlmon's performance metrics (src/performance/).

Every expected number comes from scikit-learn, never from mlmon. The Rust tests in
tests/offline/performance/fixtures.rs replay each case through mlmon's PerformanceEngine and
compare to 1e-9:

    make deps    # .venv from tests/py/requirements.txt
    .venv/bin/python scripts/gen/performance.py   # writes tests/fixtures/performance/*.json

A case is a sequence of predictions (requests of one or more rows, each with a request id)
and ground-truth records, each tagged with the phase in which the test sends it:

- "before": sent before the predictions are analysed (early feedback, must still match);
- "after":  sent after the predictions;
- "late":   sent after feedback.ttl has run out (must count as late, not scored).

Some records are noise that must not change the scores: duplicates of an already matched
(request id, row) with a different value (the first ground truth stands), unknown request
ids, and rows past the end of a batch. Labels are sent in mixed spellings ("1", 1, 1.0,
true) that mlmon normalises to one class. The expected scores are sklearn's on the pairs
that should match: (prediction, first ground truth) of known rows, phases before/after.

Fixed seeds: re-running produces the same files (up to the sklearn/numpy versions, which
are recorded in each file's "generator" field).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

# Same OpenBLAS kernels on every x86-64 machine (AVX2): the default picks them per CPU, and
# linear algebra then differs in the last bits between, say, AMD and Intel AVX-512 hosts.
os.environ["OPENBLAS_CORETYPE"] = "Haswell"
# numpy's own SIMD loops differ in the last bits between AVX2 and AVX-512 hosts: AVX2 everywhere.
os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"

import numpy as np
import sklearn
from sklearn import metrics

# Output root: the repository, or $MLMON_GEN_ROOT (`make check-generated` writes to a temp dir).
ROOT = Path(os.environ.get("MLMON_GEN_ROOT") or Path(__file__).resolve().parents[2])
OUT = ROOT / "tests" / "fixtures" / "performance"


def spell(label, rng):
    """A random wire spelling of an integer label (0/1/2...), all normalising to the same class."""
    choice = rng.integers(0, 4)
    if choice == 0:
        return int(label)
    if choice == 1:
        return str(int(label))
    if choice == 2:
        return float(label)
    return f"{float(label):.1f}"


def batches(n, rng, max_batch):
    """Splits n rows into batches of 1..max_batch rows."""
    out = []
    i = 0
    while i < n:
        b = int(rng.integers(1, max_batch + 1))
        out.append((i, min(n, i + b)))
        i += b
    return out


def build_case(name, task, y_pred, y_true, rng, positive_class="1", spell_labels=False,
               max_batch=5, noise=True, scores=None, classes=None):
    """`scores` (optional): one score vector per row, columns in `classes` order (sorted
    labels, as scikit-learn's classes_); the realized ROC AUC is expected then."""
    n = len(y_pred)
    requests = []
    feedback = []
    pairs = []  # (pred, actual) that must be scored
    pair_scores = []  # score vectors of the pairs
    for k, (lo, hi) in enumerate(batches(n, rng, max_batch)):
        rid = f"{name}-req-{k}"
        preds = []
        for i in range(lo, hi):
            p = y_pred[i]
            preds.append(spell(p, rng) if spell_labels else p)
        req = {"request_id": rid, "predictions": preds}
        if scores is not None:
            req["probabilities"] = [list(map(float, scores[i])) for i in range(lo, hi)]
        requests.append(req)
        for row, i in enumerate(range(lo, hi)):
            a = y_true[i]
            phase = ["before", "after", "after", "after", "late"][int(rng.integers(0, 5))]
            wire = spell(a, rng) if spell_labels else a
            feedback.append({"request_id": rid, "row": row, "actual": wire, "phase": phase})
            if phase != "late":
                pairs.append((y_pred[i], a))
                if scores is not None:
                    pair_scores.append(scores[i])
                if noise and rng.random() < 0.15:
                    # A duplicate with a different value: must be ignored.
                    other = y_true[int(rng.integers(0, n))]
                    feedback.append({"request_id": rid, "row": row,
                                     "actual": spell(other, rng) if spell_labels else other,
                                     "phase": "after", "noise": "duplicate"})
        if noise and rng.random() < 0.2:
            feedback.append({"request_id": rid, "row": hi - lo + 3, "actual": y_true[lo],
                             "phase": "after", "noise": "row_out_of_range"})
    if noise:
        for j in range(5):
            feedback.append({"request_id": f"{name}-unknown-{j}", "row": 0,
                             "actual": y_true[j % n], "phase": "after", "noise": "unknown"})
    # Shuffle the order in which feedback is sent (phases are applied in phase order).
    order = rng.permutation(len(feedback))
    feedback = [feedback[i] for i in order]
    # A duplicate sent before its original would become the original: keep originals first.
    firsts = {}
    for f in feedback:
        if "noise" not in f:
            firsts[(f["request_id"], f["row"])] = f
    seen = set()
    ordered = []
    for f in feedback:
        key = (f["request_id"], f["row"])
        if f.get("noise") == "duplicate" and key not in seen:
            continue  # re-added after its original below
        ordered.append(f)
        if "noise" not in f:
            seen.add(key)
            ordered.extend(d for d in feedback
                           if d.get("noise") == "duplicate"
                           and (d["request_id"], d["row"]) == key)
    feedback = ordered

    p = np.array([x for x, _ in pairs])
    a = np.array([x for _, x in pairs])
    expected = {}
    confusion = None
    if task == "regression":
        expected["mae"] = metrics.mean_absolute_error(a, p)
        expected["rmse"] = math.sqrt(metrics.mean_squared_error(a, p))
        expected["r2"] = metrics.r2_score(a, p)
        averaging = None
    else:
        labels = sorted(set(a.tolist()) | set(p.tolist()))
        # Labels as mlmon normalises them (integers print without a fraction).
        pos = type(labels[0])(positive_class) if not isinstance(labels[0], str) else positive_class
        binary = len(labels) <= 2 and (pos in labels or len(labels) < 2)
        avg = "binary" if binary else "macro"
        kw = {"pos_label": pos} if binary else {}
        expected["accuracy"] = metrics.accuracy_score(a, p)
        expected["precision"] = metrics.precision_score(a, p, average=avg, zero_division=0, **kw)
        expected["recall"] = metrics.recall_score(a, p, average=avg, zero_division=0, **kw)
        expected["f1"] = metrics.f1_score(a, p, average=avg, zero_division=0, **kw)
        # Specificity: TN / (TN + FP) of the positive class (binary) or the mean over the
        # classes (macro), from sklearn's per-class confusion matrices.
        mcm = metrics.multilabel_confusion_matrix(a, p, labels=labels)
        spec = [m[0, 0] / (m[0, 0] + m[0, 1]) if (m[0, 0] + m[0, 1]) > 0 else 0.0 for m in mcm]
        if binary:
            expected["specificity"] = spec[labels.index(pos)] if pos in labels else (
                1.0 if len(a) else 0.0)
        else:
            expected["specificity"] = float(np.mean(spec))
        if scores is not None:
            sc = np.array(pair_scores, dtype=float)
            cls = list(classes)
            if len(cls) == 2:
                col = cls.index(pos)
                expected["roc_auc"] = metrics.roc_auc_score(a == pos, sc[:, col])
            else:
                expected["roc_auc"] = metrics.roc_auc_score(
                    a, sc, multi_class="ovr", average="macro", labels=cls)
        cm = metrics.confusion_matrix(a, p, labels=labels)
        confusion = {str(x): {str(y): int(cm[i, j]) for j, y in enumerate(labels)}
                     for i, x in enumerate(labels)}
        averaging = avg
    counts = {
        "matched": len(pairs),
        "late": sum(1 for f in feedback if f["phase"] == "late"),
        "unmatched": sum(1 for f in feedback if "noise" in f),
    }
    return {
        "name": name,
        "task": task,
        "positive_class": positive_class,
        "averaging": averaging,
        "requests": requests,
        "feedback": feedback,
        "expected": {k: float(v) for k, v in expected.items()},
        "expected_confusion": confusion if task != "regression" else None,
        "expected_counts": counts,
    }


def to_py(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.str_,)):
        return str(v)
    return v


def main():
    rng = np.random.default_rng(20261129)
    cases = []

    # Binary 0/1 with mixed label spellings; ~85 % accurate.
    y = rng.integers(0, 2, 400)
    flip = rng.random(400) < 0.15
    yp = np.where(flip, 1 - y, y)
    cases.append(build_case("binary", "classification", [int(v) for v in yp],
                            [int(v) for v in y], rng, spell_labels=True))

    # Binary with string labels and a configured positive class.
    names = np.array(["churn", "stay"])
    y = rng.integers(0, 2, 300)
    yp = np.where(rng.random(300) < 0.25, 1 - y, y)
    cases.append(build_case("binary_text", "classification", [str(names[v]) for v in yp],
                            [str(names[v]) for v in y], rng, positive_class="churn"))

    # Multi-class (3 classes, imbalanced), macro averages.
    y = rng.choice(3, 500, p=[0.6, 0.3, 0.1])
    yp = np.where(rng.random(500) < 0.3, rng.integers(0, 3, 500), y)
    cases.append(build_case("multiclass", "classification", [int(v) for v in yp],
                            [int(v) for v in y], rng, spell_labels=True, max_batch=8))

    # Multi-class with text labels, one class never predicted (zero-division 0).
    labels = np.array(["setosa", "versicolor", "virginica"])
    y = rng.integers(0, 3, 200)
    yp = np.where(y == 2, 1, y)
    cases.append(build_case("multiclass_text", "classification", [str(labels[v]) for v in yp],
                            [str(labels[v]) for v in y], rng))

    # Binary where the positive class is never predicted nor true (all zeros): 0 by zero division.
    cases.append(build_case("binary_all_negative", "classification", [0] * 50, [0] * 50, rng,
                            noise=False))

    # Binary with scores and a 0.65 decision threshold (ROC AUC from the scores).
    s1 = rng.beta(2.0, 2.0, 500)
    y = (rng.random(500) < s1).astype(int)
    yp = (s1 >= 0.65).astype(int)
    cases.append(build_case("binary_scores", "classification", [int(v) for v in yp],
                            [int(v) for v in y], rng, spell_labels=True,
                            scores=[[1.0 - v, v] for v in s1], classes=[0, 1]))

    # Multi-class with scores (three classes, all present), ROC AUC one-vs-rest macro.
    z = rng.normal(0.0, 1.0, (600, 3))
    pr = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([int(rng.choice(3, p=row)) for row in pr])
    yp = pr.argmax(axis=1)
    cases.append(build_case("multiclass_scores", "classification", [int(v) for v in yp],
                            [int(v) for v in y], rng, max_batch=6,
                            scores=[list(row) for row in pr], classes=[0, 1, 2]))

    # Regression, batches.
    y = rng.normal(100.0, 15.0, 600)
    yp = y + rng.normal(0.0, 5.0, 600) + 1.5
    cases.append(build_case("regression", "regression", [float(v) for v in yp],
                            [float(v) for v in y], rng, max_batch=10))

    # Regression, a poor model (negative R²).
    y = rng.normal(0.0, 1.0, 120)
    yp = rng.normal(0.5, 2.0, 120)
    cases.append(build_case("regression_poor", "regression", [float(v) for v in yp],
                            [float(v) for v in y], rng))

    doc = {
        "generator": f"scripts/gen/performance.py; scikit-learn {sklearn.__version__}, "
                     f"numpy {np.__version__}",
        "cases": json.loads(json.dumps(cases, default=to_py)),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "scores.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
