"""mlmon in front of a real MLflow scoring server (`mlflow models serve`), `/invocations`.

The path carries no model name, so mlmon attributes the traffic to `model.name` from its
config. Every body layout MLflow accepts for a DataFrame-signature model is sent through
mlmon and directly; the client must see MLflow's exact bytes and mlmon must count each row
once. Expected counts are the numbers of requests and rows this file sends.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import FEATURES, describe, request_rows, value, wait_for_value

JSON = {"Content-Type": "application/json"}


def records(rows: np.ndarray) -> list[dict]:
    return [dict(zip(FEATURES, map(float, r))) for r in rows]


def body_instances(rows):
    return {"instances": records(rows)}


def body_dataframe_records(rows):
    return {"dataframe_records": records(rows)}


def body_dataframe_split(rows):
    return {"dataframe_split": {"columns": FEATURES, "data": rows.tolist()}}


def body_inputs_columns(rows):
    return {"inputs": {name: rows[:, j].tolist() for j, name in enumerate(FEATURES)}}


# (layout, rows) pairs: every layout with two batch sizes.
CASES = [(f, n) for f in (body_instances, body_dataframe_records, body_dataframe_split,
                          body_inputs_columns)
         for n in (1, 12)]


@pytest.mark.parametrize("payload_format", ["auto", "mlflow"])
def test_invocations_layouts_are_proxied_unchanged_and_counted(mlflow_server, start_mlmon, http,
                                                               payload_format):
    model = mlflow_server.model
    mlmon = start_mlmon(mlflow_server.url, {"model": {"name": model},
                                            "payload": {"format": payload_format}})
    for i, (layout, n) in enumerate(CASES):
        body = json.dumps(layout(request_rows(n, 100 + i))).encode()
        via = http.post(f"{mlmon.proxy}/invocations", data=body, headers=JSON, timeout=30)
        direct = http.post(f"{mlflow_server.url}/invocations", data=body, headers=JSON, timeout=30)
        assert direct.status_code == 200, f"{layout.__name__}: MLflow refused it: {direct.text[:500]}"
        assert via.status_code == 200, f"{layout.__name__}: {via.status_code} {via.text[:500]}"
        assert via.content == direct.content, (
            f"{layout.__name__}: body differs through mlmon\n{via.content[:300]!r}\n"
            f"{direct.content[:300]!r}")
        assert len(via.json()["predictions"]) == n

    rows = sum(n for _, n in CASES)
    samples = wait_for_value(mlmon.admin, "mlmon_predictions_total", rows, model=model)
    context = describe(samples, "mlmon_requests", "mlmon_predictions", "mlmon_payload",
                       "mlmon_capture")
    assert value(samples, "mlmon_requests_total", model=model, code="2xx") == len(CASES), context
    assert value(samples, "mlmon_requests_total") == len(CASES), context
    assert value(samples, "mlmon_predictions_total", model=model) == rows, context
    assert value(samples, "mlmon_predictions_total") == rows, context
    assert value(samples, "mlmon_payload_errors_total") == 0, context


def test_models_api_for_config_named_model(mlflow_server, start_mlmon, http):
    model = mlflow_server.model
    mlmon = start_mlmon(mlflow_server.url, {"model": {"name": model}})
    body = json.dumps(body_dataframe_split(request_rows(4, 200))).encode()
    assert http.post(f"{mlmon.proxy}/invocations", data=body, headers=JSON,
                     timeout=30).status_code == 200
    wait_for_value(mlmon.admin, "mlmon_requests_total", 1, model=model)

    known = http.get(f"{mlmon.admin}/api/v1/models/{model}", timeout=5)
    assert known.status_code == 200, known.text
    assert known.headers["content-type"].startswith("application/json")
    assert known.json()["model"] == model

    unknown = http.get(f"{mlmon.admin}/api/v1/models/default", timeout=5)
    assert unknown.status_code == 404, (
        f"traffic went to {model!r}, yet 'default' is known: {unknown.text}")
    assert unknown.headers["content-type"].startswith("application/json")
    assert unknown.json().get("error")
