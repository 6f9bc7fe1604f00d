"""Every registered transform builds from a config dict and runs on odd-sized inputs."""
import math

import numpy as np
import pytest
import tensorflow as tf

from common import transforms

# Input domain of each registered transform: images (3 channels), latents y (stride 16 w.r.t. the
# image, C channels) or hyper-latents z (stride 64).
ANALYSIS = {"BLS2017Analysis", "MBT2018Analysis", "CNNAnalysis", "ElicAnalysis"}
LATENT_INPUT = {"BLS2017Synthesis", "MBT2018Synthesis", "CNNSynthesis", "ElicSynthesis",
                "JPEGLikeSynthesis", "TwoLayerSynthesis", "TwoLayerResSynthesis",
                "HyperAnalysis", "HyperAnalysisSmall"}
HYPER_INPUT = {"HyperSynthesis", "HyperSynthesisSmall", "JPEGLikeHyperSynthesis"}
SMALL = dict(  # Small widths keep the test fast; structure is unchanged.
    BLS2017Analysis=dict(num_filters=16), BLS2017Synthesis=dict(num_filters=16),
    MBT2018Analysis=dict(channels_base=16, output_channels=24),
    MBT2018Synthesis=dict(channels_base=16), CNNAnalysis=dict(channels_base=16),
    CNNSynthesis=dict(channels_base=16), HyperAnalysis=dict(bottleneck_size=24),
    HyperSynthesis=dict(bottleneck_size=24), HyperAnalysisSmall=dict(bottleneck_size=24),
    HyperSynthesisSmall=dict(bottleneck_size=24), ElicAnalysis=dict(channels=(16, 16, 16, 24)),
    ElicSynthesis=dict(channels=(16, 16, 16, 3)), JPEGLikeHyperSynthesis=dict(bottleneck_size=24))


def test_registry_covers_the_spec():
  assert ANALYSIS | LATENT_INPUT | HYPER_INPUT == set(transforms.TRANSFORMS)


@pytest.mark.parametrize("name", sorted(transforms.TRANSFORMS))
@pytest.mark.parametrize("height,width", [(64, 64), (100, 75)])
def test_builds_and_runs(name, height, width):
  layer = transforms.build_transform({"cls": name, **SMALL.get(name, {})})
  if name in ANALYSIS:
    shape = (1, height, width, 3)
  elif name in LATENT_INPUT:
    shape = (1, math.ceil(height / 16), math.ceil(width / 16), 24)
  else:
    shape = (1, math.ceil(height / 64), math.ceil(width / 64), 24)
  out = layer(tf.random.uniform(shape))
  assert np.all(np.isfinite(out.numpy()))
  if name in ANALYSIS:  # "same" padding: ceil division by the total stride.
    assert out.shape[1:3] == (math.ceil(height / 16), math.ceil(width / 16))
  if name in ANALYSIS or name.startswith("HyperAnalysis"):  # What a decoder-only model trusts.
    assert layer.output_channels == out.shape[-1]
  if name.endswith("Synthesis") and name not in HYPER_INPUT and "Hyper" not in name:
    assert out.shape[1:] == (shape[1] * 16, shape[2] * 16, 3)


def test_config_dict_with_lists_and_configdict():
  import ml_collections
  cfg = ml_collections.ConfigDict(dict(cls="TwoLayerResSynthesis", channels=[12, 3],
                                       kernel_sizes=[13, 5]))
  layer = transforms.build_transform(cfg)
  assert layer(tf.zeros((1, 2, 2, 8))).shape == (1, 32, 32, 3)


def test_two_layer_res_synthesis_d2s_residual():
  layer = transforms.build_transform(dict(cls="TwoLayerResSynthesis", res_type="d2s"))
  assert layer(tf.zeros((1, 3, 5, 24))).shape == (1, 48, 80, 3)


def test_unknown_class_lists_valid_ones():
  with pytest.raises(ValueError, match="Unknown transform class 'Nope'.*JPEGLikeSynthesis"):
    transforms.build_transform({"cls": "Nope"})


def test_unknown_kwarg_lists_valid_ones():
  with pytest.raises(ValueError, match=r"\['kernel'\].*JPEGLikeSynthesis.*kernel_size"):
    transforms.build_transform({"cls": "JPEGLikeSynthesis", "kernel": 3})


def test_missing_cls():
  with pytest.raises(ValueError, match="no 'cls' key"):
    transforms.build_transform({"kernel_size": 3})


def test_unknown_activation():
  with pytest.raises(ValueError, match="Unknown activation 'swoosh'"):
    transforms.build_transform({"cls": "TwoLayerSynthesis", "activation_type": "swoosh"})


def test_gdn1_matches_formula():
  gdn, igdn = transforms.GDN1(), transforms.IGDN1()
  x = tf.random.normal((1, 3, 3, 4))
  gdn(x), igdn(x)
  norm = gdn.beta + tf.tensordot(tf.abs(x), gdn.gamma, [[3], [0]])
  np.testing.assert_allclose(gdn(x), x / norm, rtol=1e-5)
  np.testing.assert_allclose(igdn(x), x * norm, rtol=1e-5)
