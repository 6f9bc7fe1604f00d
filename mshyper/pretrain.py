"""The recipe of the bundled models (mshyper/configs/pretrained.py), run by the project's own
train/export/eval commands, at one training budget (`make pretrained`) or several (the budget
curve of `make pretrained-curve`).

  python -m mshyper.pretrain                       # the bundled models, as `make pretrained`
  python -m mshyper.pretrain --base_steps 1000,2000,4000 --out_dir experiments/pretrained-budget

For each budget B: a base run at the middle lambda for B steps, four fine-tunes (one per other
lambda) of B/10 steps warm-started from it, a weights-only float16 export of the five runs, and
their real-bitstream evaluation. Every stage whose output exists is skipped (training resumes
from its checkpoint), so an interrupted command continues where it stopped. With several
budgets, it also codes the datasets with JPEG 4:2:0 and writes `budget_curve.json` and
`budget_curve.png`: BD-rate vs JPEG 4:2:0 of each budget's family against its training time.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import time

import configs
from common import bdrate, cli, results
from mshyper.configs import pretrained

CONFIG = os.path.join("mshyper", "configs", "pretrained.py")
BUNDLED_DIR = os.path.join("pretrained", "mshyper_small")
BUNDLED_RESULTS_DIR = os.path.join("pretrained", "results")
BUNDLED_DATASETS = ("eval24", "embedded_eval")
ANCHOR_CODEC = "jpeg420"
TIMES_FILE = "times.json"


def _run(args):
  """Runs `python -m ARGS` in the project dir; returns its wall time in seconds."""
  command = [sys.executable, "-m", *args]
  print("+ " + " ".join(command), flush=True)
  start = time.monotonic()
  subprocess.run(command, cwd=configs.PROJECT_DIR, check=True)
  return time.monotonic() - start


def _one_run(pattern):
  found = glob.glob(pattern)
  if len(found) != 1:
    raise ValueError(f"Expected one run directory matching {pattern}, found {found}.")
  return found[0]


def train_family(base_steps, experiments_dir, models_dir):
  """Trains and exports one budget's five models into models_dir; returns stage wall times."""
  finetune_steps = pretrained.finetune_steps(base_steps)
  train = ["mshyper.train", "--config", CONFIG, "--experiments_dir", experiments_dir]
  times = {"base_steps": base_steps, "finetune_steps": finetune_steps,
           "finetunes": len(pretrained.FINETUNE_LAMBDAS)}
  base_xid = f"pretrained-{base_steps}-base"
  times["base_seconds"] = _run(train + ["--xid", base_xid,
                                        f"--config.train_eval_config.num_steps={base_steps}"])
  base_run = _one_run(os.path.join(experiments_dir, base_xid, "wid=none-*"))
  finetune_xid = f"pretrained-{base_steps}"
  times["finetune_seconds"] = sum(
      _run(train + ["--xid", finetune_xid, "--hid", str(hid), "--warm_start", base_run,
                    f"--config.train_eval_config.num_steps={finetune_steps}"])
      for hid in range(len(pretrained.FINETUNE_LAMBDAS)))
  finetune_runs = sorted(glob.glob(os.path.join(experiments_dir, finetune_xid, "wid=*")))
  staging = models_dir + ".partial"
  shutil.rmtree(staging, ignore_errors=True)
  _run(["common.export_run", "--float16", "--out_dir", staging, base_run, *finetune_runs])
  results.write_json(os.path.join(staging, TIMES_FILE), times)
  os.replace(staging, models_dir)
  return times


def evaluate_family(models_dir, datasets, results_dir):
  """Codes each dataset with the family's models (real files); returns the aggregate paths.

  Runs inside the project are named by their project-relative path in the result records.
  """
  runs = [os.path.relpath(run, configs.PROJECT_DIR) if _in_project(run) else run
          for run in sorted(glob.glob(os.path.join(models_dir, "wid=*")))]
  workdirs = [arg for run in runs for arg in ("--workdir", run)]
  aggregates = []
  for dataset in datasets:
    _run(["mshyper.eval", *workdirs, "--dataset", dataset, "--results_dir", results_dir,
          "--skip_existing"])
    folder = os.path.join(results_dir, dataset, os.path.basename(models_dir))
    for lock in glob.glob(os.path.join(folder, ".aggregate.lock")):
      os.remove(lock)
    aggregates.append(os.path.join(folder, "aggregate.json"))
  return aggregates


def _in_project(path):
  return os.path.commonpath([os.path.abspath(path), configs.PROJECT_DIR]) == configs.PROJECT_DIR


def anchor_curve(dataset, out_dir):
  """JPEG 4:2:0 on `dataset`, coded once into out_dir/bench-<dataset>/."""
  bench_dir = os.path.join(out_dir, f"bench-{dataset}")
  path = os.path.join(bench_dir, f"{ANCHOR_CODEC}.json")
  if not os.path.exists(path):
    _run(["common.bench", "--dataset", dataset, "--codecs", ANCHOR_CODEC, "--out_dir", bench_dir])
  return results.load_curve(path)


def budget_row(models_dir, aggregate, anchor):
  """One budget's point of the curve: steps, wall time and BD-rates vs the anchor."""
  times = results.read_json(os.path.join(models_dir, TIMES_FILE))
  anchor_like, curve = results.like_with_like([anchor, results.load_curve(aggregate)])
  row = dict(times)
  row["total_steps"] = times["base_steps"] + times["finetunes"] * times["finetune_steps"]
  row["training_minutes"] = (times["base_seconds"] + times["finetune_seconds"]) / 60
  for metric in bdrate.METRICS:
    # A family too poor to share 4 monotone points with the anchor is a result, not a failure.
    try:
      row[f"bd_rate_percent_{metric}"] = bdrate.bd(anchor_like, curve, metric)["bd_rate_percent"]
    except ValueError as e:
      row[f"bd_rate_percent_{metric}"] = None
      row[f"bd_rate_undefined_{metric}"] = str(e)
  row["rd_points"] = [dict(bpp=b, psnr=p) for b, p in
                      zip(curve["results"]["bpp"], curve["results"]["psnr-rgb"])]
  return row


def plot_curve(rows, path, dataset):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(6.4, 4.8))
  for metric, label in (("psnr-rgb", "PSNR"), ("ms-ssim-db", "MS-SSIM dB")):
    defined = [row for row in rows if row[f"bd_rate_percent_{metric}"] is not None]
    ax.plot([row["total_steps"] for row in defined],
            [row[f"bd_rate_percent_{metric}"] for row in defined], marker="o", label=label)
  for row in rows:
    if row["bd_rate_percent_psnr-rgb"] is None:
      continue
    ax.annotate(f"{row['training_minutes']:.0f} min", (row["total_steps"],
                                                        row["bd_rate_percent_psnr-rgb"]),
                textcoords="offset points", xytext=(4, 4), fontsize="small")
  ax.axhline(0, color="gray", linewidth=0.8)
  if any(row["bd_rate_percent_psnr-rgb"] is not None for row in rows):
    ax.set_xscale("log")
  ax.set_xlabel("training steps (base + fine-tunes, batch 8)")
  ax.set_ylabel(f"BD-rate vs JPEG 4:2:0 on {dataset} [%]")
  ax.grid(True, alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def bundled():
  """`make pretrained`: the bundled models and their documented results.

  The models are trained and exported under experiments/ first: the bundled ones are replaced
  only once the new ones exist, and their results only once every evaluation finished.
  """
  work_dir = os.path.join(configs.PROJECT_DIR, "experiments", "pretrained-bundled")
  staged_models = os.path.join(work_dir, "models", os.path.basename(BUNDLED_DIR))
  if not os.path.exists(staged_models):
    train_family(pretrained.BASE_STEPS, os.path.join(work_dir, "experiments"), staged_models)
  models_dir = os.path.join(configs.PROJECT_DIR, BUNDLED_DIR)
  shutil.rmtree(models_dir, ignore_errors=True)
  shutil.copytree(staged_models, models_dir)
  staged_results = os.path.join(work_dir, "results")
  shutil.rmtree(staged_results, ignore_errors=True)
  evaluate_family(models_dir, BUNDLED_DATASETS, staged_results)
  results_dir = os.path.join(configs.PROJECT_DIR, BUNDLED_RESULTS_DIR)
  shutil.rmtree(results_dir, ignore_errors=True)
  shutil.copytree(staged_results, results_dir)


def budget_curve(budgets, out_dir, dataset):
  """Trains, codes and compares one family per budget; writes budget_curve.{json,png}."""
  anchor = anchor_curve(dataset, out_dir)
  rows = []
  for base_steps in sorted(budgets):
    models_dir = os.path.join(out_dir, "models", f"budget{base_steps}")
    if not os.path.exists(models_dir):
      train_family(base_steps, os.path.join(out_dir, "experiments"), models_dir)
    aggregate, = evaluate_family(models_dir, (dataset,), os.path.join(out_dir, "results"))
    rows.append(budget_row(models_dir, aggregate, anchor))
    summary = dict(dataset=dataset, anchor=ANCHOR_CODEC, recipe=CONFIG, budgets=rows)
    results.write_json(os.path.join(out_dir, "budget_curve.json"), summary)
    plot_curve(rows, os.path.join(out_dir, "budget_curve.png"), dataset)
    bd_rates = ", ".join(
        f"{metric} " + ("n/a" if rows[-1][f"bd_rate_percent_{metric}"] is None
                        else f"{rows[-1][f'bd_rate_percent_{metric}']:+.1f}%")
        for metric in bdrate.METRICS)
    print(f"base {base_steps} steps: {rows[-1]['training_minutes']:.1f} min of training; "
          f"BD-rate vs JPEG 4:2:0: {bd_rates}", flush=True)


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m mshyper.pretrain",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--base_steps", default=None,
                      help="comma-separated base-run budgets of a budget curve (default: only "
                      "the bundled models' budget, written to pretrained/)")
  parser.add_argument("--out_dir", default=os.path.join("experiments", "pretrained-budget"),
                      help="folder of a budget curve's runs, models, results and plot")
  parser.add_argument("--dataset", default="eval24", help="dataset of the budget curve")
  args = parser.parse_args(argv)
  budgets = None
  if args.base_steps is not None:
    try:
      budgets = [int(text) for text in args.base_steps.split(",")]
    except ValueError:
      parser.error(f"--base_steps must be comma-separated integers, got {args.base_steps!r}")
    if any(steps < 10 for steps in budgets):
      parser.error("every --base_steps budget must be at least 10 (its fine-tunes take a tenth)")
  with cli.user_errors():
    try:
      if budgets is None:
        bundled()
      else:
        budget_curve(budgets, os.path.abspath(args.out_dir), args.dataset)
    except subprocess.CalledProcessError as e:
      cli.fail(f"{' '.join(e.cmd[2:])} failed with exit status {e.returncode} (its output is "
               f"above); rerun the same command to continue from there.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
