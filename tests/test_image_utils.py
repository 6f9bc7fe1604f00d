"""image_utils: reading with conversions, clear errors, atomic PNG writes, padding, value range."""

import importlib.util
import os
import struct
import zlib

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from common import image_utils


def _gradient_rgb(height=9, width=17):
  y, x = np.mgrid[0:height, 0:width]
  return np.stack([x * 15, y * 28, (x + y) * 9], axis=-1).astype(np.uint8)


def _write_png16(path, samples):
  """A 16-bit PNG written by hand: Pillow cannot write 16-bit RGB."""
  height, width, channels = samples.shape
  color_type = {1: 0, 3: 2}[channels]
  rows = b"".join(b"\x00" + samples[i].astype(">u2").tobytes() for i in range(height))

  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

  header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
  with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def test_rgb_png_round_trip(tmp_path):
  image = _gradient_rgb()
  path = tmp_path / "sub" / "dir" / "x.png"  # parent directories are created
  image_utils.write_png(path, image)
  result = image_utils.read_image(path)
  assert result.dtype == np.uint8 and result.shape == (9, 17, 3)
  np.testing.assert_array_equal(result, image)
  assert Image.open(path).info == {}  # plain PNG: no ICC or text chunks


def test_grayscale_is_replicated_and_logged(tmp_path, caplog):
  gray = _gradient_rgb()[:, :, 0]
  Image.fromarray(gray, "L").save(tmp_path / "gray.png")
  with caplog.at_level("INFO"):
    result = image_utils.read_image(tmp_path / "gray.png")
  np.testing.assert_array_equal(result, np.repeat(gray[:, :, None], 3, axis=2))
  assert "grayscale replicated to RGB" in caplog.text


def test_rgba_drops_alpha(tmp_path, caplog):
  rgb = _gradient_rgb()
  alpha = np.full(rgb.shape[:2] + (1,), 7, np.uint8)
  Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(tmp_path / "a.png")
  with caplog.at_level("INFO"):
    np.testing.assert_array_equal(image_utils.read_image(tmp_path / "a.png"), rgb)
  assert "alpha channel dropped" in caplog.text


@pytest.mark.parametrize("transparency", [False, True])
def test_palette_is_expanded(tmp_path, transparency):
  palette = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30]], np.uint8)
  indices = (np.arange(9 * 17).reshape(9, 17) % 3).astype(np.uint8)
  image = Image.fromarray(indices, "P")
  image.putpalette(palette.flatten().tolist())
  if transparency:
    image.info["transparency"] = 1
  image.save(tmp_path / "p.png")
  assert Image.open(tmp_path / "p.png").mode == "P"
  np.testing.assert_array_equal(image_utils.read_image(tmp_path / "p.png"), palette[indices])


def test_16bit_keeps_high_byte(tmp_path, caplog):
  samples = (np.arange(9 * 17 * 3).reshape(9, 17, 3) * 131).astype(np.uint16)
  _write_png16(tmp_path / "rgb16.png", samples)
  gray = samples[:, :, :1]
  _write_png16(tmp_path / "gray16.png", gray)
  with caplog.at_level("INFO"):
    rgb_result = image_utils.read_image(tmp_path / "rgb16.png")
    gray_result = image_utils.read_image(tmp_path / "gray16.png")
  np.testing.assert_array_equal(rgb_result, (samples >> 8).astype(np.uint8))
  np.testing.assert_array_equal(gray_result, np.repeat((gray >> 8).astype(np.uint8), 3, axis=2))
  assert caplog.text.count("16 bits per sample reduced to 8") == 2
  # The training pipeline's decoder agrees, so train and eval see the same pixels.
  decoded = tf.io.decode_png(tf.io.read_file(str(tmp_path / "rgb16.png")), channels=3)
  np.testing.assert_array_equal(decoded.numpy(), rgb_result)


def test_non_srgb_icc_profile_is_converted(tmp_path):
  skimage_dir = importlib.util.find_spec("skimage").submodule_search_locations[0]
  rocket = os.path.join(skimage_dir, "data", "rocket.jpg")  # Tagged Adobe RGB (1998).
  adobe_rgb = Image.open(rocket).info["icc_profile"]
  pixels = np.array([[[0, 200, 0], [128, 128, 128], [200, 30, 30]]], np.uint8)
  Image.fromarray(pixels).save(tmp_path / "adobe.png", icc_profile=adobe_rgb)
  result = image_utils.read_image(tmp_path / "adobe.png").astype(int)
  assert abs(result[0, 1] - 128).max() <= 2  # neutral grey stays neutral
  assert result[0, 0, 1] > 200  # Adobe RGB's green is more saturated than sRGB's


def test_missing_file_error_names_path(tmp_path):
  with pytest.raises(image_utils.ImageError, match="not found.*nothing.png"):
    image_utils.read_image(tmp_path / "nothing.png")
  assert issubclass(image_utils.ImageError, ValueError)


def test_not_an_image_error(tmp_path):
  (tmp_path / "notes.png").write_text("this is text, not a PNG")
  with pytest.raises(image_utils.ImageError, match="Not an image.*notes.png"):
    image_utils.read_image(tmp_path / "notes.png")


def test_truncated_image_error(tmp_path):
  image_utils.write_png(tmp_path / "full.png", _gradient_rgb(64, 64))
  data = (tmp_path / "full.png").read_bytes()
  (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
  with pytest.raises(image_utils.ImageError, match="Corrupt or truncated.*cut.png"):
    image_utils.read_image(tmp_path / "cut.png")


def test_write_png_rejects_bad_arrays(tmp_path):
  with pytest.raises(ValueError, match="uint8"):
    image_utils.write_png(tmp_path / "f.png", np.zeros((4, 4, 3), np.float32))
  with pytest.raises(ValueError, match=r"\(1, 4, 4, 3\)"):
    image_utils.write_png(tmp_path / "f.png", np.zeros((1, 4, 4, 3), np.uint8))


def test_write_png_is_atomic(tmp_path, monkeypatch):
  target = tmp_path / "x.png"
  image_utils.write_png(target, _gradient_rgb())
  before = target.read_bytes()

  def failing_save(self, fp, *args, **kwargs):
    with open(fp, "wb") as f:
      f.write(b"\x89PNG partial")
    raise OSError("disk full")

  monkeypatch.setattr(Image.Image, "save", failing_save)
  with pytest.raises(OSError, match="disk full"):
    image_utils.write_png(target, np.zeros((5, 5, 3), np.uint8))
  assert target.read_bytes() == before
  assert os.listdir(tmp_path) == ["x.png"]  # the temporary file was removed


@pytest.mark.parametrize("factor,padded_shape,top,left", [
    (16, (2, 16, 32, 3), 0, 0),  # Padding smaller than the image: at the bottom and right.
    (64, (2, 64, 64, 3), 27, 23),  # Padding at least the image: the image is centred.
])
def test_pad_and_crop_round_trip_odd_size(factor, padded_shape, top, left):
  x = tf.random.stateless_uniform((2, 9, 17, 3), seed=(1, 2))  # H=9, W=17
  padded = image_utils.pad_to_multiple(x, factor)
  assert tuple(padded.shape) == padded_shape
  # Edge replication: rows above repeat the first row, rows below the last, columns left the
  # first column, columns right the last.
  bottom, right = padded_shape[1] - 9 - top, padded_shape[2] - 17 - left
  np.testing.assert_array_equal(padded[:, top:top + 9, left:left + 17], x)
  np.testing.assert_array_equal(padded[:, :top, left:left + 17], tf.repeat(x[:, :1], top, 1))
  np.testing.assert_array_equal(padded[:, top + 9:, left:left + 17],
                                tf.repeat(x[:, 8:9], bottom, 1))
  np.testing.assert_array_equal(padded[:, top:top + 9, :left], tf.repeat(x[:, :, :1], left, 2))
  np.testing.assert_array_equal(padded[:, top:top + 9, left + 17:],
                                tf.repeat(x[:, :, 16:17], right, 2))
  np.testing.assert_array_equal(image_utils.crop_to(padded, 9, 17), x)


def test_pad_with_unknown_static_shape():
  @tf.function(input_signature=[tf.TensorSpec((1, None, None, 3), tf.float32)])
  def pad_and_crop(x):
    shape = tf.shape(x)
    return image_utils.crop_to(image_utils.pad_to_multiple(x, 16), shape[1], shape[2])

  x = tf.random.stateless_uniform((1, 17, 9, 3), seed=(3, 4))
  np.testing.assert_array_equal(pad_and_crop(x), x)
  assert tuple(image_utils.pad_to_multiple(x[:, :16, :8], 8).shape) == (1, 16, 8, 3)


def test_reflect_padding_is_tf_pads_reflect():
  x = tf.random.stateless_uniform((1, 13, 7, 3), seed=(5, 6))
  np.testing.assert_array_equal(image_utils.pad_to_multiple(x, 8, mode="reflect"),
                                tf.pad(x, [[0, 0], [0, 3], [0, 1], [0, 0]], "REFLECT"))


def test_reflect_padding_centres_an_image_smaller_than_its_padding():
  # Padding 3 rows to 8 is beyond tf.pad's REFLECT: centred, edges replicated.
  column = tf.reshape(tf.range(3.), (1, 3, 1, 1))
  padded = image_utils.pad_to_multiple(column, 8, mode="reflect")
  np.testing.assert_array_equal(padded[0, :, 0, 0], [0, 0, 0, 1, 2, 2, 2, 2])
  np.testing.assert_array_equal(image_utils.crop_to(padded, 3, 1), column)
  x = tf.random.stateless_uniform((1, 1, 1, 3), seed=(5, 6))
  np.testing.assert_array_equal(image_utils.pad_to_multiple(x, 4, mode="reflect"),
                                tf.tile(x, (1, 4, 4, 1)))


def test_pad_rejects_bad_arguments():
  with pytest.raises(ValueError, match="N, H, W, C"):
    image_utils.pad_to_multiple(tf.zeros((9, 17, 3)), 16)
  with pytest.raises(ValueError, match="positive int"):
    image_utils.pad_to_multiple(tf.zeros((1, 9, 17, 3)), 0)
  with pytest.raises(ValueError, match="mode"):
    image_utils.pad_to_multiple(tf.zeros((1, 9, 17, 3)), 16, mode="zeros")


def test_model_value_range_round_trip():
  pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
  model_input = image_utils.to_model_input(pixels)
  assert model_input.dtype == tf.float32
  assert float(tf.reduce_min(model_input)) == -0.5 and float(tf.reduce_max(model_input)) == 0.5
  np.testing.assert_array_equal(image_utils.from_model_output(model_input), pixels)
  out_of_range = image_utils.from_model_output(tf.constant([-0.7, -0.5, 0.1, 0.5, 0.9]))
  np.testing.assert_array_equal(out_of_range, [0, 0, 153, 255, 255])
  with pytest.raises(TypeError, match="uint8"):
    image_utils.to_model_input(np.zeros((2, 2), np.float32))
