"""How latents are quantized (or relaxed) at train time, for any TFC entropy model.

`LatentCoder` adapts one latent tensor and its TFC entropy model (batched or location-scale
indexed) to one interface; `quantize_latent` applies a method:
- "unoise": additive uniform noise for both rate and synthesis input.
- "mixedq": noisy rate, straight-through rounded latents into the synthesis (Minnen 2020).
- "sga": stochastic Gumbel annealing (Yang et al. 2020) for both rate and synthesis input.
- "ste": straight-through rounding for both rate and synthesis input (itinf comparison).
- "soft_round": soft rounding (Agustsson & Theis 2020): the synthesis sees the conditional mean
  r_alpha(s_alpha(y) + u), the rate is that of s_alpha(y) + u under the soft-rounded prior.
Outside training every method hard-rounds, so evaluation always sees the coded latents.
"""
import tensorflow as tf
import tensorflow_compression as tfc
import tensorflow_probability as tfp

METHODS = ("unoise", "mixedq", "sga", "ste", "soft_round")
# Methods whose synthesis input lies on (or near) the integer grid around the prediction, where
# quantization offsets from the prior's mode make no sense.
GRID_METHODS = ("mixedq", "soft_round")
# latent_config (training and itinf): `method` (METHODS), the SGA temperature schedule (TAU_KEYS:
# schedule.sga_temperature's arguments) and soft_round's `soft_round_alpha`.
TAU_KEYS = ("tau_r", "tau_ub", "tau_lb", "tau_t0")
LATENT_CONFIG_KEYS = ("method",) + TAU_KEYS + ("soft_round_alpha",)


def check_latent_config(latent_config, what="latent"):
  """The latent method of a latent_config (default unoise); refuses unknown methods and keys.

  what: how errors name the method ('latent', 'itinf latent').
  """
  method = latent_config.get("method", "unoise")
  if method not in METHODS:
    raise ValueError(f"Unknown {what} method {method!r}; valid: {METHODS}.")
  unknown = sorted(set(latent_config) - set(LATENT_CONFIG_KEYS))
  if unknown:
    raise ValueError(f"Unknown latent_config key(s) {unknown}; valid: {LATENT_CONFIG_KEYS}.")
  return method


def tau_schedule(latent_config):
  """The SGA temperature arguments a latent_config sets (schedule.sga_temperature's defaults
  for the others)."""
  return {key: latent_config[key] for key in TAU_KEYS if key in latent_config}


class LatentCoder:
  """One latent tensor's entropy model, with its conditioning (scale indexes, location)."""

  def __init__(self, entropy_model, scale_indexes=None, loc=None):
    self.entropy_model = entropy_model
    self.scale_indexes = scale_indexes
    self.loc = loc
    self._coding_axes = tuple(range(-entropy_model.coding_rank, 0))

  @property
  def indexed(self):
    return self.scale_indexes is not None

  def noisy(self, y):
    """(y + U(-.5, .5), differentiable bits upper bound)."""
    if self.indexed:
      return self.entropy_model(y, self.scale_indexes, loc=self.loc, training=True)
    return self.entropy_model(y, training=True)

  def hard(self, y):
    """(rounded y, its information content in bits under the prior)."""
    if self._noisy_normal_location_scale():
      return self._hard_noisy_normal(y)
    if self.indexed:
      return self.entropy_model(y, self.scale_indexes, loc=self.loc, training=False)
    return self.entropy_model(y, training=False)

  def _noisy_normal_location_scale(self):
    model = self.entropy_model
    return (self.indexed and isinstance(model, tfc.LocationScaleIndexedEntropyModel)
            and model.prior_fn is tfc.NoisyNormal
            and not isinstance(model.laplace_tail_mass, tf.Tensor)
            and model.laplace_tail_mass == 0)

  def _hard_noisy_normal(self, y):
    """What TFC's entropy model returns for training=False, bit for bit, at half the cost.

    TFC evaluates log Phi at the rounded value +- 1/2 for both tails (4 log_ndtr per value) and
    keeps the tail away from the mode. The noisy Normal is symmetric around its location, so
    that is the lower tail of -|round(y - loc)|: the same two log_ndtr values, computed once.
    Evaluation, rate estimates and iterative inference spend most of their rate time here.
    """
    loc = 0. if self.loc is None else self.loc
    centered = tfc.round_st(y - loc)  # as TFC: straight-through, if anyone differentiates
    reflected = -tf.abs(centered)
    normal = self.base_prior()
    big, small = normal.log_cdf(reflected + .5), normal.log_cdf(reflected - .5)
    log_probs = tf.where(tf.math.is_inf(big), big, tf.math.log1p(-tf.exp(small - big)) + big)
    return centered + loc, tf.reduce_sum(log_probs, self._coding_axes) / -tf.math.log(2.0)

  @property
  def offset(self):
    """Quantization grid offset: the predicted mean, or the factorized prior's offset."""
    if self.indexed:
      return self.loc
    return self.entropy_model.quantization_offset

  def round_st(self, y):
    """Rounding onto the quantization grid with a straight-through gradient."""
    if self.indexed:
      return self.entropy_model.quantize(y, loc=self.loc)
    return self.entropy_model.quantize(y)

  def base_prior(self):
    """The prior before convolution with uniform noise (centered at the location if indexed)."""
    model = self.entropy_model
    if self.indexed:
      return model._make_prior(model._normalize_indexes(self.scale_indexes)).base
    return model.prior.base

  def bits(self, y_hat):
    """Bits of (possibly relaxed) latents under the noisy (convolved with U) prior."""
    model = self.entropy_model
    if self.indexed:
      prior = model._make_prior(model._normalize_indexes(self.scale_indexes))
      log_probs = prior.log_prob(y_hat - (0. if self.loc is None else self.loc))
    else:
      log_probs = model.prior.log_prob(y_hat)
    return tf.reduce_sum(log_probs, self._coding_axes) / -tf.math.log(2.0)


def sga_round(y, tau, offset=None):
  """Stochastic Gumbel annealing: a relaxed sample of floor(y) or ceil(y) (on the offset grid).

  The probability of each neighbour decays with atanh of its distance over temperature tau; as
  tau -> 0 the sample approaches hard rounding.
  """
  shift = 0. if offset is None else offset
  v = y - shift
  v_floor = tf.floor(v)
  v_ceil = v_floor + 1.0
  eps = 1e-5
  dist_floor = tf.clip_by_value(v - v_floor, -1.0 + eps, 1.0 - eps)
  dist_ceil = tf.clip_by_value(v_ceil - v, -1.0 + eps, 1.0 - eps)
  logits = tf.stack([-tf.math.atanh(dist_floor), -tf.math.atanh(dist_ceil)], axis=-1) / tau
  weights = tfp.distributions.RelaxedOneHotCategorical(tau, logits=logits).sample()
  return weights[..., 0] * v_floor + weights[..., 1] * v_ceil + shift


def soft_round_latent(coder, y, alpha):
  """(r_alpha(s_alpha(y - o) + u) + o, bits of s_alpha(y - o) + u), o = location or offset."""
  if not coder.indexed and coder.offset is not None:
    raise ValueError("soft_round with a factorized prior needs offset_heuristic=False.")
  shift = coder.loc if coder.indexed and coder.loc is not None else 0.
  noisy = tfc.soft_round(y - shift, alpha) + tf.random.uniform(tf.shape(y), -0.5, 0.5)
  prior = tfc.UniformNoiseAdapter(tfc.SoftRoundAdapter(coder.base_prior(), alpha))
  bits = tf.reduce_sum(prior.log_prob(noisy), coder._coding_axes) / -tf.math.log(2.0)
  return tfc.soft_round_conditional_mean(noisy, alpha) + shift, bits


def quantize_latent(coder, y, method, training, tau=None, alpha=None):
  """Returns (latent fed to the synthesis, bits) for one latent tensor.

  tau is the SGA temperature, alpha the soft-rounding sharpness.
  """
  if not training:
    return coder.hard(y)
  if method == "unoise":
    return coder.noisy(y)
  if method == "mixedq":
    _, bits = coder.noisy(y)
    return coder.round_st(y), bits
  if method == "sga":
    if tau is None:
      raise ValueError("latent method 'sga' needs a temperature tau.")
    y_sga = sga_round(y, tau, coder.offset)
    return y_sga, coder.bits(y_sga)
  if method == "ste":
    y_hat = coder.round_st(y)
    return y_hat, coder.bits(y_hat)
  if method == "soft_round":
    if alpha is None:
      raise ValueError("latent method 'soft_round' needs a sharpness alpha.")
    return soft_round_latent(coder, y, alpha)
  raise ValueError(f"Unknown latent method {method!r}; valid: {METHODS}.")


def symbols(values, offset):
  """Integer symbols a range coder codes for quantized values: round(values - offset)."""
  return tf.cast(tf.round(values - (0. if offset is None else offset)), tf.int32)
