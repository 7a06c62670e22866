# PrefLab — two commands do all set-up:  `make run`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test lint install install-test chromium bench clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/activate
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/activate
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Start the app with the demo project (SQLite + filesystem broker + a real Celery worker).
run: install
	./scripts/run

## Install what the tests need (incl. Debian's chromium when possible) and run them all.
test: install-test chromium
	$(PY) -m pytest $(PYTEST_ARGS)

## The layout and style checks CI runs before the tests: ruff and the import-linter contracts.
lint: install-test
	$(VENV)/bin/ruff check .
	cd $(CURDIR) && SECRET_KEY=lint $(VENV)/bin/lint-imports

chromium:
	@./scripts/ensure-chromium

bench: install-test
	$(PY) bench/bench_bt.py
	$(PY) bench/bench_hbt.py
	$(PY) bench/bench_agreement.py
	$(PY) bench/bench_heatmaps.py

clean:
	rm -rf var .pytest_cache
