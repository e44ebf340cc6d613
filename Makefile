# seenet: `make demo` runs the whole pipeline on built-in data, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.seenet-installed
EXTRAS ?= dev,crf,voc,docs

# No hub downloads at run time; compiled kernels are cached inside the build folder.
export HF_HUB_OFFLINE := 1
export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/build/inductor-cache
export TRITON_CACHE_DIR := $(CURDIR)/build/triton-cache
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: install test test-slow lint pytest triton-test docs demo demo-quick bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples docs

pytest: $(STAMP)
	$(PY) -m pytest -m "not triton_interpret and not slow" -n 2 --dist loadfile src tests

# the slow cases (many kill points of the fault-injection suite, long learning tests)
test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not triton_interpret" -n 2 --dist loadfile tests

# Triton kernels on CPU tensors through the interpreter: the variable must be set before the kernel
# module is imported, hence a separate invocation.
triton-test: $(STAMP)
	TRITON_INTERPRET=1 $(PY) -m pytest -m triton_interpret tests

test: lint pytest triton-test docs

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

demo: $(STAMP)
	$(VENV)/bin/seenet demo --out demo-output

demo-quick: $(STAMP)
	$(VENV)/bin/seenet demo --quick --out demo-output

bench: $(STAMP)
	$(PY) benchmarks/bench_self_erase.py
	$(PY) benchmarks/bench_train_step.py
	$(PY) benchmarks/bench_proxy.py

clean:
	rm -rf build docs/_build docs/generated docs/auto_examples .pytest_cache .ruff_cache
