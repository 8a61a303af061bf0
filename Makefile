# terralab — the README's commands. `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision pins that resolve from local wheels on the project's machines; override on others,
# e.g. `make test TORCH_PINS=` to let pip choose.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
SHARED_DATA ?= $(abspath ../shared/data)
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k catalog -x"` (.ci/run adds its skip guard here).
PYTEST_ARGS ?=
# Test workers (pytest-xdist): one per core, at most 4 (each may hold torch and a notebook kernel); the test
# files are spread over them, each file whole on one worker. `make test TEST_JOBS=1` runs in one process.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n > 4 ? 4 : n )))
export TERRALAB_DATA_MIRROR ?= $(if $(wildcard $(SHARED_DATA)/SOURCES.md),$(SHARED_DATA),)
export MPLBACKEND := Agg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

STAMP := $(VENV)/.terralab-installed

.PHONY: setup demo test lab bench clean kernel

setup: $(STAMP) kernel

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(if $(strip $(TORCH_PINS)),$(BIN)/python -m pip install -q $(TORCH_PINS))
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

kernel: $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name terralab --display-name "Python (terralab)" >/dev/null
	@echo "kernel 'terralab' registered in $(VENV)"

demo: setup
	$(BIN)/terralab demo -o reports
	@echo "open reports/index.html"

test: setup
	$(BIN)/python -m pytest -q $(if $(filter-out 0 1,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadfile) $(PYTEST_ARGS)

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf reports .pytest_cache
