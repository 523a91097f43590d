# Two commands do all set-up on a fresh machine:
#   make demo   run a sync against the built-in Sentry API emulator and print a summary
#   make test   run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench soak clean

$(BIN)/sentry-mirror: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/sentry-mirror
	$(BIN)/sentry-mirror demo

test: $(BIN)/sentry-mirror
	$(BIN)/python -m pytest

SCALE ?= small
REPORT_EVENTS ?= 1000000

bench: $(BIN)/sentry-mirror
	$(BIN)/python benchmarks/bench_sync.py --scale $(SCALE) --report-events $(REPORT_EVENTS)

KILLS ?= 40
SEED ?= 1
SOAK_SECONDS ?= 1800

soak: $(BIN)/sentry-mirror
	$(BIN)/python benchmarks/soak.py --scale $(SCALE) --kills $(KILLS) --seed $(SEED) --max-seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) demo.duckdb
