"""Dataset names (configs.DATASETS) -> file globs; the embedded photos are written on first use.

Imports no TensorFlow (unless an embedded dataset must be written), so launchers resolve names
at submit time without starting it.
"""
import os

import configs

# A name containing any of these is a glob or path, not a dataset name.
_PATTERN_CHARS = frozenset("*?[" + os.sep + (os.altsep or ""))
# Written under DATA_DIR/embedded/ by `dataset_glob` on first use (common/embedded_photos.py).
_EMBEDDED_DATASETS = ("embedded_train", "embedded_eval")


def dataset_glob(name_or_glob):
  """Returns the file glob of a dataset name; globs and paths pass through unchanged.

  Anything containing a glob character or a path separator is taken as a glob. For the
  embedded datasets the photos are written to DATA_DIR on first use.
  """
  if _PATTERN_CHARS & set(name_or_glob):
    return name_or_glob
  if name_or_glob not in configs.DATASETS:
    raise ValueError(
        f"Unknown dataset name {name_or_glob!r}; known names: "
        f"{', '.join(sorted(configs.DATASETS))} (or pass a file glob such as 'data/kodak/*.png').")
  if name_or_glob in _EMBEDDED_DATASETS:
    # Imported here, not at the top: writing the photos needs TensorFlow's image I/O, which
    # resolving any other name (e.g. launch_eval's check, at submit time) does not.
    from common import embedded_photos
    embedded_photos.ensure_embedded_photos()
  return configs.DATASETS[name_or_glob]
