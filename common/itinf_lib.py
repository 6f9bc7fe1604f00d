"""Iterative inference: per-image optimization of a trained model's latents (not its weights).

Starting from the amortized latents (the encoder's), the latents are optimized for the R-D loss
under a relaxed quantization (SGA by default, Yang et al. 2020; unoise, ste or mixedq for
comparison), then hard-rounded and range-coded into a real file. Model-agnostic: it uses the
model's infer_latents (through the Codec), rd_terms and rd_lambda, and the Codec for the files.
"""
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from common import data_lib, eval_lib, file_io, image_utils, preemption, quantization, results
from common import schedule
from common.metric_writer import MetricWriter

# Per-image record fields repeated with an "amortized_" prefix: the numbers before itinf.
AMORTIZED_FIELDS = ("bpp_estimated", "bpp_actual", "file_bytes", "psnr", "msssim",
                    "msssim_db", "enc_time_s", "rd_loss")


class LatentOptimization:
  """The latents of one image as variables, with their own Adam optimizer and step counter.

  The step counter (optimizer.iterations) drives the learning-rate schedule and the SGA
  temperature; the model's training step and lambda warm-up play no part.
  """

  def __init__(self, model, x, latents, num_steps, latent_config, optimizer_config):
    self.method = quantization.check_latent_config(latent_config, what="itinf latent")
    self.tau_config = quantization.tau_schedule(latent_config)
    self.model, self.x = model, x
    self.latents = {name: tf.Variable(value, name=name) for name, value in latents.items()}
    # No gradient clipping unless the config sets it (the authors' itinf has none).
    self.optimizer, self.learning_rate = schedule.make_optimizer(optimizer_config, num_steps,
                                                                 global_clipnorm=None)
    # A fresh tf.function per image: its variables and optimizer slots have this image's shapes.
    self.step = tf.function(self._step)

  def _step(self):
    step = self.optimizer.iterations
    tau = (schedule.sga_temperature(step, **self.tau_config) if self.method == "sga" else None)
    variables = list(self.latents.values())
    with tf.GradientTape() as tape:
      loss, metrics, _ = self.model.rd_terms(self.x, self.latents, training=True,
                                             method=self.method, tau=tau,
                                             rd_lambda=self.model.rd_lambda)
    self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    metrics["learning_rate"] = self.learning_rate(step)
    if tau is not None:
      metrics["tau"] = tau
    return metrics

  def evaluate(self):
    """Metrics with the hard-rounded latents (what the file will code), as floats."""
    _, metrics, _ = self.model.rd_terms(self.x, self.latents, training=False)
    return {k: float(v) for k, v in metrics.items()}

  def final_latents(self):
    return {name: tf.convert_to_tensor(v) for name, v in self.latents.items()}


def result_paths(results_dir, dataset_label, train_workdir, method):
  """Like eval's, in '<training xid>+<method>/<run>+<method>.json' so curves stay apart."""
  per_image, _ = eval_lib.result_paths(results_dir, dataset_label, train_workdir)
  folder = os.path.dirname(per_image) + f"+{method}"
  run = os.path.splitext(os.path.basename(per_image))[0] + f"+{method}"
  return os.path.join(folder, run + ".json"), os.path.join(folder, "aggregate.json")


def _clock(seconds):
  return time.strftime("%H:%M:%S", time.gmtime(seconds)) if np.isfinite(seconds) else "?"


def optimize_image(coder, image, config, image_dir, progress_prefix, steps_after_this_image,
                   flops_cache, stop=None):
  """Amortized vs iteratively inferred coding of one uint8 image; returns its record.

  stop: a preemption.StopRequest; when it is requested, raises preemption.Stopped (the
  image's optimization is redone from scratch by the next run).
  """
  model = coder.model
  ic = config.itinf_config
  amortized, amortized_reconstruction, _ = eval_lib.evaluate_image(
      coder, image, ic.timing_repeats, flops_cache)
  writer = MetricWriter(image_dir, resume_step=-1)  # an interrupted earlier try starts over
  start = time.perf_counter()
  optimization = LatentOptimization(
      model, image_utils.to_model_input(image)[None], coder.latents(image), ic.num_steps,
      config.latent_config.to_dict(), config.optimizer_config.to_dict())
  seconds = time.perf_counter() - start  # Optimization time only (no logging or evaluation).
  initial = optimization.evaluate()
  amortized["rd_loss"] = initial["loss"]
  writer.write_scalars(0, initial, "val")
  first_step_seconds, last_time, last_step = None, time.time(), 0
  for step in range(1, ic.num_steps + 1):
    if stop is not None and stop.requested:
      writer.flush()
      raise preemption.Stopped(f"{progress_prefix}: {stop.signal.name} received at step {step}; "
                               "finished images are kept.", stop.exit_code())
    start = time.perf_counter()
    metrics = optimization.step()
    loss = float(metrics["loss"])  # Waits for the step to finish.
    seconds += time.perf_counter() - start
    if first_step_seconds is None:
      first_step_seconds = seconds  # Includes tracing the step function.
    if not np.isfinite(loss):
      raise FloatingPointError(f"{progress_prefix}: itinf loss is {loss} at step {step}.")
    if step % ic.log_metrics_every_steps == 0 or step == ic.num_steps:
      now = time.time()
      scalars = {k: float(v) for k, v in metrics.items()}
      scalars["steps_per_sec"] = rate = (step - last_step) / max(now - last_time, 1e-9)
      writer.write_scalars(step, scalars, "train")
      eta = (ic.num_steps - step + steps_after_this_image) / rate
      logging.info("%s step %d/%d | %.2f steps/s | ETA %s (image %s) | %s", progress_prefix,
                   step, ic.num_steps, rate, _clock(eta), _clock((ic.num_steps - step) / rate),
                   " ".join(f"{k}={scalars[k]:.4g}" for k in ("loss", "bpp", "psnr", "tau")
                            if k in scalars))
      last_time, last_step = time.time(), step
    if step % ic.eval_every_steps == 0 or step == ic.num_steps:
      writer.write_scalars(step, optimization.evaluate(), "val")
  final = optimization.evaluate()
  latents = optimization.final_latents()
  record, reconstruction, data = eval_lib.evaluate_image(coder, image, ic.timing_repeats,
                                                         flops_cache, latents=latents)
  coding_seconds = record["enc_time_s"]
  steps_per_sec = ((ic.num_steps - 1) / (seconds - first_step_seconds)
                   if ic.num_steps > 1 else float("nan"))
  record.update(
      rd_loss=final["loss"], enc_time_s=seconds + coding_seconds, itinf_time_s=seconds,
      coding_time_s=coding_seconds, itinf_steps_per_sec=steps_per_sec,
      **{f"amortized_{k}": amortized[k] for k in AMORTIZED_FIELDS})
  np.savez(os.path.join(image_dir, "latents.npz"), **{k: v.numpy() for k, v in latents.items()})
  file_io.write_bytes_atomic(os.path.join(image_dir, "bitstream.ntc"), data)
  writer.write_images(ic.num_steps, dict(original=image, amortized=amortized_reconstruction,
                                         optimized=reconstruction), "val")
  writer.flush()
  return record


def run(coder, config, workdir, train_workdir, results_dir):
  """Iterative inference on every image of config.data_config; returns the per-image path.

  Per image, <workdir>/images/<name>/ gets TensorBoard logs, metrics.jsonl, latents.npz (the
  optimized continuous latents), bitstream.ntc and record.json; a rerun skips images that have
  a record. Per-image results and the aggregate go under results_dir like eval's.
  """
  ic = config.itinf_config
  for key in ("num_steps", "log_metrics_every_steps", "eval_every_steps"):
    if ic[key] < 1:
      raise ValueError(f"itinf_config.{key} must be at least 1, got {ic[key]}.")
  coder.model.freeze_quantization_offsets()
  data = config.data_config
  method = config.latent_config.method
  label = data.dataset + (f"-crop{data.center_crop}" if data.center_crop else "")
  per_image_path, aggregate_path = result_paths(results_dir, label, train_workdir, method)
  examples = list(data_lib.eval_dataset(data.dataset, center_crop=data.center_crop)
                  .take(data.max_images or -1))
  hyper = dict(rd_lambda=coder.model.rd_lambda, workdir=train_workdir,
               run=os.path.basename(per_image_path)[:-len(".json")],
               checkpoint_step=coder.step, latent_method=method, itinf_workdir=workdir,
               itinf_num_steps=ic.num_steps,
               itinf_learning_rate=config.optimizer_config.learning_rate)
  records, flops_cache, start = [], {}, time.time()
  with preemption.StopRequest() as stop:
    for i, example in enumerate(examples):
      name = example["name"].numpy().decode()
      image_dir = os.path.join(workdir, "images", name)
      record_path = os.path.join(image_dir, "record.json")
      if os.path.exists(record_path):
        logging.info("[%d/%d] %s: done in an earlier run (%s).", i + 1, len(examples), name,
                     record_path)
        records.append(results.read_json(record_path))
        continue
      image = image_utils.from_model_output(example["image"][0]).numpy()
      record = optimize_image(coder, image, config, image_dir,
                              f"[{i + 1}/{len(examples)} {name}]",
                              (len(examples) - i - 1) * ic.num_steps, flops_cache, stop)
      record = dict(instance_id=name, **record, **hyper)
      results.write_json(record_path, record)
      records.append(record)
      logging.info("[%d/%d] %s: %.4f bpp, %.2f dB (amortized %.4f bpp, %.2f dB) | %s steps/s | "
                   "elapsed %s", i + 1, len(examples), name, record["bpp_actual"], record["psnr"],
                   record["amortized_bpp_actual"], record["amortized_psnr"],
                   f"{record['itinf_steps_per_sec']:.2f}", _clock(time.time() - start))
  results.write_per_image(per_image_path, records)
  eval_lib.write_aggregate(os.path.dirname(per_image_path), aggregate_path)
  logging.info("Per-image results: %s", per_image_path)
  return per_image_path

