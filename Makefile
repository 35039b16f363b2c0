# One-command setup: a virtual environment with the CPU build of torch 2.13.0 installed FIRST (a bare torch
# requirement would pull several GB of CUDA wheels), then this package with its test extras.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lcl-installed
OUT    ?= outputs/demo
CONFIG ?=

.PHONY: setup demo test test-all test-brainscore bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## demo: the main job on its embedded default (bundled photographs; no download), results + figures in $(OUT)
demo: $(STAMP)
	$(BIN)/python -m analyses run --out $(OUT) $(if $(CONFIG),--config $(CONFIG),)

## test: the default test suite (slow / Brain-Score / GPU tests excluded; see README)
test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "not brainscore and not mftma_reference"

## test-brainscore: builds a separate Brain-Score environment (.venv-brainscore) and checks files both ways
test-brainscore: $(STAMP)
	$(BIN)/python -m pytest -m brainscore

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	for b in benchmarks/*_bench.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .venv-brainscore .venv-mftma outputs .pytest_cache
