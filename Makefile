# The README's two front-door commands: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PIP_QUIET := --quiet --disable-pip-version-check
LINT_PATHS := airflow_provider_sfjwt tests tests_ui example_dags benchmarks scripts

.PHONY: demo test test-all lint format bench clean reliability ui test-ui

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install $(PIP_QUIET) -e '.[test,parquet]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import airflow_provider_sfjwt, airflow.sdk, pytest"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)

format: $(STAMP)
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

# `make ui`: Airflow + the emulator to click through (scripts/ui.py). `make test-ui`: the browser
# test against the same stack; Chromium from Debian, Playwright from PyPI, no browser download.
# UI_TEST_ARGS="--screenshots docs/images" refreshes the README's screenshots.
ui: $(STAMP)
	$(PY) scripts/ui.py

test-ui: $(STAMP)
	bash scripts/ui_setup.sh
	$(PY) -m pip install $(PIP_QUIET) -e '.[test,parquet,ui-test]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import playwright.sync_api"
	$(PY) -m pytest -q -p no:cacheprovider tests_ui $(UI_TEST_ARGS)

# `make test` plus every cell of the fault matrix and the full `airflow dags test` leak scan.
test-all: $(STAMP)
	SFJWT_TEST_ALL=1 $(MAKE) test

# Fault and bad-input matrices, TLS and the full leak scan; RELIABILITY.md regenerated from the run.
reliability: $(STAMP)
	-SFJWT_RELIABILITY_RESULTS=build/reliability.json SFJWT_TEST_ALL=1 $(PY) -m pytest -q -p no:cacheprovider tests/reliability
	$(PY) scripts/reliability_report.py build/reliability.json RELIABILITY.md

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) .demo .bench .ui
