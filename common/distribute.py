"""The tf.distribute strategy a training run uses (train_eval_config.distribution).

- "one_device" (default, as the paper): TensorFlow's default strategy, one GPU or the CPU.
- "mirrored": MirroredStrategy over all GPUs of this machine (synchronous data parallelism:
  each replica takes an equal share of the global batch; gradients are all-reduced).
"""
import tensorflow as tf

STRATEGIES = ("one_device", "mirrored")


def make_strategy(name, global_batch_size):
  """The strategy named `name`; the global batch must split evenly over its replicas."""
  if name == "one_device":
    strategy = tf.distribute.get_strategy()
  elif name == "mirrored":
    strategy = tf.distribute.MirroredStrategy()
  else:
    raise ValueError(f"Unknown train_eval_config.distribution {name!r}; valid: {STRATEGIES}.")
  if global_batch_size % strategy.num_replicas_in_sync:
    raise ValueError(f"train_data_config.batchsize={global_batch_size} (the global batch) does "
                     f"not split evenly over {strategy.num_replicas_in_sync} replicas.")
  return strategy
