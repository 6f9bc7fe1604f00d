"""Ballé et al. 2017 factorized-prior baseline (256 filters)."""
from common import config_utils, hyper
from common.config_defaults import PAPER_LAMBDAS, make_config


def get_config():
  return make_config(analysis=dict(cls="BLS2017Analysis", num_filters=256),
                     synthesis=dict(cls="BLS2017Synthesis", num_filters=256))


def get_cfg_str(config):
  mc = config.model_config
  return config_utils.cfg_str([("rd_lambda", mc.rd_lambda),
                               ("filters", mc.transform_config.analysis.num_filters)])


def get_hyper():
  return hyper.sweep("model_config.rd_lambda", PAPER_LAMBDAS)
