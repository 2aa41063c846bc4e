"""Fixtures of the Python test package (`make py-test`): real model servers (MLServer,
MLflow) with mlmon in front, Prometheus/Alertmanager tools, helm/kubectl.

Nothing here skips: a server or tool that cannot be started FAILS the tests that need it,
with its command line and the end of its log. Every server binds 127.0.0.1 on a free port
and is stopped by its process-group id at teardown.

Environment: `MLMON_BINARY`, the binary under test (default: `target/debug/mlmon` in this
repository); PROMTOOL, AMTOOL, PROMETHEUS, ALERTMANAGER override the tools' paths (Debian
packages `prometheus` and `prometheus-alertmanager`). Server logs are kept in pytest's tmp
dirs and quoted in failure messages. Model servers are started once per session; each test
starts its own mlmon (fresh counters).

The package runs under `--import-mode=importlib`, which does not put its directory on
sys.path: it is added here for `helpers` and the stand-in servers.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import (  # noqa: E402
    LOOPBACK, VALIDATED, ManagedProcess, Mlmon, ModelServer, ensure_tools, find_tool, fit_classifier,
    free_port, http_ok, mlmon_binary, training_data, wait_ready,
)

# MLflow reports usage to a remote endpoint unless told not to; these tests send traffic to
# loopback only. Set before mlflow is imported anywhere in this process or its children.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

#: Seconds a model server may take to become ready (MLServer loads its runtime in a worker).
SERVER_START_TIMEOUT = 90.0


def venv_executable(name: str) -> Path:
    """A console script installed next to the running interpreter (the test venv's bin/)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable} ({path} missing): "
                    f"install tests/py/requirements.txt into this virtualenv (make deps)")
    return path


def child_env() -> dict[str, str]:
    """Environment for model servers: the venv's bin/ first on PATH (MLflow runs `uvicorn`
    by name), no proxy settings (everything is loopback), telemetry off."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session", autouse=True)
def _no_proxy_for_loopback() -> None:
    # requests honours *_proxy variables; loopback traffic must never go through one.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture(scope="session")
def mlmon_bin() -> Path:
    path = mlmon_binary()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"mlmon binary not found or not executable at {path}: build it with "
                    f"`cargo build` or point MLMON_BINARY at it")
    return path


# --- MLServer -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mlserver(tmp_path_factory) -> Iterator[ModelServer]:
    """MLServer with the sklearn runtime serving a LogisticRegression pipeline trained on
    `training_data()` as a plain [N, F] float array (no column names)."""
    import joblib

    mlserver_exe = venv_executable("mlserver")
    root = tmp_path_factory.mktemp("mlserver")
    model_name = "churn-clf"
    model_dir = root / "models" / model_name
    model_dir.mkdir(parents=True)
    x, y = training_data()
    joblib.dump(fit_classifier(x.to_numpy(), y), model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": model_name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }))
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    (root / "models" / "settings.json").write_text(json.dumps({
        "debug": False,
        "host": LOOPBACK,
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        # No metrics server: one listener fewer, and no multiprocess metrics dir in the cwd.
        "metrics_endpoint": None,
        "metrics_dir": str(root / "mlserver-metrics"),
        "parallel_workers": 0,
        "load_models_at_startup": True,
    }))
    process = ManagedProcess("MLServer", [str(mlserver_exe), "start", str(root / "models")],
                             root / "mlserver.log")
    try:
        process.start(cwd=root, env=child_env())
    except RuntimeError as e:
        pytest.fail(str(e))
    url = f"http://{LOOPBACK}:{http_port}"
    try:
        wait_ready(process, lambda: http_ok(f"{url}/v2/models/{model_name}/ready"),
                   f"ready at {url}/v2/models/{model_name}/ready", SERVER_START_TIMEOUT)
    except AssertionError as e:
        process.stop()
        pytest.fail(f"MLServer could not be started: {e}")
    try:
        yield ModelServer(url=url, model=model_name, process=process)
    finally:
        process.stop()


# --- MLflow ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[ModelServer]:
    """`mlflow models serve --env-manager local` on a pipeline saved with
    `mlflow.sklearn.save_model`, with a signature naming the features."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow_exe = venv_executable("mlflow")
    venv_executable("uvicorn")  # mlflow's scoring server runs it by name
    root = tmp_path_factory.mktemp("mlflow")
    x, y = training_data()
    model = fit_classifier(x, y)
    model_dir = root / "model"
    # Explicit pip requirements: inferring them runs the model in a subprocess (10-30 s), and
    # `--env-manager local` does not use them anyway.
    mlflow.sklearn.save_model(model, str(model_dir),
                              signature=infer_signature(x, model.predict(x)),
                              pip_requirements=["mlflow-skinny", "scikit-learn", "skops"])
    port = free_port()
    process = ManagedProcess(
        "mlflow models serve",
        [str(mlflow_exe), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
         "-h", LOOPBACK, "-p", str(port), "-w", "1"],
        root / "mlflow.log")
    try:
        process.start(cwd=root, env=child_env())
    except RuntimeError as e:
        pytest.fail(str(e))
    url = f"http://{LOOPBACK}:{port}"
    try:
        wait_ready(process, lambda: http_ok(f"{url}/ping"), f"ready at {url}/ping",
                   SERVER_START_TIMEOUT)
    except AssertionError as e:
        process.stop()
        pytest.fail(f"mlflow models serve could not be started: {e}")
    try:
        yield ModelServer(url=url, model="churn-mlflow", process=process)
    finally:
        process.stop()


# --- mlmon ----------------------------------------------------------------------------------

MlmonFactory = Callable[..., Mlmon]


@pytest.fixture
def start_mlmon(mlmon_bin: Path, tmp_path: Path) -> Iterator[MlmonFactory]:
    """Factory: `start_mlmon(upstream_url, config_dict)` starts `mlmon serve` with that config
    (written as YAML) in front of `upstream_url` and waits until `/readyz` answers 200."""
    started: list[ManagedProcess] = []

    def start(upstream: str, config: dict, name: str = "mlmon") -> Mlmon:
        config_path = tmp_path / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        listen, admin = free_port(), free_port()
        process = ManagedProcess(name, [
            str(mlmon_bin), "serve", "--config", str(config_path),
            "--listen", f"{LOOPBACK}:{listen}", "--admin-listen", f"{LOOPBACK}:{admin}",
            "--upstream", upstream,
        ], tmp_path / f"{name}.log")
        try:
            process.start(cwd=tmp_path, env=child_env())
        except RuntimeError as e:
            pytest.fail(str(e))
        started.append(process)
        admin_url = f"http://{LOOPBACK}:{admin}"
        try:
            wait_ready(process, lambda: http_ok(f"{admin_url}/readyz"),
                       f"ready at {admin_url}/readyz", 20.0)
        except AssertionError as e:
            pytest.fail(f"mlmon could not be started with config {config_path}:\n"
                        f"{config_path.read_text()}\n{e}")
        return Mlmon(proxy=f"http://{LOOPBACK}:{listen}", admin=admin_url, process=process)

    yield start
    for process in started:
        process.stop(grace=5.0)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """An HTTP session that never uses a proxy from the environment."""
    with requests.Session() as s:
        s.trust_env = False
        yield s


# --- Prometheus and Alertmanager tools ------------------------------------------------------

def _tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.fail(f"{name} not found: install the Debian packages prometheus and prometheus-alertmanager "
                    f"(apt-get install -y --no-install-recommends prometheus prometheus-alertmanager)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return _tool("amtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return _tool("prometheus")


@pytest.fixture(scope="session")
def alertmanager_bin() -> str:
    return _tool("alertmanager")


# --- helm and kubectl -----------------------------------------------------------------------

@pytest.fixture(scope="session")
def helm_tools() -> None:
    """helm and kubectl in .tools/bin (fetched once); the deploy tests use it module-wide."""
    ensure_tools()


def pytest_terminal_summary(terminalreporter):
    if VALIDATED:
        total = sum(VALIDATED.values())
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(VALIDATED.items()))
        terminalreporter.write_line(f"deploy: validated {total} rendered objects ({kinds})")
