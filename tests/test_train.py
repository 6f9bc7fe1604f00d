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

from common import config_utils, data_lib, preemption, run_dir, train_lib
from common.metric_writer import MetricWriter
from common.data_lib import train_dataset
from conftest import ENV, ROOT
from mshyper.models import Model

QUICKSTART = os.path.join(ROOT, "mshyper", "configs", "quickstart.py")


def quickstart_model(**overrides):
  config = config_utils.load_config_module(QUICKSTART).get_config()
  config_utils.apply_overrides(config, overrides)
  return run_dir.build_model(Model, config.model_config)


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


def wait_for(predicate, process, timeout_s, what):
  deadline = time.time() + timeout_s
  while time.time() < deadline and process.poll() is None:
    if predicate():
      return
    time.sleep(0.2)
  assert process.poll() is None, f"training ended before {what}: {process.stderr.read()[-3000:]}"
  pytest.fail(f"timed out waiting for {what}")


def logged_steps(workdir):
  """Steps of the train/loss records in metrics.jsonl and in the TensorBoard event files."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    jsonl = [r["step"] for r in map(json.loads, f) if "train/loss" in r]
  events = []
  for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      events += [event.step for v in event.summary.value if v.tag == "train/loss"]
  return jsonl, events


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
  """A quickstart run killed (SIGKILL) once it saved step 40, rerun and stopped with Ctrl-C
  (SIGINT) 30 steps after resuming, then rerun to its end (160 steps). Returns the experiments
  dir, the run dir, the checkpoint steps left by the kill, the Ctrl-C'd process (returncode,
  stderr) and the last rerun's stderr."""
  experiments_dir = str(tmp_path_factory.mktemp("experiments"))
  command = train_command(experiments_dir)
  process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
  workdirs = []

  def checkpoint_at_40():
    workdirs[:] = glob.glob(os.path.join(experiments_dir, "mshyper-quickstart-*", "wid=1-*"))
    return workdirs and any(s >= 40 for s in checkpoint_steps(workdirs[0]))

  wait_for(checkpoint_at_40, process, 240, "a checkpoint at step 40")
  process.send_signal(signal.SIGKILL)
  process.wait()
  workdir, = workdirs
  after_kill = checkpoint_steps(workdir)

  process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
  wait_for(lambda: max(logged_steps(workdir)[0]) >= after_kill[-1] + 30, process, 240,
           "30 steps after the resume")
  process.send_signal(signal.SIGINT)
  _, interrupted_stderr = process.communicate(timeout=120)
  interrupted = dict(returncode=process.returncode, stderr=interrupted_stderr,
                     checkpoint_steps=checkpoint_steps(workdir))

  result = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return dict(experiments_dir=experiments_dir, workdir=workdir, after_kill=after_kill,
              interrupted=interrupted, rerun_stderr=result.stderr)


def interrupted_step(resumed_run):
  found = re.search(r"SIGINT received: checkpoint saved at step (\d+)",
                    resumed_run["interrupted"]["stderr"])
  assert found, resumed_run["interrupted"]["stderr"][-3000:]
  return int(found.group(1))


@pytest.mark.slow
def test_killed_run_leaves_its_last_checkpoint(resumed_run):
  assert resumed_run["after_kill"] and 40 <= resumed_run["after_kill"][-1] < 160


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_at_the_step_it_came(resumed_run):
  """Not at a multiple of checkpoint_every_steps: at the step training was at."""
  interrupted = resumed_run["interrupted"]
  assert interrupted["returncode"] == 128 + signal.SIGINT, interrupted["stderr"][-3000:]
  assert interrupted_step(resumed_run) == interrupted["checkpoint_steps"][-1]
  assert 0 < interrupted["checkpoint_steps"][-1] < 160


@pytest.mark.slow
def test_rerun_resumes_at_the_saved_step_and_finishes(resumed_run):
  resumed = re.search(r"Resumed from .*ckpt-(\d+) at step (\d+)", resumed_run["rerun_stderr"])
  assert resumed and int(resumed.group(1)) == int(resumed.group(2)) == \
      interrupted_step(resumed_run)
  assert checkpoint_steps(resumed_run["workdir"])[-1] == 160


@pytest.mark.slow
def test_steps_logged_after_the_last_checkpoint_of_a_killed_run_are_logged_once(resumed_run):
  jsonl, events = logged_steps(resumed_run["workdir"])
  assert jsonl == events == list(range(10, 161, 10)), (jsonl, events)


@pytest.mark.slow
def test_run_dir_holds_config_tensorboard_metrics_and_log(resumed_run):
  workdir = resumed_run["workdir"]
  config = json.load(open(os.path.join(workdir, "config.json")))
  assert config["model_config"]["rd_lambda"] == 0.01  # get_hyper()[1]
  assert glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
  records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert any("train/steps_per_sec" in r for r in records)
  assert any("val/psnr" in r and r["step"] == 160 for r in records)
  assert "steps/s | ETA" in open(os.path.join(workdir, "train.log")).read()


@pytest.mark.slow
def test_warm_start_from_an_experiment_dir_starts_at_step_0(resumed_run):
  warm = subprocess.run(
      train_command(resumed_run["experiments_dir"], "--xid", "warm", "--warm_start",
                    os.path.dirname(resumed_run["workdir"]),
                    "--config.train_eval_config.num_steps=20"),
      cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
  assert warm.returncode == 0, warm.stderr[-3000:]
  assert "Warm-started weights from" in warm.stderr and "Resumed" not in warm.stderr


def train_in_run_dir(resumed_run, override):
  """Training with one config override, into the run dir of resumed_run."""
  return subprocess.run(
      train_command(resumed_run["experiments_dir"], "--workdir", resumed_run["workdir"], override),
      cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_run_dir_of_another_config_is_refused_naming_the_difference(resumed_run):
  other = train_in_run_dir(resumed_run, "--config.train_eval_config.num_steps=170")
  assert other.returncode == 2
  assert "holds a run of another config" in other.stderr
  assert "train_eval_config.num_steps: 160 -> 170" in other.stderr


@pytest.mark.slow
def test_run_dir_of_another_model_is_refused(resumed_run):
  other = train_in_run_dir(resumed_run, "--config.model_config.latent_config.method=mixedq")
  assert other.returncode == 2 and "holds a run of another model" in other.stderr


def test_checkpoint_from_another_model_is_rejected(tmp_path):
  small = quickstart_model(**{"model_config.transform_config.analysis.output_channels": 32})
  small.train_step(tf.zeros((1, 64, 64, 3)))
  prefix = tf.train.Checkpoint(model=small).save(os.path.join(tmp_path, "ckpt"))
  with pytest.raises(run_dir.CheckpointMismatchError, match="does not match this model"):
    run_dir.restore(quickstart_model(), prefix, weights_only=True)


def test_unknown_cli_config_key_fails_clearly(tmp_path):
  result = subprocess.run(train_command(str(tmp_path), "--config.model_config.rd_lamda=0.1"),
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert "error: command line: config has no key 'model_config.rd_lamda'" in result.stderr


def test_cpu_devices_without_mirrored_fails_clearly(tmp_path):
  result = subprocess.run(train_command(str(tmp_path), "--cpu_devices", "2"), cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                          timeout=120)
  assert result.returncode != 0
  assert "--cpu_devices splits the CPU for distribution=mirrored" in result.stderr
  assert not os.listdir(tmp_path), "nothing is written for a refused command"


def test_missing_warm_start_is_clear(tmp_path):
  with pytest.raises(FileNotFoundError, match="No checkpoint found"):
    run_dir.resolve_checkpoint(str(tmp_path / "nope"), hid=0)


def test_metric_writer_drops_records_after_the_resume_step(tmp_path):
  writer = MetricWriter(str(tmp_path))
  for step in range(1, 6):
    writer.write_scalars(step, {"loss": step}, "train")
  writer.flush()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 6, "train/lo')  # torn by a kill
  writer = MetricWriter(str(tmp_path), resume_step=3)
  for step in range(4, 6):
    writer.write_scalars(step, {"loss": step}, "train")
  writer.flush()
  jsonl = [json.loads(line)["step"] for line in open(tmp_path / "metrics.jsonl")]
  events = [event.step for path in sorted(glob.glob(str(tmp_path / "events.out.tfevents.*")))
            for event in map(tf.compat.v1.Event.FromString,
                             (r.numpy() for r in tf.data.TFRecordDataset(path)))
            if event.summary.value]
  assert jsonl == events == [1, 2, 3, 4, 5]


def test_experiment_id_is_stable_and_separates_families_and_configs():
  config = config_utils.load_config_module(QUICKSTART).get_config()
  hypers = config_utils.load_config_module(QUICKSTART).get_hyper()
  xid = config_utils.experiment_id("mshyper", QUICKSTART, config, hypers)
  assert re.fullmatch(r"mshyper-quickstart-[0-9a-f]{8}", xid)
  assert config_utils.experiment_id("mshyper", "/elsewhere/quickstart.py", config, hypers) == xid
  assert config_utils.experiment_id("factorized", QUICKSTART, config, hypers) != xid
  assert config_utils.experiment_id("mshyper", QUICKSTART, config, hypers[:1]) != xid
  longer = config_utils.apply_overrides(config_utils.load_config_module(QUICKSTART).get_config(),
                                        {"train_eval_config.num_steps": 100})
  assert config_utils.experiment_id("mshyper", QUICKSTART, longer, hypers) != xid


@pytest.mark.slow
def test_two_replica_step_equals_one_device_step():
  """Global batch 8 on MirroredStrategy over 2 logical CPUs vs on one device (in a subprocess:
  logical devices must be set before TensorFlow starts). Tolerance: float32 round-off of sums in
  another order, 1e-6 absolute on the weights (a step moves them by ~lr = 3e-4), 1e-4 relative
  on the Adam moments (a gradient scaled by the number of replicas would be off by 100%) and
  1e-6 relative on the loss (measured: 7.5e-9, 8.2e-6 and 1.2e-7)."""
  result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "distributed_step_check.py"),
                           "1e9", "1.0"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  for line in result.stdout.splitlines():
    record = json.loads(line)
    assert record["replicas"] == 2 and record["step"] == [1, 1], record
    assert record["weights"] < 1e-6, record
    assert record["moments"] < 1e-4 * record["moment_scale"], record
    assert record["loss"] < 1e-6 * record["loss_scale"], record


MIRRORED_OVERRIDES = {
    "model_config.latent_config.method": "ste",  # deterministic: comparable across runs
    "model_config.transform_config.analysis.channels_base": 16,
    "model_config.transform_config.analysis.output_channels": 32,
    "train_data_config.patchsize": 64, "train_data_config.seed": 1,
    "val_data_config.max_images": 1, "train_eval_config.num_steps": 30,
    "train_eval_config.log_metrics_every_steps": 1,
    "train_eval_config.checkpoint_every_steps": 5, "train_eval_config.eval_every_steps": 1000}


@pytest.mark.slow
def test_mirrored_run_signalled_and_resumed_equals_uninterrupted(tmp_path):
  """distribution=mirrored on 2 logical CPUs (--cpu_devices 2) through the train CLI: SIGUSR1
  after a checkpoint saves and exits 75, the rerun resumes and ends at num_steps with every step
  logged once, and its weights are those of the same 30 steps on one device, uninterrupted, from
  the same start (within 1e-5; float32 round-off of the 2-replica sum)."""
  config = config_utils.load_config_module(QUICKSTART).get_config()
  config_utils.apply_overrides(config, config_utils.load_config_module(QUICKSTART).get_hyper()[1])
  config_utils.apply_overrides(config, MIRRORED_OVERRIDES)
  start = tf.train.Checkpoint(model=run_dir.build_model(Model, config.model_config)).save(
      str(tmp_path / "start" / "ckpt"))
  command = [sys.executable, "-m", "mshyper.train", "--config", QUICKSTART, "--hid", "1",
             "--experiments_dir", str(tmp_path / "experiments"), "--cpu_devices", "2",
             "--warm_start", start, "--config.train_eval_config.distribution=mirrored",
             *(f"--config.{k}={v}" for k, v in MIRRORED_OVERRIDES.items())]
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
  workdirs = []

  def checkpoint_at_5():
    workdirs[:] = glob.glob(str(tmp_path / "experiments" / "mshyper-quickstart-*" / "wid=1-*"))
    return workdirs and checkpoint_steps(workdirs[0])

  wait_for(checkpoint_at_5, process, 300, "a checkpoint at step 5")
  process.send_signal(signal.SIGUSR1)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == preemption.EXIT_REQUEUE, stderr[-3000:]
  assert "Strategy MirroredStrategy with 2 replica(s)" in stderr
  saved = re.search(r"SIGUSR1 received: checkpoint saved at step (\d+)", stderr)
  assert saved and 5 <= int(saved.group(1)) < 30, stderr[-3000:]

  resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert re.search(rf"Resumed from .*ckpt-{saved.group(1)} at step {saved.group(1)}\.",
                   resumed.stderr), resumed.stderr[-3000:]
  workdir, = workdirs
  assert checkpoint_steps(workdir)[-1] == 30
  jsonl, events = logged_steps(workdir)
  assert jsonl == events == list(range(1, 31)), (jsonl, events)

  trained = run_dir.build_model(Model, config.model_config)
  run_dir.restore(trained, os.path.join(workdir, "checkpoints", "ckpt-30"), weights_only=True)
  single = run_dir.build_model(Model, config.model_config)
  train_input = data_lib.TrainInput(config.train_data_config.dataset, 64, 4, seed=1)
  assert train_lib.train(single, str(tmp_path / "single"), train_input, 30, warm_start=start,
                         checkpoint_every=1000, eval_every=1000) == 0
  difference = max(float(np.max(np.abs(a.numpy() - b.numpy())))
                   for a, b in zip(single.trainable_variables, trained.trainable_variables))
  print(f"mirrored on 2 CPUs (signalled at step {saved.group(1)}, resumed) vs one device after "
        f"30 steps: max |weight difference| {difference:.3g}")
  assert difference < 1e-5


def test_stop_request_records_signals_and_restores_handlers():
  before = signal.getsignal(signal.SIGUSR1)
  with preemption.StopRequest() as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.requested and not stop.requeue and stop.exit_code() == 128 + signal.SIGTERM
    os.kill(os.getpid(), signal.SIGUSR1)  # Slurm's warning wins: requeue
    assert stop.requeue and stop.exit_code() == preemption.EXIT_REQUEUE
  with pytest.raises(KeyboardInterrupt):
    with preemption.StopRequest() as stop:
      os.kill(os.getpid(), signal.SIGINT)
      assert stop.exit_code() == 128 + signal.SIGINT
      os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C does not wait for the save
  assert signal.getsignal(signal.SIGUSR1) is before
