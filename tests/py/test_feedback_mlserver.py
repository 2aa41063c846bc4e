"""Ground truth end to end: a real MLServer serving a sklearn classifier behind mlmon.

Requests go through mlmon without an `x-request-id`; mlmon generates one and returns it on
the response. Ground truth is then posted to `POST /api/v1/feedback/{model}` with those ids
(and the row within each batch), and `/metrics` must show

- `mlmon_feedback_total{result="matched"}` = every row, `unmatched` = the records sent for
  unknown ids, and nothing `late`;
- `mlmon_performance{metric}` = scikit-learn's accuracy / precision / recall / F1 on the
  predictions MLServer returned and the posted labels (to 1e-9);
- `mlmon_estimated_performance{metric="accuracy"}` = the confidence-based expectation computed
  here from the probabilities MLServer returned (mean of the predicted class's probability).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn import metrics as skm

from helpers import FEATURES, request_rows, scrape, value

TOKEN = "e2e-feedback-token"
BATCHES = [1, 4, 9, 16, 30]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def infer_body(rows: np.ndarray) -> bytes:
    return json.dumps({
        "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                    "data": rows.ravel().tolist()}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }).encode()


def truth_for(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Labels from the rule the training data follows (helpers.training_data), with noise."""
    age, income, tenure, balance = rows.T
    logit = (0.04 * (age - 45) - 0.00002 * (income - 36000) - 0.02 * (tenure - 60)
             + 0.001 * (balance - 1500))
    return (logit + rng.normal(0, 0.8, len(rows)) > 0).astype(int)


def wait_for(admin: str, name: str, expected: float, timeout: float = 15.0, **labels):
    deadline = time.monotonic() + timeout
    samples = scrape(admin)
    while value(samples, name, **labels) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        samples = scrape(admin)
    return samples


def test_ground_truth_by_returned_request_ids(mlserver, start_mlmon, http):
    mlmon = start_mlmon(mlserver.url, {
        "payload": {"format": "oip_v2", "feature_names": FEATURES},
        "drift": {"interval": "200ms"},
        "admin": {"token": TOKEN},
    })
    path = f"/v2/models/{mlserver.model}/infer"
    rng = np.random.default_rng(7)
    feedback, y_true, y_pred, p_pred = [], [], [], []
    spellings = [lambda v: int(v), lambda v: str(v), lambda v: float(v)]
    for i, n in enumerate(BATCHES):
        rows = request_rows(n, 100 + i)
        r = http.post(f"{mlmon.proxy}{path}", data=infer_body(rows),
                      headers={"Content-Type": "application/json", "Accept-Encoding": "identity"},
                      timeout=30)
        assert r.status_code == 200, r.text
        request_id = r.headers.get("x-request-id")
        assert request_id, f"mlmon returned no x-request-id: {dict(r.headers)}"
        outputs = {o["name"]: o for o in r.json()["outputs"]}
        predicted = [int(v) for v in outputs["predict"]["data"]]
        proba = np.array(outputs["predict_proba"]["data"], dtype=float).reshape(n, 2)
        labels = truth_for(rows, rng)
        for row in range(n):
            feedback.append({"request_id": request_id, "row": row,
                             "actual": spellings[row % 3](int(labels[row]))})
        y_true.extend(labels.tolist())
        y_pred.extend(predicted)
        p_pred.extend(proba[np.arange(n), predicted].tolist())
    rows_total = sum(BATCHES)
    unknown = [{"request_id": "never-seen", "actual": 1}]

    denied = http.post(f"{mlmon.admin}/api/v1/feedback/{mlserver.model}", json=feedback,
                       timeout=10)
    assert denied.status_code == 401 and "error" in denied.json()

    r = http.post(f"{mlmon.admin}/api/v1/feedback/{mlserver.model}", json=feedback + unknown,
                  headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["received"] == rows_total + 1

    samples = wait_for(mlmon.admin, "mlmon_feedback_total", rows_total,
                       model=mlserver.model, result="matched")
    assert value(samples, "mlmon_feedback_total", model=mlserver.model,
                 result="matched") == rows_total
    assert value(samples, "mlmon_feedback_total", model=mlserver.model, result="late") == 0

    expected = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, pos_label=1, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, pos_label=1, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, pos_label=1, zero_division=0),
    }
    # The gauges refresh every drift.interval: wait for the full window to be scored.
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(mlmon.admin)
        got = {m: value(samples, "mlmon_performance", model=mlserver.model, metric=m)
               for m in expected}
        if all(abs(got[m] - expected[m]) <= 1e-9 for m in expected) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for m, want in expected.items():
        assert got[m] == pytest.approx(want, abs=1e-9), (m, got, expected)

    estimated = value(samples, "mlmon_estimated_performance", model=mlserver.model,
                      metric="accuracy")
    assert estimated == pytest.approx(float(np.mean(p_pred)), abs=1e-9)

    # With admin.token set, reads need the token too (SPEC section 7).
    report = http.get(f"{mlmon.admin}/api/v1/models/{mlserver.model}/performance",
                      headers=AUTH, timeout=10).json()
    assert report["task"] == "classification"
    assert report["classification"]["averaging"] == "binary"
    assert report["estimated"]["calibration"] == "assumed"
    assert report["feedback"]["matched_in_window"] == rows_total

    models = http.get(f"{mlmon.admin}/api/v1/models", headers=AUTH, timeout=10).json()["models"]
    (entry,) = [m for m in models if m["model"] == mlserver.model]
    assert entry["status"] in ("healthy", "warning", "critical")
    assert {c["check"] for c in entry["checks"]} >= {"drift", "latency", "error_rate",
                                                     "performance"}
    health = value(scrape(mlmon.admin), "mlmon_model_health", model=mlserver.model)
    assert health == {"healthy": 0, "warning": 1, "critical": 2}[entry["status"]]
