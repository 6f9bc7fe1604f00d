"""Stand-in entry point for the launcher tests: records what one task received, as JSON.

Sweep form (launch.py):      --config SNAPSHOT --hid N --out_dir D  ->  D/hid=N.json
Workdir form (launch_eval.py): --dataset X --workdir W [--workdir W2 ...] -> W/dummy_eval.json
The record holds the argv, the process id, the working directory, get_hyper()[N] of the config
the task was given, and the Slurm / thread environment variables the real entry points rely on.
"""
import argparse
import json
import os
import sys
from pathlib import Path

from common import config_utils

RECORDED_ENV = ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_ID", "SLURM_CPUS_PER_TASK",
                "TF_NUM_INTRAOP_THREADS")


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config")
  parser.add_argument("--hid", type=int)
  parser.add_argument("--out_dir")
  parser.add_argument("--dataset")
  parser.add_argument("--workdir", action="append")
  args = parser.parse_args()
  record = {"argv": sys.argv, "pid": os.getpid(), "cwd": os.getcwd(),
            "env": {k: os.environ.get(k) for k in RECORDED_ENV}}
  if args.workdir:
    record["dataset"] = args.dataset
    for workdir in args.workdir:
      (Path(workdir) / "dummy_eval.json").write_text(json.dumps(record))
  else:
    record["hyper"] = config_utils.load_config_module(args.config).get_hyper()[args.hid]
    (Path(args.out_dir) / f"hid={args.hid}.json").write_text(json.dumps(record))


if __name__ == "__main__":
  main()
