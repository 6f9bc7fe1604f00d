"""Schedules shared by training and iterative inference: learning rate, lambda, SGA temperature."""
import tensorflow as tf

# For rd_lambda <= 0.01, train with 10x lambda during the first 20% of steps (lambda warm-up).
LAMBDA_WARMUP_MAX_LAMBDA = 0.01
LAMBDA_WARMUP_FRACTION = 0.2
LAMBDA_WARMUP_FACTOR = 10.0


class WarmupDropSchedule(tf.keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up over `warmup_steps`, then constant, then x `drop_factor` after `drop_after`.

  `drop_after` is a fraction of `total_num_steps`.
  """

  def __init__(self, base_learning_rate, total_num_steps, warmup_steps, drop_after=0.8,
               drop_factor=0.1):
    self.base_learning_rate = float(base_learning_rate)
    self.total_num_steps = int(total_num_steps)
    self.warmup_steps = int(warmup_steps)
    self.drop_after = float(drop_after)
    self.drop_factor = float(drop_factor)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    warmup = (tf.minimum(1.0, (step + 1.0) / self.warmup_steps) if self.warmup_steps > 0
              else tf.constant(1.0))
    drop = tf.where(step >= self.drop_after * self.total_num_steps, self.drop_factor, 1.0)
    return self.base_learning_rate * warmup * drop

  def get_config(self):
    return dict(base_learning_rate=self.base_learning_rate, total_num_steps=self.total_num_steps,
                warmup_steps=self.warmup_steps, drop_after=self.drop_after,
                drop_factor=self.drop_factor)


def scheduled_rd_lambda(rd_lambda, step, total_num_steps):
  """rd_lambda, or 10x rd_lambda early in training when rd_lambda <= 0.01."""
  rd_lambda = tf.constant(float(rd_lambda))
  if float(rd_lambda) > LAMBDA_WARMUP_MAX_LAMBDA:
    return rd_lambda
  early = tf.cast(step, tf.float32) < LAMBDA_WARMUP_FRACTION * total_num_steps
  return tf.where(early, LAMBDA_WARMUP_FACTOR * rd_lambda, rd_lambda)


def sga_temperature(step, tau_r=5e-4, tau_ub=0.5, tau_lb=1e-8, tau_t0=200):
  """SGA annealing: tau(t) = min(ub, max(lb, ub * exp(-r (t - t0))))."""
  step = tf.cast(step, tf.float32)
  return tf.minimum(tau_ub, tf.maximum(tau_lb, tau_ub * tf.exp(-tau_r * (step - tau_t0))))


# optimizer_config keys (values missing from a config take make_optimizer's defaults).
OPTIMIZER_CONFIG_KEYS = ("learning_rate", "reduce_lr_after", "reduce_lr_factor", "warmup_until",
                         "global_clipnorm")


def make_optimizer(optimizer_config, num_steps, global_clipnorm=1.0):
  """(Adam, its WarmupDropSchedule) from an optimizer_config, for training and itinf alike.

  Args:
    optimizer_config: dict with keys of OPTIMIZER_CONFIG_KEYS; learning_rate (default 1e-4),
      warmup_until and reduce_lr_after (fractions of num_steps; 0.02, 0.8), reduce_lr_factor
      (0.1), global_clipnorm.
    num_steps: the steps the schedule spans.
    global_clipnorm: the gradient clipping when the config sets none (None: no clipping).
  """
  config = dict(optimizer_config or {})
  unknown = sorted(set(config) - set(OPTIMIZER_CONFIG_KEYS))
  if unknown:
    raise ValueError(f"Unknown optimizer_config key(s) {unknown}; valid: "
                     f"{sorted(OPTIMIZER_CONFIG_KEYS)}.")
  learning_rate = WarmupDropSchedule(
      base_learning_rate=config.get("learning_rate", 1e-4), total_num_steps=num_steps,
      warmup_steps=int(config.get("warmup_until", 0.02) * num_steps),
      drop_after=config.get("reduce_lr_after", 0.8),
      drop_factor=config.get("reduce_lr_factor", 0.1))
  optimizer = tf.keras.optimizers.Adam(
      learning_rate=learning_rate, global_clipnorm=config.get("global_clipnorm", global_clipnorm))
  return optimizer, learning_rate
