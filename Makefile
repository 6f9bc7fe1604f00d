# Every target creates/uses .venv itself; `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint data pretrained pretrained-curve gpu-check clean

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: data
	$(PY) -m mshyper.demo

# The bundled models (README "Pretrained models"): mshyper/pretrain.py trains them under
# experiments/pretrained-bundled (base run, then one warm-started fine-tune per other lambda),
# then replaces the weights (float16) in pretrained/mshyper_small and their real-bitstream
# results in pretrained/results.
pretrained: data
	$(PY) -m mshyper.pretrain

# The same recipe at several training budgets, each compared with JPEG 4:2:0 on eval24:
# experiments/pretrained-budget/budget_curve.{json,png} (README "Pretrained models").
BUDGETS ?= 1000,2000,4000,8000,16000
pretrained-curve: data
	$(PY) -m mshyper.pretrain --base_steps $(BUDGETS) --out_dir experiments/pretrained-budget

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
