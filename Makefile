# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create the virtual environment (.venv) when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit bench clean-venv test-matrix test-matrix-quick

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

# What another machine changes, one setting at a time: torch's thread count (tests/conftest.py
# honours OMP_NUM_THREADS), ATen's kernel set, oneDNN's instruction set, MKL's code path
# ("none": none of them set). Each setting runs pytest once; the summary lists each one's
# result and the target fails if any did. `make test` (CI) is the "none" run plus the lint.
MATRIX_VARS := OMP_NUM_THREADS ATEN_CPU_CAPABILITY ONEDNN_MAX_CPU_ISA MKL_CBWR
MATRIX := none OMP_NUM_THREADS=1 OMP_NUM_THREADS=4 ATEN_CPU_CAPABILITY=default \
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=COMPATIBLE
# The float-sensitive subset: front end, feature store (threads, ranks, resume), inference,
# training, models, pre-training, the gradients of 2 processes, TensorFlow's SimCLR vs ours.
QUICK_TESTS := tests/features tests/audio tests/inference tests/train tests/models \
	tests/pretrain tests/test_distributed.py tests/weights/test_tf_simclr.py
MATRIX_TESTS ?= tests
PYTEST_ARGS ?=

test-matrix: $(STAMP)
	@rm -rf .test-matrix && mkdir .test-matrix; failed=""; for s in $(MATRIX); do \
		set=$$( [ "$$s" = none ] || echo "$$s" ); log=.test-matrix/$$s.log; \
		echo "=== test-matrix: $$s (log: $$log)"; \
		env $(foreach v,$(MATRIX_VARS),-u $(v)) $$set $(PY) -m pytest -q -ra $(PYTEST_ARGS) \
			$(MATRIX_TESTS) > $$log 2>&1 || failed="$$failed $$s"; \
		grep -E "^(FAILED|ERROR) " $$log; tail -n 1 $$log; \
		echo "    $$s: $$(tail -n 1 $$log)" >> .test-matrix/summary; \
	done; echo "=== test-matrix summary ($(MATRIX_TESTS)):"; cat .test-matrix/summary; \
	if [ -n "$$failed" ]; then echo "FAILED under:$$failed"; exit 1; fi

test-matrix-quick:
	$(MAKE) test-matrix MATRIX_TESTS="$(QUICK_TESTS)"

bench: $(STAMP)
	for b in benchmarks/[a-z]*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
