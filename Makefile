# Every target creates/uses .venv itself; `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint data pretrained gpu-check clean

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: data
	$(PY) -m mshyper.demo

# The bundled models (README "Pretrained models"): trains into experiments/pretrained-base and
# experiments/pretrained (base run, then one warm-started fine-tune per other lambda), writes
# their weights (float16) to $(PRETRAINED) and their real-bitstream results to
# pretrained/results. The fine-tunes are independent: running the four at once (as was done
# for the bundled weights) gives the same models in less wall time.
PRETRAINED := pretrained/mshyper_small
PRETRAINED_CONFIG := mshyper/configs/pretrained.py
PRETRAINED_TRAIN := $(PY) -m mshyper.train --config $(PRETRAINED_CONFIG) --experiments_dir experiments

pretrained: data
	$(PRETRAINED_TRAIN) --xid pretrained-base
	for hid in 0 1 2 3; do \
	  $(PRETRAINED_TRAIN) --xid pretrained --hid $$hid \
	      --warm_start experiments/pretrained-base/wid=none-* || exit 1; \
	done
	rm -rf $(PRETRAINED) pretrained/results
	$(PY) -m common.export_run --float16 --out_dir $(PRETRAINED) experiments/pretrained-base/wid=none-* \
	    experiments/pretrained/wid=*
	for run in $(PRETRAINED)/wid=*; do \
	  for dataset in eval24 embedded_eval; do \
	    $(PY) -m mshyper.eval --workdir $$run --dataset $$dataset --results_dir pretrained/results \
	        || exit 1; \
	  done; \
	done
	rm -f pretrained/results/*/*/.aggregate.lock

test: setup
	$(PY) -m pytest -q tests

test-fast: lint
	$(PY) -m pytest -q -m "not slow and not slurm" tests

# pyproject.toml configures it: pyflakes' checks (unused imports, undefined names) and 100 columns.
lint: setup
	$(PY) -m ruff check .

data: setup
	$(PY) -m common.build_data

# On a GPU machine with `tensorflow[and-cuda]==2.14.1` installed (README, GPU readiness).
gpu-check: setup
	$(PY) -m benchmarks.gpu_check

clean:
	rm -rf $(VENV) .pytest_cache
