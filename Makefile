# The commands people and CI share. Each target creates/updates .venv itself,
# from a machine with only Python 3.11, pip and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Pinned versions of every dependency (regenerate with `make lock`).
LOCK := requirements.lock
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint bench bench-quick check-extras lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-base: $(BIN)/python pyproject.toml $(LOCK)
	$(PIP) install -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-base
	$(PIP) install -c $(LOCK) -e '.[dev]'
	touch $@

demo: $(VENV)/.installed-base
	$(BIN)/python examples/demo/main.py

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Peers (MLflow, DVC, Evidently) get their own venvs under bench/ on first run.
# The dev extras bring Playwright, which bench/ui.py drives (with Debian's Chromium).
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/tracking.py
	$(BIN)/python bench/data.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/pipelines.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/monitoring.py
	$(BIN)/python bench/server.py
	$(BIN)/python bench/ui.py

# Every benchmark on small sizes: proves they still run (CI), measures nothing.
bench-quick: $(VENV)/.installed-dev
	$(BIN)/python bench/cli.py --quick
	$(BIN)/python bench/tracking.py --quick
	$(BIN)/python bench/data.py --quick
	$(BIN)/python bench/models.py --quick
	$(BIN)/python bench/pipelines.py --quick
	$(BIN)/python bench/serving.py --quick
	$(BIN)/python bench/monitoring.py --quick
	$(BIN)/python bench/server.py --quick
	$(BIN)/python bench/ui.py --quick

# Each extra must resolve with plain pip, without the lock (what users run).
EXTRAS := s3 postgres ray onnx dev
check-extras: $(BIN)/python
	@for extra in $(EXTRAS); do \
	  echo "resolving keel[$$extra] without the lock"; \
	  $(PIP) install --dry-run --ignore-installed ".[$$extra]" > /dev/null || exit 1; \
	done

lock: $(VENV)/.installed-dev
	$(PIP) freeze --exclude-editable | grep -v '^keel' > $(LOCK)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
