"""Evaluates many training workdirs as one Slurm array job, task i = the i-th matching workdir.

  python launch_eval.py --workdirs 'experiments/1234/wid=*' --dataset kodak \
      [--main mshyper.eval] [--args "..."] [--sargs "..."] [--dry_run] [--local]

Each task runs `python -m MAIN --dataset D --workdir W_i ARGS`; MAIN defaults to the eval entry
point of the runs' model family, read from each run's record (run.json `model`). The sorted list of
matching workdirs is snapshot into the job dir now (task_values.txt); task i reads line i, so
workdirs created later do not shift the tasks. With --local, all workdirs are evaluated in ONE
process (`--workdir W_0 --workdir W_1 ...`). Resources and the job dir layout: see
slurm_template.py.
"""
import glob
from pathlib import Path

from absl import app
from absl import flags

import slurm_template
from common import cli, datasets

flags.DEFINE_string("workdirs", None, "Glob of training workdirs, e.g. 'experiments/1234/wid=*'.")
flags.DEFINE_string("dataset", None, "Dataset name known to configs.DATASETS, or a glob.")
flags.DEFINE_string("main", None, "Module each task runs with python -m (default: "
                    "<family>.eval, the family read from each run's run.json).")
flags.mark_flags_as_required(["workdirs", "dataset"])
cli.define_debug_flag()
cli.list_in_help(("workdirs", "dataset", "main", *slurm_template.FLAG_NAMES))

FLAGS = flags.FLAGS


def eval_module(workdirs):
  """The eval entry point of the runs' model family ('factorized.eval', ...): one per job."""
  from common import run_dir  # pylint: disable=import-outside-toplevel  # (TensorFlow)
  families = {}
  for workdir in workdirs:
    family = run_dir.model_module_of_run(workdir).split(".")[0]
    families.setdefault(family, []).append(workdir)
  if len(families) > 1:
    listing = "; ".join(f"{family}: {', '.join(dirs)}" for family, dirs in families.items())
    raise ValueError(f"--workdirs matches runs of several model families ({listing}); launch "
                     f"each family with its own --workdirs glob.")
  return f"{next(iter(families))}.eval"


def main(argv):
  with cli.user_errors(FLAGS.debug):
    launch(argv)


def launch(argv):
  if len(argv) > 1:
    raise ValueError(f"Unexpected arguments {argv[1:]}; task arguments go in --args.")
  workdirs = sorted(str(Path(p).resolve()) for p in glob.glob(FLAGS.workdirs) if Path(p).is_dir())
  if not workdirs:
    raise ValueError(f"No directories match --workdirs={FLAGS.workdirs!r}.")
  # Fail here rather than in every task (this also writes embedded datasets once, up front).
  dataset_files = glob.glob(datasets.dataset_glob(FLAGS.dataset))
  if not dataset_files:
    raise ValueError(f"Dataset {FLAGS.dataset!r} ({datasets.dataset_glob(FLAGS.dataset)}) "
                     "matches no files.")
  main_module = FLAGS.main or eval_module(workdirs)
  job_name = FLAGS.job_name or slurm_template.default_job_name(main_module, FLAGS.dataset)
  job_dir = slurm_template.new_job_dir(job_name, create=not FLAGS.dry_run)
  slurm_template.launch_sweep(
      job_dir=job_dir,
      main=main_module,
      job_name=job_name,
      description=(f"{main_module} of {len(workdirs)} workdirs ({FLAGS.workdirs}) on "
                   f"{FLAGS.dataset}"),
      fixed_args=["--dataset", FLAGS.dataset],
      task_flag="--workdir",
      num_tasks=len(workdirs),
      task_values=workdirs,
      files={},
      record={"workdirs_glob": FLAGS.workdirs, "dataset": FLAGS.dataset},
      local_one_process=True)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
