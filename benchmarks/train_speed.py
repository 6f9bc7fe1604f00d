"""Training throughput of a config on this machine: steps/s (median of timed steps after warm-up
steps) and peak resident memory, on real photo crops.

  python -m benchmarks.train_speed --config mshyper/configs/two_layer_syn.py --batchsize 8 \
      --patchsize 256 --steps 5
"""
import argparse
import json
import os
import resource
import statistics
import time

from common import config_utils, data_lib, experiment
from factorized.models import Model as FactorizedModel
from mshyper.models import Model as HyperModel

MODELS = {"factorized": FactorizedModel, "mshyper": HyperModel}


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True)
  parser.add_argument("--batchsize", type=int, default=None, help="default: the config's")
  parser.add_argument("--patchsize", type=int, default=None, help="default: the config's")
  parser.add_argument("--steps", type=int, default=10, help="timed steps")
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing)")
  parser.add_argument("--dataset", default="embedded_train")
  parser.add_argument("--out", help="also write the result as JSON here")
  args = parser.parse_args()

  config = config_utils.load_config_module(args.config).get_config()
  data = config.train_data_config
  batchsize, patchsize = args.batchsize or data.batchsize, args.patchsize or data.patchsize
  package = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(args.config))))
  if package not in MODELS:
    raise SystemExit(f"{args.config} is not under factorized/configs or mshyper/configs.")
  model_cls = MODELS[package]
  model = experiment.build_model(model_cls, config.model_config)
  batches = iter(data_lib.train_dataset(args.dataset, patchsize, batchsize, seed=0))
  for _ in range(args.warmup):
    model.train_step(next(batches))["loss"].numpy()
  seconds = []
  for _ in range(args.steps):
    batch = next(batches)
    start = time.perf_counter()
    model.train_step(batch)["loss"].numpy()
    seconds.append(time.perf_counter() - start)
  result = dict(config=args.config, batchsize=batchsize, patchsize=patchsize,
                timed_steps=args.steps, median_step_s=statistics.median(seconds),
                steps_per_s=1 / statistics.median(seconds),
                peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
  print(json.dumps(result, indent=2))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(result, f, indent=2)


if __name__ == "__main__":
  main()
