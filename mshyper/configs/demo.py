"""The `make demo` sweep (common/demo.py): the quickstart model at 4 rate points, since BD-rate
needs >= 4, trained for fewer steps at a higher learning rate so that all four train in a few
minutes on 2 CPU cores (Adam 1e-3 with global_clipnorm 1.0 was stable here and converges
faster than the quickstart's 3e-4 in so few steps)."""
from common import hyper
from mshyper.configs import quickstart

DEMO_LAMBDAS = (0.005, 0.01, 0.02, 0.04)
DEMO_STEPS = 800


def get_config():
  config = quickstart.get_config()
  # num_steps is a FieldReference: the LR drop and lambda warm-up move with it.
  config.train_eval_config.num_steps = DEMO_STEPS
  config.model_config.optimizer_config.learning_rate = 1e-3
  return config


def get_cfg_str(config):
  return quickstart.get_cfg_str(config)


def get_hyper():
  return hyper.sweep("model_config.rd_lambda", DEMO_LAMBDAS)
