"""Model-independent parts of a nonlinear transform coding model: optimizer, schedules,
padding to the downsampling factor, the R-D loss and metrics, and the train/eval steps.

A model family (factorized/models.py, mshyper/models.py) subclasses NTCModel and implements the
hooks it declares (each raises NotImplementedError here, with its contract in its docstring).
"""
import math

import tensorflow as tf

from common import image_utils, quantization, results, schedule
from common import metrics as image_metrics
from common.transforms import build_transform

# Dummy image side used to infer the downsampling factor; must be a multiple of it.
DUMMY_IMAGE_SIDE = 256


def upsampling_factor(transform, channels):
  """Output side of a synthesis `transform` on a 1 x 1 input of `channels` (builds it)."""
  return int(transform(tf.zeros((1, 1, 1, channels))).shape[1])


def _rates(bits, coded_bits, num_pixels):
  """{bpp (total), bpp_<latent>, bpp_coded (if coded_bits)} of per-image bits."""
  rates = {f"bpp_{name}": tf.reduce_mean(b) / num_pixels for name, b in bits.items()}
  rates["bpp"] = tf.add_n(list(rates.values()))
  if coded_bits is not None:
    rates["bpp_coded"] = tf.add_n([tf.reduce_mean(b) for b in coded_bits.values()]) / num_pixels
  return rates


class NTCModel(tf.Module):
  """A transform coding model: x -> g_a -> latents -> entropy models -> g_s -> x_hat.

  Built by NTCModel.__init__ (a subclass's __init__ sets its own options, then calls it last):
  the optimizer, `analysis` (g_a) and `synthesis` (g_s) from transform_config, then the
  subclass's `build_latent_model` (its priors and hyper transforms), `entropy_models`, and one
  dummy forward pass that creates every variable; `latent_geometry` and `downsample_factor`
  come from the decoder side (`decoder_geometry`). With decoder_only=True only the decoder
  side is built (no encoder variables exist, and encoding is an error).

  Hooks a subclass implements (each documented below): build_latent_model, make_entropy_models,
  infer_latents, latent_bits, decoder_geometry, profiled_transforms, compress_latents,
  decompress_latents; and the class attributes CODED_LATENTS and ENCODER_MODULES.
  """

  # Attributes only the encoder uses; every other weight is part of the decoder.
  ENCODER_MODULES = ("analysis",)
  # (latent name, index of its entropy model in make_entropy_models()) in file order.
  CODED_LATENTS = ()

  def __init__(self, transform_config, scheduled_num_steps, rd_lambda, optimizer_config,
               latent_config, offset_heuristic, name=None, decoder_only=False):
    """Optimizer, latent method, the analysis/synthesis transforms every model has, then the
    subclass's latent model and entropy models, and every variable (a dummy forward pass).

    decoder_only=True creates only the variables a decoder uses (see _create_variables): the
    encoder modules stay unbuilt, and encoding with such a model is an error.
    """
    super().__init__(name=name)
    self.decoder_only = bool(decoder_only)
    self._offsets_frozen = False
    self.scheduled_num_steps = int(scheduled_num_steps)
    self.rd_lambda = float(rd_lambda)
    self.latent_config = dict(latent_config or dict(method="unoise"))
    self.latent_method = quantization.check_latent_config(self.latent_config)
    # Rounding around the prior's mode is meaningless when the synthesis sees rounded latents.
    self.offset_heuristic = (bool(offset_heuristic)
                             and self.latent_method not in quantization.GRID_METHODS)
    self.optimizer, self.learning_rate = schedule.make_optimizer(optimizer_config,
                                                                 self.scheduled_num_steps)
    self.analysis = build_transform(transform_config["analysis"])
    self.synthesis = build_transform(transform_config["synthesis"])
    self.bottleneck_size = self.analysis.output_channels
    if not self.decoder_only:  # Its variables first, in the order that seeded runs were made.
      self.analysis(tf.zeros((1, 64, 64, 3)))
    self.build_latent_model(dict(transform_config))
    self.entropy_models = self.make_entropy_models(compression=False)
    self._create_variables()

  # ---------------------------------------------------------------------------------------------
  # Hooks of a model family.

  def build_latent_model(self, transform_config):
    """Creates the modules of the latents' probability model (e.g. hyper transforms, priors).

    Called by NTCModel.__init__ once `analysis`, `synthesis` and `bottleneck_size` (channels of
    y) exist, before make_entropy_models. transform_config: the model's, as a dict.
    """
    raise NotImplementedError

  def make_entropy_models(self, compression, fixed_offsets=False, tables=None):
    """A tuple of TFC entropy models, one per entropy model index of CODED_LATENTS.

    compression=True builds range-coding tables; fixed_offsets=True computes quantization
    offsets once instead of at every use; tables (per model, from common.entropy_tables) gives
    coding models without building the tables.
    """
    raise NotImplementedError

  def infer_latents(self, x_padded):
    """The encoder: {latent name: continuous latent} of images padded to downsample_factor."""
    raise NotImplementedError

  def latent_bits(self, latents, training, method=None, tau=None):
    """Quantizes (or relaxes) every latent and measures its rate, up to the synthesis input.

    Args:
      latents: as infer_latents returns them (or being optimized by iterative inference).
      training: relaxed quantization (the latent method) if True, hard rounding if False.
      method, tau: override the training latent method and SGA temperature (itinf).
    Returns:
      (bits, coded bits, y_hat): {latent name: bits per image} as the authors' code estimates
      the rate; outside training, the information content of exactly what the range coder codes
      (None in training); the (quantized) input of the synthesis.
    """
    raise NotImplementedError

  def decoder_geometry(self):
    """{latent name: (stride, channels)} of the coded latents, from the decoder side alone
    (what a decoder-only model validates file headers with)."""
    raise NotImplementedError

  def profiled_transforms(self, padded_image_shape):
    """{module name (g_a, h_a, g_s, h_s): (layer, its input shape)} for an image padded to
    this (N, H, W, 3) shape, for FLOP and parameter accounting; modules a model lacks are
    absent."""
    raise NotImplementedError

  def compress_latents(self, latents, entropy_models):
    """Range-codes hard-rounded latents with coding entropy models (make_entropy_models(
    compression=True)); returns [(latent name, string, integer symbols)] in file order."""
    raise NotImplementedError

  def decompress_latents(self, strings, shapes, entropy_models, timer, verify):
    """Range-decodes: the inverse of compress_latents, up to the synthesis input y_hat.

    strings/shapes: {latent name: string / latent shape (H, W, C)}; timer(stage) is a context
    manager that times a stage; verify(name, symbols) checks each latent's symbols as soon as it
    is decoded (against the checksums in the file).
    """
    raise NotImplementedError

  # ---------------------------------------------------------------------------------------------

  def decoder_variables(self):
    """The trainable variables a decoder uses (all but the encoder modules'), in a fixed order."""
    encoder = {v.ref() for name in self.ENCODER_MODULES
               for v in getattr(self, name).trainable_variables}
    return [v for v in self.trainable_variables if v.ref() not in encoder]

  @property
  def global_step(self):
    return self.optimizer.iterations

  def _create_variables(self):
    """Creates the variables and derives the latents' geometry and the downsampling factor.

    The full model creates every variable with one dummy forward pass, so that checkpoints
    (with optimizer slots) restore before the first training step; a decoder-only model
    creates those of the decoder side only. Both take `latent_geometry` ({latent name:
    (stride, channels)}) from the decoder side (`decoder_geometry`); the full model checks it
    against what its analysis computes. The factor is the stride of the coarsest latent.
    """
    latents = None
    if not self.decoder_only:
      latents = self.infer_latents(tf.zeros((1, DUMMY_IMAGE_SIDE, DUMMY_IMAGE_SIDE, 3)))
      self.quantize_and_synthesize(latents, training=False)
    self.latent_geometry = self.decoder_geometry()
    factor = max(stride for stride, _ in self.latent_geometry.values())
    if DUMMY_IMAGE_SIDE % factor or factor & (factor - 1):
      raise ValueError(f"Could not infer a power-of-two downsampling factor: the synthesis "
                       f"side gives latent strides {self.latent_geometry}.")
    self.downsample_factor = factor
    for name, latent in (latents or {}).items():
      encoded = (DUMMY_IMAGE_SIDE // int(latent.shape[1]), int(latent.shape[-1]))
      if encoded != self.latent_geometry[name]:
        raise ValueError(f"Latent {name}: the analysis gives (stride, channels) {encoded}, the "
                         f"synthesis side expects {self.latent_geometry[name]}.")

  def tau(self):
    """SGA temperature at the current step (only meaningful for latent method 'sga')."""
    return schedule.sga_temperature(self.global_step,
                                    **quantization.tau_schedule(self.latent_config))

  def latent_relaxation(self, method=None, tau=None):
    """(latent method, its keyword arguments for quantization.quantize_latent).

    The training method and schedule unless given: iterative inference passes its own method,
    and a tau from its own step counter. soft_round takes latent_config.soft_round_alpha.
    """
    method = method or self.latent_method
    if method == "sga":
      return method, dict(tau=self.tau() if tau is None else tau)
    if method == "soft_round":
      return method, dict(alpha=self.latent_config.get("soft_round_alpha", 5.0))
    return method, {}

  def freeze_quantization_offsets(self):
    """Computes the entropy models' quantization offsets once, for many steps on fixed weights.

    With the offset heuristic, TFC otherwise re-estimates a deep factorized prior's offset (an
    iterative search) at every use: about 3x the time of an iterative inference step.
    """
    self.entropy_models = self.make_entropy_models(compression=False, fixed_offsets=True)
    self._offsets_frozen = True

  def rd_lambda_now(self, training):
    if not training:
      return tf.constant(self.rd_lambda)
    return schedule.scheduled_rd_lambda(self.rd_lambda, self.global_step,
                                        self.scheduled_num_steps)

  def pad(self, x):
    """Reflect padding to the downsampling factor, as the authors' models pad."""
    return image_utils.pad_to_multiple(x, self.downsample_factor, mode="reflect")

  def rd_terms(self, x, latents, training, method=None, tau=None, rd_lambda=None):
    """Loss and metrics of images x ([-0.5, 0.5], N x H x W x 3) coded through `latents`.

    Iterative inference overrides the latent method, SGA temperature and lambda (the training
    ones follow the training step: tau annealing, lambda warm-up).

    `bpp` is the rate as the authors' code computes it (for the hyperprior: continuous scale
    indexes); outside training `bpp_coded` is the information content of exactly what the range
    coder codes (rounded scale indexes), i.e. a real file's size minus coder overhead and header.
    """
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    bits, coded_bits, x_hat = self.quantize_and_synthesize(latents, training, method, tau)
    x_hat = image_utils.crop_to(x_hat, height, width)
    num_pixels = tf.cast(height * width, tf.float32)
    rates = _rates(bits, coded_bits, num_pixels)
    total_bpp = rates.pop("bpp")
    if training:
      x_255, x_hat_255 = (x + 0.5) * 255., (x_hat + 0.5) * 255.
    else:  # Evaluate what a decoder would output: clipped, rounded 8-bit pixels.
      x_255 = tf.round(tf.clip_by_value((x + 0.5) * 255., 0., 255.))
      x_hat_255 = tf.round(tf.clip_by_value((x_hat + 0.5) * 255., 0., 255.))
    mse = tf.reduce_mean(tf.math.squared_difference(x_255, x_hat_255))
    rd_lambda = self.rd_lambda_now(training) if rd_lambda is None else tf.constant(rd_lambda)
    loss = total_bpp + rd_lambda * mse
    metrics = dict(loss=loss, bpp=total_bpp, mse=mse,
                   psnr=10. * tf.math.log(255. ** 2 / tf.maximum(mse, 1e-10)) / math.log(10.),
                   rd_lambda=rd_lambda, **rates)
    return loss, metrics, x_hat

  def quantize_and_synthesize(self, latents, training, method=None, tau=None):
    """(bits, coded bits, x_hat): latent_bits, then the synthesis of the quantized latents."""
    bits, coded_bits, y_hat = self.latent_bits(latents, training, method, tau)
    return bits, coded_bits, self.synthesis(y_hat, training=training)

  def estimate_rates(self, latents, num_pixels):
    """{bpp, bpp_<latent>, bpp_coded} of coding `latents` of an image of num_pixels pixels
    outside training: what rd_terms reports, without running the synthesis.

    For fixed weights (evaluation): the first call freezes the quantization offsets.
    """
    if not self._offsets_frozen:
      self.freeze_quantization_offsets()
    return self._estimate_rates(latents, tf.constant(num_pixels, tf.float32))

  @tf.function(reduce_retracing=True, autograph=False)
  def _estimate_rates(self, latents, num_pixels):
    bits, coded_bits, _ = self.latent_bits(latents, training=False)
    return _rates(bits, coded_bits, num_pixels)

  @tf.function
  def train_step(self, x):
    """One optimizer step on batch x; under tf.distribute, on this replica's share of it.

    The optimizer sums the replicas' gradients, so each replica's loss is divided by their
    number: the step equals one on the whole batch on one device.
    """
    num_replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    with tf.GradientTape() as tape:
      latents = self.infer_latents(self.pad(x))
      loss, metrics, _ = self.rd_terms(x, latents, training=True)
      replica_loss = loss / num_replicas
    variables = self.trainable_variables
    gradients = tape.gradient(replica_loss, variables)
    self.optimizer.apply_gradients(zip(gradients, variables))
    metrics["learning_rate"] = self.learning_rate(self.global_step)
    return metrics

  def evaluate(self, x):
    """Metrics with hard-rounded latents on full images, plus the reconstruction."""
    _, metrics, x_hat = self._evaluate(x)
    metrics = {k: float(v) for k, v in metrics.items()}
    reconstruction = image_utils.from_model_output(x_hat).numpy()
    original = image_utils.from_model_output(x).numpy()
    msssim = [image_metrics.ms_ssim_rgb(a, b) for a, b in zip(original, reconstruction)]
    if all(v is not None for v in msssim):
      metrics["msssim"] = sum(msssim) / len(msssim)
      metrics["msssim_db"] = results.ms_ssim_db(metrics["msssim"])
    return metrics, reconstruction

  @tf.function(reduce_retracing=True)
  def _evaluate(self, x):
    latents = self.infer_latents(self.pad(x))
    return self.rd_terms(x, latents, training=False)
