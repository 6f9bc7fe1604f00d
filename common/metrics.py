"""Image quality metrics on 8-bit RGB images (numpy in, Python floats out).

PSNR-RGB follows the usual learned-compression convention (CompressAI, the paper): one MSE
over all three channels of the 8-bit values, peak 255, summed exactly in integers.

MS-SSIM is the definition of TensorFlow's `tf.image.ssim_multiscale` on the 8-bit values
(max_val 255, 11x11 Gaussian window of sigma 1.5, k1 0.01, k2 0.03, the five standard scale
weights, 2x2 average pooling between scales after symmetric padding of odd sizes), computed
faster: the Gaussian window is applied as two 1-D passes (it is separable: TF's 2-D window is
the outer product of the 1-D one), the four filtered maps of a scale in one depthwise conv, in
one compiled graph per number of scales for any image size. Values equal TF's within float32
rounding: both are within ~5e-6 of a float64 evaluation of the same definition
(tests/test_metrics.py checks against TF and against float64).
"""

import functools
import math

import numpy as np
import tensorflow as tf

# Wang et al. 2003 weights, the defaults of tf.image.ssim_multiscale; index 0 = full resolution.
MS_SSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
MAX_VALUE = 255.0


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
  difference = a.astype(np.int16) - b
  squared_error = int(np.square(difference, dtype=np.int32).sum(dtype=np.int64))
  if squared_error == 0:
    return math.inf
  return float(10.0 * np.log10(MAX_VALUE ** 2 * a.size / squared_error))


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


def gaussian_window_1d():
  """The 1-D factor of TF's 11-tap SSIM window (softmax of -t^2 / (2 sigma^2), as TF builds it)."""
  taps = np.arange(SSIM_FILTER_SIZE, dtype=np.float64) - (SSIM_FILTER_SIZE - 1) / 2
  logits = -0.5 * taps ** 2 / SSIM_FILTER_SIGMA ** 2
  window = np.exp(logits - logits.max())
  return window / window.sum()


def _gaussian_filter(maps):
  """The SSIM window over (1, H, W, C) maps, "VALID": a vertical, then a horizontal 1-D pass."""
  window = tf.constant(gaussian_window_1d(), tf.float32)
  channels = maps.shape[-1]
  vertical = tf.tile(tf.reshape(window, (SSIM_FILTER_SIZE, 1, 1, 1)), (1, 1, channels, 1))
  horizontal = tf.reshape(vertical, (1, SSIM_FILTER_SIZE, channels, 1))
  maps = tf.nn.depthwise_conv2d(maps, vertical, (1, 1, 1, 1), "VALID")
  return tf.nn.depthwise_conv2d(maps, horizontal, (1, 1, 1, 1), "VALID")


def _ssim_term(x, y, shift, final_scale):
  """Per channel: the mean contrast-structure term of (1, H, W, 3) images given as x - shift
  and y - shift, or at the final scale the mean SSIM (luminance times contrast-structure).

  The moments are filtered around `shift` (the images' mean) instead of 0: the covariances
  come out of differences like E[x^2] - E[x]^2, which lose ~4 digits of float32 precision for
  8-bit values around 200 but hardly any around the mean. Mathematically this is TF's formula.
  """
  filtered = _gaussian_filter(tf.concat([x, y, x * y, tf.square(x) + tf.square(y)], axis=-1))
  mean_x, mean_y, mean_xy, mean_squares = tf.split(filtered, 4, axis=-1)
  c1 = (SSIM_K1 * MAX_VALUE) ** 2
  c2 = (SSIM_K2 * MAX_VALUE) ** 2
  # Contrast-structure (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2); luminance
  # (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1) on the unshifted means.
  covariance_2 = (mean_xy - mean_x * mean_y) * 2.0
  variances = mean_squares - tf.square(mean_x) - tf.square(mean_y)
  term = (covariance_2 + c2) / (variances + c2)
  if final_scale:
    luminance_x, luminance_y = mean_x + shift, mean_y + shift
    term *= ((luminance_x * luminance_y * 2.0 + c1) /
             (tf.square(luminance_x) + tf.square(luminance_y) + c1))
  return tf.reduce_mean(term, axis=(0, 1, 2))


def _downsample(image):
  """TF's step between scales: symmetric padding of an odd side by one, then 2x2 mean."""
  height, width = tf.shape(image)[1], tf.shape(image)[2]
  image = tf.pad(image, [[0, 0], [0, height % 2], [0, width % 2], [0, 0]], mode="SYMMETRIC")
  return tf.nn.avg_pool2d(image, 2, 2, "VALID")


@functools.lru_cache(maxsize=None)
def _ms_ssim_graph(scales):
  """MS-SSIM with the first `scales` power factors (renormalized), one trace for any size."""
  factors = np.asarray(MS_SSIM_POWER_FACTORS[:scales], np.float64)
  factors = tf.constant(factors / factors.sum(), tf.float32)

  @tf.function(input_signature=[tf.TensorSpec((None, None, 3), tf.uint8)] * 2, autograph=False)
  def ms_ssim(a, b):
    x, y = tf.cast(a, tf.float32)[None], tf.cast(b, tf.float32)[None]
    # Padding and average pooling commute with subtracting a constant, so shift once.
    shift = tf.reduce_mean(x, axis=(0, 1, 2))
    x, y = x - shift, y - shift
    terms = []
    for scale in range(scales):
      if scale > 0:
        x, y = _downsample(x), _downsample(y)
      # The coarsest scale contributes its SSIM, every other its contrast-structure term.
      terms.append(tf.nn.relu(_ssim_term(x, y, shift, final_scale=scale == scales - 1)))
    per_channel = tf.reduce_prod(tf.pow(tf.stack(terms, axis=-1), factors), axis=-1)
    return tf.reduce_mean(per_channel)

  return ms_ssim


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
  return float(_ms_ssim_graph(scales)(a, b))
