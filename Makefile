# One set of targets for people and CI. `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: all install infra infra-cluster infra-down browser vendor-ui lint format typecheck test demo bench clean

all: test

$(BIN)/orchestrator: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/orchestrator

infra:
	deploy/local/up.sh >/dev/null

# The three-node Redis Cluster the cluster tests run against (the demo does not need it).
infra-cluster:
	deploy/local/redis-cluster.sh start

# Debian's Chromium, which the dashboard test drives with Playwright (skipped when installed).
browser:
	deploy/local/chromium.sh

# Refresh the dashboard's vendored browser files from npm (versions pinned in package-lock.json).
# Only when changing them: the copies are committed, so nothing else needs npm.
vendor-ui:
	cd orchestrator/api/ui && npm ci --no-audit --no-fund && node vendor.mjs

infra-down:
	deploy/local/down.sh
	deploy/local/redis-cluster.sh stop

lint: install
	$(BIN)/ruff check orchestrator connectors tests bench
	$(BIN)/ruff format --check orchestrator connectors tests bench

format: install
	$(BIN)/ruff format orchestrator connectors tests bench
	$(BIN)/ruff check --fix orchestrator connectors tests bench

typecheck: install
	$(BIN)/mypy

test: install infra infra-cluster browser lint typecheck
	$(BIN)/orchestrator validate journeys journeys/staff journeys/routing
	$(BIN)/pytest

demo: install infra
	$(BIN)/orchestrator demo

bench: install infra
	$(BIN)/python bench/run.py
	$(BIN)/python bench/backtest.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
