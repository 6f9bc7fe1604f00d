"""Metric writer on tf.summary (TensorBoard) plus a JSON-lines file per run."""
import glob
import json
import math
import os

import numpy as np
import tensorflow as tf

METRICS_FILE = "metrics.jsonl"


class MetricWriter:
  """Writes scalars to TensorBoard and `<logdir>/metrics.jsonl`, images to TensorBoard.

  `resume_step`: the step a (resumed) run continues from. Records of later steps, written by an
  earlier process after its last checkpoint, are removed from metrics.jsonl and the TensorBoard
  event files first, so the steps the run redoes are not logged twice.
  """

  def __init__(self, logdir, resume_step=None):
    os.makedirs(logdir, exist_ok=True)
    self._jsonl_path = os.path.join(logdir, METRICS_FILE)
    if resume_step is not None:
      truncate_metrics(logdir, resume_step)
    self._summary = tf.summary.create_file_writer(logdir)

  def write_scalars(self, step, scalars, prefix):
    scalars = {f"{prefix}/{k}": float(v) for k, v in scalars.items()}
    with self._summary.as_default(step=int(step)):
      for name, value in scalars.items():
        tf.summary.scalar(name, value)
    record = {"step": int(step),
              **{k: (v if math.isfinite(v) else str(v)) for k, v in scalars.items()}}
    with open(self._jsonl_path, "a") as f:
      f.write(json.dumps(record) + "\n")

  def write_images(self, step, images, prefix):
    """images: name -> uint8 array (H, W, 3) or (N, H, W, 3)."""
    with self._summary.as_default(step=int(step)):
      for name, image in images.items():
        image = np.asarray(image)
        tf.summary.image(f"{prefix}/{name}", image[None] if image.ndim == 3 else image,
                         max_outputs=4)

  def flush(self):
    self._summary.flush()


def truncate_metrics(logdir, last_step):
  """Drops records of steps > last_step from metrics.jsonl and the event files in logdir.

  Each file is rewritten to a temporary file and renamed over the original, so an interruption
  leaves either the old or the new file. A torn last line or record (a process killed while
  writing) is dropped too.
  """
  jsonl_path = os.path.join(logdir, METRICS_FILE)
  if os.path.exists(jsonl_path):
    kept, dropped = [], False
    with open(jsonl_path) as f:
      for line in f:
        try:
          keep = json.loads(line)["step"] <= last_step
        except (ValueError, KeyError):
          keep = False
        if keep:
          kept.append(line if line.endswith("\n") else line + "\n")
        dropped |= not keep
    if dropped:
      def write(tmp):
        with open(tmp, "w") as f:
          f.writelines(kept)
      _replace(jsonl_path, write)
  for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
    _truncate_event_file(path, last_step)


def _truncate_event_file(path, last_step):
  kept, dropped = [], False
  try:
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      if event.step <= last_step:
        kept.append(record.numpy())
      else:
        dropped = True
  except tf.errors.DataLossError:  # a record torn by a kill
    dropped = True

  def write(tmp):
    with tf.io.TFRecordWriter(tmp) as writer:
      for record in kept:
        writer.write(record)

  if dropped:
    _replace(path, write)


def _replace(path, write):
  tmp = path + ".tmp"
  write(tmp)
  os.replace(tmp, path)
