"""R-D plots (PNG) of any number of curves in our result formats.

  python -m common.plot_rd results/bench/*.json anchors/*.json --out rd.png

bpp on x; PSNR-RGB and MS-SSIM (dB) panels side by side when any curve has MS-SSIM,
otherwise (or with --metric) a single panel. Reference curves (files under anchors/, and
those passed with --anchor) are drawn dashed. `--rate` chooses which rate each curve plots
(default: like with like, see results.like_with_like); the legend says which.
"""

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only; must precede pyplot
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

from common import cli, file_io  # pylint: disable=wrong-import-position
from common import results  # pylint: disable=wrong-import-position

AXIS_LABELS = {"psnr-rgb": "PSNR-RGB [dB]", "ms-ssim-db": "MS-SSIM [dB]"}


def _is_anchor_file(path):
  return os.path.basename(os.path.dirname(os.path.abspath(path))) == "anchors"


def _points(curve, metric):
  res = curve["results"]
  pairs = sorted((b, v) for b, v in zip(res["bpp"], res.get(metric, [])) if v is not None)
  return [b for b, _ in pairs], [v for _, v in pairs]


def plot(curves, out, metrics=None, title=None):
  """Writes a PNG. curves: list of (curve dict, is_anchor); metrics: None = automatic."""
  if metrics is None:
    metrics = [m for m in AXIS_LABELS if any(_points(c, m)[0] for c, _ in curves)]
  if not metrics:
    raise ValueError("None of the curves has PSNR-RGB or MS-SSIM values to plot.")
  fig, axes = plt.subplots(1, len(metrics), figsize=(6.4 * len(metrics), 4.8), squeeze=False)
  for ax, metric in zip(axes[0], metrics):
    for index, (curve, is_anchor) in enumerate(curves):
      bpp, values = _points(curve, metric)
      if bpp:  # colour by curve index so a curve looks the same in both panels
        ax.plot(bpp, values, "--" if is_anchor else "-", marker="o", markersize=3,
                color=f"C{index % 10}",
                label=f"{curve['name']} ({results.rate_of(curve)} bpp)")
    ax.set_xlabel("bpp")
    ax.set_ylabel(AXIS_LABELS[metric])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  with file_io.atomic_path(out) as temporary:
    fig.savefig(temporary, dpi=120, format="png")
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m common.plot_rd",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("files", nargs="*", help="curves (any common.results format)")
  parser.add_argument("--anchor", action="append", default=[],
                      help="curve drawn dashed as a reference (repeatable)")
  parser.add_argument("--out", required=True, help="PNG file to write")
  parser.add_argument("--metric", choices=sorted(AXIS_LABELS), default=None,
                      help="single panel with this metric (default: every metric available)")
  parser.add_argument("--title", default=None)
  parser.add_argument("--rate", choices=("auto", *results.RATES), default="auto",
                      help="rate on the x axis: auto = estimated when a published (estimated) "
                      "curve is plotted and every curve has it, else each curve's own")
  parser.add_argument("--group_key", "--group-key", default=None,
                      help="for per-image lists: the record field that separates R-D points "
                      "(--group-key: deprecated spelling)")
  args = parser.parse_args(argv)
  cli.warn_deprecated(argv, {"--group-key": "--group_key"})
  files = [(path, _is_anchor_file(path)) for path in args.files]
  files += [(path, True) for path in args.anchor]
  if not files:
    parser.error("give at least one curve file")
  try:
    loaded = results.like_with_like([results.load_curve(path, args.group_key)
                                     for path, _ in files], args.rate)
    curves = [(curve, is_anchor) for curve, (_, is_anchor) in zip(loaded, files)]
    plot(curves, args.out, [args.metric] if args.metric else None, args.title)
  except (ValueError, FileNotFoundError) as e:
    cli.fail(cli.message(e))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  sys.exit(main())
