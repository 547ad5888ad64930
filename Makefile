# Wharf developer entry points.  `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.stamp
# `make run` serves this data directory unless WHARF_DATA is set in the environment.
WHARF_DATA ?= ./data
# Extra arguments for `wharf serve`, e.g. make run ARGS="--port 9000"
ARGS ?=
# Override to select tests, e.g. make test PYTEST_ARGS="-q tests/unit -k postgres"
PYTEST_ARGS ?= -q -x --timeout=600 -p no:cacheprovider
BENCH_ARGS ?=

.PHONY: help venv run test bench bench-formats clean distclean

help:
	@echo "make venv       create $(VENV) and install the project (pip install -e '.[test]') when pyproject.toml changed"
	@echo "make run        serve Wharf: $(VENV)/bin/wharf serve \$$ARGS (data dir: \$$WHARF_DATA, default ./data)"
	@echo "make test       install test tools (PostgreSQL, openssl) if missing, then pytest \$$PYTEST_ARGS"
	@echo "make bench      run bench/run.sh \$$BENCH_ARGS (Python vs peers), then every bench/<format>/run.sh"
	@echo "make clean      remove build and cache files (keeps $(VENV) and ./data)"
	@echo "make distclean  clean, and remove $(VENV) too"

venv: $(STAMP)

# Re-install only when pyproject.toml is newer than the stamp (or the venv is new).
# pip uses the machine's own pip configuration (CA bundle, wheel cache), on purpose.
$(STAMP): pyproject.toml
	@if [ ! -x "$(VENV)/bin/python" ]; then \
		echo "creating $(VENV) with $$(command -v $(PYTHON)) ($$($(PYTHON) --version 2>&1))"; \
		$(PYTHON) -m venv "$(VENV)"; \
	fi
	"$(VENV)/bin/python" -m pip install -q -e '.[test]'
	@touch "$@"

run: venv
	WHARF_DATA="$(WHARF_DATA)" "$(VENV)/bin/wharf" serve $(ARGS)

test: venv
	bash scripts/ensure-test-tools.sh
	"$(VENV)/bin/python" -m pytest $(PYTEST_ARGS)

bench: venv
	bash bench/run.sh $(BENCH_ARGS)
	$(MAKE) bench-formats

# One benchmark per format folder (bench/<format>/run.sh): npm, cargo, generic, maven, ...
bench-formats: venv
	@set -e; for script in bench/*/run.sh; do echo "== $$script"; bash "$$script"; done

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
	find . -path "./$(VENV)" -prune -o -path ./.git -prune -o -path ./data -prune -o \
		\( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf "$(VENV)"
