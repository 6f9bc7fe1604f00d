"""The shared skeleton of every experiment config (paper hyperparameters as defaults).

Config files call `make_config(...)` and set what differs; `num_steps` is a FieldReference so
that overriding train_eval_config.num_steps also moves every schedule (LR drop, lambda warm-up).
"""
import ml_collections

# The paper's rate-distortion trade-offs, in the published sweep order.
PAPER_LAMBDAS = (0.08, 0.02, 0.005, 0.00125, 0.04, 0.01, 0.0025)


def make_config(analysis, synthesis, num_steps=1_800_000, rd_lambda=0.08, latent_method="unoise",
                offset_heuristic=True, train_dataset="coco", val_dataset="kodak", batchsize=8,
                patchsize=256, log_every=1000, checkpoint_every=10000, eval_every=10000,
                learning_rate=1e-4, extra_transforms=None):
  num_steps = ml_collections.FieldReference(num_steps)
  config = ml_collections.ConfigDict()
  config.train_data_config = dict(dataset=train_dataset, batchsize=batchsize,
                                  patchsize=patchsize, random_flip=False)
  # patchsize None = full images (any size); max_images 0 = all.
  config.val_data_config = dict(dataset=val_dataset, patchsize=ml_collections.FieldReference(
      None, field_type=int), max_images=0)
  config.train_eval_config = dict(num_steps=num_steps, log_metrics_every_steps=log_every,
                                  checkpoint_every_steps=checkpoint_every,
                                  eval_every_steps=eval_every, max_checkpoints_to_keep=3,
                                  warm_start="")
  config.model_config = dict(
      scheduled_num_steps=num_steps, rd_lambda=rd_lambda, offset_heuristic=offset_heuristic,
      optimizer_config=dict(learning_rate=learning_rate, reduce_lr_after=0.8,
                            reduce_lr_factor=0.1, warmup_until=0.02, global_clipnorm=1.0),
      transform_config=dict(analysis=analysis, synthesis=synthesis, **(extra_transforms or {})),
      latent_config=dict(method=latent_method))
  return config
