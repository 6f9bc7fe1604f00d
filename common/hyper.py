"""Building hyperparameter sweeps: lists of {dotted.config.key: value} override dicts."""
import itertools


def sweep(key, values):
  """One override dict per value of `key`."""
  return [{key: value} for value in values]


def product(*sweeps):
  """Cartesian product of sweeps (later sweeps vary fastest)."""
  return [dict(item for d in combo for item in d.items()) for combo in itertools.product(*sweeps)]


def zipit(*sweeps):
  """Element-wise combination of equally long sweeps."""
  lengths = {len(s) for s in sweeps}
  if len(lengths) != 1:
    raise ValueError(f"zipit needs sweeps of equal length, got lengths {sorted(lengths)}.")
  return [dict(item for d in combo for item in d.items()) for combo in zip(*sweeps)]
