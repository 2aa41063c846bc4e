"""mlmon against a real MLflow tracking server (`mlflow server`, full MLflow with its REST API
and artifact proxy) on 127.0.0.1:

1. a training run logs its dataset as an artifact (the MLflow client, as a data scientist
   would) and registers a model version linked to the run;
2. `mlmon baseline build --from-mlflow runs:/…` and `models:/<name>/<version>` build the same
   snapshot as from the local file, and `--log-to-mlflow` logs it back to the run;
3. `mlmon drift --mlflow-run` and `mlmon performance --mlflow-run` log their figures, which
   are read back from MLflow and compared with mlmon's own JSON output and with sklearn.

The tracking server runs from `.venv-nannyml` (scripts/test-env.sh): full MLflow pins
pyarrow < 26 while the test venv pins pyarrow 26 for the fixtures. `MLMON_MLFLOW_SERVER`
points at another `mlflow` executable.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from helpers import REPO, ManagedProcess, free_port, wait_http_ok

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import mlflow  # noqa: E402  (after the telemetry switch)
from mlflow.tracking import MlflowClient  # noqa: E402

FEATURES = ["age", "income", "score"]


def mlflow_server_bin() -> str:
    path = Path(os.environ.get("MLMON_MLFLOW_SERVER", REPO / ".venv-nannyml" / "bin" / "mlflow"))
    if not path.exists():
        pytest.fail(f"MLflow tracking server not installed at {path}: run scripts/test-env.sh "
                    f"(it installs full mlflow into .venv-nannyml) or set MLMON_MLFLOW_SERVER")
    return str(path)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("mlflow-tracking")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    proc = ManagedProcess.launch("mlflow-server", [
        mlflow_server_bin(), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}", "--artifacts-destination", str(tmp / "artifacts"),
    ], tmp, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        # Cold start of the server (Python imports, database migrations) on a busy 2-core machine.
        wait_http_ok(f"{url}/health", timeout=240, proc=proc)
        yield url
    finally:
        proc.stop()


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.normal(40 + shift * 10, 10, n),
        "income": rng.lognormal(10 + shift, 0.5, n),
        "score": rng.uniform(0, 1, n),
    })
    logit = 0.05 * (df["age"] - 40) + 2 * (df["score"] - 0.5)
    p = 1 / (1 + np.exp(-logit))
    df["target"] = (rng.uniform(0, 1, n) < p).astype(int)
    df["probability"] = p.round(6)
    df["prediction"] = (p > 0.5).astype(int)
    return df


@pytest.fixture(scope="module")
def training_run(tracking, tmp_path_factory):
    """A run with its training set logged under data/, and model `fraud` version 1 linked to it."""
    tmp = tmp_path_factory.mktemp("training")
    train = tmp / "train.csv"
    frame(4000, 1).to_csv(train, index=False)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_experiment("mlmon-e2e")
    with mlflow.start_run() as run:
        mlflow.log_param("model", "logistic")
        mlflow.log_metric("train_accuracy", 0.8)
        mlflow.log_artifact(str(train), "data")
    client = MlflowClient(tracking)
    client.create_registered_model("fraud")
    client.create_model_version("fraud", f"runs:/{run.info.run_id}/data", run_id=run.info.run_id)
    return {"run_id": run.info.run_id, "train": train, "tmp": tmp, "client": client}


def mlmon(mlmon_bin, tracking, *args, check=True):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["MLFLOW_TRACKING_URI"] = tracking
    proc = subprocess.run([str(mlmon_bin), *args], capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode not in (0, 1, 2):
        pytest.fail(f"mlmon {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def comparable(snapshot_file: Path) -> dict:
    doc = json.loads(snapshot_file.read_text())
    for volatile in ("id", "created_at", "source"):
        doc.pop(volatile, None)
    return doc


def test_baseline_from_a_run_equals_the_local_build_and_is_logged_back(mlmon_bin, tracking, training_run):
    run_id, tmp = training_run["run_id"], training_run["tmp"]
    common = ["--prediction", "prediction", "--probability", "probability", "--target", "target"]
    local = tmp / "local.json"
    mlmon(mlmon_bin, tracking, "baseline", "build", "--input", str(training_run["train"]), "--output", str(local),
          "--model", "fraud", *common)
    remote = tmp / "baseline.json"
    proc = mlmon(mlmon_bin, tracking, "baseline", "build", "--from-mlflow", f"runs:/{run_id}/data/train.csv",
                 "--output", str(remote), "--model", "fraud", "--log-to-mlflow", *common)
    assert proc.returncode == 0, proc.stderr
    assert comparable(remote) == comparable(local)
    assert f"logged mlmon/baseline.json to MLflow run {run_id}" in proc.stderr

    client = training_run["client"]
    logged = Path(client.download_artifacts(run_id, "mlmon/baseline.json", str(tmp / "dl")))
    assert json.loads(logged.read_text()) == json.loads(remote.read_text())
    tags = client.get_run(run_id).data.tags
    assert tags["mlmon.baseline_id"] == json.loads(remote.read_text())["id"]
    assert tags["mlmon.baseline_rows"] == "4000"


def test_baseline_from_a_registered_model_version_finds_the_runs_dataset(mlmon_bin, tracking, training_run):
    tmp = training_run["tmp"]
    out = tmp / "from-model.json"
    proc = mlmon(mlmon_bin, tracking, "baseline", "build", "--from-mlflow", "models:/fraud/1", "--output", str(out),
                 "--model", "fraud", "--prediction", "prediction", "--target", "target")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["row_count"] == 4000
    assert {f["name"] if isinstance(f, dict) else f for f in doc["features"]} >= set(FEATURES)


def test_drift_and_performance_figures_land_in_the_run(mlmon_bin, tracking, training_run):
    run_id, tmp, client = training_run["run_id"], training_run["tmp"], training_run["client"]
    baseline = tmp / "baseline-perf.json"
    mlmon(mlmon_bin, tracking, "baseline", "build", "--input", str(training_run["train"]), "--output", str(baseline),
          "--model", "fraud", "--prediction", "prediction", "--probability", "probability", "--target", "target")
    live = frame(3000, 2, shift=1.0)
    batch = tmp / "live.csv"
    live.to_csv(batch, index=False)

    drift = mlmon(mlmon_bin, tracking, "drift", "--baseline", str(baseline), "--input", str(batch),
                  "--output", "json", "--mlflow-run", run_id)
    assert drift.returncode == 2, drift.stderr  # the shifted batch is critical
    report = json.loads(drift.stdout)
    metrics = client.get_run(run_id).data.metrics
    for f in report["features"]:
        if f.get("psi") is not None:
            key = f"mlmon.drift.{f['kind']}.{f['feature']}.psi"
            assert metrics[key] == pytest.approx(f["psi"], rel=1e-12), key
    assert metrics["mlmon.drift.status"] == 2
    assert metrics["mlmon.drift.input.age.status"] == 2
    logged = json.loads(Path(client.download_artifacts(run_id, "mlmon/drift.json", str(tmp / "dl2"))).read_text())
    assert logged["features"] == report["features"]

    perf = mlmon(mlmon_bin, tracking, "performance", "--baseline", str(baseline), "--input", str(batch),
                 "--probability", "probability", "--chunk-size", "1000", "--output", "json", "--mlflow-run", run_id)
    assert perf.returncode in (0, 1, 2), perf.stderr
    history = client.get_metric_history(run_id, "mlmon.performance.realized.accuracy")
    by_step = {m.step: m.value for m in history}
    assert sorted(by_step) == [0, 1, 2]
    for step in range(3):
        chunk = live.iloc[step * 1000:(step + 1) * 1000]
        assert by_step[step] == pytest.approx(accuracy_score(chunk["target"], chunk["prediction"]), abs=1e-12)
    assert client.get_metric_history(run_id, "mlmon.performance.estimated.accuracy")


def test_mlflow_errors_are_one_clear_line(mlmon_bin, tracking, training_run):
    tmp = training_run["tmp"]
    proc = mlmon(mlmon_bin, tracking, "baseline", "build", "--from-mlflow", "runs:/0123456789abcdef/data/train.csv",
                 "--output", str(tmp / "x.json"), check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlmon: error: MLflow http://127.0.0.1:"), proc.stderr
    assert "runs/get" in lines[0]
    proc = mlmon(mlmon_bin, tracking, "baseline", "build", "--from-mlflow", "models:/no-such-model/3",
                 "--output", str(tmp / "x.json"), check=False)
    assert proc.returncode == 1 and "no-such-model" in proc.stderr, proc.stderr
    proc = mlmon(mlmon_bin, "http://127.0.0.1:9", "drift", "--baseline", str(tmp / "baseline.json"),
                 "--input", str(training_run["train"]), "--mlflow-run", training_run["run_id"], check=False)
    assert proc.returncode == 3 and "MLflow http://127.0.0.1:9/" in proc.stderr, proc.stderr
