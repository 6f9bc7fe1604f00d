"""Training step of the shallow syntheses in the plain form vs the fast inference form.

  python -m benchmarks.synthesis_forms [--rounds 10] [--batchsize 8] [--patchsize 256]

common/fast_conv.py computes the shallow syntheses' transposed convs as matmul + overlap-add or
sub-pixel convs outside training; in training (training=True) they stay TF's transposed convs.
This measures why: forward + backward (gradients w.r.t. the synthesis weights) of the JPEG-like
and 2-layer syntheses on a training batch of latents, both forms timed interleaved in the same
rounds (median and best), and checks that both give the same gradients. Prints a table and
writes JSON (default results/benchmarks/synthesis_forms.json).
"""
import argparse
import os
import sys
import time

import numpy as np
import tensorflow as tf

import configs
from benchmarks import reporting
from common import transforms

SYNTHESES = {
    "jpeg_like": ("JPEG-like syn.", dict(cls="JPEGLikeSynthesis")),
    "two_layer": ("2-layer syn.", dict(cls="TwoLayerResSynthesis", channels=(12, 3))),
}
LATENT_CHANNELS = 320
DEFAULT_OUT = os.path.join(configs.RESULTS_DIR, "benchmarks", "synthesis_forms.json")


def gradient_step(synthesis, training):
  """A traced forward + backward pass of `synthesis` (MSE to zeros) in the given form."""

  @tf.function
  def step(latents):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(synthesis(latents, training=training)))
    return tape.gradient(loss, synthesis.trainable_variables)

  return step


def run(args):
  side = args.patchsize // 16
  latents = tf.random.stateless_normal((args.batchsize, side, side, LATENT_CHANNELS), (1, 2))
  steps, rows = {}, {}
  for key, (label, config) in SYNTHESES.items():
    synthesis = transforms.build_transform(config)
    synthesis(latents[:1, :2, :2])
    steps[key] = {form: gradient_step(synthesis, training=form == "plain")
                  for form in ("plain", "fast")}
    plain, fast = (steps[key][form](latents) for form in ("plain", "fast"))
    error = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(plain, fast))
    scale = max(float(tf.reduce_max(tf.abs(a))) for a in plain)
    if error > 1e-4 * scale:
      raise RuntimeError(f"{label}: gradients of the two forms differ by {error} (max {scale}).")
    rows[key] = dict(label=label, gradient_max_abs_difference=error)
  seconds = {(key, form): [] for key in steps for form in ("plain", "fast")}
  items = list(seconds)
  for round_index in range(args.warmup + args.rounds):
    shift = round_index % len(items)
    for key, form in items[shift:] + items[:shift]:
      start = time.perf_counter()
      [g.numpy() for g in steps[key][form](latents)]
      if round_index >= args.warmup:
        seconds[(key, form)].append(time.perf_counter() - start)
  lines = [f"Training step (forward + backward) of the synthesis on {args.batchsize} x "
           f"{args.patchsize}x{args.patchsize} crops, {args.rounds} interleaved rounds, "
           f"{os.cpu_count()} cores: median (best) ms"]
  for key, row in rows.items():
    for form in ("plain", "fast"):
      row[f"{form}_s"] = float(np.median(seconds[(key, form)]))
      row[f"{form}_min_s"] = float(np.min(seconds[(key, form)]))
    row["fast_vs_plain"] = row["fast_s"] / row["plain_s"]
    lines.append(f"{row['label']:15s} plain {1e3 * row['plain_s']:.1f} "
                 f"({1e3 * row['plain_min_s']:.1f}), fast form {1e3 * row['fast_s']:.1f} "
                 f"({1e3 * row['fast_min_s']:.1f}) = {row['fast_vs_plain']:.2f}x plain")
  report = dict(name="synthesis_forms", batchsize=args.batchsize, patchsize=args.patchsize,
                rounds=args.rounds, warmup=args.warmup, cpu_count=os.cpu_count(),
                syntheses=rows, table=lines)
  reporting.publish(report, args.out, summary="\n".join(lines))


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks.synthesis_forms",
                                   description=__doc__.split("\n\n")[0])
  reporting.add_round_arguments(parser)
  parser.add_argument("--batchsize", type=int, default=8)
  parser.add_argument("--patchsize", type=int, default=256)
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args(argv)
  reporting.check_round_arguments(parser, args)
  if args.batchsize < 1 or args.patchsize % 16:
    parser.error("--batchsize must be >= 1 and --patchsize a multiple of 16")
  run(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
