"""`python -m {factorized,mshyper}.codec {compress,decompress} --workdir W IN OUT [--benchmark]`.

TensorFlow is imported only once the arguments are valid; range-coding tables are read from a
cache next to the checkpoint (common.entropy_tables); `decompress` builds and restores only the
decoder side of the model (h_s, g_s, priors: common.run_dir.load_codec_for_file) and writes a
fast-compressed PNG. --benchmark prints where the wall time went.
"""
import argparse
import os
import sys
import time

from common import file_io


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


def _check_output(path):
  """Fails before any work when the output is a directory (its folder is created if needed)."""
  if os.path.isdir(path):
    raise IsADirectoryError(f"Output {path} is a directory; give a file name.")


def exit_now(status):
  """Ends the process with `status` once output is flushed, skipping the interpreter's teardown
  of TensorFlow's state (seconds after a decode, more than the decode itself; every file was
  written and closed before). For the command-line entry points only."""
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)


def main(model_module, argv=None):
  """model_module: the module defining the model class `Model` (e.g. "mshyper.models")."""
  stopwatch = _Stopwatch()
  package = model_module.split(".")[0]
  parser = argparse.ArgumentParser(
      prog=f"python -m {package}.codec",
      description="Compress an image to a file with a trained model, or decompress one. "
                  "A mistake (missing file, damaged bitstream, ...) prints one 'error:' line "
                  "and exits with status 2.")
  parser.add_argument("--debug", action="store_true", help="show the traceback of errors")
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
  from common import cli
  with cli.user_errors(args.debug):
    _check_output(args.output)
    import tensorflow  # noqa: F401  (timed on its own: the floor of every TF program)
    stopwatch.lap("import_tensorflow")
    from common import codec, image_utils, run_dir
    model_cls = run_dir.model_class(model_module)
    stopwatch.lap("import_rest")
    if args.command == "compress":
      image = image_utils.read_image(args.input)
      codec.check_image_size(*image.shape[:2])
      coder = run_dir.load_codec(args.workdir, model_cls)
      stopwatch.lap("load")
      data = coder.encode(image)
      stopwatch.lap("encode")
      file_io.write_bytes_atomic(args.output, data)
      stopwatch.lap("write")
      bpp = 8 * len(data) / (image.shape[0] * image.shape[1])
      print(f"{args.input} ({image.shape[1]}x{image.shape[0]}) -> {args.output}: "
            f"{len(data)} bytes, {bpp:.4f} bpp")
      stages = None
    else:
      with open(args.input, "rb") as f:
        data = f.read()
      coder = run_dir.load_codec_for_file(args.workdir, model_cls, data)
      stopwatch.lap("load")
      timer = codec.Timer()
      image = coder.decode(data, timer)
      stopwatch.lap("decode")
      image_utils.write_png(args.output, image, compress_level=1)
      stopwatch.lap("write")
      print(f"{args.input} -> {args.output} ({image.shape[1]}x{image.shape[0]})")
      stages = {f"decode.{k}": v for k, v in timer.seconds.items()}
    if args.benchmark:
      total = sum(stopwatch.seconds.values())
      print(f"benchmark: total={total:.3f}s {stopwatch.report(stages)}")
  return 0
