# mlmon — the two commands that matter:
#   make demo   run the built-in example (model server + sidecar + drifting traffic)
#   make test   install what the tests need, then run every test and check
# and, while developing:
#   make check  the fast tier: fmt, clippy, cargo test (127.0.0.1 only, no Python), minutes warm
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: test check deps lint fmt rust-test py-test build demo bench bench-full screenshot regen check-generated rules-check observe static link-order helm-assets clean reliability soak fuzz

## test: everything CI runs (installs Debian packages and a Python venv on first use)
test: deps lint rust-test py-test check-generated reliability

## check: the fast tier, nothing to install: formatting, clippy, every Rust test (unit,
## tests/offline, tests/e2e: real servers on 127.0.0.1 only; no Python, no other network)
check: lint
	cargo test --all-targets

## deps: Debian packages (prometheus, alertmanager), .venv with test tools, helm/kubectl
deps:
	scripts/test-env.sh

## lint: formatting and clippy, warnings are errors
lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt

## rust-test: unit tests and end-to-end tests of the sidecar (real servers on 127.0.0.1)
rust-test:
	MLMON_REQUIRE_BROKERS=1 cargo test --all-targets

build:
	cargo build

## py-test: tests/py against real MLServer/MLflow, Prometheus, Alertmanager, helm (needs `make deps`)
py-test: build
	MLMON_BINARY=$(CURDIR)/target/debug/mlmon $(PYTEST) -q -p no:cacheprovider --import-mode=importlib tests/py

## reliability: hostile-traffic probes (short form) on 127.0.0.1, against the debug binary
## (overflow checks on, and no release build in CI); `make soak` uses the release binary
reliability: build
	$(PY) tests/reliability/probes.py --binary target/debug/mlmon

## soak: the probes with larger floods, then a 10-minute steady soak; figures in docs/reliability.md
soak:
	cargo build --release
	$(PY) tests/reliability/probes.py --binary target/release/mlmon --long --soak 600 --json target/reliability.json

## fuzz: the fuzz targets (proptest on stable) with many more cases than `cargo test` runs
fuzz:
	MLMON_FUZZ_CASES=20000 cargo test --release --test fuzz

## demo: the embedded example; open the printed URLs
demo:
	cargo run --release -- demo

## bench: every target of issue 13 (Performance v2) met / not met, from one short run (about 15 min on 2 cores); writes docs/performance.md
bench:
	python3 bench/run.py --short

## bench-full: the same with longer runs, then the detailed proxy and drift benchmarks (bench/proxy, bench/drift)
bench-full:
	python3 bench/run.py
	python3 bench/proxy/run.py
	python3 bench/drift/run.py

## screenshot: regenerate docs/status-page.png (the status page of `mlmon demo` after its drift, headless Chromium)
screenshot: build
	$(PY) scripts/status_screenshot.py --binary target/debug/mlmon --output docs/status-page.png

## regen: rewrite every committed generated file (fixtures, dashboards, chart copies) with its generator
regen:
	$(PY) scripts/gen/regen.py

## check-generated: regenerate into a temporary directory and fail if a committed file is stale
check-generated:
	$(PY) scripts/gen/regen.py --check

## rules-check: validate alert/recording rules, their unit tests, Alertmanager routing, dashboards
rules-check:
	promtool check rules prometheus/rules/*.yml
	cd prometheus/tests && promtool test rules *.test.yml
	amtool check-config alertmanager/alertmanager.yml
	$(PY) grafana/generate_dashboards.py --check

## observe: mlmon demo + a local Prometheus and Alertmanager on 127.0.0.1 with the rules loaded
observe: build
	scripts/observe.sh

## static: the statically linked release binary the container image ships (the Dockerfile runs this)
STATIC_TARGET ?= $(shell rustc -vV | sed -n 's/^host: //p')
STATIC_BIN := $(or $(CARGO_TARGET_DIR),target)/$(STATIC_TARGET)/release/mlmon
static:
	OPENSSL_STATIC=1 LIBZ_SYS_STATIC=1 RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target $(STATIC_TARGET)
	@if readelf -l $(STATIC_BIN) | grep -q 'Requesting program interpreter'; then \
	  echo "static: $(STATIC_BIN) is dynamically linked" >&2; exit 1; fi
	@echo "static: $(STATIC_BIN)"

## link-order: re-profile `mlmon serve` under callgrind and rewrite link/symbol-order.txt (the
## release link's function order, build.rs), then relink; docs/performance.md "Binary layout"
## (both release binaries: `cargo build --release` and the image's `make static`, whose symbols differ)
link-order:
	cargo build --release --bin mlmon
	cargo build --release --example bench_upstream --example bench_loadgen
	$(MAKE) static
	python3 scripts/link_order.py --binary $(or $(CARGO_TARGET_DIR),target)/release/mlmon --also $(STATIC_BIN)
	cargo build --release --bin mlmon
	$(MAKE) static

## helm-assets: regenerate the chart's and k8s/ copies of prometheus/rules and grafana/dashboards
helm-assets:
	$(PY) scripts/gen-helm-assets.py

clean:
	cargo clean
	rm -rf $(VENV) .venv-nannyml .tools
