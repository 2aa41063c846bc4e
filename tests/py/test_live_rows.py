"""Rows read from real model-server traffic reach mlmon's analyses under the right feature
names and with the right values.

mlmon captures its baseline from the first `CAPTURE` live rows (`baseline.capture_rows`);
the next batch fills the drift window, and `GET /api/v1/models/{model}/drift` reports each
feature's window count, mean, std (ddof 0), min and max. Those are compared with numpy over
the rows this test sent, and the output's window with the predictions the model server
returned.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from helpers import FEATURES, request_rows

CAPTURE = 40
WINDOW_ROWS = 25
JSON = {"Content-Type": "application/json", "Accept-Encoding": "identity"}


def wait_for_drift_report(http, admin: str, model: str, ready, timeout: float = 15.0) -> dict:
    """Polls the drift report until `ready(report)`; fails with the last answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        response = http.get(f"{admin}/api/v1/models/{model}/drift", timeout=5)
        last = f"{response.status_code} {response.text[:2000]}"
        if response.status_code == 200 and ready(response.json()):
            return response.json()
        time.sleep(0.2)
    pytest.fail(f"drift report of {model!r} not as expected after {timeout:.0f}s; last answer: {last}")


def by_name(report: dict, kind: str) -> dict[str, dict]:
    return {f["feature"]: f for f in report["features"] if f["kind"] == kind}


def assert_window_matches(report: dict, rows: np.ndarray, predictions: list) -> None:
    inputs = by_name(report, "input")
    assert sorted(inputs) == sorted(FEATURES), f"input features {sorted(inputs)}"
    for j, name in enumerate(FEATURES):
        f = inputs[name]
        column = rows[:, j]
        assert f["window"]["count"] == len(column), (name, f["window"])
        assert f["window"]["missing"] == 0 and f["window"]["invalid"] == 0, (name, f["window"])
        assert f["mean"] == pytest.approx(column.mean(), rel=1e-9), name
        assert f["std"] == pytest.approx(column.std(ddof=0), rel=1e-9, abs=1e-12), name
        assert f["min"] == column.min() and f["max"] == column.max(), name
    outputs = by_name(report, "output")
    assert len(outputs) == 1, f"expected one output feature, got {sorted(outputs)}"
    (out,) = outputs.values()
    assert out["window"]["count"] == len(predictions), out["window"]
    if out["type"] == "numeric":
        assert out["mean"] == pytest.approx(np.mean(predictions), rel=1e-9)


def test_mlserver_tensor_columns_take_configured_names(mlserver, start_mlmon, http):
    mlmon = start_mlmon(mlserver.url, {
        "payload": {"format": "auto", "feature_names": FEATURES},
        "baseline": {"capture_rows": CAPTURE},
        # Window min/max are raw values: the drift API shows them only with this on.
        "privacy": {"log_values": True},
    })
    path = f"{mlmon.proxy}/v2/models/{mlserver.model}/infer"

    def infer(rows: np.ndarray) -> list:
        body = {"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
                            "data": rows.ravel().tolist()}]}
        response = http.post(path, data=json.dumps(body), headers=JSON, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["outputs"][0]["data"]

    infer(request_rows(CAPTURE, 300))
    wait_for_drift_report(http, mlmon.admin, mlserver.model, lambda r: True)
    rows = request_rows(WINDOW_ROWS, 301)
    predictions = infer(rows)
    report = wait_for_drift_report(
        http, mlmon.admin, mlserver.model,
        lambda r: all(f["window"]["count"] >= WINDOW_ROWS for f in r["features"]))
    assert_window_matches(report, rows, predictions)


def test_mlflow_dataframe_columns_keep_their_names(mlflow_server, start_mlmon, http):
    model = mlflow_server.model
    mlmon = start_mlmon(mlflow_server.url, {
        "model": {"name": model},
        "baseline": {"capture_rows": CAPTURE},
        # Window min/max are raw values: the drift API shows them only with this on.
        "privacy": {"log_values": True},
    })

    def invoke(rows: np.ndarray) -> list:
        # Columns in a different order than the model's: names, not positions, must decide.
        order = list(reversed(range(len(FEATURES))))
        body = {"dataframe_split": {"columns": [FEATURES[j] for j in order],
                                    "data": rows[:, order].tolist()}}
        response = http.post(f"{mlmon.proxy}/invocations", data=json.dumps(body), headers=JSON,
                             timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["predictions"]

    invoke(request_rows(CAPTURE, 400))
    wait_for_drift_report(http, mlmon.admin, model, lambda r: True)
    rows = request_rows(WINDOW_ROWS, 401)
    predictions = invoke(rows)
    report = wait_for_drift_report(
        http, mlmon.admin, model,
        lambda r: all(f["window"]["count"] >= WINDOW_ROWS for f in r["features"]))
    assert_window_matches(report, rows, predictions)
