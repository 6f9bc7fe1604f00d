"""The run directory's owner (common/run_dir.py): layout, preparing it, naming its model.

(Resume, warm start, restore and the refusals on a real training run are tested end to end in
tests/test_train.py and tests/test_itinf.py.)
"""
import json
import os

import pytest

from common import config_utils, run_dir
from common.config_defaults import make_itinf_config, quickstart_config


def test_default_workdir_is_experiment_then_wid_and_run_name(tmp_path):
  assert run_dir.default_workdir(str(tmp_path), "x1", 3, "rd_lambda=0.01") == str(
      tmp_path / "x1" / "wid=3-rd_lambda=0.01")
  assert run_dir.default_workdir(str(tmp_path), "x1", None, "demo").endswith("wid=none-demo")


def test_checkpoint_step_is_the_prefix_number():
  assert run_dir.checkpoint_step("/runs/wid=0-a-b/checkpoints/ckpt-1200") == 1200


def test_prepare_training_writes_config_snapshot_and_record(tmp_path):
  config_file = tmp_path / "my_config.py"
  config_file.write_text("# the config file\n")
  workdir = tmp_path / "run"
  config = quickstart_config()
  identity = run_dir.prepare_training(str(workdir), config, str(config_file), "mshyper.models", 2)
  assert json.loads((workdir / "config.json").read_text()) == json.loads(
      config_utils.config_to_json(config))
  assert (workdir / "config_snapshot.py").read_text() == "# the config file\n"
  record = json.loads((workdir / "run.json").read_text())
  assert (record["model"], record["model_identity"], record["hid"]) == (
      "mshyper.models", identity, 2)
  assert not [name for name in os.listdir(workdir) if name.endswith(".tmp")]


def test_prepare_itinf_writes_config_and_snapshot(tmp_path):
  config_file = tmp_path / "itinf.py"
  config_file.write_text("# itinf config\n")
  workdir = tmp_path / "itinf_run"
  config = make_itinf_config()
  run_dir.prepare_itinf(str(workdir), config, str(config_file), str(tmp_path / "train"), 100)
  assert json.loads((workdir / "config.json").read_text())["itinf_config"]["num_steps"] == 3000
  assert (workdir / "config_snapshot.py").read_text() == "# itinf config\n"
  assert json.loads((workdir / run_dir.ITINF_RUN_RECORD).read_text())["checkpoint_step"] == 100


def test_model_module_of_run_reads_the_run_record(tmp_path):
  (tmp_path / run_dir.RUN_RECORD).write_text(json.dumps(dict(model="factorized.models")))
  assert run_dir.model_module_of_run(str(tmp_path)) == "factorized.models"
  assert run_dir.model_class(run_dir.model_module_of_run(str(tmp_path))).__module__ == (
      "factorized.models")


def test_model_module_of_a_directory_without_record_is_an_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="has no run.json"):
    run_dir.model_module_of_run(str(tmp_path))


def test_unknown_model_module_is_named():
  with pytest.raises(ValueError, match="'nosuch.models' is not a model module"):
    run_dir.model_class("nosuch.models")


def test_model_class_of_a_config_outside_a_model_package_is_an_error(tmp_path):
  with pytest.raises(ValueError, match="is not in a model package's configs/ folder"):
    run_dir.model_class_of_config(str(tmp_path / "configs" / "mine.py"))
