"""mlmon in front of a real MLServer (sklearn runtime), Open Inference Protocol v2.

Each test starts its own mlmon (fresh counters) in front of one MLServer per session, sends
the same request bodies through mlmon and directly to MLServer, and checks that
- the client gets exactly the bytes MLServer produces (status, body, content type);
- `mlmon_requests_total` and `mlmon_predictions_total` count what was sent, under the model
  named in the path, and nothing is counted as a payload error.

The expected counts are the numbers of requests and rows this file sends.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from helpers import FEATURES, ModelServer, describe, request_rows, scrape, value, wait_for_value

BATCH_SIZES = [1, 3, 17, 64]

JSON = {"Content-Type": "application/json"}


def tensor_request(rows: np.ndarray, request_id: str, outputs: list[str] | None = None) -> bytes:
    """One `[N, F]` FP64 tensor, as MLServer's sklearn runtime expects. A fixed `id` makes
    MLServer's answer deterministic (it generates a UUID otherwise)."""
    body = {
        "id": request_id,
        "inputs": [{
            "name": "input-0",
            "shape": list(rows.shape),
            "datatype": "FP64",
            "data": rows.ravel().tolist(),
        }],
    }
    if outputs is not None:
        body["outputs"] = [{"name": o} for o in outputs]
    return json.dumps(body).encode()


def post_both(http, mlmon, server: ModelServer, path: str, body: bytes,
              accept_encoding: str = "identity"):
    """POSTs `body` through mlmon and directly; asserts the client sees the same response.

    `identity` by default: MLServer gzips JSON answers over 500 bytes when the client accepts
    it, and `test_gzip_responses_are_counted` covers that on its own."""
    headers = {**JSON, "Accept-Encoding": accept_encoding}
    via = http.post(f"{mlmon.proxy}{path}", data=body, headers=headers, timeout=30)
    direct = http.post(f"{server.url}{path}", data=body, headers=headers, timeout=30)
    assert via.status_code == direct.status_code, (
        f"POST {path}: status {via.status_code} through mlmon, {direct.status_code} direct\n"
        f"through mlmon: {via.text[:500]}")
    assert via.content == direct.content, (
        f"POST {path}: body differs through mlmon\nthrough mlmon: {via.content[:500]!r}\n"
        f"direct:        {direct.content[:500]!r}")
    for header in ("content-type", "content-encoding"):
        assert via.headers.get(header) == direct.headers.get(header), header
    return via


def assert_counts(mlmon, model: str, requests_2xx: int, rows: int, **other_codes: int):
    samples = wait_for_value(mlmon.admin, "mlmon_predictions_total", rows, model=model)
    context = describe(samples, "mlmon_requests", "mlmon_predictions", "mlmon_payload",
                       "mlmon_capture")
    assert value(samples, "mlmon_requests_total", model=model, code="2xx") == requests_2xx, context
    for code, n in other_codes.items():
        assert value(samples, "mlmon_requests_total", model=model, code=code) == n, context
    total = requests_2xx + sum(other_codes.values())
    assert value(samples, "mlmon_requests_total") == total, (
        f"requests counted under other models or codes:\n{context}")
    assert value(samples, "mlmon_predictions_total", model=model) == rows, context
    assert value(samples, "mlmon_predictions_total") == rows, (
        f"predictions counted under other models:\n{context}")
    assert value(samples, "mlmon_payload_errors_total") == 0, context


def mlmon_config(payload_format: str) -> dict:
    # model.name is deliberately not the served model: identity must come from the path.
    return {"model": {"name": "fallback-name"},
            "payload": {"format": payload_format, "feature_names": FEATURES}}


@pytest.mark.parametrize("payload_format", ["auto", "oip_v2"])
def test_tensor_batches_are_proxied_unchanged_and_counted(mlserver, start_mlmon, http,
                                                          payload_format):
    mlmon = start_mlmon(mlserver.url, mlmon_config(payload_format))
    path = f"/v2/models/{mlserver.model}/infer"
    for i, n in enumerate(BATCH_SIZES):
        response = post_both(http, mlmon, mlserver, path, tensor_request(request_rows(n, i), f"b{i}"))
        assert response.status_code == 200, response.text
        outputs = response.json()["outputs"]
        assert [o["name"] for o in outputs] == ["predict"]
        assert outputs[0]["shape"][0] == n
    assert_counts(mlmon, mlserver.model, requests_2xx=len(BATCH_SIZES), rows=sum(BATCH_SIZES))


def test_versioned_path_counts_under_the_model(mlserver, start_mlmon, http):
    mlmon = start_mlmon(mlserver.url, mlmon_config("auto"))
    path = f"/v2/models/{mlserver.model}/versions/v1/infer"
    response = post_both(http, mlmon, mlserver, path, tensor_request(request_rows(9, 40), "v1"))
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "v1"
    assert_counts(mlmon, mlserver.model, requests_2xx=1, rows=9)
    samples = scrape(mlmon.admin)
    versions = {s.labels.get("version") for s in samples
                if s.name == "mlmon_requests_total" and s.labels.get("model") == mlserver.model}
    assert versions <= {"v1", None}, f"unexpected version labels {versions}"


def test_predict_proba_output_counts_one_prediction_per_row(mlserver, start_mlmon, http):
    mlmon = start_mlmon(mlserver.url, mlmon_config("auto"))
    path = f"/v2/models/{mlserver.model}/infer"
    proba = post_both(http, mlmon, mlserver, path,
                      tensor_request(request_rows(5, 50), "p1", outputs=["predict_proba"]))
    assert proba.status_code == 200, proba.text
    (out,) = proba.json()["outputs"]
    assert out["name"] == "predict_proba" and out["shape"] == [5, 2]

    both = post_both(http, mlmon, mlserver, path,
                     tensor_request(request_rows(7, 51), "p2", outputs=["predict", "predict_proba"]))
    assert both.status_code == 200, both.text
    shapes = {o["name"]: o["shape"] for o in both.json()["outputs"]}
    assert shapes["predict_proba"] == [7, 2] and shapes["predict"][0] == 7

    # Two outputs per row are still one prediction per row.
    assert_counts(mlmon, mlserver.model, requests_2xx=2, rows=5 + 7)


def test_one_input_per_feature_is_counted(mlserver, start_mlmon, http):
    """The other OIP layout: one named 1-D input per feature, decoded by MLServer's pandas
    codec (`content_type: pd`)."""
    mlmon = start_mlmon(mlserver.url, {"model": {"name": "fallback-name"}})
    rows = request_rows(6, 60)
    body = json.dumps({
        "id": "cols",
        "parameters": {"content_type": "pd"},
        "inputs": [{"name": name, "shape": [len(rows)], "datatype": "FP64",
                    "data": rows[:, j].tolist()} for j, name in enumerate(FEATURES)],
    }).encode()
    response = post_both(http, mlmon, mlserver, f"/v2/models/{mlserver.model}/infer", body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["shape"][0] == 6
    assert_counts(mlmon, mlserver.model, requests_2xx=1, rows=6)


def test_gzip_responses_are_counted(mlserver, start_mlmon, http):
    """Clients such as Python `requests` send `Accept-Encoding: gzip` by default, and MLServer
    then gzips any JSON answer over 500 bytes. The client must get the compressed bytes
    unchanged, and mlmon must still read the predictions out of them."""
    mlmon = start_mlmon(mlserver.url, mlmon_config("auto"))
    path = f"/v2/models/{mlserver.model}/infer"
    sizes = [40, 150]
    for i, n in enumerate(sizes):
        response = post_both(http, mlmon, mlserver, path,
                             tensor_request(request_rows(n, 90 + i), f"gz{i}",
                                            outputs=["predict_proba"]),
                             accept_encoding="gzip")
        assert response.status_code == 200, response.text
        assert response.headers.get("content-encoding") == "gzip", (
            "MLServer did not compress; this test no longer exercises gzip")
        assert response.json()["outputs"][0]["shape"] == [n, 2]
    assert_counts(mlmon, mlserver.model, requests_2xx=len(sizes), rows=sum(sizes))


def test_model_server_errors_pass_through_and_predict_nothing(mlserver, start_mlmon, http):
    """Requests MLServer rejects: an output name the sklearn runtime does not know (400) and 3
    columns for a 4-feature model (sklearn raises, MLServer answers 500 with a traceback).
    The client gets MLServer's own answers; mlmon counts them by status class and predicts
    nothing for them."""
    mlmon = start_mlmon(mlserver.url, mlmon_config("auto"))
    path = f"/v2/models/{mlserver.model}/infer"
    unknown_output = tensor_request(request_rows(4, 70), "bad-output", outputs=["predict_log_proba"])
    assert post_both(http, mlmon, mlserver, path, unknown_output).status_code == 400
    wrong_width = tensor_request(request_rows(4, 71)[:, :3], "bad-width")
    assert post_both(http, mlmon, mlserver, path, wrong_width).status_code == 500
    good = post_both(http, mlmon, mlserver, path, tensor_request(request_rows(2, 72), "good"))
    assert good.status_code == 200
    # The good request's 2 rows are the only predictions.
    samples = wait_for_value(mlmon.admin, "mlmon_predictions_total", 2, model=mlserver.model)
    context = describe(samples, "mlmon_requests", "mlmon_predictions", "mlmon_payload")
    for code in ("2xx", "4xx", "5xx"):
        assert value(samples, "mlmon_requests_total", model=mlserver.model, code=code) == 1, context
    assert value(samples, "mlmon_predictions_total") == 2, context


def test_error_responses_are_not_payload_errors(mlserver, start_mlmon, http):
    """`mlmon_payload_errors_total` means "mlmon could not read a body". A well-formed
    request that the model server answers with an error is not that: the error is already
    in `mlmon_requests_total{code}`, and counting it again would page whoever owns the
    payload-format alert for a client bug."""
    mlmon = start_mlmon(mlserver.url, mlmon_config("auto"))
    path = f"/v2/models/{mlserver.model}/infer"
    unknown_output = tensor_request(request_rows(4, 73), "bad-output", outputs=["predict_log_proba"])
    assert post_both(http, mlmon, mlserver, path, unknown_output).status_code == 400
    samples = wait_for_value(mlmon.admin, "mlmon_requests_total", 1, model=mlserver.model)
    time.sleep(1.0)  # the analysis side runs after the response; give it time to count
    samples = scrape(mlmon.admin)
    context = describe(samples, "mlmon_requests", "mlmon_predictions", "mlmon_payload")
    assert value(samples, "mlmon_requests_total", model=mlserver.model, code="4xx") == 1, context
    assert value(samples, "mlmon_payload_errors_total") == 0, context


def test_models_api_knows_the_served_model(mlserver, start_mlmon, http):
    mlmon = start_mlmon(mlserver.url, mlmon_config("auto"))
    response = post_both(http, mlmon, mlserver, f"/v2/models/{mlserver.model}/infer",
                         tensor_request(request_rows(3, 80), "api"))
    assert response.status_code == 200
    wait_for_value(mlmon.admin, "mlmon_requests_total", 1, model=mlserver.model)

    known = http.get(f"{mlmon.admin}/api/v1/models/{mlserver.model}", timeout=5)
    assert known.status_code == 200, known.text
    assert known.headers["content-type"].startswith("application/json")
    assert known.json()["model"] == mlserver.model

    listed = http.get(f"{mlmon.admin}/api/v1/models", timeout=5)
    assert listed.status_code == 200, listed.text
    assert mlserver.model in [m["model"] for m in listed.json()["models"]]

    unknown = http.get(f"{mlmon.admin}/api/v1/models/no-such-model", timeout=5)
    assert unknown.status_code == 404, unknown.text
    assert unknown.headers["content-type"].startswith("application/json")
    assert isinstance(unknown.json().get("error"), str) and unknown.json()["error"]
