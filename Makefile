# The README's two front-door commands: `make demo` and `make test`. Both create .venv themselves.
#
# Another Airflow release: `make test AIRFLOW_VERSION=3.0.6` (or `make smoke AIRFLOW_VERSION=3.1.8`)
# installs that release into its own .venv-3.0.6 and runs there; without AIRFLOW_VERSION, .venv
# holds the newest release. A release whose dependencies need pinning gets Airflow's constraints:
# AIRFLOW_CONSTRAINTS (a file or URL; Airflow publishes one per release) or, by default, the
# committed constraints/airflow-<minor>.txt (each file says why it pins what it pins).
PYTHON ?= python3
AIRFLOW_VERSION ?=
AIRFLOW_MINOR := $(subst $() ,.,$(wordlist 1,2,$(subst ., ,$(AIRFLOW_VERSION))))
AIRFLOW_CONSTRAINTS ?= $(wildcard constraints/airflow-$(AIRFLOW_MINOR).txt)
VENV := $(if $(AIRFLOW_VERSION),.venv-$(AIRFLOW_VERSION),.venv)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PIP_QUIET := --quiet --disable-pip-version-check
PIP_AIRFLOW := $(if $(AIRFLOW_VERSION),apache-airflow==$(AIRFLOW_VERSION)) $(if $(AIRFLOW_CONSTRAINTS),-c $(AIRFLOW_CONSTRAINTS))
LINT_PATHS := airflow_provider_sfjwt tests tests_ui example_dags benchmarks scripts
# `make smoke`: installs, imports, the form and Test button through the API server, every example
# DAG loading and one run through `airflow dags test` (CI runs it on the releases between the
# oldest and the newest, which get the whole suite).
SMOKE_TESTS := tests/test_compat.py tests/test_provider_info.py tests/test_connection_form.py tests/test_example_dags.py

# `mypy --strict` over the whole package ([tool.mypy] in pyproject.toml) checks it against the
# Airflow it is annotated for: the newest release, whose module locations compat.py names for type
# checkers. An older release's venv (AIRFLOW_VERSION=3.0.6) lacks them, so there the step says it
# is skipped; CI type-checks in its run on the newest release.
MYPY = @if $(PY) -c "import airflow.sdk.plugins_manager" 2>/dev/null; then \
	echo "$(VENV)/bin/mypy"; $(VENV)/bin/mypy; \
	else echo "mypy skipped: Airflow $$($(PY) -c 'import airflow; print(airflow.__version__)') predates the locations compat.py is annotated against"; fi

.PHONY: demo test smoke test-all lint format bench clean reliability ui test-ui

$(STAMP): pyproject.toml $(filter-out http%,$(AIRFLOW_CONSTRAINTS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install $(PIP_QUIET) -e '.[test,parquet]' $(PIP_AIRFLOW) 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import airflow_provider_sfjwt, airflow.sdk, pytest"
	test -z "$(AIRFLOW_VERSION)" || $(PY) -c "import airflow; v = airflow.__version__; assert v == '$(AIRFLOW_VERSION)', 'installed Airflow ' + v"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(MYPY)
	$(PY) -m pytest -q -p no:cacheprovider --durations=10

smoke: $(STAMP)
	$(VENV)/bin/airflow providers list | grep -q airflow-provider-sfjwt
	$(PY) -m pytest -q -p no:cacheprovider $(SMOKE_TESTS)

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
	rm -rf .venv .venv-* .demo .bench .ui
