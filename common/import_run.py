"""`python -m common.import_run AUTHORS_RUN WORKDIR`: an authors' run directory as a run of ours.

Every entry point reads the authors' run directories directly (common/authors_runs.py); this
writes a normal run directory instead (config.json in our layout, run.json, checkpoints/ckpt-N
with the weights and step of their latest checkpoint), e.g. to fine-tune with resume or to keep
one layout. The Adam moments start at zero: their legacy-Adam slots are not carried over.
"""
import argparse
import json
import os
import sys

import tensorflow as tf

from common import authors_runs, cli, config_utils, file_io, run_dir


def import_run(authors_run, workdir):
  """Writes `workdir` from `authors_run`; returns the checkpoint prefix written."""
  if not authors_runs.is_authors_run(authors_run):
    raise ValueError(f"{authors_run} is not an authors' run directory (config.json + "
                     f"{authors_runs.CHECKPOINT_SUBDIR}/).")
  if os.path.exists(workdir) and os.listdir(workdir):
    raise ValueError(f"{workdir} exists and is not empty; give a new directory.")
  module = authors_runs.model_module(authors_run)
  config, model = run_dir.load_run(authors_run, run_dir.model_class(module))
  prefix = run_dir.resolve_checkpoint(authors_run)
  run_dir.restore(model, prefix, weights_only=False)  # Weights and step; no Adam moments.
  model.optimizer.build(model.trainable_variables)  # Zero moments, so the run can resume.
  os.makedirs(workdir, exist_ok=True)
  file_io.write_text_atomic(os.path.join(workdir, run_dir.CONFIG_FILE),
                            config_utils.config_to_json(config))
  file_io.write_text_atomic(
      os.path.join(workdir, run_dir.RUN_RECORD),
      json.dumps(dict(model=module, model_identity=config_utils.model_identity(config),
                      imported_from=os.path.abspath(prefix)), indent=2))
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                       run_dir.checkpoint_dir(workdir), max_to_keep=None)
  return manager.save(checkpoint_number=int(model.global_step))


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m common.import_run",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("authors_run", help="the authors' run directory")
  parser.add_argument("workdir", help="new run directory of ours to write")
  args = parser.parse_args(argv)
  with cli.user_errors():  # CheckpointMismatchError is a ValueError
    prefix = import_run(args.authors_run, args.workdir)
  print(f"wrote {args.workdir} (checkpoint {os.path.basename(prefix)})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
