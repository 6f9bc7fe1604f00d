"""Image quality metrics on 8-bit RGB images (numpy in, Python floats out).

PSNR-RGB follows the usual learned-compression convention (CompressAI, the paper): one MSE
over all three channels of the 8-bit values, peak 255. MS-SSIM uses TensorFlow's
`tf.image.ssim_multiscale` on the 8-bit values (max_val 255, 11x11 Gaussian window, the
five standard scale weights).
"""

import math

import numpy as np
import tensorflow as tf

# Wang et al. 2003 weights, the defaults of tf.image.ssim_multiscale; index 0 = full resolution.
MS_SSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_FILTER_SIZE = 11


def _check_pair(a, b):
  a = np.asarray(a)
  b = np.asarray(b)
  for name, x in (("first", a), ("second", b)):
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[-1] != 3:
      raise ValueError(
          f"Metrics expect uint8 RGB images of shape (H, W, 3); the {name} image is "
          f"{x.dtype} with shape {x.shape}.")
  if a.shape != b.shape:
    raise ValueError(f"Images differ in shape: {a.shape} vs {b.shape}.")
  return a, b


def psnr_rgb(a, b):
  """PSNR in dB over all RGB values (one MSE, peak 255); inf for identical images."""
  a, b = _check_pair(a, b)
  mse = np.mean(np.square(a.astype(np.float64) - b.astype(np.float64)))
  if mse == 0:
    return math.inf
  return float(10.0 * np.log10(255.0 ** 2 / mse))


def ms_ssim_num_scales(height, width):
  """How many MS-SSIM scales fit an image of this size (0 if not even plain SSIM fits).

  TF halves the image between scales (odd sizes are padded first, so scale k has
  ceil(side / 2**k) pixels) and needs at least SSIM_FILTER_SIZE pixels per side at every
  scale: all five scales need a short side of at least 161 px.
  """
  side = min(height, width)
  scales = 0
  while scales < len(MS_SSIM_POWER_FACTORS) and side >= SSIM_FILTER_SIZE:
    scales += 1
    side = -(-side // 2)
  return scales


def ms_ssim_rgb(a, b):
  """MS-SSIM of two uint8 RGB images, in [0, 1]; None if the image is under 11 px.

  Images with a short side under 161 px get fewer scales (the coarsest ones are dropped)
  and the remaining power factors are renormalized to sum to 1, so the value stays a
  weighted geometric mean of per-scale terms. Values of such small images are therefore
  not strictly comparable to 5-scale values, but the metric is defined and does not crash.
  """
  a, b = _check_pair(a, b)
  scales = ms_ssim_num_scales(a.shape[0], a.shape[1])
  if scales == 0:
    return None
  factors = np.asarray(MS_SSIM_POWER_FACTORS[:scales])
  factors = tuple(float(f) for f in factors / factors.sum())
  value = tf.image.ssim_multiscale(
      tf.constant(a[None], tf.float32), tf.constant(b[None], tf.float32),
      max_val=255.0, power_factors=factors, filter_size=SSIM_FILTER_SIZE)
  return float(value.numpy()[0])
