"""The shared skeleton of every experiment config (paper hyperparameters as defaults).

Config files call `make_config(...)` and set what differs; `num_steps` is a FieldReference so
that overriding train_eval_config.num_steps also moves every schedule (LR drop, lambda warm-up).
"""
import ml_collections

from common import config_utils, hyper

# The paper's rate-distortion trade-offs, in the published sweep order.
PAPER_LAMBDAS = (0.08, 0.02, 0.005, 0.00125, 0.04, 0.01, 0.0025)
# The quickstart sweep of both model families (quickstart_config).
QUICKSTART_LAMBDAS = (0.0025, 0.01, 0.04)


def make_config(analysis, synthesis, num_steps=1_800_000, rd_lambda=0.08, latent_method="unoise",
                offset_heuristic=True, train_dataset="coco", val_dataset="kodak", batchsize=8,
                patchsize=256, log_every=1000, checkpoint_every=10000, eval_every=10000,
                learning_rate=1e-4, extra_transforms=None):
  num_steps = ml_collections.FieldReference(num_steps)
  config = ml_collections.ConfigDict()
  # batchsize is the global batch (split over the replicas of a distributed run);
  # max_bad_share: training stops once more than this share of the files cannot be decoded;
  # seed (file order and crops) None: derived from the run dir, the same after a resume.
  config.train_data_config = dict(dataset=train_dataset, batchsize=batchsize,
                                  patchsize=patchsize, random_flip=False, max_bad_share=0.01,
                                  seed=ml_collections.FieldReference(None, field_type=int))
  # patchsize None = full images (any size); max_images 0 = all.
  config.val_data_config = dict(dataset=val_dataset, patchsize=ml_collections.FieldReference(
      None, field_type=int), max_images=0)
  config.train_eval_config = dict(num_steps=num_steps, log_metrics_every_steps=log_every,
                                  checkpoint_every_steps=checkpoint_every,
                                  eval_every_steps=eval_every, max_checkpoints_to_keep=3,
                                  warm_start="", distribution="one_device", jit_compile=False)
  config.model_config = dict(
      scheduled_num_steps=num_steps, rd_lambda=rd_lambda, offset_heuristic=offset_heuristic,
      optimizer_config=dict(learning_rate=learning_rate, reduce_lr_after=0.8,
                            reduce_lr_factor=0.1, warmup_until=0.02, global_clipnorm=1.0),
      transform_config=dict(analysis=analysis, synthesis=synthesis, **(extra_transforms or {})),
      latent_config=dict(method=latent_method))
  return config


def hyperprior_config(config, scale_parameterization="exp_index"):
  """Marks a mean-scale hyperprior config with how h_s's output maps to a Gaussian scale.

  Written into every run's config.json, so a run keeps its mapping when the default changes
  (see mshyper/models.py). "exp_index" is the authors' mapping.
  """
  config.model_config.scale_parameterization = scale_parameterization
  return config


def make_itinf_config(dataset="embedded_eval", num_steps=3000):
  """Iterative inference on the latents of a trained run, with the paper's SGA settings.

  Adam lr 5e-3, no warm-up, 10x drop after 90% of the steps, no gradient clipping;
  tau(t) = min(tau_ub, max(tau_lb, tau_ub * exp(-tau_r * (t - tau_t0)))).
  """
  config = ml_collections.ConfigDict()
  # center_crop None = full images (any size); max_images 0 = all.
  config.data_config = dict(dataset=dataset, center_crop=ml_collections.FieldReference(
      None, field_type=int), max_images=0)
  config.itinf_config = dict(
      # A training experiment dir (the run wid=warm_start_wid in it), workdir or checkpoint.
      warm_start="", warm_start_wid=0, num_steps=num_steps, log_metrics_every_steps=100,
      eval_every_steps=500, timing_repeats=1,
      # The offset heuristic of the warm-started model during itinf and in its files: off, as
      # the authors' itinf configs set it for every model (latents are rounded to integers, or
      # around the predicted mean); True keeps the training value. Files record the choice in
      # their model identity, and `codec decompress --workdir RUN` follows it.
      offset_heuristic=False)
  config.optimizer_config = dict(learning_rate=5e-3, reduce_lr_after=0.9, reduce_lr_factor=0.1,
                                 warmup_until=0.0)
  # method: sga, or unoise / ste / mixedq for comparison (tau_* only matter for sga).
  config.latent_config = dict(method="sga", tau_r=5e-4, tau_ub=0.5, tau_lb=1e-8, tau_t0=200)
  return config


def quickstart_config():
  """A small model with the paper's 2-layer residual synthesis that trains in minutes on 2 CPU
  cores on the embedded photos (same code path as the paper configs)."""
  return make_config(
      analysis=dict(cls="CNNAnalysis", channels_base=64, output_channels=96),
      synthesis=dict(cls="TwoLayerResSynthesis", channels=(12, 3), strides=(8, 2),
                     kernel_sizes=(13, 5), activation_type="igdn", res_type="conv"),
      num_steps=2000, rd_lambda=0.01, train_dataset="embedded_train",
      val_dataset="embedded_eval", batchsize=4, patchsize=128, log_every=100,
      checkpoint_every=500, eval_every=1000, learning_rate=3e-4)


def itinf_cfg_str(config):
  """Run name of an iterative-inference config."""
  return config_utils.cfg_str([("wwid", config.itinf_config.warm_start_wid),
                               ("method", config.latent_config.method),
                               ("steps", config.itinf_config.num_steps)])


def itinf_hyper():
  """One element per run of a paper lambda sweep (a smaller sweep uses the first elements)."""
  return hyper.sweep("itinf_config.warm_start_wid", list(range(len(PAPER_LAMBDAS))))
