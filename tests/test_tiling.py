"""Tiled decoding equals untiled decoding: 8-bit outputs identical, or at most 1 level off on at
most 0.01% of the values (convolutions on different input sizes may round differently)."""
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common import codec, config_utils, image_utils, run_dir, tiling, transforms
from common.data_lib import list_images
from mshyper.models import Model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_nearly_identical(tiled, untiled):
  assert tiled.shape == untiled.shape and tiled.dtype == untiled.dtype == np.uint8
  difference = np.abs(tiled.astype(np.int16) - untiled.astype(np.int16))
  assert difference.max() <= 1
  assert np.count_nonzero(difference) <= 1e-4 * difference.size


@pytest.mark.parametrize("config,margin", [
    (dict(cls="JPEGLikeSynthesis"), 1), (dict(cls="TwoLayerResSynthesis", channels=(12, 3)), 1),
    (dict(cls="MBT2018Synthesis", channels_base=64), 2)])
def test_tiles_reassemble_the_untiled_output(config, margin):
  synthesis = transforms.build_transform(config)
  latents = tf.random.stateless_normal((1, 13, 19, 320), (7, 8)) * 0.3
  full = synthesis(latents)
  assert tiling.receptive_margin(synthesis, 320) == (margin, 16)
  height, width = full.shape[1] - 5, full.shape[2] - 9  # a cropped (padded) image
  untiled = image_utils.from_model_output(full[0, :height, :width]).numpy()
  tiled = tiling.tiled_synthesis(lambda y: synthesis(y), latents, margin, 16, height, width,
                                 tile=4)
  assert_nearly_identical(tiled, untiled)
  # A margin below the receptive field shows: the test can tell.
  too_small = tiling.tiled_synthesis(lambda y: synthesis(y), latents, margin - 1, 16, height,
                                     width, tile=4)
  assert np.abs(too_small.astype(int) - untiled).max() > 1


@pytest.mark.slow
def test_codec_decodes_a_large_photo_in_tiles():
  tf.keras.utils.set_random_seed(0)
  config = config_utils.load_config_module(
      os.path.join(ROOT, "mshyper", "configs", "quickstart.py")).get_config()
  model = run_dir.build_model(Model, config.model_config)
  coder = codec.Codec(model, config_utils.model_identity(config), step=0)
  photo = Image.fromarray(image_utils.read_image(list_images("embedded_eval")[0]))
  image = np.asarray(photo.resize((photo.width * 2 + 7, photo.height * 2 + 3), Image.BICUBIC))
  data = coder.encode(image)
  untiled = coder.decode(data)
  coder.tile_latents = 16
  tiled = coder.decode(data)
  assert coder._receptive_margin is not None  # it did tile
  assert_nearly_identical(tiled, untiled)
