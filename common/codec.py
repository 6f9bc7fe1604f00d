"""Real bitstreams: compress an image (or given latents) to bytes and decode them back.

File format, version 2 (all integers big-endian):

  offset  size  field
  0       4     magic b"SNTC"
  4       1     format version (2)
  5       8     model identity: hash of the model family (entropy models) and the config hash
                (config_utils.model_identity)
  13      8     weights fingerprint: hash of the exact decoder-side weights
  21      4     checkpoint step of the weights that wrote the file
  25      4     image height
  29      4     image width
  33      1     number of latent tensors L (z then y for the hyperprior, y for factorized)
  34      L*14  per latent: height, width, channels (3 x uint16), byte length of its string
                (uint32), CRC32 of its integer symbols (int32), seeded with the CRC32 of the
                image height and width (2 x uint32)
  ...     4     CRC32 of every header byte before this field
  ...           the range-coded strings, concatenated in latent order

Version 1 (until this change) had no weights fingerprint, an identity without the model family
and one symbol checksum for all latents.

Decoding validates the whole header before allocating anything: the header checksum (else the
file is damaged), the model identity (else it belongs to another model), the weights fingerprint
(else another run or checkpoint of this model), the image size limits, the latent shapes (they
must equal what the model derives from the image size) and a lower bound on each string's length
given its number of symbols (the most probable symbol of any coding table costs a known minimum
of bits). Each latent's symbols are checked right after it is range-decoded, so a damaged file
fails before the larger latents and the synthesis run, and never yields a garbage image.
"""
import collections
import contextlib
import hashlib
import math
import struct
import time
import zlib
from collections import defaultdict

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc

from common import entropy_tables, image_utils, tiling

MAGIC = b"SNTC"
FORMAT_VERSION = 2
_FIXED = struct.Struct(">4sB8s8sIIIB")
_LATENT = struct.Struct(">HHHII")
_HEADER_CRC = struct.Struct(">I")
MAX_LATENTS = 8
# Image size limits of the format (the encoder refuses larger images, so every file it writes
# decodes): sides of 1..MAX_IMAGE_SIDE pixels and at most MAX_IMAGE_PIXELS pixels (2^26, about
# 67 million).
MAX_IMAGE_SIDE = 32768
MAX_IMAGE_PIXELS = 1 << 26
# A range coder emits bytes as its interval narrows, so its output is never shorter than the
# information content of its symbols under the coding tables, less the trimmed final flush
# (a few bytes); margins keep this bound clear of legitimate files.
_MIN_LENGTH_FACTOR = 0.9
_MIN_LENGTH_SLACK_BYTES = 16

Header = collections.namedtuple("Header", "identity fingerprint step height width latents")
LatentEntry = collections.namedtuple("LatentEntry", "shape length symbols_crc")


class BitstreamError(ValueError):
  """A file that is not a valid bitstream for the loaded model."""


def _crc_symbols(symbols, height, width):
  # Seeded with the image size: a size edited within the same padded size (same latent
  # shapes) would otherwise decode, cropped differently, without any checksum noticing.
  return zlib.crc32(np.ascontiguousarray(np.asarray(symbols, np.int32)).tobytes(),
                    zlib.crc32(struct.pack(">II", height, width)))


def file_identity(model_cls, config_identity_hex):
  """8-byte file identity: the model family (which entropy models code what) + its config hash."""
  text = f"{model_cls.__module__}:{config_identity_hex}"
  return hashlib.sha256(text.encode()).digest()[:8]


def weights_fingerprint(model):
  """8-byte hash of the exact weights a decoder uses (shapes, dtypes and values)."""
  return bytes.fromhex(entropy_tables.weights_fingerprint(model.decoder_variables()))[:8]


def least_bits_per_position(entropy_model, channels):
  """Least bits the `channels` symbols of one latent position cost under the coding tables.

  Batched models (factorized priors) have one table per channel; indexed ones (Gaussians of
  given scales) share theirs, any of which may code any channel.
  """
  bits = _least_bits_per_table(entropy_model)
  if isinstance(entropy_model, tfc.ContinuousIndexedEntropyModel):
    return channels * bits.min()
  if len(bits) != channels:
    raise ValueError(f"{type(entropy_model).__name__} has {len(bits)} coding tables for "
                     f"{channels} channels.")
  return bits.sum()


def _least_bits_per_table(entropy_model):
  """Least bits any symbol costs in each range-coding table; TFC stores the tables back to
  back, each as [-precision, cdf...]."""
  cdf = entropy_model.cdf.numpy()
  starts = np.flatnonzero(cdf < 0)
  bits = []
  for start, end in zip(starts, list(starts[1:]) + [len(cdf)]):
    precision = -int(cdf[start])
    largest = int(np.diff(cdf[start + 1:end]).max())
    bits.append(precision - math.log2(largest))
  return np.asarray(bits)


def header_size(num_latents):
  return _FIXED.size + num_latents * _LATENT.size + _HEADER_CRC.size


def pack_header(header, version=FORMAT_VERSION):
  """Header bytes (with their checksum) of a file."""
  data = _FIXED.pack(MAGIC, version, header.identity, header.fingerprint, header.step,
                     header.height, header.width, len(header.latents))
  for entry in header.latents:
    data += _LATENT.pack(*entry.shape, entry.length, entry.symbols_crc)
  return data + _HEADER_CRC.pack(zlib.crc32(data))


def parse_header(data):
  """Model-independent checks of a file: magic, version, header checksum, total length."""
  data = bytes(data)
  if len(data) < _FIXED.size or data[:4] != MAGIC:
    raise BitstreamError("Not a shallow-NTC bitstream (bad magic or shorter than a header).")
  _, version, identity, fingerprint, step, height, width, count = _FIXED.unpack_from(data)
  if version != FORMAT_VERSION:
    raise BitstreamError(f"Bitstream format version {version}; this decoder reads version "
                         f"{FORMAT_VERSION}.")
  size = header_size(count)
  if len(data) < size:
    raise BitstreamError(f"Damaged bitstream: truncated header ({len(data)} bytes, the header "
                         f"needs {size}).")
  header_crc, = _HEADER_CRC.unpack_from(data, size - _HEADER_CRC.size)
  if zlib.crc32(data[:size - _HEADER_CRC.size]) != header_crc:
    raise BitstreamError("Damaged bitstream: header checksum mismatch.")
  if not 1 <= count <= MAX_LATENTS:
    raise BitstreamError(f"Invalid bitstream: {count} latent tensors (1..{MAX_LATENTS}).")
  latents = []
  for i in range(count):
    h, w, c, length, symbols_crc = _LATENT.unpack_from(data, _FIXED.size + i * _LATENT.size)
    latents.append(LatentEntry((h, w, c), length, symbols_crc))
  payload = sum(entry.length for entry in latents)
  if size + payload != len(data):
    raise BitstreamError(f"Damaged bitstream: {len(data)} bytes, its header says "
                         f"{size + payload}: truncated or padded file.")
  return Header(identity, fingerprint, step, height, width, latents)


def peek_step(data):
  """Checkpoint step recorded in a file's (checked) header, so a decoder loads those weights."""
  return parse_header(data).step


def check_image_size(height, width):
  if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE
          and height * width <= MAX_IMAGE_PIXELS):
    raise ValueError(f"Image size {width}x{height} is outside the codec's limits: sides of 1.."
                     f"{MAX_IMAGE_SIDE} pixels and at most {MAX_IMAGE_PIXELS} pixels.")


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
    self.identity = file_identity(type(model), identity_hex)
    self.fingerprint = weights_fingerprint(model)
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
    self._layout = None

  def latents(self, image):
    """Amortized-inference latents of a uint8 (H, W, 3) image."""
    if self.model.decoder_only:
      raise ValueError("This codec was loaded for decoding only (load_codec(decoder_only=True)): "
                       "it has no encoder weights.")
    return self._analysis(image_utils.to_model_input(image)[None])

  def encode(self, image):
    """uint8 (H, W, 3) -> file bytes."""
    image = np.asarray(image)
    check_image_size(*image.shape[:2])
    return self.encode_latents(self.latents(image), image.shape[0], image.shape[1])

  def encode_latents(self, latents, height, width):
    """Quantizes and range-codes latents (e.g. SGA-optimized ones) of an height x width image."""
    check_image_size(height, width)
    coded = self.model.compress_latents(latents, self.entropy_models)
    strings = [string.numpy() for _, string, _ in coded]
    entries = [LatentEntry(tuple(latents[name].shape[1:]), len(string),
                           _crc_symbols(symbols, height, width))
               for (name, _, symbols), string in zip(coded, strings)]
    header = Header(self.identity, self.fingerprint, self.step, height, width, entries)
    return pack_header(header) + b"".join(strings)

  def latent_layout(self):
    """[(name, stride, channels, least bits of one position's symbols)] in file order."""
    if self._layout is None:
      self._layout = []
      for name, model_index in self.model.CODED_LATENTS:
        stride, channels = self.model.latent_geometry[name]
        self._layout.append((name, stride, channels, least_bits_per_position(
            self.entropy_models[model_index], channels)))
    return self._layout

  def expected_shapes(self, height, width):
    """{latent name: (h, w, c)} the model derives for an height x width image."""
    factor = self.model.downsample_factor
    padded_h, padded_w = -(-height // factor) * factor, -(-width // factor) * factor
    return {name: (padded_h // stride, padded_w // stride, channels)
            for name, stride, channels, _ in self.latent_layout()}

  def check_header(self, header):
    """Checks a parsed header against this model and its weights, before any decoding."""
    if header.identity != self.identity:
      raise BitstreamError(f"Bitstream was written by another model (identity "
                           f"{header.identity.hex()}, this model is {self.identity.hex()}).")
    if header.fingerprint != self.fingerprint:
      if header.step != self.step:
        raise BitstreamError(f"Bitstream was written with the weights of checkpoint step "
                             f"{header.step}; the loaded weights are from step {self.step}.")
      raise BitstreamError(f"Bitstream was written by another run of this model (other weights "
                           f"at the same step {self.step}: fingerprint "
                           f"{header.fingerprint.hex()}, loaded {self.fingerprint.hex()}).")
    try:
      check_image_size(header.height, header.width)
    except ValueError as e:
      raise BitstreamError(f"Invalid bitstream: {e}") from None
    layout = self.latent_layout()
    if len(header.latents) != len(layout):
      raise BitstreamError(f"Invalid bitstream: {len(header.latents)} latent tensors; this "
                           f"model codes {len(layout)}.")
    expected = self.expected_shapes(header.height, header.width)
    strings, offset = {}, header_size(len(header.latents))
    for (name, _, _, position_bits), entry in zip(layout, header.latents):
      if entry.shape != expected[name]:
        raise BitstreamError(f"Invalid bitstream: latent {name} has shape {entry.shape}; a "
                             f"{header.width}x{header.height} image gives {expected[name]}.")
      h, w, c = entry.shape
      least = int(_MIN_LENGTH_FACTOR * h * w * position_bits / 8) - _MIN_LENGTH_SLACK_BYTES
      if entry.length < least:
        raise BitstreamError(f"Invalid bitstream: latent {name} has {h * w * c} symbols, which "
                             f"take at least {least} bytes; its string has {entry.length}.")
      strings[name] = (offset, entry)
      offset += entry.length
    return strings

  def parse(self, data):
    """Validates a file; returns (header, {latent name: string bytes})."""
    data = bytes(data)
    header = parse_header(data)
    placed = self.check_header(header)
    return header, {name: data[offset:offset + entry.length]
                    for name, (offset, entry) in placed.items()}

  def decode(self, data, timer=None):
    """File bytes -> uint8 (H, W, 3); raises BitstreamError for any inconsistent file."""
    timer = timer or Timer()
    header, strings = self.parse(data)
    entries = dict(zip(strings, header.latents))

    def verify(name, symbols):
      crc = _crc_symbols(symbols.numpy(), header.height, header.width)
      if crc != entries[name].symbols_crc:
        raise BitstreamError(f"Damaged bitstream: decoded symbols of latent {name} do not "
                             f"match the checksum.")

    try:
      y_hat = self.model.decompress_latents(
          {k: tf.constant(v) for k, v in strings.items()},
          {k: entry.shape for k, entry in entries.items()}, self.entropy_models, timer, verify)
    except tf.errors.InvalidArgumentError as e:
      raise BitstreamError(f"Damaged bitstream: range decoding failed ({e.message}).") from e
    with timer("g_s"):
      return self.synthesize_image(y_hat, header.height, header.width)

  def synthesize_image(self, y_hat, height, width):
    """uint8 (height, width, 3) image of quantized latents; in tiles when they exceed
    tile_latents on a side, so memory stays bounded (common/tiling.py)."""
    if max(y_hat.shape[1:3]) <= self.tile_latents:
      x_hat = self._synthesis(y_hat)
      x_hat = image_utils.crop_to(x_hat, height, width)
      return image_utils.from_model_output(x_hat[0]).numpy()
    if self._receptive_margin is None:
      self._receptive_margin = tiling.receptive_margin(self.model.synthesis, y_hat.shape[-1])
    margin, factor = self._receptive_margin
    return tiling.tiled_synthesis(self._synthesis, y_hat, margin, factor, height, width,
                                  self.tile_latents)


