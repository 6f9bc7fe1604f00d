"""configs: environment overrides, the local override file, dataset name resolution."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import configs
from common import datasets

_ENV_VARS = {"NTC_EXPERIMENTS_DIR": "EXPERIMENTS_DIR", "NTC_RESULTS_DIR": "RESULTS_DIR",
             "NTC_SLURM_JOBS_DIR": "SLURM_JOBS_DIR", "NTC_DATA_DIR": "DATA_DIR"}


def _import_configs(cwd, env_overrides, project_dir=configs.PROJECT_DIR):
  """Imports configs in a fresh interpreter (it reads the environment at import time)."""
  env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
  env.update(env_overrides, PYTHONPATH=project_dir)
  script = ("import json, configs\n"
            "print(json.dumps({k: getattr(configs, k) for k in "
            f"{sorted(_ENV_VARS.values()) + ['PROJECT_DIR', 'DATASETS']}}}))")
  result = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_defaults_are_inside_the_project(tmp_path):
  values = _import_configs(tmp_path, {})
  assert values["PROJECT_DIR"] == configs.PROJECT_DIR
  assert values["EXPERIMENTS_DIR"] == os.path.join(configs.PROJECT_DIR, "experiments")
  assert values["RESULTS_DIR"] == os.path.join(configs.PROJECT_DIR, "results")
  assert values["SLURM_JOBS_DIR"] == os.path.join(configs.PROJECT_DIR, "slurm_jobs")
  assert values["DATA_DIR"] == os.path.join(configs.PROJECT_DIR, "data")


def test_environment_overrides_are_read_at_import(tmp_path):
  overrides = {variable: str(tmp_path / variable.lower()) for variable in _ENV_VARS}
  overrides["NTC_EXPERIMENTS_DIR"] = "relative/exp"  # made absolute against the cwd
  values = _import_configs(tmp_path, overrides)
  assert values["EXPERIMENTS_DIR"] == str(tmp_path / "relative" / "exp")
  for variable in ("NTC_RESULTS_DIR", "NTC_SLURM_JOBS_DIR", "NTC_DATA_DIR"):
    assert values[_ENV_VARS[variable]] == overrides[variable]
  assert values["DATASETS"]["kodak"] == str(tmp_path / "ntc_data_dir" / "kodak" / "*.png")


def test_local_override_file_updates_datasets(tmp_path):
  project = tmp_path / "project"
  project.mkdir()
  shutil.copy(os.path.join(configs.PROJECT_DIR, "configs.py"), project)
  (project / "configs_local.py").write_text(
      "DATASETS = {'clic': '/srv/clic/*.png', 'kodak': '/srv/kodak/*.png'}\n")
  values = _import_configs(tmp_path, {}, project_dir=str(project))
  assert values["DATASETS"]["clic"] == "/srv/clic/*.png"
  assert values["DATASETS"]["kodak"] == "/srv/kodak/*.png"
  assert values["DATASETS"]["eval24"] == str(project / "data" / "eval24" / "*.png")


def test_dataset_glob_names_and_pass_through():
  assert datasets.dataset_glob("kodak") == os.path.join(configs.DATA_DIR, "kodak", "*.png")
  for name in ("train", "eval24", "eval_lossless8", "coco"):
    assert datasets.dataset_glob(name).startswith(configs.DATA_DIR + os.sep)
  assert datasets.dataset_glob("photos/*.png") == "photos/*.png"
  assert datasets.dataset_glob("a/b.png") == "a/b.png"
  assert datasets.dataset_glob("img_[0-9].jpg") == "img_[0-9].jpg"


def test_unknown_dataset_name_lists_known_names():
  with pytest.raises(ValueError, match="Unknown dataset name 'kodakk'.*eval24.*kodak"):
    datasets.dataset_glob("kodakk")


def test_embedded_dataset_is_written_on_first_use(tmp_path):
  data_dir = tmp_path / "data"
  env = dict(os.environ, NTC_DATA_DIR=str(data_dir), PYTHONPATH=configs.PROJECT_DIR)
  script = "from common import datasets; print(datasets.dataset_glob('embedded_eval'))"
  result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True)
  assert result.stdout.strip() == str(data_dir / "embedded" / "eval" / "*.png")
  assert sorted(os.listdir(data_dir / "embedded" / "eval")) == ["coffee.png", "motorcycle.png"]
  assert sorted(os.listdir(data_dir / "embedded" / "train")) == [
      "astronaut.png", "chelsea.png", "grace_hopper.png", "rocket.png"]
