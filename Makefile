# modelplane: setup / demo / test / lint / bench. Every target bootstraps what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/modelplane
CHECKOV_VERSION := 3.3.30
CHECKOV := $(CACHE)/checkov-$(CHECKOV_VERSION)/bin/checkov

.PHONY: help setup system-deps js-tools server-venvs tools checkov demo test lint typecheck unit bench fuzz fuzz-atheris e2e clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install modelplane with its dev tools

system-deps: ## install Debian packages the tests need (promtool and prometheus; node and npm for the Mermaid parser; chromium)
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing (sudo apt-get install$$missing)"; fi; \
	fi

js-tools: $(STAMP) system-deps ## install the Mermaid parser the diagram tests use (npm, cached outside the repository)
	@$(PY) -m tests.mermaid

server-venvs: ## install the real model servers the tests run, one cached venv each (see scripts/server_venvs.py)
	@python3 scripts/server_venvs.py

checkov: ## install checkov into a cached venv (tests/test_checkov.py scans every example render with it)
	@test -x $(CHECKOV) || { python3 -m venv $(CACHE)/checkov-$(CHECKOV_VERSION) && \
	  $(CACHE)/checkov-$(CHECKOV_VERSION)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'; }

tools: $(STAMP) ## build kube-apiserver, etcd, KServe, Knative and kwok from Go modules (cached; skipped without Go)
	@if command -v go >/dev/null 2>&1; then nice -n 10 $(PY) scripts/build_tools.py build; \
	else echo "tools: Go is not installed; the cluster tests (tests/cluster) will skip"; fi

demo: $(STAMP) ## validate, render and summarise the example stacks
	@bash scripts/demo.sh

lint: $(STAMP) ## ruff, mypy --strict and the import contracts (the layers of docs/architecture.md)
	$(BIN)/ruff check components tests bench platform scripts docs/examples
	$(BIN)/ruff format --check components tests bench platform scripts docs/examples
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

unit: $(STAMP) system-deps js-tools server-venvs tools checkov ## pytest only
	$(BIN)/pytest

test: $(STAMP) system-deps js-tools server-venvs lint tools checkov ## everything CI runs: lint, types, tests
	$(BIN)/pytest

bench: $(STAMP) ## benchmarks (print tables; not part of test)
	$(PY) bench/run.py

fuzz: $(STAMP) ## 10,000 fuzzed stacks, locks and command lines per target; counts by outcome (a short run is in test)
	$(PY) bench/fuzz.py --cases $(or $(CASES),10000)

fuzz-atheris: $(STAMP) ## the same targets coverage-guided by atheris (libFuzzer), 2,000 cases each; installs atheris
	@$(PY) -c 'import atheris' 2>/dev/null || $(PY) -m pip install --quiet 'atheris==3.0.0' || \
	  { echo "fuzz-atheris: atheris 3.0.0 has no wheel for this platform"; exit 2; }
	$(PY) bench/fuzz.py --engine atheris --cases $(or $(CASES),2000)

e2e: $(STAMP) ## pulumi up for real: kind (docker, kind, pulumi) or the local control plane (Go)
	@bash scripts/e2e.sh

clean: ## remove the venv and generated output
	rm -rf $(VENV) deploy .pytest_cache .mypy_cache .ruff_cache
