"""JPEG-like synthesis: ELIC analysis + ONE 18x18 stride-16 transposed conv."""
from common import config_utils, hyper
from common.config_defaults import PAPER_LAMBDAS, hyperprior_config, make_config


def get_config():
  return hyperprior_config(make_config(
      analysis=dict(cls="ElicAnalysis", channels=(192, 192, 192, 320)),
      synthesis=dict(cls="JPEGLikeSynthesis", kernel_size=18, strides=16)))


def get_cfg_str(config):
  mc = config.model_config
  return config_utils.cfg_str([
      ("rd_lambda", mc.rd_lambda), ("bottleneck", mc.transform_config.analysis.channels[-1]),
      ("k", mc.transform_config.synthesis.kernel_size), ("uq", mc.latent_config.method)])


def get_hyper():
  return hyper.sweep("model_config.rd_lambda", PAPER_LAMBDAS)
