# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test system-packages lint typecheck pytest bench clean

$(BIN)/obp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/obp

run: $(BIN)/obp
	$(BIN)/obp serve --host $(HOST) --port $(PORT)

test: $(BIN)/obp system-packages lint typecheck pytest

# SoftHSM2 (the PKCS#11 key store's test HSM) comes from the system, not from pip.
system-packages:
	bash scripts/install-system-packages.sh

lint: $(BIN)/obp
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations

typecheck: $(BIN)/obp
	$(BIN)/mypy

pytest: $(BIN)/obp
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

bench: $(BIN)/obp system-packages
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
