"""Minnen et al. 2018 mean-scale hyperprior baseline (192 channels, 320-channel bottleneck)."""
from common import config_utils, hyper
from common.config_defaults import PAPER_LAMBDAS, hyperprior_config, make_config


def get_config():
  return hyperprior_config(make_config(
      analysis=dict(cls="MBT2018Analysis", channels_base=192, output_channels=320),
      synthesis=dict(cls="MBT2018Synthesis", channels_base=192, output_channels=3),
      num_steps=2_000_000))


def get_cfg_str(config):
  mc = config.model_config
  return config_utils.cfg_str([
      ("rd_lambda", mc.rd_lambda), ("bottleneck", mc.transform_config.analysis.output_channels),
      ("channels", mc.transform_config.analysis.channels_base)])


def get_hyper():
  return hyper.sweep("model_config.rd_lambda", PAPER_LAMBDAS)
