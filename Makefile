# stepsaga — every target creates .venv and installs the project first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck bench install install-bench infra-deps synth diff deploy clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

install-bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'

## Run the Order-to-Cash demo on SQLite and the local AWS emulator.
demo: $(STAMP)
	$(BIN)/stepsaga demo

## The whole suite: lint, types, then every test (PostgreSQL tests skip only where no server answers).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

## Benchmarks print their figures; see docs/performance.md.
bench: install-bench
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
