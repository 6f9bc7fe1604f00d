"""`python -m {factorized,mshyper}.codec {compress,decompress} --workdir W IN OUT`."""
import argparse
import sys

from common import codec, image_utils


def _write_bytes(path, data):
  with image_utils.atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)


def main(model_cls, argv=None):
  parser = argparse.ArgumentParser(
      prog=f"python -m {model_cls.__module__.split('.')[0]}.codec",
      description="Compress an image to a file with a trained model, or decompress one.")
  sub = parser.add_subparsers(dest="command", required=True)
  compress = sub.add_parser("compress", help="image (PNG/JPEG/...) -> bitstream file")
  decompress = sub.add_parser("decompress", help="bitstream file -> PNG")
  for p in (compress, decompress):
    p.add_argument("--workdir", required=True, help="training run directory with checkpoints")
    p.add_argument("input")
    p.add_argument("output")
  args = parser.parse_args(argv)
  try:
    if args.command == "compress":
      image = image_utils.read_image(args.input)
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
  except (codec.BitstreamError, image_utils.ImageError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0
