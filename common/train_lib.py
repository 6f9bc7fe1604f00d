"""Model-agnostic training loop: checkpoints (resume and warm start), metrics, validation.

The model must provide `train_step(batch) -> dict of scalars`, `evaluate(image) ->
(dict of scalars, uint8 reconstruction)`, `optimizer`, `global_step`, `trainable_variables`.
"""
import glob
import os
import resource
import signal
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import logging

from common.metric_writer import MetricWriter

CHECKPOINT_SUBDIR = "checkpoints"


class CheckpointMismatchError(ValueError):
  """A checkpoint that does not belong to the model being restored."""


def checkpoint_dir(workdir):
  return os.path.join(workdir, CHECKPOINT_SUBDIR)


def resolve_checkpoint(spec, hid=None):
  """Checkpoint prefix from a checkpoint path, a workdir, or an experiment dir (+ wid = hid)."""
  if tf.io.gfile.exists(spec + ".index"):
    return spec
  for candidate in (spec, checkpoint_dir(spec)):
    if os.path.isdir(candidate):
      latest = tf.train.latest_checkpoint(candidate)
      if latest:
        return latest
  if hid is not None:
    matches = sorted(glob.glob(os.path.join(spec, f"wid={hid}-*")))
    if len(matches) == 1:
      return resolve_checkpoint(matches[0])
    if len(matches) > 1:
      raise ValueError(f"Warm start: several workdirs for wid={hid} in {spec}: {matches}.")
  raise FileNotFoundError(f"No checkpoint found at {spec!r} (tried a checkpoint prefix, a "
                          f"workdir with {CHECKPOINT_SUBDIR}/, and an experiment dir with "
                          f"wid={hid}-*).")


def restore(model, prefix, weights_only):
  """Restores model (and optimizer unless weights_only) from `prefix`; clear error on mismatch."""
  model.optimizer.build(model.trainable_variables)  # So optimizer slots restore immediately.
  target = (tf.train.Checkpoint(model=_weights_view(model)) if weights_only
            else tf.train.Checkpoint(model=model))
  with tempfile.TemporaryDirectory() as scratch:
    # Weights stored in float16 (save_weights) restore through a float32 copy.
    upcast = os.path.join(scratch, "ckpt")
    source = upcast if _cast_checkpoint(prefix, upcast, tf.float16, tf.float32) else prefix
    try:
      status = target.restore(source)
      status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as e:
      raise CheckpointMismatchError(
          f"Checkpoint {prefix} does not match this model (was it written by another model or "
          f"transform config?): {str(e)[:500]}") from e
  if weights_only:
    status.expect_partial()


def _weights_view(model):
  """A trackable with the model's children minus its optimizer (for warm starts)."""
  return tf.train.Checkpoint(**{name: child for name, child in vars(model).items()
                                if isinstance(child, tf.Module) and name != "optimizer"
                                and not name.startswith("_")})


def save_weights(model, directory, step, storage_dtype=tf.float32):
  """Writes the model's weights without optimizer state as `directory`/ckpt-<step> (+ the
  checkpoint state file), so a weights-only run directory restores like a training run.

  storage_dtype float16 halves the files; `restore` casts them back to float32 by itself.
  """
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=_weights_view(model)),
                                       directory, max_to_keep=1)
  prefix = manager.save(checkpoint_number=step)
  _cast_checkpoint(prefix, prefix, tf.float32, tf.as_dtype(storage_dtype))
  return prefix


def _cast_checkpoint(source, target, from_dtype, to_dtype):
  """Rewrites checkpoint `source` as `target` with every from_dtype tensor cast to to_dtype
  (object graph and keys unchanged); returns False, writing nothing, if there is none."""
  reader = tf.train.load_checkpoint(source)
  dtypes = reader.get_variable_to_dtype_map()
  if from_dtype == to_dtype or from_dtype not in dtypes.values():
    return False
  names = sorted(dtypes)
  tensors = [tf.cast(reader.get_tensor(name), to_dtype) if dtypes[name] == from_dtype
             else tf.constant(reader.get_tensor(name), dtypes[name]) for name in names]
  del reader
  tf.raw_ops.SaveV2(prefix=target, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=tensors)
  return True


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


def train(model, workdir, train_dataset, num_steps, val_dataset=None, log_every=100,
          checkpoint_every=1000, eval_every=1000, max_checkpoints_to_keep=3, warm_start=None,
          max_eval_images=None):
  """Trains `model` until `num_steps`, resuming from `workdir` if it has a checkpoint."""
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                       checkpoint_dir(workdir), max_to_keep=max_checkpoints_to_keep)
  if manager.latest_checkpoint:
    restore(model, manager.latest_checkpoint, weights_only=False)
    logging.info("Resumed from %s at step %d.", manager.latest_checkpoint,
                 int(model.global_step))
  elif warm_start:
    restore(model, warm_start, weights_only=True)
    logging.info("Warm-started weights from %s.", warm_start)

  writer = MetricWriter(workdir)
  stop_requested = []
  previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))

  def save(step):
    manager.save(checkpoint_number=step)
    logging.info("Saved checkpoint at step %d.", step)

  def validate(step):
    if val_dataset is None:
      return
    metrics, (image, reconstruction) = evaluate_dataset(model, val_dataset, max_eval_images)
    writer.write_scalars(step, metrics, "val")
    original = np.round((image.numpy()[0] + 0.5) * 255).clip(0, 255).astype(np.uint8)
    writer.write_images(step, dict(original=original, reconstruction=reconstruction[0]), "val")
    logging.info("Validation at step %d: %s", step,
                 " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

  step = int(model.global_step)
  if step >= num_steps:
    logging.info("Already trained for %d >= %d steps; nothing to do.", step, num_steps)
  iterator = iter(train_dataset)
  last_time, last_step = time.time(), step
  try:
    while step < num_steps:
      metrics = model.train_step(next(iterator))
      step = int(model.global_step)
      if not np.isfinite(float(metrics["loss"])):
        raise FloatingPointError(f"Loss is {float(metrics['loss'])} at step {step}; last good "
                                 f"checkpoint: {manager.latest_checkpoint}.")
      if step % log_every == 0 or step == num_steps:
        now = time.time()
        scalars = {k: float(v) for k, v in metrics.items()}
        scalars["steps_per_sec"] = (step - last_step) / max(now - last_time, 1e-9)
        writer.write_scalars(step, scalars, "train")
        logging.info(_progress_line(step, num_steps, scalars["steps_per_sec"], scalars))
        last_time, last_step = now, step
      if step % checkpoint_every == 0 or step == num_steps or stop_requested:
        save(step)
      if stop_requested:
        logging.warning("SIGTERM received: checkpoint saved at step %d, stopping.", step)
        return
      if step % eval_every == 0 or step == num_steps:
        validate(step)
  finally:
    signal.signal(signal.SIGTERM, previous_handler)
    writer.flush()
