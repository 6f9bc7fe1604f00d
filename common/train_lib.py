"""Model-agnostic training loop: checkpoints (resume and warm start), metrics, validation.

The model must provide `train_step(batch) -> dict of scalars`, `evaluate(image) ->
(dict of scalars, uint8 reconstruction)`, `optimizer`, `global_step`, `trainable_variables`.
"""
import os
import shutil
import resource
import time

import numpy as np
import tensorflow as tf
from absl import logging

from common import distribute, preemption, run_dir
from common.metric_writer import MetricWriter


def _progress_line(step, num_steps, rate, metrics):
  eta = (num_steps - step) / rate if rate > 0 else float("inf")
  eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if np.isfinite(eta) else "?"
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  shown = " ".join(f"{k}={metrics[k]:.4g}" for k in ("loss", "bpp", "psnr") if k in metrics)
  return (f"step {step}/{num_steps} | {rate:.2f} steps/s | ETA {eta_text} | {shown} | "
          f"peak RSS {peak_mib:.0f} MiB")


def evaluate_dataset(model, dataset, max_images=None):
  """Mean metrics over a dataset of {"image", "name"} and the first reconstruction."""
  records, first = [], None
  for i, example in enumerate(dataset):
    if max_images is not None and i >= max_images:
      break
    metrics, reconstruction = model.evaluate(example["image"])
    records.append(metrics)
    if first is None:
      first = (example["image"], reconstruction)
  keys = set.intersection(*(set(r) for r in records))
  return {k: float(np.mean([r[k] for r in records])) for k in sorted(keys)}, first


def describe_devices(strategy):
  """One line: the strategy, its replicas and the devices TensorFlow sees (logged at start)."""
  devices = ", ".join(d.name for d in tf.config.list_logical_devices())
  gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
          for gpu in tf.config.list_physical_devices("GPU")]
  return (f"Strategy {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s); "
          f"devices: {devices}; GPUs: {', '.join(gpus) or 'none'}.")


def make_train_step(model, strategy, jit_compile=False):
  """The compiled step: model.train_step on each replica's share of the global batch.

  Metrics are averaged over replicas. The model divides its loss by the number of replicas
  before the gradient and the optimizer sums the replicas' gradients (then clips their global
  norm), so a step on N replicas is the step on the whole batch on one device.
  """
  @tf.function(jit_compile=jit_compile)
  def step(images):
    metrics = strategy.run(model.train_step, args=(images,))
    return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in metrics.items()}
  return step


def train(model, workdir, train_input, num_steps, val_dataset=None, log_every=100,
          checkpoint_every=1000, eval_every=1000, max_checkpoints_to_keep=3, warm_start=None,
          max_eval_images=None, strategy=None, jit_compile=False):
  """Trains `model` until `num_steps`, resuming from `workdir` if it has a checkpoint.

  train_input: a data_lib.TrainInput (its batch size is the global batch). strategy: the
  tf.distribute strategy the model was built under (default: one device). SIGTERM, SIGINT and
  SIGUSR1 save a checkpoint and stop (see common/preemption.py).

  Returns:
    The exit code for the process: 0 when done, else preemption.StopRequest.exit_code().
  """
  strategy = strategy or tf.distribute.get_strategy()
  logging.info(describe_devices(strategy))
  worker_index, _ = distribute.worker(strategy)
  chief = worker_index == 0
  # Every worker takes part in saving (it may need collectives); only the chief's copy stays.
  save_dir = (run_dir.checkpoint_dir(workdir) if chief else
              os.path.join(workdir, f".worker-{worker_index}-checkpoints"))
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), save_dir,
                                       max_to_keep=max_checkpoints_to_keep)
  latest = tf.train.latest_checkpoint(run_dir.checkpoint_dir(workdir))
  # In the strategy's scope: the optimizer slots that restoring creates must be mirrored like
  # the weights (slots made outside it are one variable that every replica updates in turn).
  with strategy.scope():
    if latest:
      run_dir.restore(model, latest, weights_only=False)
      logging.info("Resumed from %s at step %d.", latest, int(model.global_step.numpy()))
    elif warm_start:
      run_dir.restore(model, warm_start, weights_only=True)
      logging.info("Warm-started weights from %s.", warm_start)

  step = int(model.global_step.numpy())
  # Steps after the checkpoint that an earlier process logged are redone now: drop their logs.
  writer = MetricWriter(workdir, resume_step=step) if chief else None

  def save(step):
    manager.save(checkpoint_number=step)
    if not chief:
      shutil.rmtree(save_dir, ignore_errors=True)
    logging.info("Saved checkpoint at step %d.", step)

  def validate(step):
    if val_dataset is None or not chief:
      return
    metrics, (image, reconstruction) = evaluate_dataset(model, val_dataset, max_eval_images)
    writer.write_scalars(step, metrics, "val")
    original = np.round((image.numpy()[0] + 0.5) * 255).clip(0, 255).astype(np.uint8)
    writer.write_images(step, dict(original=original, reconstruction=reconstruction[0]), "val")
    logging.info("Validation at step %d: %s", step,
                 " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

  if step >= num_steps:
    logging.info("Already trained for %d >= %d steps; nothing to do.", step, num_steps)
  train_step = make_train_step(model, strategy, jit_compile)
  global_batch = train_input.batch_size

  def input_fn(context):  # per worker: its share of every global batch, in per-replica batches
    return train_input.dataset(
        start_position=step * global_batch,
        batch_size=context.get_per_replica_batch_size(global_batch),
        shard=(context.input_pipeline_id, context.num_input_pipelines))

  batches = iter(strategy.distribute_datasets_from_function(input_fn))
  last_time, last_step = time.time(), step
  with preemption.StopRequest() as stop:
    try:
      while step < num_steps:
        batch = next(batches)
        train_input.check(np.sort(strategy.gather(batch["position"], axis=0).numpy()))
        metrics = train_step(batch["image"])
        step = int(model.global_step.numpy())
        if not np.isfinite(float(metrics["loss"])):
          raise FloatingPointError(f"Loss is {float(metrics['loss'])} at step {step}; last good "
                                   f"checkpoint: {manager.latest_checkpoint}.")
        if chief and (step % log_every == 0 or step == num_steps):
          now = time.time()
          scalars = {k: float(v) for k, v in metrics.items()}
          scalars["steps_per_sec"] = (step - last_step) / max(now - last_time, 1e-9)
          scalars["skipped_images"] = len(train_input.skipped)
          writer.write_scalars(step, scalars, "train")
          logging.info(_progress_line(step, num_steps, scalars["steps_per_sec"], scalars))
          last_time, last_step = now, step
        saved = step % checkpoint_every == 0 or step == num_steps
        if saved:
          save(step)
        if step % eval_every == 0 or step == num_steps:
          validate(step)
        # Checked last (a signal may arrive during validation), and agreed by all workers.
        if distribute.any_worker(strategy, stop.requested):
          if not saved:
            save(step)
          break
    finally:
      if writer:
        writer.flush()
  if step >= num_steps:
    return 0
  logging.warning("%s received: checkpoint saved at step %d, stopping%s.",
                  stop.signal.name if stop.signal else "Another worker's signal", step,
                  " (exit code asks for a requeue)" if stop.requeue else "")
  # A worker whose own signal has not come yet stops with its peers and asks for a requeue.
  return stop.exit_code() or preemption.EXIT_REQUEUE
