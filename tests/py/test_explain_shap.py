"""mlmon's black-box explanations against the `shap` package and closed forms, on models
served by real MLServer (sklearn runtime, OIP v2, one input per feature) and by the built-in
demo model.

mlmon computes KernelSHAP by re-sending rows to the model server; here the same model is
explained in-process by `shap` with the same background:
- exact enumeration (F <= 12): per-feature phi within 1e-6 of exact Shapley values
  (`shap.LinearExplainer` for a linear regression, `shap.explainers.ExactExplainer` and a
  direct enumeration for a logistic regression);
- sampled coalitions (F = 16, explain.shap_coalitions = 4094 of 65534): within SAMPLED_TOL of
  the exact values and KERNEL_TOL of `shap.KernelExplainer` with the same number of
  coalitions;
- efficiency: sum(phi) = f(x) - E[f] to 1e-9, E[f] as computed here to 1e-9;
- sensitivity: the analytic gradient of the logistic model within 1e-4 (relative);
- the number of model-server requests: the documented formula.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import time

import numpy as np
import pytest

from helpers import LOOPBACK, ManagedProcess, free_port, http_ok, wait_ready

shap = pytest.importorskip("shap", reason="shap is in tests/py/requirements.txt (make deps)")

#: Background rows: the baselines are built with this reference sample size, so the joint
#: sample *is* the background (no k-means) and shap gets exactly the same rows.
BACKGROUND = 8
#: Coalitions mlmon evaluates (explain.shap_coalitions, the default): exact up to 12 features.
COALITIONS = 4094
#: Largest |phi_mlmon - phi_exact| on the probability scale for 16 features with 4094 sampled
#: coalitions x 8 background rows (1 + 8 x 4095 = 32 761 model rows, 8 requests of <= 4096).
#: Measured: 0.0021 and 0.0030 (largest |phi| 0.22 and 0.27); KernelExplainer with the same
#: budget: 0.0020 and 0.0035.
SAMPLED_TOL = 0.01
#: Largest |phi_mlmon - phi_KernelExplainer| (l1_reg=False, nsamples=4094, same background):
#: both sample, so up to the sum of their errors. Measured: 0.0037 and 0.0044.
KERNEL_TOL = 0.015

JSON = {"Content-Type": "application/json"}


def training(n_features: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (600, n_features)) * rng.uniform(0.5, 3.0, n_features) + rng.normal(0, 2, n_features)
    w = rng.normal(0.0, 1.0, n_features)
    logit = (x - x.mean(axis=0)) / x.std(axis=0) @ w
    y_cls = (logit + rng.normal(0, 0.7, len(x)) > 0).astype(int)
    y_reg = x @ w + rng.normal(0, 0.1, len(x))
    return x, y_cls, y_reg


def names(n: int) -> list[str]:
    return [f"f{j}" for j in range(n)]


MODELS = {
    # name: (features, kind, seed)
    "logit5": (5, "logistic", 1),
    "linear6": (6, "linear", 2),
    "logit16": (16, "logistic", 3),
}


def fit(kind: str, x, y_cls, y_reg):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y_cls)
    return LinearRegression().fit(x, y_reg)


@pytest.fixture(scope="module")
def served(tmp_path_factory, mlmon_bin):
    """MLServer (sklearn runtime) serving MODELS, and the baseline of each built by
    `mlmon baseline build` with a BACKGROUND-row reference sample."""
    import joblib

    from conftest import SERVER_START_TIMEOUT, child_env, venv_executable

    root = tmp_path_factory.mktemp("shap-mlserver")
    fitted, baselines = {}, {}
    for name, (f, kind, seed) in MODELS.items():
        x, y_cls, y_reg = training(f, seed)
        model = fit(kind, x, y_cls, y_reg)
        fitted[name] = (model, kind, x)
        d = root / "models" / name
        d.mkdir(parents=True)
        joblib.dump(model, d / "model.joblib")
        (d / "model-settings.json").write_text(json.dumps({
            "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"}}))
        csv = root / f"{name}.csv"
        csv.write_text(",".join(names(f)) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in x) + "\n")
        out = root / f"{name}.baseline.json"
        subprocess.run([str(mlmon_bin), "baseline", "build", "--input", str(csv), "--output", str(out),
                        "--model", name, "--sample-size", str(BACKGROUND)],
                       check=True, capture_output=True, timeout=120)
        baselines[name] = out
    http_port, grpc_port = free_port(), free_port()
    (root / "models" / "settings.json").write_text(json.dumps({
        "debug": False, "host": LOOPBACK, "http_port": http_port, "grpc_port": grpc_port,
        "metrics_port": free_port(), "metrics_endpoint": None,
        "metrics_dir": str(root / "mlserver-metrics"), "parallel_workers": 0,
        "load_models_at_startup": True}))
    process = ManagedProcess("MLServer", [str(venv_executable("mlserver")), "start", str(root / "models")],
                             root / "mlserver.log")
    process.start(cwd=root, env=child_env())
    url = f"http://{LOOPBACK}:{http_port}"
    try:
        for name in MODELS:
            wait_ready(process, lambda n=name: http_ok(f"{url}/v2/models/{n}/ready"),
                       f"{name} ready", SERVER_START_TIMEOUT)
        yield url, fitted, baselines
    finally:
        process.stop()


def oip_body(cols: list[str], rows: np.ndarray) -> bytes:
    return json.dumps({
        "parameters": {"content_type": "pd"},
        "inputs": [{"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, j].tolist()}
                   for j, c in enumerate(cols)],
        "outputs": [{"name": "predict_proba"}],
    }).encode()


def oip_body_reg(cols: list[str], rows: np.ndarray) -> bytes:
    body = json.loads(oip_body(cols, rows))
    del body["outputs"]
    return json.dumps(body).encode()


@pytest.fixture(scope="module")
def mlmon_shap(served, mlmon_bin, tmp_path_factory):
    """mlmon in front of MLServer with the baselines, fed a few requests per model."""
    import requests
    import yaml

    from conftest import child_env

    url, fitted, baselines = served
    tmp = tmp_path_factory.mktemp("shap-mlmon")
    cfg = tmp / "mlmon.yaml"
    cfg.write_text(yaml.safe_dump({
        "baseline": {"files": [str(p) for p in baselines.values()]},
        "admin": {"allow_unauthenticated": True},
        "explain": {"shap_coalitions": COALITIONS, "background": 10, "batch_rows": 4096, "timeout": "30s"},
    }))
    listen, admin = free_port(), free_port()
    proc = ManagedProcess("mlmon", [str(mlmon_bin), "serve", "--config", str(cfg), "--listen", f"{LOOPBACK}:{listen}",
                                    "--admin-listen", f"{LOOPBACK}:{admin}", "--upstream", url], tmp / "mlmon.log")
    proc.start(cwd=tmp, env=child_env())
    admin_url = f"http://{LOOPBACK}:{admin}"
    try:
        wait_ready(proc, lambda: http_ok(f"{admin_url}/readyz"), "mlmon ready", 30.0)
        s = requests.Session()
        s.trust_env = False
        for name, (model, kind, x) in fitted.items():
            cols = names(x.shape[1])
            body = oip_body(cols, x[:5]) if kind == "logistic" else oip_body_reg(cols, x[:5])
            r = s.post(f"http://{LOOPBACK}:{listen}/v2/models/{name}/infer", data=body, headers=JSON, timeout=30)
            assert r.status_code == 200, r.text
        yield admin_url, s
    finally:
        proc.stop()


def explain(admin: str, session, model: str, method: str, row: dict, background=None, timeout=60.0) -> dict:
    """POSTs an explanation, waiting (bounded) until mlmon has learnt the model's format."""
    body = {"features": row}
    if background is not None:
        body["background"] = background
    deadline = time.monotonic() + 15.0
    while True:
        r = session.post(f"{admin}/api/v1/models/{model}/explain?method={method}", json=body, timeout=timeout)
        if r.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    return r.json()


def phi_of(v: dict, cols: list[str]) -> np.ndarray:
    by = {f["feature"]: f["shap"] for f in v["features"]}
    return np.array([by[c] for c in cols])


def joint_background(baseline_path, cols: list[str]) -> np.ndarray:
    js = json.loads(baseline_path.read_text())["joint_sample"]
    idx = [js["columns"].index(c) for c in cols]
    rows = np.array([[r[i] for i in idx] for r in js["rows"]], dtype=float)
    assert len(rows) == BACKGROUND
    return rows


def exact_shapley(f, x: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, float]:
    """Shapley values of v(S) = mean_b f(x_S, bg_b) by enumerating every subset."""
    m = len(x)
    masks = np.array(list(itertools.product([0, 1], repeat=m)), dtype=bool)
    rows = np.where(masks[:, None, :], x[None, None, :], bg[None, :, :]).reshape(-1, m)
    v = f(rows).reshape(len(masks), len(bg)).mean(axis=1)
    index = {tuple(mk): i for i, mk in enumerate(masks)}
    phi = np.zeros(m)
    for j in range(m):
        for mk in masks[~masks[:, j]]:
            s = int(mk.sum())
            w = math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m)
            with_j = mk.copy()
            with_j[j] = True
            phi[j] += w * (v[index[tuple(with_j)]] - v[index[tuple(mk)]])
    return phi, float(v[0])


def check_efficiency(v: dict, phi: np.ndarray, f_x: float, e_f: float):
    assert abs(v["prediction"] - f_x) < 1e-9, v
    assert abs(v["expected_value"] - e_f) < 1e-9, (v["expected_value"], e_f)
    assert abs(phi.sum() - (v["prediction"] - v["expected_value"])) < 1e-9


def test_linear_regression_matches_linear_explainer_exactly(served, mlmon_shap):
    _, fitted, baselines = served
    admin, s = mlmon_shap
    model, _, x = fitted["linear6"]
    cols = names(6)
    bg = joint_background(baselines["linear6"], cols)
    row = x[100]
    v = explain(admin, s, "linear6", "shap", dict(zip(cols, row.tolist())))
    assert v["exact"] is True and v["coalitions"] == 2 ** 6 - 2
    assert v["background"]["rows"] == BACKGROUND
    phi = phi_of(v, cols)
    expected = shap.LinearExplainer(model, bg).shap_values(row[None, :])[0]
    assert np.max(np.abs(phi - expected)) < 1e-6, (phi, expected)
    # The same as beta_j (x_j - mean_b x_j), and efficient.
    assert np.max(np.abs(phi - model.coef_ * (row - bg.mean(axis=0)))) < 1e-6
    check_efficiency(v, phi, float(model.predict(row[None, :])[0]), float(model.predict(bg).mean()))
    # Requests: 1 + K (C + 1) rows in ceil(rows / batch_rows) requests.
    rows = 1 + BACKGROUND * (2 ** 6 - 2 + 1)
    assert v["model_rows"] == rows and v["requests"] == math.ceil(rows / 4096)


def test_logistic_regression_matches_exact_shapley_values(served, mlmon_shap):
    _, fitted, baselines = served
    admin, s = mlmon_shap
    model, _, x = fitted["logit5"]
    cols = names(5)
    bg = joint_background(baselines["logit5"], cols)
    f = lambda a: model.predict_proba(a)[:, 1]  # noqa: E731
    for i in (3, 42, 77):
        row = x[i]
        v = explain(admin, s, "logit5", "shap", dict(zip(cols, row.tolist())))
        assert v["exact"] is True
        phi = phi_of(v, cols)
        exact, e_f = exact_shapley(f, row, bg)
        assert np.max(np.abs(phi - exact)) < 1e-6, (phi, exact)
        masker = shap.maskers.Independent(bg, max_samples=len(bg))
        by_shap = shap.explainers.ExactExplainer(f, masker)(row[None, :]).values[0]
        assert np.max(np.abs(phi - by_shap)) < 1e-6, (phi, by_shap)
        kernel = shap.KernelExplainer(f, bg).shap_values(row[None, :], nsamples=2 ** 5 - 2, silent=True)[0]
        assert np.max(np.abs(phi - kernel)) < 1e-6, (phi, kernel)
        check_efficiency(v, phi, float(f(row[None, :])[0]), e_f)


def test_sixteen_features_sampled_within_tolerance_of_exact_and_kernel_explainer(served, mlmon_shap):
    _, fitted, baselines = served
    admin, s = mlmon_shap
    model, _, x = fitted["logit16"]
    cols = names(16)
    bg = joint_background(baselines["logit16"], cols)
    f = lambda a: model.predict_proba(a)[:, 1]  # noqa: E731
    errors, kernel_errors, kernel_exact = [], [], []
    for i in (5, 250):
        row = x[i]
        v = explain(admin, s, "logit16", "shap", dict(zip(cols, row.tolist())))
        assert v["exact"] is False and v["coalitions"] == COALITIONS, v
        rows = 1 + BACKGROUND * (COALITIONS + 1)
        assert v["model_rows"] == rows and v["requests"] == math.ceil(rows / 4096)
        phi = phi_of(v, cols)
        exact, e_f = exact_shapley(f, row, bg)
        check_efficiency(v, phi, float(f(row[None, :])[0]), e_f)
        np.random.seed(20261202)  # KernelExplainer samples with numpy's global generator
        # l1_reg=False: plain KernelSHAP (its default selects 10 features when sampling).
        kernel = shap.KernelExplainer(f, bg).shap_values(row[None, :], nsamples=COALITIONS, l1_reg=False,
                                                         silent=True)[0]
        errors.append(float(np.max(np.abs(phi - exact))))
        kernel_exact.append(float(np.max(np.abs(kernel - exact))))
        kernel_errors.append(float(np.max(np.abs(phi - kernel))))
        scale = float(np.max(np.abs(exact)))
        print(f"row {i}: largest |phi| {scale:.4f}; max |phi - exact| {errors[-1]:.5f}; KernelExplainer: "
              f"max |kernel - exact| {kernel_exact[-1]:.5f}, max |phi - kernel| {kernel_errors[-1]:.5f}")
        assert errors[-1] < SAMPLED_TOL, f"max |phi - exact| {errors[-1]} (largest |phi| {scale})"
        assert kernel_errors[-1] < KERNEL_TOL, f"max |phi - KernelExplainer| {kernel_errors[-1]}"


def test_sensitivity_is_the_analytic_gradient_of_the_logistic_model(served, mlmon_shap):
    _, fitted, baselines = served
    admin, s = mlmon_shap
    model, _, x = fitted["logit5"]
    cols = names(5)
    scaler, logit = model[0], model[1]
    w = logit.coef_[0] / scaler.scale_
    for i in (7, 99):
        row = x[i]
        v = explain(admin, s, "logit5", "sensitivity", dict(zip(cols, row.tolist())))
        p = float(model.predict_proba(row[None, :])[0, 1])
        grad = {g["feature"]: g["gradient"] for g in v["features"]}
        for j, c in enumerate(cols):
            exact = p * (1 - p) * w[j]
            assert abs(grad[c] - exact) <= 1e-4 * abs(exact), (c, grad[c], exact)
        assert v["model_rows"] == 1 + 2 * 5 and v["requests"] == 1


# --- the built-in demo model ---------------------------------------------------------------

DEMO_NUMERIC = ["income", "age", "debt_ratio", "num_accounts"]
REGIONS = ["north", "south", "east", "west"]


def demo_proba(rows: np.ndarray) -> np.ndarray:
    """src/demo/model.rs predict_proba; rows: income, age, debt_ratio, num_accounts, region code."""
    effect = np.array([0.0, 0.3, -0.2, 0.1])[rows[:, 4].astype(int)]
    z = (-1.2 - 0.9 * (rows[:, 0] - 55_000.0) / 20_000.0 + 1.1 * (rows[:, 2] - 0.35) / 0.15
         - 0.02 * (rows[:, 1] - 40.0) + 0.15 * (rows[:, 3] - 4.0) + effect)
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def demo(mlmon_bin, tmp_path_factory):
    import requests

    logs = tmp_path_factory.mktemp("shap-demo")
    admin = f"{LOOPBACK}:{free_port()}"
    proc = ManagedProcess.launch("mlmon-demo", [str(mlmon_bin), "demo", "--duration", "300",
                                                "--listen", f"{LOOPBACK}:{free_port()}", "--admin-listen", admin], logs)
    try:
        wait_ready(proc, lambda: http_ok(f"http://{admin}/healthz"), "demo healthy", 60.0)
        s = requests.Session()
        s.trust_env = False
        yield f"http://{admin}", s
    finally:
        proc.stop()


def demo_row(r) -> dict:
    return {"income": r[0], "age": r[1], "debt_ratio": r[2], "num_accounts": r[3], "region": REGIONS[int(r[4])]}


def test_demo_model_shap_and_sensitivity(demo):
    admin, s = demo
    rng = np.random.default_rng(5)
    bg = np.column_stack([rng.normal(55_000, 15_000, 6), rng.normal(40, 10, 6), rng.uniform(0.1, 0.6, 6),
                          rng.integers(1, 9, 6).astype(float), rng.integers(0, 4, 6).astype(float)])
    x = np.array([38_000.0, 29.0, 0.52, 7.0, 1.0])
    v = explain(admin, s, "credit-risk", "shap", demo_row(x), background=[demo_row(b) for b in bg])
    assert v["exact"] is True and v["background"]["rows"] == 6
    cols = DEMO_NUMERIC + ["region"]
    phi = phi_of(v, cols)
    exact, e_f = exact_shapley(demo_proba, x, bg)
    assert np.max(np.abs(phi - exact)) < 1e-6, (phi, exact)
    kernel = shap.KernelExplainer(demo_proba, bg).shap_values(x[None, :], nsamples=2 ** 5 - 2, silent=True)[0]
    assert np.max(np.abs(phi - kernel)) < 1e-6, (phi, kernel)
    check_efficiency(v, phi, float(demo_proba(x[None, :])[0]), e_f)
    # 1 + K (C + 1) rows.
    assert v["model_rows"] == 1 + 6 * 31

    v = explain(admin, s, "credit-risk", "sensitivity", demo_row(x))
    p = float(demo_proba(x[None, :])[0])
    coef = {"income": -0.9 / 20_000.0, "age": -0.02, "debt_ratio": 1.1 / 0.15, "num_accounts": 0.15}
    grad = {g["feature"]: g["gradient"] for g in v["features"]}
    assert set(grad) == set(DEMO_NUMERIC) and v["skipped"] == ["region"], v
    for c, b in coef.items():
        exact = p * (1 - p) * b
        assert abs(grad[c] - exact) <= 1e-4 * abs(exact), (c, grad[c], exact)
