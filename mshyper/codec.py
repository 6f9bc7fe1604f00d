"""Compress/decompress real files:
python -m mshyper.codec {compress,decompress} --workdir W IN OUT"""
import sys

from common import codec_cli

if __name__ == "__main__":
  sys.exit(codec_cli.main("mshyper.models"))
