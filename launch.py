"""Launches a config's whole sweep (`get_hyper()`) as one Slurm array job, task i = `--hid i`.

  python launch.py --main mshyper.train --config mshyper/configs/two_layer_syn.py \
      [--args "--config.train_eval_config.num_steps=100000"] [--sargs "--qos=long"] \
      [--gres gpu:1 --time 2-00:00:00 ...] [--dry_run] [--local]
  python launch.py --resume slurm_jobs/<job id>     # resubmit the unfinished tasks

Tasks checkpoint and requeue themselves before the time limit (see slurm_template.py), and
resubmitting the same command continues the same runs: their experiment id (--xid, default
<family>-<config name>-<hash of the effective config>) does not depend on the Slurm job.

Each task runs `python -m MAIN --config SNAPSHOT --hid $SLURM_ARRAY_TASK_ID ARGS`, where SNAPSHOT
is a copy of the config taken now, so editing the config cannot change queued tasks. Works for
any entry point with that CLI (mshyper.train, mshyper.itinf, factorized.train, ...). Resources
and the job dir layout: see slurm_template.py.

An iterative-inference sweep (mshyper/configs/itinf.py: element N refines run wid=N of the
training experiment itinf_config.warm_start) gets one task per run of that experiment.
"""
import glob
import os
import shlex
from pathlib import Path

from absl import app
from absl import flags

import slurm_template
from common import cli, config_utils

flags.DEFINE_string("main", None, "Module each task runs with python -m, e.g. mshyper.train.")
flags.DEFINE_string("config", None,
                    "Config file with get_config(), get_hyper() and get_cfg_str(config).")
flags.DEFINE_integer("gpus_per_node", None, "GPUs of one node for each task (--gres=gpu:G); "
                     "G > 1 trains with MirroredStrategy over them "
                     "(train_eval_config.distribution=mirrored), the global batch unchanged.",
                     lower_bound=1)
flags.DEFINE_integer("nodes", 1, "Nodes per task: N > 1 trains each run on N nodes with "
                     "MultiWorkerMirroredStrategy (train_eval_config.distribution=multi_worker), "
                     "one process per node using its --gpus_per_node GPUs.", lower_bound=1)
flags.DEFINE_string("resume", None, "A job dir (or its slurm_jobs/<job id> link) to resubmit "
                    "the unfinished tasks of, instead of launching --main/--config.")

cli.define_debug_flag()
cli.list_in_help(("main", "config", "gpus_per_node", "nodes", "resume", *slurm_template.FLAG_NAMES))

FLAGS = flags.FLAGS
# The sweep key of iterative-inference configs: the run of the warm-start experiment to refine.
ITINF_WID_KEY = "itinf_config.warm_start_wid"


def load_sweep(config_path: Path) -> list[dict]:
  """The config's get_hyper() elements with their run names, each checked against get_config().

  Checking here makes a typo in an override key fail now instead of in every queued task.
  An iterative-inference sweep is cut to the runs of the experiment it refines (refine_runs).
  """
  module = config_utils.load_config_module(str(config_path))
  hypers = list(module.get_hyper())
  if not hypers or not all(isinstance(h, dict) for h in hypers):
    raise ValueError(f"{config_path}: get_hyper() must return a non-empty list of override "
                     f"dicts, got {hypers!r}.")
  sweep = []
  for hid, hyper in enumerate(hypers):
    config = config_utils.apply_overrides(module.get_config(), hyper,
                                          source=f"{config_path} get_hyper()[{hid}]")
    sweep.append({"hid": hid, "overrides": hyper, "run_name": module.get_cfg_str(config)})
  if "itinf_config" in module.get_config():
    sweep = refine_runs(sweep, itinf_warm_start(module.get_config()), config_path)
  return sweep


def itinf_warm_start(config) -> str:
  """itinf_config.warm_start as the tasks will see it: the config's, or --args' override."""
  warm_start = config.itinf_config.warm_start
  args = shlex.split(FLAGS.args)
  flag = "--config.itinf_config.warm_start"
  for i, arg in enumerate(args):
    if arg.startswith(flag + "="):
      warm_start = arg[len(flag) + 1:]
    elif arg == flag and i + 1 < len(args):
      warm_start = args[i + 1]
  return warm_start


def refine_runs(sweep: list[dict], warm_start: str, config_path: Path) -> list[dict]:
  """The elements of an itinf sweep that refine the runs of experiment `warm_start`, one each.

  The task count is the experiment's number of runs (a longer sweep would queue tasks that
  find no run); a sweep whose first elements do not name exactly those runs is refused.
  """
  if not warm_start:
    raise ValueError("itinf_config.warm_start is not set: give the training experiment dir to "
                     "refine, e.g. --args '--config.itinf_config.warm_start=experiments/<xid>'.")
  runs = sorted(os.path.basename(p) for p in glob.glob(os.path.join(warm_start, "wid=*"))
                if os.path.isdir(p))
  if not runs:
    if not (os.path.isdir(warm_start) or os.path.exists(warm_start + ".index")):
      raise FileNotFoundError(f"itinf_config.warm_start={warm_start!r}: no such run, experiment "
                              f"dir or checkpoint.")
    return sweep[:1]  # One run directory or checkpoint: one task.
  wids = sorted(run.split("-", 1)[0][len("wid="):] for run in runs)
  swept = sorted(str(element["overrides"].get(ITINF_WID_KEY)) for element in sweep[:len(runs)])
  if len(runs) > len(sweep) or wids != swept:
    raise ValueError(
        f"{warm_start} holds {len(runs)} run(s) ({', '.join(runs)}), but the first {len(runs)} "
        f"element(s) of {config_path}'s get_hyper() ({len(sweep)} in all) refine "
        f"{ITINF_WID_KEY}={', '.join(swept)}: the sweep needs one element per run, in its first "
        f"{len(runs)}.")
  return sweep[:len(runs)]


def distribution_args() -> list[str]:
  """The task's train_eval_config.distribution for --nodes/--gpus_per_node (none: the config's)."""
  if FLAGS.nodes > 1:
    return ["--config.train_eval_config.distribution=multi_worker"]
  if (FLAGS.gpus_per_node or 1) > 1:
    return ["--config.train_eval_config.distribution=mirrored"]
  return []


def main(argv):
  with cli.user_errors(FLAGS.debug):
    launch(argv)


def launch(argv):
  if len(argv) > 1:
    raise ValueError(f"Unexpected arguments {argv[1:]}; task arguments go in --args.")
  if FLAGS.resume:
    slurm_template.resume(Path(FLAGS.resume).resolve())
    return
  if not FLAGS.main or not FLAGS.config:
    raise ValueError("--main and --config are required (or --resume JOBDIR).")
  if FLAGS.gpus_per_node and FLAGS.gres:
    raise ValueError("Give --gpus_per_node or --gres, not both.")
  config_path = Path(FLAGS.config)
  sweep = load_sweep(config_path)
  job_name = FLAGS.job_name or slurm_template.default_job_name(FLAGS.main, config_path.stem)
  job_dir = slurm_template.new_job_dir(job_name, create=not FLAGS.dry_run)
  snapshot = job_dir / config_path.name
  slurm_template.launch_sweep(
      job_dir=job_dir,
      main=FLAGS.main,
      job_name=job_name,
      description=f"{FLAGS.main} sweep of {config_path} ({len(sweep)} hypers)",
      fixed_args=["--config", str(snapshot), *distribution_args()],
      task_flag="--hid",
      num_tasks=len(sweep),
      files={snapshot.name: config_path.read_bytes()},
      record={"config": str(config_path.resolve()), "sweep": sweep},
      requeue=True,
      gres=f"gpu:{FLAGS.gpus_per_node}" if FLAGS.gpus_per_node else None,
      nodes=FLAGS.nodes)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
