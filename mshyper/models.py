"""Mean-scale hyperprior model (Minnen et al. 2018) with pluggable transforms.

y = g_a(x), z = h_a(y); z is coded with a deep factorized prior; (mu, h) = h_s(z_hat)
condition a Gaussian (convolved with uniform noise) for y; x_hat = g_s(y_hat).

How h becomes the Gaussian's scale is the model's `scale_parameterization`:
- "exp_index" (the authors' code, default): exp(h) is the index into the 64-entry scale table,
  clipped to [0, 63]: scale = 0.11 * exp(s * clip(exp(h), 0, 63)), s = ln(256 / 0.11) / 63.
- "log_scale": h is log(scale), i.e. index = (h - ln 0.11) / s (runs of this project made before
  the authors' mapping was adopted; their config.json has no scale_parameterization key).
"""
import math

import tensorflow as tf
import tensorflow_compression as tfc

from common import entropy_tables, ntc_model, quantization
from common.transforms import build_transform

CODING_RANK = 3
# Scale table of the conditional entropy model: 64 log-spaced scales in [0.11, 256].
NUM_SCALES = 64
SCALE_MIN = 0.11
SCALE_MAX = 256.
_LOG_SCALE_STEP = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (NUM_SCALES - 1)


def scale_fn(index):
  return tf.exp(math.log(SCALE_MIN) + _LOG_SCALE_STEP * index)


def log_scale_to_index(log_scale):
  """Continuous scale-table index of a log-scale (exact inverse of scale_fn)."""
  return (log_scale - math.log(SCALE_MIN)) / _LOG_SCALE_STEP


# h_s output (second half) -> continuous scale-table index, per scale_parameterization.
SCALE_PARAMETERIZATIONS = {"exp_index": tf.exp, "log_scale": log_scale_to_index}


def coding_indexes(indexes):
  """The integer scale-table indexes the range coder uses for continuous indexes."""
  return tf.round(tf.clip_by_value(indexes, 0., NUM_SCALES - 1.))


class Model(ntc_model.NTCModel):
  """Mean-scale hyperprior (Minnen et al. 2018), as the paper's code builds it.

  Data flow for an image x of N x H x W x 3 (padded to a multiple of downsample_factor), with s
  the stride of g_a (16 in every config here), C = bottleneck_size, Cz = hyper_size, and the
  hyper transforms' stride 4 (2 for the authors' *Small ones):

    x (N,H,W,3) --g_a--> y (N,H/s,W/s,C) --h_a--> z (N,H/4s,W/4s,Cz)
    z --Q--> z_hat: coded with the deep factorized `hyper_prior` (side information)
    z_hat --h_s--> (mu, h), each (N,H/s,W/s,C); h --scale_parameterization--> scale index
    y --Q--> y_hat: coded with a Gaussian (loc mu, scale from the index) convolved with
                    uniform noise, the conditional entropy model
    y_hat --g_s--> x_hat (N,H,W,3)

  Q is the latent method's relaxation in training (latent_config.method) and rounding
  (around the prior's mode for z with the offset heuristic, around mu for y) in coding.
  """

  # model_config values for keys a stored config.json lacks: runs written before the key existed.
  LEGACY_MODEL_CONFIG = dict(scale_parameterization="log_scale")
  # (latent name, index of its entropy model) in file order.
  CODED_LATENTS = (("z", 0), ("y", 1))
  ENCODER_MODULES = ("analysis", "hyper_analysis")

  def __init__(self, transform_config, scheduled_num_steps=1800000, rd_lambda=0.01,
               optimizer_config=None, latent_config=None, offset_heuristic=True,
               scale_parameterization="exp_index", *, decoder_only=False):
    if scale_parameterization not in SCALE_PARAMETERIZATIONS:
      raise ValueError(f"Unknown scale_parameterization {scale_parameterization!r}; valid: "
                       f"{sorted(SCALE_PARAMETERIZATIONS)}.")
    self.scale_parameterization = scale_parameterization
    self._scale_index = SCALE_PARAMETERIZATIONS[scale_parameterization]
    super().__init__(transform_config, scheduled_num_steps, rd_lambda, optimizer_config,
                     latent_config, offset_heuristic, name="mshyper", decoder_only=decoder_only)

  def build_latent_model(self, transform_config):
    """h_a, h_s (default: the paper's HyperAnalysis/HyperSynthesis) and z's prior."""
    bottleneck_size = self.bottleneck_size
    self.hyper_analysis = build_transform(transform_config.get(
        "hyper_analysis", dict(cls="HyperAnalysis", bottleneck_size=bottleneck_size)))
    self.hyper_synthesis = build_transform(transform_config.get(
        "hyper_synthesis", dict(cls="HyperSynthesis", bottleneck_size=bottleneck_size)))
    self.hyper_size = self.hyper_analysis.output_channels
    if not self.decoder_only:
      self.hyper_analysis(tf.zeros((1, 4, 4, bottleneck_size)))
    self.hyper_prior = tfc.NoisyDeepFactorized(batch_shape=(self.hyper_size,))

  def make_entropy_models(self, compression, fixed_offsets=False, tables=None):
    """(side model for z, conditional model for y); compression=True builds range-coding tables.

    fixed_offsets=True computes z's quantization offset now, once, instead of at every use.
    tables ([side, conditional] from common.entropy_tables) gives coding models without
    building the tables.
    """
    if tables is not None:
      side_tables, conditional_tables = tables
      return (entropy_tables.batched_from_tables(side_tables, (self.hyper_size,), CODING_RANK,
                                                 self.offset_heuristic),
              entropy_tables.LocationScaleIndexedFromTables(
                  conditional_tables, tfc.NoisyNormal, NUM_SCALES, scale_fn, CODING_RANK))
    offset = (tfc.quantization_offset(self.hyper_prior)
              if fixed_offsets and self.offset_heuristic else None)
    side = tfc.ContinuousBatchedEntropyModel(
        self.hyper_prior, coding_rank=CODING_RANK, compression=compression,
        offset_heuristic=self.offset_heuristic, quantization_offset=offset)
    conditional = tfc.LocationScaleIndexedEntropyModel(
        tfc.NoisyNormal, NUM_SCALES, scale_fn, coding_rank=CODING_RANK, compression=compression)
    return side, conditional

  def decoder_geometry(self):
    y_stride = ntc_model.upsampling_factor(self.synthesis, self.bottleneck_size)
    z_stride = y_stride * ntc_model.upsampling_factor(self.hyper_synthesis, self.hyper_size)
    return dict(z=(z_stride, self.hyper_size), y=(y_stride, self.bottleneck_size))

  def infer_latents(self, x_padded):
    y = self.analysis(x_padded)
    return dict(y=y, z=self.hyper_analysis(y))

  @tf.function(reduce_retracing=True, autograph=False)  # AutoGraph would cost seconds here
  def entropy_parameters(self, z_hat, training):
    """(mu, scale indexes) for y from the (quantized) hyper-latents.

    In training the indexes are continuous (TFC clips them to the table and interpolates the
    scale between table entries); outside training they are the coder's (coding_indexes).
    """
    mu, h = tf.split(self.hyper_synthesis(z_hat), 2, axis=-1)
    indexes = self._scale_index(h)
    return mu, (indexes if training else coding_indexes(indexes))

  def latent_bits(self, latents, training, method=None, tau=None):
    """(bits, coded bits, y_hat): see NTCModel.latent_bits.

    bits use continuous scale indexes, as the authors' code computes its rate (training and
    evaluation alike); outside training, coded bits are those of y under the rounded indexes
    the range coder uses (z's are the same either way).
    """
    side_model, conditional_model = self.entropy_models
    method, relaxation = self.latent_relaxation(method, tau)
    z_hat, z_bits = quantization.quantize_latent(
        quantization.LatentCoder(side_model), latents["z"], method, training, **relaxation)
    mu, indexes = self.entropy_parameters(z_hat, training=True)
    y_coder = quantization.LatentCoder(conditional_model, scale_indexes=indexes, loc=mu)
    y_hat, y_bits = quantization.quantize_latent(y_coder, latents["y"], method, training,
                                                 **relaxation)
    coded_bits = None
    if not training:
      _, coded_y_bits = quantization.LatentCoder(
          conditional_model, scale_indexes=coding_indexes(indexes), loc=mu).hard(latents["y"])
      coded_bits = dict(y=coded_y_bits, z=z_bits)
    return dict(y=y_bits, z=z_bits), coded_bits, y_hat

  def profiled_transforms(self, padded_image_shape):
    """{module name: (layer, input shape)} for FLOP accounting on an image of this shape."""
    n, h, w, _ = padded_image_shape
    latents = self.infer_latents(tf.zeros((1, h, w, 3)))
    y_shape, z_shape = (n, *latents["y"].shape[1:]), (n, *latents["z"].shape[1:])
    return dict(g_a=(self.analysis, padded_image_shape), h_a=(self.hyper_analysis, y_shape),
                g_s=(self.synthesis, y_shape), h_s=(self.hyper_synthesis, z_shape))

  def compress_latents(self, latents, entropy_models):
    """Range-codes z, then y given h_s(z_hat); returns [(name, string, symbols)] in file order."""
    side_model, conditional_model = entropy_models
    z, y = latents["z"], latents["y"]
    z_string = side_model.compress(z)
    z_hat = side_model.decompress(z_string, tf.shape(z)[1:3])
    mu, indexes = self.entropy_parameters(z_hat, training=False)
    y_string = conditional_model.compress(y, indexes, loc=mu)
    return [("z", z_string[0], quantization.symbols(z, side_model.quantization_offset)),
            ("y", y_string[0], quantization.symbols(y, mu))]

  def decompress_latents(self, strings, shapes, entropy_models, timer, verify):
    """Inverse of compress_latents: y_hat for the synthesis.

    verify(name, symbols) checks each latent's symbols as soon as it is decoded, so a damaged z
    fails before h_s and the decoding of y.
    """
    side_model, conditional_model = entropy_models
    with timer("entropy_decoding"):
      z_hat = side_model.decompress(strings["z"][None], shapes["z"][:2])
    verify("z", quantization.symbols(z_hat, side_model.quantization_offset))
    with timer("h_s"):
      mu, indexes = self.entropy_parameters(z_hat, training=False)
    with timer("entropy_decoding"):
      y_hat = conditional_model.decompress(strings["y"][None], indexes, loc=mu)
    verify("y", quantization.symbols(y_hat, mu))
    return y_hat
