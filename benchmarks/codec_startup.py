"""Cold start of the codec CLI vs a bare `import tensorflow`, timed interleaved in fresh processes.

  python -m benchmarks.codec_startup --workdir RUN [--image PNG] [--rounds 5] [--package mshyper]

Compresses the image once (untimed; this also caches the range-coding tables next to the
checkpoint), then for each round starts, in fresh processes and alternating order, (a) a Python
that only imports TensorFlow and (b) `python -m PACKAGE.codec decompress --benchmark` of that
file. Reports medians and minimums of both, their difference (what the CLI costs on top of
TensorFlow's import) and the CLI's own split (imports, load, entropy decoding, h_s, g_s, write).
Default image: the first data/eval24 photo (768x512) if `make data` was run, else the embedded
coffee photo. Writes JSON (default results/benchmarks/codec_startup.json).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

import configs
from common import cli

DEFAULT_OUT = os.path.join(configs.RESULTS_DIR, "benchmarks", "codec_startup.json")


def _default_image():
  from common import data_lib
  try:
    return data_lib.list_images("eval24")[0]
  except ValueError:
    return data_lib.list_images("embedded_eval")[0]


def _timed(command, env):
  start = time.perf_counter()
  result = subprocess.run(command, cwd=configs.PROJECT_DIR, env=env, capture_output=True,
                          text=True)
  seconds = time.perf_counter() - start
  if result.returncode != 0:
    raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): "
                       f"{result.stderr[-2000:]}")
  return seconds, result.stdout


def run(args):
  from common import results
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  image = args.image or _default_image()
  with tempfile.TemporaryDirectory() as tmp:
    bitstream, decoded = os.path.join(tmp, "image.ntc"), os.path.join(tmp, "decoded.png")
    _timed([sys.executable, "-m", f"{args.package}.codec", "compress", "--workdir",
            args.workdir, image, bitstream], env)
    commands = {
        "import_tensorflow": [sys.executable, "-c", "import tensorflow"],
        "decompress": [sys.executable, "-m", f"{args.package}.codec", "decompress",
                       "--benchmark", "--workdir", args.workdir, bitstream, decoded],
    }
    seconds = {name: [] for name in commands}
    splits = []
    for round_index in range(args.rounds):
      order = list(commands) if round_index % 2 == 0 else list(commands)[::-1]
      for name in order:
        elapsed, stdout = _timed(commands[name], env)
        seconds[name].append(elapsed)
        if name == "decompress":
          line = next(l for l in stdout.splitlines() if l.startswith("benchmark:"))
          splits.append({k: float(v) for k, v in re.findall(r"(\S+)=([0-9.]+)s", line)})
  stats = {name: dict(median=float(np.median(v)), min=float(np.min(v)), all=v)
           for name, v in seconds.items()}
  overhead = [d - i for d, i in zip(seconds["decompress"], seconds["import_tensorflow"])]
  split = {k: float(np.median([s[k] for s in splits])) for k in splits[0]}
  report = dict(name="codec_startup", image=image, workdir=os.path.abspath(args.workdir),
                rounds=args.rounds, wall_s=stats,
                decompress_minus_import_s=dict(median=float(np.median(overhead)),
                                               min=float(np.min(overhead))),
                decompress_split_median_s=split, load_average_1min=os.getloadavg()[0])
  print(f"cold process wall time over {args.rounds} interleaved rounds, median (min):")
  for name, s in stats.items():
    print(f"  {name:18s} {s['median']:.2f} s ({s['min']:.2f} s)")
  print(f"  decompress - import tensorflow: {report['decompress_minus_import_s']['median']:.2f} s "
        f"({report['decompress_minus_import_s']['min']:.2f} s)")
  print("  decompress split (median): " + " ".join(f"{k}={v:.3f}s" for k, v in split.items()))
  results.write_json(args.out, report)
  print(f"wrote {args.out}")


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks.codec_startup",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="training run directory")
  parser.add_argument("--image", default=None, help="photo to compress (default: see above)")
  parser.add_argument("--package", default="mshyper", choices=("mshyper", "factorized"))
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args(argv)
  if args.rounds < 1:
    parser.error("--rounds must be >= 1")
  with cli.user_errors():  # a --workdir that is not a run, a missing --image
    run(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
