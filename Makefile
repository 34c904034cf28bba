# One verb per job. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run poll test lint typecheck check bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)            ## install, then run the service on the embedded defaults
	$(BIN)/monitor run

poll: $(STAMP)           ## one cycle: fetch, match, store, deliver, then exit
	$(BIN)/monitor poll --once

# The coverage gate on monitor/ (the CLI and service wiring are omitted in pyproject.toml).
COVERAGE_MIN ?= 96

test: $(STAMP)           ## the whole test suite (starts its own PostgreSQL and HTTP servers), coverage gate
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=$(COVERAGE_MIN)

lint: $(STAMP)
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/ruff format --check monitor tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test  ## what CI runs (.ci/run): ruff, mypy on monitor/ and tests/, tests with the gate

bench: $(STAMP)          ## benchmarks: poll cycle (needs nginx), matching, held alerts
	$(BIN)/python benchmarks/poll.py
	$(BIN)/python benchmarks/matching.py
	$(BIN)/python benchmarks/holds.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info .coverage .coverage.* htmlcov
