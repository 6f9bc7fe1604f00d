"""`python -m {factorized,mshyper}.codec {compress,decompress} --workdir W IN OUT [--benchmark]`.

TensorFlow is imported only once the arguments are valid. Decompressing builds and restores only
the decoder (sized from the file header) and reads cached range-coding tables
(common.entropy_tables). --benchmark prints where the wall time went.
"""
import argparse
import importlib
import sys
import time


class _Stopwatch:
  """Wall time of consecutive stages since `start`."""

  def __init__(self):
    self.last = time.perf_counter()
    self.seconds = {}

  def lap(self, stage):
    now = time.perf_counter()
    self.seconds[stage] = self.seconds.get(stage, 0.) + now - self.last
    self.last = now

  def report(self, extra=None):
    stages = dict(self.seconds, **(extra or {}))
    return " ".join(f"{k}={v:.3f}s" for k, v in stages.items())


def _write_bytes(path, data, image_utils):
  with image_utils.atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)


def main(model_module, argv=None):
  """model_module: the module defining the model class `Model` (e.g. "mshyper.models")."""
  stopwatch = _Stopwatch()
  package = model_module.split(".")[0]
  parser = argparse.ArgumentParser(
      prog=f"python -m {package}.codec",
      description="Compress an image to a file with a trained model, or decompress one.")
  sub = parser.add_subparsers(dest="command", required=True)
  compress = sub.add_parser("compress", help="image (PNG/JPEG/...) -> bitstream file")
  decompress = sub.add_parser("decompress", help="bitstream file -> PNG")
  for p in (compress, decompress):
    p.add_argument("--workdir", required=True, help="training run directory with checkpoints")
    p.add_argument("--benchmark", action="store_true",
                   help="print the wall time of each stage (imports, model load, coding)")
    p.add_argument("input")
    p.add_argument("output")
  args = parser.parse_args(argv)
  import tensorflow  # noqa: F401  (timed on its own: the floor of every TF program)
  stopwatch.lap("import_tensorflow")
  from common import codec, image_utils
  model_cls = importlib.import_module(model_module).Model
  stopwatch.lap("import_rest")
  try:
    if args.command == "compress":
      image = image_utils.read_image(args.input)
      coder = codec.load_codec(args.workdir, model_cls)
      stopwatch.lap("load")
      data = coder.encode(image)
      stopwatch.lap("encode")
      _write_bytes(args.output, data, image_utils)
      stopwatch.lap("write")
      bpp = 8 * len(data) / (image.shape[0] * image.shape[1])
      print(f"{args.input} ({image.shape[1]}x{image.shape[0]}) -> {args.output}: "
            f"{len(data)} bytes, {bpp:.4f} bpp")
      stages = None
    else:
      with open(args.input, "rb") as f:
        data = f.read()
      step, channels = codec.peek_header(data, model_cls.CODED_LATENTS)
      coder = codec.load_codec(args.workdir, model_cls, step=step, coded_channels=channels)
      stopwatch.lap("load")
      timer = codec.Timer()
      image = coder.decode(data, timer)
      stopwatch.lap("decode")
      image_utils.write_png(args.output, image)
      stopwatch.lap("write")
      print(f"{args.input} -> {args.output} ({image.shape[1]}x{image.shape[0]})")
      stages = {f"decode.{k}": v for k, v in timer.seconds.items()}
    if args.benchmark:
      total = sum(stopwatch.seconds.values())
      print(f"benchmark: total={total:.3f}s {stopwatch.report(stages)}")
  except (codec.BitstreamError, image_utils.ImageError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0
