# Everything runs from .venv, created and filled on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick

.PHONY: install test train compare report clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: install
	$(PY) -m pytest -q

train: install
	$(PY) -m runners.train

compare: install
	$(PY) -m runners.compare --profile $(PROFILE)

report: install
	$(PY) -m analysis.report results/$(PROFILE)

clean:
	rm -rf $(VENV) .pytest_cache
