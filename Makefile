# fraud-platform: `make demo` and `make test` are all a fresh clone needs (Python 3.11, Java, make).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DBT_VENV := $(VENV)/dbt

export FRAUD_HOME ?= $(CURDIR)/.fraud_home
export DAGSTER_HOME ?= $(FRAUD_HOME)/dagster

DAYS ?= 90
CUSTOMERS ?= 2000
SEED ?= 7
DRIFT_DAYS ?= 10
SCENARIO ?= amount_inflation
SERVE_PORT ?= 3001
FEATURE_PORT ?= 6566

LOCK_HASH := $(shell cat requirements.lock requirements-dbt.lock | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)

.PHONY: venv demo test test-fast faults lint dev serve feature-server bench bench-loop lock dagster-home clean

## venv: the project venv from requirements.lock, and dbt's own venv inside it from requirements-dbt.lock
venv: $(STAMP)

$(STAMP): requirements.lock requirements-dbt.lock
	@rm -f $(VENV)/.installed-*
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	test -x $(DBT_VENV)/bin/python || $(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dbt.lock
	$(BIN)/python -m pip check
	$(DBT_VENV)/bin/python -m pip check
	@touch $@

## the dbt manifest Dagster reads at load time, rebuilt when the dbt project changes
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o -type f \( -name '*.sql' -o -name '*.yml' \) -print)

$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	cd dbt_project && DBT_PROFILES_DIR=. $(abspath $(DBT_VENV))/bin/dbt parse --quiet

dagster-home:
	@mkdir -p $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || cp deploy/local/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## demo: the whole loop with the Dagster daemon: DAYS baseline days, then DRIFT_DAYS of SCENARIO
## (ending yesterday), drift report -> sensor -> retrain -> gate -> new champion -> bento; exits 0
## only when the loop closed. The terminal shows the stages; the setup's output (pip, dbt parse)
## and all else go to $(FRAUD_HOME)/demo/demo.log, the setup's also here when it fails.
DEMO_SETUP_LOG = $(FRAUD_HOME)/demo-setup.log
demo:
	@mkdir -p $(FRAUD_HOME)
	@echo "setup: $(VENV), the dbt manifest, DAGSTER_HOME (output: $(DEMO_SETUP_LOG))"
	@$(MAKE) --no-print-directory venv $(MANIFEST) dagster-home >$(DEMO_SETUP_LOG) 2>&1 || { \
		tail -n 40 $(DEMO_SETUP_LOG); echo "make demo: the setup failed (all of it: $(DEMO_SETUP_LOG))"; \
		exit 1; }
	@$(BIN)/python -m demo.runner --days $(DAYS) --drift-days $(DRIFT_DAYS) --customers $(CUSTOMERS) \
		--seed $(SEED) --scenario $(SCENARIO) --setup-log $(DEMO_SETUP_LOG)

## test: lint, format, definitions, then the whole test suite (pytest's "no tests" fails too)
test: venv lint $(MANIFEST) dagster-home
	$(BIN)/dagster definitions validate -w workspace.yaml
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

## test-fast: the unit tier alone (no Spark, dbt, service or server; `make test` runs every tier)
test-fast: venv $(MANIFEST) dagster-home
	@$(BIN)/python -m pytest -m unit; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

## faults: the fault suite alone (kills and breaks processes and stores; also part of `make test`)
faults: venv $(MANIFEST) dagster-home
	@$(BIN)/python -m pytest -m faults; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

## feature-server: Feast's HTTP feature server on this environment's online store (FEATURE_PORT)
feature-server: venv
	$(BIN)/python -m serving.feature_server --port $(FEATURE_PORT)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## dev: the Dagster UI on http://localhost:3000
dev: venv $(MANIFEST) dagster-home
	$(BIN)/dagster dev -w workspace.yaml -p 3000

## serve: the current champion's bento (built if needed) on SERVE_PORT; FRAUD_API_KEY guards
## POST /score (a local development key if unset)
serve: venv dagster-home
	@if [ -z "$$FRAUD_API_KEY" ]; then echo "FRAUD_API_KEY unset: using local-dev-key"; fi
	FRAUD_API_KEY=$${FRAUD_API_KEY:-local-dev-key} $(BIN)/python -m serving.bento serve $(SERVE_PORT)

## bench: benchmarks print figures (see bench/RESULTS.md)
bench: venv $(MANIFEST)
	$(BIN)/python -m bench.load_time
	$(BIN)/python -m bench.lakehouse
	$(BIN)/python -m bench.online_lookup
	$(BIN)/python -m bench.tuning  # on the training set of `make demo`
	$(BIN)/python -m bench.baseline  # the demo's champion against a tuned baseline
	$(BIN)/python -m bench.serving_load  # the demo's champion and features
	$(BIN)/python -m bench.rollout  # the demo's champion: hot swap, shadow, attributions, metrics
	$(BIN)/python -m bench.batch_scoring
	$(BIN)/python -m bench.stream
	$(BIN)/python -m bench.drift
	$(BIN)/python -m bench.point_in_time  # on the demo's state
	$(BIN)/python -m bench.data_parallel  # on the demo's training set
	$(BIN)/python -m bench.scale  # ~1M and ~10M transactions, landing to a training run
	$(BIN)/python -m bench.handbook  # the card-fraud handbook's dataset, about 11 minutes

## bench-loop: the loop's three decisions on ground truth, 3 seeds x 4 scenarios (about 2 hours)
bench-loop: venv $(MANIFEST)
	$(BIN)/python -m bench.loop

## lock: re-resolve requirements*.in into the lock files, in throwaway venvs
lock:
	rm -rf /tmp/fraud-lock && $(PYTHON) -m venv /tmp/fraud-lock/main && $(PYTHON) -m venv /tmp/fraud-lock/dbt
	/tmp/fraud-lock/main/bin/pip install --quiet -r requirements.in
	/tmp/fraud-lock/dbt/bin/pip install --quiet -r requirements-dbt.in
	(echo "# Exact set of requirements.in, made by 'make lock'"; /tmp/fraud-lock/main/bin/pip freeze) > requirements.lock
	(echo "# Exact set of requirements-dbt.in for the dbt venv (.venv/dbt), made by 'make lock'"; /tmp/fraud-lock/dbt/bin/pip freeze) > requirements-dbt.lock

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs .pytest_cache .ruff_cache
