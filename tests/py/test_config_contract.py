"""The configuration the chart and the kustomize manifests render is one the real mlmon
binary accepts: every rendered config file passes `mlmon check-config`, and the sidecar's
command line is a real `mlmon serve` invocation."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import CHART, REPO, by_kind, helm_template, kustomize, pod_spec

# helm and kubectl in .tools/bin (conftest.helm_tools).
pytestmark = pytest.mark.usefixtures("helm_tools")

MLMON = Path(os.environ.get("MLMON_BINARY", REPO / "target" / "debug" / "mlmon"))
SNAPSHOT = REPO / "tests" / "fixtures" / "baseline" / "python_snapshot.json"
VALUES = sorted((CHART / "ci").glob("*.yaml"))


def mlmon_bin() -> Path:
    if not MLMON.is_file():
        pytest.fail(f"mlmon binary not found at {MLMON}: run `cargo build` (make test does)")
    return MLMON


def rendered_configs(objs: list[dict]) -> list[tuple[str, str]]:
    """(object name, config text) of every ConfigMap/Secret key that holds an mlmon config."""
    out = []
    for obj in by_kind(objs, "ConfigMap"):
        # `mlmon trigger`'s config is another program's (test_chart.py checks it with
        # `mlmon trigger --check`).
        if obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "trigger":
            continue
        for key, text in (obj.get("data") or {}).items():
            if key.endswith((".yaml", ".yml", ".toml")) and "dashboard" not in obj["metadata"]["name"]:
                doc = yaml.safe_load(text)
                if isinstance(doc, dict) and ("upstream" in doc or "listen" in doc or "admin_listen" in doc):
                    out.append((f"{obj['metadata']['name']}/{key}", text))
    return out


def check(config_text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Runs `mlmon check-config` on the text, with baseline paths pointed at a real snapshot."""
    doc = yaml.safe_load(config_text)
    files = (doc.get("baseline") or {}).get("files") or []
    if files:
        copies = []
        for i, _ in enumerate(files):
            target = tmp_path / f"baseline-{i}.json"
            shutil.copy(SNAPSHOT, target)
            copies.append(str(target))
        doc["baseline"]["files"] = copies[:1]  # one snapshot per model: the fixture names one
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLMON_")}
    return subprocess.run([str(mlmon_bin()), "check-config", "--config", str(path)],
                          capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.parametrize("values", [None, *VALUES], ids=lambda v: "default" if v is None else v.stem)
def test_every_rendered_config_is_accepted_by_mlmon(values, tmp_path):
    args = [] if values is None else ["-f", str(values)]
    objs = helm_template(*args)
    configs = rendered_configs(objs)
    if values is not None and "existing-configmap" in values.stem:
        assert configs == [], "an existing ConfigMap is mounted, not rendered"
        return
    assert configs, "the chart renders an mlmon config"
    for name, text in configs:
        result = check(text, tmp_path)
        assert result.returncode == 0, f"{name} refused by mlmon: {result.stderr.strip()}\n{text}"


def test_sidecar_command_line_is_a_real_mlmon_invocation(tmp_path):
    objs = helm_template()
    spec = pod_spec(by_kind(objs, "Deployment")[0])
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    mlmon = [c for c in containers if c["name"] == "mlmon"]
    assert len(mlmon) == 1
    args = mlmon[0].get("args") or mlmon[0].get("command")
    assert args[0] == "serve", args
    # The flags parse: `mlmon serve --help` lists every flag the chart passes.
    help_text = subprocess.run([str(mlmon_bin()), "serve", "--help"], capture_output=True,
                               text=True, timeout=30).stdout
    for flag in [a.split("=")[0] for a in args if a.startswith("--")]:
        assert flag in help_text, f"chart passes {flag}, which mlmon serve does not know"


def test_kustomize_configs_are_accepted_by_mlmon(tmp_path):
    overlays = [p for p in (REPO / "k8s" / "overlays").iterdir() if p.is_dir()]
    assert overlays
    checked = 0
    for overlay in overlays:
        for name, text in rendered_configs(kustomize(overlay)):
            result = check(text, tmp_path)
            assert result.returncode == 0, f"{overlay.name} {name}: {result.stderr.strip()}\n{text}"
            checked += 1
    assert checked >= 1
