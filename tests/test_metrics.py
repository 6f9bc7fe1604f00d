"""Metrics against hand-computed values and the small-image MS-SSIM fallback."""

import math

import numpy as np
import pytest
import tensorflow as tf

from common import metrics, results


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


def test_ms_ssim_matches_tf_with_all_scales():
  a, b = _noisy_pair((161, 200, 3))
  assert metrics.ms_ssim_num_scales(161, 200) == 5
  expected = tf.image.ssim_multiscale(a[None].astype(np.float32), b[None].astype(np.float32),
                                      max_val=255.0)
  assert metrics.ms_ssim_rgb(a, b) == pytest.approx(float(expected[0]), abs=1e-6)


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
