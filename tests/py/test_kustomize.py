"""The plain manifests in k8s/ (kustomize base, components, overlays): they build with
`kubectl kustomize`, every object validates, and they stay in step with the chart."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers import (K8S, KUBE_VERSIONS, REPO, by_kind, container, helm_template, kustomize, one,
                     pod_spec, port_of, source_rule_groups, validate_all)

# helm and kubectl in .tools/bin (conftest.helm_tools).
pytestmark = pytest.mark.usefixtures("helm_tools")

OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
SOURCE_DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))


def test_the_example_overlays_exist():
    assert {"example", "sidecar-only"} <= set(OVERLAYS)


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("target", ["base", *[f"overlays/{o}" for o in OVERLAYS]])
def test_kustomize_output_validates_strictly(target, kube_version):
    objs = kustomize(K8S / target)
    validate_all(objs, kube_version)
    names = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names))


def _config(objs: list[dict], deployment: dict) -> dict:
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    name = volumes["mlmon-config"]["configMap"]["name"]
    cm = next(o for o in by_kind(objs, "ConfigMap") if o["metadata"]["name"] == name)
    return yaml.safe_load(cm["data"]["config.yaml"])


def test_example_overlay_runs_model_and_mlmon_behind_the_service():
    objs = kustomize(K8S / "overlays" / "example")
    deploy = one(objs, "Deployment")
    assert deploy["metadata"]["namespace"] == "models"
    spec = pod_spec(deploy)
    model, model_is_init = container(spec, "model")
    mlmon, mlmon_is_init = container(spec, "mlmon")
    assert not model_is_init and mlmon_is_init and mlmon["restartPolicy"] == "Always"
    svc = one(objs, "Service")
    ports = {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]}
    assert ports == {"http": port_of(mlmon, "proxy"), "metrics": port_of(mlmon, "metrics")}
    assert svc["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["selector"]["app.kubernetes.io/instance"] == "iris"
    cfg = _config(objs, deploy)
    assert cfg["listen"] == f"0.0.0.0:{port_of(mlmon, 'proxy')}"
    assert cfg["admin_listen"] == f"0.0.0.0:{port_of(mlmon, 'metrics')}"
    assert cfg["upstream"] == f"http://127.0.0.1:{port_of(model, 'model-http')}"
    assert cfg["model"]["name"] == "iris"
    sm = one(objs, "ServiceMonitor")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "iris", \
        "each instance's ServiceMonitor must select only its own Service"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_example_overlay_carries_the_repository_rules_and_dashboards():
    objs = kustomize(K8S / "overlays" / "example")
    assert one(objs, "PrometheusRule")["spec"]["groups"] == source_rule_groups()
    dashboards = {}
    for cm in by_kind(objs, "ConfigMap"):
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            (key, text), = cm["data"].items()
            dashboards[key] = json.loads(text)
    assert dashboards == {p.name: json.loads(p.read_text()) for p in SOURCE_DASHBOARDS}


def test_sidecar_component_adds_mlmon_to_labelled_deployments_only():
    objs = kustomize(K8S / "overlays" / "sidecar-only")
    deploy = one(objs, "Deployment")
    spec = pod_spec(deploy)
    server, _ = container(spec, "server")
    mlmon, is_init = container(spec, "mlmon")
    assert is_init and mlmon["restartPolicy"] == "Always"
    cfg = _config(objs, deploy)
    assert cfg["upstream"] == f"http://127.0.0.1:{port_of(server, 'http')}"
    # The user's Service now goes through mlmon; the metrics Service finds the pods.
    services = {s["metadata"]["name"]: s for s in by_kind(objs, "Service")}
    assert services["sentiment"]["spec"]["ports"][0]["targetPort"] == port_of(mlmon, "proxy")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert services["mlmon-metrics"]["spec"]["selector"].items() <= pod_labels.items()
    assert pod_labels["app"] == "sentiment", "the Deployment's own selector labels must survive the patch"


def test_sidecar_patch_matches_the_base_container():
    """components/sidecar/sidecar.yaml repeats base/deployment.yaml's mlmon container;
    both must stay the same."""
    base = yaml.safe_load((K8S / "base" / "deployment.yaml").read_text())
    patch = yaml.safe_load((K8S / "components" / "sidecar" / "sidecar.yaml").read_text())
    base_spec = base["spec"]["template"]["spec"]
    patch_spec = patch["spec"]["template"]["spec"]
    assert patch_spec["initContainers"] == [c for c in base_spec["initContainers"] if c["name"] == "mlmon"]
    assert patch_spec["volumes"] == [v for v in base_spec["volumes"] if v["name"].startswith("mlmon-")]


def test_base_matches_the_chart_defaults():
    """The kustomize base and the chart's default render describe the same mlmon sidecar."""
    chart = one(helm_template(kube_version="1.35.0"), "Deployment")
    base = one(kustomize(K8S / "base"), "Deployment")
    chart_mlmon, _ = container(pod_spec(chart), "mlmon")
    base_mlmon, _ = container(pod_spec(base), "mlmon")
    for key in ("image", "args", "ports", "startupProbe", "livenessProbe", "readinessProbe",
                "securityContext", "resources", "restartPolicy"):
        assert chart_mlmon.get(key) == base_mlmon.get(key), f"mlmon container {key} differs"
    assert pod_spec(chart)["securityContext"] == pod_spec(base)["securityContext"]
