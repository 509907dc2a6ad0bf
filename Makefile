# Two commands matter: `make demo` and `make test`. Both create .venv (Python 3.11) when
# missing, install the pinned stack from requirements.lock, and are safe to run again.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check
export PIP_DEFAULT_TIMEOUT ?= 180

.PHONY: demo test install bench lock clean help
help:
	@echo "make demo   set up .venv, then run the whole pipeline on synthetic data and print results"
	@echo "make test   set up .venv, then run the test suite"
	@echo "make bench  run the benchmarks (writes benchmarks/results/*.json)"
	@echo "make lock   regenerate requirements.lock from requirements.in"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the lock or the package metadata changed.
$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(PIP) install --no-deps -r requirements.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torch, dgl, numba, transformers; print('stack ok: torch', torch.__version__, 'dgl', dgl.__version__)"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/coengage demo

# The report test renders report.html in headless Chromium (Debian package `chromium`).
# Installing it needs root and apt; without them the test says it was skipped for that reason.
CHROMIUM_STAMP := $(VENV)/.chromium
$(CHROMIUM_STAMP): | $(BIN)/python
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; the report rendering test will be skipped"; }
	@command -v chromium >/dev/null 2>&1 && touch $(CHROMIUM_STAMP) || true

test: install $(CHROMIUM_STAMP)
	$(BIN)/python -m pytest -q

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): requirements-bench.txt $(STAMP)
	$(PIP) install -c requirements.lock -r requirements-bench.txt
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_embed.py
	$(BIN)/python benchmarks/bench_mining.py
	$(BIN)/python benchmarks/bench_knn.py
	$(BIN)/python benchmarks/bench_lm.py

lock: | $(BIN)/python
	$(PIP) install -r requirements.in
	$(PIP) freeze --exclude-editable | grep -v '^coengage' > requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info
