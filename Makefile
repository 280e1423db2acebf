# One set of targets for people and CI. `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: all install infra infra-down lint format typecheck test demo bench clean

all: test

$(BIN)/orchestrator: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/orchestrator

infra:
	deploy/local/up.sh >/dev/null

infra-down:
	deploy/local/down.sh

lint: install
	$(BIN)/ruff check orchestrator connectors tests bench
	$(BIN)/ruff format --check orchestrator connectors tests bench

format: install
	$(BIN)/ruff format orchestrator connectors tests bench
	$(BIN)/ruff check --fix orchestrator connectors tests bench

typecheck: install
	$(BIN)/mypy

test: install infra lint typecheck
	$(BIN)/orchestrator validate journeys
	$(BIN)/pytest

demo: install infra
	$(BIN)/orchestrator demo

bench: install infra
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
