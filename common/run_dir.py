"""The run directory: its layout, preparing (or refusing) it, its checkpoints, loading a run.

The single owner of a run directory (a "workdir" in flags and variables; the module is not
called workdir so that it does not clash with them), used by train, eval, itinf, the codec, the
notebooks and export_run/import_run. A run of ours (training or iterative inference) is

  EXPERIMENTS_DIR/<xid>/wid=<hid>-<run name>/     (default_workdir; --workdir overrides it)
    config.json           the resolved config (written atomically)
    config_snapshot.py    a copy of the config file it came from
    run.json              training: model module, model identity, hid, config file, argv
    itinf_run.json        iterative inference: what determines its per-image results
    checkpoints/ckpt-N.*  training checkpoints (tf.train.CheckpointManager)

A run of the authors' code (config.json + train/checkpoints/, common/authors_runs.py) loads
wherever one of ours does.
"""
import glob
import importlib
import inspect
import json
import os
import shutil
import sys
import tempfile

import ml_collections
import tensorflow as tf

from common import authors_runs, codec, config_utils, file_io, results

CHECKPOINT_SUBDIR = "checkpoints"
CONFIG_FILE = "config.json"
CONFIG_SNAPSHOT = "config_snapshot.py"
RUN_RECORD = "run.json"
ITINF_RUN_RECORD = "itinf_run.json"


def default_workdir(experiments_dir, xid, hid, run_name):
  """EXPERIMENTS/<xid>/wid=<hid>-<run name> ('wid=none-...' outside a sweep)."""
  wid = "none" if hid is None else hid
  return os.path.join(os.path.abspath(experiments_dir), xid, f"wid={wid}-{run_name}")


def _write_config(workdir, config, config_path):
  file_io.write_text_atomic(os.path.join(workdir, CONFIG_FILE),
                            config_utils.config_to_json(config))
  shutil.copyfile(config_path, os.path.join(workdir, CONFIG_SNAPSHOT))


def prepare_training(workdir, config, config_path, model_module, hid):
  """Creates a training run dir, refuses one holding another model or config, writes
  config.json, config_snapshot.py and run.json; returns the model identity."""
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
  config_path_in_run = os.path.join(workdir, CONFIG_FILE)
  if os.path.exists(config_path_in_run):
    with open(config_path_in_run) as f:
      differences = config_utils.config_differences(json.load(f), json.loads(config_json))
    if differences:
      raise ValueError(
          f"{workdir} holds a run of another config; it differs in (stored -> this one):\n  " +
          "\n  ".join(differences) + "\nUse another --xid/--workdir to start a new run, or "
          "--warm_start from this one.")
  _write_config(workdir, config, config_path)
  record = dict(model=model_module, model_identity=identity, hid=hid,
                config_file=os.path.abspath(config_path), argv=sys.argv)
  file_io.write_text_atomic(record_path, json.dumps(record, indent=2))
  return identity


def check_itinf_record(workdir, config, train_workdir, step):
  """Writes the itinf run record, or refuses a workdir that holds a different itinf run.

  The record holds what determines the per-image results, which a rerun reuses.
  """
  record = json.loads(json.dumps(dict(
      train_workdir=os.path.abspath(train_workdir), checkpoint_step=step,
      dataset=config.data_config.dataset, center_crop=config.data_config.center_crop,
      num_steps=config.itinf_config.num_steps, latent_config=config.latent_config.to_dict(),
      offset_heuristic=config.itinf_config.offset_heuristic,
      optimizer_config=config.optimizer_config.to_dict())))
  path = os.path.join(workdir, ITINF_RUN_RECORD)
  if os.path.exists(path):
    previous = results.read_json(path)
    if previous != record:
      raise ValueError(f"{workdir} holds another itinf run (other warm start or config; see "
                       f"{path}). Use another --xid/--workdir, or delete that directory.")
  results.write_json(path, record)


def prepare_itinf(workdir, config, config_path, train_workdir, step):
  """Creates an itinf run dir, refuses one holding another itinf run (check_itinf_record),
  writes config.json and config_snapshot.py."""
  os.makedirs(workdir, exist_ok=True)
  check_itinf_record(workdir, config, train_workdir, step)
  _write_config(workdir, config, config_path)


# ----------------------------------------------------------------------------------------------
# Checkpoints

class CheckpointMismatchError(ValueError):
  """A checkpoint that does not belong to the model being restored."""


def checkpoint_dir(workdir):
  """The checkpoint folder of a run of ours, or of an authors' run (train/checkpoints/)."""
  if authors_runs.is_authors_run(workdir):
    return os.path.join(workdir, authors_runs.CHECKPOINT_SUBDIR)
  return os.path.join(workdir, CHECKPOINT_SUBDIR)


def workdir_of_checkpoint(prefix):
  """The run directory holding a checkpoint prefix found by resolve_checkpoint."""
  folder = os.path.dirname(os.path.abspath(prefix))
  for subdir in (authors_runs.CHECKPOINT_SUBDIR, CHECKPOINT_SUBDIR):
    if folder.endswith(os.sep + subdir):
      return folder[:-len(os.sep + subdir)]
  return None


def resolve_checkpoint(spec, hid=None):
  """Checkpoint prefix from a checkpoint path, a workdir, or an experiment dir (+ wid = hid)."""
  if tf.io.gfile.exists(spec + ".index"):
    return spec
  for candidate in (spec, checkpoint_dir(spec)):
    if os.path.isdir(candidate):
      latest = tf.train.latest_checkpoint(candidate)
      if latest:
        return latest
  if hid is not None:
    matches = sorted(glob.glob(os.path.join(spec, f"wid={hid}-*")))
    if len(matches) == 1:
      return resolve_checkpoint(matches[0])
    if len(matches) > 1:
      raise ValueError(f"Warm start: several workdirs for wid={hid} in {spec}: {matches}.")
  raise FileNotFoundError(f"No checkpoint found at {spec!r} (tried a checkpoint prefix, a "
                          f"workdir with {CHECKPOINT_SUBDIR}/, and an experiment dir with "
                          f"wid={hid}-*).")


def checkpoint_step(prefix):
  """The training step of a checkpoint prefix ('.../ckpt-1200' -> 1200)."""
  return int(prefix.rsplit("-", 1)[1])


def resolve_warm_start(spec, wid):
  """(training workdir, checkpoint step) from an experiment dir (+ wid), workdir or prefix."""
  if not spec:
    raise ValueError("itinf_config.warm_start is not set: give the training experiment dir "
                     "(run wid=itinf_config.warm_start_wid in it; get_hyper() sweeps the wid), "
                     "a training workdir or a checkpoint prefix, e.g. --config.itinf_config."
                     "warm_start=experiments/mshyper-quickstart-<hash> --hid 1.")
  prefix = resolve_checkpoint(spec, wid)
  workdir = workdir_of_checkpoint(prefix)
  if workdir is None:
    raise ValueError(f"Warm start {spec!r} resolved to {prefix}, which is not in a training "
                     f"run's {CHECKPOINT_SUBDIR}/ folder (the run's config.json is "
                     f"needed to rebuild the model).")
  return workdir, checkpoint_step(prefix)


def restore(model, prefix, weights_only):
  """Restores model (and optimizer unless weights_only) from `prefix`; clear error on mismatch.

  A checkpoint of the authors' code restores its weights (and, unless weights_only, its step
  counter) but never its optimizer state: their legacy Adam slots have another layout.
  Weights stored in float16 (the bundled pretrained models) restore through a float32 copy.
  """
  if authors_runs.is_authors_checkpoint(prefix):
    try:
      authors_runs.restore_weights(model, prefix, restore_step=not weights_only)
    except authors_runs.AuthorsRunError as e:
      raise CheckpointMismatchError(str(e)) from e
    return
  if weights_only:
    target = tf.train.Checkpoint(model=_weights_view(model))
  else:
    model.optimizer.build(model.trainable_variables)  # So optimizer slots restore immediately.
    target = tf.train.Checkpoint(model=model)
  status = _restore_matched(target, prefix)
  if weights_only:
    status.expect_partial()


def restore_decoder(model, prefix):
  """Restores the decoder-side weights of checkpoint `prefix` (every module but
  model.ENCODER_MODULES and the optimizer) without reading the encoder's: what a decoder-only
  model (decoder_only=True) has. Clear error on mismatch, as `restore`."""
  if authors_runs.is_authors_checkpoint(prefix):
    try:
      authors_runs.restore_weights(model, prefix, restore_step=False,
                                   skip_modules=model.ENCODER_MODULES)
    except authors_runs.AuthorsRunError as e:
      raise CheckpointMismatchError(str(e)) from e
    return
  modules = {name: child for name, child in _weight_modules(model).items()
             if name not in model.ENCODER_MODULES}
  target = tf.train.Checkpoint(model=tf.train.Checkpoint(**modules))
  encoder = tuple(f"model/{name}/" for name in model.ENCODER_MODULES)
  _restore_matched(target, prefix, keep=lambda key: not key.startswith(encoder)).expect_partial()


def _restore_matched(target, prefix, keep=None):
  """target.restore(prefix), float16 weights cast to float32 on the way (only the keys that
  keep(key) accepts, if given); fails unless every object of target got its values."""
  with tempfile.TemporaryDirectory() as scratch:
    upcast = os.path.join(scratch, "ckpt")
    cast = _cast_checkpoint(prefix, upcast, tf.float16, tf.float32, keep)
    try:
      status = target.restore(upcast if cast else prefix)
      status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as e:
      raise CheckpointMismatchError(
          f"Checkpoint {prefix} does not match this model (was it written by another model or "
          f"transform config?): {str(e)[:500]}") from e
  return status


def _weight_modules(model):
  """{attribute: module} of the model's children minus its optimizer."""
  return {name: child for name, child in vars(model).items()
          if isinstance(child, tf.Module) and name != "optimizer" and not name.startswith("_")}


def _weights_view(model):
  """A trackable with the model's children minus its optimizer (for warm starts)."""
  return tf.train.Checkpoint(**_weight_modules(model))


def save_weights(model, directory, step, storage_dtype=tf.float32):
  """Writes the model's weights without optimizer state as `directory`/ckpt-<step> (+ the
  checkpoint state file), so a weights-only run directory restores like a training run.

  storage_dtype float16 halves the files; `restore` casts them back to float32 by itself.
  """
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=_weights_view(model)),
                                       directory, max_to_keep=1)
  prefix = manager.save(checkpoint_number=step)
  _cast_checkpoint(prefix, prefix, tf.float32, tf.as_dtype(storage_dtype))
  return prefix


def _cast_checkpoint(source, target, from_dtype, to_dtype, keep=None):
  """Rewrites checkpoint `source` as `target` with every from_dtype tensor cast to to_dtype
  (object graph and keys unchanged); returns False, writing nothing, if there is none.

  keep(key), if given, selects the tensors to write.
  """
  reader = tf.train.load_checkpoint(source)
  dtypes = reader.get_variable_to_dtype_map()
  if keep is not None:
    dtypes = {name: dtype for name, dtype in dtypes.items() if keep(name)}
  if from_dtype == to_dtype or from_dtype not in dtypes.values():
    return False
  names = sorted(dtypes)
  tensors = [tf.cast(reader.get_tensor(name), to_dtype) if dtypes[name] == from_dtype
             else tf.constant(reader.get_tensor(name), dtypes[name]) for name in names]
  del reader
  tf.raw_ops.SaveV2(prefix=target, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=tensors)
  return True


# ----------------------------------------------------------------------------------------------
# Loading a run

def model_class(model_module):
  """The Model class of a model module ('mshyper.models'), as run records name it."""
  try:
    return importlib.import_module(model_module).Model
  except (ModuleNotFoundError, AttributeError):
    raise ValueError(f"{model_module!r} is not a model module (a module defining Model, e.g. "
                     f"'mshyper.models').") from None


def model_module_of_run(workdir):
  """The model module of a run of ours (its run.json) or of the authors' code."""
  if authors_runs.is_authors_run(workdir):
    return authors_runs.model_module(workdir)
  record_path = os.path.join(workdir, RUN_RECORD)
  if not os.path.exists(record_path):
    raise FileNotFoundError(f"{workdir} has no {RUN_RECORD}, so it is not a run "
                            f"directory of a train entry point (e.g. python -m mshyper.train) "
                            f"nor an authors' run directory (config.json + train/checkpoints/).")
  with open(record_path) as f:
    return json.load(f)["model"]


def model_class_of_config(config_path):
  """The Model class of the package a config file belongs to (<package>/configs/NAME.py)."""
  package = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(config_path))))
  try:
    return importlib.import_module(f"{package}.models").Model
  except ModuleNotFoundError:
    raise ValueError(f"{config_path} is not in a model package's configs/ folder (expected "
                     f"<package>/configs/NAME.py next to <package>/models.py).") from None


def build_model(model_cls, model_config, stored=False, decoder_only=False):
  """model_cls(**model_config) with a clear error for keys the model does not take.

  stored=True: the config was read from a run's config.json; keys it lacks take the values
  runs had before those keys existed (model_cls.LEGACY_MODEL_CONFIG), not today's defaults.
  decoder_only=True builds only the decoder side (the model's keyword-only argument, never a
  config key).
  """
  kwargs = model_config.to_dict()
  if stored:
    kwargs = {**getattr(model_cls, "LEGACY_MODEL_CONFIG", {}), **kwargs}
  valid = [name for name, parameter in inspect.signature(model_cls.__init__).parameters.items()
           if name != "self" and parameter.kind != parameter.KEYWORD_ONLY]
  unknown = sorted(set(kwargs) - set(valid))
  if unknown:
    raise KeyError(f"model_config has key(s) {unknown} that {model_cls.__module__}.Model does "
                   f"not take; valid: {valid}.")
  return model_cls(**kwargs, decoder_only=True) if decoder_only else model_cls(**kwargs)


def read_run_config(workdir, model_cls):
  """(config, stored) of a run directory of ours or of the authors' code (see load_run).

  stored: whether missing model_config keys take their pre-key values (runs of ours).
  """
  if authors_runs.is_authors_run(workdir):
    return ml_collections.ConfigDict(authors_runs.read_config(workdir, model_cls.__module__)), False
  config_path = os.path.join(workdir, CONFIG_FILE)
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


def load_run(workdir, model_cls, offset_heuristic=None, decoder_only=False):
  """(config, model) of a finished or running workdir, built from its config.json.

  Also reads the authors' run directories (config.json + train/checkpoints/, see
  common/authors_runs.py); a directory of neither layout is an error that says so.
  offset_heuristic, if given, replaces the run's (iterative inference turns it off).
  decoder_only=True builds only the decoder side (see build_model).
  """
  config, stored = read_run_config(workdir, model_cls)
  if offset_heuristic is not None:
    config.model_config.offset_heuristic = bool(offset_heuristic)
  return config, build_model(model_cls, config.model_config, stored=stored,
                             decoder_only=decoder_only)


def load_codec(workdir, model_cls, step=None, offset_heuristic=None, decoder_only=False):
  """Codec for the weights of `workdir` (its latest checkpoint, or checkpoint `step`).

  offset_heuristic, if given, replaces the run's (iterative inference codes without it).
  decoder_only=True builds and restores only the decoder side (no encoder variables are
  created or read): it decodes, and validates headers, like the full codec, but cannot encode.
  """
  config, model = load_run(workdir, model_cls, offset_heuristic, decoder_only)
  if step is None:
    prefix = resolve_checkpoint(workdir)
  else:
    prefix = f"{checkpoint_dir(workdir)}/ckpt-{step}"
    if not tf.io.gfile.exists(prefix + ".index"):
      kept = tf.train.get_checkpoint_state(checkpoint_dir(workdir))
      kept = [str(checkpoint_step(p)) for p in kept.all_model_checkpoint_paths] if kept else []
      raise FileNotFoundError(f"{workdir} has no checkpoint for step {step} (it keeps steps "
                              f"{', '.join(kept) or 'none'}).")
  if decoder_only:
    restore_decoder(model, prefix)
  else:
    restore(model, prefix, weights_only=True)
  return codec.Codec(model, config_utils.model_identity(config), checkpoint_step(prefix),
                     checkpoint_prefix=prefix)


def load_codec_for_file(workdir, model_cls, data):
  """The decoder-only codec that decodes `data`: the checkpoint step its header names, and the
  offset heuristic its model identity says (a file of iterative inference may be coded without
  it)."""
  header = codec.parse_header(data)
  config, _ = read_run_config(workdir, model_cls)
  offset_heuristic = None
  for candidate in (True, False):
    config.model_config.offset_heuristic = candidate
    if codec.file_identity(model_cls, config_utils.model_identity(config)) == header.identity:
      offset_heuristic = candidate
  return load_codec(workdir, model_cls, step=header.step, offset_heuristic=offset_heuristic,
                    decoder_only=True)
