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

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/run_all.py

lock: | $(BIN)/python
	$(PIP) install -r requirements.in
	$(PIP) freeze --exclude-editable | grep -v '^coengage' > requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info
