"""The default dataset: six real photos shipped inside installed wheels, no download.

`ensure_embedded_photos` writes them once as plain 8-bit sRGB PNG (no ICC chunk) to
DATA_DIR/embedded/{train,eval}/ with a MANIFEST.tsv, and is cheap when they are present.

Split: eval (held out) = coffee (600x400) and motorcycle (741x500, the left view of the
Middlebury stereo pair); train = astronaut (512x512), chelsea (451x300), rocket (640x427,
Adobe RGB JPEG converted to sRGB) and grace_hopper (512x600 JPEG).
Note: `make data`'s eval_lossless8 set contains astronaut and chelsea too, so do not train
on embedded_train for results reported on eval_lossless8.
"""

import importlib.metadata
import importlib.util
import os

from absl import logging

import configs
from common import file_io, image_utils

SPLITS = ("train", "eval")
# (output name, split, importable package, distribution, path inside the package, licence)
_PHOTOS = (
    ("astronaut", "train", "skimage", "scikit-image", "data/astronaut.png",
     "public domain (NASA)"),
    ("chelsea", "train", "skimage", "scikit-image", "data/chelsea.png",
     "CC0 (Stefan van der Walt)"),
    ("rocket", "train", "skimage", "scikit-image", "data/rocket.jpg",
     "public domain (SpaceX)"),
    ("grace_hopper", "train", "matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
     "public domain (US Navy)"),
    ("coffee", "eval", "skimage", "scikit-image", "data/coffee.png",
     "CC0 (Rachel Michetti)"),
    ("motorcycle", "eval", "skimage", "scikit-image", "data/motorcycle_left.png",
     "Middlebury 2014 stereo benchmark (Scharstein et al.)"),
)


def _package_dir(package, distribution):
  # find_spec locates the package without importing it (importing skimage is slow).
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise RuntimeError(
        f"The embedded photos come from the {distribution} wheel, which is not installed; "
        "run `make setup` (it is in requirements.txt).")
  return spec.submodule_search_locations[0]


def ensure_embedded_photos(data_dir=None):
  """Writes the embedded photos under `data_dir`/embedded/ if any is missing.

  Args:
    data_dir: root data directory; defaults to configs.DATA_DIR.

  Returns:
    dict split -> directory holding that split's PNGs ('train', 'eval').
  """
  root = os.path.join(data_dir or configs.DATA_DIR, "embedded")
  split_dirs = {split: os.path.join(root, split) for split in SPLITS}
  manifest = os.path.join(root, "MANIFEST.tsv")
  outputs = [os.path.join(split_dirs[split], name + ".png") for name, split, *_ in _PHOTOS]
  if os.path.exists(manifest) and all(os.path.exists(p) for p in outputs):
    return split_dirs

  logging.info("Writing %d embedded photos to %s.", len(_PHOTOS), root)
  rows = ["file\tsplit\tpackage\tpath_in_package\tsize\tlicence"]
  for output, (name, split, package, distribution, inner_path, licence) in zip(outputs, _PHOTOS):
    source = os.path.join(_package_dir(package, distribution), inner_path)
    image = image_utils.read_image(source)
    image_utils.write_png(output, image)
    version = importlib.metadata.version(distribution)
    rows.append(f"{split}/{name}.png\t{split}\t{distribution}={version}\t{package}/{inner_path}"
                f"\t{image.shape[1]}x{image.shape[0]}\t{licence}")
  file_io.write_text_atomic(manifest, "\n".join(rows) + "\n")
  return split_dirs
