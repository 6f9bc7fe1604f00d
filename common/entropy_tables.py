"""Range-coding tables of trained entropy models, cached on disk so a decoder starts fast.

Building the tables evaluates the priors over their whole support (seconds for a deep
factorized prior of 320 channels); they depend only on the priors' weights and the model's
identity, so they are stored once per checkpoint and reused while the weights' fingerprint
matches. The cache lives next to the checkpoint (`ckpt-N.entropy_tables.npz`, gitignored) when
that directory is writable and outside the tracked source tree, else in the user's cache dir
(`$XDG_CACHE_HOME` or ~/.cache, `shallow-ntc/entropy_tables/`); if neither can be written, tables
are rebuilt every time.
"""
import hashlib
import importlib.metadata
import os

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc

import configs
from common import file_io

SUFFIX = ".entropy_tables.npz"


def weights_fingerprint(variables):
  """SHA-256 (hex) of the dtypes, shapes and values of `variables`, in order.

  Not of their names: Keras numbers layer names per process, the values are what matter.
  """
  digest = hashlib.sha256()
  for variable in variables:
    value = np.ascontiguousarray(variable.numpy())
    digest.update(f"{value.dtype.str}{value.shape}".encode())
    digest.update(value.tobytes())
  return digest.hexdigest()


def tables_of(entropy_model):
  """{cdf, cdf_offset, quantization_offset} of a compression entropy model (numpy)."""
  offset = getattr(entropy_model, "quantization_offset", None)
  tables = dict(cdf=entropy_model.cdf.numpy(), cdf_offset=entropy_model.cdf_offset.numpy())
  if offset is not None:
    tables["quantization_offset"] = np.asarray(offset)
  return tables


def batched_from_tables(tables, prior_shape, coding_rank, offset_heuristic):
  """A ContinuousBatchedEntropyModel for coding, from stored tables (no prior needed)."""
  offset = tables.get("quantization_offset")
  if offset is None and offset_heuristic:  # TFC drops an all-zero offset; the coder needs one
    offset = np.zeros(prior_shape, np.float32)
  return tfc.ContinuousBatchedEntropyModel(
      prior_shape=prior_shape, coding_rank=coding_rank, compression=True,
      offset_heuristic=offset_heuristic, cdf=tables["cdf"], cdf_offset=tables["cdf_offset"],
      quantization_offset=offset)


class LocationScaleIndexedFromTables(tfc.LocationScaleIndexedEntropyModel):
  """LocationScaleIndexedEntropyModel for coding with stored tables.

  TFC (2.14) builds an indexed model's tables in its constructor and has no argument to pass
  them; coding reads only cdf, cdf_offset and the index normalization, so this builds the model
  without tables and installs the stored ones (tests/test_codec.py checks bit-exact decoding).
  """

  def __init__(self, tables, prior_fn, num_scales, scale_fn, coding_rank):
    super().__init__(prior_fn, num_scales, scale_fn, coding_rank=coding_rank, compression=False)
    self._compression = True
    with self.name_scope:
      self._init_compression(tables["cdf"], tables["cdf_offset"], None)


def cache_path(checkpoint_prefix):
  """Where the tables of a checkpoint are cached (see the module docstring)."""
  prefix = os.path.abspath(checkpoint_prefix)
  directory = os.path.dirname(prefix)
  project = os.path.abspath(configs.PROJECT_DIR)
  experiments = os.path.abspath(configs.EXPERIMENTS_DIR)
  in_source_tree = (_is_within(directory, project) and not _is_within(directory, experiments))
  if os.access(directory, os.W_OK) and not in_source_tree:
    return prefix + SUFFIX
  cache_root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  name = hashlib.sha256(prefix.encode()).hexdigest()[:32]
  return os.path.join(cache_root, "shallow-ntc", "entropy_tables", name + SUFFIX)


def _is_within(path, root):
  return os.path.commonpath([path, root]) == root


def fingerprint(model, identity):
  """Identity of what the tables depend on: model identity, prior weights, TFC version."""
  variables = [v for m in model.entropy_models for v in m.variables]
  version = importlib.metadata.version("tensorflow-compression")
  return f"{identity}:{version}:{weights_fingerprint(variables)}"


def load(path, key):
  """[tables per entropy model] stored at `path` under `key`, or None (missing or stale)."""
  try:
    with np.load(path) as stored:
      if str(stored["key"]) != key:
        return None
      count = int(stored["count"])
      names = ("cdf", "cdf_offset", "quantization_offset")
      return [{name: stored[f"t{i}_{name}"] for name in names if f"t{i}_{name}" in stored}
              for i in range(count)]
  except (OSError, KeyError, ValueError):
    return None


def save(path, key, tables):
  """Stores [tables per entropy model] under `key`; False if the location is not writable."""
  arrays = {f"t{i}_{name}": value for i, t in enumerate(tables) for name, value in t.items()}
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with file_io.atomic_path(path) as tmp:
      with open(tmp, "wb") as f:
        np.savez(f, key=np.asarray(key), count=np.asarray(len(tables)), **arrays)
  except OSError:
    return False
  return True


def coding_entropy_models(model, identity, checkpoint_prefix):
  """model's compression entropy models, from the cached tables when they are current.

  Tables are built on the CPU, where construction is deterministic, so encoder and decoder
  derive identical tables whether or not they come from a cache.
  """
  key = fingerprint(model, identity)
  path = cache_path(checkpoint_prefix) if checkpoint_prefix else None
  tables = load(path, key) if path else None
  if tables is not None:
    return model.make_entropy_models(compression=True, tables=tables)
  with tf.device("/cpu:0"):
    entropy_models = model.make_entropy_models(compression=True)
  if path:
    save(path, key, [tables_of(m) for m in entropy_models])
  return entropy_models
