# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create the virtual environment (.venv) when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,tf]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/soundtransfer demo --out demo-out

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test: lint typecheck
	$(PY) -m pytest -q -ra

bench: $(STAMP)
	for b in benchmarks/[a-z]*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
