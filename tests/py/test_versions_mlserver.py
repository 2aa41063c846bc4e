"""Two real model versions behind mlmon (SPEC section 10, docs/versions.md).

One MLServer serves v1 and v2 of a classifier (`churn-clf`) and of a regressor (`churn-reg`),
each version a scikit-learn model of its own, addressed by version path
(`/v2/models/{m}/versions/{v}/infer`). The same requests go through mlmon and straight to
MLServer: the client must get MLServer's bytes. Ground truth for every row is then posted to
mlmon, and `GET /api/v1/models/{m}/compare?a=v1&b=v2` must report exactly what scipy and
statsmodels compute from the predictions MLServer returned and the ground truth sent:
accuracy (two-proportion z-test), absolute errors (Welch's t-test), prediction
distributions (chi-square for the classifier's labels, KS for the regressor's numbers).
The per-version metric families must count the traffic per version.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from conftest import SERVER_START_TIMEOUT, child_env, venv_executable
from helpers import (FEATURES, LOOPBACK, ManagedProcess, ModelServer, free_port, http_ok, request_rows, scrape,
                     training_data, value, wait_for_value, wait_ready)

CLF, REG = "churn-clf", "churn-reg"
VERSIONS = ("v1", "v2")
REQUESTS, ROWS = 12, 25  # per model and version
JSON = {"Content-Type": "application/json", "Accept-Encoding": "identity"}


def truth_of(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ground truth of request rows: the training data's label rule (without its noise),
    and a numeric target for the regressor."""
    age, income, tenure, balance = rows.T
    logit = 0.04 * (age - 45) - 0.00002 * (income - 36000) - 0.02 * (tenure - 60) + 0.001 * (balance - 1500)
    return (logit > 0).astype(int), 0.5 * age + 0.01 * balance - 0.1 * tenure


@pytest.fixture(scope="module")
def versioned_mlserver(tmp_path_factory) -> Iterator[ModelServer]:
    """MLServer with v1 and v2 of a classifier and of a regressor. v2 of each is the worse
    model: the classifier learnt from partly flipped labels, the regressor from a noisy
    target."""
    import joblib
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    exe = venv_executable("mlserver")
    root = tmp_path_factory.mktemp("mlserver-versions")
    x, y = training_data()
    x = x.to_numpy()
    _, target = truth_of(x)
    rng = np.random.default_rng(7)
    flipped = np.where(rng.random(len(y)) < 0.35, 1 - y, y)
    models = {
        (CLF, "v1"): make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        (CLF, "v2"): make_pipeline(StandardScaler(), LogisticRegression()).fit(x, flipped),
        (REG, "v1"): make_pipeline(StandardScaler(), LinearRegression()).fit(x, target),
        (REG, "v2"): make_pipeline(StandardScaler(), LinearRegression()).fit(x, target + rng.normal(0, 8, len(target))),
    }
    for (name, version), model in models.items():
        d = root / "models" / f"{name}-{version}"
        d.mkdir(parents=True)
        joblib.dump(model, d / "model.joblib")
        (d / "model-settings.json").write_text(json.dumps({
            "name": name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": version},
        }))
    port = free_port()
    (root / "models" / "settings.json").write_text(json.dumps({
        "debug": False, "host": LOOPBACK, "http_port": port, "grpc_port": free_port(),
        "metrics_port": free_port(), "metrics_endpoint": None, "metrics_dir": str(root / "metrics"),
        "parallel_workers": 0, "load_models_at_startup": True,
    }))
    process = ManagedProcess("MLServer", [str(exe), "start", str(root / "models")], root / "mlserver.log")
    try:
        process.start(cwd=root, env=child_env())
    except RuntimeError as e:
        pytest.fail(str(e))
    url = f"http://{LOOPBACK}:{port}"
    try:
        for name, version in models:
            wait_ready(process, lambda: http_ok(f"{url}/v2/models/{name}/versions/{version}/ready"),
                       f"{name} {version} ready", SERVER_START_TIMEOUT)
    except AssertionError as e:
        process.stop()
        pytest.fail(f"MLServer could not be started: {e}")
    try:
        yield ModelServer(url=url, model=CLF, process=process)
    finally:
        process.stop()


def body(rows: np.ndarray, request_id: str) -> bytes:
    return json.dumps({"id": request_id, "inputs": [{
        "name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]}).encode()


def send(http, mlmon, server: ModelServer, model: str, version: str, i: int) -> tuple[str, np.ndarray, list]:
    """One request through mlmon and straight to MLServer; the client must see MLServer's
    answer byte for byte. Returns (request id, rows, predictions)."""
    rows = request_rows(ROWS, 1000 * (model == REG) + 100 * (version == "v2") + i)
    rid = f"{model}-{version}-{i}"
    path = f"/v2/models/{model}/versions/{version}/infer"
    headers = {**JSON, "x-request-id": rid}
    via = http.post(f"{mlmon.proxy}{path}", data=body(rows, rid), headers=headers, timeout=30)
    direct = http.post(f"{server.url}{path}", data=body(rows, rid), headers=headers, timeout=30)
    assert via.status_code == direct.status_code == 200, via.text
    assert via.content == direct.content, f"{path}: body differs through mlmon"
    assert via.headers.get("content-type") == direct.headers.get("content-type")
    out = via.json()
    assert out["model_version"] == version
    return rid, rows, out["outputs"][0]["data"]


def metric(result: dict, name: str) -> dict:
    (m,) = [m for m in result["metrics"] if m["metric"] == name]
    return m


def close(got, want, rel=1e-9, what=""):
    assert got is not None and math.isclose(got, want, rel_tol=rel, abs_tol=1e-12), f"{what}: mlmon {got}, reference {want}"


def test_two_versions_compared_as_scipy_and_statsmodels_do(versioned_mlserver, start_mlmon, http):
    server = versioned_mlserver
    mlmon = start_mlmon(server.url, {
        "model": {"name": "fallback", "version_header": "x-model-version"},
        "payload": {"feature_names": FEATURES},
        "drift": {"interval": "1s"},
        "admin": {"allow_unauthenticated": True},
    })
    seen: dict[tuple[str, str], list[tuple[str, np.ndarray, list]]] = {}
    for model in (CLF, REG):
        for version in VERSIONS:
            seen[(model, version)] = [send(http, mlmon, server, model, version, i) for i in range(REQUESTS)]
    total_rows = 2 * 2 * REQUESTS * ROWS
    wait_for_value(mlmon.admin, "mlmon_predictions_total", total_rows)

    # Ground truth for every row, joined by request id and row.
    expected: dict[tuple[str, str], dict] = {}
    for (model, version), requests in seen.items():
        items, correct, abs_err, preds = [], [], [], []
        for rid, rows, predictions in requests:
            labels, target = truth_of(rows)
            actual = labels if model == CLF else target
            for row, (p, a) in enumerate(zip(predictions, actual)):
                items.append({"request_id": rid, "row": row, "actual": float(a) if model == REG else int(a)})
                correct.append(int(p) == int(a))
                abs_err.append(abs(float(p) - float(a)))
                preds.append(p)
        r = http.post(f"{mlmon.admin}/api/v1/feedback/{model}", json=items, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["counts"] == {"matched": len(items)}, r.text
        expected[(model, version)] = {"correct": np.array(correct), "abs": np.array(abs_err), "preds": np.array(preds)}

    # --- classifier: accuracy by the two-proportion z-test, labels by chi-square.
    res = http.get(f"{mlmon.admin}/api/v1/models/{CLF}/compare", params={"a": "v1", "b": "v2"}, timeout=10)
    assert res.status_code == 200, res.text
    res = res.json()
    a, b = expected[(CLF, "v1")], expected[(CLF, "v2")]
    xa, xb, n = int(a["correct"].sum()), int(b["correct"].sum()), len(a["correct"])
    acc = metric(res, "accuracy")
    assert (acc["n_a"], acc["n_b"]) == (n, n)
    close(acc["a"], xa / n, what="accuracy v1")
    close(acc["b"], xb / n, what="accuracy v2")
    z, p = proportions_ztest([xb, xa], [n, n])
    lo, hi = confint_proportions_2indep(xb, n, xa, n, method="wald", compare="diff")
    close(acc["statistic"], z, what="z")
    close(acc["p_value"], p, rel=1e-8, what="p")
    close(acc["ci_low"], lo, what="ci low")
    close(acc["ci_high"], hi, what="ci high")
    assert xb < xa and p < 0.05, f"v2 learnt from flipped labels and should be worse: {xa}, {xb} of {n}, p {p}"
    assert acc["verdict"] == "b_worse", acc
    dist = metric(res, "prediction_distribution")
    assert dist["test"] == "chi2_homogeneity"
    classes = sorted(set(a["preds"].tolist()) | set(b["preds"].tolist()))
    table = [[int((e["preds"] == c).sum()) for c in classes] for e in (a, b)]
    if len(classes) > 1:
        chi2, p_chi2, dof, _ = stats.chi2_contingency(table, correction=False)
        close(dist["statistic"], chi2, what="chi2")
        close(dist["p_value"], p_chi2, rel=1e-8, what="chi2 p")
    lat = metric(res, "latency_mean")
    assert (lat["n_a"], lat["n_b"]) == (REQUESTS, REQUESTS)
    err = metric(res, "error_rate")
    assert (err["a"], err["b"], err["p_value"]) == (0.0, 0.0, 1.0)

    # --- regressor: absolute errors by Welch's t-test, predictions by KS.
    res = http.get(f"{mlmon.admin}/api/v1/models/{REG}/compare?a=v1&b=v2", timeout=10).json()
    a, b = expected[(REG, "v1")], expected[(REG, "v2")]
    ae = metric(res, "absolute_error")
    t = stats.ttest_ind(b["abs"], a["abs"], equal_var=False)
    ci = t.confidence_interval(0.95)
    close(ae["a"], a["abs"].mean(), what="mae v1")
    close(ae["b"], b["abs"].mean(), what="mae v2")
    close(ae["statistic"], t.statistic, rel=1e-7, what="t")
    close(ae["df"], t.df, rel=1e-7, what="df")
    close(ae["p_value"], t.pvalue, rel=1e-6, what="welch p")
    close(ae["ci_low"], ci.low, rel=1e-7, what="welch ci low")
    close(ae["ci_high"], ci.high, rel=1e-7, what="welch ci high")
    assert t.pvalue < 0.05 and ae["verdict"] == "b_worse", ae
    ks = metric(res, "prediction_distribution")
    assert ks["test"] == "ks"
    want = stats.ks_2samp(b["preds"], a["preds"], method="asymp")
    close(ks["statistic"], want.statistic, what="D")
    close(ks["p_value"], want.pvalue, rel=1e-8, what="KS p")
    assert metric(res, "latency_mean")["n_b"] == REQUESTS

    # --- metrics: per-version counters and gauges, exported at refresh.
    samples = wait_for_value(mlmon.admin, "mlmon_version_performance", xb / n, model=CLF, version="v2", metric="accuracy")
    for model in (CLF, REG):
        for version in VERSIONS:
            assert value(samples, "mlmon_version_requests_total", model=model, version=version) == REQUESTS
            assert value(samples, "mlmon_version_errors_total", model=model, version=version) == 0
    assert value(samples, "mlmon_version_performance", model=CLF, version="v1", metric="accuracy") == pytest.approx(xa / n)
    assert value(samples, "mlmon_version_performance", model=REG, version="v2", metric="mae") == pytest.approx(b["abs"].mean())
    assert value(samples, "mlmon_version_comparison_p_value", model=CLF, version="v2", reference="v1",
                 metric="accuracy") == pytest.approx(p, rel=1e-6)
    # The version label is on the version families only.
    assert all("version" not in s.labels for s in samples if s.name.startswith("mlmon_requests_total"))

    # --- the per-version report and its errors.
    report = http.get(f"{mlmon.admin}/api/v1/models/{CLF}/versions", timeout=10).json()
    assert [v["version"] for v in report["versions"]] == ["v1", "v2"]
    assert report["reference"] in VERSIONS
    assert http.get(f"{mlmon.admin}/api/v1/models/{CLF}/compare?a=v1&b=v9", timeout=10).status_code == 404
    bad = http.get(f"{mlmon.admin}/api/v1/models/{CLF}/compare?a=v1", timeout=10)
    assert bad.status_code == 400 and "error" in bad.json()

    # --- the version header names the version when the path carries none.
    rows = request_rows(3, 9999)
    r = http.post(f"{mlmon.proxy}/v2/models/{CLF}/infer", data=body(rows, "h1"),
                  headers={**JSON, "x-model-version": "canary"}, timeout=30)
    assert r.status_code == 200, r.text
    wait_for_value(mlmon.admin, "mlmon_version_requests_total", 1, model=CLF, version="canary")
