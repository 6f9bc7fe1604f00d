"""Where evaluation time goes per image, once warm, against the image's decode time.

  python -m benchmarks.eval_split --workdir RUN [--workdir RUN2 ...] [--dataset eval24]
      [--max_images 8] [--package mshyper] [--out FILE.json]

For each run: loads the codec as `eval` does, evaluates the first image once untimed (tracing
and FLOP profiling of its padded size), then evaluates the others with
`eval_lib.evaluate_image` and records the wall time of each of its steps (encode, estimate,
decode, metrics, flops) and of the whole call. Reports per run the medians over images and
the headline ratio: eval wall time per image / its decode time (`dec_time_s`, what evaluation
reports), and its parts besides the decode itself, each over the decode time: the encode
(which an evaluation must run: models whose encoder costs more than their decoder cannot
evaluate in 3x their decode) and all the rest (rate estimate, metrics, bookkeeping). Writes
JSON (default results/benchmarks/eval_split.json).
"""
import argparse
import importlib
import os
import sys
import time

import numpy as np

import configs

DEFAULT_OUT = os.path.join(configs.RESULTS_DIR, "benchmarks", "eval_split.json")


def measure(workdir, model_cls, images):
  from common import codec, eval_lib, run_dir
  coder = run_dir.load_codec(workdir, model_cls)
  eval_lib.evaluate_image(coder, images[0])
  rows = []
  for image in images[1:]:
    timer = codec.Timer()
    start = time.perf_counter()
    record, _, _ = eval_lib.evaluate_image(coder, image, warmup=0, timer=timer)
    total = time.perf_counter() - start
    rows.append(dict(total=total, dec_time_s=record["dec_time_s"], **timer.seconds))
  medians = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
  def median_ratio(numerator):
    return float(np.median([numerator(r) / r["dec_time_s"] for r in rows]))

  return dict(workdir=os.path.abspath(workdir), images=len(rows), median_s=medians,
              eval_over_decode=median_ratio(lambda r: r["total"]),
              encode_over_decode=median_ratio(lambda r: r["encode"]),
              rest_over_decode=median_ratio(lambda r: r["total"] - r["encode"] - r["decode"]),
              flops_per_pixel={k: v for k, v in record.items() if k.startswith("flops_")})


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_split",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", action="append", required=True, help="run directory")
  parser.add_argument("--dataset", default="eval24")
  parser.add_argument("--max_images", type=int, default=8)
  parser.add_argument("--package", default="mshyper", choices=("mshyper", "factorized"))
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args(argv)
  if args.max_images < 2:
    parser.error("--max_images must be at least 2 (the first image warms up)")
  from common import data_lib, image_utils, results
  model_cls = importlib.import_module(f"{args.package}.models").Model
  images = [image_utils.read_image(p)
            for p in data_lib.list_images(args.dataset)[:args.max_images]]
  report = dict(name="eval_split", dataset=args.dataset, load_average_1min=os.getloadavg()[0],
                runs=[measure(w, model_cls, images) for w in args.workdir])
  for run in report["runs"]:
    split = " ".join(f"{k}={v:.3f}s" for k, v in run["median_s"].items())
    print(f"{run['workdir']}: eval/decode {run['eval_over_decode']:.1f}x over {run['images']} "
          f"images (encode {run['encode_over_decode']:.1f}x, all but encode and decode "
          f"{run['rest_over_decode']:.2f}x); median {split}")
  results.write_json(args.out, report)
  print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
