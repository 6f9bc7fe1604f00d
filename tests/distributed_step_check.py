"""Run as a script by tests/test_train.py (2 logical CPU devices must be set up before
TensorFlow initialises, hence a separate process): one training step with global batch 8 on
MirroredStrategy over 2 replicas vs the same step on one device, from the same weights.

Prints one JSON line per global_clipnorm in argv: the largest absolute differences of the
weights, the Adam moments and the loss. With clipping off (a huge clipnorm) the moments are
proportional to the gradients: Adam's weight update alone hardly changes with the gradient's
scale, so only the moments would show a wrongly scaled gradient. The latents are rounded
(method "ste"), as uniform noise would differ between one device and two replicas.
"""
import json
import os
import sys

import numpy as np
import tensorflow as tf

from common import config_utils, data_lib, distribute, run_dir, train_lib
from mshyper.models import Model

QUICKSTART = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "mshyper", "configs", "quickstart.py")


def build(strategy, clipnorm):
  config = config_utils.load_config_module(QUICKSTART).get_config()
  config_utils.apply_overrides(config, {
      "model_config.optimizer_config.global_clipnorm": clipnorm,
      "model_config.latent_config.method": "ste",
      "model_config.transform_config.analysis.channels_base": 16,
      "model_config.transform_config.analysis.output_channels": 32})
  with strategy.scope():
    return run_dir.build_model(Model, config.model_config)


def compare(clipnorm, batch, mirrored):
  single_strategy = tf.distribute.get_strategy()
  single, replicated = build(single_strategy, clipnorm), build(mirrored, clipnorm)
  for source, target in zip(single.trainable_variables, replicated.trainable_variables):
    target.assign(source)
  losses = []
  for model, strategy in ((single, single_strategy), (replicated, mirrored)):
    step = train_lib.make_train_step(model, strategy)
    images = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch))))
    losses.append(float(step(images)["loss"]))

  def max_difference(a, b):
    return max(float(np.max(np.abs(x.numpy() - y.numpy()))) for x, y in zip(a, b))

  print(json.dumps(dict(
      clipnorm=clipnorm, replicas=mirrored.num_replicas_in_sync,
      weights=max_difference(single.trainable_variables, replicated.trainable_variables),
      moments=max_difference(single.optimizer.variables, replicated.optimizer.variables),
      moment_scale=max(float(np.max(np.abs(v.numpy()))) for v in single.optimizer.variables
                       if v.shape.rank),
      loss=abs(losses[0] - losses[1]), loss_scale=abs(losses[0]),
      step=[int(single.global_step.numpy()), int(replicated.global_step.numpy())])))


def main():
  distribute.split_cpu(2)
  batch = next(iter(data_lib.train_dataset("embedded_train", 64, 8, seed=0)))
  mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  for clipnorm in sys.argv[1:]:
    compare(float(clipnorm), batch, mirrored)


if __name__ == "__main__":
  main()
