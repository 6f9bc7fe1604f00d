"""Command-line plumbing shared by the train/eval/itinf entry points of every model package.

Resolves `--config FILE [--hid N] [--config.a.b=v ...]` into a config (defaults < sweep element
N of get_hyper() < command-line overrides) and the run directory it names (--workdir, else
the default of common/run_dir.py, which owns the run directory's layout and contents).
"""
import logging as std_logging
import os

from absl import flags, logging
from ml_collections import config_flags

import configs
from common import config_utils, run_dir

FLAGS = flags.FLAGS
# The flags define_flags defines.
FLAG_NAMES = ("config", "hid", "experiments_dir", "xid", "workdir")


def define_flags(workdir_help="Run directory (default: derived from experiments_dir/xid/hid)"):
  config_flags.DEFINE_config_file("config", None, "Config file (.py with get_config); "
                                  "--config.a.b=value overrides any key of it.",
                                  lock_config=True)
  flags.DEFINE_integer("hid", None, "Index of the sweep element of get_hyper() to run.")
  flags.DEFINE_string("experiments_dir", configs.EXPERIMENTS_DIR, "Root of all runs.")
  flags.DEFINE_string("xid", None, "Experiment id (default: '<model family>-<config name>-"
                      "<hash of the effective config and sweep>', so that rerunning or "
                      "resubmitting the same command resumes its runs).")
  flags.DEFINE_string("workdir", None, workdir_help)
  flags.mark_flag_as_required("config")


def resolved_config():
  """(config, config module, config path) with the sweep element and CLI overrides applied."""
  path = config_flags.get_config_filename(FLAGS["config"])
  module = config_utils.load_config_module(path)
  config = FLAGS.config
  if FLAGS.hid is not None:
    hypers = module.get_hyper()
    if not 0 <= FLAGS.hid < len(hypers):
      raise ValueError(f"--hid={FLAGS.hid} out of range: {path} defines {len(hypers)} sweep "
                       f"elements (0..{len(hypers) - 1}).")
    config_utils.apply_overrides(config, hypers[FLAGS.hid], source=f"get_hyper()[{FLAGS.hid}]")
    # Command-line overrides win over the sweep element.
    config_utils.apply_overrides(config, config_flags.get_override_values(FLAGS["config"]),
                                 source="command line")
  return config, module, path


def check_train_config(config):
  """Refuses training settings that would train nothing or never log/save (e.g. num_steps=-5)."""
  positive = {f"train_eval_config.{key}": config.train_eval_config[key]
              for key in ("num_steps", "log_metrics_every_steps", "checkpoint_every_steps",
                          "eval_every_steps", "max_checkpoints_to_keep")}
  positive.update({f"train_data_config.{key}": config.train_data_config[key]
                   for key in ("batchsize", "patchsize")})
  for key, value in positive.items():
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"config.{key} must be a positive integer, got {value!r}.")


def run_workdir(config, module, config_path, family):
  """The run dir: --workdir, else EXPERIMENTS/<xid>/wid=<hid>-<run name>.

  `family` (the model package, e.g. 'mshyper') is part of the default xid, so two families
  trained from configs of the same name never share an experiment dir.
  """
  if FLAGS.workdir:
    return os.path.abspath(FLAGS.workdir)
  xid = FLAGS.xid
  if not xid:
    # The sweep's base config: get_config() + command-line overrides, without the sweep element.
    sweep_config = config_utils.apply_overrides(
        module.get_config(), config_flags.get_override_values(FLAGS["config"]),
        source="command line")
    xid = config_utils.experiment_id(family, config_path, sweep_config, module.get_hyper())
  return run_dir.default_workdir(FLAGS.experiments_dir, xid, FLAGS.hid,
                                 module.get_cfg_str(config))


def log_to_file(path):
  """Mirrors absl logging into `path` (appending, so resumed runs keep one log)."""
  handler = std_logging.FileHandler(path)
  handler.setFormatter(std_logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
  logging.get_absl_logger().addHandler(handler)
  logging.set_verbosity(logging.INFO)


