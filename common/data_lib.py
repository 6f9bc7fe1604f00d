"""tf.data input pipelines over image files named by a dataset name or a file glob.

Training decodes with TensorFlow (parallel, fast) after checking every file's header with
Pillow up front (cached per glob, so a restart rereads only changed files); JPEGs decode only
the crop, small PNG sets are decoded once, and files whose pixel data turn out undecodable are
skipped and named (TrainInput). Evaluation reads through image_utils.read_image, the same
reader the metrics and codec baselines use.
"""

import collections
import glob
import hashlib
import json
import os
import time

from absl import logging
import numpy as np
from PIL import Image
import tensorflow as tf

import configs
from common import datasets, image_utils

_MAKE_DATA = "run `make data` (python -m common.build_data) to build it from Debian/PyPI packages"
# How to obtain the files of a built-in dataset name, for the empty-glob error.
_HOW_TO_GET = {
    "train": _MAKE_DATA,
    "eval24": _MAKE_DATA,
    "eval_lossless8": _MAKE_DATA,
    "kodak": "put the 24 Kodak PNGs (kodim01.png ... kodim24.png) there",
    "coco": "unpack the COCO 2017 train images (train2017.zip) there",
}
# Formats that tf.io.decode_image decodes (GIF: first frame).
_TF_DECODABLE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
_HEADER_CHECK_LOG_EVERY = 10000


def list_images(name_or_glob):
  """Sorted files matching a dataset name (see configs.DATASETS) or a glob ('**' recurses).

  Raises:
    ValueError: nothing matches (with how to get the files for a built-in dataset name),
      or the name is unknown.
  """
  pattern = datasets.dataset_glob(name_or_glob)
  files = sorted(path for path in glob.glob(os.path.expanduser(pattern), recursive=True)
                 if os.path.isfile(path))
  if not files:
    names = [name for name, known in configs.DATASETS.items()
             if name == name_or_glob or known == pattern]
    hints = [f"dataset {name!r}: {_HOW_TO_GET[name]}" for name in names if name in _HOW_TO_GET]
    raise ValueError(f"No image files match {pattern!r}" +
                     (f" ({'; '.join(hints)})." if hints else "."))
  return files


def _read_header(path):
  """(format, height, width) from the file header only (cheap); ImageError if unreadable."""
  try:
    with Image.open(path) as image:
      return image.format, image.height, image.width
  except Image.UnidentifiedImageError:
    raise image_utils.ImageError(
        f"Not an image, or a format Pillow cannot read: {path}") from None
  except OSError as e:
    raise image_utils.ImageError(f"Cannot read image {path}: {e}") from e


def _header_cache_path(pattern):
  digest = hashlib.sha256(os.path.abspath(os.path.expanduser(pattern)).encode()).hexdigest()
  return os.path.join(configs.CACHE_DIR, "image_headers", digest[:16] + ".json")


def checked_headers(files, pattern):
  """{path: (format, height, width)} of `files`, read with Pillow or from the cache.

  Reading 118K COCO headers takes minutes, so they are cached per glob in
  configs.CACHE_DIR/image_headers/, each keyed on the file's size and mtime: a restart (or
  requeue) rereads only new or changed files.
  """
  start = time.time()
  cache_path = _header_cache_path(pattern)
  try:
    with open(cache_path) as f:
      cached = json.load(f)
  except (OSError, ValueError):
    cached = {}
  headers, fresh, read = {}, {}, 0
  for i, path in enumerate(files, 1):
    stat = os.stat(path)
    key = [stat.st_size, stat.st_mtime_ns]
    entry = cached.get(path)
    if entry is None or entry[:2] != key:
      entry = key + list(_read_header(path))
      read += 1
      if read % _HEADER_CHECK_LOG_EVERY == 0:
        logging.info("Read %d image headers (%d/%d files, %.0f s).", read, i, len(files),
                     time.time() - start)
    fresh[path] = entry
    headers[path] = tuple(entry[2:])
  if read or len(fresh) != len(cached):
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    tmp = f"{cache_path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
      json.dump(fresh, f)
    os.replace(tmp, cache_path)
  logging.info("Checked %d image headers in %.1f s (%d read, %d from the cache %s).",
               len(files), time.time() - start, read, len(files) - read, cache_path)
  return headers


def _files_at_least(files, patch_size, pattern):
  """{path: (format, height, width)} of the files whose short side is >= patch_size."""
  kept, too_small, largest_short_side = {}, [], 0
  for path, (image_format, height, width) in checked_headers(files, pattern).items():
    if image_format not in _TF_DECODABLE_FORMATS:
      raise image_utils.ImageError(
          f"{path} is {image_format}; training reads only "
          f"{', '.join(_TF_DECODABLE_FORMATS)} (convert it to PNG).")
    short_side = min(height, width)
    largest_short_side = max(largest_short_side, short_side)
    if short_side >= patch_size:
      kept[path] = (image_format, height, width)
    else:
      too_small.append(path)
  if not kept:
    raise ValueError(
        f"All {len(files)} images matching {pattern!r} are smaller than patch_size="
        f"{patch_size} (largest short side: {largest_short_side} px).")
  if too_small:
    logging.warning("Dropped %d of %d images smaller than %d px (e.g. %s).", len(too_small),
                    len(files), patch_size, too_small[0])
  return kept


class TooManyBadImagesError(image_utils.ImageError):
  """More than the allowed share of the training files could not be decoded."""


class TrainInput:
  """Batches of random square crops for training, and the files skipped as undecodable.

  Files are read in a pseudo-random order that is a pure function of (seed, position): position
  p is the (p mod n)-th file of the permutation of epoch p // n (tf.random.experimental.
  index_shuffle). So a resumed run continues the order where it stopped (`start_position`),
  and a file whose pixel data cannot be decoded, which tf.data can only drop, is named: its
  position is missing from the batch's positions and maps back to the file.

  Attributes:
    files: the training files (short side >= patch_size).
    skipped: the undecodable files met so far.
  """

  def __init__(self, name_or_glob, patch_size, batch_size, seed=None, repeat=True,
               random_flip=False, max_bad_share=0.01, decoded_cache_mib=1024,
               jpeg_crop_decode=True):
    """Checks every file header (see train_dataset for the other arguments).

    max_bad_share: `check` raises TooManyBadImagesError once more than this share of the
      files turned out to be undecodable.
    decoded_cache_mib: a set without JPEGs whose decoded pixels fit in this many MiB is
      decoded once and kept in memory (PNG decoding costs more than a small model's step);
      0 turns the cache off. JPEGs decode only the crop, so they are never cached.
    jpeg_crop_decode: False decodes whole JPEGs before cropping (for comparison).
    """
    pattern = datasets.dataset_glob(name_or_glob)
    self._headers = _files_at_least(list_images(pattern), patch_size, pattern)
    self.files = list(self._headers)
    logging.info("Training on %d images from %r, %dx%d crops, batch %d.", len(self.files),
                 pattern, patch_size, patch_size, batch_size)
    self.max_bad_share = max_bad_share
    self.skipped = []
    self.batch_size = batch_size
    self._patch_size, self._repeat, self._random_flip = patch_size, repeat, random_flip
    self._jpeg_crop_decode = jpeg_crop_decode
    self._seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1) if seed is None else seed
    self._next_position = 0
    decoded_mib = sum(h * w * 3 for _, h, w in self._headers.values()) / 2**20
    self.cached = (0 < decoded_mib <= decoded_cache_mib and
                   all(image_format != "JPEG" for image_format, _, _ in self._headers.values()))
    self._decoded = None  # with the cache: the decoded images (None for undecodable ones)

  def dataset(self, start_position=0, batch_size=None, shard=(0, 1)):
    """Batches from file position `start_position` on (a resumed run: steps * batch_size).

    tf.data.Dataset of {"image": float32 (B, P, P, 3) in [-0.5, 0.5], "position": int64 (B,)};
    pass each global batch's positions to `check`. B is batch_size (default: the global batch
    size, self.batch_size). shard=(i, n): the i-th of n input pipelines (workers) takes the
    i-th n-th of each global batch's positions.
    """
    self._next_position = start_position
    batch_size = batch_size or self.batch_size
    shard_index, num_shards = shard
    patch_size, seed = self._patch_size, self._seed
    files = tf.constant(self.files)
    if self.cached and self._decoded is None:
      self._decoded = self._decode_all()
    heights, widths = (tf.constant([header[i] for header in self._headers.values()])
                       for i in (1, 2))

    def cached_crop(index, crop_seed):
      top, left = _random_window(tf.gather(heights, index), tf.gather(widths, index),
                                 patch_size, crop_seed)
      crop = tf.numpy_function(
          lambda i, t, l: self._decoded[i][t:t + patch_size, l:l + patch_size],
          [index, top, left], tf.uint8, stateful=False)
      return tf.ensure_shape(crop, (patch_size, patch_size, 3))

    def load_crop(position):
      index = self._file_index(position)
      crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(
          tf.stack([tf.constant(seed, tf.int64), position]), 2))
      if self.cached:
        crop = cached_crop(index, crop_seed)
      else:
        crop = _random_crop(tf.io.read_file(tf.gather(files, index)), patch_size, crop_seed,
                            self._jpeg_crop_decode)
      if self._random_flip:
        crop = tf.image.stateless_random_flip_left_right(crop, seed=flip_seed)
      return {"image": image_utils.to_model_input(crop), "position": position}

    positions = (tf.data.Dataset.counter(start_position) if self._repeat
                 else tf.data.Dataset.range(start_position, start_position + len(self.files)))
    if num_shards > 1:
      share = self.batch_size // num_shards
      positions = positions.filter(lambda p: (p % self.batch_size) // share == shard_index)
    if self.cached and self.skipped:
      decodable = tf.constant([image is not None for image in self._decoded])
      positions = positions.filter(lambda p: tf.gather(decodable, self._file_index(p)))
    # Ordered output (deterministic=True) keeps positions increasing, so a gap is a skipped file.
    crops = positions.map(load_crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return (crops.ignore_errors().batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))

  def _decode_all(self):
    start, decoded = time.time(), []
    for path in self.files:
      try:
        decoded.append(tf.io.decode_image(tf.io.read_file(path), channels=3,
                                          expand_animations=False).numpy())
      except tf.errors.InvalidArgumentError:
        decoded.append(None)
        self._skip(path)
    self._check_share()
    logging.info("Decoded the %d training images into memory (%.0f MiB, %.1f s).",
                 len(self.files), sum(i.nbytes for i in decoded if i is not None) / 2**20,
                 time.time() - start)
    return decoded

  def _file_index(self, position):
    num_files = len(self.files)
    epoch, index = position // num_files, position % num_files
    return tf.random.experimental.index_shuffle(
        index, tf.stack([tf.constant(self._seed, tf.int64), epoch]),
        num_files - 1)

  def check(self, positions):
    """Logs the files dropped before this batch (positions: its increasing positions).

    Raises:
      TooManyBadImagesError: more than max_bad_share of the files are undecodable.
    """
    positions = [int(p) for p in np.asarray(positions)]
    missing = sorted(set(range(self._next_position, positions[-1] + 1)) - set(positions))
    self._next_position = positions[-1] + 1
    for position in missing:
      self._skip(self.files[int(self._file_index(tf.constant(position, tf.int64)))])
    self._check_share()

  def _skip(self, path):
    if path not in self.skipped:
      self.skipped.append(path)
      logging.warning("Skipping %s: its image data cannot be decoded (%d undecodable of %d "
                      "files so far).", path, len(self.skipped), len(self.files))

  def _check_share(self):
    if len(self.skipped) > self.max_bad_share * len(self.files):
      raise TooManyBadImagesError(
          f"{len(self.skipped)} of {len(self.files)} training files cannot be decoded, more "
          f"than max_bad_share={self.max_bad_share}: {', '.join(self.skipped[:10])}"
          f"{' ...' if len(self.skipped) > 10 else ''}. Replace or remove them.")


def _random_window(height, width, patch_size, seed):
  """(top, left) of a random patch_size^2 window of a height x width image."""
  top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  top = tf.random.stateless_uniform((), top_seed, 0, height - patch_size + 1, tf.int32)
  left = tf.random.stateless_uniform((), left_seed, 0, width - patch_size + 1, tf.int32)
  return top, left


def _random_crop(contents, patch_size, seed, jpeg_crop_decode=True):
  """A random patch_size^2 RGB crop of an encoded image; JPEGs decode only the crop."""
  def jpeg_crop():
    shape = tf.image.extract_jpeg_shape(contents)
    top, left = _random_window(shape[0], shape[1], patch_size, seed)
    return tf.image.decode_and_crop_jpeg(contents, tf.stack([top, left, patch_size, patch_size]),
                                         channels=3)

  def full_decode_crop():
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    top, left = _random_window(tf.shape(image)[0], tf.shape(image)[1], patch_size, seed)
    return image[top:top + patch_size, left:left + patch_size]

  if jpeg_crop_decode:
    is_jpeg = tf.strings.substr(contents, 0, 3) == b"\xff\xd8\xff"
    crop = tf.cond(is_jpeg, jpeg_crop, full_decode_crop)
  else:
    crop = full_decode_crop()
  return tf.ensure_shape(crop, (patch_size, patch_size, 3))


def train_dataset(name_or_glob, patch_size, batch_size, seed=None, repeat=True,
                  random_flip=False, max_bad_share=0.01, decoded_cache_mib=1024):
  """Batches of random square crops for training (TrainInput's images only).

  Each step reads `batch_size` files in shuffled order and takes one random crop of each.
  Images whose short side is below `patch_size` are dropped (logged); files whose pixel data
  cannot be decoded are skipped (TrainInput names them; here they are dropped silently).

  Args:
    name_or_glob: dataset name (configs.DATASETS) or file glob; PNG/JPEG/BMP/GIF files.
    patch_size: side of the square crops.
    batch_size: crops per batch; an incomplete last batch (repeat=False) is dropped.
    seed: int for a reproducible order and crops; None for fresh randomness.
    repeat: cycle forever, reshuffling every epoch (else one pass).
    random_flip: also flip crops left-right at random.
    max_bad_share, decoded_cache_mib: see TrainInput.

  Returns:
    tf.data.Dataset of float32 (batch_size, patch_size, patch_size, 3) in [-0.5, 0.5].

  Raises:
    ValueError: no files, or all too small; ImageError (a ValueError) naming an unreadable file.
  """
  train_input = TrainInput(name_or_glob, patch_size, batch_size, seed=seed, repeat=repeat,
                           random_flip=random_flip, max_bad_share=max_bad_share,
                           decoded_cache_mib=decoded_cache_mib)
  return train_input.dataset().map(lambda batch: batch["image"])


def _center_crop(image, height, width):
  top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
  return image[top:top + height, left:left + width]


def eval_dataset(name_or_glob, center_crop=None):
  """Whole images (or center crops) one at a time, in sorted file order.

  Args:
    name_or_glob: dataset name (configs.DATASETS) or file glob.
    center_crop: None for full images (any size), an int for square crops, or
      (height, width).

  Returns:
    tf.data.Dataset of dicts {"image": float32 (1, H, W, 3) in [-0.5, 0.5],
    "name": file name without extension, "path": the file}.

  Raises:
    ValueError: no files, or two files share a name (per-image results are keyed by name);
      ImageError (a ValueError) for a missing or unrecognisable file or one smaller than
      center_crop. Damaged pixel data fails when iteration reaches it (a tf.errors error
      whose message names the file).
  """
  files = list_images(name_or_glob)
  if isinstance(center_crop, int):
    center_crop = (center_crop, center_crop)
  for path in files:
    _, height, width = _read_header(path)
    if center_crop and (height < center_crop[0] or width < center_crop[1]):
      raise image_utils.ImageError(
          f"{path} is {width}x{height} (WxH), smaller than the center crop "
          f"{center_crop[1]}x{center_crop[0]}.")
  names = [os.path.splitext(os.path.basename(path))[0] for path in files]
  duplicates = sorted(name for name, count in collections.Counter(names).items() if count > 1)
  if duplicates:
    raise ValueError(f"Image names must be unique within a dataset; repeated: {duplicates} "
                     f"(in {datasets.dataset_glob(name_or_glob)!r}).")

  def generate():
    for path, name in zip(files, names):
      image = image_utils.read_image(path)
      if center_crop:
        image = _center_crop(image, *center_crop)
      yield image, name, path

  images = tf.data.Dataset.from_generator(generate, output_signature=(
      tf.TensorSpec((None, None, 3), tf.uint8),
      tf.TensorSpec((), tf.string),
      tf.TensorSpec((), tf.string)))
  return images.map(lambda image, name, path: {
      "image": image_utils.to_model_input(image)[tf.newaxis], "name": name, "path": path})
