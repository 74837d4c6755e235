# Two entry points: `make run` (install + serve with demo data) and `make test` (install + whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install install-dev packages postgres browser bench-tools lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed packages
install-dev: $(VENV)/.installed-dev packages

packages:
	scripts/fetch-packages.sh

postgres:
	scripts/ensure-postgres.sh

browser:
	scripts/ensure-chromium.sh

bench-tools:
	scripts/ensure-bench-tools.sh

run: install
	$(BIN)/zcc-gateway demo-data
	$(BIN)/zcc-gateway serve --host 127.0.0.1 --port 8080

test: install-dev postgres browser
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .

bench: install-dev postgres bench-tools
	$(BIN)/python bench/rest.py
