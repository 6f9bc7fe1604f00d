"""Metric writer on tf.summary (TensorBoard) plus a JSON-lines file per run."""
import json
import math
import os

import numpy as np
import tensorflow as tf


class MetricWriter:
  """Writes scalars to TensorBoard and `<logdir>/metrics.jsonl`, images to TensorBoard."""

  def __init__(self, logdir):
    os.makedirs(logdir, exist_ok=True)
    self._summary = tf.summary.create_file_writer(logdir)
    self._jsonl_path = os.path.join(logdir, "metrics.jsonl")

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
