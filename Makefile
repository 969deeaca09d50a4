# copier-llmops: the template's own tasks. `make demo` and `make test` are all a newcomer needs.
.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
# Parallel renders: at least 2 workers even on small machines (most of a render is waiting).
WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -lt 2 ] && n=2; echo $$n)
# Every recipe, and every git hook a recipe runs (pre-commit's hooks call `uv run`), finds the
# tools installed in .venv first: nothing has to be on the machine's PATH but Python and make.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: help prerequisites bootstrap wheels browser demo check test test-updates lint format docs clean test-containers test-containers-all bench-containers

help: ## Show the targets and what they do
	@[ -t 1 ] && on=$$'\033[36m' off=$$'\033[0m' || on= off=; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %s%-14s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

prerequisites: ## Check what the machine needs: Python 3.11+ with venv, git (and a compiler, CMake)
	@bash tests/scripts/check-prerequisites.sh base $(PYTHON)

bootstrap: $(VENV)/.synced ## Install the template's own tools into .venv (uv, copier, pytest ...)

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(BIN)/python || { bash tests/scripts/check-prerequisites.sh base $(PYTHON) \
		&& $(PYTHON) -m venv $(VENV); }
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --locked --quiet
	@touch $@

wheels: bootstrap ## Build the portable llama-cpp-python wheel once (8 to 12 minutes on 2 cores; then cached)
	@$(BIN)/python tests/wheelhouse.py

browser: ## Install Chromium for the chat-page test, if the system has none
	@bash tests/scripts/install-chromium.sh

demo: bootstrap wheels ## Render the default project into build/demo and run it end to end
	$(BIN)/python tests/demo.py

check: bootstrap wheels lint ## Quick gate for a template change: lint, then the default project's make check (ANSWERS='k=v ...')
	$(BIN)/python tests/check_default.py

# The suite tests projects side by side: each project's tests run in one process (TEST_WORKERS=0).
test: bootstrap wheels browser lint ## Lint the template's code, then render and test generated projects
	TEST_WORKERS=0 $(BIN)/pytest -n $(WORKERS)

bench: bootstrap wheels ## Every performance figure next to its reference, one run (docs/benchmarks.md)
	$(BIN)/python tests/benchmarks/bench.py

test-updates: bootstrap wheels ## copier update from every release (make test: the first of each span and the latest)
	UPDATE_FROM_EVERY_RELEASE=1 $(BIN)/pytest -n $(WORKERS) tests/test_update.py

test-containers: bootstrap wheels ## Container tests only: every compose combination, the default stack for real
	$(BIN)/pytest tests/test_containers.py

test-containers-all: bootstrap wheels ## test-containers, with the real stack on every Python and a pgvector devcontainer (slow)
	CONTAINERS_E2E_ALL=1 $(BIN)/pytest tests/test_containers.py

bench-containers: bootstrap wheels ## App image size, cold and warm build time, time from up to healthy
	PATH=$(CURDIR)/$(BIN):$$PATH TEST_PYTHON=$(CURDIR)/$(BIN)/python tests/containers/bench.sh \
		"$$($(BIN)/python tests/containers/render_default.py build/containers-bench)"


lint: bootstrap ## ruff and mypy (strict) over hooks/ and tests/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if [ -d .git ]; then $(BIN)/pre-commit run --all-files --show-diff-on-failure; fi

format: bootstrap ## Format hooks/ and tests/
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: bootstrap ## Build the documentation site (strict)
	$(BIN)/mkdocs build --strict

clean: ## Remove the demo, caches and the tool environment
	rm -rf build site .pytest_cache .mypy_cache .ruff_cache $(VENV)
