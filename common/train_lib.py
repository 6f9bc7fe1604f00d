"""Model-agnostic training loop: checkpoints (resume and warm start), metrics, validation.

The model must provide `train_step(batch) -> dict of scalars`, `evaluate(image) ->
(dict of scalars, uint8 reconstruction)`, `optimizer`, `global_step`, `trainable_variables`.
"""
import glob
import os
import shutil
import resource
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import logging

from common import authors_runs, distribute, preemption
from common.metric_writer import MetricWriter

CHECKPOINT_SUBDIR = "checkpoints"


class CheckpointMismatchError(ValueError):
  """A checkpoint that does not belong to the model being restored."""


def checkpoint_dir(workdir):
  """The checkpoint folder of a run of ours, or of an authors' run (train/checkpoints/)."""
  if authors_runs.is_authors_run(workdir):
    return os.path.join(workdir, authors_runs.CHECKPOINT_SUBDIR)
  return os.path.join(workdir, CHECKPOINT_SUBDIR)


def workdir_of_checkpoint(prefix):
  """The run directory holding a checkpoint prefix found by resolve_checkpoint."""
  folder = os.path.dirname(os.path.abspath(prefix))
  for subdir in (authors_runs.CHECKPOINT_SUBDIR, CHECKPOINT_SUBDIR):
    if folder.endswith(os.sep + subdir):
      return folder[:-len(os.sep + subdir)]
  return None


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
  """Restores model (and optimizer unless weights_only) from `prefix`; clear error on mismatch.

  A checkpoint of the authors' code restores its weights (and, unless weights_only, its step
  counter) but never its optimizer state: their legacy Adam slots have another layout.
  Weights stored in float16 (the bundled pretrained models) restore through a float32 copy.
  """
  if authors_runs.is_authors_checkpoint(prefix):
    try:
      authors_runs.restore_weights(model, prefix, restore_step=not weights_only)
    except authors_runs.AuthorsRunError as e:
      raise CheckpointMismatchError(str(e)) from e
    return
  if weights_only:
    target = tf.train.Checkpoint(model=_weights_view(model))
  else:
    model.optimizer.build(model.trainable_variables)  # So optimizer slots restore immediately.
    target = tf.train.Checkpoint(model=model)
  status = _restore_matched(target, prefix)
  if weights_only:
    status.expect_partial()


def restore_decoder(model, prefix):
  """Restores the decoder-side weights of checkpoint `prefix` (every module but
  model.ENCODER_MODULES and the optimizer) without reading the encoder's: what a decoder-only
  model (decoder_only=True) has. Clear error on mismatch, as `restore`."""
  if authors_runs.is_authors_checkpoint(prefix):
    try:
      authors_runs.restore_weights(model, prefix, restore_step=False,
                                   skip_modules=model.ENCODER_MODULES)
    except authors_runs.AuthorsRunError as e:
      raise CheckpointMismatchError(str(e)) from e
    return
  modules = {name: child for name, child in _weight_modules(model).items()
             if name not in model.ENCODER_MODULES}
  target = tf.train.Checkpoint(model=tf.train.Checkpoint(**modules))
  encoder = tuple(f"model/{name}/" for name in model.ENCODER_MODULES)
  _restore_matched(target, prefix, keep=lambda key: not key.startswith(encoder)).expect_partial()


def _restore_matched(target, prefix, keep=None):
  """target.restore(prefix), float16 weights cast to float32 on the way (only the keys that
  keep(key) accepts, if given); fails unless every object of target got its values."""
  with tempfile.TemporaryDirectory() as scratch:
    upcast = os.path.join(scratch, "ckpt")
    cast = _cast_checkpoint(prefix, upcast, tf.float16, tf.float32, keep)
    try:
      status = target.restore(upcast if cast else prefix)
      status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as e:
      raise CheckpointMismatchError(
          f"Checkpoint {prefix} does not match this model (was it written by another model or "
          f"transform config?): {str(e)[:500]}") from e
  return status


def _weight_modules(model):
  """{attribute: module} of the model's children minus its optimizer."""
  return {name: child for name, child in vars(model).items()
          if isinstance(child, tf.Module) and name != "optimizer" and not name.startswith("_")}


def _weights_view(model):
  """A trackable with the model's children minus its optimizer (for warm starts)."""
  return tf.train.Checkpoint(**_weight_modules(model))


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


def _cast_checkpoint(source, target, from_dtype, to_dtype, keep=None):
  """Rewrites checkpoint `source` as `target` with every from_dtype tensor cast to to_dtype
  (object graph and keys unchanged); returns False, writing nothing, if there is none.

  keep(key), if given, selects the tensors to write.
  """
  reader = tf.train.load_checkpoint(source)
  dtypes = reader.get_variable_to_dtype_map()
  if keep is not None:
    dtypes = {name: dtype for name, dtype in dtypes.items() if keep(name)}
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
  save_dir = (checkpoint_dir(workdir) if chief else
              os.path.join(workdir, f".worker-{worker_index}-checkpoints"))
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), save_dir,
                                       max_to_keep=max_checkpoints_to_keep)
  latest = tf.train.latest_checkpoint(checkpoint_dir(workdir))
  # In the strategy's scope: the optimizer slots that restoring creates must be mirrored like
  # the weights (slots made outside it are one variable that every replica updates in turn).
  with strategy.scope():
    if latest:
      restore(model, latest, weights_only=False)
      logging.info("Resumed from %s at step %d.", latest, int(model.global_step.numpy()))
    elif warm_start:
      restore(model, warm_start, weights_only=True)
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
