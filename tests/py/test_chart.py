"""The Helm chart helm/mlmon: lint, render with contrasting values, validate every object,
and check the behaviour users rely on (both containers, traffic through mlmon, monitoring
objects generated from the repository's rules and dashboards, clear refusals)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import (CHART, CI_VALUES, HELM, KUBE_VERSIONS, KUBECTL, OLDEST_KUBE, REPO, by_kind,
                     container, helm_template, helm_template_raw, one, parse_docs, pod_spec, port_of,
                     run, source_rule_groups, validate_all)

# helm and kubectl in .tools/bin (conftest.helm_tools).
pytestmark = pytest.mark.usefixtures("helm_tools")

VALUES_FILES = sorted(p.name for p in CI_VALUES.glob("*.yaml"))
SOURCE_DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))

# What each values file must render, beyond what every render has.
EXPECTED_KINDS = {
    "default": {"ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service", "Pod", "NetworkPolicy"},
    "native-sidecar-off.yaml": {"ServiceAccount", "ConfigMap", "Deployment", "Service", "Pod",
                                "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler"},
    "monitoring-crds.yaml": {"ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service", "Pod",
                             "ServiceMonitor", "PodMonitor", "PrometheusRule"},
    "existing-configmap.yaml": {"ServiceAccount", "Deployment", "Service"},
    "sidecar-only.yaml": {"ConfigMap", "Secret", "Service", "Pod", "PodMonitor", "PrometheusRule"},
    "collector.yaml": {"ServiceAccount", "ConfigMap", "Deployment", "Service", "Pod", "ServiceMonitor"},
    "trigger.yaml": {"ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service", "Pod",
                     "PersistentVolumeClaim", "NetworkPolicy"},
}


def values_args(name: str) -> list[str]:
    return [] if name == "default" else ["-f", str(CI_VALUES / name)]


def render(name: str, *extra: str, kube_version: str | None = "1.35.0") -> list[dict]:
    return helm_template(*values_args(name), *extra, kube_version=kube_version)


def mlmon_config(objs: list[dict]) -> dict:
    cm = next(o for o in by_kind(objs, "ConfigMap") if "config.yaml" in o.get("data", {}))
    return yaml.safe_load(cm["data"]["config.yaml"])


# --- lint and render -------------------------------------------------------------------

def test_every_contrasting_values_file_is_covered():
    assert set(VALUES_FILES) | {"default"} == set(EXPECTED_KINDS), \
        "each helm/mlmon/ci/*.yaml needs an EXPECTED_KINDS entry"


@pytest.mark.parametrize("values", ["default", *VALUES_FILES])
def test_helm_lint_strict(values):
    result = run([HELM, "lint", "--strict", CHART, *values_args(values)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", ["default", *VALUES_FILES])
def test_render_validates_strictly(values, kube_version):
    objs = render(values, kube_version=kube_version)
    validate_all(objs, kube_version)
    kinds = {o["kind"] for o in objs}
    assert EXPECTED_KINDS[values] <= kinds, f"missing {EXPECTED_KINDS[values] - kinds}"
    if values == "sidecar-only.yaml":
        assert "Deployment" not in kinds, "sidecarOnly must not create a Deployment"
    names = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names)), f"duplicate objects: {names}"


def test_regular_container_mode_validates_on_old_kubernetes():
    objs = render("native-sidecar-off.yaml", kube_version=OLDEST_KUBE)
    validate_all(objs, OLDEST_KUBE)


def test_native_sidecar_refused_on_kubernetes_before_1_29():
    result = helm_template_raw(kube_version="1.28.0")
    assert result.returncode != 0
    assert "sidecar.native=true needs Kubernetes >= 1.29" in result.stderr
    assert "set sidecar.native=false" in result.stderr


# --- the pod ---------------------------------------------------------------------------

@pytest.mark.parametrize("values,native", [("default", True), ("native-sidecar-off.yaml", False),
                                           ("monitoring-crds.yaml", True)])
def test_pod_runs_model_server_and_mlmon(values, native):
    objs = render(values)
    spec = pod_spec(one(objs, "Deployment"))
    model, model_is_init = container(spec, "model")
    mlmon, mlmon_is_init = container(spec, "mlmon")
    assert not model_is_init
    assert mlmon_is_init is native
    if native:
        assert mlmon["restartPolicy"] == "Always", "an init container without restartPolicy Always blocks the pod"
        assert [c["name"] for c in spec["containers"]] == ["model"]
    else:
        assert "restartPolicy" not in mlmon
        assert {c["name"] for c in spec["containers"]} == {"model", "mlmon"}
        assert "initContainers" not in spec
    assert mlmon["args"][:3] == ["serve", "--config", "/etc/mlmon/config.yaml"]
    assert mlmon["image"] == "ghcr.io/mlmon/mlmon:0.1.0"


def test_chart_app_version_is_the_crate_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    cargo = (REPO / "Cargo.toml").read_text()
    version = next(line.split('"')[1] for line in cargo.splitlines() if line.startswith("version"))
    assert chart["appVersion"] == version


@pytest.mark.parametrize("values", ["default", "native-sidecar-off.yaml", "collector.yaml"])
def test_service_sends_traffic_through_mlmon(values):
    objs = render(values)
    spec = pod_spec(one(objs, "Deployment"))
    mlmon, _ = container(spec, "mlmon")
    svc = one(objs, "Service")
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["http"]["targetPort"] == port_of(mlmon, "proxy")
    assert ports["metrics"]["targetPort"] == port_of(mlmon, "metrics")
    if values != "collector.yaml":
        model, _ = container(spec, "model")
        model_ports = {p["containerPort"] for p in model["ports"]}
        assert not model_ports & {p["targetPort"] for p in svc["spec"]["ports"]}, \
            "the Service must not reach the model server directly"
    # The Service selects exactly this release's pods.
    labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    # mlmon listens where the container ports say, and forwards to the model server.
    cfg = mlmon_config(objs)
    assert cfg["listen"] == f"0.0.0.0:{port_of(mlmon, 'proxy')}"
    assert cfg["admin_listen"] == f"0.0.0.0:{port_of(mlmon, 'metrics')}"
    if values == "collector.yaml":
        assert cfg["upstream"] == "http://sklearn-iris-predictor.kserve-test.svc.cluster.local"
        assert [c["name"] for c in spec["containers"]] == ["mlmon"], "mlmon alone is a regular container"
        assert "initContainers" not in spec
    else:
        model, _ = container(spec, "model")
        assert cfg["upstream"] == f"http://127.0.0.1:{port_of(model, 'model-http')}"


def test_user_config_is_merged_into_generated_config():
    cfg = mlmon_config(render("monitoring-crds.yaml"))
    assert cfg["model"] == {"name": "churn"}
    assert cfg["drift"] == {"window": "30m"}
    assert cfg["baseline"]["files"] == ["/var/lib/mlmon/baselines/churn.json"]
    assert "admin" not in cfg, "the token must not land in a ConfigMap"


def test_mlmon_container_is_hardened_and_probed():
    objs = render("default")
    spec = pod_spec(one(objs, "Deployment"))
    mlmon, _ = container(spec, "mlmon")
    sc = mlmon["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert mlmon["resources"]["requests"] and mlmon["resources"]["limits"]["memory"]
    assert mlmon["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert mlmon["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # /readyz needs the model server, which a native sidecar starts before: start-up must
    # not wait for it or the pod never starts.
    assert mlmon["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert mlmon[probe]["httpGet"]["port"] == "metrics"
    # Writable scratch space only where mounted.
    mounts = {m["mountPath"]: m for m in mlmon["volumeMounts"]}
    assert mounts["/etc/mlmon"]["readOnly"] is True
    assert "/tmp" in mounts


def test_config_changes_roll_the_pods():
    a = one(render("default"), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    b = one(render("default", "--set", "mlmon.config.drift.window=5m"), "Deployment")
    b = b["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert a != b


# --- config, baselines and the token ---------------------------------------------------

def test_admin_token_comes_from_a_secret():
    objs = render("monitoring-crds.yaml")
    mlmon, _ = container(pod_spec(one(objs, "Deployment")), "mlmon")
    env = {e["name"]: e for e in mlmon["env"]}
    ref = env["MLMON_ADMIN__TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = one(objs, "Secret")
    assert ref["name"] == secret["metadata"]["name"]
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == "s3cret-token"
    for cm in by_kind(objs, "ConfigMap"):
        assert "s3cret-token" not in json.dumps(cm), f"token leaked into ConfigMap {cm['metadata']['name']}"


def test_existing_secret_for_the_token_is_referenced_not_created():
    objs = render("native-sidecar-off.yaml")
    assert not by_kind(objs, "Secret")
    mlmon, _ = container(pod_spec(one(objs, "Deployment")), "mlmon")
    ref = {e["name"]: e for e in mlmon["env"]}["MLMON_ADMIN__TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "mlmon-admin", "key": "bearer"}


def test_a_random_admin_token_by_default():
    tokens = set()
    for _ in range(2):
        objs = render("default")
        mlmon, _ = container(pod_spec(one(objs, "Deployment")), "mlmon")
        ref = {e["name"]: e for e in mlmon["env"]}["MLMON_ADMIN__TOKEN"]["valueFrom"]["secretKeyRef"]
        secret = one(objs, "Secret")
        assert ref == {"name": secret["metadata"]["name"], "key": "token"}
        token = base64.b64decode(secret["data"]["token"]).decode()
        assert len(token) == 40 and token.isalnum(), token
        tokens.add(token)
    assert len(tokens) == 2, "the generated token is not random"


def test_no_token_env_when_generation_is_off():
    objs = render("default", "--set", "mlmon.adminToken.generate=false")
    assert not by_kind(objs, "Secret")
    mlmon, _ = container(pod_spec(one(objs, "Deployment")), "mlmon")
    assert "MLMON_ADMIN__TOKEN" not in {e["name"] for e in mlmon.get("env", [])}


def test_inline_baseline_is_mounted_where_the_config_points():
    objs = render("monitoring-crds.yaml")
    spec = pod_spec(one(objs, "Deployment"))
    mlmon, _ = container(spec, "mlmon")
    path = mlmon_config(objs)["baseline"]["files"][0]
    directory, filename = path.rsplit("/", 1)
    mount = next(m for m in mlmon["volumeMounts"] if m["mountPath"] == directory)
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    cm = next(o for o in by_kind(objs, "ConfigMap") if o["metadata"]["name"] == volume["configMap"]["name"])
    assert json.loads(cm["data"][filename]) == {"format_version": 1, "models": {}}


def test_existing_configmap_and_secret_are_mounted_not_created():
    objs = render("existing-configmap.yaml")
    assert not by_kind(objs, "ConfigMap")
    # The only Secret is the generated admin token; the baselines' Secret is the user's.
    assert [s["metadata"]["labels"]["app.kubernetes.io/component"] for s in by_kind(objs, "Secret")] == ["admin-token"]
    spec = pod_spec(one(objs, "Deployment"))
    mlmon, _ = container(spec, "mlmon")
    assert mlmon["args"][:3] == ["serve", "--config", "/etc/mlmon/mlmon.yaml"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["mlmon-config"]["configMap"]["name"] == "churn-mlmon-config"
    assert volumes["mlmon-baselines"]["secret"]["secretName"] == "churn-baselines"
    assert any(m["mountPath"] == "/var/lib/mlmon/baselines" for m in mlmon["volumeMounts"])


# --- monitoring ------------------------------------------------------------------------

def test_prometheus_rule_carries_the_repository_rules():
    objs = render("sidecar-only.yaml")
    rule = one(objs, "PrometheusRule")
    assert rule["spec"]["groups"] == source_rule_groups()


def test_prometheus_rule_adds_alert_labels_only_to_alerts():
    objs = render("monitoring-crds.yaml")
    rendered = one(objs, "PrometheusRule")["spec"]["groups"]
    source = source_rule_groups()
    assert [g["name"] for g in rendered] == [g["name"] for g in source]
    alerts = 0
    for got_group, want_group in zip(rendered, source):
        assert len(got_group["rules"]) == len(want_group["rules"])
        for got, want in zip(got_group["rules"], want_group["rules"]):
            if "alert" in want:
                alerts += 1
                assert got["labels"] == {**want.get("labels", {}), "team": "ml-platform"}
                assert {k: v for k, v in got.items() if k != "labels"} == \
                       {k: v for k, v in want.items() if k != "labels"}
            else:
                assert got == want
    assert alerts > 0, "prometheus/rules has no alerting rule"


def test_prometheus_rule_groups_can_be_disabled():
    first = source_rule_groups()[0]["name"]
    objs = render("sidecar-only.yaml", "--set-json", f'metrics.prometheusRule.disabledGroups=["{first}"]')
    names = [g["name"] for g in one(objs, "PrometheusRule")["spec"]["groups"]]
    assert first not in names and names == [g["name"] for g in source_rule_groups()[1:]]


def test_service_monitor_scrapes_the_metrics_port_of_this_release():
    objs = render("monitoring-crds.yaml")
    sm = one(objs, "ServiceMonitor")
    svc = one(objs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert [e["port"] for e in sm["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in {p["name"] for p in svc["spec"]["ports"]}
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"][0]["interval"] == "15s"


def test_pod_monitor_in_another_namespace_selects_the_release_namespace():
    objs = render("monitoring-crds.yaml")
    pm = one(objs, "PodMonitor")
    assert pm["metadata"]["namespace"] == "monitoring"
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["models"]}
    pod_labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    mlmon, _ = container(pod_spec(one(objs, "Deployment")), "mlmon")
    assert port_of(mlmon, pm["spec"]["podMetricsEndpoints"][0]["port"]) == 9464


def test_scrape_annotations_name_the_admin_port():
    annotations = one(render("native-sidecar-off.yaml"), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9464"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_dashboards_are_configmaps_for_the_grafana_sidecar():
    assert SOURCE_DASHBOARDS, "grafana/dashboards has no dashboard yet"
    objs = render("monitoring-crds.yaml")
    dashboards = [o for o in by_kind(objs, "ConfigMap") if o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    got = {}
    for cm in dashboards:
        assert cm["metadata"]["namespace"] == "monitoring"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "mlmon"
        (key, text), = cm["data"].items()
        got[key] = json.loads(text)
    assert got == {p.name: json.loads(p.read_text()) for p in SOURCE_DASHBOARDS}


# --- pod-level extras ------------------------------------------------------------------

def test_network_policy_exposes_only_mlmon_ports():
    objs = render("native-sidecar-off.yaml")
    np = one(objs, "NetworkPolicy")
    ports = [p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]]
    assert sorted(ports) == [8000, 9464]
    metrics_rule = next(r for r in np["spec"]["ingress"] if r["ports"][0]["port"] == 9464)
    assert metrics_rule["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    proxy_rule = next(r for r in np["spec"]["ingress"] if r["ports"][0]["port"] == 8000)
    assert "from" not in proxy_rule
    assert np["spec"]["podSelector"]["matchLabels"].items() <= \
        one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"].items()


def test_network_policy_is_on_by_default_and_hides_the_model_port():
    objs = render("default")
    np = one(objs, "NetworkPolicy")
    ports = sorted(p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"])
    assert ports == [8000, 9464], "the model server's port 8080 must not be reachable from outside the pod"


def test_hpa_and_pdb_target_the_deployment():
    objs = render("native-sidecar-off.yaml")
    deploy = one(objs, "Deployment")
    assert "replicas" not in deploy["spec"], "the HPA owns the replica count"
    hpa = one(objs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deploy["metadata"]["name"]}
    assert {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]} \
        == {"cpu": 75, "memory": 85}
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"] == {"selector": deploy["spec"]["selector"], "maxUnavailable": 1}


# --- helm test -------------------------------------------------------------------------

def test_helm_test_hook_checks_readyz_and_metrics_through_the_service():
    objs = render("default")
    hooks = [o for o in by_kind(objs, "Pod") if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert len(hooks) == 1
    pod = hooks[0]
    svc = one(objs, "Service")
    check = pod["spec"]["containers"][0]
    url = {e["name"]: e["value"] for e in check["env"]}["MLMON_ADMIN_URL"]
    metrics_port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "metrics")
    assert url == f"http://{svc['metadata']['name']}.models.svc:{metrics_port}"
    script = check["command"][-1]
    assert '"$MLMON_ADMIN_URL/readyz"' in script
    assert '"$MLMON_ADMIN_URL/metrics"' in script and "mlmon_build_info" in script
    assert pod["spec"]["restartPolicy"] == "Never"


def test_helm_test_script_fails_when_metrics_lack_mlmon(tmp_path):
    """Run the hook's shell script against stand-in wget commands: it must pass only when
    /readyz answers and /metrics carries mlmon_build_info."""
    objs = render("default", "--set", "tests.enabled=true")
    pod = next(o for o in by_kind(objs, "Pod") if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test")
    script = pod["spec"]["containers"][0]["command"][-1]
    bindir = tmp_path / "bin"
    bindir.mkdir()

    def fake(metrics_body: str, ready_exit: int) -> dict:
        wget = bindir / "wget"
        wget.write_text(
            "#!/bin/sh\n"
            'for a in "$@"; do url="$a"; done\n'
            f'case "$url" in */readyz) exit {ready_exit};; */metrics) printf "%s\\n" "{metrics_body}";; esac\n')
        wget.chmod(0o755)
        (bindir / "sleep").write_text("#!/bin/sh\nexit 0\n")
        (bindir / "sleep").chmod(0o755)
        return {"PATH": f"{bindir}:/usr/bin:/bin", "MLMON_ADMIN_URL": "http://stand-in:9464"}

    ok = subprocess.run(["sh", "-c", script], env=fake('mlmon_build_info{version=\\"0.1.0\\"} 1', 0),
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    no_metrics = subprocess.run(["sh", "-c", script], env=fake("process_cpu_seconds_total 1", 0),
                                capture_output=True, text=True)
    assert no_metrics.returncode == 1 and "no mlmon_build_info" in no_metrics.stdout
    not_ready = subprocess.run(["sh", "-c", script], env=fake("mlmon_build_info 1", 1),
                               capture_output=True, text=True)
    assert not_ready.returncode == 1 and "not ready" in not_ready.stdout


# --- sidecar-only mode -----------------------------------------------------------------

EXISTING_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "fraud-model", "labels": {"app": "fraud"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "fraud"}},
             "template": {"metadata": {"labels": {"app": "fraud"}},
                          "spec": {"containers": [{"name": "tfserving", "image": "tensorflow/serving:2.16.1",
                                                   "ports": [{"name": "http", "containerPort": 8501}]}],
                                   "volumes": [{"name": "models", "emptyDir": {}}]}}},
}


@pytest.mark.parametrize("native", [True, False])
def test_sidecar_patch_adds_mlmon_to_an_existing_deployment(tmp_path, native):
    objs = render("sidecar-only.yaml", "--set", f"sidecar.native={str(native).lower()}")
    patch_cm = next(o for o in by_kind(objs, "ConfigMap") if "patch.yaml" in o["data"])
    patch = yaml.safe_load(patch_cm["data"]["patch.yaml"])
    assert patch["metadata"]["name"] == "fraud-model"
    # Apply it the way kustomize (and `kubectl patch`) does: a strategic merge.
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(EXISTING_DEPLOYMENT))
    (tmp_path / "patch.yaml").write_text(patch_cm["data"]["patch.yaml"])
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(
        {"resources": ["deployment.yaml"], "patches": [{"path": "patch.yaml"}]}))
    result = run([KUBECTL, "kustomize", tmp_path])
    assert result.returncode == 0, result.stderr
    patched = parse_docs(result.stdout)
    validate_all(patched, "1.29.0")
    spec = pod_spec(one(patched, "Deployment"))
    server, _ = container(spec, "tfserving")
    mlmon, is_init = container(spec, "mlmon")
    assert is_init is native
    assert {v["name"] for v in spec["volumes"]} >= {"models", "mlmon-config", "mlmon-tmp"}
    # The volumes point at what the chart rendered.
    config_cm = next(v for v in spec["volumes"] if v["name"] == "mlmon-config")["configMap"]["name"]
    cfg = yaml.safe_load(next(o for o in by_kind(objs, "ConfigMap")
                              if o["metadata"]["name"] == config_cm)["data"]["config.yaml"])
    assert cfg["upstream"] == f"http://127.0.0.1:{port_of(server, 'http')}"
    token_ref = {e["name"]: e for e in mlmon["env"]}["MLMON_ADMIN__TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token_ref["name"] == one(objs, "Secret")["metadata"]["name"]
    # The chart's Service and PodMonitor find the patched pods.
    pod_labels = one(patched, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app"] == "fraud"
    svc = one(objs, "Service")
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert one(objs, "PodMonitor")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert next(p for p in svc["spec"]["ports"] if p["name"] == "http")["targetPort"] == port_of(mlmon, "proxy")
    annotations = one(patched, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9464"


def test_notes_explain_the_sidecar_patch():
    result = run([HELM, "install", "rel", CHART, "--dry-run=client", "--namespace", "models",
                  "-f", CI_VALUES / "sidecar-only.yaml"])
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "kubectl -n models patch deployment fraud-model --patch-file mlmon-patch.yaml" in notes
    assert "rel-mlmon-sidecar-patch" in notes


# --- refusals --------------------------------------------------------------------------

REFUSALS = [
    # values.schema.json
    (["--set", "sidecar.native=yes"], "at '/sidecar/native': got string, want boolean"),
    (["--set", "mlmon.ports.proxy=70000"], "at '/mlmon/ports/proxy': maximum"),
    (["--set", "replicas=3"], "additional properties 'replicas' not allowed"),
    (["--set", "mode=sidecar"], "at '/mode': value must be one of 'pod', 'sidecarOnly'"),
    (["--set", "mode=sidecarOnly"], "at '/sidecarOnly/targetName'"),
    (["--set", "metrics.serviceMonitor.interval=30sec"], "at '/metrics/serviceMonitor/interval'"),
    (["--set", "mlmon.image.digest=latest"], "at '/mlmon/image/digest'"),
    (["--set", "model.image.pullPolicy=Sometimes"], "at '/model/image/pullPolicy'"),
    (["--set", "mlmon.config.upstream=127.0.0.1:8080"], "at '/mlmon/config/upstream'"),
    (["--set", "metrics.serviceMonitor.labels.release=true"], "at '/metrics/serviceMonitor/labels/release'"),
    # templates/validate.yaml
    (["--set", "mlmon.ports.admin=8000"], "mlmon.ports.proxy and mlmon.ports.admin are both 8000"),
    (["--set", "model.port=8000"], "model.port 8000 collides with mlmon.ports"),
    (["--set", "mlmon.config.listen=0.0.0.0:1"], "mlmon.config.listen is set by the chart"),
    (["--set", "mlmon.config.admin.token=x"], "use mlmon.adminToken.value"),
    (["--set", "model.enabled=false"], "set mlmon.config.upstream"),
    (["--set", "mlmon.baselines.files[0]=a.json"], "mlmon.baselines.files names keys of"),
    (["--set", "mlmon.baselines.existingSecret=s", "--set", "mlmon.baselines.existingConfigMap=c",
      "--set", "mlmon.baselines.files[0]=a.json"], "set only one of mlmon.baselines"),
    (["--set", "mlmon.existingConfigMap=cm", "--set", "mlmon.config.model.name=x"],
     "mlmon.config is ignored when mlmon.existingConfigMap"),
    (["--set", "autoscaling.enabled=true", "--set", "model.resources.requests=null"],
     "autoscaling.targetCPUUtilizationPercentage needs model.resources.requests.cpu"),
    (["--set", "autoscaling.enabled=true", "--set", "autoscaling.targetCPUUtilizationPercentage=null"],
     "autoscaling.enabled needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage"),
    (["--set", "podDisruptionBudget.enabled=true", "--set", "podDisruptionBudget.maxUnavailable=1"],
     "set only one of podDisruptionBudget.minAvailable"),
    (["--set", "mode=sidecarOnly", "--set", "sidecarOnly.targetName=x", "--set", "autoscaling.enabled=true"],
     "autoscaling.enabled applies to the chart's own Deployment"),
    (["--set", "metrics.serviceMonitor.enabled=true", "--set", "service.enabled=false"],
     "metrics.serviceMonitor.enabled needs service.enabled=true"),
]


@pytest.mark.parametrize("args,message", REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_bad_values_are_refused_with_a_clear_message(args, message):
    result = helm_template_raw(*args)
    assert result.returncode != 0, f"{args} rendered:\n{result.stdout[:400]}"
    assert message in result.stderr, result.stderr
    assert "panic" not in result.stderr.lower()


# --- generated assets ------------------------------------------------------------------

def test_generated_assets_match_their_sources():
    result = run([sys.executable, REPO / "scripts" / "gen-helm-assets.py", "--check"])
    assert result.returncode == 0, result.stderr


def _placeholder_sources(root: Path) -> tuple[Path, Path]:
    rules = root / "rules"
    dashboards = root / "dashboards"
    rules.mkdir()
    dashboards.mkdir()
    (rules / "placeholder.yml").write_text(
        "groups:\n"
        "  - name: placeholder\n"
        "    rules:\n"
        "      - alert: PlaceholderAlert\n"
        "        expr: up{job=~\".*mlmon.*\"} == 0\n"
        "        for: 1m\n"
        "        labels: {severity: critical}\n"
        "        annotations: {summary: 'mlmon {{ $labels.instance }} is down'}\n")
    (dashboards / "Placeholder_Board.json").write_text(json.dumps({"title": "Placeholder", "panels": []}))
    return rules, dashboards


def test_generator_feeds_chart_and_kustomize_from_the_sources(tmp_path):
    rules, dashboards = _placeholder_sources(tmp_path)
    chart = tmp_path / "chart"
    k8s = tmp_path / "k8s"
    import shutil
    shutil.copytree(CHART, chart)
    shutil.copytree(REPO / "k8s", k8s)
    gen = [sys.executable, REPO / "scripts" / "gen-helm-assets.py", "--rules-dir", rules,
           "--dashboards-dir", dashboards, "--chart-dir", chart, "--k8s-dir", k8s]
    assert run([*gen, "--check"]).returncode == 1, "stale copies must be reported before generating"
    result = run(gen)
    assert result.returncode == 0, result.stderr
    assert run([*gen, "--check"]).returncode == 0
    # Files of the former sources are gone from the chart.
    assert sorted(p.name for p in (chart / "files" / "rules").iterdir()) == ["placeholder.yml"]
    objs = helm_template("--set", "metrics.prometheusRule.enabled=true", "--set", "grafana.dashboards.enabled=true",
                         chart=chart, kube_version="1.35.0")
    validate_all(objs, "1.35.0")
    assert one(objs, "PrometheusRule")["spec"]["groups"] == source_rule_groups(rules)
    board = next(o for o in by_kind(objs, "ConfigMap") if "Placeholder_Board.json" in o.get("data", {}))
    assert board["metadata"]["name"] == "rel-mlmon-dashboard-placeholder-board"
    assert json.loads(board["data"]["Placeholder_Board.json"]) == {"title": "Placeholder", "panels": []}
    # kustomize output from the same sources.
    gen_dir = k8s / "components" / "monitoring" / "generated"
    pr = yaml.safe_load((gen_dir / "prometheusrule.yaml").read_text())
    assert pr["spec"]["groups"] == source_rule_groups(rules)
    # A changed source makes --check fail and names the stale copy.
    (rules / "placeholder.yml").write_text((rules / "placeholder.yml").read_text().replace("1m", "2m"))
    stale = run([*gen, "--check"])
    assert stale.returncode == 1
    assert "placeholder.yml" in stale.stderr and "prometheusrule.yaml" in stale.stderr


def test_generator_refuses_broken_sources(tmp_path):
    rules, dashboards = _placeholder_sources(tmp_path)
    (rules / "broken.yml").write_text("groups:\n  - name: x\n    rules: [\n")
    result = run([sys.executable, REPO / "scripts" / "gen-helm-assets.py", "--check", "--rules-dir", rules,
                  "--dashboards-dir", dashboards, "--chart-dir", tmp_path / "c", "--k8s-dir", tmp_path / "k"])
    assert result.returncode == 2
    assert "broken.yml: not valid YAML" in result.stderr


def test_packaged_chart_renders_like_the_source_tree(tmp_path):
    """.helmignore must not drop anything the templates read (rules, dashboards)."""
    result = run([HELM, "package", CHART, "--destination", tmp_path])
    assert result.returncode == 0, result.stderr
    (package,) = tmp_path.glob("mlmon-*.tgz")
    args = ["-f", str(CI_VALUES / "monitoring-crds.yaml")]
    assert helm_template(*args, chart=package, kube_version="1.35.0") == \
        helm_template(*args, kube_version="1.35.0")


@pytest.mark.parametrize("values", ["monitoring-crds.yaml", "sidecar-only.yaml"])
def test_configmaps_fit_the_api_server_limit(values):
    for cm in by_kind(render(values), "ConfigMap"):
        size = sum(len(k) + len(v.encode()) for k, v in cm.get("data", {}).items())
        assert size < 1024 * 1024, f"ConfigMap {cm['metadata']['name']} holds {size} bytes (limit 1 MiB)"


# --- mlmon trigger ------------------------------------------------------------------------

def test_trigger_is_off_by_default():
    assert not [o for o in render("default") if o["metadata"]["name"].endswith("-trigger")]


def test_rendered_trigger_config_is_accepted_by_mlmon_trigger(mlmon_bin, tmp_path):

    objs = [o for o in render("trigger.yaml") if o["metadata"]["name"].endswith("-trigger")]
    cm = one(objs, "ConfigMap")
    secret = one(objs, "Secret")
    deploy = one(objs, "Deployment")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["trigger", "--config", "/etc/mlmon-trigger/trigger.yaml"]
    assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"]["type"] == "Recreate"
    claim = deploy["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"]
    assert claim == one(objs, "PersistentVolumeClaim")["metadata"]["name"]
    # The sidecar's Service, Deployment and NetworkPolicy must not select the trigger's pods
    # (nor the trigger's select the sidecar's).
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    everything = render("trigger.yaml")
    sidecar = [o for o in everything if o not in objs]
    for o in sidecar:
        sel = (o["spec"].get("selector") or {}) if o["kind"] in ("Service", "Deployment") else \
            (o["spec"].get("podSelector") or {}) if o["kind"] == "NetworkPolicy" else None
        if sel is None:
            continue
        sel = sel.get("matchLabels", sel)
        assert not sel.items() <= pod_labels.items(), f"{o['kind']} {o['metadata']['name']} selects the trigger"
    policy = one(objs, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 9466, "protocol": "TCP"}]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert one(objs, "Service")["spec"]["selector"].items() <= pod_labels.items()
    config = yaml.safe_load(cm["data"]["trigger.yaml"])
    assert config["listen"] == "0.0.0.0:9466" and config["token_env"] == "TRIGGER_TOKEN"
    assert config["record_file"].startswith("/var/lib/mlmon-trigger/")
    assert config["actions"][0]["name"] == "retrain"
    env = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert len(env.pop("token")) == 40  # generated
    assert env == {"GITHUB_TOKEN": "ghp_example", "TRIGGER_HMAC": "example-hmac-key"}
    # The binary accepts what the chart renders (secrets resolved from the Secret's keys).
    config["record_file"] = str(tmp_path / "triggered.jsonl")
    (tmp_path / "trigger.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([str(mlmon_bin), "trigger", "--config", str(tmp_path / "trigger.yaml"), "--check"],
                          capture_output=True, text=True, timeout=60,
                          env={**env, "TRIGGER_TOKEN": "t", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "1 action(s)" in proc.stdout
