"""Quiet logs by default: the project's own progress lines stay visible, TensorFlow's start-up
noise and known harmless warnings are dropped. `--verbosity=N` (or `-v N`) on the command
line brings everything back; TF_CPP_MIN_LOG_LEVEL set by the caller is kept.

Runs on the first import of `common` (common/__init__.py), before TensorFlow is imported:
TensorFlow's C++ log level is read once, when its library loads.
"""
import logging
import os
import re

# Messages from TensorFlow / TFC that say nothing actionable in this project.
HARMLESS = tuple(re.compile(pattern) for pattern in (
    # TFC re-estimates a factorized prior's quantization offset inside tf.functions; correct,
    # and frozen where it costs time (NTCModel.freeze_quantization_offsets).
    r"Computing quantization offsets using offset heuristic within a tf\.function",
    # Retracing on new image sizes is expected: every image of a dataset may differ in size.
    r"triggered tf\.function retracing",
))


def verbose_requested(argv):
  return any(arg in ("-v", "--v") or arg.startswith(("--verbosity", "-v=", "--v="))
             for arg in argv[1:])


class _DropHarmless(logging.Filter):

  def filter(self, record):
    text = record.getMessage()
    return not any(pattern.search(text) for pattern in HARMLESS)


def quiet(argv):
  """Hides TensorFlow's C++ logs and the HARMLESS messages unless verbosity was asked for."""
  if verbose_requested(argv):
    return
  # Level 3 also hides the cuDNN/cuFFT/cuBLAS "Unable to register factory" lines, which TF
  # 2.14 logs as errors on every start; real failures still raise Python exceptions.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  for name in ("absl", "tensorflow"):
    logging.getLogger(name).addFilter(_DropHarmless())
