"""Compress/decompress real files:
python -m mshyper.codec {compress,decompress} --workdir W IN OUT"""

from common import codec_cli

if __name__ == "__main__":
  codec_cli.exit_now(codec_cli.main("mshyper.models"))
