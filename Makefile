# One command each: `make install`, `make test`, `make demo`. Each builds .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-unit test-integration test-cli test-slow demo bench dist clean

install: $(STAMP)

# torch goes first and pinned: 2.13.0 is the CPU build on this machine's disk; any other
# spec would download a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,eval]'
	touch $(STAMP)

# Every test but the slow ones; test-unit, test-integration and test-cli run one kind each
# (tests/unit/, tests/integration/, tests/cli/, marked by folder).
test: install
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q -m 'unit and not slow'

test-integration: install
	$(PY) -m pytest -q -m 'integration and not slow'

test-cli: install
	$(PY) -m pytest -q -m 'cli and not slow'

test-slow: install
	$(PY) -m pytest -q -m slow

# Synthetic example videos -> dpe edit-expression with the shipped model; no download.
demo: install
	DPE=$(VENV)/bin/dpe examples/demo.sh

bench: install
	$(PY) bench/model_speed.py

# A wheel (with the default model inside) and an sdist in dist/.
dist: install
	$(PY) -m build --outdir dist

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
