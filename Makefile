# Everything runs from .venv, created and filled on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
# Optional dependency groups: `make test EXTRAS=test,cluster` adds Ray (CI does).
EXTRAS ?= test
comma := ,
# local (default) or ray; ADDRESS: auto or HOST:PORT of a running Ray cluster.
EXECUTOR ?= local
ADDRESS ?= auto

.PHONY: install test test-all lint train compare report docs reference clean

install: $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

# The fast tier: everything but the tests marked slow (pyproject.toml); the parity proof of the four is in it. Two
# workers (pytest-xdist): most tests are one busy process (an import, a report) and would leave a core idle. Each
# file runs on one worker, so a module's fixtures are made once; the trained runs the files share are made once
# (tests/conftest.py); a test marked alone has the machine to itself.
test: install
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile

# Every test, the slow tier included (CI runs this).
test-all: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check .

train: install
	$(PY) -m runners.train

compare: install
	$(PY) -m runners.compare --profile $(PROFILE) --executor $(EXECUTOR) $(if $(filter ray,$(EXECUTOR)),--address $(ADDRESS))

report: install
	$(PY) -m analysis.report results/$(PROFILE)

# README's tables and figure, docs/results/ and every prose figure (claims), from results/reference/
docs: install
	$(PY) -m analysis.docs

# This machine's reference set: the sets results/reference/<machine>/ lacks, measured, filed, docs regenerated
reference: install
	$(PY) -m runners.reference

clean:
	rm -rf $(VENV) .pytest_cache
