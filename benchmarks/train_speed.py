"""Training throughput of a config on this machine: steps/s of the compiled training step
(train_lib.make_train_step, what training runs), plain and with XLA (`jit_compile`), timed
round-robin in one run so that load on a shared machine hits both alike; medians after
untimed warm-up steps (tracing, compiling), their ratio, and peak resident memory.

  python -m benchmarks.train_speed --config mshyper/configs/two_layer_syn.py --batchsize 8 \\
      --patchsize 256 --steps 5 [--variants plain,xla] [--out result.json]
"""
import argparse
import resource
import statistics
import time

import tensorflow as tf

from benchmarks import reporting
from common import cli, config_utils, data_lib, run_dir, train_lib

VARIANTS = {"plain": False, "xla": True}  # name -> jit_compile


def measure(config_path, batchsize=None, patchsize=None, steps=10, warmup=2,
            variants=("plain",), dataset="embedded_train"):
  """The benchmark's result dict (see the module docstring)."""
  config = config_utils.load_config_module(config_path).get_config()
  data = config.train_data_config
  batchsize, patchsize = batchsize or data.batchsize, patchsize or data.patchsize
  strategy = tf.distribute.get_strategy()
  batches = iter(data_lib.train_dataset(dataset, patchsize, batchsize, seed=0))
  step_fns = {}
  for name in variants:
    model = run_dir.build_model(run_dir.model_class_of_config(config_path), config.model_config)
    step_fns[name] = train_lib.make_train_step(model, strategy, jit_compile=VARIANTS[name])
  seconds = {name: [] for name in variants}
  for i in range(warmup + steps):
    batch = next(batches)
    for name, step in step_fns.items():
      start = time.perf_counter()
      step(batch)["loss"].numpy()
      if i >= warmup:
        seconds[name].append(time.perf_counter() - start)
  result = dict(config=config_path, batchsize=batchsize, patchsize=patchsize, timed_steps=steps,
                devices=[d.name for d in tf.config.list_logical_devices()])
  for name in variants:
    median = statistics.median(seconds[name])
    result[name] = dict(median_step_s=median, min_step_s=min(seconds[name]),
                        steps_per_s=1 / median)
  if "plain" in variants and "xla" in variants:
    result["xla_over_plain_step_time"] = (result["xla"]["median_step_s"] /
                                          result["plain"]["median_step_s"])
  result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True)
  parser.add_argument("--batchsize", type=int, default=None, help="default: the config's")
  parser.add_argument("--patchsize", type=int, default=None, help="default: the config's")
  parser.add_argument("--steps", type=int, default=10, help="timed steps per variant")
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing, XLA)")
  parser.add_argument("--variants", default="plain",
                      help=f"comma-separated, of {sorted(VARIANTS)}")
  parser.add_argument("--dataset", default="embedded_train")
  parser.add_argument("--out", help="also write the result as JSON here")
  args = parser.parse_args()
  variants = args.variants.split(",")
  unknown = sorted(set(variants) - set(VARIANTS))
  if unknown:
    parser.error(f"unknown variants {unknown}; valid: {sorted(VARIANTS)}")
  with cli.user_errors():  # a missing --config, an unknown --dataset
    result = measure(args.config, args.batchsize, args.patchsize, args.steps, args.warmup,
                     variants, args.dataset)
  reporting.publish(result, args.out)


if __name__ == "__main__":
  main()
