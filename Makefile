# The two commands of the README: `make run` starts the platform, `make test` runs every test.
# Both install what they need first (a virtualenv in .venv, the local servers on first start).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: tools install run test lint typecheck unit integration e2e infra-up infra-down infra-status clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "orderflow needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(BIN)/.installed

run: $(BIN)/.installed
	$(BIN)/orderflow run

test: lint typecheck tools
	$(BIN)/pytest $(PYTEST_ARGS)

tools:
	bash deploy/local/tools.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check orderflow tests bench
	$(BIN)/ruff format --check orderflow tests bench

typecheck: $(BIN)/.installed
	$(BIN)/mypy

unit: $(BIN)/.installed
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

integration: $(BIN)/.installed
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

e2e: $(BIN)/.installed
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

infra-up: $(BIN)/.installed
	$(BIN)/orderflow infra up

infra-down: $(BIN)/.installed
	$(BIN)/orderflow infra down

infra-status: $(BIN)/.installed
	$(BIN)/orderflow infra status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var
