"""Evaluation with real bitstreams: per-image rate (estimated and actual), distortion, timing
and FLOPs, written as per-image JSON plus a CompressAI-format aggregate per experiment."""
import fcntl
import glob
import os
import re
import statistics
import time

from absl import logging

from common import codec, data_lib, file_io, image_utils, metrics, profile_utils, results

DECODE_STAGES = ("entropy_decoding", "h_s", "g_s")


# Profiled FLOPs per model identity and padded image shape, shared by every run evaluated in
# this process: the runs of one sweep share their transforms.
_FLOPS_CACHE = {}


def padded_shape(model, height, width):
  """The (1, H, W, 3) shape an image is padded to before the analysis transform."""
  factor = model.downsample_factor
  return (1, -(-height // factor) * factor, -(-width // factor) * factor, 3)


def module_flops_per_pixel(model, height, width, cache):
  """FLOPs per image pixel of each module at this image size (cached per padded size)."""
  padded = padded_shape(model, height, width)
  if padded not in cache:
    cache[padded] = {name: profile_utils.count_flops(layer, shape)
                     for name, (layer, shape) in model.profiled_transforms(padded).items()}
  flops = {f"flops_per_pixel_{k}": v / (height * width) for k, v in cache[padded].items()}
  flops["flops_per_pixel_decode"] = sum(v for k, v in flops.items()
                                        if k.endswith(("_g_s", "_h_s")))
  return flops


def timed(fn, repeats, warmup=1):
  """(last result, median seconds) of `repeats` calls after `warmup` untimed calls."""
  for _ in range(warmup):
    fn()
  seconds, result = [], None
  for _ in range(repeats):
    start = time.perf_counter()
    result = fn()
    seconds.append(time.perf_counter() - start)
  return result, statistics.median(seconds)


def timed_decode(coder, data, repeats, warmup=1):
  """(reconstruction, median total seconds, {stage: median seconds}) of decoding `data`."""
  stage_times = {stage: [] for stage in DECODE_STAGES}

  def decode():
    timer = codec.Timer()
    reconstruction = coder.decode(data, timer)
    for stage in DECODE_STAGES:
      stage_times[stage].append(timer.seconds[stage])
    return reconstruction

  reconstruction, total = timed(decode, repeats, warmup)
  return reconstruction, total, {stage: statistics.median(times[warmup:])
                                 for stage, times in stage_times.items()}


def evaluate_image(coder, image, timing_repeats=1, flops_cache=None, latents=None, warmup=1,
                   timer=None):
  """One image through encode -> file bytes -> decode, with metrics.

  `latents` (e.g. from iterative inference) are coded instead of the encoder's; enc_time_s is
  then the time to quantize and range-code them. The estimated rate and distortion are those of
  the latents that were coded. `warmup` untimed encodes and decodes precede the timed ones
  (0 once this image size has run). FLOPs are cached in `flops_cache`, by default per model
  identity for the whole process. timer (codec.Timer), if given, receives the wall time of
  each step: encode, estimate, decode, metrics, flops (benchmarks/eval_split.py).

  Returns (record, uint8 reconstruction decoded from the file, file bytes).
  """
  model = coder.model
  height, width = image.shape[:2]
  given_latents = latents

  def encode():
    coded = coder.latents(image) if given_latents is None else given_latents
    return coded, coder.encode_latents(coded, height, width)

  timer = timer or codec.Timer()
  with timer("encode"):
    (latents, data), enc_time = timed(encode, timing_repeats, warmup)
  with timer("estimate"):
    estimated = {k: float(v) for k, v in model.estimate_rates(latents, height * width).items()}
  with timer("decode"):
    reconstruction, dec_time, stage_seconds = timed_decode(coder, data, timing_repeats, warmup)
  with timer("metrics"):
    psnr = metrics.psnr_rgb(image, reconstruction)
    msssim = metrics.ms_ssim_rgb(image, reconstruction)
  if flops_cache is None:
    flops_cache = _FLOPS_CACHE.setdefault(coder.identity, {})
  with timer("flops"):
    flops = module_flops_per_pixel(model, height, width, flops_cache)
  record = dict(
      bpp_estimated=estimated["bpp"], bpp_coded=estimated["bpp_coded"],
      bpp_actual=8 * len(data) / (height * width),
      file_bytes=len(data), psnr=psnr, msssim=msssim,
      msssim_db=results.ms_ssim_db(msssim), enc_time_s=enc_time, dec_time_s=dec_time,
      height=height, width=width,
      **{f"dec_time_{stage}_s": seconds for stage, seconds in stage_seconds.items()},
      **flops)
  return record, reconstruction, data


def dataset_label(name_or_glob):
  """A one-level folder name for a dataset name or a glob/path ('data/x/*.png' -> 'data_x_png')."""
  return re.sub(r"[^A-Za-z0-9.+=-]+", "_", name_or_glob).strip("_.") or "dataset"


def result_paths(results_dir, dataset, workdir):
  """(per-image JSON path, experiment aggregate path) for a run directory."""
  xid = os.path.basename(os.path.dirname(os.path.abspath(workdir)))
  run = os.path.basename(os.path.abspath(workdir))
  folder = os.path.join(results_dir, dataset_label(dataset), xid)
  return os.path.join(folder, f"{run}.json"), os.path.join(folder, "aggregate.json")


def check_outputs(results_dir, dataset, workdir, bitstream_dir=None):
  """Fails before any work if the result (or bitstream) folder cannot be written."""
  per_image_path, _ = result_paths(results_dir, dataset, workdir)
  for folder in (os.path.dirname(per_image_path), bitstream_dir):
    if folder:
      results.check_writable(folder)


def evaluate_workdir(coder, config, workdir, dataset, results_dir, timing_repeats=1,
                     max_images=None, bitstream_dir=None):
  """Evaluates every image of `dataset`; writes per-image results and refreshes the aggregate.

  An image that cannot be read or coded is skipped with a warning; the others are still
  evaluated and written. Returns (per-image result path or None if no image was evaluated,
  [(image path, reason) of each skipped image]).
  """
  per_image_path, aggregate_path = result_paths(results_dir, dataset, workdir)
  check_outputs(results_dir, dataset, workdir, bitstream_dir)
  images = data_lib.list_images(dataset)[:max_images or None]
  hyper = dict(rd_lambda=config.model_config.rd_lambda, workdir=os.path.abspath(workdir),
               run=os.path.basename(os.path.abspath(workdir)), checkpoint_step=coder.step,
               latent_method=config.model_config.latent_config.method)
  records, failed, warm_shapes, start = [], [], set(), time.time()
  for i, path in enumerate(images):
    name = os.path.splitext(os.path.basename(path))[0]
    try:
      image = image_utils.read_image(path)
      shape = padded_shape(coder.model, *image.shape[:2])
      record, _, data = evaluate_image(coder, image, timing_repeats,
                                       warmup=0 if shape in warm_shapes else 1)
    except ValueError as e:  # ImageError, an image over the codec's size limits, ...
      failed.append((path, str(e)))
      logging.warning("[%d/%d] %s: not evaluated: %s", i + 1, len(images), name, e)
      continue
    warm_shapes.add(shape)
    if bitstream_dir:
      file_io.write_bytes_atomic(os.path.join(bitstream_dir, name + ".ntc"), data)
    records.append(dict(instance_id=name, **record, **hyper))
    elapsed = time.time() - start
    logging.info("[%d/%d] %s: %.4f bpp (estimated %.4f), %.2f dB | ETA %.0f s", i + 1,
                 len(images), name, record["bpp_actual"], record["bpp_estimated"],
                 record["psnr"], elapsed / (i + 1) * (len(images) - i - 1))
  if not records:
    return None, failed
  results.write_per_image(per_image_path, records)
  write_aggregate(os.path.dirname(per_image_path), aggregate_path)
  return per_image_path, failed


def write_aggregate(folder, aggregate_path):
  """CompressAI-format curve over every run evaluated in `folder` (one point per run).

  Runs of one sweep are evaluated concurrently (Slurm array tasks): a lock makes each rewrite
  see every per-run file that was complete before it, so the last writer's aggregate has all.
  """
  with open(os.path.join(folder, ".aggregate.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    _write_aggregate_locked(folder, aggregate_path)


def _write_aggregate_locked(folder, aggregate_path):
  points = [results.read_per_image(p) for p in sorted(glob.glob(os.path.join(folder, "*.json")))
            if os.path.abspath(p) != os.path.abspath(aggregate_path)]
  curve = results.aggregate(points, os.path.basename(folder),
                            "real bitstreams (actual bpp incl. header), 8-bit RGB",
                            param_key="rd_lambda")
  results.write_json(aggregate_path, curve)
  logging.info("Aggregate of %d run(s): %s", len(points), aggregate_path)
