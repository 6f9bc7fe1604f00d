"""Classic-codec R-D baselines on the same images as our models (pip-installable codecs only).

  python -m common.bench --dataset embedded_eval --codecs jpeg420,hevc444 --out_dir results/bench

For every codec, a fixed quality sweep (low to high rate) is run on every image; per point
it records the real size of the encoded bytes (containers and headers counted: bpp =
8 * bytes / (H * W)), PSNR-RGB and MS-SSIM of the 8-bit decoded image, and encode/decode
wall time. Writes OUT_DIR/<codec>.json (CompressAI-format curve, mean over images per point)
and OUT_DIR/per_image/<codec>.json.

Settings follow the fairness notes of the codec survey: JPEG 2000 with the colour transform
on (mct=1), PSNR-friendly HEVC (fixed QP, BT.601 full-range YCbCr as BPG does). Known
limits, also stated in each curve's description: AVIF runs libavif/aom with its default
tuning (imagecodecs exposes no tune=psnr, which would save about 10 % rate); JPEG XL is
butteraugli-driven, so its PSNR is low by design; WebP lossy is always 4:2:0.

Timing: one process runs everything, each codec is warmed up once, and each call is timed
once with time.perf_counter. Library codecs run single-threaded. HEVC times include starting
an ffmpeg process (tens of ms, dominating its decode time). With --jobs > 1 images run
concurrently and share the CPU, so use --jobs 1 for timings you want to quote.
"""

import argparse
import concurrent.futures
import dataclasses
import glob
import io
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Tuple

from absl import logging
import imagecodecs
import imageio_ffmpeg
import numpy as np
import PIL
from PIL import features
from PIL import Image

from common import cli, datasets
from common import image_utils
from common import metrics
from common import results


@dataclasses.dataclass(frozen=True)
class Codec:
  """One codec configuration; `encode(rgb, param) -> bytes`, `decode(bytes, (h, w)) -> rgb`."""
  key: str
  label: str
  param_name: str
  sweep: Tuple[Any, ...]  # from low to high rate
  settings: str
  encode: Callable[[np.ndarray, Any], bytes]
  decode: Callable[[bytes, Tuple[int, int]], np.ndarray]


def _pillow_encode(rgb, fmt, **options):
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, fmt, **options)
  return buffer.getvalue()


def _pillow_decode(data, shape):
  del shape  # the bitstream carries it
  with Image.open(io.BytesIO(data)) as img:
    return np.asarray(img.convert("RGB"))


# BPG's colour transform (JPEG/JFIF, BT.601 full range), done in float64 and rounded. Doing
# it here instead of in ffmpeg keeps the top of the curve: ffmpeg's own 8-bit
# rgb24 -> yuv444p -> rgb24 round trip tops out near 48.6 dB, this one near 53-54 dB.
_RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114],
                          [-0.168736, -0.331264, 0.5],
                          [0.5, -0.418688, -0.081312]])
_YCBCR_TO_RGB = np.array([[1.0, 0.0, 1.402],
                          [1.0, -0.344136, -0.714136],
                          [1.0, 1.772, 0.0]])
_CHROMA_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_ycbcr_planes(rgb):
  """uint8 (H, W, 3) RGB -> uint8 (3, H, W) planes Y, Cb, Cr (BT.601 full range)."""
  ycc = rgb.astype(np.float64) @ _RGB_TO_YCBCR.T + _CHROMA_OFFSET
  return np.clip(np.round(ycc), 0, 255).astype(np.uint8).transpose(2, 0, 1)


def ycbcr_planes_to_rgb(planes):
  """Inverse of rgb_to_ycbcr_planes."""
  ycc = planes.transpose(1, 2, 0).astype(np.float64) - _CHROMA_OFFSET
  return np.clip(np.round(ycc @ _YCBCR_TO_RGB.T), 0, 255).astype(np.uint8)


_FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
_FFMPEG_QUIET = (_FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error")


def _run_ffmpeg(args, data):
  proc = subprocess.run(_FFMPEG_QUIET + tuple(args), input=data, capture_output=True,
                        check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"ffmpeg {' '.join(args)} failed ({proc.returncode}): "
                       f"{proc.stderr.decode(errors='replace').strip()}")
  return proc.stdout


def _hevc_encode(rgb, qp, preset="veryslow"):
  h, w, _ = rgb.shape
  # Fixed QP, intra only, veryslow with tune ssim (as bpgenc -m 8 sets up x265); info=0
  # drops x265's ~2 KB SEI text block. The stream carries no range/matrix VUI: the decoder
  # side of this bench knows it is BT.601 full range, as a BPG header would say in 2 bytes.
  x265_params = f"qp={qp}:keyint=1:info=0:pools=1:frame-threads=1:log-level=error"
  return _run_ffmpeg(
      ["-f", "rawvideo", "-pix_fmt", "yuv444p", "-s", f"{w}x{h}", "-i", "pipe:",
       "-c:v", "libx265", "-preset", preset, "-tune", "ssim", "-x265-params", x265_params,
       "-f", "hevc", "pipe:"],
      rgb_to_ycbcr_planes(rgb).tobytes())


def _hevc_decode(data, shape):
  h, w = shape
  raw = _run_ffmpeg(["-threads", "1", "-f", "hevc", "-i", "pipe:",
                     "-f", "rawvideo", "-pix_fmt", "yuv444p", "pipe:"], data)
  if len(raw) != 3 * h * w:
    raise RuntimeError(f"HEVC decode gave {len(raw)} bytes, expected {3 * h * w} ({h}x{w}).")
  return ycbcr_planes_to_rgb(np.frombuffer(raw, np.uint8).reshape(3, h, w))


_PIL = f"Pillow {PIL.__version__}"
_JPEG_LIB = f"libjpeg-turbo {features.version_feature('libjpeg_turbo')}"
_JPEG_QUALITIES = (5, 10, 20, 35, 50, 70, 85, 95)

CODECS = {c.key: c for c in (
    Codec("jpeg420", "JPEG 4:2:0", "quality", _JPEG_QUALITIES,
          f"{_PIL} / {_JPEG_LIB}, subsampling 4:2:0, optimize=True",
          lambda rgb, q: _pillow_encode(rgb, "JPEG", quality=q, subsampling=2, optimize=True),
          _pillow_decode),
    Codec("jpeg444", "JPEG 4:4:4", "quality", _JPEG_QUALITIES,
          f"{_PIL} / {_JPEG_LIB}, subsampling 4:4:4, optimize=True",
          lambda rgb, q: _pillow_encode(rgb, "JPEG", quality=q, subsampling=0, optimize=True),
          _pillow_decode),
    Codec("webp", "WebP", "quality", (0, 10, 25, 45, 65, 80, 90, 97),
          f"{_PIL} / libwebp {features.version('webp')}, lossy (always 4:2:0), method=6",
          lambda rgb, q: _pillow_encode(rgb, "WEBP", quality=q, method=6),
          _pillow_decode),
    # Pillow's "rates" are compression ratios vs. 24-bit RGB: bpp ~ 24 / ratio (JP2 box
    # container included in the size).
    Codec("jpeg2000", "JPEG 2000", "compression_ratio", (192, 128, 80, 48, 32, 20, 12, 8),
          f"{_PIL} / OpenJPEG {features.version('jpg_2000')}, 9/7 irreversible, mct=1 (ICT), "
          "rate mode, JP2 container",
          lambda rgb, r: _pillow_encode(rgb, "JPEG2000", quality_mode="rates",
                                        quality_layers=[r], irreversible=True, mct=1),
          _pillow_decode),
    Codec("avif", "AVIF 4:4:4", "quality", (15, 25, 35, 45, 55, 65, 75, 85),
          f"imagecodecs {imagecodecs.__version__} / {imagecodecs.avif_version()} + aom, "
          "YUV 4:4:4 8-bit, speed 4, default tune (not PSNR-tuned), AVIF container",
          lambda rgb, q: imagecodecs.avif_encode(rgb, q, speed=4, pixelformat="yuv444",
                                                 codec="aom", numthreads=1),
          lambda data, shape: imagecodecs.avif_decode(data, numthreads=1)),
    Codec("hevc444", "HEVC-intra 4:4:4 (BPG stand-in)", "qp", (47, 42, 37, 32, 27, 22, 17),
          "ffmpeg libx265 (imageio-ffmpeg {version}), 8-bit YCbCr 4:4:4 BT.601 full range "
          "converted in numpy, fixed QP, keyint=1, preset veryslow, tune ssim, info=0, "
          "raw Annex-B .hevc stream size (no container; not real bpgenc)".format(
              version=imageio_ffmpeg.__version__),
          _hevc_encode, _hevc_decode),
    # For quick comparisons (make demo): 2-3x faster to encode, +4.7% BD-rate vs hevc444
    # (embedded_eval, PSNR).
    Codec("hevc444fast", "HEVC-intra 4:4:4 fast (BPG stand-in)", "qp",
          (47, 42, 37, 32, 27, 22, 17),
          "as hevc444 but x265 preset fast (imageio-ffmpeg {version}); raw Annex-B .hevc "
          "stream size (no container; not real bpgenc)".format(version=imageio_ffmpeg.__version__),
          lambda rgb, qp: _hevc_encode(rgb, qp, preset="fast"), _hevc_decode),
    Codec("jxl", "JPEG XL", "distance", (12.0, 8.0, 5.0, 3.5, 2.4, 1.6, 1.0, 0.6),
          f"imagecodecs {imagecodecs.__version__} / {imagecodecs.jpegxl_version()}, "
          "effort 7, VarDCT (butteraugli-tuned: low PSNR by design), codestream",
          lambda rgb, d: imagecodecs.jpegxl_encode(rgb, distance=d, effort=7, numthreads=1),
          lambda data, shape: imagecodecs.jpegxl_decode(data, numthreads=1)),
)}

_warm = set()
_warm_lock = threading.Lock()


def _warm_up(codec):
  """Encodes/decodes a tiny image once so library and process start-up is not timed."""
  with _warm_lock:
    if codec.key in _warm:
      return
    _warm.add(codec.key)
  tiny = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  codec.decode(codec.encode(tiny, codec.sweep[len(codec.sweep) // 2]), (64, 64))


def bench_image(codec, rgb, instance_id, params=None):
  """Per-image records of one codec on one uint8 RGB image (params: default codec.sweep)."""
  _warm_up(codec)
  h, w, _ = rgb.shape
  records = []
  for param in codec.sweep if params is None else params:
    start = time.perf_counter()
    data = bytes(codec.encode(rgb, param))
    enc_time = time.perf_counter() - start
    start = time.perf_counter()
    decoded = np.asarray(codec.decode(data, (h, w)))
    dec_time = time.perf_counter() - start
    if decoded.shape != rgb.shape or decoded.dtype != np.uint8:
      raise RuntimeError(f"{codec.key} {codec.param_name}={param} on {instance_id}: decoded "
                         f"{decoded.dtype} {decoded.shape}, expected uint8 {rgb.shape}.")
    msssim = metrics.ms_ssim_rgb(rgb, decoded)
    records.append({
        "instance_id": instance_id,
        "bpp_estimated": None,  # classic codecs have no rate model; bytes are the truth
        "bpp_actual": 8.0 * len(data) / (h * w),
        "psnr": metrics.psnr_rgb(rgb, decoded),
        "msssim": msssim,
        "msssim_db": results.ms_ssim_db(msssim),
        "enc_time_s": enc_time,
        "dec_time_s": dec_time,
        "num_bytes": len(data),
        "height": h,
        "width": w,
        "codec": codec.key,
        "name": codec.label,
        codec.param_name: param,
    })
  return records


def describe(codec, num_images, images_arg):
  return (f"{codec.label}: {codec.settings}. bpp from real encoded bytes; PSNR-RGB/MS-SSIM "
          f"on 8-bit RGB; mean over {num_images} images ({images_arg}); enc/dec seconds "
          "per image, single timed run after warm-up.")


def parse_codecs(text):
  keys = [k.strip() for k in text.split(",") if k.strip()]
  unknown = [k for k in keys if k not in CODECS]
  if unknown or not keys:
    raise ValueError(f"Unknown codec(s) {unknown or text!r}; known: {', '.join(CODECS)}.")
  return [CODECS[k] for k in keys]


def find_images(images_arg):
  pattern = datasets.dataset_glob(images_arg)
  paths = sorted(glob.glob(pattern))
  if not paths:
    raise ValueError(f"No images match {pattern!r} (from --dataset {images_arg!r}).")
  ids = [os.path.splitext(os.path.basename(p))[0] for p in paths]
  if len(set(ids)) != len(ids):
    raise ValueError(f"Image file names under {pattern!r} are not unique; instance ids "
                     "are file stems.")
  return list(zip(ids, paths))


def run(images_arg, codecs, out_dir, jobs=1):
  """Runs every codec sweep on every image and writes the result files; returns the curves."""
  images = [(instance_id, image_utils.read_image(path))
            for instance_id, path in find_images(images_arg)]
  tasks = [(codec, instance_id, rgb) for codec in codecs for instance_id, rgb in images]
  records = {codec.key: {} for codec in codecs}
  with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
    futures = {pool.submit(bench_image, codec, rgb, instance_id): (codec, instance_id)
               for codec, instance_id, rgb in tasks}
    for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
      codec, instance_id = futures[future]
      image_records = future.result()
      records[codec.key][instance_id] = image_records
      logging.info("[%d/%d] %s on %s: %s", done, len(tasks), codec.key, instance_id,
                   ", ".join(f"{r['bpp_actual']:.3f} bpp / {r['psnr']:.2f} dB"
                             for r in image_records))
  curves = {}
  for codec in codecs:
    # Same image order in every run; one R-D point = one sweep parameter over all images.
    per_image = [r for instance_id, _ in images for r in records[codec.key][instance_id]]
    points = [[r for r in per_image if r[codec.param_name] == p] for p in codec.sweep]
    results.write_per_image(os.path.join(out_dir, "per_image", f"{codec.key}.json"), per_image)
    curve = results.aggregate(points, codec.label, describe(codec, len(images), images_arg),
                              param_key=codec.param_name)
    results.write_json(os.path.join(out_dir, f"{codec.key}.json"), curve)
    curves[codec.key] = curve
  return curves


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog="python -m common.bench", description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", "--images", required=True,
                      help="dataset name from configs.DATASETS (e.g. embedded_eval) or a glob "
                      "(--images: deprecated spelling)")
  parser.add_argument("--codecs", default=",".join(CODECS),
                      help=f"comma-separated subset of: {','.join(CODECS)} (default: all)")
  parser.add_argument("--out_dir", "--out", required=True,
                      help="output folder for the JSON results (--out: deprecated spelling)")
  parser.add_argument("--jobs", type=int, default=1,
                      help="images/codecs run concurrently (default 1; >1 distorts timings)")
  args = parser.parse_args(argv)
  cli.warn_deprecated(argv, {"--images": "--dataset", "--out": "--out_dir"})
  if args.jobs < 1:
    parser.error("--jobs must be >= 1")
  try:
    codecs = parse_codecs(args.codecs)
  except ValueError as e:
    parser.error(str(e))
  logging.set_verbosity(logging.INFO)
  # Metrics run a few small TF ops per point; more TF threads would only contend with the codecs.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  with cli.user_errors():  # bad --dataset (unknown name, empty glob, unreadable image), --out_dir
    curves = run(args.dataset, codecs, args.out_dir, args.jobs)
  for key, curve in curves.items():
    res = curve["results"]
    print(f"{key:9s} bpp {min(res['bpp']):.3f}-{max(res['bpp']):.3f}  "
          f"PSNR {min(res['psnr-rgb']):.2f}-{max(res['psnr-rgb']):.2f} dB  "
          f"enc {np.mean(res['encoding_time']):.3f} s  dec {np.mean(res['decoding_time']):.3f} s"
          f"  -> {os.path.join(args.out_dir, key + '.json')}")


if __name__ == "__main__":
  sys.exit(main())
