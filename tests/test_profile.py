"""The published FLOP and parameter counts (common/published_complexity.py), reproduced on our
transforms with the TF profiler.

Counts are per image pixel at 512x768, the size the published numbers were measured at: the
profiler also counts the size-independent ops that evaluate GDN's reparameterized gamma/beta, so
per-pixel GDN counts depend (slightly) on the image size.
"""
import pytest

from common import profile_utils, transforms
from common.published_complexity import PUBLISHED

H, W = 512, 768
PIXELS = H * W
IMAGE = (1, H, W, 3)
LATENT = (1, H // 16, W // 16, 320)
JPEG_LIKE, TWO_LAYER, MINNEN, BALLE, ELIC = (PUBLISHED[name] for name in (
    "JPEG-like syn.", "2-layer syn.", "Minnen 2018", "Ballé 2017", "ELIC (for comparison)"))
HYPER_LATENT = (1, H // 64, W // 64, 320)


def profile(config, input_shape):
  return profile_utils.profile_transform(transforms.build_transform(config), input_shape, PIXELS)


def test_jpeg_like_synthesis():
  stats = profile(dict(cls="JPEGLikeSynthesis", kernel_size=18, strides=16), LATENT)
  assert round(stats["flops_per_pixel"]) == JPEG_LIKE["flops_per_pixel"]["g_s"]
  assert stats["params"] == JPEG_LIKE["params"]["g_s"]


def test_two_layer_res_synthesis():
  stats = profile(dict(cls="TwoLayerResSynthesis", channels=(12, 3)), LATENT)
  assert round(stats["flops_per_pixel"]) == TWO_LAYER["flops_per_pixel"]["g_s"]
  assert stats["params"] == TWO_LAYER["params"]["g_s"]


@pytest.mark.slow
def test_mbt2018_synthesis():
  stats = profile(dict(cls="MBT2018Synthesis", channels_base=192), LATENT)
  assert round(stats["flops_per_pixel"]) == MINNEN["flops_per_pixel"]["g_s"]
  # The published count (3,431,235) was taken on a synthesis that reused ONE IGDN instance for
  # all three hidden layers (shallow-ntc notebooks/get_flops.ipynb: the activation layer is
  # created once and passed to every conv), so it holds the parameters of a single IGDN. Ours
  # has its own IGDN per layer, as in Minnen et al. 2018: two more 192-channel IGDNs.
  igdn_params = 192 * 192 + 192
  assert stats["params"] - 2 * igdn_params == MINNEN["params"]["g_s"]


def test_ballé2017_complexity_row():
  # The published "Ballé 2017 factorized" complexity row (g_s 163,266 FLOPs/px) was measured on
  # the 4-layer CNNSynthesis(192) from a 320-channel latent (shallow-ntc get_flops.ipynb), not on
  # the 3-layer BLS2017Synthesis(256) of its factorized config, which costs about half of that
  # (asserted below so the difference stays documented).
  stats = profile(dict(cls="CNNSynthesis", channels_base=192), LATENT)
  assert round(stats["flops_per_pixel"]) == BALLE["flops_per_pixel"]["g_s"]
  bls = profile(dict(cls="BLS2017Synthesis", num_filters=256), (1, H // 16, W // 16, 256))
  assert 81000 < bls["flops_per_pixel"] < 83000


def test_hyper_transforms():
  h_a = profile(dict(cls="HyperAnalysis", bottleneck_size=320), LATENT)
  h_s = profile(dict(cls="HyperSynthesis", bottleneck_size=320), HYPER_LATENT)
  for module, stats in (("h_a", h_a), ("h_s", h_s)):
    assert round(stats["flops_per_pixel"]) == MINNEN["flops_per_pixel"][module]
    assert stats["params"] == MINNEN["params"][module]


@pytest.mark.slow
def test_elic_analysis():
  stats = profile(dict(cls="ElicAnalysis", channels=(192, 192, 192, 320)), IMAGE)
  assert round(stats["flops_per_pixel"]) == ELIC["flops_per_pixel"]["g_a"]
  assert stats["params"] == ELIC["params"]["g_a"]
