"""Metrics against hand-computed values and the small-image MS-SSIM fallback."""

import math

import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view

from common import data_lib, image_utils, metrics, results


def _noisy_pair(shape, seed=0):
  rng = np.random.default_rng(seed)
  a = rng.integers(20, 236, shape, dtype=np.uint8)
  b = (a.astype(np.int16) + rng.integers(-8, 9, shape)).astype(np.uint8)
  return a, b


def test_identical_images():
  a, _ = _noisy_pair((200, 300, 3))
  assert metrics.psnr_rgb(a, a) == math.inf
  assert metrics.ms_ssim_rgb(a, a) == pytest.approx(1.0, abs=1e-6)
  assert results.ms_ssim_db(1.0) == math.inf


def test_psnr_known_error():
  # Every value off by exactly 5 except one channel of one pixel off by 20:
  # MSE = (N - 1) * 25 / N + 400 / N over N = 4 * 4 * 3 values.
  a = np.full((4, 4, 3), 100, np.uint8)
  b = a + 5
  b[0, 0, 1] = 120
  n = a.size
  mse = ((n - 1) * 25 + 400) / n
  assert metrics.psnr_rgb(a, b) == pytest.approx(10 * math.log10(255 ** 2 / mse), abs=1e-9)
  assert metrics.psnr_rgb(a, b) == metrics.psnr_rgb(b, a)


def test_ms_ssim_db():
  assert results.ms_ssim_db(0.99) == pytest.approx(20.0)
  assert results.ms_ssim_db(0.9) == pytest.approx(10.0)
  assert results.ms_ssim_db(None) is None


def _ms_ssim_float64(a, b):
  """TF's MS-SSIM definition evaluated directly in float64, with the 2-D 11x11 window."""
  window = np.outer(metrics.gaussian_window_1d(), metrics.gaussian_window_1d())

  def local_mean(m):
    return np.einsum("hwcij,ij->hwc", sliding_window_view(m, (11, 11), axis=(0, 1)), window)

  def downsample(m):
    m = np.pad(m, [(0, m.shape[0] % 2), (0, m.shape[1] % 2), (0, 0)], mode="symmetric")
    return (m[0::2, 0::2] + m[1::2, 0::2] + m[0::2, 1::2] + m[1::2, 1::2]) / 4

  scales = metrics.ms_ssim_num_scales(*a.shape[:2])
  factors = np.asarray(metrics.MS_SSIM_POWER_FACTORS[:scales])
  x, y, terms = a.astype(np.float64), b.astype(np.float64), []
  for scale in range(scales):
    if scale:
      x, y = downsample(x), downsample(y)
    mx, my, mxy, msq = local_mean(x), local_mean(y), local_mean(x * y), local_mean(x * x + y * y)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    luminance = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
    contrast_structure = (2 * mxy - 2 * mx * my + c2) / (msq - mx ** 2 - my ** 2 + c2)
    term = luminance * contrast_structure if scale == scales - 1 else contrast_structure
    terms.append(np.maximum(term.mean(axis=(0, 1)), 0))
  return float(np.mean(np.prod(np.stack(terms, -1) ** (factors / factors.sum()), -1)))


def _photo_pair(height, width):
  """A crop of a real photo and a copy with +-12 levels of noise (odd sizes exercise padding)."""
  photo = image_utils.read_image(data_lib.list_images("embedded_eval")[0])[:height, :width]
  noise = np.random.default_rng(1).integers(-12, 13, photo.shape)
  return photo, np.clip(photo.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("pair", ["noise", "photo"])
def test_ms_ssim_equals_float64_definition_and_tf(pair):
  """Within float32 rounding of the exact value, and of TF's ssim_multiscale (measured: both
  within 5e-6 of float64 on 768x512 photos, ours up to 4.5e-6, TF's up to 8e-6)."""
  a, b = _noisy_pair((161, 200, 3)) if pair == "noise" else _photo_pair(255, 333)
  assert metrics.ms_ssim_num_scales(*a.shape[:2]) == 5
  exact = _ms_ssim_float64(a, b)
  assert metrics.ms_ssim_rgb(a, b) == pytest.approx(exact, abs=3e-6)
  expected = tf.image.ssim_multiscale(a[None].astype(np.float32), b[None].astype(np.float32),
                                      max_val=255.0)
  assert metrics.ms_ssim_rgb(a, b) == pytest.approx(float(expected[0]), abs=1e-5)


@pytest.mark.parametrize("height,width,scales", [(160, 300, 4), (100, 75, 3), (11, 20, 1)])
def test_ms_ssim_small_images_use_fewer_scales(height, width, scales):
  assert metrics.ms_ssim_num_scales(height, width) == scales
  a, b = _noisy_pair((height, width, 3))
  value = metrics.ms_ssim_rgb(a, b)
  assert 0.0 < value < 1.0
  # More noise must lower the value, so the reduced-scale metric still measures quality.
  noisier = np.clip(a + 3 * (b.astype(np.int16) - a), 0, 255).astype(np.uint8)
  assert metrics.ms_ssim_rgb(a, noisier) < value


def test_ms_ssim_too_small_is_none():
  a, b = _noisy_pair((10, 40, 3))
  assert metrics.ms_ssim_num_scales(10, 40) == 0
  assert metrics.ms_ssim_rgb(a, b) is None


def test_bad_inputs_raise():
  a, _ = _noisy_pair((20, 20, 3))
  with pytest.raises(ValueError, match="differ in shape"):
    metrics.psnr_rgb(a, a[:10])
  with pytest.raises(ValueError, match="uint8 RGB"):
    metrics.ms_ssim_rgb(a.astype(np.float32), a)
