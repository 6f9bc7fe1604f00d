"""Factorized-prior model (Ballé et al. 2017) with pluggable transforms.

y = g_a(x) is coded with a deep factorized prior (one density per channel); x_hat = g_s(y_hat).
"""
import tensorflow as tf
import tensorflow_compression as tfc

from common import entropy_tables, ntc_model, quantization

CODING_RANK = 3


class Model(ntc_model.NTCModel):
  """Factorized prior (Ballé et al. 2017).

  Data flow for an image x of N x H x W x 3 (padded to a multiple of downsample_factor), with s
  the stride of g_a (16 in every config here) and C = bottleneck_size:

    x (N,H,W,3) --g_a--> y (N,H/s,W/s,C)
    y --Q--> y_hat: coded with the deep factorized `prior` (one density per channel)
    y_hat --g_s--> x_hat (N,H,W,3)

  Q is the latent method's relaxation in training (latent_config.method) and rounding (around
  the prior's mode with the offset heuristic) in coding.
  """

  # (latent name, index of its entropy model) in file order.
  CODED_LATENTS = (("y", 0),)

  def __init__(self, transform_config, scheduled_num_steps=1800000, rd_lambda=0.01,
               optimizer_config=None, latent_config=None, offset_heuristic=True, *,
               decoder_only=False):
    super().__init__(transform_config, scheduled_num_steps, rd_lambda, optimizer_config,
                     latent_config, offset_heuristic, name="factorized", decoder_only=decoder_only)

  def build_latent_model(self, transform_config):
    """y's prior (transform_config has nothing for it)."""
    del transform_config
    self.prior = tfc.NoisyDeepFactorized(batch_shape=(self.bottleneck_size,))

  def make_entropy_models(self, compression, fixed_offsets=False, tables=None):
    """(model for y,); compression=True builds range-coding tables.

    fixed_offsets=True computes the quantization offset now, once, instead of at every use.
    tables ([tables of y's model] from common.entropy_tables) gives a coding model without
    building the tables.
    """
    if tables is not None:
      y_tables, = tables
      return (entropy_tables.batched_from_tables(y_tables, (self.bottleneck_size,), CODING_RANK,
                                                 self.offset_heuristic),)
    offset = (tfc.quantization_offset(self.prior)
              if fixed_offsets and self.offset_heuristic else None)
    return (tfc.ContinuousBatchedEntropyModel(
        self.prior, coding_rank=CODING_RANK, compression=compression,
        offset_heuristic=self.offset_heuristic, quantization_offset=offset),)

  def decoder_geometry(self):
    return dict(y=(ntc_model.upsampling_factor(self.synthesis, self.bottleneck_size),
                   self.bottleneck_size))

  def infer_latents(self, x_padded):
    return dict(y=self.analysis(x_padded))

  def latent_bits(self, latents, training, method=None, tau=None):
    """(bits, coded bits, y_hat): see NTCModel.latent_bits (the estimate is the coded rate
    here)."""
    method, relaxation = self.latent_relaxation(method, tau)
    y_hat, y_bits = quantization.quantize_latent(
        quantization.LatentCoder(self.entropy_models[0]), latents["y"], method, training,
        **relaxation)
    bits = dict(y=y_bits)
    return bits, (None if training else bits), y_hat

  def profiled_transforms(self, padded_image_shape):
    """{module name: (layer, input shape)} for FLOP accounting on an image of this shape."""
    n, h, w, _ = padded_image_shape
    y_shape = (n, *self.infer_latents(tf.zeros((1, h, w, 3)))["y"].shape[1:])
    return dict(g_a=(self.analysis, padded_image_shape), g_s=(self.synthesis, y_shape))

  def compress_latents(self, latents, entropy_models):
    """Range-codes y; returns [(name, string, symbols)] in file order."""
    y_model, = entropy_models
    y = latents["y"]
    return [("y", y_model.compress(y)[0], quantization.symbols(y, y_model.quantization_offset))]

  def decompress_latents(self, strings, shapes, entropy_models, timer, verify):
    """Inverse of compress_latents: y_hat for the synthesis (verify(name, symbols) checks it)."""
    y_model, = entropy_models
    with timer("entropy_decoding"):
      y_hat = y_model.decompress(strings["y"][None], shapes["y"][:2])
    verify("y", quantization.symbols(y_hat, y_model.quantization_offset))
    return y_hat
