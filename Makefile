# leadstage: two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_LEADS ?= 5000
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install lint typecheck imports pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,web-test]"   # every extra of the project, together
	$(BIN)/python -m compileall -q src/leadstage   # bytecode now, as a wheel's install does (start-up time)
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/leadstage init
	LEADSTAGE_HOST=$(HOST) LEADSTAGE_PORT=$(PORT) $(BIN)/leadstage demo --leads $(DEMO_LEADS) --seed 42 --if-empty
	$(BIN)/leadstage serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup -q   # browser tests share one worker (one server, one Chromium)

test: lint typecheck imports pytest

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache leadstage.db*
