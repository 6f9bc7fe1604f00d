"""Peak memory of decoding a large image with each paper decoder, through the real codec CLI.

  python -m benchmarks.decode_memory [--height 3000 --width 4000] [--out FILE.json]

For the JPEG-like, 2-layer and Minnen 2018 configs (random weights, saved as a run directory with
a checkpoint) it writes a bitstream of a height x width image from random latents (rounded
Gaussians; encoding a 12-megapixel photo with the ELIC analysis would itself need ~10 GiB) and
decodes it with `python -m mshyper.codec decompress` in a fresh process, whose peak resident
memory (that process's ru_maxrss) and wall time are reported; with --untiled also in one piece
(a child process of this script calling the codec with tiling off), for comparison. Writes JSON
(default results/benchmarks/decode_memory.json).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import configs

MODELS = {
    "jpeg_like": ("JPEG-like syn.", "mshyper/configs/jpegl.py"),
    "two_layer": ("2-layer syn.", "mshyper/configs/two_layer_syn.py"),
    "mbt2018": ("Minnen 2018", "mshyper/configs/mbt2018.py"),
}
DEFAULT_OUT = os.path.join(configs.RESULTS_DIR, "benchmarks", "decode_memory.json")


def make_run(config_path, workdir, height, width, bitstream):
  """A run dir with random weights (one checkpoint) and a bitstream of random latents."""
  import numpy as np
  import tensorflow as tf

  from common import codec, config_utils, run_dir
  from mshyper.models import Model
  tf.keras.utils.set_random_seed(0)
  config = config_utils.load_config_module(
      os.path.join(configs.PROJECT_DIR, config_path)).get_config()
  model = run_dir.build_model(Model, config.model_config)
  os.makedirs(os.path.join(workdir, "checkpoints"))
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config_utils.config_to_json(config))
  # As training writes it (train_lib: Checkpoint.save numbers the prefix).
  prefix = tf.train.Checkpoint(model=model).save(os.path.join(workdir, "checkpoints", "ckpt"))
  coder = codec.Codec(model, config_utils.model_identity(config),
                      step=run_dir.checkpoint_step(prefix), checkpoint_prefix=prefix)
  factor = model.downsample_factor
  rows, cols = -(-height // factor), -(-width // factor)
  rng = np.random.default_rng(0)
  z = rng.normal(0., 1., (1, rows, cols, model.hyper_size)).astype(np.float32)
  y_rows, y_cols = rows * factor // 16, cols * factor // 16
  y = rng.normal(0., 1.5, (1, y_rows, y_cols, model.bottleneck_size)).astype(np.float32)
  data = coder.encode_latents(dict(y=tf.constant(y), z=tf.constant(z)), height, width)
  with open(bitstream, "wb") as f:
    f.write(data)
  return len(data)


def decode_in_child(workdir, bitstream, output, tiled):
  """(wall seconds, peak RSS bytes) of decoding in a fresh process."""
  if tiled:
    command = [sys.executable, "-m", "mshyper.codec", "decompress", "--workdir", workdir,
               bitstream, output]
  else:
    command = [sys.executable, "-m", "benchmarks.decode_memory", "--untiled_worker", workdir,
               bitstream, output]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  with tempfile.TemporaryFile("w+") as stderr:
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=configs.PROJECT_DIR, env=env,
                               stdout=subprocess.DEVNULL, stderr=stderr)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
      stderr.seek(0)
      raise RuntimeError(f"{' '.join(command)} failed: {stderr.read()[-2000:]}")
  return seconds, usage.ru_maxrss * 1024  # Linux reports KiB


def untiled_worker(workdir, bitstream, output):
  from common import image_utils, run_dir
  from mshyper.models import Model
  with open(bitstream, "rb") as f:
    data = f.read()
  coder = run_dir.load_codec_for_file(workdir, Model, data)
  coder.tile_latents = 1 << 30
  image_utils.write_png(output, coder.decode(data))


def run(args):
  from benchmarks import reporting
  rows = {}
  with tempfile.TemporaryDirectory() as tmp:
    files = {}
    for key, (label, config_path) in MODELS.items():
      workdir, bitstream = os.path.join(tmp, key), os.path.join(tmp, f"{key}.ntc")
      print(f"{label}: writing a {args.width}x{args.height} bitstream", flush=True)
      subprocess.run([sys.executable, "-m", "benchmarks.decode_memory", "--make_worker",
                      config_path, workdir, bitstream, str(args.height), str(args.width)],
                     cwd=configs.PROJECT_DIR, check=True,
                     env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
      files[key] = (label, workdir, bitstream)
    for tiled in (True, False) if args.untiled else (True,):
      for key, (label, workdir, bitstream) in files.items():
        seconds, peak = decode_in_child(workdir, bitstream, os.path.join(tmp, "out.png"), tiled)
        name = "tiled" if tiled else "untiled"
        rows.setdefault(key, dict(label=label))[f"{name}_peak_rss_gib"] = peak / 2 ** 30
        rows[key][f"{name}_wall_s"] = seconds
        print(f"{label}: {name} decode {seconds:.1f} s, peak RSS {peak / 2 ** 30:.2f} GiB",
              flush=True)
  report = dict(name="decode_memory", height=args.height, width=args.width,
                weights="random initialization (tf.keras seed 0), latents random",
                note="peak RSS = ru_maxrss of the decoding process (python -m mshyper.codec "
                     "decompress for 'tiled')", models=rows)
  reporting.publish(report, args.out, summary=json.dumps(rows, indent=1))


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks.decode_memory",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--height", type=int, default=3000)
  parser.add_argument("--width", type=int, default=4000)
  parser.add_argument("--untiled", action="store_true",
                      help="also decode in one piece (needs much more memory)")
  parser.add_argument("--out", default=DEFAULT_OUT)
  parser.add_argument("--make_worker", nargs=5, help=argparse.SUPPRESS)
  parser.add_argument("--untiled_worker", nargs=3, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.height < 1 or args.width < 1:
    parser.error("--height and --width must be >= 1")
  if args.make_worker:
    config_path, workdir, bitstream, height, width = args.make_worker
    make_run(config_path, workdir, int(height), int(width), bitstream)
  elif args.untiled_worker:
    untiled_worker(*args.untiled_worker)
  else:
    run(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
