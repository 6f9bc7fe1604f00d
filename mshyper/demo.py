"""`make demo`: the bundled pretrained models against JPEG, WebP and HEVC on held-out photos,
with real files; then a short fine-tune that shows training.

  python -m mshyper.demo [--dataset eval24] [--finetune_steps N] [--train_dataset train]
                         [--out_dir demo_out] [--experiments_dir DIR]

Stages (each logs its progress; a rerun reuses finished work, so a second run takes seconds):
1. Compress one held-out photo with the middle-rate pretrained model to OUT_DIR/<photo>.ntc and
   decompress that file to OUT_DIR/<photo>_decoded.png (the code behind `python -m mshyper.codec`).
2. Code every held-out photo (--dataset) with each pretrained model (pretrained/mshyper_small,
   one per lambda) to real files OUT_DIR/bitstreams/<run>/<photo>.ntc, decode them and measure
   -> OUT_DIR/results/<dataset>/mshyper_small/.
3. Run JPEG 4:2:0, WebP and HEVC-intra (x265 preset fast) on the same photos
   -> OUT_DIR/results/bench/<dataset>/.
4. Print one comparison table with BD-rates vs JPEG 4:2:0; write the R-D plot OUT_DIR/rd.png.
5. Training, shown by a short fine-tune (mshyper/configs/demo.py): the lambda=0.04 model trained
   --finetune_steps more steps at lambda=0.08 with `python -m mshyper.train --warm_start`, into
   EXPERIMENTS_DIR/demo-finetune-<N>steps/, then coded like the others: one more, labelled, R-D
   point.
   OUT_DIR/summary.json gets everything; the plot is redrawn with the fine-tuned point.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

from absl import logging
import tensorflow as tf

import configs
from common import bdrate, bench, cli, config_utils, data_lib, eval_lib
from common import file_io, image_utils, metrics, plot_rd, results, run_dir
from mshyper.configs import pretrained
from mshyper.models import Model

PRETRAINED_DIR = os.path.join(configs.PROJECT_DIR, "pretrained", "mshyper_small")
FINETUNE_CONFIG = os.path.join(configs.PROJECT_DIR, "mshyper", "configs", "demo.py")
FINETUNE_FROM_LAMBDA = 0.04
TRAIN_MODULE = "mshyper.train"
BASELINES = ("jpeg420", "webp", "hevc444fast")
ANCHOR = "jpeg420"
MODEL_LABEL = (f"ours, pretrained ({pretrained.BASE_STEPS} + {pretrained.FINETUNE_STEPS} "
               "steps/lambda, CPU)")
NUM_STAGES = 5
NAME_WIDTH = 52


def stage(number, text, start):
  logging.info("=== [demo %d/%d, %.0f s] %s", number, NUM_STAGES, time.time() - start, text)


def checkpoint_step(workdir):
  """Step of the latest checkpoint in a run directory (0 if none)."""
  latest = tf.train.latest_checkpoint(run_dir.checkpoint_dir(workdir))
  return run_dir.checkpoint_step(latest) if latest else 0


def run_lambda(workdir):
  with open(os.path.join(workdir, "config.json")) as f:
    return json.load(f)["model_config"]["rd_lambda"]


def pretrained_runs():
  """The bundled run directories, in rate order (`make pretrained` numbers them so)."""
  runs = sorted(glob.glob(os.path.join(PRETRAINED_DIR, "wid=*")), key=run_lambda)
  if not runs:
    raise FileNotFoundError(f"No pretrained runs in {PRETRAINED_DIR} (a checkout of the "
                            "repository has them; `make pretrained` rebuilds them).")
  return runs


def codec_round_trip(workdir, photo_path, out_dir):
  """Photo -> OUT_DIR/<name>.ntc -> OUT_DIR/<name>_decoded.png through real files; returns a
  summary."""
  name = os.path.splitext(os.path.basename(photo_path))[0]
  bitstream_path = os.path.join(out_dir, f"{name}.ntc")
  decoded_path = os.path.join(out_dir, f"{name}_decoded.png")
  image = image_utils.read_image(photo_path)
  coder = run_dir.load_codec(workdir, Model)
  file_io.write_bytes_atomic(bitstream_path, coder.encode(image))
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


def evaluate_runs(workdirs, dataset, results_dir, bitstream_root):
  """Real-bitstream evaluation of each run on `dataset` (files kept under bitstream_root);
  returns the R-D curve of the runs' experiment dir, one point per run, in rate order."""
  for i, workdir in enumerate(workdirs):
    per_image_path, aggregate_path = eval_lib.result_paths(results_dir, dataset, workdir)
    step = checkpoint_step(workdir)
    if os.path.exists(per_image_path) and all(
        r["checkpoint_step"] == step for r in results.read_per_image(per_image_path)):
      logging.info("[eval %d/%d] reusing %s (checkpoint %d).", i + 1, len(workdirs),
                   per_image_path, step)
      continue
    logging.info("[eval %d/%d] %s", i + 1, len(workdirs), workdir)
    config, _ = run_dir.read_run_config(workdir, Model)
    eval_lib.evaluate_workdir(run_dir.load_codec(workdir, Model), config, workdir, dataset,
                              results_dir, bitstream_dir=os.path.join(
                                  bitstream_root, os.path.basename(workdir)))
  eval_lib.write_aggregate(os.path.dirname(aggregate_path), aggregate_path)
  return results.load_curve(aggregate_path)


def baseline_curves(dataset, bench_dir):
  """The classic codecs' curves on `dataset`, reusing the result file of a finished codec."""
  missing = [key for key in BASELINES if not os.path.exists(os.path.join(bench_dir,
                                                                         f"{key}.json"))]
  if missing:
    # Images in parallel: the demo shows rates and quality, not the codecs' timings.
    bench.run(dataset, [bench.CODECS[key] for key in missing], bench_dir, jobs=os.cpu_count())
  for key in BASELINES:
    if key not in missing:
      logging.info("[bench] reusing %s", os.path.join(bench_dir, f"{key}.json"))
  return {key: results.load_curve(os.path.join(bench_dir, f"{key}.json")) for key in BASELINES}


def finetune(warm_start, workdir, num_steps, train_dataset):
  """Trains the demo fine-tune in its own process (it prints its own progress); reuses a run
  already trained to num_steps and resumes an interrupted one."""
  step = checkpoint_step(workdir)
  if step >= num_steps:
    logging.info("[train] reusing %s (trained %d steps).", workdir, step)
    return
  command = [sys.executable, "-m", TRAIN_MODULE, "--config", FINETUNE_CONFIG,
             "--workdir", workdir, "--warm_start", warm_start,
             f"--config.train_eval_config.num_steps={num_steps}",
             f"--config.train_data_config.dataset={train_dataset}"]
  logging.info("[train] %s", " ".join(command[1:]))
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hides TF's start-up noise, keeps our logs
  start = time.time()
  code = subprocess.run(command, cwd=configs.PROJECT_DIR, env=env, check=False).returncode
  if code != 0:
    raise RuntimeError(f"Training failed (exit code {code}): {' '.join(command)}")
  logging.info("[train] done in %.0f s.", time.time() - start)


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
  Curves of fewer than 2 points get no BD-rate.
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
    elif len(res["bpp"]) < 2:
      bd_cells = ""
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


def run(dataset, finetune_steps, train_dataset, out_dir, experiments_dir):
  start = time.time()
  results_dir = os.path.join(out_dir, "results")
  runs = pretrained_runs()
  photos = data_lib.list_images(dataset)
  data_lib.list_images(train_dataset)  # fails now, with how to get them, rather than at stage 5

  stage(1, "compressing a held-out photo to a file and decoding it", start)
  round_trip = codec_round_trip(runs[len(runs) // 2], photos[0], out_dir)

  stage(2, f"coding the {len(photos)} {dataset} photos with the {len(runs)} pretrained models "
        "(real files)", start)
  bitstream_root = os.path.join(out_dir, "bitstreams")
  model_curve = evaluate_runs(runs, dataset, results_dir, bitstream_root)
  model_curve["name"] = MODEL_LABEL

  stage(3, f"classic codecs {', '.join(BASELINES)} on {dataset}", start)
  curves = baseline_curves(dataset, os.path.join(results_dir, "bench", dataset))
  curves["ours"] = model_curve
  param_names = {key: bench.CODECS[key].param_name for key in BASELINES}
  param_names["ours"] = "rd_lambda"

  stage(4, "comparison", start)
  plot_path = os.path.join(out_dir, "rd.png")
  title = f"{dataset}: {len(photos)} held-out photos, real files"
  plot_rd.plot([(curve, key == ANCHOR) for key, curve in curves.items()], plot_path, title=title)
  lines, bd_rows = comparison_table(curves, param_names, ANCHOR)
  print(f"\nHeld-out photos ({dataset}); mean over images per R-D point; bpp of real files; "
        f"BD-rate: PCHIP, negative = fewer bits than {curves[ANCHOR]['name']} at equal quality.")
  print("\n".join(lines))
  print(f"'ours' is the small model bundled in {os.path.relpath(PRETRAINED_DIR)}, trained on "
        "49 photos on 2 CPU cores (README: Pretrained models); the paper's models train ~2M "
        "steps on COCO on a GPU (published Kodak curves: anchors/).")

  finetune_from = next(w for w in runs if run_lambda(w) == FINETUNE_FROM_LAMBDA)
  finetune_config = config_utils.load_config_module(FINETUNE_CONFIG)
  finetune_lambda = finetune_config.get_config().model_config.rd_lambda
  stage(5, f"training, shown by a short fine-tune: the lambda={FINETUNE_FROM_LAMBDA:g} model, "
        f"{finetune_steps} steps at lambda={finetune_lambda:g} on {train_dataset}", start)
  # One run per experiment dir: the results aggregate (a curve) is per experiment dir.
  finetune_dir = os.path.join(experiments_dir, f"demo-finetune-{finetune_steps}steps",
                              f"from-rd_lambda={FINETUNE_FROM_LAMBDA:g}-to-rd_lambda="
                              f"{finetune_lambda:g}")
  finetune(finetune_from, finetune_dir, finetune_steps, train_dataset)
  finetuned_curve = evaluate_runs([finetune_dir], dataset, results_dir, bitstream_root)
  finetuned_curve["name"] = (f"demo fine-tune: lambda {FINETUNE_FROM_LAMBDA:g} -> "
                             f"{finetune_lambda:g}, {finetune_steps} steps")
  curves["finetune"] = finetuned_curve
  param_names["finetune"] = "rd_lambda"
  plot_rd.plot([(curve, key == ANCHOR) for key, curve in curves.items()], plot_path, title=title)
  point = finetuned_curve["results"]
  finetune_line = (f"{finetuned_curve['name']}: {point['bpp'][0]:.3f} bpp, "
                   f"{point['psnr-rgb'][0]:.2f} dB PSNR on {dataset} (one point; plotted, not "
                   "in the BD-rates)")
  print(f"\n{finetune_line}")

  elapsed = time.time() - start
  results.write_json(os.path.join(out_dir, "summary.json"), dict(
      dataset=dataset, pretrained_runs=runs, table=lines, bd_vs_anchor=bd_rows, curves=curves,
      codec_round_trip=round_trip, finetune=dict(workdir=finetune_dir, warm_start=finetune_from,
                                                 num_steps=finetune_steps,
                                                 train_dataset=train_dataset, line=finetune_line),
      rd_plot=plot_path, elapsed_s=elapsed))
  print(f"\nR-D plot: {plot_path}\nCompressed photo: {round_trip['bitstream']} "
        f"({round_trip['bpp']:.3f} bpp) -> {round_trip['decoded']} ({round_trip['psnr']:.2f} dB)"
        f"\nAll files: {bitstream_root}\nSummary: {os.path.join(out_dir, 'summary.json')}\n"
        f"Demo finished in {elapsed / 60:.1f} min.")


def main(argv=None):
  finetune_config = config_utils.load_config_module(FINETUNE_CONFIG).get_config()
  default_steps = finetune_config.train_eval_config.num_steps
  default_train = finetune_config.train_data_config.dataset
  parser = argparse.ArgumentParser(prog="python -m mshyper.demo",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", default="eval24",
                      help="held-out photos to code (dataset name or glob; default eval24)")
  parser.add_argument("--finetune_steps", type=int, default=default_steps,
                      help=f"steps of the fine-tune of stage 5 (default {default_steps})")
  parser.add_argument("--train_dataset", default=default_train,
                      help=f"photos the fine-tune trains on (default {default_train})")
  parser.add_argument("--out_dir", "--out", default=os.path.join(configs.PROJECT_DIR, "demo_out"),
                      help="folder for the compressed photos, results, plot and summary "
                      "(--out: deprecated spelling)")
  parser.add_argument("--experiments_dir", default=configs.EXPERIMENTS_DIR,
                      help="root of the fine-tune run (<root>/demo-finetune-<N>steps/)")
  args = parser.parse_args(argv)
  cli.warn_deprecated(argv, {"--out": "--out_dir"})
  if args.finetune_steps < 1:
    parser.error("--finetune_steps must be >= 1")
  logging.set_verbosity(logging.INFO)
  with cli.user_errors():  # an unknown --dataset, an unwritable --out_dir
    run(args.dataset, args.finetune_steps, args.train_dataset, os.path.abspath(args.out_dir),
        os.path.abspath(args.experiments_dir))
  return 0


if __name__ == "__main__":
  sys.exit(main())
