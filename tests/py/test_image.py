"""The Dockerfile and the manifests agree on the image's contract: the binary `make static`
builds, the non-root user, the ports and the config path. (No Docker engine here: the
image itself is not built by the tests.)"""

from __future__ import annotations

import re

import yaml

from helpers import CHART, K8S, REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]


def test_image_is_a_static_binary_on_distroless_as_non_root():
    stages = _instructions("FROM")
    assert len(stages) == 2, "multi-stage: build, then runtime"
    assert stages[-1].startswith("gcr.io/distroless/static")
    assert "make static" in DOCKERFILE
    assert "Requesting program interpreter" in DOCKERFILE, "the build must refuse a dynamic binary"
    assert _instructions("USER") == ["65532:65532"]


def test_makefile_has_the_static_target_the_image_uses():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^static:", makefile, re.M), "Makefile needs the `static` target the Dockerfile runs"
    assert "crt-static" in makefile


def test_image_ports_and_command_match_the_chart_and_manifests():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    exposed = sorted(int(p) for p in _instructions("EXPOSE")[0].split())
    assert exposed == sorted([values["mlmon"]["ports"]["proxy"], values["mlmon"]["ports"]["admin"]])
    assert _instructions("CMD") == ['["serve", "--config", "/etc/mlmon/config.yaml"]']
    assert values["mlmon"]["image"]["repository"] == "ghcr.io/mlmon/mlmon"
    assert values["mlmon"]["securityContext"]["runAsUser"] == 65532
    base = (K8S / "base" / "deployment.yaml").read_text()
    assert "image: ghcr.io/mlmon/mlmon:" in base


def test_build_context_keeps_what_cargo_needs():
    ignore = (REPO / ".dockerignore").read_text().split()
    for needed in ("!Cargo.toml", "!Cargo.lock", "!Makefile", "!src/"):
        assert needed in ignore
    # The release link's function order (build.rs reads link/symbol-order.txt): without it
    # the image's binary would build, but with its hot code scattered again.
    assert "!build.rs" in ignore and "!link/" in ignore
    assert (REPO / "link" / "symbol-order.txt").is_file()
