"""Training-input throughput on this machine: crops/s of data_lib.TrainInput, and how long the
header check of the file list takes without and with its cache.

COCO-sized JPEGs (640x480, quality 90, like COCO 2017's median image) are made from the bundled
photos (`train` if built, else `embedded_train`) by random crops and rescales. Variants, timed
round-robin in one run (medians over rounds; each round times a fresh iterator, so nothing
prefetched during another variant's turn is counted):
  jpeg_full_decode   whole JPEG decoded, then cropped (the pipeline before decode_and_crop_jpeg)
  jpeg_crop_decode   tf.image.decode_and_crop_jpeg: only the crop's blocks are decoded
  png                the bundled PNGs decoded for every crop
  png_cached         the same PNGs decoded once into memory (TrainInput's decoded cache)
At batch 8, a pipeline of C crops/s can feed a GPU up to C / 8 training steps/s.

  python -m benchmarks.input_pipeline [--files 300] [--rounds 5] [--batches 4] [--out R.json]
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
from PIL import Image

import configs
from benchmarks import reporting
from common import data_lib, image_utils

COCO_TRAIN_FILES = 118287  # COCO 2017 train images


def make_coco_like(directory, count, seed=0):
  """`count` 640x480 JPEGs cut and rescaled from the bundled photos."""
  try:
    sources = data_lib.list_images("train")
  except ValueError:
    sources = data_lib.list_images("embedded_train")
  photos = [image_utils.read_image(p) for p in sources]
  rng = np.random.default_rng(seed)
  for i in range(count):
    photo = Image.fromarray(photos[i % len(photos)])
    scale = rng.uniform(1.0, 2.0)
    photo = photo.resize((max(640, int(photo.width * scale)), max(480, int(photo.height * scale))))
    left, top = rng.integers(0, photo.width - 639), rng.integers(0, photo.height - 479)
    photo.crop((left, top, left + 640, top + 480)).save(
        os.path.join(directory, f"{i:06d}.jpg"), quality=90)
  return sources


def header_check_seconds(pattern, cache_dir):
  """(seconds without the cache, seconds with it) for the header check of `pattern`."""
  configs.CACHE_DIR = cache_dir
  files = data_lib.list_images(pattern)
  times = []
  for _ in range(2):  # the first run fills the cache, the second reads it
    start = time.perf_counter()
    data_lib.checked_headers(files, pattern)
    times.append(time.perf_counter() - start)
  return times, len(files)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--files", type=int, default=300, help="COCO-like JPEGs to make")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--batches", type=int, default=8, help="batches timed per round")
  parser.add_argument("--batchsize", type=int, default=8)
  parser.add_argument("--patchsize", type=int, default=256)
  parser.add_argument("--out", help="also write the result as JSON here")
  args = parser.parse_args()
  if min(args.files, args.rounds, args.batches, args.batchsize, args.patchsize) < 1:
    parser.error("--files, --rounds, --batches, --batchsize and --patchsize must be >= 1")

  with tempfile.TemporaryDirectory() as work:
    jpeg_dir = os.path.join(work, "coco")
    os.mkdir(jpeg_dir)
    png_sources = make_coco_like(jpeg_dir, args.files)
    jpegs = os.path.join(jpeg_dir, "*.jpg")
    (uncached_s, cached_s), num_files = header_check_seconds(jpegs, os.path.join(work, "cache"))
    png_glob = os.path.join(os.path.dirname(png_sources[0]), "*.png")
    inputs = {
        "jpeg_full_decode": dict(name_or_glob=jpegs, jpeg_crop_decode=False),
        "jpeg_crop_decode": dict(name_or_glob=jpegs),
        "png": dict(name_or_glob=png_glob, decoded_cache_mib=0),
        "png_cached": dict(name_or_glob=png_glob),
    }
    datasets = {}
    for name, kwargs in inputs.items():
      train_input = data_lib.TrainInput(patch_size=args.patchsize, batch_size=args.batchsize,
                                        seed=0, **kwargs)
      datasets[name] = train_input.dataset()
      next(iter(datasets[name]))  # warm-up (and, cached, the decoding of every file)
    rates = {name: [] for name in inputs}
    for _ in range(args.rounds):
      for name, dataset in datasets.items():
        # A fresh iterator per round: no crops prefetched while other variants were timed.
        start = time.perf_counter()
        iterator = iter(dataset)
        for _ in range(args.batches):
          next(iterator)
        rates[name].append(args.batches * args.batchsize / (time.perf_counter() - start))
        del iterator

  crops_per_s = {name: statistics.median(r) for name, r in rates.items()}
  result = dict(
      cpu_count=os.cpu_count(), batchsize=args.batchsize, patchsize=args.patchsize,
      coco_like_files=num_files, png_files=len(png_sources),
      header_check=dict(uncached_s=uncached_s, cached_s=cached_s,
                        uncached_per_file_ms=1000 * uncached_s / num_files,
                        cached_per_file_ms=1000 * cached_s / num_files,
                        coco_train_estimate_uncached_s=uncached_s / num_files * COCO_TRAIN_FILES,
                        coco_train_estimate_cached_s=cached_s / num_files * COCO_TRAIN_FILES),
      crops_per_s=crops_per_s,
      feeds_steps_per_s_at_batch=dict((name, c / args.batchsize) for name, c in
                                      crops_per_s.items()),
      jpeg_crop_over_full_decode=crops_per_s["jpeg_crop_decode"] / crops_per_s["jpeg_full_decode"],
      png_cached_over_uncached=crops_per_s["png_cached"] / crops_per_s["png"])
  reporting.publish(result, args.out)


if __name__ == "__main__":
  main()
