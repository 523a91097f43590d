# Two commands do all set-up on a fresh machine:
#   make demo   run a sync against the built-in Sentry API emulator and print a summary
#   make test   run the test suite
# and `make notebook` installs Jupyter to open notebooks/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test notebook bench soak clean

$(BIN)/sentry-mirror: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/sentry-mirror
	$(BIN)/sentry-mirror demo

test: $(BIN)/sentry-mirror
	$(BIN)/python -m pytest

# Jupyter and pyarrow in the same .venv (pyproject's `notebook` extra); then how to open the notebooks.
$(BIN)/jupyter-lab: $(BIN)/sentry-mirror
	$(BIN)/python -m pip install --quiet -e '.[test,notebook]'
	touch $@

notebook: $(BIN)/jupyter-lab
	@echo "Jupyter is installed in $(VENV). The notebooks read SENTRY_MIRROR_DB (a path relative to the"
	@echo "folder you start Jupyter in), else SENTRY_MIRROR_CONFIG's db, else sentry.duckdb. For the demo store:"
	@echo "  make demo"
	@echo "  SENTRY_MIRROR_DB=demo.duckdb $(BIN)/jupyter lab notebooks/"
	@echo "or top to bottom without a browser (the notebook file is left unchanged):"
	@echo "  SENTRY_MIRROR_DB=demo.duckdb $(BIN)/jupyter execute notebooks/error_trends.ipynb"

SCALE ?= small
REPORT_EVENTS ?= 1000000
HOOK_EVENTS ?= 3000
COST_SCALES ?= small,eight,wide

# Sync speed at SCALE, requests per sync at 4, 8 and 50 projects (exact counts), and the events per
# second the webhook receiver stores.
bench: $(BIN)/sentry-mirror
	$(BIN)/python benchmarks/bench_sync.py --scale $(SCALE) --report-events $(REPORT_EVENTS)
	$(BIN)/python benchmarks/bench_cost.py --scales $(COST_SCALES)
	$(BIN)/python benchmarks/bench_hooks.py $(HOOK_EVENTS)

# The reading commands as a user runs them, on a store of scale small (benchmarks/results/cli.md).
.PHONY: bench-cli
bench-cli: $(BIN)/sentry-mirror
	$(BIN)/python benchmarks/bench_cli.py

# Issue search latency (`issues --query`) on a synthetic store of SEARCH_EVENTS events.
SEARCH_EVENTS ?= 10000000
.PHONY: bench-search
bench-search: $(BIN)/sentry-mirror
	$(BIN)/python benchmarks/bench_search.py --events $(SEARCH_EVENTS)

KILLS ?= 40
SEED ?= 1
SOAK_SECONDS ?= 1800

soak: $(BIN)/sentry-mirror
	$(BIN)/python benchmarks/soak.py --scale $(SCALE) --kills $(KILLS) --seed $(SEED) --max-seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) demo.duckdb
