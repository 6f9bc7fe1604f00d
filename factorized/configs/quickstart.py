"""A small factorized-prior model (CNN analysis, 2-layer residual synthesis), sized to train in
minutes on 2 CPU cores on the embedded photos."""
from common import config_utils, hyper
from common.config_defaults import QUICKSTART_LAMBDAS, quickstart_config


def get_config():
  return quickstart_config()


def get_cfg_str(config):
  mc = config.model_config
  return config_utils.cfg_str([("rd_lambda", mc.rd_lambda),
                               ("bottleneck", mc.transform_config.analysis.output_channels)])


def get_hyper():
  return hyper.sweep("model_config.rd_lambda", QUICKSTART_LAMBDAS)
