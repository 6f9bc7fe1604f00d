"""Run directories written by the authors' code (shallow-ntc): reading them as runs of ours.

The authors' training writes `RUN/config.json` and `RUN/train/checkpoints/ckpt-N.*` (a
`tf.train.Checkpoint(model=Model)` of their Model). This module
- recognises that layout (`is_authors_run`) and translates its config.json into ours
  (`translate_config`): their `latent_config.uq.method` becomes our `latent_config.method`, the
  scale mapping is theirs ("exp_index"), their transform class names are ours;
- maps their checkpoint keys onto our variables (`restore_weights`): weights only. Their
  checkpoints hold the legacy (OptimizerV2) Adam's slots (`K/.OPTIMIZER_SLOT/model/optimizer/
  {m,v}`); those are ignored, the optimizer's step counter is restored.

Everything that loads a run (common/run_dir.py: load_run, checkpoint_dir, restore) goes through
here, so their directories work wherever one of ours does.
"""
import json
import os
import re

import numpy as np
import tensorflow as tf

CHECKPOINT_SUBDIR = os.path.join("train", "checkpoints")
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_ITERATIONS_KEY = "model/optimizer/iter" + _SUFFIX
# Their model attribute -> ours, per model family (their factorized model names its prior _prior
# as well).
_TOP_LEVEL = {"_analysis": "analysis", "_synthesis": "synthesis",
              "_hyper_analysis": "hyper_analysis", "_hyper_synthesis": "hyper_synthesis"}
_PRIOR_ATTRIBUTE = {"mshyper": "hyper_prior", "factorized": "prior"}
# Object-path rewrites, their layout -> ours, applied in order (see tests/fixtures/paper_code).
_PATH_REWRITES = (
    # ElicAnalysis is a Layer wrapping a Sequential; ours is the Sequential.
    (r"^analysis/_transform/", "analysis/"),
    (r"/_block/", "/block/"),
    (r"/_trunk/", "/trunk/"),
    # Their attention gate: 3 residual blocks (_branch_layers) + a 1x1 conv stored in a
    # Sequential (_attention_branch) that also holds the blocks; ours is one Sequential.
    (r"/_branch_layers/(\d+)/", r"/branch/layer_with_weights-\1/"),
    (r"/_attention_branch/", "/branch/"),
    # TwoLayerResSynthesis: their IGDN is a model attribute, ours the first conv's activation.
    (r"^synthesis/activation/", "synthesis/base_conv/activation/"),
)


class AuthorsRunError(ValueError):
  """An authors' run directory or checkpoint that cannot be read as a model of ours."""


def is_authors_run(workdir):
  return (os.path.isfile(os.path.join(workdir, "config.json"))
          and os.path.isdir(os.path.join(workdir, CHECKPOINT_SUBDIR))
          and not os.path.isdir(os.path.join(workdir, "checkpoints")))


def is_authors_checkpoint(prefix):
  try:
    keys = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
  except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError):
    return False
  return any(k.startswith("model/_analysis/") for k in keys)


def model_family(config_dict):
  """'mshyper' or 'factorized', from the config file name their training recorded (else None)."""
  family = config_dict.get("config_filename", "").split("/")[0]
  return family if family in _PRIOR_ATTRIBUTE else None


def model_module(workdir):
  """Our model module ('mshyper.models' or 'factorized.models') for an authors' run directory."""
  with open(os.path.join(workdir, "config.json")) as f:
    family = model_family(json.load(f))
  if family is None:
    raise AuthorsRunError(f"{workdir}/config.json has no config_filename saying whether it is a "
                          f"mshyper or a factorized model.")
  return f"{family}.models"


def translate_config(config_dict, model_module):
  """Their config.json (dict) -> ours (dict), for a model of `model_module` (e.g.
  'mshyper.models'); raises AuthorsRunError when the run is of the other model family."""
  family = model_module.split(".")[0]
  recorded = model_family(config_dict)
  if recorded is not None and recorded != family:
    raise AuthorsRunError(f"This authors' run is a {recorded} model (config_filename "
                          f"{config_dict.get('config_filename')!r}); use {recorded}'s entry "
                          f"point, not {family}'s.")
  theirs = dict(config_dict.get("model_config", {}))
  if "transform_config" not in theirs:
    raise AuthorsRunError("The authors' config.json has no model_config.transform_config.")
  latent = dict(theirs.pop("latent_config", None) or {"uq": {"method": "unoise"}})
  latent = dict(latent.get("uq", latent))
  latent.setdefault("method", "unoise")
  optimizer = dict(theirs.pop("optimizer_config", None) or {})
  scheduled = theirs.get("scheduled_num_steps", 1500000)  # Their Model's default.
  if "warmup_steps" in optimizer:
    optimizer["warmup_until"] = optimizer.pop("warmup_steps") / scheduled
  # Our transforms carry their class names (common/transforms.py).
  transforms = {name: dict(t) for name, t in theirs.pop("transform_config").items()}
  theirs.pop("profile", None)
  model_config = dict(theirs, scheduled_num_steps=scheduled, transform_config=transforms,
                      latent_config=latent, optimizer_config=optimizer,
                      offset_heuristic=theirs.get("offset_heuristic", True))
  if family == "mshyper":
    model_config["scale_parameterization"] = "exp_index"
  config = {k: v for k, v in config_dict.items() if k != "model_config"}
  config["model_config"] = model_config
  config["authors_run"] = True
  return config


def read_config(workdir, model_module):
  """Our config dict of an authors' run directory."""
  with open(os.path.join(workdir, "config.json")) as f:
    return translate_config(json.load(f), model_module)


def _object_paths(root):
  """{id(object): 'a/b/c'}: each object's checkpoint path below root (first breadth-first path,
  as tf.train.Checkpoint names them)."""
  paths, queue = {}, [((), root)]
  while queue:
    path, obj = queue.pop(0)
    if id(obj) in paths:
      continue
    paths[id(obj)] = "/".join(path)
    queue.extend((path + (name,), child)
                 for name, child in obj._trackable_children(save_type="checkpoint").items())
  return paths


def _our_path(their_key, prior_attribute):
  path = their_key[len("model/"):-len(_SUFFIX)]
  top, _, rest = path.partition("/")
  top = _TOP_LEVEL.get(top, prior_attribute if top == "_prior" else None)
  if top is None:
    return None
  path = f"{top}/{rest}"
  for pattern, replacement in _PATH_REWRITES:
    path = re.sub(pattern, replacement, path)
  return path


def restore_weights(model, prefix, restore_step, skip_modules=()):
  """Loads an authors' checkpoint into `model`: its weights, and its step counter unless
  restore_step is False (a warm start trains from step 0). skip_modules: model attributes
  whose weights are neither read nor expected (a decoder-only model skips its encoder's).

  Every model variable must get a value and every weight of theirs a variable, with equal
  shapes; otherwise AuthorsRunError lists what did not match.
  """
  reader = tf.train.load_checkpoint(prefix)
  shapes = reader.get_variable_to_shape_map()
  prior_attribute = _PRIOR_ATTRIBUTE[model.__module__.split(".")[0]]
  their_weights = {}
  for key in shapes:
    if (key.startswith("model/") and key.endswith(_SUFFIX) and ".OPTIMIZER_SLOT" not in key
        and not key.startswith("model/optimizer/")):
      path = _our_path(key, prior_attribute)
      if path is None or path.split("/", 1)[0] not in skip_modules:
        their_weights[path] = key
  roots = {name: getattr(model, name) for name in (*_TOP_LEVEL.values(), prior_attribute)
           if hasattr(model, name) and name not in skip_modules}
  ours = {}
  for name, root in roots.items():
    paths = _object_paths(root)
    for variable in root.variables:
      ours[f"{name}/{paths[id(variable)]}"] = variable
  missing = sorted(set(ours) - set(their_weights))
  unused = sorted(their_weights[p] for p in set(their_weights) - set(ours))
  if missing or unused:
    raise AuthorsRunError(
        f"Checkpoint {prefix} (authors' layout) does not match this model: our variables "
        f"without a value: {missing[:8]}{' ...' if len(missing) > 8 else ''}; their weights "
        f"without a variable: {unused[:8]}{' ...' if len(unused) > 8 else ''}. Was the run "
        f"trained with another transform config?")
  for path, variable in ours.items():
    value = reader.get_tensor(their_weights[path])
    if tuple(value.shape) != tuple(variable.shape):
      raise AuthorsRunError(f"Checkpoint {prefix}: {their_weights[path]} has shape "
                            f"{value.shape}, our {path} {tuple(variable.shape)}.")
    variable.assign(value)
  if restore_step and _ITERATIONS_KEY in shapes:
    model.optimizer.iterations.assign(np.int64(reader.get_tensor(_ITERATIONS_KEY)))
