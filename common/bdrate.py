"""Bjøntegaard deltas (BD-rate, BD-PSNR) between R-D curves, via the `bjontegaard` package.

  python -m common.bdrate --anchor results/bench/hevc444.json --test anchors/*.json

BD-rate: mean relative rate difference of the test curve vs. the anchor at equal quality,
integrated over the quality interval both curves cover (negative = test saves bits).
BD-metric: mean quality difference in dB at equal rate over the shared log-rate interval.
Interpolation: PCHIP (default; equivalent to the JCT-VC CTC spreadsheet) or Akima, both
piecewise and free of the overshoot of the classic cubic fit. Both need >= 4 points per
curve; results over a small overlap are reported with the overlap so they can be judged.
"""

import argparse
import os
import sys
import warnings

from absl import logging
import bjontegaard
import numpy as np

from common import cli, results

METRICS = ("psnr-rgb", "ms-ssim-db")
METHODS = ("pchip", "akima")
MIN_POINTS = 4


def rd_points(curve, metric):
  """Sorted (bpp, quality) arrays of a CompressAI-format curve, dominated points removed.

  Points without a finite value are skipped. A point that costs more bits than another
  without better quality can never be chosen by an encoder and breaks the monotone
  interpolation, so it is dropped (and logged).
  """
  name = curve.get("name", "?")
  res = curve["results"]
  if metric not in res:
    raise ValueError(f"Curve '{name}' has no '{metric}' values (it has {sorted(res)}).")
  pairs = sorted((float(r), float(q)) for r, q in zip(res["bpp"], res[metric])
                 if r is not None and q is not None and np.isfinite(q) and r > 0)
  kept = []
  for rate, quality in pairs:
    if kept and quality <= kept[-1][1]:
      logging.info("Curve '%s': dropping dominated point %.4f bpp / %.3f (%s).",
                   name, rate, quality, metric)
      continue
    kept.append((rate, quality))
  if len(kept) < MIN_POINTS:
    raise ValueError(
        f"Curve '{name}' has {len(kept)} usable {metric} points; BD needs at least "
        f"{MIN_POINTS} (monotone, finite, bpp > 0).")
  rates, qualities = (np.array(v) for v in zip(*kept))
  return rates, qualities


def _overlap(a, b):
  low, high = max(a.min(), b.min()), min(a.max(), b.max())
  return (float(low), float(high)) if high > low else None


def bd(anchor, test, metric="psnr-rgb", method="pchip"):
  """BD-rate (%) and BD-metric (dB) of `test` vs. `anchor` (CompressAI-format dicts)."""
  if metric not in METRICS:
    raise ValueError(f"Unknown metric {metric!r}; choose one of {METRICS}.")
  if method not in METHODS:
    raise ValueError(f"Unknown method {method!r}; choose one of {METHODS}.")
  rate_a, q_a = rd_points(anchor, metric)
  rate_t, q_t = rd_points(test, metric)
  q_overlap = _overlap(q_a, q_t)
  log_overlap = _overlap(np.log10(rate_a), np.log10(rate_t))
  if q_overlap is None or log_overlap is None:
    raise ValueError(
        f"Curves do not overlap: '{anchor['name']}' spans {rate_a.min():.3f}-"
        f"{rate_a.max():.3f} bpp / {q_a.min():.2f}-{q_a.max():.2f} ({metric}), "
        f"'{test['name']}' spans {rate_t.min():.3f}-{rate_t.max():.3f} bpp / "
        f"{q_t.min():.2f}-{q_t.max():.2f}; BD values are undefined.")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the overlap is reported in the result instead
    bd_rate = bjontegaard.bd_rate(rate_a, q_a, rate_t, q_t, method=method,
                                  require_matching_points=False, min_overlap=0)
    bd_metric = bjontegaard.bd_psnr(rate_a, q_a, rate_t, q_t, method=method,
                                    require_matching_points=False, min_overlap=0)
  span = max(q_a.max(), q_t.max()) - min(q_a.min(), q_t.min())
  return {
      "anchor": anchor["name"], "test": test["name"], "metric": metric, "method": method,
      "anchor_rate": results.rate_of(anchor), "test_rate": results.rate_of(test),
      "bd_rate_percent": float(bd_rate), "bd_metric_db": float(bd_metric),
      "quality_overlap": list(q_overlap),
      "quality_overlap_fraction": (q_overlap[1] - q_overlap[0]) / span,
      "bpp_overlap": [10 ** log_overlap[0], 10 ** log_overlap[1]],
      "num_points": [len(rate_a), len(rate_t)],
      "bjontegaard_version": bjontegaard.__version__,
  }


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m common.bdrate",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--anchor", required=True, help="anchor curve (any common.results format)")
  parser.add_argument("--test", required=True, nargs="+", help="test curve(s)")
  parser.add_argument("--metric", choices=METRICS, default="psnr-rgb")
  parser.add_argument("--method", choices=METHODS, default="pchip")
  parser.add_argument("--group_key", "--group-key", default=None,
                      help="for per-image lists: the record field that separates R-D points "
                      "(--group-key: deprecated spelling)")
  parser.add_argument("--out", default=None, help="also write the table as JSON here")
  parser.add_argument("--rate", choices=("auto", *results.RATES), default="auto",
                      help="rate of every curve: auto = estimated when a curve only has that "
                      "(the published anchors) and every curve has it, else each curve's own")
  args = parser.parse_args(argv)
  cli.warn_deprecated(argv, {"--group-key": "--group_key"})
  try:
    anchor = results.load_curve(args.anchor, args.group_key)
  except (ValueError, FileNotFoundError) as e:
    cli.fail(cli.message(e))
  rows, failures, tests = [], [], []
  for path in args.test:
    # One unusable test curve must not hide the others' rows; the exit status reports it.
    try:
      tests.append((path, results.load_curve(path, args.group_key)))
    except (ValueError, FileNotFoundError) as e:
      failures.append(f"{path}: {e}")
      print(f"{os.path.basename(path)[:44]:44s} n/a: {e}")
  try:
    anchor, *curves = results.like_with_like([anchor] + [c for _, c in tests], args.rate)
  except ValueError as e:
    cli.fail(cli.message(e))
  print(f"anchor: {anchor['name']} ({args.anchor}, {results.rate_of(anchor)} bpp); metric "
        f"{args.metric}; {args.method}")
  print(f"{'test':44s} {'rate':>9s} {'BD-rate':>9s} {'BD-dB':>7s}  overlap ({args.metric})")
  for (path, _), curve in zip(tests, curves):
    try:
      row = bd(anchor, curve, args.metric, args.method)
    except ValueError as e:
      failures.append(f"{path}: {e}")
      print(f"{os.path.basename(path)[:44]:44s} n/a: {e}")
      continue
    rows.append(row)
    print(f"{row['test'][:44]:44s} {row['test_rate']:>9s} {row['bd_rate_percent']:+8.2f}% "
          f"{row['bd_metric_db']:+7.3f}  {row['quality_overlap'][0]:.2f}-"
          f"{row['quality_overlap'][1]:.2f} ({100 * row['quality_overlap_fraction']:.0f}%)")
  if args.out:
    results.write_json(args.out, rows)
  if failures:
    sys.exit(f"error: {len(failures)} of {len(args.test)} comparisons failed:\n" +
             "\n".join(failures))


if __name__ == "__main__":
  sys.exit(main())
