"""The `make demo` sweep (mshyper/demo.py): the quickstart model at 4 rate points, since BD-rate
needs >= 4, trained for fewer steps at a higher learning rate so that all four train in a few
minutes on 2 CPU cores (Adam 1e-3 with global_clipnorm 1.0 was stable here and got further
than the quickstart's 3e-4 in so few steps). Lambdas: the quickstart's three plus the paper's
highest, which stretches the short-trained curve over more of JPEG's quality range."""
from common import hyper
from mshyper.configs import quickstart

DEMO_LAMBDAS = (0.0025, 0.01, 0.04, 0.08)
DEMO_STEPS = 1000


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
