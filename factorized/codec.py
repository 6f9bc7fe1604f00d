"""Compress/decompress real files:
python -m factorized.codec {compress,decompress} --workdir W IN OUT"""
import sys

from common import codec_cli

if __name__ == "__main__":
  sys.exit(codec_cli.main("factorized.models"))
