"""The training step of `make demo` (mshyper/demo.py): the bundled lambda=0.04 model
(pretrained/mshyper_small, via --warm_start) fine-tuned for DEMO_STEPS steps at lambda=0.08 on
`make data`'s train photos, so that a minute of CPU training yields a new, higher rate point."""
from common import hyper
from mshyper.configs import pretrained

DEMO_LAMBDA = 0.08
DEMO_STEPS = 200


def get_config():
  config = pretrained.get_config()
  config.model_config.rd_lambda = DEMO_LAMBDA
  # As the bundled fine-tunes: the base run's 1e-3 first costs the trained model quality.
  config.model_config.optimizer_config.learning_rate = pretrained.FINETUNE_LEARNING_RATE
  # num_steps is a FieldReference: the LR drop moves with it.
  config.train_eval_config.num_steps = DEMO_STEPS
  config.train_eval_config.log_metrics_every_steps = 50
  config.train_eval_config.checkpoint_every_steps = DEMO_STEPS
  config.train_eval_config.eval_every_steps = DEMO_STEPS
  return config


def get_cfg_str(config):
  return pretrained.get_cfg_str(config)


def get_hyper():
  return hyper.sweep("model_config.rd_lambda", [DEMO_LAMBDA])
