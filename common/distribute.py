"""The tf.distribute strategy a training run uses (train_eval_config.distribution).

- "one_device" (default, as the paper): TensorFlow's default strategy, one GPU or the CPU.
- "mirrored": MirroredStrategy over all GPUs of this machine (synchronous data parallelism:
  each replica takes an equal share of the global batch; gradients are all-reduced).
- "multi_worker": MultiWorkerMirroredStrategy over the tasks of a Slurm job step (one task per
  node, each using all GPUs of its node), found by SlurmClusterResolver. Task 0 is the chief:
  it alone writes the run dir (logs, metrics, checkpoints); the others only train.
"""
import os

import tensorflow as tf
from tensorflow.python.distribute.cluster_resolver import slurm_cluster_resolver

STRATEGIES = ("one_device", "mirrored", "multi_worker")
# Workers listen on PORT_BASE + (job id % PORT_SPAN) + their task index on the node, so jobs
# sharing a node do not collide.
PORT_BASE, PORT_SPAN = 20000, 20000


def make_strategy(name, global_batch_size):
  """The strategy named `name`; the global batch must split evenly over its replicas."""
  if name == "one_device":
    strategy = tf.distribute.get_strategy()
  elif name == "mirrored":
    strategy = tf.distribute.MirroredStrategy()
  elif name == "multi_worker":
    if "SLURM_STEP_NUM_TASKS" not in os.environ:
      raise ValueError("distribution=multi_worker runs under Slurm (srun, one task per node: "
                       "launch.py --nodes N).")
    port = PORT_BASE + int(os.environ.get("SLURM_JOB_ID", "0")) % PORT_SPAN
    resolver = SlurmResolver(port, len(tf.config.list_physical_devices("GPU")))
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
  else:
    raise ValueError(f"Unknown train_eval_config.distribution {name!r}; valid: {STRATEGIES}.")
  if global_batch_size % strategy.num_replicas_in_sync:
    raise ValueError(f"train_data_config.batchsize={global_batch_size} (the global batch) does "
                     f"not split evenly over {strategy.num_replicas_in_sync} replicas.")
  return strategy


def split_cpu(num_devices):
  """Splits the CPU into `num_devices` logical devices, over which "mirrored" then runs as many
  replicas: a machine without GPUs can test multi-replica training (and its resume).

  Must come before TensorFlow initialises its devices (before it runs anything).
  """
  cpu, = tf.config.list_physical_devices("CPU")
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
  except RuntimeError as e:
    raise RuntimeError(f"Cannot split the CPU into {num_devices} devices once TensorFlow has "
                       f"initialised them: {e}") from e


class SlurmResolver(tf.distribute.cluster_resolver.SlurmClusterResolver):
  """SlurmClusterResolver that also works on nodes without GPUs.

  TF 2.14's pairs each task with a slice of the node's GPUs, so with none it finds no tasks;
  here CPU-only tasks get a dummy slice each and report no accelerators.
  """

  def __init__(self, port_base, num_gpus):
    self._num_gpus = num_gpus
    if num_gpus:
      super().__init__(port_base=port_base, gpus_per_node=num_gpus)
    else:
      tasks_per_node = slurm_cluster_resolver.expand_tasks_per_node(
          os.environ["SLURM_STEP_TASKS_PER_NODE"])
      super().__init__(port_base=port_base, gpus_per_node=max(tasks_per_node),
                       gpus_per_task=1, auto_set_gpu=False)

  def num_accelerators(self, *args, **kwargs):
    return super().num_accelerators(*args, **kwargs) if self._num_gpus else {}


def worker(strategy):
  """(index of this worker, number of workers): (0, 1) but for multi-worker strategies."""
  resolver = strategy.cluster_resolver
  if resolver is None or not resolver.task_type:
    return 0, 1
  return resolver.task_id, resolver.cluster_spec().num_tasks(resolver.task_type)


def any_worker(strategy, flag):
  """Whether `flag` is true on any worker: every worker must call this (a collective), so all
  stop at the same step when one of them is told to."""
  if worker(strategy)[1] == 1:
    return flag
  votes = strategy.run(lambda: tf.constant(1 if flag else 0))
  return int(strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)) > 0
