"""Decode speed of the shallow decoders vs. Minnen 2018 and classic codecs, on one 768x512 photo.

  python -m benchmarks.decode_speed [--repeats 10] [--image PATH] [--out FILE.json]

For the JPEG-like (mshyper/configs/jpegl.py), 2-layer (two_layer_syn.py) and Minnen 2018
(mbt2018.py) models it times the real decoder (common.codec: file bytes -> uint8 image), split
into entropy decoding, h_s and g_s, once with 1 thread and once with all cores. The decoders and
a float32 matmul (the machine's peak) are timed interleaved, round-robin, in one loop, so a
shared machine slows all of them alike; medians and minimums are reported, and the headline is
ratios within the run: each decoder against Minnen 2018 and against its FLOP-bound time (TF
profiler FLOPs / best matmul rate). A module faster than the peak allows aborts the run
(FractionOfPeakError). Pillow JPEG/WebP and AVIF (the common.bench codecs, single-threaded)
decode the same photo at the rate closest to the neural files' for context. Prints a table and
writes JSON (default results/benchmarks/decode_speed.json).

Weights: no trained paper-size models exist here (the ELIC analysis takes days to train on a
CPU), so models are built from the paper configs with a fixed-seed random initialization.
g_s and h_s times do not depend on weight values, but entropy decoding time depends on the
rate and on how well the entropy model fits the symbols, so the latents are calibrated (see
calibrated_file): the hyper-prior is fitted to the hyper-latents, y is drawn consistent with the
(mu, sigma) that h_s predicts, and h_s's log-scale bias is bisected until the file is close to
--target_bpp. The bpp actually coded and the fraction of zero y symbols are reported per model.

TF fixes its thread pools when it initializes, so each thread setting runs in a fresh
subprocess of this script (--worker_threads), which writes its measurements to a JSON file.
"""

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image
import tensorflow as tf

import configs
from common import bench, cli, codec, config_utils, data_lib, eval_lib, fast_conv, run_dir
from common import image_utils
from common import profile_utils, results
from mshyper import models as mshyper_models

HEIGHT, WIDTH = 512, 768
# Key -> (label, config file). Minnen 2018 last: ratios are taken against it.
MODELS = {
    "jpeg_like": ("JPEG-like syn.", "mshyper/configs/jpegl.py"),
    "two_layer": ("2-layer syn.", "mshyper/configs/two_layer_syn.py"),
    "mbt2018": ("Minnen 2018", "mshyper/configs/mbt2018.py"),
}
STAGES = eval_lib.DECODE_STAGES
CLASSIC_CODECS = ("jpeg420", "webp", "avif")
# The peak: the best of MATMUL_CALLS short float32 matmuls per round. Short calls (~20 ms at one
# core) find the quiet moments of a shared machine that one long call would not.
MATMUL_SIZE = 1024
MATMUL_CALLS = 3
# Hyper-latent spread for the rate calibration (see calibrated_file) and prior-fitting steps.
Z_STD = 0.5
FIT_STEPS = 300
DEFAULT_OUT = os.path.join(configs.RESULTS_DIR, "benchmarks", "decode_speed.json")
DESCRIPTION = (
    "Decode wall time of one {h}x{w} photo ({image}). Neural decoders: the real file -> uint8 "
    "decoder of common.codec, models built from the paper configs with fixed-seed RANDOM "
    "weights (no trained paper-size models exist here). g_s/h_s times do not depend on weight "
    "values; entropy decoding time depends on the rate, so each model's latents were calibrated "
    "to code at about {target} bpp with symbol statistics that match its entropy model "
    "(hyper-prior fitted to z = h_a(y) scaled to std {z_std}; y = mu + sigma * u with (mu, "
    "sigma) from h_s(z_hat) and u the photo's analysis output normalized to std 1; h_s's "
    "log-scale bias bisected to the target rate): the bpp actually coded is reported per model "
    "('bpp'). Timing: {repeats} rounds after {warmup} warm-up rounds; each round times "
    "float32 {n}x{n} matmuls (best of {calls}) and every decoder once, round-robin from a "
    "rotating start, so "
    "load from other processes affects all alike. Per stage (entropy decoding, h_s, g_s, other "
    "= header parsing and checksums, >= 0 per round): median and minimum over rounds; decode_s "
    "(decode_min_s) is the sum of the stage medians (minimums), so the parts add up. FLOPs: TF "
    "profiler (a multiply-add counts 2). FLOP-bound time = FLOPs / best matmul rate of the same "
    "rounds; '*_vs_flop_bound' = best time / FLOP-bound time (>= 1 unless the measurement is "
    "wrong, which aborts the run). Classic codecs: common.bench settings, single-threaded "
    "libraries, at the sweep parameter whose bpp is closest to the neural files' mean bpp.")


def cpu_model():
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def benchmark_image(path=None):
  """(uint8 768x512 photo, description of where it came from).

  Default: the first data/eval24 photo if `make data` was run, else the embedded motorcycle
  photo; either is scaled (Lanczos) to cover 768x512 and centre-cropped.
  """
  if path is None:
    try:
      path = data_lib.list_images("eval24")[0]
    except ValueError:  # no `make data`; motorcycle (741x500) needs the least scaling
      files = data_lib.list_images("embedded_eval")
      path = next((p for p in files if "motorcycle" in p), files[0])
  rgb = image_utils.read_image(path)
  height, width = rgb.shape[:2]
  note = os.path.relpath(path, configs.PROJECT_DIR)
  if (height, width) != (HEIGHT, WIDTH):
    scale = max(HEIGHT / height, WIDTH / width)
    size = (max(WIDTH, round(width * scale)), max(HEIGHT, round(height * scale)))
    resized = Image.fromarray(rgb).resize(size, Image.LANCZOS)
    left, top = (size[0] - WIDTH) // 2, (size[1] - HEIGHT) // 2
    rgb = np.asarray(resized.crop((left, top, left + WIDTH, top + HEIGHT)))
    note += f" ({width}x{height}, Lanczos-scaled to {size[0]}x{size[1]}, centre-cropped)"
  return rgb, note


# ---------------------------------------------------------------- worker (one thread setting)


def fit_hyper_prior(prior, z, steps=FIT_STEPS):
  """Fits the deep factorized prior's density to hyper-latents z (noisy, as in training)."""
  optimizer = tf.keras.optimizers.Adam(1e-2)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      noisy = z + tf.random.uniform(tf.shape(z), -0.5, 0.5)
      loss = -tf.reduce_mean(prior.log_prob(noisy))
    variables = prior.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

  for _ in range(steps):
    step()


def calibrated_file(model, config, analysis, target_bpp, log):
  """(codec, bitstream, stats) of latents whose statistics match the coder's (random) model.

  A trained model codes latents its entropy model predicts well; random weights do not, so:
  z is h_a(y) normalized to std Z_STD (mostly 0 and +-1 after rounding) and the hyper-prior
  density is fitted to it; y = mu + sigma * u, with (mu, sigma) the entropy parameters that
  h_s(z_hat) gives and u the analysis output of the photo normalized to std 1 (real image
  structure). The log-scale bias of h_s's last layer is then bisected until the file is
  near target_bpp.
  """
  z = model.hyper_analysis(analysis)
  z = z * (Z_STD / tf.math.reduce_std(z))
  fit_hyper_prior(model.hyper_prior, z)
  coder = codec.Codec(model, config_utils.model_identity(config), step=0)
  side_model, _ = coder.entropy_models
  z_hat = side_model.decompress(side_model.compress(z), tf.shape(z)[1:3])
  u = analysis / tf.math.reduce_std(analysis)
  bias = model.hyper_synthesis.layers[-1].bias
  channels = int(analysis.shape[-1])
  if bias.shape != (2 * channels,):
    raise ValueError(f"h_s's last layer has bias shape {bias.shape}, expected ({2 * channels},) "
                     "(mean, log-scale).")
  initial_bias = bias.numpy()

  def encode(shift):
    bias.assign(initial_bias + np.concatenate([np.zeros(channels), np.full(channels, shift)]))
    mu, indexes = model.entropy_parameters(z_hat, training=False)
    y = mu + mshyper_models.scale_fn(indexes) * u
    data = coder.encode_latents(dict(y=y, z=z), HEIGHT, WIDTH)
    zero_fraction = float(tf.reduce_mean(tf.cast(tf.round(y - mu) == 0, tf.float32)))
    return data, 8 * len(data) / (HEIGHT * WIDTH), zero_fraction

  low, high = -8.0, 8.0  # log-scale shift; the rate grows with the scales
  best = None
  for _ in range(30):
    shift = (low + high) / 2
    data, bpp, zero_fraction = encode(shift)
    if best is None or abs(bpp - target_bpp) < abs(best[1] - target_bpp):
      best = (data, bpp, shift, zero_fraction)
    if abs(bpp - target_bpp) <= 0.02 * target_bpp:
      break
    low, high = (shift, high) if bpp < target_bpp else (low, shift)
  data, bpp, shift, zero_fraction = best
  encode(shift)  # the decoder must see the bias the file was written with
  _, strings = coder.parse(data)
  stats = dict(bpp=bpp, file_bytes=len(data),
               bpp_per_latent={k: 8 * len(v) / (HEIGHT * WIDTH) for k, v in strings.items()},
               y_zero_symbol_fraction=zero_fraction, log_scale_shift=shift)
  log(f"  calibrated: {len(data)} bytes, {bpp:.3f} bpp (z {stats['bpp_per_latent']['z']:.3f}), "
      f"{100 * zero_fraction:.0f}% of y symbols zero")
  return coder, data, stats


def _matmul_operands():
  return (tf.random.normal((MATMUL_SIZE, MATMUL_SIZE), seed=1),
          tf.random.normal((MATMUL_SIZE, MATMUL_SIZE), seed=2))


def _stats(values):
  return dict(median=float(np.median(values)), min=float(np.min(values)))


class FractionOfPeakError(RuntimeError):
  """A module computed faster than the measured matmul peak allows: the measurement is wrong."""


def flop_bound(label, flops, seconds, peak_flops_per_s):
  """FLOP-bound time of `flops` at the peak, and how `seconds` compares; raises
  FractionOfPeakError above 100% of the peak (a wrong FLOP count or timing)."""
  bound = flops / peak_flops_per_s
  if bound > seconds:
    raise FractionOfPeakError(
        f"{label}: {flops / 1e9:.2f} GFLOP in {1e3 * seconds:.2f} ms is "
        f"{100 * bound / seconds:.0f}% of the measured matmul peak "
        f"({peak_flops_per_s / 1e9:.1f} GFLOP/s): the FLOP count or the timing is wrong.")
  return dict(flop_bound_s=bound, vs_flop_bound=seconds / bound,
              fraction_of_peak=bound / seconds, flops_per_s=flops / seconds)


def run_worker(args):
  # Before the first TF op, which fixes the thread pools.
  tf.config.threading.set_intra_op_parallelism_threads(args.worker_threads)
  tf.config.threading.set_inter_op_parallelism_threads(args.worker_threads)
  threads = args.worker_threads or os.cpu_count()

  def log(text):
    print(f"[{threads} thread{'s' * (threads > 1)}] {text}", flush=True)

  image = image_utils.read_image(args.worker_image)
  decoders = {}
  for key, (label, config_path) in MODELS.items():
    log(f"{label}: building {config_path} with random weights")
    tf.keras.utils.set_random_seed(0)
    config = config_utils.load_config_module(
        os.path.join(configs.PROJECT_DIR, config_path)).get_config()
    model = run_dir.build_model(mshyper_models.Model, config.model_config)
    analysis = model.analysis(image_utils.to_model_input(image)[None])
    coder, data, stats = calibrated_file(model, config, analysis, args.target_bpp, log)
    decoded = coder.decode(data)
    if decoded.shape != image.shape:
      raise RuntimeError(f"{label}: decoded {decoded.shape}, expected {image.shape}.")
    flops = {name: profile_utils.count_flops(layer, shape) for name, (layer, shape) in
             model.profiled_transforms((1, HEIGHT, WIDTH, 3)).items() if name in ("g_s", "h_s")}
    decoders[key] = dict(label=label, config=config_path, coder=coder, data=data, stats=stats,
                         flops=flops)
  matmul_a, matmul_b = _matmul_operands()
  samples = {key: {stage: [] for stage in (*STAGES, "other", "total")} for key in decoders}
  matmul_seconds = []
  # The synthesis in its plain form (TF's transposed convs, as in training) on the same
  # latents, for the decoders whose inference takes a fast form (common/fast_conv.py).
  plain_synthesis, plain_seconds = {}, {}
  for key, d in decoders.items():
    model = d["coder"].model
    if any(isinstance(layer, (fast_conv.Conv2DTranspose, fast_conv.SignalConv2D))
           for layer in model.synthesis.submodules):
      signature = [tf.TensorSpec((None, None, None, model.bottleneck_size))]
      plain = tf.function(lambda y, s=model.synthesis: s(y, training=True),
                          input_signature=signature)
      y_hat = model.analysis(image_utils.to_model_input(image)[None])
      plain_synthesis[key] = (plain, tf.round(y_hat))
      plain_seconds[key] = []
      fast = d["coder"]._synthesis(tf.round(y_hat))
      error = float(tf.reduce_max(tf.abs(plain(tf.round(y_hat)) - fast)))
      if error > 1e-4:
        raise RuntimeError(f"{d['label']}: fast and plain synthesis differ by {error}.")

  def time_matmul():
    seconds = []
    for _ in range(MATMUL_CALLS):
      start = time.perf_counter()
      tf.linalg.matmul(matmul_a, matmul_b).numpy()
      seconds.append(time.perf_counter() - start)
    return min(seconds)

  def time_decoder(key, record):
    timer = codec.Timer()
    start = time.perf_counter()
    decoders[key]["coder"].decode(decoders[key]["data"], timer)
    total = time.perf_counter() - start
    if record:
      for stage in STAGES:
        samples[key][stage].append(timer.seconds[stage])
      samples[key]["other"].append(total - sum(timer.seconds[s] for s in STAGES))
      samples[key]["total"].append(total)

  # Round-robin: every round times the matmul and each decoder once, starting at a rotating
  # position, so load from other processes hits all of them alike.
  items = ["matmul", *decoders, *(("plain", key) for key in plain_synthesis)]
  for round_index in range(args.warmup + args.repeats):
    record = round_index >= args.warmup
    shift = round_index % len(items)
    for item in items[shift:] + items[:shift]:
      if item == "matmul":
        seconds = time_matmul()
        if record:
          matmul_seconds.append(seconds)
      elif isinstance(item, tuple):
        plain, y_hat = plain_synthesis[item[1]]
        start = time.perf_counter()
        plain(y_hat).numpy()
        if record:
          plain_seconds[item[1]].append(time.perf_counter() - start)
      else:
        time_decoder(item, record)
  peak = 2 * MATMUL_SIZE ** 3 / min(matmul_seconds)
  peak_median = 2 * MATMUL_SIZE ** 3 / float(np.median(matmul_seconds))
  log(f"float32 {MATMUL_SIZE}x{MATMUL_SIZE} matmul: best {peak / 1e9:.1f} GFLOP/s, median "
      f"{peak_median / 1e9:.1f} GFLOP/s")
  models = {}
  for key, d in decoders.items():
    flops = d["flops"]
    stage = {name: _stats(values) for name, values in samples[key].items()}
    decode_flops = flops["g_s"] + flops["h_s"]
    row = dict(label=d["label"], config=d["config"], **d["stats"],
               # Stage medians (minimums) and their sums: the parts add up by construction.
               decode_s=sum(stage[s]["median"] for s in (*STAGES, "other")),
               decode_min_s=sum(stage[s]["min"] for s in (*STAGES, "other")),
               decode_total_median_s=stage["total"]["median"],
               **{f"{s}_s": stage[s]["median"] for s in (*STAGES, "other")},
               **{f"{s}_min_s": stage[s]["min"] for s in (*STAGES, "other")},
               **{f"{name}_flops": f for name, f in flops.items()},
               **{f"{name}_flops_per_pixel": f / (HEIGHT * WIDTH) for name, f in flops.items()},
               decode_flops=decode_flops,
               g_s_params=profile_utils.count_params(d["coder"].model.synthesis))
    # FLOP-bound time: the module's FLOPs at the best matmul rate; both best-case numbers.
    for name, module_flops, seconds in (("g_s", flops["g_s"], stage["g_s"]["min"]),
                                        ("h_s", flops["h_s"], stage["h_s"]["min"]),
                                        ("decode", decode_flops, row["decode_min_s"])):
      row.update({f"{name}_{k}": v for k, v in flop_bound(
          f"{d['label']} {name}", module_flops, seconds, peak).items()})
    if key in plain_seconds:
      # Before the fast form: g_s as TF's transposed convs, timed in the same rounds.
      row["g_s_plain_s"] = float(np.median(plain_seconds[key]))
      row["g_s_plain_min_s"] = float(np.min(plain_seconds[key]))
      row["g_s_fast_vs_plain"] = row["g_s_s"] / row["g_s_plain_s"]
      row["g_s_plain_vs_flop_bound"] = row["g_s_plain_min_s"] / row["g_s_flop_bound_s"]
    models[key] = row
    log(f"  {d['label']}: decode {1e3 * row['decode_s']:.1f} ms median, "
        f"{1e3 * row['decode_min_s']:.1f} ms best = {row['decode_vs_flop_bound']:.2f}x its "
        f"FLOP-bound time (g_s {row['g_s_vs_flop_bound']:.2f}x, h_s "
        f"{row['h_s_vs_flop_bound']:.2f}x)")
  result = dict(threads=threads,
                intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
                matmul_peak_flops_per_s=peak, matmul_median_flops_per_s=peak_median,
                models=models)
  with open(args.worker_out, "w") as f:
    json.dump(result, f)


# ---------------------------------------------------------------- parent (all settings)


def run_setting(threads, image_path, args):
  """Runs one thread setting (0 = all cores) in a fresh process; returns its measurements."""
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "worker.json")
    command = [sys.executable, "-m", "benchmarks.decode_speed", "--worker_threads", str(threads),
               "--worker_image", image_path, "--worker_out", out, "--repeats", str(args.repeats),
               "--warmup", str(args.warmup), "--target_bpp", str(args.target_bpp)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if threads:
      env["OMP_NUM_THREADS"] = str(threads)
    load_before = os.getloadavg()[0]
    code = subprocess.run(command, cwd=configs.PROJECT_DIR, env=env).returncode
    if code != 0:
      raise RuntimeError(f"The {threads or 'all'}-thread benchmark process failed (exit code "
                         f"{code}): {' '.join(command)}")
    with open(out) as f:
      # Other processes' load distorts timings; recorded so readers can judge them.
      return dict(json.load(f), load_average_1min=[load_before, os.getloadavg()[0]])


def classic_decode_times(image, target_bpp, repeats, warmup):
  """Each classic codec at its sweep parameter closest to target_bpp: bpp and decode time."""
  pixels = image.shape[0] * image.shape[1]
  rows = {}
  for key in CLASSIC_CODECS:
    classic = bench.CODECS[key]
    files = [(param, bytes(classic.encode(image, param))) for param in classic.sweep]
    param, data = min(files, key=lambda f: abs(8 * len(f[1]) / pixels - target_bpp))
    decoded, seconds = eval_lib.timed(lambda: classic.decode(data, image.shape[:2]), repeats,
                                      warmup)
    if np.asarray(decoded).shape != image.shape:
      raise RuntimeError(f"{key}: decoded {np.asarray(decoded).shape}, expected {image.shape}.")
    rows[key] = dict(label=classic.label, settings=classic.settings,
                     param_name=classic.param_name, param=param, bpp=8 * len(data) / pixels,
                     decode_s=seconds)
    print(f"{classic.label} {classic.param_name}={param}: {rows[key]['bpp']:.3f} bpp, decode "
          f"{1e3 * seconds:.2f} ms", flush=True)
  return rows


def ratios(settings, classic):
  """Headline ratios per thread setting, all from one interleaved run: each decoder vs Minnen
  2018 (median and best decode times), vs its FLOP-bound time, and vs JPEG."""
  jpeg = classic["jpeg420"]["decode_s"]
  out = {}
  for setting in settings:
    models = setting["models"]
    mbt = models["mbt2018"]
    row = {}
    for key, m in models.items():
      row[f"{key}_vs_jpeg420"] = m["decode_s"] / jpeg
      row[f"{key}_vs_flop_bound"] = m["decode_vs_flop_bound"]
      row[f"{key}_g_s_vs_flop_bound"] = m["g_s_vs_flop_bound"]
      row[f"{key}_h_s_vs_flop_bound"] = m["h_s_vs_flop_bound"]
    for key in ("jpeg_like", "two_layer"):
      row[f"{key}_vs_mbt2018"] = models[key]["decode_s"] / mbt["decode_s"]
      row[f"{key}_vs_mbt2018_best"] = models[key]["decode_min_s"] / mbt["decode_min_s"]
      row[f"{key}_vs_mbt2018_g_s"] = models[key]["g_s_s"] / mbt["g_s_s"]
      row[f"{key}_vs_mbt2018_decode_flops"] = (models[key]["decode_flops"] /
                                               mbt["decode_flops"])
    out[str(setting["threads"])] = row
  return out


def format_table(report):
  lines = [f"Decode of a {WIDTH}x{HEIGHT} photo: {report['repeats']} interleaved rounds after "
           f"{report['warmup']} warm-up rounds (median; best in brackets); random-init weights, "
           f"latents calibrated to ~{report['target_bpp']} bpp (actual bpp per row)", ""]
  header = (f"{'decoder':15s} {'thr':>3s} {'bpp':>5s} {'decode ms':>16s} {'entropy':>7s} "
            f"{'h_s':>7s} {'g_s':>7s} {'other':>6s} {'kFLOP/px':>8s} {'x FLOP-bound':>12s} "
            f"{'g_s x':>6s} {'h_s x':>6s} {'x JPEG':>7s}")
  lines += [header, "-" * len(header)]
  jpeg = report["classic"]["jpeg420"]["decode_s"]
  for setting in report["settings"]:
    for m in setting["models"].values():
      decode = f"{1e3 * m['decode_s']:.1f} ({1e3 * m['decode_min_s']:.1f})"
      lines.append(
          f"{m['label']:15s} {setting['threads']:3d} {m['bpp']:5.3f} {decode:>16s} "
          f"{1e3 * m['entropy_decoding_s']:7.1f} {1e3 * m['h_s_s']:7.1f} {1e3 * m['g_s_s']:7.1f} "
          f"{1e3 * m['other_s']:6.1f} {m['decode_flops'] / (HEIGHT * WIDTH) / 1e3:8.2f} "
          f"{m['decode_vs_flop_bound']:12.2f} {m['g_s_vs_flop_bound']:6.2f} "
          f"{m['h_s_vs_flop_bound']:6.2f} {m['decode_s'] / jpeg:7.1f}")
  for setting in report["settings"]:
    for m in setting["models"].values():
      if "g_s_plain_s" in m:
        lines.append(f"{m['label']:15s} {setting['threads']:3d} g_s fast form "
                     f"{1e3 * m['g_s_s']:.1f} ms vs plain transposed convs "
                     f"{1e3 * m['g_s_plain_s']:.1f} ms (= {m['g_s_fast_vs_plain']:.2f}x; plain "
                     f"{m['g_s_plain_vs_flop_bound']:.2f}x its FLOP-bound time)")
  for c in report["classic"].values():
    lines.append(f"{c['label']:15s} {1:3d} {c['bpp']:5.3f} {1e3 * c['decode_s']:16.2f}   "
                 f"({c['param_name']}={c['param']})")
  lines.append("")
  for s in report["settings"]:
    lines.append(f"{s['threads']} thread(s): float32 {MATMUL_SIZE}x{MATMUL_SIZE} matmul "
                 f"{s['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s best, "
                 f"{s['matmul_median_flops_per_s'] / 1e9:.1f} median (timed in the same rounds); "
                 f"machine load (1-min average) before/after {s['load_average_1min'][0]:.1f}/"
                 f"{s['load_average_1min'][1]:.1f}")
  for threads, row in report["ratios"].items():
    lines.append(
        f"{threads} thread(s): decode time vs Minnen 2018: JPEG-like "
        f"{row['jpeg_like_vs_mbt2018']:.3f}x (best {row['jpeg_like_vs_mbt2018_best']:.3f}x), "
        f"2-layer {row['two_layer_vs_mbt2018']:.3f}x (best {row['two_layer_vs_mbt2018_best']:.3f}x)"
        f"; decode FLOPs {row['jpeg_like_vs_mbt2018_decode_flops']:.3f}x / "
        f"{row['two_layer_vs_mbt2018_decode_flops']:.3f}x; vs FLOP-bound time: JPEG-like "
        f"{row['jpeg_like_vs_flop_bound']:.2f}x, 2-layer {row['two_layer_vs_flop_bound']:.2f}x, "
        f"Minnen 2018 {row['mbt2018_vs_flop_bound']:.2f}x")
  return "\n".join(lines)


def run(args):
  image, image_note = benchmark_image(args.image)
  all_threads = os.cpu_count()
  settings = []
  with tempfile.TemporaryDirectory() as tmp:
    image_path = os.path.join(tmp, "image.png")
    image_utils.write_png(image_path, image)
    for threads in (1, 0) if all_threads > 1 else (1,):
      print(f"== {threads or all_threads} thread(s) ==", flush=True)
      settings.append(run_setting(threads, image_path, args))
  neural_bpp = float(np.mean([m["bpp"] for s in settings for m in s["models"].values()]))
  print("== classic codecs (single-threaded) ==", flush=True)
  classic = classic_decode_times(image, neural_bpp, args.repeats, args.warmup)
  report = dict(
      name="decode_speed",
      description=DESCRIPTION.format(h=HEIGHT, w=WIDTH, image=image_note,
                                     target=args.target_bpp, repeats=args.repeats,
                                     warmup=args.warmup, n=MATMUL_SIZE, calls=MATMUL_CALLS,
                                     z_std=Z_STD),
      image=image_note, height=HEIGHT, width=WIDTH, repeats=args.repeats, warmup=args.warmup,
      target_bpp=args.target_bpp, weights="random initialization (tf.keras seed 0)",
      machine=dict(cpu=cpu_model(), cpu_count=all_threads, python=platform.python_version(),
                   tensorflow=tf.__version__,
                   tensorflow_compression=importlib.metadata.version("tensorflow-compression")),
      settings=settings, classic=classic, ratios=ratios(settings, classic))
  table = format_table(report)
  report["table"] = table.splitlines()
  results.write_json(args.out, report)
  print(table)
  print(f"wrote {args.out}")


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks.decode_speed",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--image", default=None,
                      help="photo to scale/crop to 768x512 (default: first data/eval24 PNG, "
                      "else the embedded motorcycle photo)")
  parser.add_argument("--repeats", type=int, default=10, help="timed runs (median reported)")
  parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
  parser.add_argument("--target_bpp", type=float, default=0.5,
                      help="rate the random-weight latents are calibrated to (bits per pixel)")
  parser.add_argument("--out", default=DEFAULT_OUT, help="JSON file to write")
  # Internal: one thread setting in a fresh process (0 = TF default, all cores).
  parser.add_argument("--worker_threads", type=int, default=None, help=argparse.SUPPRESS)
  parser.add_argument("--worker_image", help=argparse.SUPPRESS)
  parser.add_argument("--worker_out", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.repeats < 1 or args.warmup < 0:
    parser.error("--repeats must be >= 1 and --warmup >= 0")
  if args.target_bpp <= 0:
    parser.error("--target_bpp must be > 0")
  if args.worker_threads is not None:
    run_worker(args)
    return 0
  with cli.user_errors():  # bad --image: missing, corrupt, no photos
    run(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
