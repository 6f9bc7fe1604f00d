"""Decoding large images in tiles of latents, so memory stays bounded by the tile size.

A synthesis output pixel depends only on latents within a finite window (its receptive field).
Each tile of latents is decoded with a margin of neighbouring latents at least that wide, and
only the tile's own output block is kept, so the tiles reassemble the untiled output (up to
float rounding of convolutions run on different input sizes; tests/test_tiling.py states the
tolerance). The margin is measured, not derived from layer shapes, so any synthesis transform
works: `receptive_margin` perturbs one latent and finds how far the output changes.
"""
import math

import numpy as np
import tensorflow as tf

from common import image_utils

# Latents per tile side. 64 latents = 1024 pixels at 16x upsampling: images up to that size are
# decoded in one piece, and margins of a few latents cost little on tiles this size.
TILE_LATENTS = 64


def receptive_margin(synthesis, channels, probe=24, max_probe=192, seed=0):
  """(margin in latents, upsampling factor) of a synthesis transform.

  Decodes random latents with and without a change of one central latent vector; output pixels
  further than `margin` latents from that vector's output block do not change. The probe grows
  until the change stays clear of its border.
  """
  rng = np.random.default_rng(seed)
  while probe <= max_probe:
    latents = rng.normal(0., 2., (1, probe, probe, channels)).astype(np.float32)
    perturbed = latents.copy()
    center = probe // 2
    perturbed[0, center, center] += rng.normal(0., 4., channels).astype(np.float32)
    outputs = synthesis(tf.constant(np.concatenate([latents, perturbed])), training=False).numpy()
    factor = outputs.shape[1] // probe
    changed = np.abs(outputs[1] - outputs[0]).max(axis=-1)
    rows, cols = np.nonzero(changed > 1e-6 * max(1., float(np.abs(outputs[0]).max())))
    if rows.size == 0:
      raise ValueError("The synthesis output does not depend on its input latents.")
    block = (center * factor, (center + 1) * factor - 1)  # output pixels of the central latent
    reach = max(block[0] - rows.min(), rows.max() - block[1], block[0] - cols.min(),
                cols.max() - block[1])
    margin = math.ceil(reach / factor)
    if margin < center - 1:
      return margin, factor
    probe *= 2
  raise ValueError(f"The synthesis receptive field exceeds {max_probe} latents; cannot tile.")


def tile_ranges(size, tile):
  """[(start, end)] covering range(size) in steps of `tile`."""
  return [(start, min(start + tile, size)) for start in range(0, size, tile)]


def tiled_synthesis(synthesize, latents, margin, factor, height, width, tile=TILE_LATENTS):
  """uint8 (height, width, 3) image from latents (1, h, w, C), decoded tile by tile.

  synthesize: latents (1, h', w', C) -> model output (1, h' * factor, w' * factor, 3) in
  [-0.5, 0.5] (e.g. the codec's traced synthesis). Each tile reads `margin` extra latents on
  every side that has neighbours.
  """
  _, rows, cols, _ = latents.shape
  image = np.empty((height, width, 3), np.uint8)
  for top, bottom in tile_ranges(rows, tile):
    for left, right in tile_ranges(cols, tile):
      if top * factor >= height or left * factor >= width:
        continue  # only padding
      r0, r1 = max(top - margin, 0), min(bottom + margin, rows)
      c0, c1 = max(left - margin, 0), min(right + margin, cols)
      decoded = synthesize(latents[:, r0:r1, c0:c1])
      y0, x0 = (top - r0) * factor, (left - c0) * factor
      out_bottom, out_right = min(bottom * factor, height), min(right * factor, width)
      block = decoded[0, y0:y0 + out_bottom - top * factor, x0:x0 + out_right - left * factor]
      image[top * factor:out_bottom, left * factor:out_right] = (
          image_utils.from_model_output(block).numpy())
  return image
