"""Real bitstreams: compress an image (or given latents) to bytes and decode them back.

File format, version 1 (all integers big-endian):

  offset  size  field
  0       4     magic b"SNTC"
  4       1     format version (1)
  5       8     model identity: first 8 bytes of the config hash (config_utils.model_identity)
  13      4     checkpoint step of the weights that wrote the file
  17      4     image height
  21      4     image width
  25      1     number of latent tensors L (z then y for the hyperprior, y for factorized)
  26      L*10  per latent: height, width, channels (3 x uint16), byte length of its string (uint32)
  ...     4     CRC32 of the integer symbols of all latents (int32, file order)
  ...     4     CRC32 of every header byte before this field
  ...           the range-coded strings, concatenated in latent order

The symbol checksum makes a wrong decode (e.g. a flipped payload byte, or a decoder whose entropy
parameters drifted) fail loudly instead of returning a garbage image.
"""
import contextlib
import struct
import time
import zlib
from collections import defaultdict

import numpy as np
import tensorflow as tf

from common import entropy_tables, image_utils, tiling

MAGIC = b"SNTC"
FORMAT_VERSION = 1
_FIXED = struct.Struct(">4sB8sIIIB")
_LATENT = struct.Struct(">HHHI")
_CHECKSUMS = struct.Struct(">II")


class BitstreamError(ValueError):
  """A file that is not a valid bitstream for the loaded model."""


def _crc_symbols(symbol_tensors):
  crc = 0
  for symbols in symbol_tensors:
    crc = zlib.crc32(np.ascontiguousarray(np.asarray(symbols, np.int32)).tobytes(), crc)
  return crc


class Timer:
  """Accumulates wall time per named stage; tensors are forced to finish inside each stage."""

  def __init__(self):
    self.seconds = defaultdict(float)

  @contextlib.contextmanager
  def __call__(self, stage):
    start = time.perf_counter()
    yield
    self.seconds[stage] += time.perf_counter() - start


class Codec:
  """Encoder/decoder around a trained model whose weights come from checkpoint `step`."""

  def __init__(self, model, identity_hex, step, checkpoint_prefix=None):
    """checkpoint_prefix: the weights' checkpoint, next to which range-coding tables are cached
    (common.entropy_tables); None builds them here."""
    self.model = model
    self.identity = bytes.fromhex(identity_hex[:16])
    self.step = int(step)
    self.entropy_models = entropy_tables.coding_entropy_models(model, identity_hex,
                                                               checkpoint_prefix)
    self.tile_latents = tiling.TILE_LATENTS
    self._receptive_margin = None  # (margin, factor), measured at the first tiled decode
    # Unknown spatial sizes: one trace serves every image size. The transforms have no
    # tensor-dependent Python control flow, and AutoGraph's conversion costs seconds.
    self._analysis = tf.function(lambda x: model.infer_latents(model.pad(x)),
                                 input_signature=[tf.TensorSpec((None, None, None, 3))],
                                 autograph=False)
    self._synthesis = tf.function(
        model.synthesis,
        input_signature=[tf.TensorSpec((None, None, None, model.bottleneck_size))],
        autograph=False)

  def latents(self, image):
    """Amortized-inference latents of a uint8 (H, W, 3) image."""
    return self._analysis(image_utils.to_model_input(image)[None])

  def encode(self, image):
    """uint8 (H, W, 3) -> file bytes."""
    image = np.asarray(image)
    return self.encode_latents(self.latents(image), image.shape[0], image.shape[1])

  def encode_latents(self, latents, height, width):
    """Quantizes and range-codes latents (e.g. SGA-optimized ones) of an height x width image."""
    coded = self.model.compress_latents(latents, self.entropy_models)
    if [name for name, _, _ in coded] != self.latent_names():
      raise ValueError(f"{type(self.model).__name__} coded latents "
                       f"{[name for name, _, _ in coded]}, declared {self.latent_names()}.")
    header = _FIXED.pack(MAGIC, FORMAT_VERSION, self.identity, self.step, height, width,
                         len(coded))
    for name, string, _ in coded:
      shape = latents[name].shape[1:]
      header += _LATENT.pack(*shape, len(string.numpy()))
    header += struct.pack(">I", _crc_symbols([s for _, _, s in coded]))
    header += struct.pack(">I", zlib.crc32(header))
    return header + b"".join(string.numpy() for _, string, _ in coded)

  def parse(self, data):
    """Validates a file; returns (height, width, strings by name, shapes by name, symbols crc)."""
    if len(data) < _FIXED.size or data[:4] != MAGIC:
      raise BitstreamError("Not a shallow-NTC bitstream (bad magic or shorter than a header).")
    magic, version, identity, step, height, width, count = _FIXED.unpack_from(data)
    if version != FORMAT_VERSION:
      raise BitstreamError(f"Bitstream format version {version}; this decoder reads version "
                           f"{FORMAT_VERSION}.")
    names = self.latent_names()
    header_size = _FIXED.size + count * _LATENT.size + _CHECKSUMS.size
    if count != len(names) or len(data) < header_size:
      raise BitstreamError(f"Truncated or foreign bitstream: header says {count} latents "
                           f"({len(data)} bytes); this model codes {len(names)}.")
    symbols_crc, header_crc = _CHECKSUMS.unpack_from(data, header_size - _CHECKSUMS.size)
    if zlib.crc32(data[:header_size - 4]) != header_crc:
      raise BitstreamError("Corrupted bitstream: header checksum mismatch.")
    if identity != self.identity:
      raise BitstreamError(f"Bitstream was written by another model (identity {identity.hex()}, "
                           f"this model is {self.identity.hex()}).")
    if step != self.step:
      raise BitstreamError(f"Bitstream was written with the weights of checkpoint step {step}; "
                           f"the loaded weights are from step {self.step}.")
    strings, shapes, offset = {}, {}, header_size
    for i, name in enumerate(names):
      h, w, c, length = _LATENT.unpack_from(data, _FIXED.size + i * _LATENT.size)
      strings[name], shapes[name] = data[offset:offset + length], (h, w, c)
      offset += length
    if offset != len(data):
      raise BitstreamError(f"Bitstream length {len(data)} bytes does not match its header "
                           f"({offset} bytes): truncated or padded file.")
    return height, width, strings, shapes, symbols_crc

  def latent_names(self):
    """Names of the coded latents in file order."""
    return list(self.model.CODED_LATENTS)

  def decode(self, data, timer=None):
    """File bytes -> uint8 (H, W, 3); raises BitstreamError for any inconsistent file."""
    timer = timer or Timer()
    height, width, strings, shapes, symbols_crc = self.parse(bytes(data))
    try:
      y_hat, symbols = self.model.decompress_latents(
          {k: tf.constant(v) for k, v in strings.items()}, shapes, self.entropy_models, timer)
    except tf.errors.InvalidArgumentError as e:
      raise BitstreamError(f"Corrupted bitstream: range decoding failed ({e.message}).") from e
    if _crc_symbols([s.numpy() for s in symbols]) != symbols_crc:
      raise BitstreamError("Corrupted bitstream: decoded symbols do not match the checksum.")
    with timer("g_s"):
      return self.synthesize_image(y_hat, height, width)

  def synthesize_image(self, y_hat, height, width):
    """uint8 (height, width, 3) image of quantized latents; in tiles when they exceed
    tile_latents on a side, so memory stays bounded (common/tiling.py)."""
    if max(y_hat.shape[1:3]) <= self.tile_latents:
      x_hat = self._synthesis(y_hat)
      return image_utils.from_model_output(x_hat[0, :height, :width]).numpy()
    if self._receptive_margin is None:
      self._receptive_margin = tiling.receptive_margin(self.model.synthesis, y_hat.shape[-1])
    margin, factor = self._receptive_margin
    return tiling.tiled_synthesis(self._synthesis, y_hat, margin, factor, height, width,
                                  self.tile_latents)


def load_codec(workdir, model_cls, step=None, coded_channels=None):
  """Codec for the weights of `workdir` (its latest checkpoint, or checkpoint `step`).

  coded_channels ({latent name: channels}, see peek_header) loads a decoder-only codec: only
  the decoder transforms are built and restored.
  """
  from common import config_utils, experiment, train_lib
  config = experiment.load_config(workdir, model_cls)
  model = experiment.build_model(model_cls, config.model_config, stored=True,
                                 coded_channels=coded_channels)
  if step is None:
    prefix = train_lib.resolve_checkpoint(workdir)
  else:
    prefix = f"{train_lib.checkpoint_dir(workdir)}/ckpt-{step}"
    if not tf.io.gfile.exists(prefix + ".index"):
      raise FileNotFoundError(f"{workdir} has no checkpoint for step {step} (kept: "
                              f"{tf.train.get_checkpoint_state(train_lib.checkpoint_dir(workdir))}).")
  train_lib.restore(model, prefix, weights_only=True)
  return Codec(model, config_utils.model_identity(config), int(prefix.rsplit("-", 1)[1]),
               checkpoint_prefix=prefix)


def peek_header(data, latent_names):
  """(checkpoint step, {latent name: channels}) from a file's header, before loading a model.

  The step lets a decoder load the matching weights, the channels a decoder-only model.
  """
  if len(data) < _FIXED.size or data[:4] != MAGIC:
    raise BitstreamError("Not a shallow-NTC bitstream (bad magic or shorter than a header).")
  step, count = _FIXED.unpack_from(data)[3], _FIXED.unpack_from(data)[6]
  header_size = _FIXED.size + count * _LATENT.size + _CHECKSUMS.size
  if count != len(latent_names) or len(data) < header_size:
    raise BitstreamError(f"Truncated or foreign bitstream: header says {count} latents "
                         f"({len(data)} bytes); this model codes {len(latent_names)}.")
  if zlib.crc32(data[:header_size - 4]) != _CHECKSUMS.unpack_from(data, header_size - 8)[1]:
    raise BitstreamError("Corrupted bitstream: header checksum mismatch.")
  channels = {name: _LATENT.unpack_from(data, _FIXED.size + i * _LATENT.size)[2]
              for i, name in enumerate(latent_names)}
  return step, channels
