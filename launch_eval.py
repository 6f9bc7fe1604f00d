"""Evaluates many training workdirs as one Slurm array job, task i = the i-th matching workdir.

  python launch_eval.py --workdirs 'experiments/1234/wid=*' --dataset kodak \
      [--main mshyper.eval] [--args "..."] [--sargs "..."] [--dry_run] [--local]

Each task runs `python -m MAIN --dataset D --workdir W_i ARGS`. The sorted list of matching
workdirs is snapshot into the job dir now (task_values.txt); task i reads line i, so workdirs
created later do not shift the tasks. With --local, all workdirs are evaluated in ONE process
(`--workdir W_0 --workdir W_1 ...`). Resources and the job dir layout: see slurm_template.py.
"""
import glob
from pathlib import Path

from absl import app
from absl import flags

import slurm_template
from common import datasets

flags.DEFINE_string("workdirs", None, "Glob of training workdirs, e.g. 'experiments/1234/wid=*'.")
flags.DEFINE_string("dataset", None, "Dataset name known to configs.DATASETS, or a glob.")
flags.DEFINE_string("main", "mshyper.eval", "Module each task runs with python -m.")
flags.mark_flags_as_required(["workdirs", "dataset"])

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments {argv[1:]}; task arguments go in --args.")
  workdirs = sorted(str(Path(p).resolve()) for p in glob.glob(FLAGS.workdirs) if Path(p).is_dir())
  if not workdirs:
    raise app.UsageError(f"No directories match --workdirs={FLAGS.workdirs!r}.")
  # Fail here rather than in every task (this also writes embedded datasets once, up front).
  try:
    dataset_files = glob.glob(datasets.dataset_glob(FLAGS.dataset))
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  if not dataset_files:
    raise app.UsageError(f"Dataset {FLAGS.dataset!r} ({datasets.dataset_glob(FLAGS.dataset)}) "
                         "matches no files.")
  job_name = FLAGS.job_name or slurm_template.default_job_name(FLAGS.main, FLAGS.dataset)
  job_dir = slurm_template.new_job_dir(job_name, create=not FLAGS.dry_run)
  slurm_template.launch_sweep(
      job_dir=job_dir,
      main=FLAGS.main,
      job_name=job_name,
      description=f"{FLAGS.main} of {len(workdirs)} workdirs ({FLAGS.workdirs}) on {FLAGS.dataset}",
      fixed_args=["--dataset", FLAGS.dataset],
      task_flag="--workdir",
      num_tasks=len(workdirs),
      task_values=workdirs,
      files={},
      record={"workdirs_glob": FLAGS.workdirs, "dataset": FLAGS.dataset},
      local_one_process=True)


if __name__ == "__main__":
  app.run(main)
