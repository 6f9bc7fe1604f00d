"""Loading experiment configs, applying sweep overrides, naming runs and workdirs."""
import datetime
import hashlib
import importlib.util
import json
import os

import ml_collections


def load_config_module(path):
  """Imports a config file (a .py with get_config/get_cfg_str/get_hyper) by path."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Config file not found: {path}")
  spec = importlib.util.spec_from_file_location(
      f"ntc_config_{hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:8]}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for name in ("get_config", "get_cfg_str", "get_hyper"):
    if not hasattr(module, name):
      raise ValueError(f"Config file {path} does not define {name}().")
  return module


def parent_of_key(config, dotted_key, source="override"):
  """The ConfigDict holding `dotted_key`; a KeyError listing the valid keys if there is none."""
  node = config
  parts = dotted_key.split(".")
  for i, part in enumerate(parts):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      where = ".".join(parts[:i]) or "<root>"
      valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      raise KeyError(f"{source}: config has no key {dotted_key!r} ({part!r} is not under "
                     f"{where}; valid there: {valid}).")
    if i < len(parts) - 1:
      node = node[part]
  return node


def apply_overrides(config, overrides, source="override"):
  """Sets dotted keys on a ConfigDict; an unknown key is an error that lists the valid ones."""
  for dotted_key, value in overrides.items():
    node = parent_of_key(config, dotted_key, source)
    parts = dotted_key.split(".")
    if isinstance(value, list):
      value = tuple(value)
    with node.unlocked():
      node[parts[-1]] = value
  return config


def config_to_json(config):
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)


def model_identity(config):
  """Short hash of what determines the model's weights layout and coding (not the schedule)."""
  model_config = config.model_config.to_dict()
  identity = dict(transform_config=model_config.get("transform_config"),
                  latent_method=model_config.get("latent_config", {}).get("method"),
                  offset_heuristic=model_config.get("offset_heuristic", True))
  # Only when set, so runs written before the key existed keep their identity.
  if "scale_parameterization" in model_config:
    identity["scale_parameterization"] = model_config["scale_parameterization"]
  text = json.dumps(identity, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def cfg_str(entries):
  """Run name from ordered (key, value) pairs, e.g. 'rd_lambda=0.01-hidden=12'."""
  def fmt(v):
    if isinstance(v, (tuple, list)):
      return "x".join(str(e) for e in v)
    return f"{v:g}" if isinstance(v, float) else str(v)
  return "-".join(f"{k}={fmt(v)}" for k, v in entries)


def experiment_id(family, config_path, sweep_config, hypers):
  """'<family>-<config name>-<hash>': the default name of a sweep's experiment dir.

  The hash covers the sweep's effective base config (get_config() + command-line overrides)
  and its get_hyper() list, so the same command, rerun or resubmitted after a time limit,
  continues the same runs, while another model family, config or setting gets its own dir.
  """
  text = json.dumps(dict(family=family, config=sweep_config.to_dict(), hypers=list(hypers)),
                    sort_keys=True, default=str)
  digest = hashlib.sha256(text.encode()).hexdigest()[:8]
  return f"{family}-{os.path.splitext(os.path.basename(config_path))[0]}-{digest}"


def config_differences(old, new, prefix=""):
  """Dotted keys whose values differ between two config dicts, as 'key: old -> new' lines.

  Keys missing from `old` are not listed: they were added to the code after `old` was written
  (the runs that wrote it used the behaviour those keys now default to).
  """
  lines = []
  for key in sorted(new):
    if key not in old:
      continue
    if isinstance(old[key], dict) and isinstance(new[key], dict):
      lines += config_differences(old[key], new[key], f"{prefix}{key}.")
    elif old[key] != new[key]:
      lines.append(f"{prefix}{key}: {old[key]!r} -> {new[key]!r}")
  lines += [f"{prefix}{key}: {old[key]!r} -> (absent)" for key in sorted(set(old) - set(new))]
  return lines


def timestamp():
  return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


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
    config = load_config_module(paths[-1]).get_config()
  except (OSError, ValueError):
    return None
  for arg in argv:
    if arg.startswith("--config.") and "=" in arg:
      try:
        parent_of_key(config, arg[len("--config."):].split("=", 1)[0],
                                   source="command line")
      except KeyError as e:
        return e.args[0]
  return None
