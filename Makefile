# mlmon — the two commands that matter:
#   make demo   run the built-in example (model server + sidecar + drifting traffic)
#   make test   install what the tests need, then run every test and check
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: test deps lint fmt rust-test py-test build demo bench rules-check observe static helm-assets clean

## test: everything CI runs (installs Debian packages and a Python venv on first use)
test: deps lint rust-test py-test

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
	cargo test --all-targets

build:
	cargo build

## py-test: tests against real MLServer/MLflow, Prometheus, Alertmanager, helm
py-test: build
	MLMON_BINARY=$(CURDIR)/target/debug/mlmon $(PYTEST) -q -p no:cacheprovider --import-mode=importlib $(sort $(dir $(wildcard tests/*/test_*.py)))

## demo: the embedded example; open the printed URLs
demo:
	cargo run --release -- demo

## bench: proxy overhead and analysis throughput; writes docs/performance.md
bench:
	scripts/bench.sh

clean:
	cargo clean
	rm -rf $(VENV) .tools
