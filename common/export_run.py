"""Weights-only copies of training runs, e.g. for the bundled models in pretrained/.

  python -m common.export_run --out_dir pretrained/NAME [--float16] WORKDIR [WORKDIR ...]

Writes each run's latest checkpoint without optimizer state (and with --float16, stored in
half precision; loading casts it back to float32) to
OUT_DIR/wid=<i>-<run name>/checkpoints/ckpt-<step>, next to its config.json and a run record, so
the copy loads wherever a training run does (eval, codec, itinf warm start) and decodes files the
original wrote. Runs are numbered in rd_lambda order (wid 0 = lowest rate), so OUT_DIR is a
sweep's experiment dir: itinf's warm_start_wid and eval aggregates follow rate order.
"""
import argparse
import json
import os
import re
import shutil
import sys

from absl import logging

from common import cli, file_io, run_dir


def run_name(workdir):
  """The run's name without its sweep index ('wid=3-rd_lambda=0.01' -> 'rd_lambda=0.01')."""
  return re.sub(r"^wid=[^-]+-", "", os.path.basename(os.path.abspath(workdir)))


def export_run(workdir, out_workdir, wid, storage_dtype="float32"):
  """Weights-only copy of `workdir`'s latest checkpoint into `out_workdir`; returns its prefix."""
  with open(os.path.join(workdir, run_dir.RUN_RECORD)) as f:
    record = json.load(f)
  model_cls = run_dir.model_class(record["model"])
  _, model = run_dir.load_run(workdir, model_cls)
  prefix = run_dir.resolve_checkpoint(workdir)
  run_dir.restore(model, prefix, weights_only=True)
  if os.path.exists(out_workdir):
    raise FileExistsError(f"{out_workdir} exists; remove it to export again.")
  os.makedirs(out_workdir)
  shutil.copyfile(os.path.join(workdir, run_dir.CONFIG_FILE),
                  os.path.join(out_workdir, run_dir.CONFIG_FILE))
  step = run_dir.checkpoint_step(prefix)
  exported = dict(model=record["model"], model_identity=record["model_identity"], hid=wid,
                  exported_from=dict(run=os.path.basename(os.path.abspath(workdir)),
                                     checkpoint_step=step, arguments=record.get("argv", [])[1:]),
                  weights_storage_dtype=storage_dtype)
  file_io.write_text_atomic(os.path.join(out_workdir, run_dir.RUN_RECORD),
                            json.dumps(exported, indent=2))
  return run_dir.save_weights(model, run_dir.checkpoint_dir(out_workdir), step, storage_dtype)


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m common.export_run",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--out_dir", "--out", required=True,
                      help="experiment dir to write the runs into (--out: deprecated spelling)")
  parser.add_argument("--float16", action="store_true",
                      help="store the weights in float16 (half the size)")
  parser.add_argument("workdirs", nargs="+", help="training run directories")
  args = parser.parse_args(argv)
  cli.warn_deprecated(argv, {"--out": "--out_dir"})
  logging.set_verbosity(logging.INFO)

  def rd_lambda(workdir):
    with open(os.path.join(workdir, "config.json")) as f:
      return json.load(f)["model_config"]["rd_lambda"]

  with cli.user_errors():  # a workdir that is not a run, an unwritable --out_dir
    for wid, workdir in enumerate(sorted(args.workdirs, key=rd_lambda)):
      out_workdir = os.path.join(args.out_dir, f"wid={wid}-{run_name(workdir)}")
      logging.info("%s -> %s", workdir, export_run(
          workdir, out_workdir, wid, "float16" if args.float16 else "float32"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
