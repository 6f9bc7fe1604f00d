"""Iterative inference: SGA lowers the R-D loss of a real photo, its file decodes bit-exact."""
import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from common import (codec, config_utils, image_utils, itinf_lib, preemption, results, run_dir,
                    schedule)
from common.config_defaults import make_itinf_config
from common.data_lib import list_images
from conftest import ENV, QUICKSTART_WID, QUICKSTART_XID, ROOT
from factorized.models import Model as FactorizedModel
from mshyper.models import Model as HyperModel

CROP = 128
# The paper's schedule (3000 steps) compressed 12x: same learning-rate drop point and final tau.
SHORT_SCHEDULE = {"itinf_config.num_steps": 250, "latent_config.tau_r": 6e-3,
                  "latent_config.tau_t0": 17}


def mse_from_psnr(psnr):
  return 255. ** 2 / 10 ** (psnr / 10)


def photo_crop(size):
  image = image_utils.read_image(list_images("embedded_eval")[0])
  top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
  return image[top:top + size, left:left + size]


@pytest.fixture(scope="module")
def trained(trained_quickstart):
  """(experiments dir, training workdir) of the quickstart hyperprior (experiment
  QUICKSTART_XID)."""
  return trained_quickstart("mshyper")


@pytest.fixture(scope="module")
def coder(trained):
  return run_dir.load_codec(trained[1], HyperModel)


# The SGA run of the tests below: one photo crop, the short schedule, logs every 50 steps.
SGA_OVERRIDES = {"data_config.center_crop": CROP, "data_config.max_images": 1,
                 "itinf_config.log_metrics_every_steps": 50, "itinf_config.eval_every_steps": 125,
                 **SHORT_SCHEDULE}


@pytest.fixture(scope="module")
def sga_run(trained, tmp_path_factory):
  """(per-image record, results dir) of `python -m mshyper.itinf` on the trained run."""
  experiments, _ = trained
  results_dir = str(tmp_path_factory.mktemp("sga") / "results")
  result = subprocess.run(
      [sys.executable, "-m", "mshyper.itinf", "--config",
       os.path.join(ROOT, "mshyper", "configs", "itinf.py"), "--hid", str(QUICKSTART_WID),
       "--experiments_dir", experiments, "--xid", "itinf", "--results_dir", results_dir,
       f"--config.itinf_config.warm_start={os.path.join(experiments, QUICKSTART_XID)}",
       *(f"--config.{k}={v}" for k, v in SGA_OVERRIDES.items())],
      cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return sga_record(trained[1], results_dir), results_dir


def sga_record(train_workdir, results_dir):
  run = os.path.basename(train_workdir)
  per_image = os.path.join(results_dir, f"embedded_eval-crop{CROP}", f"{QUICKSTART_XID}+sga",
                           f"{run}+sga.json")
  record, = results.read_per_image(per_image)
  return record


def sga_image_dir(record):
  return os.path.join(record["itinf_workdir"], "images", record["instance_id"])


@pytest.mark.slow
def test_sga_lowers_the_rd_loss_of_hard_rounded_latents(sga_run):
  record, _ = sga_run
  print(json.dumps({k: record[k] for k in (
      "rd_loss", "amortized_rd_loss", "bpp_actual", "amortized_bpp_actual", "psnr",
      "amortized_psnr", "itinf_steps_per_sec")}))
  # Evaluation mode (hard-rounded latents, estimated bits).
  assert record["rd_loss"] < 0.97 * record["amortized_rd_loss"]


@pytest.mark.slow
def test_sga_lowers_the_rd_loss_of_the_files(sga_run):
  record, _ = sga_run
  rd_lambda = record["rd_lambda"]
  actual = record["bpp_actual"] + rd_lambda * mse_from_psnr(record["psnr"])
  amortized = record["amortized_bpp_actual"] + rd_lambda * mse_from_psnr(record["amortized_psnr"])
  assert actual < amortized


@pytest.mark.slow
def test_sga_results_are_a_curve_of_their_own_in_evals_format(sga_run):
  record, results_dir = sga_run
  folder = os.path.join(results_dir, f"embedded_eval-crop{CROP}", f"{QUICKSTART_XID}+sga")
  aggregate = results.read_json(os.path.join(folder, "aggregate.json"))
  assert aggregate["name"] == f"{QUICKSTART_XID}+sga"
  assert aggregate["results"]["bpp"] == [record["bpp_actual"]]


@pytest.mark.slow
def test_sga_record_times_encoding_decoding_and_flops(sga_run):
  record, _ = sga_run
  assert record["enc_time_s"] > record["itinf_time_s"] > 0 and record["itinf_steps_per_sec"] > 0
  assert record["dec_time_g_s_s"] > 0 and record["flops_per_pixel_decode"] > 0


@pytest.mark.slow
def test_sga_logs_progress_tensorboard_and_rd_over_steps(sga_run):
  record, _ = sga_run
  assert "steps/s | ETA" in open(os.path.join(record["itinf_workdir"], "itinf.log")).read()
  image_dir = sga_image_dir(record)
  assert glob.glob(os.path.join(image_dir, "events.out.tfevents.*"))
  lines = [json.loads(line) for line in open(os.path.join(image_dir, "metrics.jsonl"))]
  assert [r["step"] for r in lines if "val/loss" in r] == [0, 125, 250]  # before, during, after
  assert any("train/tau" in r and "train/steps_per_sec" in r for r in lines)


@pytest.mark.slow
def test_sga_file_decodes_bit_exact_without_the_offset_heuristic(sga_run, trained, coder):
  """The file decodes to exactly the reconstruction of the hard-rounded optimized latents. It
  was coded without the offset heuristic (itinf's default, as the authors' itinf configs),
  which the decoder reads from the file's model identity."""
  record, _ = sga_run
  image_dir = sga_image_dir(record)
  with np.load(os.path.join(image_dir, "latents.npz")) as saved:
    latents = {name: tf.constant(saved[name]) for name in saved.files}
  with open(os.path.join(image_dir, "bitstream.ntc"), "rb") as f:
    data = f.read()
  assert 8 * len(data) / CROP ** 2 == record["bpp_actual"]
  with pytest.raises(codec.BitstreamError, match="another model"):
    coder.decode(data)
  itinf_coder = run_dir.load_codec_for_file(trained[1], HyperModel, data)
  assert coder.model.offset_heuristic and not itinf_coder.model.offset_heuristic
  x = image_utils.to_model_input(photo_crop(CROP))[None]
  _, metrics, x_hat = itinf_coder.model.rd_terms(x, latents, training=False)
  np.testing.assert_array_equal(itinf_coder.decode(data),
                                image_utils.from_model_output(x_hat)[0])
  assert float(metrics["loss"]) == pytest.approx(record["rd_loss"], rel=1e-5)


@pytest.mark.slow
def test_sga_rerun_reuses_the_finished_image(sga_run, trained):
  record, results_dir = sga_run
  image_dir = sga_image_dir(record)
  with open(os.path.join(image_dir, "bitstream.ntc"), "rb") as f:
    itinf_coder = run_dir.load_codec_for_file(trained[1], HyperModel, f.read())
  config = config_utils.apply_overrides(make_itinf_config(), SGA_OVERRIDES)
  stamp = os.path.getmtime(os.path.join(image_dir, "latents.npz"))
  rerun = itinf_lib.run(itinf_coder, config, record["itinf_workdir"], trained[1], results_dir)
  assert results.read_per_image(rerun) == [record]
  assert os.path.getmtime(os.path.join(image_dir, "latents.npz")) == stamp


@pytest.mark.slow
def test_signalled_itinf_keeps_finished_images_and_rerun_does_the_rest(trained, tmp_path):
  """SIGUSR1 (Slurm's time-limit warning) during the second image: itinf exits 75 (requeue)
  keeping the first image's results; the rerun (the requeued task) reuses them, optimizes the
  second image from its start and writes one record per image."""
  experiments, train_workdir = trained
  results_dir = tmp_path / "results"
  command = [sys.executable, "-m", "mshyper.itinf", "--config",
             os.path.join(ROOT, "mshyper", "configs", "itinf.py"), "--hid", "1",
             "--experiments_dir", experiments, "--xid", "itinf-requeue",
             "--results_dir", str(results_dir),
             f"--config.itinf_config.warm_start={os.path.join(experiments, 'train')}",
             "--config.data_config.center_crop=64", "--config.itinf_config.num_steps=300",
             "--config.itinf_config.log_metrics_every_steps=10",
             "--config.itinf_config.eval_every_steps=300"]
  process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
  images = os.path.join(experiments, "itinf-requeue", "wid=1-*", "images")

  def second_image_started():
    done = glob.glob(os.path.join(images, "*", "record.json"))
    started = [path for path in glob.glob(os.path.join(images, "*", "metrics.jsonl"))
               if "train/loss" in open(path).read()]
    return len(done) == 1 and len(started) == 2

  deadline = time.time() + 300
  while not second_image_started():
    assert process.poll() is None, f"itinf ended before the second image: {process.stderr.read()}"
    assert time.time() < deadline, "timed out waiting for itinf's second image"
    time.sleep(0.2)
  process.send_signal(signal.SIGUSR1)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == preemption.EXIT_REQUEUE, stderr[-3000:]
  assert re.search(r"\[2/2 \S+\]: SIGUSR1 received at step \d+; finished images are kept",
                   stderr), stderr[-3000:]
  first, = glob.glob(os.path.join(images, "*", "record.json"))
  first_name = os.path.basename(os.path.dirname(first))
  stamp = os.path.getmtime(first)

  rerun = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True,
                         timeout=600)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert f"[1/2] {first_name}: done in an earlier run" in rerun.stderr
  assert os.path.getmtime(first) == stamp
  per_image, _ = itinf_lib.result_paths(str(results_dir), "embedded_eval-crop64", train_workdir,
                                        "sga")
  records = results.read_per_image(per_image)
  assert [r["instance_id"] for r in records] == [first_name, records[1]["instance_id"]]
  assert records[1]["instance_id"] != first_name
  assert records[0] == results.read_json(first)
  # The second image started over: its interrupted try's metrics are gone, each step is once.
  second = os.path.join(os.path.dirname(os.path.dirname(first)), records[1]["instance_id"])
  lines = [json.loads(line) for line in open(os.path.join(second, "metrics.jsonl"))]
  assert [r["step"] for r in lines if "train/loss" in r] == list(range(10, 301, 10))
  assert [r["step"] for r in lines if "val/loss" in r] == [0, 300]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["unoise", "ste"])
def test_alternative_latent_methods_lower_rd_loss(coder, method):
  coder.model.freeze_quantization_offsets()
  image = photo_crop(64)
  config = make_itinf_config()
  optimization = itinf_lib.LatentOptimization(
      coder.model, image_utils.to_model_input(image)[None], coder.latents(image), 80,
      dict(config.latent_config.to_dict(), method=method), config.optimizer_config.to_dict())
  before = optimization.evaluate()["loss"]
  for _ in range(80):
    metrics = optimization.step()
  assert "tau" not in metrics
  assert optimization.evaluate()["loss"] < before


def test_schedule_and_sga_on_a_factorized_model():
  tf.random.set_seed(0)
  config = config_utils.load_config_module(
      os.path.join(ROOT, "factorized", "configs", "quickstart.py")).get_config()
  model = run_dir.build_model(FactorizedModel, config.model_config)
  model.freeze_quantization_offsets()
  image = photo_crop(64)
  x = image_utils.to_model_input(image)[None]
  itinf = make_itinf_config()
  optimization = itinf_lib.LatentOptimization(
      model, x, model.infer_latents(model.pad(x)), itinf.itinf_config.num_steps,
      itinf.latent_config.to_dict(), itinf.optimizer_config.to_dict())
  # The paper's SGA schedule: Adam lr 5e-3, no warm-up, 10x drop after 90% of 3000 steps.
  assert [float(optimization.learning_rate(s)) for s in (0, 2699, 2700)] == pytest.approx(
      [5e-3, 5e-3, 5e-4])
  before = optimization.evaluate()["loss"]
  taus = [float(optimization.step()["tau"]) for _ in range(30)]
  # The paper's temperature, t from 0 per image:
  # tau(t) = min(0.5, max(1e-8, 0.5 exp(-5e-4 (t - 200)))).
  assert taus == pytest.approx([0.5] * 30)
  assert float(schedule.sga_temperature(1200, **{
      k: v for k, v in itinf.latent_config.items() if k != "method"})) == pytest.approx(
          0.5 * math.exp(-0.5))
  assert optimization.evaluate()["loss"] < before
  assert int(model.global_step) == 0  # The model's own training step is untouched.


def test_bad_itinf_settings_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="warm_start is not set"):
    run_dir.resolve_warm_start("", 0)
  with pytest.raises(FileNotFoundError, match="No checkpoint found"):
    run_dir.resolve_warm_start(str(tmp_path / "nope"), 3)
  model = HyperModel(dict(analysis=dict(cls="CNNAnalysis", channels_base=8, output_channels=8),
                          synthesis=dict(cls="JPEGLikeSynthesis")))
  x = tf.zeros((1, 64, 64, 3))
  config = make_itinf_config()
  for latent_config, message in ((dict(method="fuzzy"), "Unknown itinf latent method 'fuzzy'"),
                                 (dict(method="sga", tau_rr=1.), r"\['tau_rr'\]")):
    with pytest.raises(ValueError, match=message):
      itinf_lib.LatentOptimization(model, x, model.infer_latents(x), 10, latent_config,
                                   config.optimizer_config.to_dict())
  config.itinf_config.eval_every_steps = 0
  with pytest.raises(ValueError, match="eval_every_steps must be at least 1"):
    itinf_lib.run(None, config, str(tmp_path), str(tmp_path / "train"), str(tmp_path))
  config.itinf_config.eval_every_steps = 500
  # A workdir keeps one itinf run: other settings there would mix up reused per-image results.
  run_dir.check_itinf_record(str(tmp_path), config, str(tmp_path / "train"), 100)
  run_dir.check_itinf_record(str(tmp_path), config, str(tmp_path / "train"), 100)
  config.optimizer_config.learning_rate = 1e-3
  with pytest.raises(ValueError, match="holds another itinf run"):
    run_dir.check_itinf_record(str(tmp_path), config, str(tmp_path / "train"), 100)
