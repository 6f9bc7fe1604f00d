"""The logic behind notebooks/*.ipynb, kept here so that the notebooks stay thin and it is tested.

- get_flops.ipynb: FLOPs per pixel and parameters of every module of the paper's models, measured
  as the published numbers were (TF profiler at 512x768, see common/profile_utils.py), and
  compared with the SPEC's "Exact complexity anchors".
- vis_syn_filters.ipynb: loading a trained run, and the learned filters of the shallow decoders
  (JPEG-like and 2-layer synthesis) as image grids.
"""
import glob
import importlib
import json
import math
import os

import numpy as np
import tensorflow as tf

import configs
from common import authors_runs, config_utils, experiment, profile_utils, train_lib, transforms

# ---------------------------------------------------------------------------------------------
# Complexity (get_flops.ipynb)

# The paper measured at 512x768 (Kodak size); per-pixel GDN counts depend slightly on the size.
PROFILE_HEIGHT, PROFILE_WIDTH = 512, 768
MODULES = ("g_a", "h_a", "g_s", "h_s")
_MODULE_ATTRIBUTES = dict(g_a="analysis", h_a="hyper_analysis", g_s="synthesis",
                          h_s="hyper_synthesis")

# Paper model name -> its config, relative to the project dir (the SPEC's configs table).
PAPER_CONFIGS = {
    "Ballé 2017": "factorized/configs/bls2017.py",
    "Minnen 2018": "mshyper/configs/mbt2018.py",
    "JPEG-like syn.": "mshyper/configs/jpegl.py",
    "2-layer syn.": "mshyper/configs/two_layer_syn.py",
    "2-layer syn. v2": "mshyper/configs/two_layer_syn2.py",
}

# The SPEC's "Exact complexity anchors" (from the paper's published result files). Parameter
# counts are published only for some modules; h_a/h_s ones are for a 320-channel latent.
_HYPER_PARAMS = dict(h_a=6042560, h_s=9166240)
PUBLISHED = {
    "Ballé 2017": dict(
        flops_per_pixel=dict(g_a=163264, h_a=0, g_s=163266, h_s=0, decode=163266), params={}),
    "Minnen 2018": dict(
        flops_per_pixel=dict(g_a=187583, h_a=13452, g_s=187585, h_s=30355, decode=217940),
        params=dict(g_s=3431235, **_HYPER_PARAMS)),
    "JPEG-like syn.": dict(
        flops_per_pixel=dict(g_a=510846, h_a=13452, g_s=2433, h_s=30355, decode=32788),
        params=dict(g_a=7337792, g_s=311043, **_HYPER_PARAMS)),
    "2-layer syn.": dict(
        flops_per_pixel=dict(g_a=510846, h_a=13452, g_s=10680, h_s=30355, decode=41035),
        params=dict(g_a=7337792, g_s=1299003, **_HYPER_PARAMS)),
    "ELIC (for comparison)": dict(
        flops_per_pixel=dict(g_a=510846, h_a=13452, g_s=510847, h_s=253131, decode=763978),
        params=dict(g_a=7337792)),
}

# Where our count legitimately differs from the published one (asserted in tests/test_profile.py).
_BALLE_NOTE = ("the published row was measured on 4-layer CNN transforms (CNNAnalysis/"
               "CNNSynthesis, 192 channels, 320-channel latent), not on the 3-layer BLS2017 "
               "(256) transforms of factorized/configs/bls2017.py, which cost about half as much")
_MBT_NOTE = ("the published synthesis reused ONE IGDN for its 3 hidden layers; ours has one per "
             "layer, as in Minnen et al. 2018 (2 x (192^2 + 192) = 74,112 more parameters)")
EXPLAINED_DIFFERENCES = {
    ("Ballé 2017", "g_a", "flops_per_pixel"): _BALLE_NOTE,
    ("Ballé 2017", "g_s", "flops_per_pixel"): _BALLE_NOTE,
    ("Ballé 2017", "decode", "flops_per_pixel"): _BALLE_NOTE,
    ("Minnen 2018", "g_s", "params"): _MBT_NOTE,
}


def model_class_for_config(config_path):
  """The Model class of the package a config file belongs to (<package>/configs/NAME.py)."""
  package = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(config_path))))
  try:
    return importlib.import_module(f"{package}.models").Model
  except ModuleNotFoundError:
    raise ValueError(f"{config_path} is not in a model package's configs/ folder (expected "
                     f"<package>/configs/NAME.py next to <package>/models.py).") from None


def _output_shape(layer, input_shape):
  """Output shape of `layer` on `input_shape`, from tracing only (nothing is computed)."""
  concrete = tf.function(layer).get_concrete_function(tf.TensorSpec(input_shape, tf.float32))
  return tuple(concrete.structured_outputs.shape)


def profile_model(model, height=PROFILE_HEIGHT, width=PROFILE_WIDTH):
  """FLOPs per image pixel and parameters of a model's g_a, h_a, g_s, h_s and decoder.

  Each transform is profiled on the input shape it sees for a (height, width) image; a module
  the model lacks (h_a, h_s of a factorized model) counts 0. decode = g_s + h_s: entropy
  decoding is not counted, as in the paper.

  Returns:
    dict(flops_per_pixel={g_a, h_a, g_s, h_s, decode}, params={g_a, h_a, g_s, h_s, decode}).
  """
  factor = model.downsample_factor
  if height % factor or width % factor:
    raise ValueError(f"Profile size {height}x{width} is not a multiple of the model's "
                     f"downsampling factor {factor}.")
  num_pixels = height * width
  y_shape = _output_shape(model.analysis, (1, height, width, 3))
  input_shapes = dict(g_a=(1, height, width, 3), h_a=y_shape, g_s=y_shape)
  if hasattr(model, "hyper_analysis"):
    input_shapes["h_s"] = _output_shape(model.hyper_analysis, y_shape)
  flops, params = {}, {}
  for module in MODULES:
    layer = getattr(model, _MODULE_ATTRIBUTES[module], None)
    if layer is None:
      flops[module], params[module] = 0., 0
      continue
    flops[module] = profile_utils.flops_per_pixel(layer, input_shapes[module], num_pixels)
    params[module] = profile_utils.count_params(
        profile_utils.profiled_graph(layer, input_shapes[module]))
  flops["decode"] = flops["g_s"] + flops["h_s"]
  params["decode"] = params["g_s"] + params["h_s"]
  return dict(flops_per_pixel=flops, params=params)


def complexity_table(config_paths, height=PROFILE_HEIGHT, width=PROFILE_WIDTH):
  """Profiles the model of each config: [{model, config, flops_per_pixel, params}, ...].

  Args:
    config_paths: {model name: config file}; relative paths are taken from the project dir.
    height, width: image size the per-pixel counts are measured at.
  """
  table = []
  for name, path in config_paths.items():
    path = os.path.join(configs.PROJECT_DIR, path)
    print(f"Profiling {name} ({os.path.relpath(path, configs.PROJECT_DIR)}) ...", flush=True)
    config = config_utils.load_config_module(path).get_config()
    model = experiment.build_model(model_class_for_config(path), config.model_config)
    table.append(dict(model=name, config=path, **profile_model(model, height, width)))
  return table


def _matches(quantity, ours, published):
  # Published FLOPs are rounded per module, so a sum (decode) may be off by up to 1.
  return abs(ours - published) < 1 if quantity == "flops_per_pixel" else ours == published


def compare_with_published(table, published=None):
  """One entry per number published for a profiled model: ours, published, and a status.

  status is "match", "explained" (a known, documented difference; see `note`) or "unexplained".
  """
  published = PUBLISHED if published is None else published
  comparison = []
  for row in table:
    reference = published.get(row["model"])
    if reference is None:
      continue
    for quantity in ("flops_per_pixel", "params"):
      for module, value in reference[quantity].items():
        ours = row[quantity][module]
        note = EXPLAINED_DIFFERENCES.get((row["model"], module, quantity), "")
        if _matches(quantity, ours, value):
          status = "match"
        else:
          status = "explained" if note else "unexplained"
        comparison.append(dict(model=row["model"], module=module, quantity=quantity, ours=ours,
                               published=value, status=status, note=note if status != "match"
                               else ""))
  return comparison


def markdown_table(columns, rows):
  """A Markdown table; numbers are written with thousands separators, rounded to integers."""
  def cell(value):
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
      return f"{value:,.0f}"
    return str(value)
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
  return "\n".join(lines)


def complexity_markdown(table, quantity):
  """Markdown table of one quantity ("flops_per_pixel" or "params"): models x modules."""
  columns = ("g_a", "h_a", "g_s", "h_s", "decode")
  return markdown_table(("model",) + columns,
                        [[row["model"]] + [row[quantity][c] for c in columns] for row in table])


def comparison_markdown(comparison):
  return markdown_table(
      ("model", "module", "quantity", "ours", "published", "status", "why it differs"),
      [[c["model"], c["module"], "FLOPs/px" if c["quantity"] == "flops_per_pixel" else "params",
        c["ours"], c["published"], c["status"], c["note"]] for c in comparison])


def decode_flops_chart(table, published=None):
  """Bar chart (log scale) of decode FLOPs per pixel: ours next to the published ones."""
  import matplotlib.pyplot as plt
  published = PUBLISHED if published is None else published
  ours = {row["model"]: row["flops_per_pixel"]["decode"] for row in table}
  names = list(ours) + [name for name in published if name not in ours]
  positions = np.arange(len(names))
  width = 0.4
  fig, ax = plt.subplots(figsize=(10, 4.5))
  for offset, label, values in (
      (-width / 2, "ours (TF profiler, 512x768)", [ours.get(n, np.nan) for n in names]),
      (width / 2, "published", [published.get(n, {}).get("flops_per_pixel", {}).get(
          "decode", np.nan) for n in names])):
    bars = ax.bar(positions + offset, values, width, label=label)
    ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v / 1000:,.1f}k" for v in values],
                 fontsize=8)
  ax.set_yscale("log")
  # Bars start a decade below the smallest value, so that their lengths compare on the log scale.
  smallest = np.nanmin([bar.get_height() for bar in ax.patches])
  ax.set_ylim(bottom=10 ** (math.floor(math.log10(smallest)) - 1))
  ax.set_xticks(positions, names, rotation=15)
  ax.set_ylabel("decode FLOPs per pixel (g_s + h_s)")
  ax.set_title("Decoding complexity")
  ax.legend()
  fig.tight_layout()
  return fig


# ---------------------------------------------------------------------------------------------
# Trained runs and synthesis filters (vis_syn_filters.ipynb)

WORKDIR_ENV = "NTC_NOTEBOOK_WORKDIR"


def notebook_workdir():
  """The run to look at: $NTC_NOTEBOOK_WORKDIR, else the last saved run under EXPERIMENTS_DIR."""
  workdir = os.environ.get(WORKDIR_ENV)
  if workdir:
    if not os.path.isdir(workdir):
      raise FileNotFoundError(f"${WORKDIR_ENV}={workdir!r} is not a directory.")
    return os.path.abspath(workdir)
  # CheckpointManager keeps a `checkpoint` index file in every workdir's checkpoint dir.
  indexes = glob.glob(os.path.join(configs.EXPERIMENTS_DIR, "*", "*",
                                   train_lib.CHECKPOINT_SUBDIR, "checkpoint"))
  if not indexes:
    raise FileNotFoundError(
        f"${WORKDIR_ENV} is not set and there is no trained run under {configs.EXPERIMENTS_DIR}. "
        f"Set {WORKDIR_ENV} to a run directory (with config.json and "
        f"{train_lib.CHECKPOINT_SUBDIR}/), or train one, e.g. `python -m mshyper.train "
        f"--config mshyper/configs/quickstart.py`.")
  return os.path.dirname(os.path.dirname(max(indexes, key=os.path.getmtime)))


def load_trained_model(workdir):
  """(config, model, checkpoint prefix) of a run directory, restored from its latest checkpoint.

  The optimizer is restored too, so that model.global_step tells how long the model trained.
  """
  record_path = os.path.join(workdir, experiment.RUN_RECORD)
  if authors_runs.is_authors_run(workdir):
    model_module = authors_runs.model_module(workdir)
  elif not os.path.exists(record_path):
    raise FileNotFoundError(f"{workdir} has no {experiment.RUN_RECORD}, so it is not a run "
                            f"directory of a train entry point (e.g. python -m mshyper.train) "
                            f"nor an authors' run directory (config.json + train/checkpoints/).")
  else:
    with open(record_path) as f:
      model_module = json.load(f)["model"]
  config, model = experiment.load_run(workdir, importlib.import_module(model_module).Model)
  prefix = train_lib.resolve_checkpoint(workdir)
  train_lib.restore(model, prefix, weights_only=False)
  return config, model, prefix


def channels_by_usage(model, image):
  """Latent channel indices, most used first: by the spread (std) of y over `image`."""
  y = model.infer_latents(model.pad(image))["y"].numpy()
  return np.argsort(-y.std(axis=(0, 1, 2)), kind="stable")


def filter_grid(tiles, columns=None, pad=1):
  """Lays out filters (N, h, w) or (N, h, w, 3) row by row as one image with values in [0, 1].

  Each tile is scaled on its own and symmetrically, so that 0 is mid-gray and its largest
  |value| reaches black or white (or a saturated colour): the shape of each filter is visible
  whatever its gain. Tiles are separated by `pad` white pixels.

  Returns:
    (rows * (h + pad) - pad, columns * (w + pad) - pad[, 3]) float array.
  """
  tiles = np.asarray(tiles, dtype=np.float64)
  if tiles.ndim not in (3, 4) or (tiles.ndim == 4 and tiles.shape[-1] != 3) or not len(tiles):
    raise ValueError(f"filter_grid expects a non-empty (N, h, w) or (N, h, w, 3) array, got "
                     f"shape {tiles.shape}.")
  count, height, width = tiles.shape[:3]
  columns = columns or math.ceil(math.sqrt(count))
  rows = math.ceil(count / columns)
  peak = np.abs(tiles).reshape(count, -1).max(axis=1)
  scaled = 0.5 + tiles / (2 * np.where(peak > 0, peak, 1)).reshape((count,) + (1,) *
                                                                   (tiles.ndim - 1))
  grid = np.ones((rows * (height + pad) - pad, columns * (width + pad) - pad) + tiles.shape[3:])
  for i, tile in enumerate(scaled):
    top, left = (i // columns) * (height + pad), (i % columns) * (width + pad)
    grid[top:top + height, left:left + width] = tile
  return grid


def impulse_responses(synthesis, num_channels, amplitude=1.0, latent_size=5):
  """What a latent value `amplitude` in each channel paints on an all-zero latent, / amplitude.

  For a linear synthesis (JPEG-like) these are exactly its filters; for a nonlinear one they are
  its effective filters at that amplitude (1 = one quantization step).

  Returns:
    (num_channels, h, w, 3): the responses, cropped to where any of them is nonzero.
  """
  center = latent_size // 2
  impulses = np.zeros((num_channels, latent_size, latent_size, num_channels), np.float32)
  impulses[np.arange(num_channels), center, center, np.arange(num_channels)] = amplitude
  background = synthesis(tf.zeros((1, latent_size, latent_size, num_channels)))
  responses = ((synthesis(impulses) - background) / amplitude).numpy()
  support = np.abs(responses).max(axis=(0, 3)) > 0
  rows, cols = np.flatnonzero(support.any(axis=1)), np.flatnonzero(support.any(axis=0))
  if not len(rows):
    raise ValueError("The synthesis does not respond to any latent impulse.")
  if rows[0] == 0 or cols[0] == 0 or rows[-1] == support.shape[0] - 1 or (
      cols[-1] == support.shape[1] - 1):
    raise ValueError(f"Impulse responses reach the border of the {latent_size}x{latent_size} "
                     "latent's output; use a larger latent_size.")
  return responses[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


class UnsupportedSynthesisError(TypeError):
  """A synthesis transform without a filter view (only the shallow decoders have one)."""


def synthesis_filter_views(synthesis, channel_order=None, first_layer_channels=16):
  """{title: grid image} of the learned filters of a JPEG-like or 2-layer synthesis.

  Args:
    synthesis: a built JPEGLikeSynthesis, TwoLayerSynthesis or TwoLayerResSynthesis.
    channel_order: latent channel indices in display order (default: 0, 1, ...).
    first_layer_channels: how many latent channels (the first in channel_order) get a row of
      first-layer kernels.

  Raises:
    UnsupportedSynthesisError: for any other synthesis transform.
  """
  if isinstance(synthesis, transforms.JPEGLikeSynthesis):
    kernel = synthesis.conv.kernel.numpy()  # (k, k, 3, latent channels)
  elif isinstance(synthesis, (transforms.TwoLayerSynthesis, transforms.TwoLayerResSynthesis)):
    first = (synthesis.conv1 if isinstance(synthesis, transforms.TwoLayerSynthesis)
             else synthesis.base_conv)
    kernel = first.kernel.numpy()  # (k, k, hidden channels, latent channels)
  else:
    raise UnsupportedSynthesisError(
        f"No filter view for {type(synthesis).__name__}: this notebook shows the filters of "
        f"JPEGLikeSynthesis, TwoLayerSynthesis and TwoLayerResSynthesis (the shallow decoders); "
        f"train e.g. mshyper/configs/jpegl.py, two_layer_syn.py or quickstart.py.")
  num_channels = kernel.shape[-1]
  order = np.arange(num_channels) if channel_order is None else np.asarray(channel_order)
  if isinstance(synthesis, transforms.JPEGLikeSynthesis):
    size = kernel.shape[0]
    return {f"{num_channels} latent channels: the {size}x{size} RGB patch each paints "
            f"(the kernel)": filter_grid(kernel.transpose(3, 0, 1, 2)[order])}
  hidden, size = kernel.shape[2], kernel.shape[0]
  shown = order[:first_layer_channels]
  first_layer = kernel.transpose(3, 2, 0, 1)[shown].reshape(-1, size, size)
  return {
      f"First layer: {size}x{size} kernels of {len(shown)} latent channels (rows) to the "
      f"{hidden} hidden channels (columns)": filter_grid(first_layer, columns=hidden),
      f"Effective filters of all {num_channels} latent channels: what +1 in the channel "
      f"paints on an all-zero latent": filter_grid(
          impulse_responses(synthesis, num_channels)[order]),
  }
