"""End-to-end training: loss goes down on real photos, kill -9 + rerun resumes, warm starts."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from common import config_utils, experiment, train_lib
from common.data_lib import train_dataset
from mshyper.models import Model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(ROOT, "mshyper", "configs", "quickstart.py")


def quickstart_model(**overrides):
  config = config_utils.load_config_module(QUICKSTART).get_config()
  config_utils.apply_overrides(config, overrides)
  return experiment.build_model(Model, config.model_config)


@pytest.mark.slow
def test_loss_decreases_on_real_photo_crops():
  tf.random.set_seed(1)
  model = quickstart_model(**{"train_eval_config.num_steps": 2000})
  batches = iter(train_dataset("embedded_train", patch_size=128, batch_size=4, seed=0))
  losses = [float(model.train_step(next(batches))["loss"]) for _ in range(60)]
  assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10]), losses


def train_command(experiments_dir, *extra):
  return [sys.executable, "-m", "mshyper.train", "--config", QUICKSTART,
          "--experiments_dir", experiments_dir, "--hid", "1",
          "--config.train_eval_config.num_steps=160",
          "--config.train_eval_config.log_metrics_every_steps=10",
          "--config.train_eval_config.checkpoint_every_steps=20",
          "--config.train_eval_config.eval_every_steps=160",
          "--config.train_data_config.patchsize=64", *extra]


def checkpoint_steps(workdir):
  return sorted(int(re.search(r"ckpt-(\d+)\.index", p).group(1))
                for p in glob.glob(os.path.join(workdir, "checkpoints", "ckpt-*.index")))


@pytest.mark.slow
def test_kill_then_rerun_resumes_at_saved_step(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  command = train_command(str(tmp_path))
  process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
  workdirs = []
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    workdirs = glob.glob(os.path.join(tmp_path, "mshyper-quickstart-*", "wid=1-*"))
    if workdirs and any(s >= 40 for s in checkpoint_steps(workdirs[0])):
      break
    time.sleep(0.2)
  assert process.poll() is None, f"training ended before it could be killed: {process.stderr.read()}"
  process.send_signal(signal.SIGKILL)
  process.wait()
  workdir, = workdirs
  saved = checkpoint_steps(workdir)
  assert saved and saved[-1] < 160
  result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  resumed = re.search(r"Resumed from .*ckpt-(\d+) at step (\d+)", result.stderr)
  assert resumed and int(resumed.group(1)) == int(resumed.group(2)) >= saved[-1]
  assert checkpoint_steps(workdir)[-1] == 160
  # Outputs: config, TensorBoard events, JSONL metrics with progress and validation.
  config = json.load(open(os.path.join(workdir, "config.json")))
  assert config["model_config"]["rd_lambda"] == 0.01  # get_hyper()[1]
  assert glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
  records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert any("train/steps_per_sec" in r for r in records)
  assert any("val/psnr" in r and r["step"] == 160 for r in records)
  assert "steps/s | ETA" in open(os.path.join(workdir, "train.log")).read()

  # Warm start another run from this experiment dir + wid; it starts at step 0 with the weights.
  warm = subprocess.run(train_command(str(tmp_path), "--xid", "warm", "--warm_start",
                                      os.path.dirname(workdir),
                                      "--config.train_eval_config.num_steps=20"),
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert warm.returncode == 0, warm.stderr[-3000:]
  assert "Warm-started weights from" in warm.stderr and "Resumed" not in warm.stderr

  # A run dir holding another model is refused rather than overwritten.
  other = subprocess.run(train_command(str(tmp_path), "--workdir", workdir,
                                       "--config.model_config.latent_config.method=mixedq"),
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert other.returncode != 0 and "holds a run of another model" in other.stderr


def test_checkpoint_from_another_model_is_rejected(tmp_path):
  small = quickstart_model(**{"model_config.transform_config.analysis.output_channels": 32})
  small.train_step(tf.zeros((1, 64, 64, 3)))
  prefix = tf.train.Checkpoint(model=small).save(os.path.join(tmp_path, "ckpt"))
  with pytest.raises(train_lib.CheckpointMismatchError, match="does not match this model"):
    train_lib.restore(quickstart_model(), prefix, weights_only=True)


def test_unknown_cli_config_key_fails_clearly(tmp_path):
  result = subprocess.run(train_command(str(tmp_path), "--config.model_config.rd_lamda=0.1"),
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                          text=True, timeout=120)
  assert result.returncode != 0 and "rd_lamda" in result.stderr


def test_missing_warm_start_is_clear(tmp_path):
  with pytest.raises(FileNotFoundError, match="No checkpoint found"):
    train_lib.resolve_checkpoint(str(tmp_path / "nope"), hid=0)
