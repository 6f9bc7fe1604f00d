# Every target creates/uses .venv itself; `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast data gpu-check clean

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: setup
	$(PY) -m mshyper.demo

test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not slurm" tests

data: setup
	$(PY) -m common.build_data

# On a GPU machine with `tensorflow[and-cuda]==2.14.1` installed (README, GPU readiness).
gpu-check: setup
	$(PY) -m benchmarks.gpu_check

clean:
	rm -rf $(VENV) .pytest_cache
