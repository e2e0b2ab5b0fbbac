# finops_assets: `make run` (UI on the embedded default) and `make test` (whole suite).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export FINOPS_LANDING_URL ?= data/landing
export FINOPS_WAREHOUSE ?= data/warehouse.duckdb
export FINOPS_START_DATE ?= 2025-01-01
SAMPLE_START ?= $(FINOPS_START_DATE)
SAMPLE_DAYS ?= 31
SAMPLE_ROWS_PER_DAY ?= 20000
SAMPLE_SEED ?= 7
HOST ?= 127.0.0.1
PORT ?= 3000
FOCUS_VALIDATOR := .tools/focus-validator/.installed

.PHONY: run test bench bench-insights bench-close bench-serving conformance focus-validator install install-test sample-data dagster-home lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install when pyproject.toml changes (pins are there; no lock file with index URLs).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $@

# Migrate the instance storage once (and again only when dagster.yaml changes).
$(DAGSTER_HOME)/.migrated: $(DAGSTER_HOME)/dagster.yaml $(VENV)/.installed
	$(BIN)/dagster instance migrate >/dev/null
	touch $@

dagster-home: $(DAGSTER_HOME)/.migrated

# Sample exports only when the landing folder is empty: never touch a user's real exports.
sample-data: $(VENV)/.installed
	@if [ -z "$$(ls -A $(FINOPS_LANDING_URL) 2>/dev/null)" ]; then \
		$(BIN)/finops-assets sample-data --out $(FINOPS_LANDING_URL) --start $(SAMPLE_START) \
			--days $(SAMPLE_DAYS) --rows-per-day $(SAMPLE_ROWS_PER_DAY) --seed $(SAMPLE_SEED); \
	else echo "$(FINOPS_LANDING_URL) is not empty: keeping its exports."; fi

run: $(VENV)/.installed dagster-home sample-data
	$(BIN)/dagster dev -h $(HOST) -p $(PORT) -w workspace.yaml

# The two virtualenvs are independent: built side by side (about a minute less on a fresh clone).
test:
	$(MAKE) --no-print-directory -j2 $(VENV)/.installed-test $(FOCUS_VALIDATOR)
	$(BIN)/ruff check finops_assets finops_assets_tests
	$(BIN)/ruff format --check finops_assets finops_assets_tests
	# Two workers (one per core; each test file stays on one worker so its module fixtures are
	# built once), then the throughput tests alone so nothing competes with their clocks.
	$(BIN)/pytest -n 2 --dist loadfile -m "not timing" --durations=15
	$(BIN)/pytest -m timing

# The FinOps Foundation converter, for comparison only, in a virtualenv of its own (its pins
# conflict with ours).
FOCUS_CONVERTER := .tools/focus-converter/bin/focus-converter
$(FOCUS_CONVERTER):
	$(PYTHON) -m venv .tools/focus-converter
	.tools/focus-converter/bin/pip install --quiet --upgrade pip
	.tools/focus-converter/bin/pip install --quiet 'focus-converter==1.0.0' 'multimethod<1.11' 'click<8.2'

# The FinOps Foundation validator (FOCUS 1.2 rules), in a Python 3.12 virtualenv of its own: it
# needs Python >= 3.12 and pyarrow < 20. pyenv's python3.12 shim fails while another version is
# global, so take the first 3.12+ interpreter that actually starts.
VALIDATOR_PYTHON ?= $(firstword $(foreach p,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.13,$(shell $(p) -c 'import sys; assert sys.version_info >= (3, 12); print("$(p)")' 2>/dev/null)))
$(FOCUS_VALIDATOR):
	@test -n "$(VALIDATOR_PYTHON)" || { echo "focus-validator needs Python >= 3.12: install it or set VALIDATOR_PYTHON=/path/to/python3.12"; exit 1; }
	$(VALIDATOR_PYTHON) -m venv .tools/focus-validator
	.tools/focus-validator/bin/pip install --quiet --upgrade pip
	.tools/focus-validator/bin/pip install --quiet 'focus-validator==2.2.1' 'pyarrow<20'
	touch $@
focus-validator: $(FOCUS_VALIDATOR)

# Sample + the real FOCUS 1.0 and CUR samples, materialized and validated per x_Source;
# CONFORMANCE_ARGS='--warehouse data/warehouse.duckdb --cases ""' validates your own warehouse.
CONFORMANCE_ARGS ?=
conformance: $(VENV)/.installed-test $(FOCUS_VALIDATOR)
	$(BIN)/python -m finops_assets_tests.conformance $(CONFORMANCE_ARGS)

BENCH_ARGS ?= --rows 1000000 --rows 5000000 --cur-rows 1000000 --cur-rows 5000000 --cur-month 5000000
bench: $(VENV)/.installed-test $(FOCUS_CONVERTER)
	FOCUS_CONVERTER=$(FOCUS_CONVERTER) $(BIN)/python -m finops_assets_tests.bench $(BENCH_ARGS)

# Anomaly detection on a seeded, labelled generator, against two plain baselines (issue 15).
BENCH_INSIGHTS_ARGS ?= --series 1000 --days 365
bench-insights: $(VENV)/.installed-test
	$(BIN)/python -m finops_assets_tests.bench_insights $(BENCH_INSIGHTS_ARGS)

# Closing a 5M-row month (issue 16): first close, byte-identical re-close, refused close.
BENCH_CLOSE_ARGS ?= --rows 5000000
bench-close: $(VENV)/.installed-test
	$(BIN)/python -m finops_assets_tests.bench_close $(BENCH_CLOSE_ARGS)

# Publishing the serving zone (issue 17): first publish and a one-day publish of a 5M-row month.
BENCH_SERVING_ARGS ?= --rows 5000000
bench-serving: $(VENV)/.installed-test
	$(BIN)/python -m finops_assets_tests.bench_serving $(BENCH_SERVING_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check finops_assets finops_assets_tests
	$(BIN)/ruff format --check finops_assets finops_assets_tests

format: $(VENV)/.installed-test
	$(BIN)/ruff format finops_assets finops_assets_tests
	$(BIN)/ruff check --fix finops_assets finops_assets_tests

clean:
	rm -rf $(VENV) .dagster_home .pytest_cache .ruff_cache *.egg-info
