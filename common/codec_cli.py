"""`python -m {factorized,mshyper}.codec {compress,decompress} --workdir W IN OUT`."""
import argparse
import os

from common import cli, codec, image_utils


def _write_bytes(path, data):
  with image_utils.atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)


def _check_output(path):
  """Fails before any work when the output is a directory (its folder is created if needed)."""
  if os.path.isdir(path):
    raise IsADirectoryError(f"Output {path} is a directory; give a file name.")


def main(model_cls, argv=None):
  parser = argparse.ArgumentParser(
      prog=f"python -m {model_cls.__module__.split('.')[0]}.codec",
      description="Compress an image to a file with a trained model, or decompress one. "
                  "A mistake (missing file, damaged bitstream, ...) prints one 'error:' line "
                  "and exits with status 2.")
  parser.add_argument("--debug", action="store_true", help="show the traceback of errors")
  sub = parser.add_subparsers(dest="command", required=True)
  compress = sub.add_parser("compress", help="image (PNG/JPEG/...) -> bitstream file")
  decompress = sub.add_parser("decompress", help="bitstream file -> PNG")
  for p in (compress, decompress):
    p.add_argument("--workdir", required=True, help="training run directory with checkpoints")
    p.add_argument("input")
    p.add_argument("output")
  args = parser.parse_args(argv)
  with cli.user_errors(args.debug):
    _check_output(args.output)
    if args.command == "compress":
      image = image_utils.read_image(args.input)
      codec.check_image_size(*image.shape[:2])
      coder = codec.load_codec(args.workdir, model_cls)
      data = coder.encode(image)
      _write_bytes(args.output, data)
      bpp = 8 * len(data) / (image.shape[0] * image.shape[1])
      print(f"{args.input} ({image.shape[1]}x{image.shape[0]}) -> {args.output}: "
            f"{len(data)} bytes, {bpp:.4f} bpp")
    else:
      with open(args.input, "rb") as f:
        data = f.read()
      coder = codec.load_codec_for_file(args.workdir, model_cls, data)
      image = coder.decode(data)
      image_utils.write_png(args.output, image)
      print(f"{args.input} -> {args.output} ({image.shape[1]}x{image.shape[0]})")
  return 0
