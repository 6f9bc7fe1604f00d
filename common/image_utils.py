"""Image files and tensors: reading, atomic writing, padding, and the model's value range.

Every image enters the project through `read_image` (8-bit sRGB, (H, W, 3)) and every
model sees `to_model_input` values in [-0.5, 0.5]; `from_model_output` maps back to uint8.
"""

import io
import numbers
import os

from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageCms
import tensorflow as tf

from common import file_io


class ImageError(ValueError):
  """An image file is missing, is not an image, or cannot be decoded."""


_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Modes that Image.convert("RGB") maps faithfully; the note says what was lost or changed.
_MODE_NOTES = {
    "L": "grayscale replicated to RGB",
    "1": "1-bit black/white converted to RGB",
    "LA": "grayscale with alpha: alpha dropped, grayscale replicated to RGB",
    "RGBA": "alpha channel dropped",
    "RGBa": "alpha channel dropped",
    "RGBX": "padding channel dropped",
    "P": "palette expanded to RGB",
    "PA": "palette expanded to RGB, alpha dropped",
    "CMYK": "CMYK converted to RGB",
    "YCbCr": "YCbCr converted to RGB",
}
_GRAY16_MODES = ("I;16", "I;16B", "I;16L")


def _png_bit_depth(path):
  # The IHDR chunk always comes first: signature (8), length (4), type (4), width (4),
  # height (4), then the bit depth byte. Pillow hides 16-bit RGB behind mode "RGB".
  with open(path, "rb") as f:
    header = f.read(25)
  return header[24] if header[:8] == _PNG_SIGNATURE and len(header) == 25 else None


def _to_srgb_if_tagged(image, notes):
  """Converts pixels to sRGB when an embedded RGB ICC profile says they are not sRGB."""
  icc = image.info.get("icc_profile")
  if not icc:
    return image
  try:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    description = ImageCms.getProfileDescription(profile).strip()
    if profile.profile.xcolor_space.strip() != "RGB" or "sRGB" in description:
      return image
    converted = ImageCms.profileToProfile(image, profile, _SRGB_PROFILE, outputMode="RGB")
  except ImageCms.PyCMSError as e:
    notes.append(f"unusable ICC profile ignored ({e})")
    return image
  notes.append(f"colours converted from ICC profile {description!r} to sRGB")
  return converted


def read_image(path):
  """Reads an image file as uint8 RGB (H, W, 3) in sRGB.

  Grayscale, palette, alpha, CMYK and 16-bit images are converted to 8-bit RGB, and RGB
  pixels tagged with a non-sRGB ICC profile (e.g. Adobe RGB) are converted to sRGB; each
  conversion is logged. 16-bit samples keep their high byte, as tf.io.decode_png does.
  Pixels are used as stored (EXIF orientation is not applied, like tf.io.decode_image).
  Only the first frame of animated or multi-page files is read.

  Raises:
    ImageError: the file is missing, not an image, corrupt, or of an unsupported mode.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ImageError(f"Image file not found: {path}")
  try:
    with Image.open(path) as image:
      frames = getattr(image, "n_frames", 1)
      image.load()
  except Image.UnidentifiedImageError:
    raise ImageError(f"Not an image, or a format Pillow cannot read: {path}") from None
  except Image.DecompressionBombError as e:  # Over Pillow's pixel limit (MAX_IMAGE_PIXELS).
    raise ImageError(f"Image too large to read: {path}: {e}") from None
  except (OSError, SyntaxError, ValueError) as e:  # What Pillow raises for damaged data.
    raise ImageError(f"Corrupt or truncated image {path}: {e}") from e

  notes = []
  if frames > 1:
    notes.append(f"first of {frames} frames used")
  if image.format == "PNG" and _png_bit_depth(path) == 16:
    notes.append("16 bits per sample reduced to 8 (high byte)")
  mode = image.mode
  if mode in _GRAY16_MODES:
    gray = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
    notes.append("grayscale replicated to RGB")
    array = np.repeat(gray[:, :, np.newaxis], 3, axis=2)
  elif mode == "RGB" or mode in _MODE_NOTES:
    if mode != "RGB":
      notes.append(_MODE_NOTES[mode])
      # Palette transparency must go through RGBA, else Pillow warns and may misread it.
      if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
      image = image.convert("RGB")  # Keeps image.info, hence the ICC profile.
    array = np.asarray(_to_srgb_if_tagged(image, notes), dtype=np.uint8)
  else:
    raise ImageError(
        f"Unsupported image mode {mode!r} (e.g. 32-bit integer or float samples) in {path}; "
        "convert it to 8-bit RGB first.")
  if notes:
    logging.info("read_image %s: %s.", path, "; ".join(notes))
  return array


def write_png(path, array_uint8, compress_level=6):
  """Writes a uint8 (H, W, 3) or (H, W) array as a plain PNG (no ICC or other chunks).

  compress_level: zlib's 0..9; 1 writes a 768x512 photo ~6x faster than the default 6 in a
  file ~13% larger (what a decoder that is timed wants).
  """
  array = np.asarray(array_uint8)
  if array.dtype != np.uint8 or not (array.ndim == 2 or
                                     (array.ndim == 3 and array.shape[2] == 3)):
    raise ValueError(
        f"write_png({path}): expected a uint8 array of shape (H, W, 3) or (H, W), "
        f"got {array.dtype} {array.shape}.")
  with file_io.atomic_path(path) as temporary:
    Image.fromarray(array).save(temporary, format="PNG", compress_level=compress_level)


def _static_or_dynamic_dim(x, axis):
  # Python ints keep static shapes in graph mode; fall back to tensors for unknown sizes.
  size = x.shape[axis]
  return size if size is not None else tf.shape(x)[axis]


def _leading_padding(padded_size, size):
  # Where the padding is at least as large as the image (tiny images), the image sits in the
  # middle of the canvas: pixels next to a canvas border are reconstructed worst (the transforms'
  # convolutions see zeros beyond it), and at a corner a tiny image would be all border. Larger
  # images keep the authors' layout (image at the top left). Python ints keep static shapes.
  if isinstance(padded_size, int) and isinstance(size, int):
    return (padded_size - size) // 2 if padded_size - size >= size else 0
  return tf.where(padded_size - size >= size, (padded_size - size) // 2, 0)


def pad_to_multiple(x, factor, mode="edge"):
  """Pads images (N, H, W, C) so that `factor` divides H and W.

  The padding goes at the bottom and right, except for an image smaller than its padding, which
  is centred (see _leading_padding). mode "edge" replicates the outermost row/column; "reflect"
  mirrors the image about it (tf.pad's REFLECT, as the authors' evaluation pads). A centred tiny
  image, where REFLECT would fail, is padded by replication in either mode.
  """
  if mode not in ("edge", "reflect"):
    raise ValueError(f"pad_to_multiple: mode must be 'edge' or 'reflect', got {mode!r}.")
  x = tf.convert_to_tensor(x)
  if x.shape.rank != 4:
    raise ValueError(f"pad_to_multiple expects (N, H, W, C), got shape {x.shape}.")
  if not isinstance(factor, numbers.Integral) or factor < 1:
    raise ValueError(f"pad_to_multiple: factor must be a positive int, got {factor!r}.")
  factor = int(factor)  # Also accepts numpy integers.
  for axis in (1, 2):
    size = _static_or_dynamic_dim(x, axis)
    if isinstance(size, int) and size % factor == 0:
      continue  # Already a multiple (e.g. training crops): no copy.
    padded_size = (size + factor - 1) // factor * factor
    source = tf.range(padded_size) - _leading_padding(padded_size, size)
    if mode == "reflect":  # Not for a centred image: its padding exceeds a mirror image.
      reflected = tf.where(source < size, source, 2 * (size - 1) - source)
      source = tf.where(padded_size - size < size, reflected, source)
    x = tf.gather(x, tf.clip_by_value(source, 0, size - 1), axis=axis)
  return x


def crop_to(x, height, width):
  """Crops images (N, H, W, C) to the (height, width) image pad_to_multiple placed in them."""
  top = _leading_padding(_static_or_dynamic_dim(x, 1), height)
  left = _leading_padding(_static_or_dynamic_dim(x, 2), width)
  return x[:, top:top + height, left:left + width, :]


def to_model_input(x):
  """uint8 pixels -> float32 tensor in [-0.5, 0.5] (the range every model takes)."""
  x = tf.convert_to_tensor(x)
  if x.dtype != tf.uint8:
    raise TypeError(f"to_model_input expects uint8 pixels, got {x.dtype.name}.")
  return tf.cast(x, tf.float32) / 255.0 - 0.5


def from_model_output(x):
  """Model output in [-0.5, 0.5] -> uint8 tensor (scaled, rounded, clipped to 0..255)."""
  return tf.saturate_cast(tf.round((tf.convert_to_tensor(x, tf.float32) + 0.5) * 255.0),
                          tf.uint8)
