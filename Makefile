# One command per chore, the same on a laptop and in CI. Needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run migrate test test-unit lint format check bench lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv with the app and its tools

run: $(STAMP) ## migrate the database, then start the app and its alert checks (reads the environment and .env)
	$(BIN)/python -m bot serve --migrate --worker

migrate: $(STAMP) ## create or upgrade the database schema
	$(BIN)/python -m bot migrate

test: $(STAMP) ## run every test: unit and integration (set TEST_DATABASE_URL to include PostgreSQL)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## run the fast, pure unit tests only (no sockets, databases or browser)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, formatting, mypy --strict and the layers' import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict bot
	$(BIN)/lint-imports

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: $(STAMP) ## validate the configuration and try it against Slack and Breeze
	$(BIN)/python -m bot check

bench: $(STAMP) ## benchmark the server against raw-ASGI floors (BENCH_ARGS=--quick for a short run)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

lock: ## re-pin constraints.txt to the newest versions the ranges in pyproject.toml allow
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e ".[dev]"
	{ echo "# Pinned versions for reproducible installs; regenerate with 'make lock'."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf .lock-venv

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .lock-venv .pytest_cache .mypy_cache .ruff_cache .hypothesis
