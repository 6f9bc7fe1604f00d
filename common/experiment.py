"""Command-line plumbing shared by the train/eval/itinf entry points of every model package.

Resolves `--config FILE [--hid N] [--config.a.b=v ...]` into a config (defaults < sweep element
N of get_hyper() < command-line overrides) and a run directory
`EXPERIMENTS/<xid>/wid=<N>-<runname>/`, where config.json and a run record live.
"""
import inspect
import json
import logging as std_logging
import os
import shutil
import sys

from absl import flags, logging
from ml_collections import config_flags

import configs
from common import config_utils

FLAGS = flags.FLAGS
# The flags define_flags defines.
FLAG_NAMES = ("config", "hid", "experiments_dir", "xid", "workdir")
RUN_RECORD = "run.json"


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


def unknown_override(argv):
  """The error for the first `--config.a.b=v` of argv whose key the config file lacks, if any.

  (ml_collections reports it as a bare AttributeError while parsing the flags.)
  """
  paths = []
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      paths.append(arg.split("=", 1)[1])
    elif arg == "--config" and i + 1 < len(argv):
      paths.append(argv[i + 1])
  if not paths:
    return None
  try:
    config = config_utils.load_config_module(paths[-1]).get_config()
  except (OSError, ValueError):
    return None
  for arg in argv:
    if arg.startswith("--config.") and "=" in arg:
      try:
        config_utils.parent_of_key(config, arg[len("--config."):].split("=", 1)[0],
                                   source="command line")
      except KeyError as e:
        return e.args[0]
  return None


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
  wid = "none" if FLAGS.hid is None else FLAGS.hid
  return os.path.join(os.path.abspath(FLAGS.experiments_dir), xid,
                      f"wid={wid}-{module.get_cfg_str(config)}")


def prepare_workdir(workdir, config, config_path, model_module):
  """Creates the run dir, refuses one holding another model, writes config.json + run.json."""
  os.makedirs(workdir, exist_ok=True)
  identity = config_utils.model_identity(config)
  record_path = os.path.join(workdir, RUN_RECORD)
  if os.path.exists(record_path):
    with open(record_path) as f:
      previous = json.load(f)
    if previous.get("model_identity") != identity or previous.get("model") != model_module:
      raise ValueError(
          f"{workdir} holds a run of another model ({previous.get('model')}, identity "
          f"{previous.get('model_identity')}; this one: {model_module}, {identity}). Use "
          f"another --xid/--workdir, or delete that directory.")
  config_json = config_utils.config_to_json(config)
  config_path_in_run = os.path.join(workdir, "config.json")
  if os.path.exists(config_path_in_run):
    with open(config_path_in_run) as f:
      differences = config_utils.config_differences(json.load(f), json.loads(config_json))
    if differences:
      raise ValueError(
          f"{workdir} holds a run of another config; it differs in (stored -> this one):\n  " +
          "\n  ".join(differences) + "\nUse another --xid/--workdir to start a new run, or "
          "--warm_start from this one.")
  _write_text(config_path_in_run, config_json)
  shutil.copyfile(config_path, os.path.join(workdir, "config_snapshot.py"))
  record = dict(model=model_module, model_identity=identity, hid=FLAGS.hid,
                config_file=os.path.abspath(config_path), argv=sys.argv)
  _write_text(record_path, json.dumps(record, indent=2))
  return identity


def _write_text(path, text):
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def log_to_file(path):
  """Mirrors absl logging into `path` (appending, so resumed runs keep one log)."""
  handler = std_logging.FileHandler(path)
  handler.setFormatter(std_logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
  logging.get_absl_logger().addHandler(handler)
  logging.set_verbosity(logging.INFO)


def build_model(model_cls, model_config, stored=False):
  """model_cls(**model_config) with a clear error for keys the model does not take.

  stored=True: the config was read from a run's config.json; keys it lacks take the values
  runs had before those keys existed (model_cls.LEGACY_MODEL_CONFIG), not today's defaults.
  """
  kwargs = model_config.to_dict()
  if stored:
    kwargs = {**getattr(model_cls, "LEGACY_MODEL_CONFIG", {}), **kwargs}
  valid = [p for p in inspect.signature(model_cls.__init__).parameters if p != "self"]
  unknown = sorted(set(kwargs) - set(valid))
  if unknown:
    raise KeyError(f"model_config has key(s) {unknown} that {model_cls.__module__}.Model does "
                   f"not take; valid: {valid}.")
  return model_cls(**kwargs)


def recorded_model_module(workdir):
  """The model module (e.g. 'factorized.models') a run directory was trained with: its run
  record's `model`, or for an authors' run the family its config.json names."""
  record_path = os.path.join(workdir, RUN_RECORD)
  if os.path.exists(record_path):
    with open(record_path) as f:
      return json.load(f)["model"]
  from common import authors_runs  # Imports TensorFlow: only for a directory without a record.
  if authors_runs.is_authors_run(workdir):
    return authors_runs.model_module(workdir)
  raise FileNotFoundError(f"{workdir} has no {RUN_RECORD}, so it is not a run directory of a "
                          f"train entry point (e.g. python -m mshyper.train) nor an authors' run "
                          f"directory (config.json + train/checkpoints/).")


def read_run_config(workdir, model_cls):
  """(config, stored) of a run directory of ours or of the authors' code (see load_run).

  stored: whether missing model_config keys take their pre-key values (runs of ours).
  """
  import ml_collections
  from common import authors_runs
  if authors_runs.is_authors_run(workdir):
    return ml_collections.ConfigDict(authors_runs.read_config(workdir, model_cls.__module__)), False
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise FileNotFoundError(
        f"{workdir} is not a run directory: expected config.json with checkpoints/ (a run of "
        f"this project) or config.json with train/checkpoints/ (a run of the authors' code).")
  with open(config_path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  if "model_config" not in config:
    raise ValueError(f"{workdir}/config.json has no model_config: not a run directory of this "
                     f"project nor of the authors' code.")
  record_path = os.path.join(workdir, RUN_RECORD)
  if os.path.exists(record_path):
    with open(record_path) as f:
      model_module = json.load(f).get("model")
    if model_module and model_module != model_cls.__module__:
      raise ValueError(f"{workdir} holds a {model_module} run, not {model_cls.__module__}.")
  return config, True


def load_run(workdir, model_cls, offset_heuristic=None):
  """(config, model) of a finished or running workdir, built from its config.json.

  Also reads the authors' run directories (config.json + train/checkpoints/, see
  common/authors_runs.py); a directory of neither layout is an error that says so.
  offset_heuristic, if given, replaces the run's (iterative inference turns it off).
  """
  config, stored = read_run_config(workdir, model_cls)
  if offset_heuristic is not None:
    config.model_config.offset_heuristic = bool(offset_heuristic)
  return config, build_model(model_cls, config.model_config, stored=stored)
