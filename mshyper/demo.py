"""`make demo`: train small models, code a real photo to a file, and compare with JPEG/WebP.

  python -m mshyper.demo [--num_steps N] [--out demo_out] [--experiments_dir DIR]

Stages (each logs its progress; a rerun reuses finished work, so a second run takes seconds):
1. Train the 4-point sweep of mshyper/configs/demo.py (the quickstart model on the embedded
   training photos), one `python -m mshyper.train --hid i` process after the other, into
   EXPERIMENTS_DIR/demo-<N>steps/. A run already trained to N steps is reused; an interrupted
   one resumes from its last checkpoint.
2. Compress the held-out coffee photo with the middle-rate model to OUT/coffee.ntc and decompress
   that file to OUT/coffee_decoded.png (the code behind `python -m mshyper.codec`).
3. Evaluate every model on the held-out photos (embedded_eval) with real bitstreams
   -> OUT/results/embedded_eval/ (reused when the results match the model's checkpoint).
4. Run the JPEG 4:2:0 and WebP baselines on the same photos -> OUT/results/bench/.
5. Print one comparison table with BD-rates vs JPEG 4:2:0 and write OUT/summary.json and the
   R-D plot OUT/rd.png.
"""

import argparse
import os
import subprocess
import sys
import time

from absl import logging
import tensorflow as tf

import configs
from common import bdrate, bench, codec, config_utils, data_lib, eval_lib, experiment
from common import image_utils, metrics, plot_rd, results, train_lib
from mshyper.models import Model

CONFIG = os.path.join(configs.PROJECT_DIR, "mshyper", "configs", "demo.py")
TRAIN_MODULE = "mshyper.train"
DATASET = "embedded_eval"
CODEC_PHOTO = "coffee"
BASELINES = ("jpeg420", "webp")
ANCHOR = "jpeg420"
MODEL_LABEL = "ours: quickstart 2-layer syn."
NUM_STAGES = 5
NAME_WIDTH = 42


def stage(number, text, start):
  logging.info("=== [demo %d/%d, %.0f s] %s", number, NUM_STAGES, time.time() - start, text)


def checkpoint_step(workdir):
  """Step of the latest checkpoint in a run directory (0 if none)."""
  latest = tf.train.latest_checkpoint(train_lib.checkpoint_dir(workdir))
  return int(latest.rsplit("-", 1)[1]) if latest else 0


def sweep_workdirs(experiments_dir, xid):
  """[(workdir, overrides)] of the demo sweep, named like the training CLI names runs."""
  module = config_utils.load_config_module(CONFIG)
  runs = []
  for hid, overrides in enumerate(module.get_hyper()):
    config = config_utils.apply_overrides(module.get_config(), overrides)
    runs.append((os.path.join(experiments_dir, xid, f"wid={hid}-{module.get_cfg_str(config)}"),
                 overrides))
  return runs


def train_sweep(runs, num_steps):
  """Trains each run to num_steps in its own process (training prints its own progress)."""
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hides TF's start-up noise, keeps our logs
  for hid, (workdir, overrides) in enumerate(runs):
    what = f"[train {hid + 1}/{len(runs)}] {overrides}"
    step = checkpoint_step(workdir)
    if step >= num_steps:
      logging.info("%s: reusing %s (trained %d steps).", what, workdir, step)
      continue
    logging.info("%s: training %d steps%s -> %s", what, num_steps,
                 f", resuming at step {step}" if step else "", workdir)
    command = [sys.executable, "-m", TRAIN_MODULE, "--config", CONFIG, "--hid", str(hid),
               "--workdir", workdir, f"--config.train_eval_config.num_steps={num_steps}"]
    start = time.time()
    code = subprocess.run(command, cwd=configs.PROJECT_DIR, env=env, check=False).returncode
    if code != 0:
      raise RuntimeError(f"Training failed (exit code {code}): {' '.join(command)}")
    logging.info("%s: done in %.0f s.", what, time.time() - start)


def codec_round_trip(workdir, photo_path, out_dir):
  """Photo -> OUT/<name>.ntc -> OUT/<name>_decoded.png through real files; returns a summary."""
  name = os.path.splitext(os.path.basename(photo_path))[0]
  bitstream_path = os.path.join(out_dir, f"{name}.ntc")
  decoded_path = os.path.join(out_dir, f"{name}_decoded.png")
  image = image_utils.read_image(photo_path)
  coder = codec.load_codec(workdir, Model)
  with image_utils.atomic_path(bitstream_path) as tmp:
    with open(tmp, "wb") as f:
      f.write(coder.encode(image))
  with open(bitstream_path, "rb") as f:
    data = f.read()
  decoded = coder.decode(data)
  image_utils.write_png(decoded_path, decoded)
  summary = dict(photo=photo_path, workdir=workdir, bitstream=bitstream_path,
                 decoded=decoded_path, file_bytes=len(data),
                 bpp=8 * len(data) / (image.shape[0] * image.shape[1]),
                 psnr=metrics.psnr_rgb(image, decoded))
  logging.info("%s (%dx%d) -> %s: %d bytes, %.3f bpp -> %s: PSNR %.2f dB", photo_path,
               image.shape[1], image.shape[0], bitstream_path, len(data), summary["bpp"],
               decoded_path, summary["psnr"])
  logging.info("The same with the codec CLI:\n  python -m mshyper.codec compress --workdir %s %s "
               "%s\n  python -m mshyper.codec decompress --workdir %s %s %s", workdir,
               photo_path, bitstream_path, workdir, bitstream_path, decoded_path)
  return summary


def evaluate_sweep(runs, results_dir):
  """Real-bitstream evaluation of every run on DATASET; returns the sweep's R-D curve."""
  for i, (workdir, _) in enumerate(runs):
    per_image_path, aggregate_path = eval_lib.result_paths(results_dir, DATASET, workdir)
    step = checkpoint_step(workdir)
    if os.path.exists(per_image_path) and all(
        r["checkpoint_step"] == step for r in results.read_per_image(per_image_path)):
      logging.info("[eval %d/%d] reusing %s (checkpoint %d).", i + 1, len(runs), per_image_path,
                   step)
      continue
    logging.info("[eval %d/%d] %s", i + 1, len(runs), workdir)
    config, _ = experiment.load_run(workdir, Model)
    eval_lib.evaluate_workdir(codec.load_codec(workdir, Model), config, workdir, DATASET,
                              results_dir)
  eval_lib.write_aggregate(os.path.dirname(aggregate_path), aggregate_path)
  return results.load_curve(aggregate_path)


def _bd_cell(anchor, curve, metric):
  try:
    return bdrate.bd(anchor, curve, metric)
  except ValueError as e:  # too few monotone points, or no overlap with the anchor
    return dict(error=str(e))


def _percent(row):
  return f"{row['bd_rate_percent']:+.1f}%" if "bd_rate_percent" in row else "n/a"


def _number(value, fmt):
  return "-" if value is None else format(value, fmt)


def comparison_table(curves, param_names, anchor_key):
  """(text lines, BD rows): per curve and R-D point bpp, PSNR, MS-SSIM dB; BD-rates vs anchor.

  param_names: curve key -> the results field that names its points (quality, rd_lambda).
  """
  anchor = curves[anchor_key]
  header = (f"{'codec / model':{NAME_WIDTH}s} {'point':16s} {'bpp':>6s} {'PSNR':>6s} "
            f"{'MS-SSIM':>7s}  {'BD-rate vs ' + anchor['name']:>22s}")
  sub_header = (f"{'':{NAME_WIDTH}s} {'':16s} {'':>6s} {'[dB]':>6s} {'[dB]':>7s}  {'PSNR':>10s} "
                f"{'MS-SSIM':>11s}")
  lines = [header, sub_header, "-" * len(header)]
  bd_rows = {}
  for key, curve in curves.items():
    res = curve["results"]
    param = param_names[key]
    if key == anchor_key:
      bd_cells = "(anchor)"
    else:
      bd_rows[key] = {m: _bd_cell(anchor, curve, m) for m in bdrate.METRICS}
      bd_cells = (f"{_percent(bd_rows[key]['psnr-rgb']):>10s} "
                  f"{_percent(bd_rows[key]['ms-ssim-db']):>11s}")
    for i, bpp in enumerate(res["bpp"]):
      row = (f"{curve['name'] if i == 0 else '':{NAME_WIDTH}s} "
             f"{f'{param}={res[param][i]:g}':16s} {bpp:6.3f} "
             f"{_number(res['psnr-rgb'][i], '6.2f')} {_number(res['ms-ssim-db'][i], '7.2f')}  "
             f"{bd_cells if i == 0 else ''}")
      lines.append(row.rstrip())
  lines.append("")
  for key, row in bd_rows.items():
    for metric, cell in row.items():
      if "error" in cell:
        lines.append(f"BD {curves[key]['name']} ({metric}): n/a: {cell['error']}")
      else:
        low, high = cell["quality_overlap"]
        lines.append(f"BD {curves[key]['name']} ({metric}): over the shared range {low:.2f}-"
                     f"{high:.2f} dB ({100 * cell['quality_overlap_fraction']:.0f}% of the "
                     "joint range)")
  return lines, bd_rows


def run(num_steps, out_dir, experiments_dir):
  start = time.time()
  xid = f"demo-{num_steps}steps"
  results_dir = os.path.join(out_dir, "results")
  runs = sweep_workdirs(experiments_dir, xid)

  stage(1, f"training {len(runs)} models ({num_steps} steps each) on the embedded photos", start)
  train_sweep(runs, num_steps)

  stage(2, "compressing a held-out photo to a file and decoding it", start)
  photo = next((p for p in data_lib.list_images(DATASET)
                if os.path.splitext(os.path.basename(p))[0] == CODEC_PHOTO), None)
  if photo is None:
    raise FileNotFoundError(f"The held-out photo {CODEC_PHOTO!r} is not in {DATASET}.")
  round_trip = codec_round_trip(runs[len(runs) // 2][0], photo, out_dir)

  stage(3, f"evaluating the {len(runs)} models on {DATASET} with real bitstreams", start)
  model_curve = evaluate_sweep(runs, results_dir)
  model_curve["name"] = f"{MODEL_LABEL} ({num_steps} steps)"

  stage(4, f"classic codecs {', '.join(BASELINES)} on {DATASET}", start)
  bench_dir = os.path.join(results_dir, "bench")
  curves = bench.run(DATASET, [bench.CODECS[key] for key in BASELINES], bench_dir)
  curves["ours"] = model_curve
  param_names = {key: bench.CODECS[key].param_name for key in BASELINES}
  param_names["ours"] = "rd_lambda"

  stage(5, "comparison", start)
  lines, bd_rows = comparison_table(curves, param_names, ANCHOR)
  plot_path = os.path.join(out_dir, "rd.png")
  plot_rd.plot([(curve, key == ANCHOR) for key, curve in curves.items()], plot_path,
               title=f"{DATASET}: held-out photos, real files")
  elapsed = time.time() - start
  results.write_json(os.path.join(out_dir, "summary.json"), dict(
      dataset=DATASET, num_steps=num_steps, experiments=os.path.join(experiments_dir, xid),
      table=lines, bd_vs_anchor=bd_rows, curves=curves, codec_round_trip=round_trip,
      rd_plot=plot_path, elapsed_s=elapsed))
  print(f"\nHeld-out photos ({DATASET}); mean over images per R-D point; bpp of real files; "
        f"BD-rate: PCHIP, negative = fewer bits than {curves[ANCHOR]['name']} at equal quality.")
  print("\n".join(lines))
  print(f"'ours' trained {num_steps} steps on {len(data_lib.list_images('embedded_train'))} photos "
        "in minutes on a CPU; the paper's models train ~2M steps on COCO (published Kodak "
        "curves: anchors/).")
  print(f"\nR-D plot: {plot_path}\nCompressed photo: {round_trip['bitstream']} "
        f"({round_trip['bpp']:.3f} bpp) -> {round_trip['decoded']} ({round_trip['psnr']:.2f} dB)"
        f"\nSummary: {os.path.join(out_dir, 'summary.json')}\nDemo finished in "
        f"{elapsed / 60:.1f} min.")


def main(argv=None):
  default_steps = config_utils.load_config_module(CONFIG).get_config().train_eval_config.num_steps
  parser = argparse.ArgumentParser(prog="python -m mshyper.demo",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--num_steps", type=int, default=default_steps,
                      help=f"training steps per model (default {default_steps})")
  parser.add_argument("--out", default=os.path.join(configs.PROJECT_DIR, "demo_out"),
                      help="folder for the compressed photo, results, plot and summary")
  parser.add_argument("--experiments_dir", default=configs.EXPERIMENTS_DIR,
                      help="root of the training runs (the demo uses <root>/demo-<N>steps)")
  args = parser.parse_args(argv)
  if args.num_steps < 1:
    parser.error("--num_steps must be >= 1")
  logging.set_verbosity(logging.INFO)
  run(args.num_steps, os.path.abspath(args.out), os.path.abspath(args.experiments_dir))
  return 0


if __name__ == "__main__":
  sys.exit(main())
