"""Project-wide locations and the dataset name -> file glob map.

No personal paths live here: every directory can be moved with an environment variable
(read once, at import time), and a gitignored `configs_local.py` next to this file may
define `DATASETS = {name: glob}` to add or override dataset entries on one machine.
Pure data: it imports nothing of the project (common/datasets.py resolves dataset names).
"""

import importlib.util
import os

PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))


def _dir_from_env(variable, default_name):
  # Made absolute now so that jobs started from another working directory agree.
  value = os.environ.get(variable) or os.path.join(PROJECT_DIR, default_name)
  return os.path.abspath(os.path.expanduser(value))


EXPERIMENTS_DIR = _dir_from_env("NTC_EXPERIMENTS_DIR", "experiments")
RESULTS_DIR = _dir_from_env("NTC_RESULTS_DIR", "results")
SLURM_JOBS_DIR = _dir_from_env("NTC_SLURM_JOBS_DIR", "slurm_jobs")
DATA_DIR = _dir_from_env("NTC_DATA_DIR", "data")
# Derived data that is cheap to rebuild (e.g. checked training-file headers).
CACHE_DIR = _dir_from_env("NTC_CACHE_DIR", ".cache")

DATASETS = {
    # Real photos shipped inside installed wheels; written on first use, no download.
    "embedded_train": os.path.join(DATA_DIR, "embedded", "train", "*.png"),
    "embedded_eval": os.path.join(DATA_DIR, "embedded", "eval", "*.png"),
    # Written by `make data` (python -m common.build_data).
    "train": os.path.join(DATA_DIR, "train", "*.png"),
    "eval24": os.path.join(DATA_DIR, "eval24", "*.png"),
    "eval_lossless8": os.path.join(DATA_DIR, "eval_lossless8", "*.png"),
    # Not obtainable from package registries; users who have them put them here.
    "kodak": os.path.join(DATA_DIR, "kodak", "*.png"),
    "coco": os.path.join(DATA_DIR, "coco", "train2017", "*.jpg"),
}

_LOCAL_FILE = os.path.join(PROJECT_DIR, "configs_local.py")
if os.path.exists(_LOCAL_FILE):
  # Loaded by path, not by module search, so no other configs_local on sys.path can shadow it.
  _spec = importlib.util.spec_from_file_location("configs_local", _LOCAL_FILE)
  _local = importlib.util.module_from_spec(_spec)
  _spec.loader.exec_module(_local)
  DATASETS.update(getattr(_local, "DATASETS", {}))
