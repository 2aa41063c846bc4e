"""mlmon's statistics against the reference implementations, on shared data (issue 12).

The binary under test (`MLMON_BINARY`) is run on the same data as scipy, scikit-learn and
NannyML:

1. offline drift (`mlmon baseline build` + `mlmon drift --output json`): KS statistic and
   Wasserstein-1 equal `scipy.stats.ks_2samp` / `scipy.stats.wasserstein_distance` on all
   rows, the KS p-value scipy's `method="asymp"` one (docs/drift.md: to 1e-3), and the
   chi-square p-value `scipy.stats.chisquare` over the occurring categories, with and without
   unseen categories (pooled into `__other__`);
2. live drift: the same batch sent through `mlmon serve` (records payloads, a stand-in model
   server on 127.0.0.1) gives KS within 0.005 and W1 within max(1 %, 0.002 x baseline std) of
   scipy on the full reference and the full window (SPEC section 5, "Accuracy");
3. `mlmon performance`: realized metrics of every chunk equal scikit-learn's to 1e-9;
4. label-free estimates: `scripts/compare_nannyml.py` (its full run, ~50 s) in its own
   virtualenv `.venv-nannyml` (scripts/test-env.sh; NannyML 0.13 needs pandas < 3): mlmon's
   overall MAE per metric is no worse than NannyML's CBPE.

Data: scikit-learn's bundled data sets (diabetes for drift, breast cancer and wine for
performance; they ship inside the wheel, nothing is downloaded) plus generated integer-coded,
boolean and string columns. Nothing skips: a missing prerequisite fails.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers import LOOPBACK, REPO, run

MODEL = "diabetes"
#: Categorical columns: `region` has the same categories in both sets (no `__other__`),
#: `plan` and `visits` (integer codes) have categories the baseline never saw, `smoker`
#: is boolean.
CATEGORICAL = ["region", "plan", "visits", "smoker"]
OTHER = "__other__"
#: Expected proportions are floored at this before renormalising (docs/drift.md).
CHI2_FLOOR = 1e-4


# --- Shared data ---------------------------------------------------------------------------

def _categorical_token(value) -> str:
    """How mlmon names a category: booleans `true`/`false`, integers without a fraction."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


@pytest.fixture(scope="module")
def drift_data(tmp_path_factory) -> dict:
    """The diabetes data set (442 patients, 10 numeric inputs and the target, scikit-learn's
    bundled copy) split at random into a reference of 250 rows and a batch of 192, with an
    integer-valued numeric column (`children`, ties), and categorical columns."""
    d = load_diabetes(as_frame=True, scaled=False).frame
    rng = np.random.default_rng(20261202)
    order = rng.permutation(len(d))
    ref = d.iloc[order[:250]].reset_index(drop=True)
    cur = d.iloc[order[250:]].reset_index(drop=True)
    for df, shift in ((ref, 0.0), (cur, 1.0)):
        n = len(df)
        df["children"] = rng.poisson(1.5 + shift, n)
        df["region"] = rng.choice(["north", "south", "east", "west"], n,
                                  p=[0.4, 0.3, 0.2, 0.1] if shift == 0 else [0.3, 0.3, 0.3, 0.1])
        df["plan"] = rng.choice(["basic", "plus", "premium"], n)
        df["visits"] = np.minimum(rng.poisson(2.0 + 0.5 * shift, n), 5)
        df["smoker"] = rng.random(n) < (0.25 + 0.1 * shift)
    # One unseen value each (more would make the chi-square p-value underflow to 0: an unseen
    # category's expected proportion is floored at 1e-4).
    cur.loc[0, "plan"] = "gold"
    cur.loc[1, "visits"] = 7
    tmp = tmp_path_factory.mktemp("drift")
    ref_csv, cur_csv, base = tmp / "reference.csv", tmp / "batch.csv", tmp / "baseline.json"
    ref.to_csv(ref_csv, index=False)
    cur.to_csv(cur_csv, index=False)
    return {"ref": ref, "cur": cur, "ref_csv": ref_csv, "cur_csv": cur_csv, "baseline": base,
            "dir": tmp}


@pytest.fixture(scope="module")
def baseline(mlmon_bin: Path, drift_data: dict) -> Path:
    """`mlmon baseline build` with default settings (the reference fits its KS sample)."""
    out = run([mlmon_bin, "baseline", "build", "--input", drift_data["ref_csv"], "--output",
               drift_data["baseline"], "--model", MODEL, "--categorical", ",".join(CATEGORICAL)])
    assert out.returncode == 0, f"baseline build failed:\n{out.stdout}\n{out.stderr}"
    snapshot = json.loads(drift_data["baseline"].read_text())
    types = {name: f["type"] for name, f in snapshot["features"].items()}
    assert all(types[c] == "categorical" for c in CATEGORICAL), types
    assert types["children"] == "numeric" and types["bmi"] == "numeric", types
    return drift_data["baseline"]


def numeric_columns(data: dict) -> list[str]:
    return [c for c in data["ref"].columns if c not in CATEGORICAL]


def expected_chi2(ref: pd.Series, cur: pd.Series):
    """`scipy.stats.chisquare` as docs/drift.md defines mlmon's: the batch's counts over the
    baseline's categories plus `__other__` (values the baseline never saw), against the
    baseline's proportions, over the categories that occur in either; proportions floored
    at 1e-4 and renormalised, times the batch size."""
    ref_tokens = ref.map(_categorical_token)
    cur_tokens = cur.map(_categorical_token)
    proportions = ref_tokens.value_counts(normalize=True).to_dict()
    known = cur_tokens.where(cur_tokens.isin(list(proportions)), OTHER)
    counts = known.value_counts().to_dict()
    categories = sorted(set(proportions) | set(counts))
    observed = np.array([counts.get(c, 0) for c in categories], dtype=float)
    p = np.array([proportions.get(c, 0.0) for c in categories])
    p = np.maximum(p, CHI2_FLOOR)
    expected = p / p.sum() * observed.sum()
    return stats.chisquare(observed, expected), counts.get(OTHER, 0)


# --- 1. Offline drift ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def offline_report(mlmon_bin: Path, drift_data: dict, baseline: Path) -> dict:
    out = run([mlmon_bin, "drift", "--baseline", baseline, "--input", drift_data["cur_csv"],
               "--output", "json"])
    # Exit code 0/1/2 is the status (the batch drifts on purpose), 3 an error.
    assert out.returncode in (0, 1, 2), f"mlmon drift failed ({out.returncode}):\n{out.stderr}"
    report = json.loads(out.stdout)
    return {f["feature"]: f for f in report["features"]}


def test_offline_ks_and_wasserstein_equal_scipy_on_all_rows(drift_data, offline_report):
    ref, cur = drift_data["ref"], drift_data["cur"]
    columns = numeric_columns(drift_data)
    assert len(columns) == 12, columns  # 10 inputs, the target, `children`
    for name in columns:
        f = offline_report[name]
        a, b = cur[name].to_numpy(float), ref[name].to_numpy(float)
        assert f["window"]["count"] == len(a), (name, f["window"])
        ks = stats.ks_2samp(a, b)
        assert f["ks_statistic"] == pytest.approx(ks.statistic, rel=1e-12, abs=1e-12), name
        asymp = stats.ks_2samp(a, b, method="asymp").pvalue
        assert f["ks_pvalue"] == pytest.approx(asymp, abs=1e-3), name
        w = stats.wasserstein_distance(a, b)
        assert f["wasserstein"] == pytest.approx(w, rel=1e-9, abs=1e-12), name
        assert f["ks_error_bound"] == 0.0 and f["wasserstein_error_bound"] == 0.0, name


def test_offline_chi_square_equals_scipy_over_occurring_categories(drift_data, offline_report):
    ref, cur = drift_data["ref"], drift_data["cur"]
    unseen = {}
    for name in CATEGORICAL:
        f = offline_report[name]
        assert f["type"] == "categorical", f
        expected, unseen[name] = expected_chi2(ref[name], cur[name])
        assert f["chi2_pvalue"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300), (
            name, expected)
    # Both cases are exercised: no `__other__` and unseen categories.
    assert unseen["region"] == 0 and unseen["smoker"] == 0, unseen
    assert unseen["plan"] == 1 and unseen["visits"] == 1, unseen
    p = {name: offline_report[name]["chi2_pvalue"] for name in CATEGORICAL}
    assert all(0.0 < v < 1.0 for v in p.values()), p


def test_offline_chi_square_of_identical_distributions_is_one(mlmon_bin, drift_data, baseline):
    """The `__other__`-free case at its edge: the reference itself as the batch."""
    out = run([mlmon_bin, "drift", "--baseline", baseline, "--input", drift_data["ref_csv"],
               "--output", "json"])
    assert out.returncode in (0, 1, 2), out.stderr
    report = {f["feature"]: f for f in json.loads(out.stdout)["features"]}
    for name in CATEGORICAL:
        expected, _ = expected_chi2(drift_data["ref"][name], drift_data["ref"][name])
        assert expected.pvalue == pytest.approx(1.0)
        assert report[name]["chi2_pvalue"] == pytest.approx(1.0, abs=1e-12), report[name]
    for name in numeric_columns(drift_data):
        assert report[name]["ks_statistic"] == 0.0 and report[name]["wasserstein"] == 0.0, name


# --- 2. Live drift through the proxy -------------------------------------------------------

class _RecordsModel(BaseHTTPRequestHandler):
    """A stand-in model server speaking the `records` format: a JSON array of objects in,
    `{"predictions": [...]}` out."""

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        rows = json.loads(body)
        out = json.dumps({"predictions": [float(r["bmi"]) * 5.0 for r in rows]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def records_upstream():
    server = ThreadingHTTPServer((LOOPBACK, 0), _RecordsModel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _json_row(row: pd.Series) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (np.integer,)):
            out[k] = int(v)
        elif isinstance(v, (np.floating, float)):
            out[k] = float(v)
        else:
            out[k] = v
    return out


def test_live_ks_and_wasserstein_within_spec_bounds_of_scipy(
        drift_data, baseline, start_mlmon, records_upstream, http):
    mlmon = start_mlmon(records_upstream, {
        "model": {"name": MODEL},
        "payload": {"format": "records"},
        "baseline": {"files": [str(baseline)]},
    })
    cur = drift_data["cur"]
    rows = [_json_row(r) for _, r in cur.iterrows()]
    for start in range(0, len(rows), 32):
        response = http.post(f"{mlmon.proxy}/predict", data=json.dumps(rows[start:start + 32]),
                             headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 200, response.text

    inputs = set(drift_data["ref"].columns)
    deadline = time.monotonic() + 30.0
    last = None
    while time.monotonic() < deadline:
        response = http.get(f"{mlmon.admin}/api/v1/models/{MODEL}/drift", timeout=5)
        last = f"{response.status_code} {response.text[:1500]}"
        if response.status_code == 200:
            report = {f["feature"]: f for f in response.json()["features"]
                      if f["feature"] in inputs}
            if len(report) == len(inputs) and all(
                    f["window"]["count"] >= len(cur) for f in report.values()):
                break
        time.sleep(0.2)
    else:
        pytest.fail(f"the window never held the {len(cur)} rows; last answer: {last}")

    ref = drift_data["ref"]
    for name in numeric_columns(drift_data):
        f = report[name]
        assert f["window"]["count"] == len(cur), (name, f["window"])
        a, b = cur[name].to_numpy(float), ref[name].to_numpy(float)
        ks = stats.ks_2samp(a, b).statistic
        assert abs(f["ks_statistic"] - ks) <= 0.005, (name, f["ks_statistic"], ks)
        w = stats.wasserstein_distance(a, b)
        bound = max(0.01 * w, 0.002 * b.std())
        assert abs(f["wasserstein"] - w) <= bound, (name, f["wasserstein"], w, bound)
    for name in CATEGORICAL:
        expected, _ = expected_chi2(ref[name], cur[name])
        assert report[name]["chi2_pvalue"] == pytest.approx(
            expected.pvalue, rel=1e-9, abs=1e-300), (name, report[name])


# --- 3. Realized metrics -------------------------------------------------------------------

def _classifier_sets(kind: str):
    """A logistic regression fitted on a third of a bundled data set; reference (baseline)
    and analysis rows from the rest, with its scores, predictions and the targets."""
    data = load_breast_cancer() if kind == "binary" else load_wine()
    x, y = data.data, data.target
    rng = np.random.default_rng(7 if kind == "binary" else 8)
    order = rng.permutation(len(y))
    third = len(y) // 3
    train, ref, ana = order[:third], order[third:2 * third], order[2 * third:]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
    model.fit(x[train], y[train])
    classes = list(model.classes_)

    def frame(idx):
        proba = model.predict_proba(x[idx])
        df = pd.DataFrame(x[idx][:, :4], columns=[f"x{j}" for j in range(4)])
        if kind == "binary":
            df["score"] = proba[:, 1]
        else:
            for c in classes:
                df[f"p{c}"] = proba[:, c]
        df["prediction"] = model.predict(x[idx])
        df["target"] = y[idx]
        return df

    probability = ["score"] if kind == "binary" else [f"p{c}" for c in classes]
    return frame(ref), frame(ana), classes, probability


def _sklearn_realized(kind: str, chunk: pd.DataFrame, classes, probability) -> dict:
    y, yp = chunk["target"].to_numpy(), chunk["prediction"].to_numpy()
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
    return {
        "accuracy": skm.accuracy_score(y, yp),
        "precision": skm.precision_score(y, yp, average="macro", labels=classes, zero_division=0),
        "recall": skm.recall_score(y, yp, average="macro", labels=classes, zero_division=0),
        "f1": skm.f1_score(y, yp, average="macro", labels=classes, zero_division=0),
        "specificity": float(np.mean([m[0, 0] / (m[0, 0] + m[0, 1]) for m in mcm])),
        "roc_auc": skm.roc_auc_score(y, chunk[probability].to_numpy(), multi_class="ovr",
                                     average="macro", labels=classes),
    }


@pytest.mark.parametrize("kind,chunk_size", [("binary", 48), ("multiclass", 20)])
def test_realized_metrics_equal_sklearn(mlmon_bin, tmp_path, kind, chunk_size):
    ref, ana, classes, probability = _classifier_sets(kind)
    ref_csv, ana_csv, base = tmp_path / "ref.csv", tmp_path / "ana.csv", tmp_path / "base.json"
    ref.to_csv(ref_csv, index=False)
    ana.to_csv(ana_csv, index=False)
    build = [mlmon_bin, "baseline", "build", "--input", ref_csv, "--output", base,
             "--prediction", "prediction", "--target", "target"]
    for col in probability:
        build += ["--probability", col]
    out = run(build)
    assert out.returncode == 0, out.stderr
    out = run([mlmon_bin, "performance", "--baseline", base, "--input", ana_csv,
               "--probability", ",".join(probability), "--chunk-size", chunk_size,
               "--output", "json"])
    assert out.returncode in (0, 1, 2), f"mlmon performance failed:\n{out.stderr}"
    chunks = json.loads(out.stdout)["chunks"]
    expected_chunks = -(-len(ana) // chunk_size)
    assert len(chunks) == expected_chunks, [c["rows"] for c in chunks]
    compared = 0
    for i, c in enumerate(chunks):
        part = ana.iloc[i * chunk_size:(i + 1) * chunk_size]
        assert c["rows"] == len(part), c
        if part["target"].nunique() < len(classes):
            continue  # ROC AUC undefined: the chunk's realized set may leave it out
        want = _sklearn_realized(kind, part, classes, probability)
        for metric, value in want.items():
            assert c["realized"][metric] == pytest.approx(value, rel=1e-9, abs=1e-9), (
                i, metric, c["realized"])
        compared += 1
    assert compared >= 3, f"only {compared} chunks had every class"


# --- 4. Label-free estimates vs NannyML ----------------------------------------------------

#: compare_nannyml.py's default: 8 scenarios x 20 analysis chunks of 5 000 rows, the run
#: whose figures docs/performance-monitoring.md shows (~50 s on 2 cores).
NANNYML_CHUNKS = 20


def nannyml_python() -> Path:
    """`$MLMON_NANNYML_PYTHON`, else `.venv-nannyml/bin/python` (scripts/test-env.sh)."""
    env = os.environ.get("MLMON_NANNYML_PYTHON")
    path = Path(env) if env else REPO / ".venv-nannyml" / "bin" / "python"
    if not path.exists():
        pytest.fail(f"NannyML's virtualenv is missing ({path}): run scripts/test-env.sh "
                    f"(make deps) or set MLMON_NANNYML_PYTHON")
    return path


def test_estimates_no_worse_than_nannyml(mlmon_bin, tmp_path):
    python = nannyml_python()
    out_json = tmp_path / "mae.json"
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
    started = time.monotonic()
    out = run([python, REPO / "scripts" / "compare_nannyml.py", "--mlmon", mlmon_bin,
               "--json", out_json], timeout=600, env=env)
    elapsed = time.monotonic() - started
    assert out_json.exists(), f"compare_nannyml.py wrote no result ({out.returncode}):\n" \
                              f"{out.stdout}\n{out.stderr}"
    mae = json.loads(out_json.read_text())
    print(f"compare_nannyml.py: {elapsed:.0f}s\n{out.stdout}",
          file=sys.stderr)
    worse = {m: v for m, v in mae.items() if v["mlmon"] > v["nannyml"]}
    assert not worse, f"mlmon's MAE is worse than NannyML's:\n{out.stdout}"
    assert all(v["chunks"] == 8 * NANNYML_CHUNKS for v in mae.values()), mae
    assert out.returncode == 0, out.stderr
