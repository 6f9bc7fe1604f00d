"""Start-up time of the result tools (BD-rate, R-D plot) vs a bare `import tensorflow`.

  python -m benchmarks.tool_startup [--rounds 7] [--out FILE]

The tools read JSON and plot, so they should start without TensorFlow. Each round starts, in
fresh processes and in turn, a Python that only imports TensorFlow (the baseline: what any
tool that pulls TF in pays at least) and each tool command; the first round is an untimed
warm-up (file cache). Reports medians and each command's ratio to the baseline's median.
Writes JSON (default results/benchmarks/tool_startup.json).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import configs
from benchmarks import reporting

DEFAULT_OUT = os.path.join(configs.RESULTS_DIR, "benchmarks", "tool_startup.json")
BASELINE = "import tensorflow"
COMMANDS = {
    BASELINE: ["-c", "import tensorflow"],
    "import common.bdrate": ["-c", "import common.bdrate"],
    "python -m common.bdrate --help": ["-m", "common.bdrate", "--help"],
    "python -m common.plot_rd --help": ["-m", "common.plot_rd", "--help"],
}


def measure(rounds):
  """{command: [seconds per timed round]} of every command, interleaved."""
  seconds = {name: [] for name in COMMANDS}
  for round_index in range(rounds + 1):
    for name, args in COMMANDS.items():
      start = time.perf_counter()
      subprocess.run([sys.executable, *args], cwd=configs.PROJECT_DIR, check=True,
                     capture_output=True)
      if round_index:  # round 0 warms the file cache
        seconds[name].append(time.perf_counter() - start)
  return seconds


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks.tool_startup",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--rounds", type=int, default=7, help="timed rounds (after one warm-up)")
  parser.add_argument("--out", default=DEFAULT_OUT, help="JSON file to write")
  args = parser.parse_args(argv)
  if args.rounds < 1:
    parser.error("--rounds must be at least 1")
  seconds = measure(args.rounds)
  medians = {name: statistics.median(s) for name, s in seconds.items()}
  rows = {name: dict(median_s=medians[name], min_s=min(s),
                     ratio_to_import_tensorflow=medians[name] / medians[BASELINE])
          for name, s in seconds.items()}
  summary = "\n".join(f"{name:34s} median {row['median_s']:.2f} s "
                      f"({row['ratio_to_import_tensorflow']:.2f}x import tensorflow)"
                      for name, row in rows.items())
  reporting.publish(dict(name="tool_startup", rounds=args.rounds, cpu_count=os.cpu_count(),
                         commands=rows), args.out, summary=summary)
  return 0


if __name__ == "__main__":
  sys.exit(main())
